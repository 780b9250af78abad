#!/bin/sh
# run-main.sh - the main job on a default that works anywhere: does the
# missing set-up (scripts/setup.sh), then runs de-analyze on the shipped
# samples (two VMs of one workload and one different) and prints what the
# Difference Engine saves on them. Extra arguments go to de-analyze, e.g.
# --json or --bwt; images given after them replace the samples.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh scripts/setup.sh
imgs=""
for a in "$@"; do case "$a" in -*) ;; *) imgs=1 ;; esac; done
if [ -n "$imgs" ]; then
    exec build/tools/de-analyze/de-analyze "$@"
fi
exec build/tools/de-analyze/de-analyze --verify "$@" \
    samples/vm-web-1.ram.zst samples/vm-web-2.ram.zst samples/vm-db-2.ram.zst
