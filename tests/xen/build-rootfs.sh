#!/bin/bash
# Build a Debian bookworm dom0 rootfs with the Xen 4.17 toolstack (xl), qemu-system-xen (HVM device model)
# and a Debian kernel with a small initramfs (virtio_blk + ext4). ~8 min on 2 cores.
# Usage: build-rootfs.sh [WORKDIR=${TMPDIR:-/tmp}/xq]
set -e
W=${1:-/tmp/de-xen-test}; R=$W/rootfs
mkdir -p $W
if [ ! -x $R/usr/sbin/xl ]; then
  rm -rf $R; mkdir -p $R
  debootstrap --variant=minbase \
    --include=xen-utils-4.17,xenstore-utils,linux-image-amd64,initramfs-tools,busybox,kmod,udev,iproute2,procps,systemd-sysv \
    bookworm $R http://deb.debian.org/debian
fi
for d in proc sys dev; do mount --bind /$d $R/$d; done
trap 'for d in proc sys dev; do umount $R/$d 2>/dev/null; done' EXIT
chroot $R env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-system-xen
sed -i 's/^MODULES=.*/MODULES=list/' $R/etc/initramfs-tools/initramfs.conf
grep -q '^virtio_blk' $R/etc/initramfs-tools/modules || printf 'virtio_pci\nvirtio_blk\next4\n' >> $R/etc/initramfs-tools/modules
KV=$(ls $R/lib/modules | sort -V | tail -1)
chroot $R update-initramfs -u -k $KV
echo '/dev/vda / ext4 rw 0 1' > $R/etc/fstab; echo xqdom0 > $R/etc/hostname
echo "rootfs ready: $R (kernel $KV)"
