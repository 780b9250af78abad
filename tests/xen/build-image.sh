#!/bin/bash
# Apply the test overlay to the dom0 rootfs and pack it into an ext4 image (no loop mount needed).
# Usage: build-image.sh [WORKDIR=${TMPDIR:-/tmp}/xq]   -> $W/dom0.img, $W/dom0-vmlinuz, $W/dom0-initrd
# Extra files for dom0 (e.g. the daemon binary, /root/xq-hook.sh) can be dropped in $W/extra-overlay/.
set -e
W=${1:-/tmp/de-xen-test}; R=$W/rootfs; HERE=$(cd $(dirname $0); pwd)
[ -x $R/usr/sbin/xl ] || { echo "run build-rootfs.sh first"; exit 1; }
KV=$(ls $R/lib/modules | sort -V | tail -1)
cp -a $HERE/dom0-overlay/usr $HERE/dom0-overlay/root $R/
grep -q XENCONSOLED_ARGS $R/etc/default/xen || cat $HERE/dom0-overlay/etc/default/xen.xq-append >> $R/etc/default/xen
[ -d $W/extra-overlay ] && cp -a $W/extra-overlay/. $R/
cp $R/boot/vmlinuz-$KV $R/root/guest/vmlinuz
[ -f $W/guest-initrd.gz ] || $HERE/make-guest-initrd.sh $W
cp $W/guest-initrd.gz $R/root/guest/initrd.gz
cp $R/boot/vmlinuz-$KV $W/dom0-vmlinuz; cp $R/boot/initrd.img-$KV $W/dom0-initrd
rm -f $W/dom0.img
mkfs.ext4 -q -F -L xqroot -d $R $W/dom0.img 3G
echo "image: $W/dom0.img"
