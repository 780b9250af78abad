#!/bin/bash
# run-peers.sh - the Difference Engine side by side with Linux KSM and zram
# on the same memory images, in one command.  Root only; not part of
# make check.
#
#   bench/peers/run-peers.sh [--quick] [--groups "homogeneous mixed all"]
#                            [--systems "de de-zstd ksm ksm_fast zram ksm+zram latency overhead"]
#                            [--note TEXT] [--fresh] [--out DIR] [--report-only]
#
# For each group of corpus VM images (../shared/corpus/MANIFEST.md), each
# system in turn, every image loaded into its own process (one VM each):
#   de                 de-guest guests (uffd backend) under de-dom0d at its
#                      default policy, one share group, idle, until savings
#                      settle; saved = RAM - guests' resident memory - the
#                      daemon's anonymous memory (store, copies, indexes)
#   de-zstd            the same with "compressor zstd" (the one alternative
#                      policy; the goals are judged on de)
#   ksm, ksm_fast      anonymous private memory, MADV_NOHUGEPAGE +
#                      MADV_MERGEABLE; ksmd at the kernel's default rate /
#                      at pages_to_scan 10000 sleep 0, until merging settles
#   zram-<comp>        the images written into a new zram device, for every
#                      compressor the kernel offers
#   ksm+zram-<comp>    ideal sharing (one copy of each distinct content, zero
#                      pages free), the distinct pages then into zram
# and two pseudo-systems:
#   latency            fault latency seen by the faulting thread, per page
#                      kind, against a plain userfaultfd fault measured by
#                      the same harness (fault_probe.c); plus the daemon's own
#                      service-time histograms under a concurrent workload
#   overhead           de-guest workload throughput, no daemon vs default policy
#
# Writes OUT (default bench/results/peers): peers.json (contract in
# docs/peers-json.md), README.md (the report, rebuilt from peers.json),
# PNG plots, de-stats-GROUP-SYSTEM.json.  With --groups or --systems the new
# measurements are merged into an existing peers.json (so `--systems de`
# reruns only the Difference Engine); --fresh starts from nothing.
# --note TEXT is printed in the report (e.g. what else ran on the machine).
# --report-only rebuilds README.md and the plots from an existing peers.json.
#
# Every KSM setting is saved first and restored on exit, interrupt or error
# (and at the next start if this script was killed); zram devices it added
# are reset and hot_removed (an existing zram0 is never touched); every
# process it started is ended.
set -u
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

QUICK=0; FRESH=0; MERGE=0; REPORT_ONLY=0; NOTE=${PEERS_NOTE:-}
GROUPS_SEL="homogeneous mixed all"
ALL_SYSTEMS="de de-zstd ksm ksm_fast zram ksm+zram latency overhead"
SYSTEMS_SEL=$ALL_SYSTEMS
OUT=${OUT:-$top/bench/results/peers}
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1; GROUPS_SEL="homogeneous" ;;
    --groups) shift; GROUPS_SEL="${1:?--groups needs a list}"; MERGE=1 ;;
    --systems) shift; SYSTEMS_SEL="${1:?--systems needs a list}"; MERGE=1 ;;
    --note) shift; NOTE="${1:?--note needs a text}" ;;
    --fresh) FRESH=1 ;;
    --report-only) REPORT_ONLY=1 ;;
    --out) shift; OUT="${1:?--out needs a directory}" ;;
    -h|--help) sed -n '2,/^set -u/p' "$self" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-peers.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ $FRESH = 1 ] && MERGE=0
for s in $SYSTEMS_SEL; do
    case " $ALL_SYSTEMS " in *" $s "*) ;; *) echo "run-peers.sh: unknown system $s (one of: $ALL_SYSTEMS)" >&2; exit 2 ;; esac
done
want() { case " $SYSTEMS_SEL " in *" $1 "*) return 0 ;; esac; return 1; }
[ "$(id -u)" = 0 ] || { echo "run-peers.sh needs root (KSM, zram, userfaultfd)" >&2; exit 1; }

# --- settings --------------------------------------------------------------
if [ $QUICK = 1 ]; then
    KSM_CAP=90; KSM_FAST_CAP=60; DE_CAP=150; ACTIVE_S=30; TPUT_S=5; PROBE_MAX=1000
else
    KSM_CAP=300; KSM_FAST_CAP=120; DE_CAP=300; ACTIVE_S=60; TPUT_S=40; PROBE_MAX=3000
fi
KSM_WAIT_S=${KSM_WAIT_S:-600}            # wait at most this long (in all) for other mergeable processes to end
KSM_WAITED=0
KSM_STABLE_S=10; KSM_MIN_SCANS=3          # settled: pages_sharing unchanged 10 s, >= 3 full scans
DE_MIN_S=40; DE_STABLE_S=20               # settled: after 40 s, within 0.2% of the RAM for 20 s
KSM_FAST_PTS=10000; KSM_FAST_SLEEP=0
ACTIVE_GROUP=homogeneous
PROBE_IMAGE=vm-web-1
CORPUS=${CORPUS:-$top/../shared/corpus}
RAW=${RAW:-$top/../corpus-raw}
B=$top/build
PAGE=4096
KSM_STATE=/var/tmp/de-peers-ksm.saved     # survives a kill -9: restored at the next start

group_images() {
    case "$1" in
    homogeneous) echo "vm-web-1 vm-web-2" ;;
    mixed) echo "vm-web-1 vm-db-2 vm-kv-1" ;;
    all) echo "vm-web-1 vm-web-2 vm-db-2 vm-kv-1" ;;
    *) echo "run-peers.sh: unknown group $1 (homogeneous, mixed or all)" >&2; exit 2 ;;
    esac
}
for g in $GROUPS_SEL; do group_images "$g" > /dev/null || exit 2; done

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- state and cleanup ------------------------------------------------------
T=$(mktemp -d /tmp/de-peers.XXXXXX)
KSM=/sys/kernel/mm/ksm
PIDS=""          # processes we started and must end
ZDEVS=""         # zram devices we added
DPID=""
KSM_SAVED=0

