#!/bin/sh
# bad_control.sh - malformed control requests and bad configuration get a
# clear error and never harm the daemon or its guest.
. "$(dirname "$0")/lib.sh"
: "${CTL_RAW:?}"

write_conf
start_daemon
start_guest 1 6 --rate 100
sleep 1
sock="$T/ctl.sock"
check() {   # $1 = what, $2 = reply, $3 = pattern it must contain
    echo "$1: $2"
    echo "$2" | grep -q -- "$3" || fail "$1: reply lacks '$3'"
}
check "unknown command" "$("$CTL_RAW" "$sock" 'frobnicate\n')" '"ok":false'
check "no such guest" "$("$CTL_RAW" "$sock" 'stats nosuchguest\n')" "no guest"
check "bad set key" "$("$CTL_RAW" "$sock" 'set g1 no_such_key 1\n')" '"ok":false'
check "bad set value" "$("$CTL_RAW" "$sock" 'set g1 patch_threshold 99999999\n')" '"ok":false'
check "binary garbage" "$("$CTL_RAW" "$sock" '\x01\x02\xff\xfe\0zz\n')" '"ok":false'
check "unterminated quote" "$("$CTL_RAW" "$sock" 'stats "g1\n')" '"ok":false'
check "oversized request" "$("$CTL_RAW" "$sock" --repeat 200000 x '\n')" '"ok":false'
check "too many words" "$("$CTL_RAW" "$sock" 'stats a b c d e f g h i j\n')" '"ok":false'
# de-ctl reports errors with a non-zero status
if ctl pause nosuchguest 2>"$T/err"; then fail "de-ctl pause of a missing guest succeeded"; fi
grep -q "nosuchguest" "$T/err" || fail "de-ctl error does not name the guest"
# a good request still works, on a fresh connection
ctl status | grep -q "guests: 1" || fail "daemon does not answer status after bad requests"
ctl set g1 compressor lz4 >/dev/null || fail "a valid set failed"
# bad configuration files: refused with file:line, nothing started
printf 'scan_interval 50\nno_such_key 3\n' > "$T/bad1.conf"
if "$DE_DOM0D" -n -f "$T/bad1.conf" 2>"$T/err"; then fail "bad config accepted"; fi
grep -q "bad1.conf:2" "$T/err" || fail "config error does not say file:line: $(cat "$T/err")"
printf 'store_budget 12Q\n' > "$T/bad2.conf"
if "$DE_DOM0D" -n -f "$T/bad2.conf" 2>"$T/err"; then fail "bad size accepted"; fi
grep -q "bad2.conf:1" "$T/err" || fail "size error does not say file:line: $(cat "$T/err")"
# SIGHUP with a broken file keeps the running configuration
cp "$T/de.conf" "$T/de.conf.good"
echo "patch_threshold banana" >> "$T/de.conf"
kill -HUP "$DPID"
sleep 0.5
kill -0 "$DPID" || fail "de-dom0d died on a bad reload"
grep -q "keeping the running configuration" "$T/daemon.log" || fail "bad reload not reported"
st=$(guest_exit 1)
cat "$T/g1.guest"
[ "$st" = 0 ] || fail "guest exit status $st"
echo "PASS: bad_control"
