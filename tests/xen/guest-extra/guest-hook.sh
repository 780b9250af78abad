#!/bin/sh
# Runs inside the PVH test guests (busybox initramfs, see make-guest-initrd.sh).
# dexw=IMAGE on the kernel command line (de-dom0d test, xq-daemon.sh): run
# /dex-workload on /img/IMAGE (a slice of a real VM's memory) until dom0
# says exit. Otherwise (libdexc test, xq-hook.sh): write 48 MiB of random
# data to a tmpfs, record checksums, then re-check them every 8 s while
# dom0 reclaims and restores the guest's pages.
img=$(sed -n 's/.*\bdexw=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$img" ]; then
  # the other images only take memory
  for f in /img/*; do [ "$f" = "/img/$img" ] || rm -f "$f"; done
  /dex-workload "/img/$img" 64
  echo "GUEST WORKLOAD rc=$?"
  return 0 2>/dev/null || exit 0
fi
rm -rf /img
mkdir -p /pat && mount -t tmpfs -o size=96m tmpfs /pat
i=0
while [ $i -lt 12 ]; do
  dd if=/dev/urandom of=/pat/f$i bs=1M count=4 2>/dev/null
  i=$((i+1))
done
md5sum /pat/f* > /sums
echo "GUEST PATTERN WRITTEN"
ok=1; r=0
while [ $r -lt 20 ]; do
  sleep 8
  if md5sum -c /sums >/dev/null 2>&1; then echo "GUEST VERIFY round $r ok"; else echo "GUEST VERIFY round $r BAD"; ok=0; fi
  # writes too: rewrite one file and record its new sum
  dd if=/dev/urandom of=/pat/f$((r % 12)) bs=1M count=1 conv=notrunc 2>/dev/null
  md5sum /pat/f* > /sums
  r=$((r+1))
done
[ $ok = 1 ] && echo "GUEST VERIFY PASS" || echo "GUEST VERIFY FAIL"
