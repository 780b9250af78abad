#!/bin/sh
# guest_killed.sh - a guest killed mid-run (SIGKILL) while the daemon holds
# its pages: the daemon notices, frees its records, and nothing else is
# disturbed: the other guests verify, the daemon keeps serving.
. "$(dirname "$0")/lib.sh"

write_conf "store_budget 64M"
start_daemon
for n in 1 2 3; do
    start_guest $n 10 --rate 200 --write-ratio 20
done
for i in $(seq 1 100); do
    sleep 0.2
    sh=$(json_num pages_shared)
    [ "${sh:-0}" -gt 500 ] && break
done
[ "${sh:-0}" -gt 500 ] || fail "the daemon never shared 500 pages"
# de-guest runs inside a subshell: kill the guest process itself
gpid=$(pgrep -f -- "--socket $T/guests.sock .*--name g2 " | head -n 1)
[ -n "$gpid" ] || fail "cannot find guest 2"
kill -9 "$gpid"
for i in $(seq 1 50); do
    sleep 0.2
    ng=$(ctl guests --json | grep -o '"name":"g[0-9]"' | wc -l)
    [ "$ng" = 2 ] && break
done
[ "$ng" = 2 ] || fail "the daemon still lists $ng guests after one was killed"
grep -q "guest g2 .* released" "$T/daemon.log" || fail "no release of g2 in the log"
for n in 1 3; do
    st=$(guest_exit $n)
    cat "$T/g$n.guest"
    [ "$st" = 0 ] || fail "guest $n exit status $st"
done
ctl status >/dev/null || fail "daemon stopped answering"
errors=$(json_num errors)
[ "${errors:-1}" = 0 ] || fail "the daemon counted $errors errors"
echo "PASS: guest_killed"
