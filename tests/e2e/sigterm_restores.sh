#!/bin/sh
# sigterm_restores.sh - SIGTERM to de-dom0d mid-run, while it holds many
# of the guests' pages: it must give every page back and release the
# guests, which keep running on their own and verify every byte.
. "$(dirname "$0")/lib.sh"

write_conf "store_budget 64M"
start_daemon
for n in 1 2 3; do
    start_guest $n 10 --rate 200 --hot 10 --hot-weight 90 --write-ratio 20
done
held=0
for i in $(seq 1 100); do
    sleep 0.2
    held=$(json_num pages_shared); pa=$(json_num pages_patched); co=$(json_num pages_compressed)
    held=$(( ${held:-0} + ${pa:-0} + ${co:-0} ))
    [ $held -gt 1000 ] && break
done
echo "pages held by the daemon at SIGTERM: $held"
[ $held -gt 1000 ] || fail "the daemon never held 1000 pages"
kill -TERM "$DPID"
wait "$DPID"; st=$?
DPID=""
[ $st = 0 ] || fail "de-dom0d exit status $st after SIGTERM"
grep -q "every page given back" "$T/daemon.log" || fail "daemon did not report giving pages back"
for n in 1 2 3; do
    st=$(guest_exit $n)
    cat "$T/g$n.guest"
    [ "$st" = 0 ] || fail "guest $n exit status $st after the daemon stopped"
done
echo "PASS: sigterm_restores"
