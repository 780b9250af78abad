# lib.sh - shared by the end-to-end tests: a scratch directory, a real
# de-dom0d on its own sockets, de-guest guests, and polling de-ctl.
# Environment (set by Makefile.am): DE_DOM0D, DE_CTL, DE_GUEST, CTL_RAW,
# DE_SAMPLES_DIR, DE_CORPUS_DIR.
set -u

[ "$(id -u)" = 0 ] || { echo "needs root (userfaultfd, like the daemon): skipped"; exit 77; }
: "${DE_DOM0D:?}" "${DE_CTL:?}" "${DE_GUEST:?}" "${DE_SAMPLES_DIR:?}"

T=$(mktemp -d /tmp/de-e2e.XXXXXX)
PIDS=""
DPID=""
cleanup() {
    for p in $PIDS $DPID; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    echo "--- daemon log (tail)"; tail -n 30 "$T/daemon.log" 2>/dev/null
    for f in "$T"/*.guest; do [ -f "$f" ] && { echo "--- $f"; tail -n 5 "$f"; }; done
    exit 1
}

# write_conf EXTRA-LINES...: the test's daemon configuration
write_conf() {
    {
        echo "socket \"$T/ctl.sock\""
        echo "guest_socket \"$T/guests.sock\""
        echo "scan_interval 50"
        echo "scan_batch 2048"
        echo "nru_patch_age 2"
        echo "nru_compress_age 3"
        echo "share_group \"e2e\""
        echo "swap_file \"$T/swap.img\""
        echo "swap_max 256M"
        echo "swap yes"
        for l in "$@"; do echo "$l"; done
    } > "$T/de.conf"
}

start_daemon() {
    "$DE_DOM0D" -f "$T/de.conf" > "$T/daemon.log" 2>&1 &
    DPID=$!
    for i in $(seq 1 100); do
        [ -S "$T/ctl.sock" ] && [ -S "$T/guests.sock" ] && return 0
        kill -0 "$DPID" 2>/dev/null || fail "de-dom0d did not start"
        sleep 0.1
    done
    fail "de-dom0d sockets did not appear"
}

ctl() { "$DE_CTL" -s "$T/ctl.sock" "$@"; }

# image_for N: the image of guest N: the corpus when present (two VMs of
# the web workload and one PostgreSQL VM), else the shipped samples.
image_for() {
    if [ -n "${DE_CORPUS_DIR:-}" ] && [ -f "$DE_CORPUS_DIR/vm-web-1.ram.zst" ]; then
        case $1 in 1) echo "$DE_CORPUS_DIR/vm-web-1.ram.zst:2048" ;;
                   2) echo "$DE_CORPUS_DIR/vm-web-2.ram.zst:2048" ;;
                   *) echo "$DE_CORPUS_DIR/vm-db-2.ram.zst:2048" ;; esac
    else
        case $1 in 1) echo "$DE_SAMPLES_DIR/vm-web-1.ram.zst" ;;
                   2) echo "$DE_SAMPLES_DIR/vm-web-2.ram.zst" ;;
                   *) echo "$DE_SAMPLES_DIR/vm-db-2.ram.zst" ;; esac
    fi
}
guest_mib() {
    if [ -n "${DE_CORPUS_DIR:-}" ] && [ -f "$DE_CORPUS_DIR/vm-web-1.ram.zst" ]; then echo 32; else echo 8; fi
}

# start_guest N DURATION [extra de-guest args]: a guest from image_for N
start_guest() {
    n=$1; dur=$2; shift 2
    ( "$DE_GUEST" --socket "$T/guests.sock" --mem "$(guest_mib)" \
        --image "$(image_for "$n")" --name "g$n" --duration "$dur" \
        --seed "$n" "$@" > "$T/g$n.guest" 2>&1; echo "exit=$?" >> "$T/g$n.guest" ) &
    eval "GPID$n=\$!"
    PIDS="$PIDS $!"
}

# guest_exit N: the exit status de-guest N reported (waits for it)
guest_exit() {
    for i in $(seq 1 1200); do
        s=$(sed -n 's/^exit=//p' "$T/g$1.guest" 2>/dev/null)
        [ -n "$s" ] && { echo "$s"; return 0; }
        sleep 0.1
    done
    echo timeout
}

# json_num FIELD: FIELD of the global stats object ("global":{...})
json_num() {
    ctl stats --json | sed 's/"guests":.*//' |
        sed -n "s/.*\"$1\":\([0-9.eE+-]*\).*/\1/p"
}
