#!/bin/sh
# build-xen.sh [WORKDIR] - build the Difference Engine hypervisor.
#
# Fetches Debian's Xen 4.17.5 source package (apt-get source, needs deb-src),
# applies patches/series (-p1, no fuzz), configures it with the config of
# Debian's own xen-hypervisor-4.17-amd64 package plus CONFIG_MEM_DEX=y, and
# builds the hypervisor only (no tools) with -Werror, as Xen always does.
#
# WORKDIR (default /tmp/de-xen; never inside the repository) keeps:
#   dl/          downloaded source package and hypervisor .deb
#   xen-orig/    pristine unpacked Debian source (never built)
#   xen-src/     the patched build tree (incremental rebuilds reuse it; when
#                the series changes, the files it touches are reset from
#                xen-orig and the new series is applied)
#   build.log    log of the last make
# Results:
#   xen-dex.gz     install as /boot/xen-4.17-dex.gz (see README.md)
#   xen-dex.elf    uncompressed multiboot ELF (QEMU -kernel, tests/xen)
#   xen-dex.config the .config used
#
# Environment: JOBS (default: nproc); XEN_EXTRA_CONFIG: more .config lines,
# e.g. "CONFIG_DEBUG=y" for a debug hypervisor (assertions, page poisoning
# checks; use its own WORKDIR).  Needs flex, bison, gcc, make, python3,
# dpkg-dev (dpkg-source) and deb-src entries for bookworm.
set -eu

VER=4.17.5+72-g01140da4e8-1
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
W=${1:-/tmp/de-xen}
JOBS=${JOBS:-$(nproc)}

die() { echo "build-xen.sh: $*" >&2; exit 1; }

mkdir -p "$W"
W=$(cd "$W" && pwd)
case "$W/" in "$REPO"/*) die "WORKDIR $W is inside the repository; use another place" ;; esac

for t in flex bison gcc make python3 dpkg-source apt-get patch; do
    command -v $t >/dev/null 2>&1 || die "missing $t (apt-get install flex bison build-essential python3 dpkg-dev)"
done

SERIES=$HERE/patches/series
[ -f "$SERIES" ] || die "no $SERIES"
PATCHES=$(grep -v '^[[:space:]]*\(#\|$\)' "$SERIES" | sed "s|^|$HERE/patches/|")
for p in $PATCHES; do [ -f "$p" ] || die "series names missing patch $p"; done

# 1. Debian source and Debian's hypervisor package (for its .config)
mkdir -p "$W/dl"
if [ ! -f "$W/dl/xen_$VER.dsc" ]; then
    echo "== fetching xen $VER source"
    (cd "$W/dl" && apt-get source --download-only "xen=$VER") ||
        die "apt-get source failed (deb-src for bookworm enabled? apt-get update?)"
fi
if [ ! -f "$W/dl/hv/boot/xen-4.17-amd64.config" ]; then
    echo "== fetching xen-hypervisor-4.17-amd64 $VER (for Debian's config)"
    (cd "$W/dl" && apt-get download "xen-hypervisor-4.17-amd64=$VER") || die "apt-get download failed"
    rm -rf "$W/dl/hv"
    dpkg-deb -x "$W"/dl/xen-hypervisor-4.17-amd64_*.deb "$W/dl/hv"
fi
if [ ! -f "$W/xen-orig/xen/Makefile" ]; then
    echo "== unpacking"
    rm -rf "$W/xen-orig" "$W/xen-src"
    (cd "$W/dl" && dpkg-source -x "xen_$VER.dsc" "$W/xen-orig") >/dev/null
fi

# 2. Patch state: reset what the previous series touched, apply the new one
SRC=$W/xen-src
WANT=$(cat $PATCHES | sha256sum | cut -d' ' -f1)
if [ ! -d "$SRC/xen" ]; then
    echo "== copying pristine tree"
    cp -a "$W/xen-orig" "$SRC"
    rm -f "$SRC/.de-series.sha"
    rm -rf "$SRC/.de-applied"
fi
HAVE=$(cat "$SRC/.de-series.sha" 2>/dev/null || true)
if [ "$HAVE" != "$WANT" ]; then
    if [ -d "$SRC/.de-applied" ]; then
        echo "== series changed: resetting the files the old series touched"
        for f in $(sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$SRC"/.de-applied/*.patch | sort -u); do
            if [ -f "$W/xen-orig/$f" ]; then cp -p "$W/xen-orig/$f" "$SRC/$f"; else rm -f "$SRC/$f"; fi
        done
        rm -rf "$SRC/.de-applied"
    fi
    rm -f "$SRC/.de-series.sha"
    mkdir -p "$SRC/.de-applied"
    for p in $PATCHES; do
        echo "== applying $(basename "$p")"
        out=$(patch -d "$SRC" -p1 -F0 -N --no-backup-if-mismatch < "$p") ||
            { echo "$out"; die "$(basename "$p") does not apply cleanly"; }
        case "$out" in *fuzz*|*offset*) echo "$out" ;; esac
        cp "$p" "$SRC/.de-applied/"
    done
    echo "$WANT" > "$SRC/.de-series.sha"
fi

# 3. Configuration: Debian's config + CONFIG_MEM_DEX=y
CONF_WANT=$W/config.want
{ cat "$W/dl/hv/boot/xen-4.17-amd64.config"; echo "CONFIG_MEM_DEX=y"
  [ -z "${XEN_EXTRA_CONFIG:-}" ] || printf '%s\n' $XEN_EXTRA_CONFIG; } > "$CONF_WANT.new"
if [ ! -f "$SRC/xen/.config" ] || ! cmp -s "$CONF_WANT.new" "$CONF_WANT"; then
    echo "== configuring (Debian config + CONFIG_MEM_DEX=y)"
    cp "$CONF_WANT.new" "$SRC/xen/.config"
    make -C "$SRC/xen" -s olddefconfig XEN_TARGET_ARCH=x86_64
    mv "$CONF_WANT.new" "$CONF_WANT"
else
    rm -f "$CONF_WANT.new"
fi
for c in CONFIG_MEM_DEX CONFIG_MEM_SHARING CONFIG_MEM_PAGING CONFIG_HVM; do
    grep -q "^$c=y" "$SRC/xen/.config" || die "$c is not enabled in the resulting .config"
done

# 4. Build
echo "== building (make -j$JOBS, log in $W/build.log)"
start=$(date +%s)
if ! make -C "$SRC/xen" -j"$JOBS" XEN_TARGET_ARCH=x86_64 > "$W/build.log" 2>&1; then
    grep -n -B3 -A10 -E 'error|Error' "$W/build.log" | head -60 >&2
    die "build failed, see $W/build.log"
fi
if grep -q -i 'warning:' "$W/build.log"; then
    grep -i 'warning:' "$W/build.log" >&2
    die "build produced warnings, see $W/build.log"
fi
cp "$SRC/xen/xen.gz" "$W/xen-dex.gz"
cp "$SRC/xen/xen" "$W/xen-dex.elf"
cp "$SRC/xen/.config" "$W/xen-dex.config"
echo "built in $(( $(date +%s) - start )) s, warning-free:"
echo "  $W/xen-dex.gz  (install: cp to /boot/xen-4.17-dex.gz, see hypervisor/README.md)"
echo "  $W/xen-dex.elf (multiboot ELF for QEMU)"
grep -E '^CONFIG_(MEM_DEX|MEM_SHARING|MEM_PAGING)=' "$SRC/xen/.config"
