#!/bin/bash
# run-peers.sh - the Difference Engine side by side with Linux KSM and zram
# on the same memory images, one command.  Root only; not part of make check.
#
#   bench/peers/run-peers.sh [--quick] [--groups "homogeneous mixed all"]
#
# For each group of corpus VM images, each system in turn:
#   ksm, ksm_fast      one process per image (anonymous private memory,
#                      MADV_NOHUGEPAGE, MADV_MERGEABLE), ksmd at the kernel's
#                      default rate / at pages_to_scan 10000 sleep 0, until
#                      pages_sharing is stable and >= 2 full scans (capped)
#   zram-<comp>        the raw images written (dd, O_DIRECT) into a new zram
#                      device per compressor the kernel offers
#   ksm+zram-<comp>    ideal sharing (one copy per distinct page content,
#                      zero pages free) then the distinct pages into zram
#   de                 de-guest guests (uffd backend) under de-dom0d, one
#                      share group, idle, until savings settle
# plus fault latency (DE per kind vs a plain userfaultfd floor) and the
# workload overhead of the daemon.  Writes bench/results/peers/{peers.json,
# README.md, *.png, *.dat}.  KSM settings, zram devices and processes are
# restored / removed on exit.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

QUICK=0
GROUPS_SEL="homogeneous mixed all"
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1; GROUPS_SEL="homogeneous" ;;
    --groups) shift; GROUPS_SEL="$1" ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "run-peers.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || { echo "run-peers.sh needs root (KSM, zram, userfaultfd)" >&2; exit 1; }

# --- settings --------------------------------------------------------------
if [ $QUICK = 1 ]; then
    KSM_CAP=60; KSM_FAST_CAP=60; DE_CAP=90; ACTIVE_S=30; TPUT_S=5; STABLE_S=5
else
    KSM_CAP=180; KSM_FAST_CAP=120; DE_CAP=180; ACTIVE_S=60; TPUT_S=10; STABLE_S=5
fi
KSM_FAST_PTS=10000; KSM_FAST_SLEEP=0
DE_SCAN_INTERVAL=${DE_SCAN_INTERVAL:-100}     # ms; the daemon default is 1000
ACTIVE_GROUP=${ACTIVE_GROUP:-$(set -- $GROUPS_SEL; echo $1)}
CORPUS=${CORPUS:-$top/../shared/corpus}
RAW=${RAW:-$top/../corpus-raw}
OUT=${OUT:-$top/bench/results/peers}
B=$top/build
PAGE=4096

group_images() {
    case "$1" in
    homogeneous) echo "vm-web-1 vm-web-2" ;;
    mixed) echo "vm-web-1 vm-db-2 vm-kv-1" ;;
    all) echo "vm-web-1 vm-web-2 vm-db-2 vm-kv-1" ;;
    *) echo "run-peers.sh: unknown group $1" >&2; exit 2 ;;
    esac
}

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- state and cleanup ------------------------------------------------------
T=$(mktemp -d /tmp/de-peers.XXXXXX)
KSM=/sys/kernel/mm/ksm
PIDS=""          # processes we started and must end
ZDEVS=""         # zram devices we added
DPID=""
KSM_SAVED=0

