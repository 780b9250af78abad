#!/bin/bash
# dom0 side of `make check-xen`, part 2: de-dom0d on Xen, driven through
# xenstore, with three PVH guests running /dex-workload on slices of real
# VM memory (dexa and dexb: the same vm-web-1 slice; dexc: vm-web-2, a
# similar VM). Prints "XQ[t] RESULT name: PASS|FAIL (figures)" lines.
#
#  1. de-dom0d -x starts with a config file (the global defaults); the
#     guests boot and load their images;
#  2. dom0 enables each domain in xenstore (dex/enable 1, share_group web,
#     scan_rate; dexc also swap 1, a target and one bad value that must be
#     logged and ignored); the daemon shares, patches, compresses, swaps
#     and publishes dex/stats/; `xl info` free memory must grow;
#  3. the guests verify every page (faults served by the daemon);
#  4. dexb is disabled (every page given back) and re-enabled;
#  5. dexc is destroyed while pages are reclaimed: the daemon drops it and
#     goes on;
#  6. de-dom0d gets SIGTERM with pages reclaimed: it must give every page
#     back and exit; then the guests verify every page again, with no
#     daemon left to serve a fault (a page not given back would hang the
#     guest: the timeout reports it).
# Timeouts are generous (TCG on a loaded 2-core host); nothing is retried.
L="env LD_LIBRARY_PATH=/usr/local/lib"   # our binaries only, never xl
# The daemon answers between clock ticks, and a tick can take many seconds
# under TCG: a generous timeout, and every check below treats a de-ctl
# failure as "not yet", never as an answer.
CTL="$L /usr/local/sbin/de-ctl -t 300"
DLOG=/var/log/de-dom0d.log
CON=/var/log/xen/console
up() { cut -d' ' -f1 /proc/uptime; }
log() { echo "XQ[$(up)] $*"; }
since() { awk -v a="$(up)" -v b="$1" 'BEGIN{printf "%d", a-b}'; }
result() { log "RESULT $*"; }
free_mb() { xl info | awk '/^free_memory/ {print $3}'; }
xsr() { xenstore-read "$1" 2>/dev/null; }
domid() { xl domid "$1" 2>/dev/null; }
# json field of one guest in `de-ctl stats GUEST --json`
# (the reply's "global" object comes first: look only after "guests")
stat_of() { $CTL stats "$1" --json 2>/dev/null | sed 's/.*"guests":\[//' | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2; }
# pages reclaimed as KIND (zero shared patched compressed swapped) since adoption
cum_of() { $CTL stats "$1" --json 2>/dev/null | sed 's/.*"guests":\[//' | grep -o '"reclaimed":{[^}]*}' | head -1 | grep -o "\"$2\":[0-9]*" | cut -d: -f2; }
# true when de-ctl answers and GUEST is not among the managed guests
not_managed() { local out; out=$($CTL guests 2>/dev/null) || return 1; ! echo "$out" | grep -q "\b$1\b"; }
reclaimed_of() {
  local s=0 k v
  for k in pages_shared pages_patched pages_compressed pages_swapped; do
    v=$(stat_of "$1" $k); s=$((s + ${v:-0}))
  done
  echo $s
}
# wait_for SECONDS DESCRIPTION COMMAND...: polls every 5 s
wait_for() {
  local t=$1 what=$2 t0; shift 2; t0=$(up)
  while ! "$@"; do
    if [ "$(since $t0)" -ge "$t" ]; then log "timeout ($t s) waiting for $what"; return 1; fi
    sleep 5
  done
  log "$what after $(since $t0) s"
}
tails() {
  log "---- de-dom0d log (tail) ----"; tail -40 $DLOG | sed 's/^/  [de-dom0d] /'
  for g in dexa dexb dexc; do
    [ -f $CON/guest-$g.log ] && tail -8 $CON/guest-$g.log | sed "s/^/  [$g console] /"
  done
  xl list | sed 's/^/  [xl list] /'
  dmesg | tail -15 | sed 's/^/  [dom0 dmesg] /'
  /root/xq-dom0-sums.sh check | sed 's/^/  [dom0 sums] /'
}
fail() { result "$1: FAIL ($2)"; tails; }
console_has() { grep -q "$2" $CON/guest-$1.log 2>/dev/null; }
all_loaded() { for g in dexa dexb dexc; do console_has $g "DEXW LOADED" || return 1; done; }
verified() { for g in $2; do console_has $g "DEXW VERIFY round=$1 " || return 1; done; }
daemon_alive() { kill -0 $dpid 2>/dev/null; }

