#!/bin/sh
# run-xen-tests.sh - the end-to-end test with real Xen (make check-xen),
# on a fresh Debian 12 machine too: installs what it needs (QEMU,
# debootstrap, the hypervisor's build tools), does the project's set-up
# (scripts/setup.sh), then builds the patched hypervisor, a dom0 image with
# de-dom0d and de-ctl, and boots it in QEMU/TCG (no KVM needed) with three
# PVH guests under de-dom0d. About 15 minutes when the hypervisor build and
# the dom0 root file system are cached in the work directories, 30 the
# first time. Prints RESULT lines; exit status 0 only if all passed.
#
#   scripts/run-xen-tests.sh [WORKDIR]     (default /var/tmp/de-xen-test)
# Environment: XENW (hypervisor build, default /var/tmp/de-xen).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
[ "$(id -u)" = 0 ] || { echo "run-xen-tests.sh needs root (debootstrap, loop images)" >&2; exit 1; }

sh scripts/setup.sh

need=""
for p in qemu-system-x86 debootstrap e2fsprogs flex bison dpkg-dev \
         build-essential python3 zstd cpio; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        need="$need $p"
done
if [ -n "$need" ]; then
    echo "run-xen-tests: apt-get install$need"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need >/dev/null
fi

W=${1:-/var/tmp/de-xen-test}
export XENW=${XENW:-/var/tmp/de-xen}
mkdir -p "$W" "$XENW"
exec make -C build check-xen CHECK_XEN_WORKDIR="$W"
