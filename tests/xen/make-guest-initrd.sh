#!/bin/bash
# Tiny busybox initramfs for domU tests: prints "GUEST OK" and powers off.
set -e
W=${1:-/tmp/de-xen-test}; mkdir -p $W/debs $W/hosttools
CPIO=$(command -v cpio || true)
if [ -z "$CPIO" ]; then (cd $W/debs && apt-get download cpio) ; dpkg-deb -x $W/debs/cpio_*.deb $W/hosttools; CPIO=$W/hosttools/bin/cpio; fi
if [ ! -x $W/bb/bin/busybox ]; then (cd $W/debs && apt-get download busybox-static); dpkg-deb -x $W/debs/busybox-static_*.deb $W/bb; fi
G=$W/gird; rm -rf $G; mkdir -p $G/{bin,proc,sys,dev}; cp $W/bb/bin/busybox $G/bin/
cat > $G/init <<'EOI'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev 2>/dev/null
echo "=== GUEST INIT REACHED uptime=$(cut -d' ' -f1 /proc/uptime) ==="
dmesg | grep -i -E 'Hypervisor detected|Booting paravirtualized|Xen HVM|PVH|xen:' | head -8
echo "GUEST MEM: $(grep MemTotal /proc/meminfo)"
[ -x /guest-hook.sh ] && /guest-hook.sh
echo "=== GUEST OK ==="
sleep 1
poweroff -f
EOI
chmod +x $G/init
[ -d $W/guest-extra ] && cp -a $W/guest-extra/. $G/
(cd $G && find . | $CPIO -o -H newc 2>/dev/null | gzip) > $W/guest-initrd.gz
echo "guest initrd: $W/guest-initrd.gz"