# ---- 1. daemon and guests ----
cat > /etc/de-dom0d.conf <<'EOF'
# de-dom0d in the Xen test: global defaults; each domain's dex/ keys
# override them. Short NRU ages: a sweep is long under TCG.
backend xen
scan_interval 1000
nru_patch_age 1
nru_compress_age 2
store_budget 12M
swap_file "/var/lib/de-dom0d.swap"
stats_interval 30
EOF
$L /usr/local/sbin/de-dom0d -f /etc/de-dom0d.conf > $DLOG 2>&1 &
dpid=$!
sleep 3
if ! daemon_alive; then fail dex-daemon-start "de-dom0d exited"; exit 1; fi
result "dex-daemon-start: PASS (pid $dpid, backend xen)"

[ -f /tmp/dom0-sums ] || /root/xq-dom0-sums.sh init
for g in dexa dexb dexc; do
  /root/xq-dom0-sums.sh check >/dev/null || log "dom0 memory changed before xl create $g: $(/root/xq-dom0-sums.sh check)"
  t0=$(up)
  if ! xl create /root/guest/$g.cfg >/tmp/xl-$g.out 2>&1; then
    cat /tmp/xl-$g.out; fail dex-guests-create "xl create $g (an earlier domain may have crashed: see xl dmesg)"; exit 1
  fi
  log "$g is d$(domid $g) (xl create took $(since $t0) s)"
done
if ! wait_for 600 "all guests loaded their images" all_loaded; then
  fail dex-guests-load "a guest did not load its image"; exit 1
fi
for g in dexa dexb dexc; do log "$g: $(grep 'DEXW LOADED' $CON/guest-$g.log)"; done
sleep 5
F0=$(free_mb)
log "xl info free_memory before: $F0 MiB"
# nothing is managed before dex/enable
if not_managed dexa && not_managed dexb && not_managed dexc; then log "no domain adopted before dex/enable (ok)"
else fail dex-enable-default "a domain was adopted before its dex/enable"; fi

# ---- 2. enable through xenstore ----
for g in dexa dexb dexc; do
  D=/local/domain/$(domid $g)/dex
  xenstore-write $D/share_group web $D/scan_rate 32768
done
Dc=/local/domain/$(domid dexc)/dex
xenstore-write $Dc/swap 1 $Dc/compress bogus $Dc/target 65536
for g in dexa dexb dexc; do xenstore-write /local/domain/$(domid $g)/dex/enable 1; done
t_en=$(up)
adopted() { for g in dexa dexb dexc; do $CTL guests 2>/dev/null | grep -q "\b$g\b" || return 1; done; }
if ! wait_for 120 "all three domains adopted" adopted; then fail dex-adopt "not adopted"; exit 1; fi
$CTL guests 2>&1 | sed 's/^/  [de-ctl guests] /'
# enough work done: every guest has shared pages, and patches and
# compressed pages exist
nworked=0
worked() {
  local tp=0 tc=0 g v
  nworked=$((nworked + 1))
  if [ $((nworked % 12)) = 0 ]; then   # progress, every minute
    for g in dexa dexb dexc; do
      log "  $g: shared $(stat_of $g pages_shared) patched $(stat_of $g pages_patched) compressed $(stat_of $g pages_compressed) scanned $(stat_of $g pages_scanned) faults $(stat_of $g faults)"
    done
  fi
  for g in dexa dexb dexc; do
    v=$(stat_of $g pages_shared); [ "${v:-0}" -gt 1000 ] || return 1
    v=$(cum_of $g patched); tp=$((tp + ${v:-0}))
    v=$(cum_of $g compressed); tc=$((tc + ${v:-0}))
  done
  [ $tp -gt 100 ] && [ $tc -gt 100 ]
}
if ! wait_for 1200 "shared, patched and compressed pages in every guest" worked; then
  $CTL stats 2>&1 | sed 's/^/  [de-ctl stats] /'; fail dex-reclaim "not enough reclaimed"; exit 1
