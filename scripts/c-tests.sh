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
  test_hpp)
if [ -n "${C_TESTS_ONLY:-}" ]; then
  read -r -a programs <<<"$C_TESTS_ONLY"
fi
read -r -a modes <<<"${C_TESTS_MODES:-plain asan valgrind}"

common=(-Iinclude -DBECKON_TEST_HOOKS -g -pthread)
cflags=(-std=c11 -Wall -Wextra -Werror "${common[@]}")
cxxflags=(-std=c++17 -Wall -Wextra -Werror "${common[@]}")
link=(-L"$lib" -lbeckon -Wl,-rpath,"$root/$lib")
sanitize=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)

passed=0
failed=0
failures=()
pass() {
  echo "PASS $1"
  passed=$((passed + 1))
}
fail() {
  echo "FAIL $1"
  failed=$((failed + 1))
  failures+=("$1")
}
# What went wrong in a log: the failed checks, the first sanitizer or valgrind
# report (with its stack), then the last lines.
show_tail() {
  local log=$1 n=${2:-20}
  if grep -qE '^(FAIL|FATAL)|FATAL:' "$log"; then
    echo "    failed checks:"
    grep -E '^(FAIL|FATAL)|FATAL:' "$log" | grep -v '(see stderr)$' | head -n 15 | sed 's/^/    | /'
  fi
  local report='ERROR: (Address|Leak)Sanitizer|runtime error:|==[0-9]+== (Invalid|Conditional|Use of|Syscall param|Mismatched|Source and|Argument|Process terminating)|are definitely lost'
  if grep -qE "$report" "$log"; then
    echo "    first memory error report:"
    grep -m1 -A14 -E "$report" "$log" | sed 's/^/    | /'
  fi
  echo "    last lines:"
  tail -n "$n" "$log" | sed 's/^/    | /'
}

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
    local why="exit status $rc"
    if [ "$rc" -eq 124 ]; then why="timed out after ${limit}s"; fi
    if [ "$rc" -eq 99 ]; then why="valgrind reported errors"; fi
    fail "$label ($why, log $log)"
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
built=()
for p in "${programs[@]}"; do
  if [ -f "tests/c/$p.cpp" ]; then
    compile=(c++ "${cxxflags[@]}" "tests/c/$p.cpp")
  else
    compile=(cc "${cflags[@]}" "tests/c/$p.c")
  fi
  log="$out/$p.build.log"
  if "${compile[@]}" "${link[@]}" -o "$out/$p" >"$log" 2>&1 &&
    "${compile[@]}" "${sanitize[@]}" "${link[@]}" -o "$out/$p.asan" >>"$log" 2>&1; then
    pass "build $p"
    built+=("$p")
  else
    fail "build $p (log $log)"
    show_tail "$log" 30
  fi
done

# Rust prints caught panics (test_panic forces some): keep it to one line each.
export RUST_BACKTRACE=0

# LeakSanitizer / valgrind suppressions: only for memory that libbeckon keeps in
# process-wide statics until exit; see the files for each entry's reason.
lsan_supp=tests/c/lsan.supp
valgrind_supp=tests/c/valgrind.supp
lsan_options=print_suppressions=0
if [ -f "$lsan_supp" ]; then lsan_options="suppressions=$root/$lsan_supp:$lsan_options"; fi
asan_env=(
  "ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1"
  "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
  "LSAN_OPTIONS=$lsan_options"
)
valgrind_cmd=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
  --show-leak-kinds=definite --num-callers=40 --fair-sched=yes --quiet)
if [ -f "$valgrind_supp" ]; then valgrind_cmd+=("--suppressions=$root/$valgrind_supp"); fi

for mode in "${modes[@]}"; do
  echo
  echo "== run: $mode"
  if [ "$mode" = valgrind ] && ! command -v valgrind >/dev/null; then
    for p in "${built[@]}"; do fail "$p [valgrind] (valgrind is not installed)"; done
    continue
  fi
  for p in "${built[@]}"; do
    log="$out/$p.$mode.log"
    case "$mode" in
      plain) run "$p [plain]" "$log" 120 env BECKON_TEST_SLOW=0 "$out/$p" ;;
      asan) run "$p [asan]" "$log" 180 env BECKON_TEST_SLOW=0 "${asan_env[@]}" "$out/$p.asan" ;;
      valgrind) run "$p [valgrind]" "$log" 300 env BECKON_TEST_SLOW=1 "${valgrind_cmd[@]}" "$out/$p" ;;
      *) fail "$p [$mode] (unknown mode)" ;;
    esac
  done
done

echo
if [ "$failed" -gt 0 ]; then
  echo "failed:"
  for f in "${failures[@]}"; do echo "  $f"; done
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
