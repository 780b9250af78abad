#!/bin/sh
# setup.sh - does whatever set-up is still missing on a Debian 12 machine
# (run as root for the package step): Debian packages, deb-src, the xdelta3
# source, autoreconf, configure and build in ./build. Safe to run again:
# every step is skipped when already done.
#
#   scripts/setup.sh [--sanitizers]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

PKGS="build-essential autoconf automake libtool pkg-config dpkg-dev
      liblzo2-dev libzstd-dev liblz4-dev libxxhash-dev libcunit1-dev
      libevent-dev libxen-dev libdivsufsort-dev zstd"

say() { printf '%s\n' "setup: $*" >&2; }

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing="$missing $p"
done

# deb-src is needed for `apt-get source xdelta3`.
need_src=0
if [ ! -f third_party/xdelta3/xdelta3.c ]; then
    need_src=1
fi
enable_debsrc() {
    f=/etc/apt/sources.list.d/debian.sources
    if [ -f "$f" ] && ! grep -q '^Types:.*deb-src' "$f"; then
        say "enabling deb-src in $f"
        sed -i 's/^Types: deb$/Types: deb deb-src/' "$f"
        return 0
    fi
    if [ -f /etc/apt/sources.list ] && ! grep -q '^deb-src' /etc/apt/sources.list &&
       grep -q '^deb ' /etc/apt/sources.list; then
        say "enabling deb-src in /etc/apt/sources.list"
        sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >> /etc/apt/sources.list
        return 0
    fi
    return 1
}

if [ -n "$missing" ] || [ $need_src = 1 ]; then
    if [ "$(id -u)" != 0 ]; then
        say "missing packages:$missing (or the xdelta3 source): run as root"
        exit 1
    fi
    updated=0
    if [ $need_src = 1 ] && enable_debsrc; then updated=1; fi
    if [ -n "$missing" ] || [ $updated = 1 ] ||
       ! apt-cache showsrc xdelta3 >/dev/null 2>&1; then
        say "apt-get update"
        apt-get update -qq
    fi
    if [ -n "$missing" ]; then
        say "installing:$missing"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    fi
fi

if [ $need_src = 1 ]; then
    say "fetching the xdelta3 source (apt-get source xdelta3) into third_party/"
    mkdir -p third_party/.xd3
    (cd third_party/.xd3 && apt-get source -qq xdelta3 >/dev/null 2>&1) || {
        say "apt-get source xdelta3 failed (is deb-src enabled?)"; exit 1; }
    d=$(find third_party/.xd3 -maxdepth 1 -type d -name 'xdelta3-*' | head -n 1)
    [ -f "$d/xdelta3.c" ] || { say "no xdelta3.c in $d"; exit 1; }
    rm -rf third_party/xdelta3
    mv "$d" third_party/xdelta3
    rm -rf third_party/.xd3
fi

if [ ! -x configure ] || [ configure.ac -nt configure ]; then
    say "autoreconf"
    autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
fi

builddir=build
cfg=""
if [ "${1:-}" = "--sanitizers" ]; then builddir=build-san; cfg="--enable-sanitizers"; fi
mkdir -p "$builddir"
if [ ! -f "$builddir/config.status" ] || [ configure -nt "$builddir/config.status" ]; then
    say "configure $cfg (in $builddir/)"
    (cd "$builddir" && ../configure -q $cfg)
fi
say "make (in $builddir/)"
make -s -C "$builddir" -j"$(nproc)" >/dev/null
say "ready: $builddir/"
