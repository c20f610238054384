#!/usr/bin/env bash
# tools/test.sh - installs what is missing, then builds and runs the whole test suite:
#   build/       RelWithDebInfo, every test
#   build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer (with leak checks), every test
#   build-tsan/  ThreadSanitizer, the tests labelled tsan (rings, shard start/stop, fan-out)
#   build-fuzz/  clang + libFuzzer, each fuzz target for RH_FUZZ_SECONDS (default 30)
# Exits non-zero if any build or test fails. Set RH_TEST_ONLY=normal|asan|tsan|fuzz for one.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh

jobs=$(nproc)
only=${RH_TEST_ONLY:-}
fuzz_seconds=${RH_FUZZ_SECONDS:-30}
failed=()

run_suite() { # name, build dir, ctest args, cmake args...
    local name=$1 dir=$2 ctest_args=$3; shift 3
    [ -z "$only" ] || [ "$only" = "$name" ] || return 0
    echo "=== $name: configure and build ($dir)"
    if ! cmake -S . -B "$dir" "$@" >/dev/null || ! cmake --build "$dir" -j"$jobs" >/dev/null; then
        cmake --build "$dir" -j1 2>&1 | grep -E 'error|Error' | head -30 || true
        failed+=("$name (build)")
        return 0
    fi
    echo "=== $name: ctest $ctest_args"
    # shellcheck disable=SC2086
    if ! ctest --test-dir "$dir" --output-on-failure $ctest_args; then failed+=("$name"); fi
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

run_suite normal build "-j$jobs" -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_suite asan build-asan "-j$jobs -LE fuzz" -DCMAKE_BUILD_TYPE=Debug -DRH_SANITIZE=address,undefined
run_suite tsan build-tsan "-j$jobs -L tsan" -DCMAKE_BUILD_TYPE=Debug -DRH_SANITIZE=thread
run_suite fuzz build-fuzz "-j$jobs -L fuzz" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
    -DRH_SANITIZE=address,undefined -DRH_FUZZ=ON -DRH_FUZZ_SECONDS="$fuzz_seconds"

if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
echo "all suites passed"
