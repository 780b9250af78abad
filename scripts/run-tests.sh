#!/bin/sh
# run-tests.sh - the whole test suite, on a fresh Debian 12 machine too:
# does the missing set-up (scripts/setup.sh), then `make check` in build/,
# then the unit tests again in an ASan+UBSan build (build-san/).
# Prints every test program's output and, last, one line
# "N passed, N failed" over all of them. Exit status 0 only if all passed.
#
#   scripts/run-tests.sh [--no-sanitizers]
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

sh scripts/setup.sh || exit 1

status=0
run_check() {   # $1 = build dir
    make -C "$1" -j"$(nproc)" check >"$1/check.out" 2>&1 || status=1
    for log in "$1"/tests/*/test*.log; do
        case "$log" in *test-suite.log) continue ;; esac
        [ -f "$log" ] || continue
        echo "=== $log"
        cat "$log"
    done
    grep -E '^(PASS|FAIL|XFAIL|XPASS|SKIP|ERROR):' "$1/check.out" || tail -n 40 "$1/check.out"
}

run_check build
if [ "${1:-}" != "--no-sanitizers" ]; then
    sh scripts/setup.sh --sanitizers || exit 1
    # LeakSanitizer needs ptrace, which some sandboxes forbid.
    ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
        make -C build-san -j"$(nproc)" check >build-san/check.out 2>&1 || status=1
    echo "=== sanitizer build (ASan+UBSan)"
    for log in build-san/tests/*/test*.log; do
        case "$log" in *test-suite.log) continue ;; esac
        [ -f "$log" ] && { echo "=== $log"; cat "$log"; }
    done
fi

passed=0; failed=0
for log in build/tests/*/test*.log build-san/tests/*/test*.log; do
    [ -f "$log" ] || continue
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    [ -n "$line" ] || continue
    p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed}
    passed=$((passed + p)); failed=$((failed + f))
done
[ $failed -eq 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status