ksm_norm() { case "$1" in *\[*\]*) echo "$1" | sed 's/.*\[\([^]]*\)\].*/\1/' ;; *) echo "$1" ;; esac; }
ksm_apply() {   # restore the settings in file $1
    local k v cur
    echo 2 > $KSM/run 2>/dev/null       # unmerge what was merged
    while read -r k v; do
        [ "$k" = run ] && continue
        cur=$(ksm_norm "$(cat "$KSM/$k" 2>/dev/null)")
        [ "$cur" = "$v" ] || echo "$v" > "$KSM/$k" 2>/dev/null || log "could not restore ksm/$k=$v"
    done < "$1"
    v=$(sed -n 's/^run //p' "$1")
    echo "${v:-0}" > $KSM/run 2>/dev/null || log "could not restore ksm/run=$v"
}
ksm_save() {
    local f v
    : > "$T/ksm.saved"
    for f in "$KSM"/*; do
        [ -f "$f" ] && [ $(( 0$(stat -c %a "$f") & 0200 )) != 0 ] || continue   # writable settings only
        v=$(cat "$f" 2>/dev/null) || continue
        echo "$(basename "$f") $(ksm_norm "$v")" >> "$T/ksm.saved"
    done
    cp "$T/ksm.saved" "$KSM_STATE"
    KSM_SAVED=1
}
ksm_restore() {
    [ $KSM_SAVED = 1 ] || return 0
    ksm_apply "$T/ksm.saved"
    rm -f "$KSM_STATE"
    KSM_SAVED=0
}
kill_pids() {
    local p i
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    for p in $PIDS; do
        for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    PIDS=""
}
zram_del() {   # $1 = id (one we added)
    echo 1 > /sys/block/zram$1/reset 2>/dev/null
    echo "$1" > /sys/class/zram-control/hot_remove 2>/dev/null || log "could not hot_remove zram$1"
    ZDEVS=$(echo " $ZDEVS " | sed "s/ $1 / /; s/^ *//; s/ *$//")
}
stop_daemon() {
    [ -n "$DPID" ] || return 0
    kill -TERM "$DPID" 2>/dev/null
    for i in $(seq 1 150); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; DPID=""
}
cleanup() {
    trap - EXIT INT TERM HUP
    kill_pids
    stop_daemon
    for z in $ZDEVS; do zram_del "$z"; done
    ksm_restore
    [ "${KEEP_TMP:-0}" = 1 ] && log "kept $T" || rm -rf "$T"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

# --- tools and inputs ---------------------------------------------------------
[ -d $KSM ] || die "no KSM in this kernel"
if [ -f "$KSM_STATE" ]; then
    log "restoring the KSM settings an interrupted run left in $KSM_STATE"
    ksm_apply "$KSM_STATE" && rm -f "$KSM_STATE"
fi
[ -x $B/dom0d/de-dom0d ] && [ -x $B/tools/de-guest/de-guest ] && [ -f $B/libdexc/.libs/libdexc.so ] ||
    sh scripts/setup.sh >&2 || die "build failed"
need_pkg() {   # command package
    command -v "$1" > /dev/null && return 0
    log "installing $2"
    apt-get install -y "$2" > "$T/apt.log" 2>&1 || { apt-get update > /dev/null 2>&1; apt-get install -y "$2" > "$T/apt.log" 2>&1; }
    command -v "$1" > /dev/null
}
need_pkg jq jq || die "jq is needed (apt-get install jq)"
need_pkg gnuplot gnuplot-nox || log "no gnuplot: plots skipped"
need_pkg zstd zstd || die "zstd is needed"
cc -O2 -Wall -o "$T/peer_load" bench/peers/peer_load.c || die "cannot build peer_load"
cc -O2 -Wall -pthread -Ilibdexc/include -o "$T/fault_probe" bench/peers/fault_probe.c \
    $B/libdexc/.libs/libdexc.so -Wl,-rpath,$B/libdexc/.libs -lm || die "cannot build fault_probe"
PL=$T/peer_load
if want zram || want ksm+zram; then
    [ -w /sys/class/zram-control/hot_add ] || modprobe zram num_devices=0 2>/dev/null
    [ -w /sys/class/zram-control/hot_add ] || die "no zram hot_add (modprobe zram)"
fi
mkdir -p "$OUT"

ALL_IMGS=""
for g in $GROUPS_SEL; do ALL_IMGS="$ALL_IMGS $(group_images $g)"; done
want latency && ALL_IMGS="$ALL_IMGS $PROBE_IMAGE $(group_images $ACTIVE_GROUP)"
ALL_IMGS=$(echo $ALL_IMGS | tr ' ' '\n' | sort -u)
: > "$T/inputs"
for n in $ALL_IMGS; do
    if [ -f "$RAW/$n.ram" ]; then
        f=$RAW/$n.ram
    else
        mkdir -p "$T/raw"; f=$T/raw/$n.ram
        log "decompressing $n"
        zstd -q -d --long=27 "$CORPUS/$n.ram.zst" -o "$f" || die "cannot decompress $CORPUS/$n.ram.zst"
    fi
    expect=$(grep "^| $n.ram.zst" "$CORPUS/MANIFEST.md" 2>/dev/null | grep -o '`[0-9a-f]\{64\}`' | head -n 1 | tr -d '`')
    got=$(sha256sum "$f" | cut -d' ' -f1)
    [ "$expect" = "$got" ] || log "WARNING: $n sha256 $got differs from MANIFEST (${expect:-absent})"
    echo "$n $f $got ${expect:-none} $(stat -c %s "$f")" >> "$T/inputs"
done
img_path() { awk -v n="$1" '$1 == n { print $2 }' "$T/inputs"; }

R=$T/res; mkdir -p "$R"
# PEERS_RESUME=DIR: the kept temporary directory (KEEP_TMP=1) of an interrupted
# run: its measurements are taken over, so only the systems still missing
# need --systems.
RESUMED=""
if [ -n "${PEERS_RESUME:-}" ]; then
    [ -d "$PEERS_RESUME/res" ] || die "PEERS_RESUME=$PEERS_RESUME has no res/"
    cp -a "$PEERS_RESUME/res/." "$R/"
    for f in latency.json overhead.json; do [ -f "$PEERS_RESUME/$f" ] && cp "$PEERS_RESUME/$f" "$T/"; done
    [ -d "$PEERS_RESUME/lat" ] && cp -a "$PEERS_RESUME/lat" "$T/"
    RESUMED=$PEERS_RESUME
    log "resuming the measurements in $PEERS_RESUME: $(cd "$R" && ls -d */* | tr '\n' ' ')"
fi
# put GROUP SYSTEM KEY VALUE: one measured value
put() { mkdir -p "$R/$1/$2"; echo "$4" > "$R/$1/$2/$3"; }
HZ=$(getconf CLK_TCK)
pid_cpu() { awk -v hz="$HZ" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' /proc/$1/stat 2>/dev/null || echo 0; }
ksmd_cpu() { pid_cpu "$(pgrep -x ksmd | head -n 1)"; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
t90() {  # series file (t saved) and final value -> first t with saved >= 90%
    awk -v f="$2" '$2 >= 0.9 * f { print $1; exit }' "$1"
}
ksm_get() { cat $KSM/$1; }
others() {  # processes other than ours using CPU now (pid, %cpu over 2 s, command)
    top -b -n 2 -d 2 -w 200 2>/dev/null | awk '/^top -/ { n++ } n == 2 && $1 ~ /^[0-9]+$/ && $9 + 0 >= 5 { printf "%s %s%% %s; ", $1, $9, $12 }'
}
NOW() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# --- KSM ---------------------------------------------------------------------
foreign_mergeable() {   # pids (and names) of processes not ours with MADV_MERGEABLE memory
    local f p
    for f in $(grep -l ' mg' /proc/[0-9]*/smaps 2>/dev/null); do
        p=$(echo "$f" | cut -d/ -f3)
        case " $PIDS " in *" $p "*) continue ;; esac
        printf '%s(%s) ' "$p" "$(cat /proc/$p/comm 2>/dev/null)"
    done
}
ksm_run() {   # group system pages_to_scan sleep_ms cap_s images...: retried while others start using KSM
    local rc attempts=0
    while :; do
        attempts=$((attempts + 1))
        ksm_try "$@"; rc=$?
        [ $rc = 3 ] || break
    done
    put $1 $2 attempts $attempts
}
ksm_try() {
    local g=$1 sys=$2 pts=$3 slp=$4 cap=$5; shift 5
    local total=0 n f i p
    echo 2 > $KSM/run; echo 0 > $KSM/run
    # ksmd scans every MADV_MERGEABLE area on the machine: wait for others to go
    local foreign waited=0
    foreign=$(foreign_mergeable)
    while [ -n "$foreign" ] && [ $KSM_WAITED -lt $KSM_WAIT_S ]; do
        [ $((KSM_WAITED % 60)) = 0 ] && log "$g/$sys: waiting (at most ${KSM_WAIT_S}s in all) for other processes with mergeable memory to end: $foreign"
        sleep 10; waited=$((waited + 10)); KSM_WAITED=$((KSM_WAITED + 10))
        foreign=$(foreign_mergeable)
    done
    [ -z "$foreign" ] || log "$g/$sys: WARNING: measuring while other processes have mergeable memory (ksmd scans them too): $foreign"
    put $g $sys foreign_mergeable_processes "${foreign:-none}"
    put $g $sys waited_for_foreign_s $waited
    log "$g/$sys: loading $# images (pages_to_scan $pts, sleep_millisecs $slp)"
    echo "$pts" > $KSM/pages_to_scan; echo "$slp" > $KSM/sleep_millisecs
    local lpids=""
    for n in "$@"; do
        f=$(img_path $n); total=$((total + $(stat -c %s "$f")))
        "$PL" ksm "$f" > "$T/ld.$n" 2>&1 &
        PIDS="$PIDS $!"; lpids="$lpids $!"
        echo "$!" > "$T/ldpid.$n"
    done
    local regions=""
    for n in "$@"; do
        for i in $(seq 1 600); do grep -q ready "$T/ld.$n" && break; sleep 0.1; done
        grep -q ready "$T/ld.$n" || die "loader for $n not ready: $(cat "$T/ld.$n")"
        regions="$regions $(cat "$T/ldpid.$n"):$(sed -n 's/.*addr=\(0x[0-9a-f]*\).*/\1/p' "$T/ld.$n"):$(sed -n 's/.*pages=\([0-9]*\).*/\1/p' "$T/ld.$n")"
    done
    local uzp fs0 c0 t0 now=0 t last=-1 same=0 settled=no sharing=0 saved=0 ks
    uzp=$(ksm_get use_zero_pages)
    fs0=$(ksm_get full_scans); c0=$(ksmd_cpu); t0=$(date +%s.%N)
    local ser="$T/series-$g-$sys.dat"; echo "0 0 0" > "$ser"
    echo 1 > $KSM/run
    for t in $(seq 1 "$cap"); do
        sleep 1
        sharing=$(ksm_get pages_sharing)
        ks=$("$PL" ksmsaved $regions) || die "ksmsaved failed"
        saved=$(( $(echo "$ks" | sed 's/.*saved_pages=\([0-9]*\).*/\1/') * PAGE ))
        now=$(elapsed "$t0")
        echo "$now $saved $(( (sharing + (uzp == 1 ? $(ksm_get ksm_zero_pages) : 0)) * PAGE ))" >> "$ser"
        # another process started using KSM: start again once it has gone (within the wait budget)
        if [ -z "$foreign" ] && [ $((t % 10)) = 0 ] && [ $KSM_WAITED -lt $KSM_WAIT_S ]; then
            local late; late=$(foreign_mergeable)
            if [ -n "$late" ]; then
                log "$g/$sys: $late started using KSM during the run: starting again once it has gone"
                echo 2 > $KSM/run; kill_pids; echo 0 > $KSM/run
                return 3
            fi
        fi
        if [ "$saved" = "$last" ]; then same=$((same + 1)); else same=0; fi
        last=$saved
        if [ $(( $(ksm_get full_scans) - fs0 )) -ge $KSM_MIN_SCANS ] && [ $same -ge $KSM_STABLE_S ] && [ "$saved" -gt 0 ]; then
            settled=yes; break
        fi
    done
    local cpu; cpu=$(awk -v a="$c0" -v b="$(ksmd_cpu)" 'BEGIN { printf "%.2f", b - a }')
    local mine=0
    for p in $lpids; do mine=$((mine + $(cat /proc/$p/ksm_merging_pages 2>/dev/null || echo 0))); done
    put $g $sys saved_bytes $saved; put $g $sys cpu_s $cpu; put $g $sys total_bytes $total
    put $g $sys pages_sharing_saved_bytes $(( (sharing + (uzp == 1 ? $(ksm_get ksm_zero_pages) : 0)) * PAGE ))
    put $g $sys settled $settled; put $g $sys elapsed_s $now
    put $g $sys time_to_90pct_s "$(t90 "$ser" $saved)"
    put $g $sys full_scans $(( $(ksm_get full_scans) - fs0 ))
    put $g $sys pages_shared "$(ksm_get pages_shared)"; put $g $sys pages_sharing "$sharing"
    put $g $sys general_profit_bytes "$(ksm_get general_profit)"
    put $g $sys loaders_merging_pages $mine
    put $g $sys foreign_ksm_pages $(( $(ksm_get pages_shared) + sharing - mine ))
    put $g $sys use_zero_pages "$uzp"
    put $g $sys pages_to_scan "$pts"; put $g $sys sleep_millisecs "$slp"
    put $g $sys measured_at "$(NOW)"
    cp "$ser" "$R/$g/$sys/series.dat"
    log "$g/$sys: saved $((saved / 1048576)) MiB of $((total / 1048576)) MiB (pages_sharing: $((sharing * PAGE / 1048576)) MiB), ksmd CPU ${cpu}s, settled=$settled after ${now}s, full_scans +$(( $(ksm_get full_scans) - fs0 ))"
    echo 2 > $KSM/run
    kill_pids
    for i in $(seq 1 100); do [ "$(ksm_get pages_sharing)" = 0 ] && break; sleep 0.1; done
    echo 0 > $KSM/run
}

# --- zram --------------------------------------------------------------------
zram_write() {  # comp disksize files... -> prints "mem_used orig cpu wall compr same"
    local comp=$1 size=$2; shift 2
    local id off=0 f mb
    id=$(cat /sys/class/zram-control/hot_add) || die "zram hot_add failed"
    ZDEVS="$ZDEVS $id"
    [ "$id" != 0 ] || die "internal: hot_add returned zram0"
    echo "$comp" > /sys/block/zram$id/comp_algorithm || die "zram$id: cannot set $comp"
    echo "$size" > /sys/block/zram$id/disksize || die "zram$id: cannot set disksize"
    : > "$T/zcpu"
    for f in "$@"; do
        mb=$(( $(stat -c %s "$f") / 1048576 ))
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
    local files="" total=0 n f comp used orig cpu wall saved
    for n in "$@"; do f=$(img_path $n); files="$files $f"; total=$((total + $(stat -c %s "$f"))); done
    if want zram; then
        for comp in $ZCOMPS; do
            log "$g/zram-$comp: writing $((total / 1048576)) MiB"
            set -- $(zram_write $comp $((total + 16777216)) $files)
            used=$1; orig=$2; cpu=$3; wall=$4; saved=$((total - $1))
            put $g zram-$comp saved_bytes $saved; put $g zram-$comp cpu_s $cpu
            put $g zram-$comp total_bytes $total; put $g zram-$comp mem_used_total $used
            put $g zram-$comp orig_data_size $orig; put $g zram-$comp compr_data_size $5
            put $g zram-$comp same_pages $6; put $g zram-$comp time_to_90pct_s $wall
            put $g zram-$comp elapsed_s $wall; put $g zram-$comp settled yes
            put $g zram-$comp measured_at "$(NOW)"
            printf '0 0\n%s %s\n' "$wall" "$saved" > "$R/$g/zram-$comp/series.dat"
            log "$g/zram-$comp: saved $((saved / 1048576)) MiB (mem_used_total $((used / 1048576)) MiB, orig_data_size $((orig / 1048576)) MiB), writer CPU ${cpu}s"
        done
    fi
    want ksm+zram || return 0
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
        saved=$((total - $1))
        put $g ksm+zram-$comp saved_bytes $saved; put $g ksm+zram-$comp cpu_s $3
        put $g ksm+zram-$comp total_bytes $total; put $g ksm+zram-$comp mem_used_total $1
        put $g ksm+zram-$comp distinct_nonzero_pages $dn; put $g ksm+zram-$comp time_to_90pct_s $4
        put $g ksm+zram-$comp elapsed_s $4; put $g ksm+zram-$comp settled yes
        put $g ksm+zram-$comp measured_at "$(NOW)"
        printf '0 0\n%s %s\n' "$4" "$saved" > "$R/$g/ksm+zram-$comp/series.dat"
        log "$g/ksm+zram-$comp: saved $((saved / 1048576)) MiB, writer CPU $3 s"
    done
    rm -f "$T/distinct.bin"
}

# --- Difference Engine ----------------------------------------------------------
daemon() {   # extra config lines: start de-dom0d on our own sockets
    printf 'socket "%s/ctl.sock"\nguest_socket "%s/guests.sock"\nstats_interval 0\n%s\n' \
        "$T" "$T" "$1" > "$T/de.conf"
    rm -f "$T/ctl.sock" "$T/guests.sock"
    $B/dom0d/de-dom0d -f "$T/de.conf" > "$T/daemon.log" 2>&1 &
    DPID=$!
    for i in $(seq 1 100); do [ -S "$T/guests.sock" ] && [ -S "$T/ctl.sock" ] && break; sleep 0.1; done
    [ -S "$T/guests.sock" ] || die "de-dom0d did not start: $(cat "$T/daemon.log")"
}
ctl() { $B/tools/de-ctl/de-ctl -s "$T/ctl.sock" "$@"; }
FAIL=0
stop_guests() {   # TERM the guests, wait: each verifies every byte; failures in FAIL
    local p i fail=0
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    for p in $PIDS; do
        for i in $(seq 1 1200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" || fail=$((fail + 1))
    done
    PIDS=""
    FAIL=$fail
}
shmem_kib() { awk '/^RssShmem:/ { print $2 }' /proc/$1/status 2>/dev/null || echo 0; }
anon_kib() { awk '/^RssAnon:/ { print $2 }' /proc/$1/status 2>/dev/null || echo 0; }
de_run() {   # group system extra-config cap images...
    local g=$1 sys=$2 conf=$3 cap=$4; shift 4
    local total=0 n f files="" gpids=""
    for n in "$@"; do f=$(img_path $n); files="$files $f"; total=$((total + $(stat -c %s "$f"))); done
    local comp=lzo; case "$conf" in *"compressor zstd"*) comp=zstd ;; esac
    log "$g/$sys: de-analyze prediction (compressor $comp)"
    local pred; pred=$($B/tools/de-analyze/de-analyze --json --main-only --no-progress --compressor $comp $files 2>/dev/null) ||
        pred=$($B/tools/de-analyze/de-analyze --json --main-only --no-progress $files 2>/dev/null)
    put $g $sys predicted_saved_bytes "$(echo "$pred" | jq '.saved_bytes.de // null')"
    for k in share compress patch share_patch de; do
        put $g $sys offline_saved_${k}_bytes "$(echo "$pred" | jq ".saved_bytes.$k // null")"
    done
    log "$g/$sys: $# idle guests (de-guest --mem 128 --rate 0.01), share_group peers, policy: ${conf:-defaults}"
    daemon "share_group \"peers\"
$conf"
    sleep 0.5
    local base; base=$(anon_kib $DPID)
    local c0 t0; c0=$(pid_cpu $DPID); t0=$(date +%s.%N)
    for n in "$@"; do
        $B/tools/de-guest/de-guest --socket "$T/guests.sock" --mem 128 --image "$(img_path $n)" \
            --name $n --rate 0.01 --duration 0 --report "$T/$g-$sys-$n.json" > "$T/$g-$sys-$n.out" 2>&1 &
        PIDS="$PIDS $!"; gpids="$gpids $!"
    done
    local ser="$T/series-$g-$sys.dat"; echo "0 0 0" > "$ser"
    local t js="{}" saved=0 ctlsaved=0 now=0 settled=no res p cpu_now
    for t in $(seq 1 "$cap"); do
        sleep 1
        js=$(ctl stats --json 2>/dev/null) || { kill -0 $DPID 2>/dev/null || die "$g/$sys: de-dom0d died: $(tail -n 5 "$T/daemon.log")"; continue; }
        ctlsaved=$(echo "$js" | jq '.global.saved_bytes')
        res=0; for p in $gpids; do res=$((res + $(shmem_kib $p))); done
        saved=$(( total - res * 1024 - ($(anon_kib $DPID) - base) * 1024 ))
        now=$(elapsed "$t0")
        echo "$now $saved $ctlsaved" >> "$ser"
        # settled: after DE_MIN_S, within 0.2% of the RAM over the last DE_STABLE_S samples
        if [ "$(awk -v n="$now" -v m=$DE_MIN_S 'BEGIN { print (n >= m) }')" = 1 ] && [ "$saved" -gt 0 ] &&
           tail -n $((DE_STABLE_S + 1)) "$ser" | awk -v tot=$total -v w=$((DE_STABLE_S + 1)) \
               'NR == 1 { mn = mx = $2 } { if ($2 < mn) mn = $2; if ($2 > mx) mx = $2 } END { exit !(NR >= w && mx - mn <= 0.002 * tot) }'; then
            settled=yes; break
        fi
    done
    local cpu; cpu=$(awk -v a="$c0" -v b="$(pid_cpu $DPID)" 'BEGIN { printf "%.2f", b - a }')
    echo "$js" > "$OUT/de-stats-$g-$sys.json"
    put $g $sys saved_bytes $saved; put $g $sys cpu_s $cpu; put $g $sys total_bytes $total
    put $g $sys ctl_saved_bytes $ctlsaved
    put $g $sys settled $settled; put $g $sys elapsed_s $now
    put $g $sys time_to_90pct_s "$(t90 "$ser" $saved)"
    for k in pages_zero pages_shared pages_patched pages_compressed pages_swapped store_bytes index_bytes objects scan_cpu_s errors; do
        put $g $sys $k "$(echo "$js" | jq ".global.$k // null")"
    done
    put $g $sys guests_resident_bytes $((res * 1024))
    put $g $sys daemon_anon_bytes $(( $(anon_kib $DPID) * 1024 )); put $g $sys daemon_anon_at_start_bytes $((base * 1024))
    put $g $sys policy "${conf:-defaults}"
    put $g $sys daemon_commit "$DAEMON_COMMIT"
    put $g $sys measured_at "$(NOW)"
    cp "$ser" "$R/$g/$sys/series.dat"
    log "$g/$sys: saved $((saved / 1048576)) MiB of $((total / 1048576)) MiB (daemon's accounting $((ctlsaved / 1048576)) MiB, de-analyze $(( $(cat $R/$g/$sys/predicted_saved_bytes 2>/dev/null || echo 0) / 1048576 )) MiB), daemon CPU ${cpu}s, settled=$settled after ${now}s"
    stop_guests; local fail=$FAIL
    put $g $sys guests_failed_verification $fail
    [ "$fail" = 0 ] || log "$g/$sys: $fail guest(s) FAILED verification"
    stop_daemon
}

# Fault latency, guest side, one technique at a time (fault_probe de).
probe_kind() {   # kind policy-lines
    local kind=$1 conf=$2 f pp t last="" same=0 js
    f=$(img_path $PROBE_IMAGE)
    log "latency/$kind: one guest ($PROBE_IMAGE), policy: $(echo $conf)"
    daemon "$conf"
    FAULT_PROBE_RAW=$T/lat "$T/fault_probe" de "$T/guests.sock" "$kind" "$f" $PROBE_MAX > "$T/probe-$kind.out" 2> "$T/probe-$kind.err" &
    pp=$!; PIDS="$PIDS $pp"
    for t in $(seq 1 150); do sleep 1; grep -q ready "$T/probe-$kind.out" && break; done
    for t in $(seq 1 240); do
        sleep 1
        js=$(ctl stats --json 2>/dev/null) || continue
        cur=$(echo "$js" | jq -c '.global | [.pages_zero, .pages_shared, .pages_patched, .pages_compressed, .pages_swapped]')
        if [ "$cur" = "$last" ]; then same=$((same + 1)); else same=0; fi
        last=$cur
        # settled: the kind probed is there and nothing changed for 15 s
        [ "$(echo "$js" | jq --arg k $kind '.global["pages_" + $k] // 0')" -gt 0 ] && [ $same -ge 15 ] && break
    done
    echo "$js" | jq '.global' > "$T/probe-$kind.before"
    # the floor again, right before: the machine's load drifts
    "$T/fault_probe" floor 4096 2 > "$T/floor-$kind.json" || echo null > "$T/floor-$kind.json"
    kill -USR1 $pp
    for t in $(seq 1 1800); do kill -0 $pp 2>/dev/null || break; sleep 0.1; done
    kill -0 $pp 2>/dev/null && { log "latency/$kind: probe did not finish in 180 s"; kill -KILL $pp; }
    wait $pp; local rc=$?
    PIDS=$(echo " $PIDS " | sed "s/ $pp / /")
    ctl stats --json | jq '.global' > "$T/probe-$kind.after"
    stop_daemon
    tail -n 1 "$T/probe-$kind.out" | jq --arg k "$kind" --arg conf "$(echo $conf)" --argjson rc $rc \
        --slurpfile b "$T/probe-$kind.before" --slurpfile a "$T/probe-$kind.after" --slurpfile fl "$T/floor-$kind.json" \
        '{kind: $k, policy: $conf, exit_status: $rc, image_pages: .pages, visited: .visited, resident_skipped: .resident_skipped,
          floor_adjacent: ($fl[0] | if . == null then null else {zeropage: {count: .zeropage.count, p50_us: .zeropage.p50_us, p99_us: .zeropage.p99_us}, copy: {count: .copy.count, p50_us: .copy.p50_us, p99_us: .copy.p99_us}} end),
          wrong_pages: .wrong_pages, zero: .zero, nonzero: .nonzero, floor_interleaved: .floor_zeropage,
          reclaimed_before: ($b[0] | {pages_zero, pages_shared, pages_patched, pages_compressed, pages_swapped, store_bytes, swap_bytes}),
          daemon_service: $a[0].fault_latency}' > "$T/probe-$kind.json" ||
        { log "latency/$kind: no probe result: $(cat "$T/probe-$kind.err")"; echo null > "$T/probe-$kind.json"; }
    log "latency/$kind: $(jq -c '{zero: .zero.p50_us, nonzero: .nonzero.p50_us, n: (.nonzero.count), wrong: .wrong_pages}' "$T/probe-$kind.json" 2>/dev/null)"
}
latency_run() {
    mkdir -p "$T/lat"
    log "latency: userfaultfd floor (fault_probe floor 16384 5)"
    FAULT_PROBE_RAW=$T/lat "$T/fault_probe" floor 16384 5 > "$T/floor.json" || die "fault_probe floor failed"
    probe_kind shared "patch no
compress no"
    probe_kind patched "share no
compress no"
    probe_kind compressed "share no
patch no"
    probe_kind swapped "share no
patch no
swap yes
swap_file \"$T/swap.img\"
swap_max 1G
store_budget 1M"
    # Under load: the daemon's own service times while guests read and write.
    local g=$ACTIVE_GROUP n
    log "latency/active: group $g, rate 300, hot 10% weight 80%, 20% writes, ${ACTIVE_S}s, default policy"
    daemon "share_group \"peers\""
    for n in $(group_images $g); do
        $B/tools/de-guest/de-guest --socket "$T/guests.sock" --mem 128 --image "$(img_path $n)" \
            --name $n --rate 300 --hot 10 --hot-weight 80 --write-ratio 20 --duration $ACTIVE_S \
            --report "$T/act-$n.json" > "$T/act-$n.out" 2>&1 &
        PIDS="$PIDS $!"
    done
    sleep $((ACTIVE_S - 2))
    ctl stats --json > "$T/active.json"
    stop_guests; local fail=$FAIL
    stop_daemon
    jq --arg g "$g" --argjson fail "$fail" --argjson s "$ACTIVE_S" \
        '{group: $g, duration_s: $s, rate_ops_s: 300, hot_pct: 10, hot_weight_pct: 80, write_pct: 20, policy: "defaults",
          guests_failed_verification: $fail, saved_bytes: .global.saved_bytes, faults: .global.faults,
          fault_p50_us: .global.fault_p50_us, fault_p99_us: .global.fault_p99_us,
          by_kind: .global.fault_latency}' "$T/active.json" > "$T/active.sum"
    jq -s '[.[] | {name, ops_per_s, op_latency_us}]' "$T"/act-*.json > "$T/active.guests" 2>/dev/null || echo '[]' > "$T/active.guests"
    log "latency/active: $(jq -c .by_kind "$T/active.sum")"
    jq -n --slurpfile floor "$T/floor.json" --slurpfile sh "$T/probe-shared.json" --slurpfile pa "$T/probe-patched.json" \
        --slurpfile co "$T/probe-compressed.json" --slurpfile sw "$T/probe-swapped.json" \
        --slurpfile act "$T/active.sum" --slurpfile ag "$T/active.guests" --arg img $PROBE_IMAGE --argjson max $PROBE_MAX \
        --arg at "$(NOW)" \
        '{measured_at: $at,
          harness: "fault_probe.c: CLOCK_MONOTONIC around a one-byte read of an unmapped page, one thread, same code for the floor and for DE",
          floor: $floor[0],
          de_probe: {image: $img, max_samples: $max, runs: {shared: $sh[0], patched: $pa[0], compressed: $co[0], swapped: $sw[0]},
                     by_kind: {zero: $sh[0].zero, shared: $sh[0].nonzero, patched: $pa[0].nonzero,
                               compressed: $co[0].nonzero, swapped: $sw[0].nonzero}},
          de_active: ($act[0] + {guests: $ag[0]})}' > "$T/latency.json" || die "cannot assemble latency.json"
}
overhead_run() {
    local base managed r i
    tput() {   # policy lines -> ops/s of one full-speed guest
        daemon "$1"
        $B/tools/de-guest/de-guest --socket "$T/guests.sock" --mem 32 --name bench \
            --rate 0 --hot 10 --hot-weight 90 --write-ratio 20 --duration $TPUT_S > "$T/tput" 2>&1
        r=$?
        stop_daemon
        [ $r = 0 ] || log "overhead: de-guest exit $r: $(cat "$T/tput")"
        sed -n 's/.*ops\/s=\([0-9.]*\).*/\1/p' "$T/tput"
    }
    log "overhead: de-guest --rate 0, 32 MiB, ${TPUT_S}s, 'enable no' vs default policy, 3 runs each, interleaved (median; the daemon starts reclaiming after ~15 s)"
    : > "$T/tput.base"; : > "$T/tput.managed"
    for i in 1 2 3; do
        tput "enable no" >> "$T/tput.base"
        tput "" >> "$T/tput.managed"
    done
    base=$(sort -n "$T/tput.base" | sed -n 2p)
    managed=$(sort -n "$T/tput.managed" | sed -n 2p)
    jq -n --argjson b "${base:-0}" --argjson m "${managed:-0}" --argjson s $TPUT_S --arg at "$(NOW)" \
        --argjson br "$(jq -s . "$T/tput.base")" --argjson mr "$(jq -s . "$T/tput.managed")" \
        '{measured_at: $at, guest_mib: 32, duration_s: $s, runs: 3, statistic: "median", hot_pct: 10, hot_weight_pct: 90, write_pct: 20,
          unmanaged_ops_s: $b, default_policy_ops_s: $m,
          unmanaged_runs_ops_s: $br, default_policy_runs_ops_s: $mr,
          slowdown_pct: (if $b > 0 then (100 * (1 - $m / $b)) else null end)}' > "$T/overhead.json"
    log "overhead: unmanaged $base ops/s, default policy $managed ops/s"
}

