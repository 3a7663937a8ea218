#!/usr/bin/env bash
# The C and C++ tests of the C ABI (tests/c/): builds libbeckon with the
# test-hooks feature, checks that include/beckon.h compiles on its own (C11 and
# C++17, -pedantic, included twice) and include/beckon.hpp too (C++17, and
# C++20 for forward compatibility), then builds every test program and runs it
# three ways: plainly, under AddressSanitizer + UBSan (with LeakSanitizer), and
# under valgrind memcheck. One PASS/FAIL line per program and mode; the last
# line is "N passed, M failed" (read by CI); the exit status is non-zero if
# anything failed.
#
# Logs: build/c-tests/<program>.<mode>.log (the tail is printed on failure).
# Knobs: C_TESTS_ONLY="test_flow test_panic" runs a subset; C_TESTS_MODES="plain
# asan valgrind" picks modes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=build/c-tests
lib=target/release
mkdir -p "$out"

echo "== cargo build --release --features test-hooks"
cargo build --release --features test-hooks

programs=(test_api_errors test_flow test_free_in_flight test_reentrancy test_threads test_panic test_header_cpp
  test_abi test_abi_2_0 test_abi_2_1 test_pool test_handlers test_controls
  test_hpp test_push test_abi_2_2 test_history)
if [ -n "${C_TESTS_ONLY:-}" ]; then
  read -r -a programs <<<"$C_TESTS_ONLY"
fi
read -r -a modes <<<"${C_TESTS_MODES:-plain asan valgrind}"

common=(-Iinclude -DBECKON_TEST_HOOKS -g -pthread)
cflags=(-std=c11 -Wall -Wextra -Werror "${common[@]}")
cxxflags=(-std=c++17 -Wall -Wextra -Werror "${common[@]}")
link=(-L"$lib" -lbeckon -Wl,-rpath,"$root/$lib")
sanitize=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)

# shellcheck source=lib/c-programs.sh
source scripts/lib/c-programs.sh

# Runs "$@" with a time limit; records PASS/FAIL under $1, output in $2.
run() {
  local label=$1 log=$2 limit=$3
  shift 3
  local start=$SECONDS rc=0
  timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1 || rc=$?
  local took=$((SECONDS - start))
  if [ "$rc" -eq 0 ]; then
    pass "$label (${took}s)"
  else
    fail "$label ($(exit_reason "$rc" "$limit"), log $log)"
    show_tail "$log"
  fi
}

echo
echo "== include/beckon.h on its own"
header_check() {
  local label=$1 compiler=$2 lang=$3 std=$4 text=$5
  shift 5
  local log="$out/header.$label.log"
  if printf '%b' "$text" | "$compiler" -x "$lang" "-std=$std" -Wall -Wextra -Werror -pedantic \
      -Iinclude "$@" -fsyntax-only - >"$log" 2>&1; then
    pass "header $label"
  else
    fail "header $label (log $log)"
    show_tail "$log" 20
  fi
}
once='#include "beckon.h"\nint main(void) { return beckon_abi_version() == BECKON_ABI_VERSION ? 0 : 1; }\n'
twice='#include "beckon.h"\n#include "beckon.h"\nint main(void) { return (int)sizeof(beckon_event) == 0; }\n'
header_check c11 cc c c11 "$once"
header_check c11-twice cc c c11 "$twice"
header_check c11-test-hooks cc c c11 "$once" -DBECKON_TEST_HOOKS
header_check c++17 c++ c++ c++17 "$once"
header_check c++17-twice c++ c++ c++17 "$twice"
header_check c++17-test-hooks c++ c++ c++17 "$once" -DBECKON_TEST_HOOKS

echo
echo "== include/beckon.hpp on its own"
hpp_once='#include "beckon.hpp"\nint main() { beckon::check_abi(); return 0; }\n'
hpp_twice='#include "beckon.hpp"\n#include "beckon.hpp"\nint main() { beckon::Client *c = nullptr; return c != nullptr; }\n'
header_check hpp-c++17 c++ c++ c++17 "$hpp_once"
header_check hpp-c++17-twice c++ c++ c++17 "$hpp_twice"
header_check hpp-c++17-test-hooks c++ c++ c++17 "$hpp_once" -DBECKON_TEST_HOOKS
header_check hpp-c++20 c++ c++ c++20 "$hpp_once"

echo
echo "== build"
build_programs "${programs[@]}"

run_modes run 120 180 300 "${modes[@]}"
summary
