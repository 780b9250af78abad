#!/bin/sh
# run-bench.sh - the engine's per-operation costs (the shape of Table 2 of
# the paper) on this machine, written to bench/results/ops-HOST.md with the
# machine and inputs stated.
#
#   bench/run-bench.sh [IMAGE...]   (default: the corpus VMs if present,
#                                    else the shipped samples)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh scripts/setup.sh
if [ $# -eq 0 ]; then
    if [ -f ../shared/corpus/vm-web-1.ram.zst ]; then
        set -- ../shared/corpus/vm-web-1.ram.zst ../shared/corpus/vm-web-2.ram.zst \
               ../shared/corpus/vm-db-2.ram.zst ../shared/corpus/vm-kv-1.ram.zst
    else
        set -- samples/vm-web-1.ram.zst samples/vm-web-2.ram.zst samples/vm-db-2.ram.zst
    fi
fi
mkdir -p bench/results
out=bench/results/ops-$(hostname -s 2>/dev/null || echo host).md
{
    echo "# Per-operation costs ($(date -u +%Y-%m-%d))"
    echo
    echo "Command: \`bench/run-bench.sh $*\` (build/bench/bench_ops -r 5)."
    echo "Load average at start: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    echo '```'
    build/bench/bench_ops -r 5 "$@"
    echo '```'
    echo
    echo "Paper (Xeon 2.33 GHz, Table 2), µs: share 6.2, patch 338.1 (incl."
    echo "finding the reference), unpatch 18.6, compress 29.7, uncompress 10.4."
    echo
    echo "## de-analyze throughput (one core)"
    echo
    for mode in "--main-only" ""; do
        js=$(build/tools/de-analyze/de-analyze --json --no-progress $mode "$@")
        pages=$(echo "$js" | sed -n 's/^{"pages_total":\([0-9]*\).*/\1/p')
        cpu=$(echo "$js" | sed -n 's/.*"cpu_s":\([0-9.]*\)}$/\1/p')
        echo "- \`de-analyze ${mode:-(every codec side by side)}\`: $pages pages in $cpu CPU s ="\
             "$(awk -v p="$pages" -v c="$cpu" 'BEGIN { printf "%.0f", p * 4096 / 1048576 * 60 / c }') MiB/min"
    done
    echo
    echo "Goal: at least 1 GiB of memory per minute on one core with all techniques on."
} > "$out"
cat "$out"