if [ $REPORT_ONLY = 0 ]; then
# --- run -------------------------------------------------------------------------
ZCOMPS=""
if want zram || want ksm+zram; then
    ZCOMPS=$(id=$(cat /sys/class/zram-control/hot_add) && { cat /sys/block/zram$id/comp_algorithm | tr -d '[]'; echo "$id" > /sys/class/zram-control/hot_remove; })
    [ -n "$ZCOMPS" ] || die "cannot list zram compressors"
fi
ksm_save
KSM_DEF_PTS=$(awk '$1 == "pages_to_scan" { print $2 }' "$T/ksm.saved")
KSM_DEF_SLEEP=$(awk '$1 == "sleep_millisecs" { print $2 }' "$T/ksm.saved")
[ "$KSM_DEF_PTS $KSM_DEF_SLEEP" = "100 20" ] ||
    log "WARNING: KSM at start is pages_to_scan $KSM_DEF_PTS sleep_millisecs $KSM_DEF_SLEEP, not the kernel default 100/20; ksm uses 100/20"
KSM_DEF_PTS=100; KSM_DEF_SLEEP=20
START=$(NOW)
OTHERS_START=$(others)
# what the daemon binary was built from: HEAD, "+dirty" if the daemon's
# sources differ from it, "+stale" if a source is newer than the binary
DAEMON_COMMIT="$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- dom0d libdexc 2>/dev/null || echo '+dirty')$(
    [ -z "$(find dom0d libdexc -name '*.[ch]' -newer $B/dom0d/.libs/de-dom0d 2>/dev/null | head -n 1)" ] || echo '+stale')"
