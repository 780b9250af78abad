#!/bin/bash
# xq-loop.sh - stress guest creation in dom0 (xqparts=loop, or 1,loop after
# part 1): create dexa, dexb and dexc as part 2 does, wait until each has
# loaded its image, destroy them, check dom0's sums, and repeat
# (xqloops=N, default 12). Each round prints "RESULT loop-N: PASS|FAIL".
# With xqloopd=1 de-dom0d runs (managing nothing) as in part 2.
# A diagnostic for the guest-creation failures in hypervisor/README.md:
# it tells whether they need part 1's sharing/reclaim, the daemon, or
# neither.
L="env LD_LIBRARY_PATH=/usr/local/lib"
CON=/var/log/xen/console
up() { cut -d' ' -f1 /proc/uptime; }
log() { echo "XQ[$(up)] $*"; }
since() { awk -v a="$(up)" -v b="$1" 'BEGIN{printf "%d", a-b}'; }
N=$(sed -n 's/.*\bxqloops=\([0-9]*\).*/\1/p' /proc/cmdline); N=${N:-12}
if grep -q '\bxqloopd=1\b' /proc/cmdline; then
  printf 'backend xen\nscan_interval 1000\n' > /etc/de-dom0d.conf
  $L /usr/local/sbin/de-dom0d -f /etc/de-dom0d.conf > /var/log/de-dom0d.log 2>&1 &
  log "de-dom0d started (pid $!)"
fi
[ -f /tmp/dom0-sums ] || /root/xq-dom0-sums.sh init
pass=0 fail=0
for i in $(seq 1 $N); do
  t0=$(up) why=""
  dmesg -c >/dev/null
  for g in dexa dexb dexc; do
    : > $CON/guest-$g.log
    if ! xl create /root/guest/$g.cfg >/tmp/xl-$g.out 2>&1; then
      why="$why xl-create-$g"; sed "s/^/  [xl $g] /" /tmp/xl-$g.out | tail -8
    fi
  done
  for g in dexa dexb dexc; do
    t1=$(up)
    until grep -q "DEXW LOADED" $CON/guest-$g.log 2>/dev/null; do
      xl list $g >/dev/null 2>&1 || break
      [ "$(since $t1)" -ge 240 ] && break
      sleep 2
    done
    grep -q "DEXW LOADED" $CON/guest-$g.log 2>/dev/null || {
      why="$why boot-$g"; tail -5 $CON/guest-$g.log | sed "s/^/  [$g console] /"; }
  done
  xl dmesg -c 2>/dev/null | grep -i -E "triple|crash|bug|assert|fatal" | sed 's/^/  [xl dmesg] /'
  dmesg | grep -i -E "segfault|general protection|malloc|abort|BUG|Oops" | sed 's/^/  [dom0 dmesg] /'
  for g in dexa dexb dexc; do xl list $g >/dev/null 2>&1 && xl destroy $g; done
  s=$(/root/xq-dom0-sums.sh check) || why="$why dom0-sums($s)"
  if [ -z "$why" ]; then pass=$((pass + 1)); log "RESULT loop-$i: PASS ($(since $t0) s)"
  else fail=$((fail + 1)); log "RESULT loop-$i: FAIL ($why)"; fi
done
log "loop: $pass passed, $fail failed of $N rounds; xl info free_memory $(xl info | awk '/^free_memory/ {print $3}') MiB"
