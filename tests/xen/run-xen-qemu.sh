#!/bin/bash
# Boot Xen (multiboot1 via QEMU -kernel) + Debian PV dom0 from an ext4 image under pure TCG.
# Usage: run-xen-qemu.sh [WORKDIR=${TMPDIR:-/tmp}/xq]
# Env: XQEXTRA="xqshare=hvm" (extra dom0 cmdline words, read by test scripts)
#      XEN=path to uncompressed xen ELF (default $W/xen-4.17.elf; xen.gz must be gunzipped for QEMU's multiboot loader)
#      XQTESTS=pv,pvh,hvm  TIMEOUT=1500  SMP=2  MEM=3072  XENARGS=... DOM0ARGS=...  LOG=$W/run.log  SHELL_AT_END=0
#      XQ_CPU=max,-smap  XQ_ACCEL=tcg (e.g. tcg,thread=single): QEMU's -cpu and -accel
# CPU model: -cpu max,-smap  (with SMAP exposed, Debian's Xen 4.17 PV dom0 dies with a #PF at its first
#            bounce frame under TCG). max gives AMD SVM + NPT (+vGIF), so Xen reports "HVM: SVM enabled" and HAP.
W=${1:-/tmp/de-xen-test}; HERE=$(cd $(dirname $0); pwd)
XEN=${XEN:-$W/xen-4.17.elf}; LOG=${LOG:-$W/run.log}
ACCEL=${XQ_ACCEL:-tcg}; CPU=${XQ_CPU:-max,-smap}
TIMEOUT=${TIMEOUT:-1500}; SMP=${SMP:-2}; MEM=${MEM:-3072}; XQTESTS=${XQTESTS:-pv,pvh,hvm}
XENARGS=${XENARGS:-"console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M dom0_max_vcpus=$SMP loglvl=all guest_loglvl=all noreboot"}
DOM0ARGS=${DOM0ARGS:-"root=/dev/vda rw console=hvc0 earlyprintk=xen loglevel=4 init=/usr/local/sbin/xq-test-init xqtests=$XQTESTS"}
DOM0ARGS="$DOM0ARGS $XQEXTRA"
[ "${SHELL_AT_END:-0}" = 1 ] && DOM0ARGS="$DOM0ARGS xqshell=1"
DOM0ARGS_ESC=${DOM0ARGS//,/,,}   # QEMU splits multiboot modules on "," ; ",," is a literal comma
case "$XEN" in *.gz) gunzip -c "$XEN" > $W/xen.elf; XEN=$W/xen.elf;; esac
start=$(date +%s)
timeout $TIMEOUT nice -n 5 qemu-system-x86_64 -machine pc -accel $ACCEL -cpu $CPU -smp $SMP -m $MEM \
  -nographic -no-reboot -net none \
  -drive file=$W/dom0.img,if=virtio,format=raw,cache=unsafe \
  -kernel "$XEN" -append "$XENARGS" \
  -initrd "$W/dom0-vmlinuz $DOM0ARGS_ESC,$W/dom0-initrd" 2>&1 | $HERE/tsline.sh | tee $LOG
rc=${PIPESTATUS[0]}
echo "qemu rc=$rc, wall time $(( $(date +%s) - start ))s, log: $LOG"
grep -E 'XQ\[.*RESULT' $LOG
# exit status for CI: 0 only if at least one RESULT line and none says FAIL
grep -q 'XQ\[.*RESULT .*FAIL' $LOG && exit 1
grep -q 'XQ\[.*RESULT' $LOG || exit 1
exit 0
