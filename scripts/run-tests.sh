#!/bin/sh
# run-tests.sh - the whole test suite, on a fresh Debian 12 machine too:
# does the missing set-up (scripts/setup.sh), then `make check` in build/
# (unit tests, libdexc tests, daemon tests, end-to-end tests), then the
# CUnit suites again in an ASan+UBSan build (build-san/).
# Prints every test program's output and, last, one line
# "N passed, N failed" over all of them (CUnit tests counted one by one,
# each test script as one). Exit status 0 only if all passed.
#
#   scripts/run-tests.sh [--no-sanitizers]
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

sh scripts/setup.sh || exit 1

status=0
show_logs() {   # $1 = build dir
    for log in "$1"/tests/*/*.log; do
        case "$log" in *test-suite.log) continue ;; esac
        echo "=== $log"
        cat "$log"
    done
}

make -k -C build -j"$(nproc)" check >build/check.out 2>&1 || status=1
show_logs build
grep -E '^(PASS|FAIL|XFAIL|XPASS|SKIP|ERROR):' build/check.out || tail -n 40 build/check.out

if [ "${1:-}" != "--no-sanitizers" ]; then
    sh scripts/setup.sh --sanitizers || exit 1
    # LeakSanitizer needs ptrace, which some sandboxes forbid; the e2e
    # scripts already ran on the plain build.
    for d in tests/unit tests/libdexc tests/dom0d; do
        ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
            make -C "build-san/$d" check >>build-san/check.out 2>&1 || status=1
    done
    echo "=== sanitizer build (ASan+UBSan)"
    show_logs build-san
    grep -E '^(PASS|FAIL|XFAIL|XPASS|SKIP|ERROR):' build-san/check.out
fi

passed=0; failed=0; skipped=0
for trs in build/tests/*/*.trs build-san/tests/*/*.trs; do
    [ -f "$trs" ] || continue
    log=${trs%.trs}.log
    res=$(sed -n 's/^:test-result: //p' "$trs")
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" 2>/dev/null | tail -n 1)
    if [ -n "$line" ]; then
        p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed}
        passed=$((passed + p)); failed=$((failed + f))
        # a crash after the summary still fails the run
        [ "$res" = PASS ] || [ "$f" -gt 0 ] || failed=$((failed + 1))
    else
        case "$res" in
            PASS) passed=$((passed + 1)) ;;
            SKIP) skipped=$((skipped + 1)) ;;
            *) failed=$((failed + 1)) ;;
        esac
    fi
done
[ $failed -eq 0 ] || status=1
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