log "groups: $GROUPS_SEL; systems: $SYSTEMS_SEL; zram compressors: ${ZCOMPS:-n/a}; quick=$QUICK; merge=$MERGE"
[ -n "$OTHERS_START" ] && log "other processes using CPU: $OTHERS_START"

for g in $GROUPS_SEL; do
    imgs=$(group_images $g)
    want de && de_run $g de "" $DE_CAP $imgs
    want de-zstd && de_run $g de-zstd "compressor zstd" $DE_CAP $imgs
    { want zram || want ksm+zram; } && zram_run $g $imgs
done
want latency && latency_run
want overhead && overhead_run
# KSM last: ksmd scans every mergeable area on the machine, so it waits for
# other users of KSM (e.g. a QEMU) to end, up to KSM_WAIT_S seconds.
for g in $GROUPS_SEL; do
    imgs=$(group_images $g)
    want ksm && ksm_run $g ksm "$KSM_DEF_PTS" "$KSM_DEF_SLEEP" $KSM_CAP $imgs
    want ksm_fast && ksm_run $g ksm_fast $KSM_FAST_PTS $KSM_FAST_SLEEP $KSM_FAST_CAP $imgs
done
ksm_restore
END=$(NOW)
OTHERS_END=$(others)

# --- peers.json ------------------------------------------------------------------
log "writing $OUT"
{
    echo "{"
    first_g=1
    for g in $GROUPS_SEL; do
        [ -d "$R/$g" ] || continue
        [ $first_g = 1 ] || echo ","; first_g=0
        printf '"%s": {"images": %s' "$g" "$(group_images $g | jq -R 'split(" ")')"
        for sd in "$R/$g"/*/; do
            sys=$(basename "$sd")
            printf ', "%s": {' "$sys"
            first_k=1
            for kf in "$sd"*; do
                k=$(basename "$kf")
                [ "$k" = series.dat ] && continue
                v=$(cat "$kf")
                [ $first_k = 1 ] || printf ','; first_k=0
                case "$v" in
                ''|null) printf '"%s": null' "$k" ;;
                -|*[!0-9.-]*|*.*.*|*-*-*|.*|*.) printf '"%s": %s' "$k" "$(printf '%s' "$v" | jq -R .)" ;;
                *) printf '"%s": %s' "$k" "$v" ;;
                esac
            done
            if [ -f "$sd/series.dat" ]; then
                printf ', "series": %s' "$(awk '{ printf "%s[%s,%s]", (NR > 1 ? "," : ""), $1, $2 }' "$sd/series.dat" | sed 's/^/[/; s/$/]/')"
            fi
            printf '}'
        done
        printf '}'
    done
    echo "}"
} > "$T/groups.raw"
jq '.' "$T/groups.raw" > /dev/null || die "internal: bad groups JSON ($(cat "$T/groups.raw" | head -c 2000))"

inputs=$(while read -r n f got expect size; do
    jq -n --arg n "$n" --arg f "$f" --arg got "$got" --arg want "$expect" --argjson size "$size" \
        '{name: $n, file: $f, bytes: $size, sha256: $got, manifest_sha256: $want, sha256_ok: ($got == $want)}'
done < "$T/inputs" | jq -s .)
ksm_settings=$(awk '{ printf "%s\t%s\n", $1, $2 }' "$T/ksm.saved" | jq -R 'split("\t") | {(.[0]): .[1]}' | jq -s add)
[ -f "$T/latency.json" ] || echo null > "$T/latency.json"
[ -f "$T/overhead.json" ] || echo null > "$T/overhead.json"

jq -n \
  --slurpfile gr "$T/groups.raw" \
  --argjson inputs "$inputs" \
  --argjson ksm "$ksm_settings" \
  --slurpfile lat "$T/latency.json" \
  --slurpfile over "$T/overhead.json" \
  --arg cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
  --argjson cores "$(nproc)" --arg kernel "$(uname -r)" --arg os "$(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-?}")" \
  --arg virt "$(systemd-detect-virt 2>/dev/null || echo unknown)" \
  --argjson memtotal "$(awk '/MemTotal/ { print $2 * 1024 }' /proc/meminfo)" \
  --arg tstart "$START" --arg tend "$END" --argjson quick $QUICK \
  --arg cmd "bench/peers/run-peers.sh$([ $QUICK = 1 ] && printf ' --quick') --groups \"$GROUPS_SEL\" --systems \"$SYSTEMS_SEL\"" \
  --arg note "$NOTE" --arg o1 "$OTHERS_START" --arg o2 "$OTHERS_END" --arg resumed "$RESUMED" \
  --arg zc "$ZCOMPS" --arg commit "$(git rev-parse --short HEAD 2>/dev/null)" \
  --argjson kcap $KSM_CAP --argjson kfcap $KSM_FAST_CAP --argjson dcap $DE_CAP \
  --argjson kst $KSM_STABLE_S --argjson kms $KSM_MIN_SCANS --argjson dmin $DE_MIN_S --argjson dst $DE_STABLE_S \
  --argjson dpts $KSM_DEF_PTS --argjson dslp $KSM_DEF_SLEEP --argjson fpts $KSM_FAST_PTS --argjson fslp $KSM_FAST_SLEEP \
'
def sysout: with_entries(
    if (.value | type) == "object" and (.value | has("saved_bytes")) then
      .value |= (. + {saved_pct: (if (.total_bytes // 0) > 0 then (100 * .saved_bytes / .total_bytes) else null end),
                      saved_mib_per_cpu_s: (if (.cpu_s // 0) > 0 then (.saved_bytes / 1048576 / .cpu_s) else null end)})
    else . end);
{
  generated: {start: $tstart, end: $tend, quick: ($quick == 1), command: $cmd, repo_commit: $commit,
              note: $note, other_processes_using_cpu: {at_start: $o1, at_end: $o2},
              resumed: (if $resumed == "" then null else "took over the measurements of an interrupted run (each result has its measured_at)" end)},
  machine: {cpu_model: $cpu, cores: $cores, kernel: $kernel, os: $os, virtualization: $virt, mem_total_bytes: $memtotal},
  inputs: $inputs,
  settings: {
    page_bytes: 4096,
    ksm: {kernel_settings_at_start: $ksm,
          ksm: {pages_to_scan: $dpts, sleep_millisecs: $dslp, note: "the kernel defaults; every other KSM setting as found (use_zero_pages, smart_scan, advisor_mode: see kernel_settings_at_start)"},
          ksm_fast: {pages_to_scan: $fpts, sleep_millisecs: $fslp},
          settle_rule: "saved unchanged for \($kst) s and full_scans advanced >= \($kms)",
          cap_s: {ksm: $kcap, ksm_fast: $kfcap},
          saved: "pages of our loaders that share a frame with another of their pages (present pages - distinct frames, from /proc/PID/pagemap: exact for our processes whatever else ksmd merges; equals pages_sharing * 4096 when nothing else is mergeable, recorded as pages_sharing_saved_bytes); KSM metadata (rmap items, stable nodes) not subtracted (generous to KSM; general_profit recorded)",
          cpu: "ksmd utime+stime from run=1 to the settle point",
          loader: "one process per image: MAP_PRIVATE|MAP_ANONYMOUS, MADV_NOHUGEPAGE, image copied in, MADV_MERGEABLE"},
    zram: {compressors: ($zc | split(" ") | map(select(. != ""))
                         | if length > 0 then . else ([$gr[0][] | keys[] | select(startswith("zram-")) | ltrimstr("zram-")] | unique) end),
           method: "new device per run (hot_add), images written with dd oflag=direct bs=1M at distinct offsets",
           saved: "bytes written - mem_used_total (= 1 - mem_used_total / bytes stored)",
           cpu: "user+sys of the dd writers (zram compresses in the writer)"},
    "ksm+zram": {method: "ideal sharing (one copy of each distinct page content, zero pages and duplicates free) then the distinct non-zero pages into zram",
                 saved: "total image bytes - mem_used_total", cpu: "zram writer CPU only: the sharing is free (generous to the peer)"},
    de: {backend: "uffd: de-guest guests, --mem 128 --image IMAGE --rate 0.01 (idle)", share_group: "peers (cross-VM sharing and patching on)",
         policy: {de: "daemon defaults", "de-zstd": "daemon defaults + compressor zstd"},
         settle_rule: "after \($dmin) s, saved_bytes within 0.2% of the group RAM over \($dst) s", cap_s: $dcap,
         saved: "group RAM - guests resident memory (RssShmem: their memfd RAM) - growth of the daemon anonymous memory (RssAnon: store, own copies of canonical and reference pages, indexes, records); the daemon own accounting is ctl_saved_bytes",
         cpu: "de-dom0d utime+stime from the guests start to the settle point"}
  },
  groups: ($gr[0] | with_entries(.value |= sysout)),
  fault_latency: $lat[0],
  overhead: $over[0]
}' > "$T/new.json" || die "cannot assemble peers.json"

if [ $MERGE = 1 ] && [ -f "$OUT/peers.json" ] && jq -e .groups "$OUT/peers.json" > /dev/null 2>&1; then
    log "merging into the existing $OUT/peers.json"
    jq -s '.[0] as $o | .[1] as $n
      | $o
      | .generated = ($n.generated + {history: ((($o.generated.history // [($o.generated | del(.history))])) + [$n.generated])}
                      + (if $n.generated.note == "" then {note: ($o.generated.note // "")} else {} end))
      | .machine = $n.machine | .settings = $n.settings
      | .inputs = (($n.inputs + $o.inputs) | unique_by(.name))
      | .groups = (reduce ($n.groups | to_entries[]) as $g (($o.groups // {}); .[$g.key] = ((.[$g.key] // {}) + $g.value)))
      | (if $n.fault_latency != null then .fault_latency = $n.fault_latency else . end)
      | (if $n.overhead != null then .overhead = $n.overhead else . end)' \
      "$OUT/peers.json" "$T/new.json" > "$T/merged.json" || die "cannot merge into peers.json"
    mv "$T/merged.json" "$OUT/peers.json"
else
    cp "$T/new.json" "$OUT/peers.json"
fi
fi   # REPORT_ONLY
[ -f "$OUT/peers.json" ] || die "no $OUT/peers.json"
J=$OUT/peers.json
[ -d "$T/lat" ] && ls "$T/lat" | grep -q . && { mkdir -p "$OUT/latency"; rm -f "$OUT"/latency/*.us; cp "$T"/lat/*.us "$OUT/latency/"; }

# --- plots (from peers.json) ---------------------------------------------------------
GSEL=$(jq -r '.groups | keys_unsorted | join(" ")' $J)
ORDER='(["de","de-zstd","ksm","ksm_fast"] as $first | (keys - ["images","ideal_share"]) as $k
       | ($first | map(select(. as $s | $k | index($s)))) + ($k - $first | sort))'
if command -v gnuplot > /dev/null; then
    P=$T/plot; mkdir -p "$P"
    for g in $GSEL; do
        plot=""
        for sys in de de-zstd ksm ksm_fast; do
            jq -r --arg g $g --arg s $sys '.groups[$g][$s].series // empty | .[] | "\(.[0]) \(.[1])"' $J > "$P/$g-$sys.dat"
            [ -s "$P/$g-$sys.dat" ] && plot="$plot${plot:+, }'$P/$g-$sys.dat' using 1:(\$2/1048576) with linespoints pt 7 ps 0.4 lw 2 title '$sys'"
        done
        [ -n "$plot" ] || continue
        gnuplot -e "set terminal pngcairo size 900,500 noenhanced; set output '$OUT/saved-over-time-$g.png';
            set title 'Saved memory over time, group $g ($(jq -r --arg g $g '.groups[$g].images | join(", ")' $J))';
            set xlabel 'seconds since start'; set ylabel 'saved MiB'; set key bottom right; set grid; plot $plot" 2> "$P/err" ||
            log "plot saved-over-time-$g failed: $(cat "$P/err")"
    done
    { printf 'system'; for g in $GSEL; do printf '\t%s' "$g"; done; echo
      for s in $(jq -r "[.groups[] | $ORDER[]] | reduce .[] as \$x ([]; if index([\$x]) then . else . + [\$x] end) | .[]" $J); do
        printf '%s' "$s"
        for g in $GSEL; do printf '\t%s' "$(jq -r --arg g $g --arg s $s '(.groups[$g][$s].saved_bytes // 0) / 1048576' $J)"; done
        echo
      done; } > "$P/final.dat"
    ng=$(echo $GSEL | wc -w)
    [ "$(wc -l < "$P/final.dat")" -gt 1 ] && [ $ng -gt 0 ] || ng=0
    cols="'$P/final.dat' using 2:xtic(1) title columnheader(2)"
    for i in $(seq 3 $((ng + 1))); do cols="$cols, '' using $i title columnheader($i)"; done
    [ $ng = 0 ] || gnuplot -e "set terminal pngcairo size 1100,550 noenhanced; set output '$OUT/final-savings.png';
        set title 'Final saved memory per system and group (MiB)'; set ylabel 'saved MiB';
        set style data histograms; set style histogram clustered gap 1; set style fill solid 0.8 border -1;
        set xtics rotate by -30; set grid ytics; set key top right; set yrange [0:*]; plot $cols" 2> "$P/err" ||
        log "plot final-savings failed: $(cat "$P/err")"
    if jq -e '.fault_latency.floor' $J > /dev/null 2>&1; then
        plot=""
        for spec in "floor.zeropage:floor (UFFDIO_ZEROPAGE)" "floor.copy:floor (UFFDIO_COPY)" \
                    "de_probe.by_kind.zero:DE zero" "de_probe.by_kind.shared:DE shared" "de_probe.by_kind.patched:DE patched" \
                    "de_probe.by_kind.compressed:DE compressed" "de_probe.by_kind.swapped:DE swapped"; do
            path=${spec%%:*}; title=${spec#*:}
            jq -r ".fault_latency.$path // empty | .count as \$n | select(\$n > 0) | foreach .hist[] as \$b (0; . + \$b[1]; \"\(\$b[0] * 1.1892) \(. / \$n)\")" $J > "$P/lat-$path.dat"
            [ -s "$P/lat-$path.dat" ] && plot="$plot${plot:+, }'$P/lat-$path.dat' using 1:2 with steps lw 2 title '$title'"
        done
        [ -n "$plot" ] && gnuplot -e "set terminal pngcairo size 900,500 noenhanced; set output '$OUT/fault-latency.png';
            set title 'Fault latency seen by the faulting thread (CDF; same harness for floor and DE)';
            set logscale x; set xlabel 'microseconds'; set ylabel 'fraction of faults'; set yrange [0:1]; set grid; set key bottom right;
            plot $plot" 2> "$P/err" || log "plot fault-latency failed: $(cat "$P/err" 2>/dev/null)"
    fi
fi

# --- README.md (from peers.json) ------------------------------------------------------
SYSTEMS=$(jq -r "[.groups[] | $ORDER[]] | reduce .[] as \$x ([]; if index([\$x]) then . else . + [\$x] end) | .[]" $J)
cell() { jq -r --arg g "$1" --arg s "$2" "$3" $J; }
{
    echo "# Difference Engine beside Linux KSM and zram (bench/peers)"
    echo
    jq -r '.generated | "Generated by `\(.command)` from \(.start) to \(.end) (repository at \(.repo_commit))."' $J
    jq -r 'if (.generated.history // []) | length > 1 then "Merged from \(.generated.history | length) runs: " + ([.generated.history[] | "`\(.command)` (\(.start))"] | join("; ")) + "; each result carries its `measured_at`." else empty end' $J
    jq -r '.machine | "Machine: \(.cpu_model), \(.cores) cores, \(.mem_total_bytes / 1073741824 | . * 10 | round / 10) GiB, \(.os), Linux \(.kernel), virtualization: \(.virtualization)."' $J
    jq -r '"Inputs (raw images, sha256 checked against the corpus MANIFEST): " + ([.inputs[] | "\(.name) (\(.bytes / 1048576) MiB, \(.sha256[0:12])…, \(if .sha256_ok then "matches" else "DIFFERS" end))"] | join(", ")) + "."' $J
    jq -r 'if .generated.note != "" then "\n**Conditions:** \(.generated.note)" else empty end' $J
    jq -r '.generated.other_processes_using_cpu | if (.at_start + .at_end) != "" then "\nOther processes using >= 5% CPU (top, 2 s sample) at start: \(if .at_start == "" then "none" else .at_start end) at end: \(if .at_end == "" then "none" else .at_end end). CPU seconds below are per process (ksmd, de-dom0d, zram writers), so they do not include other load; wall-clock times may." else empty end' $J
    jq -r 'if .generated.resumed then "\nThis run \(.generated.resumed)." else empty end' $J
    jq -r 'if .generated.quick then "\n**Quick run** (one group, shorter caps): a smoke test, not the full comparison." else empty end' $J
    echo
    echo "Plots: saved memory over time (DE and KSM on the same axes) per group:$(for g in $GSEL; do printf ' [%s](saved-over-time-%s.png)' $g $g; done);"
    echo "final savings per system and group: [final-savings.png](final-savings.png); fault latency: [fault-latency.png](fault-latency.png)."
    echo "Data: [peers.json](peers.json) (contract: [docs/peers-json.md](../../../docs/peers-json.md))."
    echo
    echo "## Savings at the settle point (net, % of the group's RAM and MiB)"
    echo
    printf '| system |'; for g in $GSEL; do printf ' %s (%s MiB) |' "$g" "$(jq -r --arg g $g '[.groups[$g][] | objects | .total_bytes // empty][0] / 1048576' $J)"; done; echo
    printf '|---|'; for g in $GSEL; do printf -- '---|'; done; echo
    for s in $SYSTEMS; do
        printf '| %s |' "$s"
        for g in $GSEL; do
            printf ' %s |' "$(cell $g $s '.groups[$g][$s] | if . == null then "-" else "\(.saved_pct * 10 | round / 10)% (\(.saved_bytes / 1048576 | . * 10 | round / 10) MiB)" end')"
        done
        echo
    done
    for s in de de-zstd; do
        jq -e --arg s $s '[.groups[][$s] // empty] | length > 0' $J > /dev/null || continue
        printf '| %s: the daemon'"'"'s own accounting |' $s
        for g in $GSEL; do printf ' %s |' "$(cell $g $s '.groups[$g][$s].ctl_saved_bytes // null | if . == null then "-" else "\(. / 1048576 | . * 10 | round / 10) MiB" end')"; done; echo
        printf '| %s: de-analyze offline prediction |' $s
        for g in $GSEL; do printf ' %s |' "$(cell $g $s '.groups[$g][$s].predicted_saved_bytes // null | if . == null then "-" else "\(. / 1048576 | . * 10 | round / 10) MiB" end')"; done; echo
    done
    echo
    jq -r '[.groups | to_entries[] | .key as $g | .value | to_entries[] | select(.value | type == "object" and has("foreign_mergeable_processes"))
            | select(.value.foreign_mergeable_processes != "none" or (.value.foreign_ksm_pages // 0) > 0)
            | "\($g)/\(.key): \(if .value.foreign_mergeable_processes == "none" then "none at the start" else .value.foreign_mergeable_processes end), \(.value.foreign_ksm_pages) KSM pages not ours at the end"]
          | if length > 0 then "**KSM measured while other processes had mergeable memory** (ksmd scanned them too, so its CPU seconds and time to settle are inflated; the savings count our processes only): " + join("; ") + ".\n" else empty end' $J
    jq -r '[.groups[][] | objects | .daemon_commit // empty] | unique | if length > 0 then "DE measured with de-dom0d built from commit " + join(", ") + " (+dirty: uncommitted daemon sources; +stale: a source newer than the binary).\n" else empty end' $J
    printf 'Settled (rule met before the cap) and seconds to the settle point: '
    for g in $GSEL; do for s in de de-zstd ksm ksm_fast; do
        cell $g $s '.groups[$g][$s] // empty | "\($g)/\($s) \(.settled) \(.elapsed_s) s; "' | tr -d '\n'
    done; done; echo
    echo
    echo "## CPU and time"
    echo
    echo "CPU seconds spent to reach the saving (ksmd, de-dom0d: from start to the settle point; zram: the writers),"
    echo "saved MiB per CPU second, and seconds to 90% of the final saving (zram: the whole write)."
    echo
    printf '| system |'; for g in $GSEL; do printf ' %s CPU s | MiB/CPU-s | t90 s |' $g; done; echo
    printf '|---|'; for g in $GSEL; do printf -- '---|---|---|'; done; echo
    for s in $SYSTEMS; do
        printf '| %s |' "$s"
        for g in $GSEL; do
            printf ' %s |' "$(cell $g $s '.groups[$g][$s] | if . == null then "- | - | -" else "\(.cpu_s) | \(if .saved_mib_per_cpu_s == null then "-" else (.saved_mib_per_cpu_s | round) end) | \(.time_to_90pct_s // "-")" end')"
        done
        echo
    done
    echo
    echo "## Difference Engine: technique contributions"
    echo
    echo "Live (daemon gauges at the settle point, pages of the group's RAM) and offline (de-analyze on the same images: each technique alone, and what patching and compression add after sharing):"
    echo
    echo "| group / system | zero | shared | patched | compressed | swapped | store MiB | offline: sharing alone | + patching | + compression | = all three | compression alone |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    for g in $GSEL; do for s in de de-zstd; do
        cell $g $s 'def m(x): if x == null then "-" else "\(x / 1048576 | . * 10 | round / 10) MiB" end;
          .groups[$g][$s] // empty | "| \($g) / \($s) | \(.pages_zero) | \(.pages_shared) | \(.pages_patched) | \(.pages_compressed) | \(.pages_swapped) | \(.store_bytes / 1048576 | . * 10 | round / 10) | \(m(.offline_saved_share_bytes)) | \(m(.offline_saved_patch_bytes)) | \(if .offline_saved_de_bytes == null then "-" else m(.offline_saved_de_bytes - .offline_saved_share_patch_bytes) end) | \(m(.offline_saved_de_bytes)) | \(m(.offline_saved_compress_bytes)) |"'
    done; done
    echo
    printf 'Guests failed verification: '
    for g in $GSEL; do for s in de de-zstd; do cell $g $s '.groups[$g][$s] // empty | "\($g)/\($s) \(.guests_failed_verification); "' | tr -d '\n'; done; done; echo
    echo
    printf 'Ideal sharing (the input of ksm+zram): '
    for g in $GSEL; do cell $g x '.groups[$g].ideal_share // empty | "\($g): \(.total_pages) pages, \(.zero_pages) zero, \(.distinct_nonzero_pages) distinct non-zero; "' | tr -d '\n'; done; echo
    echo
    echo "## Goals (judged on \`de\`, the default policy)"
    echo
    for g in $GSEL; do
        jq -r --arg g $g '
          .groups[$g] as $G
          | def mb(x): (x / 1048576 | . * 10 | round / 10);
            def ok(c): if c then "**met**" else "**MISSED**" end;
            def best(p): ($G | to_entries | map(select(.key | startswith(p))) | max_by(.value.saved_bytes));
          if $G.de == null then "- \($g): no `de` result" else
          (best("zram-")) as $bz | (best("ksm+zram-")) as $bkz |
          "- \($g):\n"
          + (if $G.ksm then "  - savings >= 2x KSM: \(ok($G.de.saved_bytes >= 2 * $G.ksm.saved_bytes)) — DE \(mb($G.de.saved_bytes)) MiB vs KSM \(mb($G.ksm.saved_bytes)) MiB = \(if $G.ksm.saved_bytes > 0 then ($G.de.saved_bytes / $G.ksm.saved_bytes * 100 | round / 100) else "inf" end)x (KSM fast: \(if $G.ksm_fast then "\(mb($G.ksm_fast.saved_bytes)) MiB, \($G.de.saved_bytes / $G.ksm_fast.saved_bytes * 100 | round / 100)x" else "-" end))\n" else "  - savings >= 2x KSM: no ksm result\n" end)
          + (if $bz then "  - above the best zram: \(ok($G.de.saved_bytes > $bz.value.saved_bytes)) — DE \(mb($G.de.saved_bytes)) MiB vs \($bz.key) \(mb($bz.value.saved_bytes)) MiB\n" else "" end)
          + (if $bkz then "  - above the best KSM-then-zram: \(ok($G.de.saved_bytes > $bkz.value.saved_bytes)) — DE \(mb($G.de.saved_bytes)) MiB vs \($bkz.key) \(mb($bkz.value.saved_bytes)) MiB\n" else "" end)
          + (if $G.ksm then "  - savings per CPU second above KSM at its default rate: \(if (($G.ksm.foreign_mergeable_processes // "none") != "none" or ($G.ksm.foreign_ksm_pages // 0) > 0) then "**not judged** (another process used KSM during this KSM run, so ksmd'"'"'s CPU seconds include scanning its memory and flatter DE)" else ok(($G.de.saved_mib_per_cpu_s // 0) > ($G.ksm.saved_mib_per_cpu_s // 1e12)) end) — DE \($G.de.saved_mib_per_cpu_s | round) MiB/CPU-s (\(mb($G.de.saved_bytes)) MiB for \($G.de.cpu_s) s) vs KSM \($G.ksm.saved_mib_per_cpu_s | round) MiB/CPU-s (\(mb($G.ksm.saved_bytes)) MiB for \($G.ksm.cpu_s) s)\n" else "" end)
          + (if $G["de-zstd"] then "  - (de-zstd, not judged: \(mb($G["de-zstd"].saved_bytes)) MiB, \($G["de-zstd"].saved_mib_per_cpu_s | round) MiB/CPU-s)" else "" end)
          end' $J
    done
    jq -r '.fault_latency // empty | . as $root
      | def run(k): (if k == "zero" then "shared" else k end) as $r | .de_probe.runs[$r];
        def fl(k): (run(k).floor_interleaved.p50_us // run(k).floor_adjacent.zeropage.p50_us // .floor.zeropage.p50_us);
        def r(k): .de_probe.by_kind[k] as $x | if $x == null or $x.count == 0 then null else ($x.p50_us / fl(k)) end;
        def ok(c): if c then "**met**" else "**MISSED**" end;
        "- fault service p50 within 3x of the plain userfaultfd floor (UFFDIO_ZEROPAGE, same harness, one floor fault after each DE fault so both see the same load; \(.floor.zeropage.p50_us) us in the separate floor run): "
        + ([ "shared", "patched", "compressed" ] | map(. as $k | ($root | r($k)) as $q | "\($k) \(if $q == null then "no samples" else "\(ok($q <= 3)) (p50 \($root.de_probe.by_kind[$k].p50_us) us vs floor \($root | fl($k)) us = \($q * 100 | round / 100)x)" end)") | join("; "))
        + "; beyond the in-memory kinds (not judged): " + ([ "zero", "swapped" ] | map(. as $k | ($root | r($k)) as $q | "\($k) \(if $q == null then "no samples" else "p50 \($root.de_probe.by_kind[$k].p50_us) us = \($q * 100 | round / 100)x" end)") | join(", ")) + "."' $J
    echo
    if jq -e '.fault_latency' $J > /dev/null 2>&1; then
        echo "## Fault latency against the userfaultfd floor"
        echo
        jq -r '.fault_latency | "Harness: \(.harness). The floor: a thread of the same process serves the region'"'"'s MISSING faults with UFFDIO_ZEROPAGE (or UFFDIO_COPY), \(.floor.zeropage.count) faults each. DE: one guest (\(.de_probe.image)) under de-dom0d with one technique enabled at a time (zero pages come from the sharing run), left to settle, then up to \(.de_probe.max_samples) reclaimed pages read in random order, each followed by one fault on the probe'"'"'s own floor region (the interleaved floor: the same load at the same moment, since this machine is shared); each page read is compared with the image. Measured \(.measured_at)."' $J
        echo
        echo "| fault | count | p10 us | p50 us | p90 us | p99 us | floor p50 us (interleaved) | p50 / floor p50 | daemon service p50 us (its own timer) |"
        echo "|---|---|---|---|---|---|---|---|---|"
        jq -r '.fault_latency | .floor.zeropage.p50_us as $f
          | (.floor | to_entries[] | select(.value | type == "object") | "| floor: UFFDIO_\(.key | ascii_upcase) | \(.value.count) | \(.value.p10_us) | \(.value.p50_us) | \(.value.p90_us) | \(.value.p99_us) | \($f) | \(.value.p50_us / $f * 10 | round / 10)x | - |"),
            (. as $L | .de_probe.by_kind | to_entries[] | select(.value != null)
             | $L.de_probe.runs[if .key == "zero" then "shared" else .key end] as $run
             | ($run.daemon_service[.key].p50_us // "-") as $d
             | ($run.floor_interleaved.p50_us // $run.floor_adjacent.zeropage.p50_us // $f) as $fa
             | "| DE \(.key) | \(.value.count) | \(.value.p10_us) | \(.value.p50_us) | \(.value.p90_us) | \(.value.p99_us) | \($fa) | \(if .value.count > 0 then (.value.p50_us / $fa * 100 | round / 100) else "-" end)x | \($d) |")' $J
        echo
        jq -r '.fault_latency.de_probe.runs | "Probe runs: " + ([to_entries[] | select(.value != null) | "\(.key): policy `\(.value.policy)`, \(.value.reclaimed_before | "zero \(.pages_zero), shared \(.pages_shared), patched \(.pages_patched), compressed \(.pages_compressed), swapped \(.pages_swapped)") pages reclaimed when probed, \(.value.resident_skipped) resident pages skipped, wrong pages \(.value.wrong_pages)"] | join("; ")) + "."' $J
        echo
        jq -r '.fault_latency.de_active // empty | "Under load (the daemon'"'"'s own service-time histograms, from reading the fault to the page restored; not the same harness as the floor): group \(.group), \(.duration_s) s, \(.rate_ops_s) ops/s per guest, hot \(.hot_pct)% (weight \(.hot_weight_pct)%), \(.write_pct)% writes, default policy; \(.faults) faults; guests failed verification: \(.guests_failed_verification).\n\n| kind | count | daemon p50 us | daemon p99 us |\n|---|---|---|---|", (.by_kind | to_entries[] | "| \(.key) | \(.value.count) | \(.value.p50_us) | \(.value.p99_us) |")' $J
        echo
    fi
    if jq -e '.overhead' $J > /dev/null 2>&1; then
        echo "## Overhead (one 32 MiB de-guest at full speed)"
        echo
        jq -r '.overhead | "\(.duration_s) s per run, median of \(.runs)\(if .unmanaged_runs_ops_s then " interleaved (runs: \(.unmanaged_runs_ops_s | map(round) | join(", ")) / \(.default_policy_runs_ops_s | map(round) | join(", ")))" else "" end), hot \(.hot_pct)% (weight \(.hot_weight_pct)%), \(.write_pct)% writes: no daemon work (`enable no`) \(.unmanaged_ops_s) ops/s, default policy \(.default_policy_ops_s) ops/s: slowdown \(.slowdown_pct | . * 10 | round / 10)%. Measured \(.measured_at). At full speed even the cold pages are each touched about \((.default_policy_ops_s * (100 - .hot_weight_pct) / 100) / (.guest_mib * 256 * (100 - .hot_pct) / 100) | round) times a second, so the not-recently-used clock finds little to reclaim: this is the cost of the daemon'"'"'s scanning and write tracking, not of faults on reclaimed pages (those are in the fault latency section and in the active phase above)."' $J
        echo
    fi
    echo "## Method and caveats"
    echo
    jq -r '.settings | "- KSM: \(.ksm.loader). `ksm` at pages_to_scan \(.ksm.ksm.pages_to_scan), sleep_millisecs \(.ksm.ksm.sleep_millisecs) (the kernel defaults); `ksm_fast` at pages_to_scan \(.ksm.ksm_fast.pages_to_scan), sleep_millisecs \(.ksm.ksm_fast.sleep_millisecs). Other settings as found: use_zero_pages \(.ksm.kernel_settings_at_start.use_zero_pages), smart_scan \(.ksm.kernel_settings_at_start.smart_scan // "-"), advisor_mode \(.ksm.kernel_settings_at_start.advisor_mode // "-"), max_page_sharing \(.ksm.kernel_settings_at_start.max_page_sharing). Saved = \(.ksm.saved). Settled = \(.ksm.settle_rule); capped at \(.ksm.cap_s.ksm) s / \(.ksm.cap_s.ksm_fast) s. CPU = \(.ksm.cpu). Every /sys/kernel/mm/ksm setting is saved first and restored afterwards (also after an interrupt, and at the next start after a kill -9)."' $J
    jq -r '.settings | "- zram (compressors the kernel offers: \(.zram.compressors | join(", "))): \(.zram.method); an existing zram0 is never touched, our devices are reset and hot_removed. Saved = \(.zram.saved) (mem_used_total is the allocator pages; the per-page table is not counted: generous to zram). CPU = \(.zram.cpu)."' $J
    jq -r '.settings | "- ksm+zram: \(.["ksm+zram"].method); saved = \(.["ksm+zram"].saved); CPU = \(.["ksm+zram"].cpu)."' $J
    jq -r '.settings | "- DE: de-dom0d, \(.de.backend), share group \(.de.share_group); policies: `de` \(.de.policy.de), `de-zstd` \(.de.policy["de-zstd"]). Saved = \(.de.saved). Settled = \(.de.settle_rule); capped at \(.de.cap_s) s. CPU = \(.de.cpu). Every guest checks every byte of its RAM when it stops."' $J
    echo "- de-analyze's figure is the offline prediction on the same images, net of everything the live system holds (docs/de-analyze-json.md)."
    echo "- Saved memory over time: DE from the guests' resident memory and the daemon's, KSM from its loaders' page frames, sampled every second."
    echo "- Fault latency: the guest-side figure minus the daemon's own service time is the path of a fault to the daemon and back (userfaultfd message, libdexc, the daemon's event loop, the wake-up); the floor's whole round trip is that path at its shortest."
} > "$OUT/README.md"
log "done: $OUT/peers.json, $OUT/README.md"