ksm_save() {
    : > "$T/ksm.saved"
    for f in "$KSM"/*; do
        [ -f "$f" ] && [ $(( 0$(stat -c %a "$f") & 0200 )) != 0 ] || continue   # writable settings only
        v=$(cat "$f" 2>/dev/null) || continue
        # "[none] scan-time" style: keep the selected value
        case "$v" in *\[*\]*) v=$(echo "$v" | sed 's/.*\[\([^]]*\)\].*/\1/') ;; esac
        echo "$(basename "$f") $v" >> "$T/ksm.saved"
    done
    KSM_SAVED=1
}
ksm_restore() {
    [ $KSM_SAVED = 1 ] || return 0
    echo 2 > $KSM/run 2>/dev/null        # unmerge whatever we merged
    while read -r k v; do
        [ "$k" = run ] && continue
        cur=$(cat "$KSM/$k" 2>/dev/null)
        case "$cur" in *\[*\]*) cur=$(echo "$cur" | sed 's/.*\[\([^]]*\)\].*/\1/') ;; esac
        [ "$cur" = "$v" ] || echo "$v" > "$KSM/$k" 2>/dev/null || log "could not restore ksm/$k=$v"
    done < "$T/ksm.saved"
    v=$(sed -n 's/^run //p' "$T/ksm.saved")
    echo "${v:-0}" > $KSM/run 2>/dev/null || log "could not restore ksm/run=$v"
    KSM_SAVED=0
}
kill_pids() {
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    for p in $PIDS; do
        for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    PIDS=""
}
zram_del() {   # $1 = id
    echo 1 > /sys/block/zram$1/reset 2>/dev/null
    echo "$1" > /sys/class/zram-control/hot_remove 2>/dev/null || log "could not hot_remove zram$1"
    ZDEVS=$(echo " $ZDEVS " | sed "s/ $1 / /; s/^ *//; s/ *$//")
}
cleanup() {
    kill_pids
    [ -n "$DPID" ] && { kill -TERM "$DPID" 2>/dev/null; sleep 1; kill -KILL "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; DPID=""; }
    for z in $ZDEVS; do zram_del "$z"; done
    ksm_restore
    [ "${KEEP_TMP:-0}" = 1 ] && log "kept $T" || rm -rf "$T"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# --- tools and inputs ---------------------------------------------------------
[ -x $B/dom0d/de-dom0d ] && [ -x $B/tools/de-guest/de-guest ] || sh scripts/setup.sh >&2 || die "build failed"
command -v gnuplot >/dev/null || apt-get install -y gnuplot-nox >&2 || log "no gnuplot: plots skipped"
command -v jq >/dev/null || apt-get install -y jq >&2 || die "jq is needed"
cc -O2 -Wall -o "$T/peer_load" bench/peers/peer_load.c || die "cannot build peer_load"
cc -O2 -Wall -pthread -o "$T/uffd_floor" bench/peers/uffd_floor.c || die "cannot build uffd_floor"
PL=$T/peer_load
[ -w /sys/class/zram-control/hot_add ] || modprobe zram num_devices=0 2>/dev/null
[ -d $KSM ] || die "no KSM in this kernel"
mkdir -p "$OUT"
rm -f "$OUT"/*.dat "$OUT"/*.png

ALL_IMGS=""
for g in $GROUPS_SEL; do ALL_IMGS="$ALL_IMGS $(group_images $g)"; done
ALL_IMGS=$(echo $ALL_IMGS | tr ' ' '\n' | sort -u)
: > "$T/inputs"
for n in $ALL_IMGS; do
    if [ -f "$RAW/$n.ram" ]; then
        f=$RAW/$n.ram
    else
        mkdir -p "$T/raw"; f=$T/raw/$n.ram
        log "decompressing $n"
        zstd -q -d --long=27 "$CORPUS/$n.ram.zst" -o "$f" || die "cannot decompress $n"
    fi
    want=$(grep "^| $n.ram.zst" "$CORPUS/MANIFEST.md" | grep -o '`[0-9a-f]\{64\}`' | head -n 1 | tr -d '`')
    got=$(sha256sum "$f" | cut -d' ' -f1)
    [ "$want" = "$got" ] || log "WARNING: $n sha256 $got differs from MANIFEST ($want)"
    echo "$n $f $got $want $(stat -c %s "$f")" >> "$T/inputs"
done
img_path() { awk -v n="$1" '$1 == n { print $2 }' "$T/inputs"; }

R=$T/res; mkdir -p "$R"
# put GROUP SYSTEM KEY VALUE: one measured value
put() { mkdir -p "$R/$1/$2"; echo "$4" > "$R/$1/$2/$3"; }
ksmd_cpu() {  # ksmd utime+stime in seconds
    local p; p=$(pgrep -x ksmd | head -n 1)
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' /proc/$p/stat
}
pid_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' /proc/$1/stat; }
t90() {  # series file (t saved) and final value -> first t with saved >= 90%
    awk -v f="$2" '$2 >= 0.9 * f { print $1; exit }' "$1"
}
ksm_get() { cat $KSM/$1; }

# --- KSM ---------------------------------------------------------------------
ksm_run() {   # group system pages_to_scan sleep_ms cap_s images...
    local g=$1 sys=$2 pts=$3 slp=$4 cap=$5; shift 5
    local total=0 n
    log "$g/$sys: loading $# images (pages_to_scan $pts, sleep_millisecs $slp)"
    echo 2 > $KSM/run; echo 0 > $KSM/run
    echo "$pts" > $KSM/pages_to_scan; echo "$slp" > $KSM/sleep_millisecs
    for n in "$@"; do
        f=$(img_path $n); total=$((total + $(stat -c %s "$f")))
        "$PL" ksm "$f" > "$T/ld.$n" 2>&1 &
        PIDS="$PIDS $!"
    done
    for n in "$@"; do
        for i in $(seq 1 300); do grep -q ready "$T/ld.$n" && break; sleep 0.1; done
        grep -q ready "$T/ld.$n" || die "loader for $n not ready: $(cat "$T/ld.$n")"
    done
    local uzp fs0 c0 t0 now t last=-1 same=0 settled=no sharing saved
    uzp=$(ksm_get use_zero_pages)
    fs0=$(ksm_get full_scans); c0=$(ksmd_cpu); t0=$(date +%s.%N)
    local ser="$OUT/series-$g-$sys.dat"; echo "0 0" > "$ser"
    echo 1 > $KSM/run
    for t in $(seq 1 "$cap"); do
        sleep 1
        sharing=$(ksm_get pages_sharing)
        saved=$(( (sharing + (uzp == 1 ? $(ksm_get ksm_zero_pages) : 0)) * PAGE ))
        now=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
        echo "$now $saved" >> "$ser"
        if [ "$sharing" = "$last" ]; then same=$((same + 1)); else same=0; fi
        last=$sharing
        if [ $(( $(ksm_get full_scans) - fs0 )) -ge 2 ] && [ $same -ge $STABLE_S ] && [ "$sharing" -gt 0 ]; then
            settled=yes; break
        fi
    done
    local cpu; cpu=$(awk -v a="$c0" -v b="$(ksmd_cpu)" 'BEGIN { printf "%.2f", b - a }')
    put $g $sys saved_bytes $saved; put $g $sys cpu_s $cpu; put $g $sys total_bytes $total
    put $g $sys settled $settled; put $g $sys elapsed_s $now
    put $g $sys time_to_90pct_s "$(t90 "$ser" $saved)"
    put $g $sys full_scans $(( $(ksm_get full_scans) - fs0 ))
    put $g $sys pages_shared "$(ksm_get pages_shared)"; put $g $sys pages_sharing "$sharing"
    put $g $sys use_zero_pages "$uzp"
    put $g $sys pages_to_scan "$pts"; put $g $sys sleep_millisecs "$slp"
    log "$g/$sys: saved $((saved / 1048576)) MiB of $((total / 1048576)) MiB, ksmd CPU ${cpu}s, settled=$settled after ${now}s, full_scans +$(( $(ksm_get full_scans) - fs0 ))"
    echo 2 > $KSM/run
    kill_pids
    for i in $(seq 1 100); do [ "$(ksm_get pages_sharing)" = 0 ] && break; sleep 0.1; done
    echo 0 > $KSM/run
}

# --- zram --------------------------------------------------------------------
zram_write() {  # comp disksize files... -> prints "mem_used orig cpu wall compr same"
    local comp=$1 size=$2; shift 2
    local id off=0 f
    id=$(cat /sys/class/zram-control/hot_add) || die "zram hot_add failed"
    ZDEVS="$ZDEVS $id"
    echo "$comp" > /sys/block/zram$id/comp_algorithm || die "zram$id: cannot set $comp"
    echo "$size" > /sys/block/zram$id/disksize || die "zram$id: cannot set disksize"
    : > "$T/zcpu"
    for f in "$@"; do
        local mb=$(( $(stat -c %s "$f") / 1048576 ))
        "$PL" cpu dd if="$f" of=/dev/zram$id bs=1M seek=$((off / 1048576)) count=$mb \
            oflag=direct status=none 2>> "$T/zcpu" || die "dd into zram$id failed: $(cat "$T/zcpu")"
        off=$((off + mb * 1048576))
    done
    sync
    local st; st=$(cat /sys/block/zram$id/mm_stat)
    local cpu wall
    cpu=$(sed -n 's/cpu_s=\([0-9.]*\).*/\1/p' "$T/zcpu" | awk '{ s += $1 } END { printf "%.3f", s }')
    wall=$(sed -n 's/.*wall_s=\([0-9.]*\).*/\1/p' "$T/zcpu" | awk '{ s += $1 } END { printf "%.2f", s }')
    set -- $st
    echo "$3 $1 $cpu $wall $2 $6"
    zram_del $id
}
zram_run() {   # group images...
    local g=$1; shift
    local files="" total=0 n comp
    for n in "$@"; do f=$(img_path $n); files="$files $f"; total=$((total + $(stat -c %s "$f"))); done
    for comp in $ZCOMPS; do
        log "$g/zram-$comp: writing $((total / 1048576)) MiB"
        set -- $(zram_write $comp $((total + 16777216)) $files)
        local used=$1 orig=$2 cpu=$3 wall=$4 saved=$((total - $1))
        put $g zram-$comp saved_bytes $saved; put $g zram-$comp cpu_s $cpu
        put $g zram-$comp total_bytes $total; put $g zram-$comp mem_used_total $used
        put $g zram-$comp orig_data_size $orig; put $g zram-$comp compr_data_size $5
        put $g zram-$comp same_pages $6; put $g zram-$comp time_to_90pct_s $wall
        printf '0 0\n%s %s\n' "$wall" "$saved" > "$OUT/series-$g-zram-$comp.dat"
        log "$g/zram-$comp: saved $((saved / 1048576)) MiB (mem_used_total $((used / 1048576)) MiB, orig_data_size $((orig / 1048576)) MiB), writer CPU ${cpu}s"
    done
    # ideal sharing, then the distinct non-zero pages into zram
    log "$g/ksm+zram: ideal sharing"
    local d; d=$("$PL" distinct "$T/distinct.bin" $files) || die "distinct failed"
    local tp zp dn
    tp=$(echo "$d" | sed 's/.*total_pages=\([0-9]*\).*/\1/')
    zp=$(echo "$d" | sed 's/.*zero_pages=\([0-9]*\).*/\1/')
    dn=$(echo "$d" | sed 's/.*distinct_nonzero=\([0-9]*\).*/\1/')
    put $g ideal_share distinct_nonzero_pages $dn; put $g ideal_share zero_pages $zp
    put $g ideal_share total_pages $tp
    local dsize=$((dn * PAGE))
    # whole MiB for dd: pad the file with zero pages (same-filled: free in zram)
    truncate -s $(( (dsize + 1048575) / 1048576 * 1048576 )) "$T/distinct.bin"
    for comp in $ZCOMPS; do
        log "$g/ksm+zram-$comp: writing $dn distinct pages"
        set -- $(zram_write $comp $((dsize + 16777216)) "$T/distinct.bin")
        local saved=$((total - $1))
        put $g ksm+zram-$comp saved_bytes $saved; put $g ksm+zram-$comp cpu_s $3
        put $g ksm+zram-$comp total_bytes $total; put $g ksm+zram-$comp mem_used_total $1
        put $g ksm+zram-$comp distinct_nonzero_pages $dn; put $g ksm+zram-$comp time_to_90pct_s $4
        printf '0 0\n%s %s\n' "$4" "$saved" > "$OUT/series-$g-ksm+zram-$comp.dat"
        log "$g/ksm+zram-$comp: saved $((saved / 1048576)) MiB, writer CPU $3 s"
    done
    rm -f "$T/distinct.bin"
}

# --- Difference Engine ----------------------------------------------------------
daemon() {   # extra config lines
    printf 'socket "%s/ctl.sock"\nguest_socket "%s/guests.sock"\nscan_interval %s\nshare_group "peers"\nstats_interval 0\n%s\n' \
        "$T" "$T" "$DE_SCAN_INTERVAL" "$1" > "$T/de.conf"
    rm -f "$T/ctl.sock" "$T/guests.sock"
    $B/dom0d/de-dom0d -f "$T/de.conf" > "$T/daemon.log" 2>&1 &
    DPID=$!
    for i in $(seq 1 100); do [ -S "$T/guests.sock" ] && [ -S "$T/ctl.sock" ] && break; sleep 0.1; done
    [ -S "$T/guests.sock" ] || die "de-dom0d did not start: $(cat "$T/daemon.log")"
}
stop_daemon() {
    kill -TERM "$DPID" 2>/dev/null
    for i in $(seq 1 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; DPID=""
}
ctl() { $B/tools/de-ctl/de-ctl -s "$T/ctl.sock" "$@"; }
FAIL=0
stop_guests() {   # TERM the guests, wait: each verifies every byte; failures in FAIL
    local p fail=0
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    for p in $PIDS; do
        local i
        for i in $(seq 1 1200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" || fail=$((fail + 1))
    done
    PIDS=""
    FAIL=$fail
}
de_run() {   # group cap images...
    local g=$1 cap=$2; shift 2
    local total=0 n files=""
    for n in "$@"; do f=$(img_path $n); files="$files $f"; total=$((total + $(stat -c %s "$f"))); done
    log "$g/de: de-analyze prediction"
    local pred; pred=$($B/tools/de-analyze/de-analyze --json --main-only --no-progress $files 2>/dev/null)
    put $g de predicted_saved_bytes "$(echo "$pred" | jq '.saved_bytes.de')"
    log "$g/de: $# idle guests (rate 0.01, 128 MiB each), scan_interval $DE_SCAN_INTERVAL ms, share_group peers"
    daemon ""
    local c0 t0; c0=$(pid_cpu $DPID); t0=$(date +%s.%N)
    for n in "$@"; do
        $B/tools/de-guest/de-guest --socket "$T/guests.sock" --mem 128 --image "$(img_path $n)" \
            --name $n --rate 0.01 --duration 0 --report "$T/$g-$n.json" > "$T/$g-$n.out" 2>&1 &
        PIDS="$PIDS $!"
    done
    local ser="$OUT/series-$g-de.dat"; echo "0 0" > "$ser"
    local t js saved=0 now hist="" settled=no
    for t in $(seq 1 "$cap"); do
        sleep 1
        js=$(ctl stats --json) || continue
        saved=$(echo "$js" | jq '.global.saved_bytes')
        now=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
        echo "$now $saved" >> "$ser"
        hist="$hist $saved"
        # settled: positive, and within 0.2% of the total over the last STABLE_S samples
        local h; h=$(echo $hist | tr ' ' '\n' | tail -n $((STABLE_S + 1)))
        if [ $t -ge 10 ] && [ "$saved" -gt 0 ] && [ $(echo "$h" | wc -l) -gt $STABLE_S ] &&
           echo "$h" | awk -v tot=$total 'NR == 1 { mn = mx = $1 } { if ($1 < mn) mn = $1; if ($1 > mx) mx = $1 } END { exit !(mx - mn <= 0.002 * tot) }'; then
            settled=yes; break
        fi
    done
    local cpu; cpu=$(awk -v a="$c0" -v b="$(pid_cpu $DPID)" 'BEGIN { printf "%.2f", b - a }')
    echo "$js" > "$OUT/de-stats-$g.json"
    put $g de saved_bytes $saved; put $g de cpu_s $cpu; put $g de total_bytes $total
    put $g de settled $settled; put $g de elapsed_s $now
    put $g de time_to_90pct_s "$(t90 "$ser" $saved)"
    for k in pages_shared pages_patched pages_compressed pages_swapped store_bytes; do
        put $g de $k "$(echo "$js" | jq ".global.$k")"
    done
    put $g de rss_bytes "$(awk '/^VmRSS:/ { print $2 * 1024 }' /proc/$DPID/status 2>/dev/null)"
    log "$g/de: saved $((saved / 1048576)) MiB of $((total / 1048576)) MiB (predicted $(( $(cat $R/$g/de/predicted_saved_bytes) / 1048576 )) MiB), daemon CPU ${cpu}s, settled=$settled after ${now}s"
    stop_guests; local fail=$FAIL
    put $g de guests_failed_verification $fail
    [ "$fail" = 0 ] || log "$g/de: $fail guest(s) FAILED verification"
    stop_daemon
}
de_active() {   # group images...: fault latency by kind while the guests read and write
    local g=$1; shift
    log "$g/de active: $# guests, rate 300, hot 10% weight 80%, 20% writes, ${ACTIVE_S}s"
    daemon ""
    for n in "$@"; do
        $B/tools/de-guest/de-guest --socket "$T/guests.sock" --mem 128 --image "$(img_path $n)" \
            --name $n --rate 300 --hot 10 --hot-weight 80 --write-ratio 20 --duration $ACTIVE_S \
            > "$T/act-$n.out" 2>&1 &
        PIDS="$PIDS $!"
    done
    sleep $((ACTIVE_S - 2))
    ctl stats --json > "$T/active.json"
    stop_guests; local fail=$FAIL
    stop_daemon
    jq --arg g "$g" --argjson fail "$fail" --argjson s "$ACTIVE_S" \
        '{group: $g, duration_s: $s, rate_ops_s: 300, hot_pct: 10, hot_weight_pct: 80, write_pct: 20,
          guests_failed_verification: $fail, saved_bytes: .global.saved_bytes, faults: .global.faults,
          fault_p50_us: .global.fault_p50_us, fault_p99_us: .global.fault_p99_us,
          by_kind: .global.fault_latency}' "$T/active.json" > "$T/active.sum"
    log "fault latency: $(jq -c .by_kind "$T/active.sum")"
}
de_overhead() {
    tput() {
        daemon "$1"
        $B/tools/de-guest/de-guest --socket "$T/guests.sock" --mem 32 --name bench \
            --rate 0 --hot 10 --hot-weight 90 --write-ratio 20 --duration $TPUT_S > "$T/tput" 2>&1
        stop_daemon
        sed -n 's/.*ops\/s=\([0-9.]*\).*/\1/p' "$T/tput"
    }
    log "overhead: de-guest --rate 0, 32 MiB, ${TPUT_S}s, enable no vs default policy"
    local base managed
    base=$(tput "enable no"); managed=$(tput "")
    jq -n --argjson b "${base:-0}" --argjson m "${managed:-0}" --argjson s $TPUT_S \
        '{guest_mib: 32, duration_s: $s, hot_pct: 10, hot_weight_pct: 90, write_pct: 20,
          unmanaged_ops_s: $b, default_policy_ops_s: $m,
          slowdown_pct: (if $b > 0 then (100 * (1 - $m / $b)) else null end)}' > "$T/overhead.sum"
    log "overhead: unmanaged $base ops/s, default policy $managed ops/s"
}

# --- run -------------------------------------------------------------------------
ZCOMPS=$(id=$(cat /sys/class/zram-control/hot_add) && { cat /sys/block/zram$id/comp_algorithm | tr -d '[]'; echo "$id" > /sys/class/zram-control/hot_remove; })
[ -n "$ZCOMPS" ] || die "cannot list zram compressors"
log "zram compressors: $ZCOMPS; groups: $GROUPS_SEL; quick=$QUICK"
ksm_save
KSM_DEF_PTS=$(awk '$1 == "pages_to_scan" { print $2 }' "$T/ksm.saved")
KSM_DEF_SLEEP=$(awk '$1 == "sleep_millisecs" { print $2 }' "$T/ksm.saved")
START=$(date -u +%Y-%m-%dT%H:%M:%SZ)

log "uffd floor"
"$T/uffd_floor" 16384 5 > "$T/floor.json" || die "uffd_floor failed"

for g in $GROUPS_SEL; do
    imgs=$(group_images $g)
    de_run $g $DE_CAP $imgs
    ksm_run $g ksm "$KSM_DEF_PTS" "$KSM_DEF_SLEEP" $KSM_CAP $imgs
    ksm_run $g ksm_fast $KSM_FAST_PTS $KSM_FAST_SLEEP $KSM_FAST_CAP $imgs
    zram_run $g $imgs
done
de_active $ACTIVE_GROUP $(group_images $ACTIVE_GROUP)
de_overhead
ksm_restore
END=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# --- peers.json ------------------------------------------------------------------
log "writing $OUT"
num() { [ -f "$1" ] && v=$(cat "$1") && [ -n "$v" ] && echo "$v" || echo null; }
{
    echo "{"
    first_g=1
    for g in $GROUPS_SEL; do
        [ $first_g = 1 ] || echo ","; first_g=0
        printf '"%s": {"images": %s, "systems": {' "$g" "$(group_images $g | jq -R 'split(" ")')"
        first_s=1
        for sd in "$R/$g"/*/; do
            sys=$(basename "$sd")
            [ $first_s = 1 ] || echo ","; first_s=0
            printf '"%s": {' "$sys"
            first_k=1
            for kf in "$sd"*; do
                k=$(basename "$kf"); v=$(cat "$kf")
                [ $first_k = 1 ] || printf ','; first_k=0
                case "$v" in
                ''|*[!0-9.-]*) printf '"%s": %s' "$k" "$(printf '%s' "$v" | jq -R .)" ;;
                *) printf '"%s": %s' "$k" "$v" ;;
                esac
            done
            if [ -f "$OUT/series-$g-$sys.dat" ]; then
                printf ', "series": %s' "$(awk '{ printf "%s[%s,%s]", (NR > 1 ? "," : ""), $1, $2 }' "$OUT/series-$g-$sys.dat" | sed 's/^/[/; s/$/]/')"
            fi
            printf '}'
        done
        printf '}}'
    done
    echo "}"
} > "$T/groups.raw"
jq '.' "$T/groups.raw" > /dev/null || die "internal: bad groups JSON"

inputs=$(while read -r n f got want size; do
    jq -n --arg n "$n" --arg f "$f" --arg got "$got" --arg want "$want" --argjson size "$size" \
        '{name: $n, file: $f, bytes: $size, sha256: $got, manifest_sha256: $want, sha256_ok: ($got == $want)}'
done < "$T/inputs" | jq -s .)
ksm_settings=$(awk '{ printf "%s\t%s\n", $1, $2 }' "$T/ksm.saved" | jq -R 'split("\t") | {(.[0]): .[1]}' | jq -s add)

jq -n \
  --slurpfile gr "$T/groups.raw" \
  --argjson inputs "$inputs" \
  --argjson ksm "$ksm_settings" \
  --slurpfile floor "$T/floor.json" \
  --slurpfile active "$T/active.sum" \
  --slurpfile over "$T/overhead.sum" \
  --arg cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
  --argjson cores "$(nproc)" --arg kernel "$(uname -r)" \
  --argjson memtotal "$(awk '/MemTotal/ { print $2 * 1024 }' /proc/meminfo)" \
  --arg tstart "$START" --arg tend "$END" --argjson quick $QUICK \
  --arg zc "$ZCOMPS" --argjson deint "$DE_SCAN_INTERVAL" \
  --argjson kcap $KSM_CAP --argjson kfcap $KSM_FAST_CAP --argjson dcap $DE_CAP --argjson stable $STABLE_S \
  --argjson fpts $KSM_FAST_PTS --argjson fslp $KSM_FAST_SLEEP \
'
def sysout: with_entries(
    .value |= (. + {saved_pct: (if .total_bytes > 0 then (100 * .saved_bytes / .total_bytes) else null end)}));
{
  generated: {"start": $tstart, "end": $tend, quick: ($quick == 1), command: "bench/peers/run-peers.sh"},
  machine: {cpu_model: $cpu, cores: $cores, kernel: $kernel, mem_total_bytes: $memtotal},
  inputs: $inputs,
  settings: {
    page_bytes: 4096,
    ksm: {kernel_settings_at_start: $ksm,
          ksm: "kernel default pages_to_scan/sleep_millisecs (see kernel_settings_at_start), use_zero_pages left at its default",
          ksm_fast: {pages_to_scan: $fpts, sleep_millisecs: $fslp},
          settle_rule: "pages_sharing unchanged for \($stable) s and full_scans advanced >= 2",
          cap_s: {ksm: $kcap, ksm_fast: $kfcap},
          saved: "(pages_sharing + ksm_zero_pages if use_zero_pages) * 4096",
          cpu: "ksmd utime+stime delta from run=1 to the settle point",
          loader: "one process per image: MAP_PRIVATE|MAP_ANONYMOUS, MADV_NOHUGEPAGE, image copied in, MADV_MERGEABLE"},
    zram: {compressors: ($zc | split(" ") | map(select(. != ""))),
           method: "new device per run (hot_add), images written with dd oflag=direct bs=1M at distinct offsets",
           saved: "bytes written - mem_used_total (orig_data_size also recorded)",
           cpu: "user+sys of the dd writers (zram compresses in the writer context)"},
    "ksm+zram": {method: "ideal sharing (one copy of each distinct page content, zero pages and duplicates free) then the distinct non-zero pages into zram",
                 saved: "total image bytes - mem_used_total", cpu: "zram writer CPU only: the sharing CPU is not counted (generous to the peer)"},
    de: {backend: "uffd (de-guest guests, --mem 128, --rate 0.01 idle)", share_group: "peers (cross-VM sharing on)",
         scan_interval_ms: $deint, policy: "daemon defaults otherwise",
         settle_rule: "after >= 10 s, saved_bytes within 0.2% of the group total over \($stable) s", cap_s: $dcap,
         saved: "de-ctl global saved_bytes (net: store, records, index tables subtracted)",
         cpu: "de-dom0d utime+stime from start to the settle point (includes serving the guests image-load faults)"}
  },
  groups: ($gr[0] | with_entries(.value |= (.systems |= sysout) | .value |= (. + .systems) | .value |= del(.systems))),
  fault_latency: {uffd_floor: $floor[0], de_active: $active[0]},
  overhead: $over[0]
}' > "$OUT/peers.json" || die "cannot write peers.json"

# --- plots -----------------------------------------------------------------------
if command -v gnuplot >/dev/null; then
    for g in $GROUPS_SEL; do
        plot=""
        for sys in de ksm ksm_fast; do
            [ -f "$OUT/series-$g-$sys.dat" ] && plot="$plot${plot:+, }'$OUT/series-$g-$sys.dat' using 1:(\$2/1048576) with lines lw 2 title '$sys'"
        done
        gnuplot -e "set terminal pngcairo size 900,500 noenhanced; set output '$OUT/saved-over-time-$g.png';
            set title 'Saved memory over time, group $g'; set xlabel 'seconds'; set ylabel 'saved MiB';
            set key bottom right; set grid; plot $plot" 2>/dev/null ||
        gnuplot -e "set terminal png size 900,500 noenhanced; set output '$OUT/saved-over-time-$g.png';
            set title 'Saved memory over time, group $g'; set xlabel 'seconds'; set ylabel 'saved MiB';
            set key bottom right; set grid; plot $plot" || log "plot failed"
    done
    systems=$(jq -r '[.groups[] | keys[]] | unique | map(select(. != "images" and . != "ideal_share")) | .[]' "$OUT/peers.json")
    { printf 'system'; for g in $GROUPS_SEL; do printf '\t%s' "$g"; done; echo
      for s in $systems; do
        printf '%s' "$s"
        for g in $GROUPS_SEL; do printf '\t%s' "$(jq -r --arg g $g --arg s $s '(.groups[$g][$s].saved_bytes // 0) / 1048576' "$OUT/peers.json")"; done
        echo
      done; } > "$OUT/final-savings.dat"
    ng=$(echo $GROUPS_SEL | wc -w)
    cols=""; for i in $(seq 2 $((ng + 1))); do cols="$cols${cols:+, }'' using $i title columnheader($i)"; done
    cols="'$OUT/final-savings.dat' using 2:xtic(1) title columnheader(2)${cols#*\)}"
    for term in "pngcairo size 1000,550 noenhanced" "png size 1000,550 noenhanced"; do
        gnuplot -e "set terminal $term; set output '$OUT/final-savings.png';
            set title 'Final saved memory per system and group'; set ylabel 'saved MiB';
            set style data histograms; set style histogram clustered gap 1; set style fill solid 0.8 border -1;
            set xtics rotate by -30; set grid ytics; set key top left; plot $cols" 2>/dev/null && break
    done
fi

# --- README.md ---------------------------------------------------------------------
J=$OUT/peers.json
mib() { awk -v b="$1" 'BEGIN { if (b == "null" || b == "") print "-"; else printf "%.1f", b / 1048576 }'; }
{
    echo "# Difference Engine beside Linux KSM and zram (bench/peers)"
    echo
    echo "Generated by \`bench/peers/run-peers.sh$([ $QUICK = 1 ] && echo ' --quick')\` from $START to $END."
    echo "Machine: $(jq -r '.machine | "\(.cpu_model), \(.cores) cores, Linux \(.kernel)"' $J)."
    echo "Inputs (raw, sha256 checked against the corpus MANIFEST): $(jq -r '[.inputs[] | "\(.name) (\(.sha256[0:12])…, ok=\(.sha256_ok))"] | join(", ")' $J)."
    [ $QUICK = 1 ] && echo && echo "**Quick run** (one group, shorter caps): a smoke test, not the full comparison."
    echo
    echo "## Savings (net, % of the group's RAM and MiB) at the settle point"
    echo
    printf '| system |'; for g in $GROUPS_SEL; do printf ' %s |' "$g"; done; echo
    printf '|---|'; for g in $GROUPS_SEL; do printf -- '---|'; done; echo
    for s in $systems; do
        printf '| %s |' "$s"
        for g in $GROUPS_SEL; do
            printf ' %s |' "$(jq -r --arg g $g --arg s $s '.groups[$g][$s] | if . == null then "-" else "\(.saved_pct * 10 | round / 10)% (\(.saved_bytes / 1048576 | . * 10 | round / 10) MiB)" end' $J)"
        done
        echo
    done
    printf '| de-analyze prediction (offline) |'
    for g in $GROUPS_SEL; do printf ' %s MiB |' "$(mib "$(jq -r --arg g $g '.groups[$g].de.predicted_saved_bytes' $J)")"; done; echo
    echo
    echo "Group sizes: $(for g in $GROUPS_SEL; do printf '%s %s MiB; ' $g "$(mib "$(jq -r --arg g $g '.groups[$g].de.total_bytes' $J)")"; done)"
    echo "Settled: $(for g in $GROUPS_SEL; do for s in de ksm ksm_fast; do printf '%s/%s=%s after %ss; ' $g $s "$(jq -r --arg g $g --arg s $s '.groups[$g][$s].settled' $J)" "$(jq -r --arg g $g --arg s $s '.groups[$g][$s].elapsed_s' $J)"; done; done)"
    echo
    echo "## CPU and time"
    echo
    echo "CPU seconds to reach the savings (ksmd / de-dom0d from start to the settle point; zram: the writers)"
    echo "and saved MiB per CPU second; time to 90% of the final saving (zram: the write time)."
    echo
    printf '| system |'; for g in $GROUPS_SEL; do printf ' %s CPU s | %s MiB/CPU-s | %s t90 s |' $g $g $g; done; echo
    printf '|---|'; for g in $GROUPS_SEL; do printf -- '---|---|---|'; done; echo
    for s in $systems; do
        printf '| %s |' "$s"
        for g in $GROUPS_SEL; do
            printf ' %s |' "$(jq -r --arg g $g --arg s $s '.groups[$g][$s] | if . == null then "- | - | -" else "\(.cpu_s) | \(if .cpu_s > 0 then (.saved_bytes / 1048576 / .cpu_s | round) else "inf" end) | \(.time_to_90pct_s)" end' $J)"
        done
        echo
    done
    echo
    echo "## Difference Engine: technique contributions (gauges at the settle point)"
    echo
    echo "| group | pages shared | pages patched | pages compressed | store MiB | daemon RSS MiB | guests failed verification |"
    echo "|---|---|---|---|---|---|---|"
    for g in $GROUPS_SEL; do
        jq -r --arg g $g '.groups[$g].de | "| \($g) | \(.pages_shared) | \(.pages_patched) | \(.pages_compressed) | \(.store_bytes / 1048576 | . * 10 | round / 10) | \(.rss_bytes / 1048576 | round) | \(.guests_failed_verification) |"' $J
    done
    echo
    echo "Ideal sharing (for ksm+zram): $(for g in $GROUPS_SEL; do jq -r --arg g $g '.groups[$g].ideal_share | "\($g): \(.total_pages) pages, \(.zero_pages) zero, \(.distinct_nonzero_pages) distinct non-zero; "' $J; done)"
    echo
    echo "## Goals"
    echo
    for g in $GROUPS_SEL; do
        jq -r --arg g $g '
          .groups[$g] as $G
          | ($G | to_entries | map(select(.key | startswith("zram-"))) | max_by(.value.saved_bytes)) as $bz
          | ($G | to_entries | map(select(.key | startswith("ksm+zram-"))) | max_by(.value.saved_bytes)) as $bkz
          | def mb(x): (x / 1048576 | . * 10 | round / 10);
            def ok(c): if c then "met" else "**MISSED**" end;
            def eff(s): (if s.cpu_s > 0 then s.saved_bytes / 1048576 / s.cpu_s else 1e12 end);
          "- \($g): DE \(mb($G.de.saved_bytes)) MiB vs KSM \(mb($G.ksm.saved_bytes)) MiB = \(if $G.ksm.saved_bytes > 0 then ($G.de.saved_bytes / $G.ksm.saved_bytes * 100 | round / 100) else "inf" end)x: DE >= 2x KSM \(ok($G.de.saved_bytes >= 2 * $G.ksm.saved_bytes)) (KSM fast: \(mb($G.ksm_fast.saved_bytes)) MiB, \(ok($G.de.saved_bytes >= 2 * $G.ksm_fast.saved_bytes)) against it);"
          + " DE above best zram (\($bz.key) \(mb($bz.value.saved_bytes)) MiB) \(ok($G.de.saved_bytes > $bz.value.saved_bytes));"
          + " DE above best ksm+zram (\($bkz.key) \(mb($bkz.value.saved_bytes)) MiB) \(ok($G.de.saved_bytes > $bkz.value.saved_bytes));"
          + " DE savings per CPU-s \(eff($G.de) | round) MiB/s vs KSM default \(eff($G.ksm) | round) MiB/s \(ok(eff($G.de) > eff($G.ksm)))."' $J
    done
    echo
    echo "## Fault latency (active phase, group $ACTIVE_GROUP) vs the userfaultfd floor"
    echo
    jq -r '.fault_latency | "Active phase: \(.de_active.duration_s) s, \(.de_active.rate_ops_s) ops/s per guest, hot \(.de_active.hot_pct)% (weight \(.de_active.hot_weight_pct)%), \(.de_active.write_pct)% writes; \(.de_active.faults) faults; guests failed verification: \(.de_active.guests_failed_verification).\n\nFloor (bench/peers/uffd_floor.c, a thread serving MISSING faults of an anonymous region): UFFDIO_ZEROPAGE p50 \(.uffd_floor.zeropage.p50_us) us, p99 \(.uffd_floor.zeropage.p99_us) us; UFFDIO_COPY p50 \(.uffd_floor.copy.p50_us) us, p99 \(.uffd_floor.copy.p99_us) us.\n\n| kind | count | DE p50 us | DE p99 us | p50 / zeropage floor p50 |\n|---|---|---|---|---|",
      (.uffd_floor.zeropage.p50_us as $f | .de_active.by_kind | to_entries[] | "| \(.key) | \(.value.count) | \(.value.p50_us) | \(.value.p99_us) | \(if $f > 0 and .value.count > 0 then (.value.p50_us / $f * 10 | round / 10) else "-" end)x |")' $J
    echo
    echo "## Overhead (one 32 MiB de-guest at full speed)"
    echo
    jq -r '.overhead | "\(.duration_s) s, hot \(.hot_pct)% weight \(.hot_weight_pct)%, \(.write_pct)% writes: unmanaged (enable no) \(.unmanaged_ops_s) ops/s, default policy \(.default_policy_ops_s) ops/s (slowdown \(.slowdown_pct | . * 10 | round / 10)%)."' $J
    echo
    echo "## Method and caveats"
    echo
    echo "- KSM: one process per image (anonymous private memory, MADV_NOHUGEPAGE, MADV_MERGEABLE)."
    echo "  \`ksm\` runs at the kernel's settings at start (pages_to_scan $KSM_DEF_PTS, sleep_millisecs $KSM_DEF_SLEEP);"
    echo "  \`ksm_fast\` at pages_to_scan $KSM_FAST_PTS, sleep_millisecs $KSM_FAST_SLEEP. use_zero_pages kept at its default"
    echo "  ($(awk '$1 == "use_zero_pages" { print $2 }' "$T/ksm.saved")), so zero pages merge like any other content and count in pages_sharing."
    echo "  Saved = pages_sharing x 4096 (pages_shared are the kept copies). Settled = pages_sharing unchanged for $STABLE_S s"
    echo "  after >= 2 full scans; capped at $KSM_CAP s (default rate) / $KSM_FAST_CAP s (fast) — see \"Settled\" above."
    echo "  All /sys/kernel/mm/ksm settings are saved first and restored on exit."
    echo "- zram: a new device per measurement (hot_add; an existing zram0 is never touched), images written with"
    echo "  dd oflag=direct so the compression runs in the writer; saved = bytes written - mem_used_total (the allocator's"
    echo "  pages, metadata excluded: generous to zram); CPU = the writers' user+sys."
    echo "- ksm+zram: ideal sharing computed offline (not counted in CPU: generous), zero pages and duplicates free,"
    echo "  distinct non-zero pages written into zram; saved = group bytes - mem_used_total."
    echo "- DE: de-dom0d (uffd backend), guests de-guest --mem 128 --image IMAGE --rate 0.01 (idle) in one share_group"
    echo "  (cross-VM sharing and patching on), scan_interval $DE_SCAN_INTERVAL ms (daemon default 1000), other keys at their defaults."
    echo "  Saved = de-ctl global saved_bytes (net of store, records and index tables). Settled = saved within 0.2% of the"
    echo "  group size over $STABLE_S s, after >= 10 s; capped at $DE_CAP s. CPU includes serving the guests' image-load faults."
    echo "  Every guest verifies every byte when it stops."
    echo "- Plots: saved-over-time-GROUP.png (DE, KSM, KSM fast on the same axes), final-savings.png. Raw series: series-*.dat;"
    echo "  DE stats at the settle point: de-stats-GROUP.json."
} > "$OUT/README.md"
log "done: $OUT/peers.json, $OUT/README.md"
