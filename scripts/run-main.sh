#!/bin/sh
# run-main.sh - the main job, on a default that works anywhere (the uffd
# backend; root needed for userfaultfd): does the missing set-up, prints
# what de-analyze predicts for the shipped samples, then runs the live
# Difference Engine: de-dom0d with three de-guest guests loaded from the
# samples (two VMs of one workload, one different), printing the savings
# as they grow (from de-ctl), then stops the daemon with SIGTERM (every
# page goes back to its guest) and lets every guest verify every byte.
#
#   scripts/run-main.sh              # live run, about 40 s
#   scripts/run-main.sh --analyze [de-analyze options] [IMAGE...]
#                                    # offline analysis only
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh scripts/setup.sh
B=build
S=samples
SAMPLES="$S/vm-web-1.ram.zst $S/vm-web-2.ram.zst $S/vm-db-2.ram.zst"

if [ "${1:-}" = "--analyze" ]; then
    shift
    imgs=""
    for a in "$@"; do case "$a" in -*) ;; *) imgs=1 ;; esac; done
    [ -n "$imgs" ] || set -- "$@" $SAMPLES
    exec $B/tools/de-analyze/de-analyze --verify "$@"
fi

if [ "$(id -u)" != 0 ]; then
    echo "run-main: the live run needs root (userfaultfd); offline analysis:" >&2
    exec $B/tools/de-analyze/de-analyze --verify $SAMPLES
fi

echo "== what de-analyze predicts for the samples"
$B/tools/de-analyze/de-analyze --main-only $SAMPLES | sed -n '/^net saving/,/^  vm-/p'

T=$(mktemp -d /tmp/de-main.XXXXXX)
DPID=""
cleanup() { [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT INT TERM
cat > "$T/de.conf" <<CONF
socket "$T/ctl.sock"
guest_socket "$T/guests.sock"
scan_interval 100
share_group "samples"
CONF

echo "== live: de-dom0d and three 8 MiB guests (20 accesses/s each, 90% on a hot 10%)"
$B/dom0d/de-dom0d -f "$T/de.conf" > "$T/daemon.log" 2>&1 &
DPID=$!
for i in $(seq 1 50); do [ -S "$T/guests.sock" ] && break; sleep 0.1; done
GP=""
for n in vm-web-1 vm-web-2 vm-db-2; do
    $B/tools/de-guest/de-guest --socket "$T/guests.sock" --mem 8 \
        --image "$S/$n.ram.zst" --name "$n" --rate 20 --hot 10 \
        --hot-weight 90 --write-ratio 20 --duration 24 \
        > "$T/$n.out" 2>&1 &
    GP="$GP $!"
done
for t in 2 4 6 8 10 12 14 16 18 20; do
    sleep 2
    echo "-- t=${t}s"
    $B/tools/de-ctl/de-ctl -s "$T/ctl.sock" stats
done
echo "== SIGTERM: de-dom0d gives every page back"
kill -TERM "$DPID"
wait "$DPID" || { echo "de-dom0d failed"; cat "$T/daemon.log"; exit 1; }
DPID=""
grep -E "given back|not restored" "$T/daemon.log" || true
echo "== the guests verify every page"
rc=0
for p in $GP; do wait "$p" || rc=1; done
cat "$T"/*.out
[ $rc = 0 ] && echo "all guests verified: every byte is right" || echo "VERIFICATION FAILED"
exit $rc
