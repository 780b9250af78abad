#!/bin/sh
# live_three_guests.sh - de-dom0d with three de-guest guests (two VMs of one
# workload, one different; corpus slices when ../shared/corpus is there,
# else the shipped samples) running an access pattern: the daemon must
# reclaim pages of every kind (shared, patched, compressed, swapped), the
# guests must fault them back, and every guest must verify with zero wrong
# bytes. Then SIGTERM: the daemon gives every page back and exits 0.
. "$(dirname "$0")/lib.sh"

# A store budget well under what the encodings need, so swapping happens.
write_conf "store_budget 1M"
start_daemon
for n in 1 2 3; do
    start_guest $n 14 --rate 400 --hot 10 --hot-weight 90 --write-ratio 25
done

max_sh=0; max_pa=0; max_co=0; max_sw=0
for i in $(seq 1 120); do
    sleep 0.25
    s=$(ctl stats --json 2>/dev/null | sed 's/"guests":.*//') || continue
    v() { echo "$s" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
    sh=$(v pages_shared); pa=$(v pages_patched); co=$(v pages_compressed); sw=$(v pages_swapped)
    [ "${sh:-0}" -gt $max_sh ] && max_sh=$sh
    [ "${pa:-0}" -gt $max_pa ] && max_pa=$pa
    [ "${co:-0}" -gt $max_co ] && max_co=$co
    [ "${sw:-0}" -gt $max_sw ] && max_sw=$sw
    [ $max_sh -gt 0 ] && [ $max_pa -gt 0 ] && [ $max_co -gt 0 ] && [ $max_sw -gt 0 ] && [ $i -gt 20 ] && break
done
echo "peak pages: shared $max_sh patched $max_pa compressed $max_co swapped $max_sw"
[ $max_sh -gt 0 ] || fail "no page was shared"
[ $max_pa -gt 0 ] || fail "no page was patched"
[ $max_co -gt 0 ] || fail "no page was compressed"
[ $max_sw -gt 0 ] || fail "no page was swapped"

for n in 1 2 3; do
    st=$(guest_exit $n)
    cat "$T/g$n.guest"
    [ "$st" = 0 ] || fail "guest $n exit status $st (wrong bytes or error)"
    grep -q "wrong_pages=0" "$T/g$n.guest" || fail "guest $n reports wrong pages"
done
faults=$(json_num faults)
errors=$(json_num errors)
echo "faults served: $faults, errors: $errors"
[ "${faults:-0}" -gt 0 ] || fail "no fault was served"
[ "${errors:-1}" = 0 ] || fail "the daemon counted $errors errors"
ctl stats
kill -TERM "$DPID"
wait "$DPID"; st=$?
DPID=""
[ $st = 0 ] || fail "de-dom0d exit status $st after SIGTERM"
echo "PASS: live_three_guests"
