#!/bin/bash
# check-xen.sh [WORKDIR] - end-to-end test of the Difference Engine on Xen
# (`make check-xen`), inside QEMU/TCG (no KVM needed; QEMU emulates AMD SVM
# + NPT, so the EPT paths are not exercised here):
#   1. builds the patched hypervisor (hypervisor/build-xen.sh, XENW)
#   2. builds libdexc (with the Xen backend), de-dom0d, de-ctl and
#      tests/xen/dexc-xen-test on the host against Debian's libxen-dev, and
#      the guests' static workload (tests/xen/dex-workload.c)
#   3. builds a Debian dom0 rootfs once (debootstrap, ~7.5 min) and a
#      busybox guest initramfs with the workload and its images: slices of
#      real VM memory (../shared/corpus when present, else samples/)
#   4. packs the dom0 image with the project's binaries, boots Xen + dom0,
#      runs overlay/root/xq-hook.sh there: part 1, a PVH guest and
#      dexc-xen-test on it (open, query, harvest, share zero pages,
#      reclaim, serve faults, restore, close) then the guest's verdict;
#      part 2 (xq-daemon.sh), de-dom0d -x on three PVH guests configured
#      through xenstore (see that script)
#   5. prints the RESULT lines; exit status 0 only if there is at least one
#      and none is FAIL; on failure the log tails are in the RESULT block.
# Env: XENW (hypervisor work dir, default /tmp/de-xen), TIMEOUT (QEMU,
#      3600 s), XQPARTS (1,2: which parts), SHELL_AT_END=1 (a shell in dom0
#      after the test).
# Diagnostics (see hypervisor/README.md, "Known problem"): XQPARTS=loop
#      (or 1,loop) runs overlay/root/xq-loop.sh instead of part 2: guest
#      creation rounds, "loop xqloops=N" sets their number and
#      "xqsteps=share" (etc.) a subset of part 1's steps; XQ_XEN boots
#      another hypervisor ELF (e.g. Debian's own, gunzipped); XQ_CPU and
#      XQ_ACCEL change QEMU's -cpu (max,-smap) and -accel (tcg).
# Needs root, qemu-system-x86, debootstrap, e2fsprogs, libxen-dev, and what
# hypervisor/build-xen.sh needs. Writes only under WORKDIR and XENW.
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
W=${1:-/tmp/de-xen-test}
XENW=${XENW:-/tmp/de-xen}
mkdir -p "$W"
W=$(cd "$W" && pwd)
case "$W/" in "$TOP"/*) echo "WORKDIR must be outside the repository" >&2; exit 2 ;; esac
for t in qemu-system-x86_64 debootstrap mkfs.ext4 pkg-config zstd python3; do
  command -v $t >/dev/null || { echo "missing $t (apt-get install qemu-system-x86 debootstrap e2fsprogs pkg-config zstd python3)" >&2; exit 2; }
done
pkg-config --exists xencontrol xenforeignmemory xenevtchn xencall || { echo "libxen-dev missing" >&2; exit 2; }

echo "== 1. hypervisor"
"$TOP/hypervisor/build-xen.sh" "$XENW"

echo "== 2. libdexc (Xen backend), de-dom0d, de-ctl, dexc-xen-test, dex-workload"
B=$W/build
mkdir -p "$B"
# a build directory configured from another checkout would build that one
if [ ! -f "$B/config.status" ] || ! grep -qx "srcdir='$TOP'" "$B/config.status"; then
  rm -rf "$B"; mkdir -p "$B"
  (cd "$B" && "$TOP/configure" -q)
fi
grep -q '^#define HAVE_XEN 1' "$B/config.h" || { echo "configure did not find the Xen libraries" >&2; exit 2; }
make -s -C "$B" -j"$(nproc)" >/dev/null
gcc -O2 -Wall -Wextra -Wno-unused-parameter -I"$TOP/libdexc/include" \
    -o "$W/dexc-xen-test" "$HERE/dexc-xen-test.c" -L"$B/libdexc/.libs" -ldexc
gcc -O2 -static -Wall -Wextra -o "$W/dex-workload" "$HERE/dex-workload.c"

# The guests' images: the same offsets of two VMs running the same web
# workload (dexa and dexb load web-1: alike; dexc loads web-2: similar).
CORPUS=$TOP/../shared/corpus
slice() {   # slice SRC.ram.zst DST: 384 KiB of every 2 MiB (24 MiB of 128)
  zstd -dc "$1" | python3 -c '
import sys
d = sys.stdin.buffer.read()
out = b"".join(d[o:o + (384 << 10)] for o in range(0, len(d), 2 << 20))
sys.stdout.buffer.write(out)' > "$2"
}
IMG=$W/guest-img-384k
if [ ! -s "$IMG/web-2.ram" ]; then
  rm -rf "$IMG"; mkdir -p "$IMG"
  if [ -f "$CORPUS/vm-web-1.ram.zst" ] && [ -f "$CORPUS/vm-web-2.ram.zst" ]; then
    slice "$CORPUS/vm-web-1.ram.zst" "$IMG/web-1.ram"
    slice "$CORPUS/vm-web-2.ram.zst" "$IMG/web-2.ram"
  else
    echo "no corpus at $CORPUS: the guests load samples/ (8 MiB each)"
    zstd -dc "$TOP/samples/vm-web-1.ram.zst" > "$IMG/web-1.ram"
    zstd -dc "$TOP/samples/vm-web-2.ram.zst" > "$IMG/web-2.ram"
  fi
fi
ls -l "$IMG"

echo "== 3. dom0 rootfs and guest initrd"
"$HERE/build-rootfs.sh" "$W"
rm -rf "$W/guest-extra"; cp -a "$HERE/guest-extra" "$W/guest-extra"
mkdir -p "$W/guest-extra/img"
cp "$W/dex-workload" "$W/guest-extra/"
cp "$IMG"/*.ram "$W/guest-extra/img/"
rm -f "$W/guest-initrd.gz"
"$HERE/make-guest-initrd.sh" "$W"

echo "== 4. dom0 image"
rm -rf "$W/extra-overlay"
mkdir -p "$W/extra-overlay/usr/local/lib" "$W/extra-overlay/usr/local/bin" "$W/extra-overlay/usr/local/sbin"
cp -a "$HERE/overlay/." "$W/extra-overlay/"
cp -a "$B"/libdexc/.libs/libdexc.so* "$W/extra-overlay/usr/local/lib/"
cp "$W/dexc-xen-test" "$W/extra-overlay/usr/local/bin/"
cp "$B/dom0d/.libs/de-dom0d" "$B/tools/de-ctl/de-ctl" "$W/extra-overlay/usr/local/sbin/"
# shared libraries the dom0 rootfs may lack (host and rootfs are both bookworm)
for lib in $( (ldd "$B/dom0d/.libs/de-dom0d"; ldd "$B/tools/de-ctl/de-ctl") | awk '/=> \// {print $3}' | sort -u); do
  # never the Xen libraries: dom0 has its own (the host's libxen-dev may be
  # a newer 4.17 point release; xl segfaults with a mix)
  case "$(basename "$lib")" in libc.so*|libm.so*|ld-linux*|libxen*) ;; *) cp -L "$lib" "$W/extra-overlay/usr/local/lib/" ;; esac
done
rm -f "$W/rootfs/root/xq-hook.sh" "$W"/rootfs/usr/local/lib/libxen* "$W/rootfs/usr/local/bin/xs-test"   # left by older runs
"$HERE/build-image.sh" "$W"

echo "== 5. boot Xen + dom0 in QEMU"
rc=0
t0=$(date +%s)
XEN="${XQ_XEN:-$XENW/xen-dex.elf}" XQTESTS=none LOG="$W/check-xen.log" TIMEOUT=${TIMEOUT:-3600} \
  XQEXTRA="xqparts=${XQPARTS:-1,2}" "$HERE/run-xen-qemu.sh" "$W" > "$W/qemu.out" 2>&1 || rc=$?
tail -3 "$W/qemu.out"
echo "== results (full log: $W/check-xen.log; QEMU ran $(( $(date +%s) - t0 )) s)"
grep -E 'RESULT' "$W/check-xen.log" | sed 's/^.*XQ\[[^]]*\] //' || true
if ! grep -q 'RESULT' "$W/check-xen.log"; then
  echo "---- tail of $W/check-xen.log ----"; tail -40 "$W/check-xen.log"
  echo "RESULT check-xen: FAIL (no results; see $W/check-xen.log)"; exit 1
fi
# Every expected result must be there and PASS, and dom0 must have
# finished: a QEMU that died or timed out half-way is a failure, whatever
# the results so far said.
parts=${XQPARTS:-1,2}
expect=""
case ",$parts," in *,1,*) expect="open query harvest share reclaim faults restore-all dex-guest-verify" ;; esac
case ",$parts," in *,2,*) expect="$expect dex-daemon-start dex-reclaim dex-free-memory dex-xenstore dex-verify-1 dex-disable-enable dex-destroy dex-sigterm dex-verify-2 dex-dom0-intact" ;; esac
missing=""
for r in $expect; do
  grep -q "XQ\[.*RESULT $r: PASS" "$W/check-xen.log" || missing="$missing $r"
done
done_mark=1
grep -q 'XQ\[.*ALL DONE' "$W/check-xen.log" || { done_mark=0; [ $rc -ne 0 ] || rc=1; }
[ -z "$missing" ] || [ $rc -ne 0 ] || rc=1
if [ $rc -ne 0 ]; then
  echo "---- failures and log tails (from $W/check-xen.log) ----"
  grep -E 'RESULT .*FAIL|timeout|\[de-dom0d\]|console\]' "$W/check-xen.log" | tail -80
  [ -z "$missing" ] || echo "(no PASS for:$missing)"
  [ $done_mark = 1 ] || { echo "(dom0 did not finish: QEMU timed out after ${TIMEOUT:-3600} s or crashed; see $W/qemu.out)"; tail -30 "$W/check-xen.log"; }
  echo "RESULT check-xen: FAIL"
else
  echo "RESULT check-xen: PASS"
fi
exit $rc