fi
sleep 30        # a little more of the sweep
$CTL stats 2>&1 | sed 's/^/  [de-ctl stats] /'
F1=$(free_mb)
tot() { local s=0 g v; for g in dexa dexb dexc; do v=$(stat_of $g $1); s=$((s + ${v:-0})); done; echo $s; }
SH=$(tot pages_shared); PA=$(tot pages_patched); CO=$(tot pages_compressed); SW=$(tot pages_swapped)
ctot() { local s=0 g v; for g in dexa dexb dexc; do v=$(cum_of $g $1); s=$((s + ${v:-0})); done; echo $s; }
result "dex-reclaim: PASS (after $(since $t_en) s, over 3 guests: now shared $SH (zero included), patched $PA, compressed $CO, swapped $SW pages; reclaimed since adoption: zero $(ctot zero), shared $(ctot shared), patched $(ctot patched), compressed $(ctot compressed), swapped $(ctot swapped))"
gain=$((F1 - F0))
if [ $gain -ge 64 ]; then result "dex-free-memory: PASS (xl info free_memory $F0 -> $F1 MiB, +$gain MiB)"
else fail dex-free-memory "free_memory $F0 -> $F1 MiB, +$gain MiB < 64"; fi

# xenstore: stats published, the bad value logged and ignored, swap and
# target taken
xs_ok=1; xs_msg=""
for g in dexa dexb dexc; do
  v=$(xsr /local/domain/$(domid $g)/dex/stats/shared)
  [ "${v:-0}" -gt 0 ] || { xs_ok=0; xs_msg="$xs_msg no dex/stats/shared for $g;"; }
  xs_msg="$xs_msg $g stats/shared=$v saved_kb=$(xsr /local/domain/$(domid $g)/dex/stats/saved_kb);"
done
grep -q "dex/compress = 'bogus' ignored" $DLOG || { xs_ok=0; xs_msg="$xs_msg bad value not logged;"; }
[ "$(grep -c "dex/compress = 'bogus' ignored" $DLOG)" -eq 1 ] || { xs_ok=0; xs_msg="$xs_msg bad value logged more than once;"; }
grep -q "guest dexc.*group web" $DLOG || { xs_ok=0; xs_msg="$xs_msg dexc not in group web;"; }
grep -q "dexc (d[0-9]*): .*target 65536 KiB" $DLOG || { xs_ok=0; xs_msg="$xs_msg target not applied;"; }
[ $xs_ok = 1 ] && result "dex-xenstore: PASS (${xs_msg# })" || fail dex-xenstore "$xs_msg"

# ---- 3. the guests verify every page ----
FB=$(tot faults)
for g in dexa dexb dexc; do xenstore-write /local/domain/$(domid $g)/dex-test/cmd "verify 1"; done
if ! wait_for 900 "the guests verified (round 1)" verified 1 "dexa dexb dexc"; then
  fail dex-verify-1 "a guest did not finish verifying"; exit 1
fi
sleep 3
FA=$(tot faults)
bad1=0; v1=""
for g in dexa dexb dexc; do
  l=$(grep "DEXW VERIFY round=1 " $CON/guest-$g.log | tail -1); v1="$v1 $g: ${l#*round=1 };"
  echo "$l" | grep -q " bad=0 " || bad1=1
done
if [ $bad1 = 0 ] && [ $FA -gt $FB ]; then result "dex-verify-1: PASS (every page right;$v1 faults served $FB -> $FA)"
else fail dex-verify-1 "$v1 faults $FB -> $FA"; fi

