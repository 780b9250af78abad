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

# The pipeline's cumulative per-kind reclaim counts: on a tight store
# budget a freshly patched or compressed page moves on to the swap file in
# the same slice, so the gauges alone may never show it.
rcount() {  # rcount JSON KIND
    echo "$1" | sed -n "s/.*\"reclaimed\":{[^}]*\"$2\":\([0-9]*\).*/\1/p"
}
sh=0; pa=0; co=0; sw=0
for i in $(seq 1 160); do
    sleep 0.25
    s=$(ctl stats --json 2>/dev/null | sed 's/"guests":.*//') || continue
    sh=$(rcount "$s" shared); pa=$(rcount "$s" patched)
    co=$(rcount "$s" compressed); sw=$(rcount "$s" swapped)
    [ "${sh:-0}" -gt 0 ] && [ "${pa:-0}" -gt 0 ] && [ "${co:-0}" -gt 0 ] &&
        [ "${sw:-0}" -gt 0 ] && [ $i -gt 20 ] && break
done
echo "pages reclaimed, by kind: shared ${sh:-0} patched ${pa:-0} compressed ${co:-0} swapped ${sw:-0}"
[ "${sh:-0}" -gt 0 ] || fail "no page was shared"
[ "${pa:-0}" -gt 0 ] || fail "no page was patched"
[ "${co:-0}" -gt 0 ] || fail "no page was compressed"
[ "${sw:-0}" -gt 0 ] || fail "no page was swapped"
# and encoded pages came back through faults
enc_faults=0
for k in patched compressed swapped; do
    c=$(echo "$s" | sed -n "s/.*\"fault_latency\":.*\"$k\":{\"count\":\([0-9]*\).*/\1/p")
    echo "faults on $k pages: ${c:-0}"
    enc_faults=$((enc_faults + ${c:-0}))
done

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
[ $enc_faults -gt 0 ] || fail "no patched, compressed or swapped page was faulted back"
[ "${errors:-1}" = 0 ] || fail "the daemon counted $errors errors"
ctl stats
kill -TERM "$DPID"
wait "$DPID"; st=$?
DPID=""
[ $st = 0 ] || fail "de-dom0d exit status $st after SIGTERM"
echo "PASS: live_three_guests"
