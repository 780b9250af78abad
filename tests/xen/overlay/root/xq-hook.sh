#!/bin/bash
# dom0 side of tests/xen/check-xen.sh. Part 1: start a PVH guest that
# writes known data, run dexc-xen-test (libdexc's Xen backend) on it, let
# the guest verify its data. Part 2 (xq-daemon.sh): de-dom0d on three
# guests through xenstore. RESULT lines are prefixed XQ[...] for
# run-xen-qemu.sh. xqparts=1,2 on the dom0 command line picks parts.
L="env LD_LIBRARY_PATH=/usr/local/lib"   # our binaries only, never xl
up() { cut -d' ' -f1 /proc/uptime; }
log() { echo "XQ[$(up)] $*"; }
clog=/var/log/xen/console/guest-dexpvh.log
log "DEX: xl info: $(xl info | grep -E 'xen_version|virt_caps' | tr -s ' ' | tr '\n' ' ')"
# dom0's own memory must come through untouched: sums of the guest kernel
# and initrd (page cache) and of a 64 MiB canary in tmpfs (anonymous-like
# dom0 memory), checked again at the end of part 2 (xq-daemon.sh)
/root/xq-dom0-sums.sh init
PARTS=$(sed -n 's/.*\bxqparts=\([^ ]*\).*/\1/p' /proc/cmdline); PARTS=${PARTS:-1,2}
case ",$PARTS," in *,1,*) ;; *,loop,*) exec /root/xq-loop.sh ;; *) exec /root/xq-daemon.sh ;; esac
if ! xl create /root/guest/dex-pvh.cfg; then log "RESULT dex-guest-create: FAIL"; exit 1; fi
domid=$(xl domid dexpvh)
log "DEX: guest dexpvh is d$domid"
for i in $(seq 1 200); do grep -q "GUEST PATTERN WRITTEN" $clog 2>/dev/null && break; sleep 2; done
if ! grep -q "GUEST PATTERN WRITTEN" $clog 2>/dev/null; then
  log "RESULT dex-guest-pattern: FAIL (guest never wrote its pattern)"; tail -30 $clog; xl destroy dexpvh; exit 1
fi
log "DEX: guest wrote its pattern; running dexc-xen-test d$domid"
# xqsteps=harvest,share,reclaim on the command line: a subset of part 1's steps
STEPS=$(sed -n 's/.*\bxqsteps=\([^ ]*\).*/\1/p' /proc/cmdline)
[ -n "$STEPS" ] && export DEXT_STEPS=$STEPS && log "DEX: part 1 steps: $STEPS"
timeout 600 $L /usr/local/bin/dexc-xen-test $domid ${DEX_SERVE_SECS:-60} 2>&1 | while IFS= read -r l; do log "$l"; done
log "DEX: dexc-xen-test done; xl info sharing: $(xl info | grep -E 'sharing' | tr -s ' ' | tr '\n' ' ')"
t0=$(up)
while xl list dexpvh >/dev/null 2>&1; do
  el=$(awk -v a="$(up)" -v b="$t0" 'BEGIN{printf "%d", a-b}')
  [ $el -ge 600 ] && { log "DEX: guest still running after 600 s, destroying"; xl destroy dexpvh; break; }
  sleep 3
done
sed 's/^/  [dexpvh console] /' $clog | grep -E "GUEST|VERIFY|BUG|Oops|panic|error" | tail -40
if grep -q "GUEST VERIFY PASS" $clog; then log "RESULT dex-guest-verify: PASS (guest data intact through reclaim/fault/restore)"
else log "RESULT dex-guest-verify: FAIL"; tail -40 $clog; fi
xl dmesg | grep -i -E "mem_dex|paging|sharing|d$domid" | tail -20 | sed 's/^/  [xl dmesg] /'
case ",$PARTS," in *,2,*) /root/xq-daemon.sh ;; *,loop,*) /root/xq-loop.sh ;; esac