# ---- 4. disable and re-enable dexb ----
Db=/local/domain/$(domid dexb)/dex
xenstore-write $Db/enable 0
gone_b() { not_managed dexb; }
if wait_for 300 "dexb released" gone_b && grep -q "guest dexb (d[0-9]*) disabled: every page given back" $DLOG; then
  xenstore-write $Db/enable 1
  if wait_for 120 "dexb re-adopted" adopted; then result "dex-disable-enable: PASS (dexb: every page given back, then adopted again)"
  else fail dex-disable-enable "dexb not adopted again"; fi
else fail dex-disable-enable "dexb not released cleanly"; fi

# ---- 5. destroy dexc while pages are reclaimed ----
rc_c() { [ "$(reclaimed_of dexc)" -gt 1000 ]; }
if wait_for 600 "dexc has reclaimed pages again" rc_c; then
  nrc=$(reclaimed_of dexc); Fd0=$(free_mb)
  xl destroy dexc
  gone_c() { not_managed dexc; }
  if wait_for 120 "dexc dropped by the daemon" gone_c && daemon_alive; then
    sleep 3
    result "dex-destroy: PASS (dexc destroyed with $nrc pages reclaimed; daemon dropped it and runs on; free_memory $Fd0 -> $(free_mb) MiB)"
  else fail dex-destroy "daemon did not drop dexc, or died"; fi
else fail dex-destroy "dexc never had reclaimed pages"; fi

# ---- 6. SIGTERM: every page back ----
rc_ab() { [ "$(reclaimed_of dexa)" -gt 1000 ] && [ "$(reclaimed_of dexb)" -gt 1000 ]; }
wait_for 600 "dexa and dexb have reclaimed pages" rc_ab
na=$(reclaimed_of dexa); nb=$(reclaimed_of dexb)
kinds() { echo "shared $(stat_of $1 pages_shared) (zero $(stat_of $1 pages_zero)), patched $(stat_of $1 pages_patched), compressed $(stat_of $1 pages_compressed)"; }
ka=$(kinds dexa); kb=$(kinds dexb)
$CTL stats 2>&1 | sed 's/^/  [de-ctl stats] /'
kill -TERM $dpid
stopped() { ! daemon_alive; }
if wait_for 600 "de-dom0d exited after SIGTERM" stopped; then
  wait $dpid; drc=$?
  if [ $drc = 0 ] && grep -q "guest dexa: every page given back" $DLOG && grep -q "guest dexb: every page given back" $DLOG \
     && ! grep -q "could not be given back\|were not restored" $DLOG; then
    result "dex-sigterm: PASS (exit 0; every page given back: dexa $na reclaimed pages: $ka; dexb $nb: $kb)"
  else fail dex-sigterm "exit $drc or pages not given back"; fi
else fail dex-sigterm "still running"; kill -KILL $dpid; fi

# ---- 7. verify again, with no daemon ----
for g in dexa dexb; do xenstore-write /local/domain/$(domid $g)/dex-test/cmd "exit 2"; done
if wait_for 900 "the guests verified (round 2, no daemon)" verified 2 "dexa dexb"; then
  bad2=0; v2=""
  for g in dexa dexb; do
    l=$(grep "DEXW VERIFY round=2 " $CON/guest-$g.log | tail -1); v2="$v2 $g: ${l#*round=2 };"
    echo "$l" | grep -q " bad=0 " || bad2=1
  done
  [ $bad2 = 0 ] && result "dex-verify-2: PASS (after SIGTERM, every page right;$v2)" || fail dex-verify-2 "$v2"
else fail dex-verify-2 "a guest did not finish verifying (a page not given back?)"; fi
if sums=$(/root/xq-dom0-sums.sh check); then result "dex-dom0-intact: PASS (guest kernel, initrd and a 64 MiB tmpfs canary unchanged since dom0 boot)"
else fail dex-dom0-intact "$sums"; fi
bads=$(grep -h "DEXW BAD" $CON/guest-dex?.log 2>/dev/null | head -5)
[ -n "$bads" ] && log "bad pages: $bads"
sleep 5
for g in dexa dexb; do xl list $g >/dev/null 2>&1 && xl destroy $g; done
log "---- de-dom0d log (tail) ----"; tail -25 $DLOG | sed 's/^/  [de-dom0d] /'
exit 0
