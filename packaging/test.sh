#!/usr/bin/env bash
# The tests of the packaging and of the C++ wrapper (include/beckon.hpp),
# against an already-built libbeckon in ${BECKON_LIB_DIR:-<repo>/target/debug}
# (`cargo build --lib` makes it):
#
#  1. beckon.hpp on its own: C++17 and C++20, -Wall -Wextra -Werror -pedantic
#     (plus -Wshadow -Wconversion), included twice;
#  2. tests/c/test_hpp.cpp, plainly and under AddressSanitizer + UBSan (with
#     the test hooks when the library was built with them); valgrind runs it in
#     scripts/c-tests.sh with the other C programs;
#  3. examples/demo.cpp: the demo flow (alice invites bob, bob accepts);
#  4. scripts/packaging-test.sh: install with cargo-c into a temporary prefix,
#     pkg-config and CMake consumers, SONAME and exported symbols (cargo-c
#     builds the copy it installs).
#
# Needs packaging/ci-install.sh's tools. One PASS/FAIL line per check; the last
# line is "N passed, M failed"; the exit status is non-zero on any failure.
# Logs: build/packaging-tests/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
lib_dir=$(cd "${BECKON_LIB_DIR:-$root/target/debug}" 2>/dev/null && pwd) || {
  echo "FAIL library directory ${BECKON_LIB_DIR:-$root/target/debug} does not exist (cargo build --lib)"
  echo "0 passed, 1 failed"
  exit 1
}
out=$root/build/packaging-tests
rm -rf "$out"
mkdir -p "$out"

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
# Runs "$@" with a time limit; PASS/FAIL under $1, output in $out/$2.log.
run() {
  local label=$1 log=$out/$2.log limit=$3
  shift 3
  local start=$SECONDS rc=0
  timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -eq 0 ]; then
    pass "$label ($((SECONDS - start))s)"
    return 0
  fi
  local why="exit status $rc"
  if [ "$rc" -eq 124 ]; then why="timed out after ${limit}s"; fi
  fail "$label ($why, log ${log#"$root"/})"
  grep -E '^FAIL|FATAL|ERROR: |runtime error:' "$log" | head -n 15 | sed 's/^/    | /' || true
  tail -n 15 "$log" | sed 's/^/    | /'
  return 1
}

echo "== library: $lib_dir"
if [ ! -f "$lib_dir/libbeckon.so" ]; then
  fail "libbeckon.so in $lib_dir (cargo build --lib)"
  echo "$passed passed, $failed failed"
  exit 1
fi
hooks=()
if nm -D --defined-only "$lib_dir/libbeckon.so" | grep -q ' beckon_test_force_panic$'; then
  hooks=(-DBECKON_TEST_HOOKS)
  echo "   (built with the test hooks: test_hpp checks caught panics too)"
fi

echo
echo "== include/beckon.hpp on its own"
strict=(-Wall -Wextra -Werror -pedantic -Wshadow -Wconversion -Wsign-conversion -Iinclude -fsyntax-only)
once='#include "beckon.hpp"\nint main() { beckon::check_abi(); return 0; }\n'
twice='#include "beckon.hpp"\n#include "beckon.hpp"\nint main() { beckon::Client *c = nullptr; return c != nullptr; }\n'
for std in c++17 c++20; do
  for variant in once twice; do
    text=$once
    if [ "$variant" = twice ]; then text=$twice; fi
    printf '%b' "$text" >"$out/hpp-$std-$variant.cpp"
    run "beckon.hpp $std ($variant)" "hpp-$std-$variant" 60 c++ -std="$std" "${strict[@]}" "$out/hpp-$std-$variant.cpp" || true
  done
done

echo
echo "== tests/c/test_hpp.cpp and examples/demo.cpp"
cxx=(c++ -std=c++17 -Wall -Wextra -Werror -g -pthread -Iinclude "${hooks[@]}")
link=(-L"$lib_dir" -lbeckon -Wl,-rpath,"$lib_dir")
sanitize=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
lsan_options=print_suppressions=0
if [ -f tests/c/lsan.supp ]; then lsan_options="suppressions=$root/tests/c/lsan.supp:$lsan_options"; fi
export RUST_BACKTRACE=0

if run "build test_hpp" build-test_hpp 180 "${cxx[@]}" tests/c/test_hpp.cpp "${link[@]}" -o "$out/test_hpp"; then
  run "test_hpp [plain]" test_hpp.plain 120 env BECKON_TEST_SLOW=0 "$out/test_hpp" || true
fi
if run "build test_hpp [asan]" build-test_hpp.asan 180 \
  "${cxx[@]}" "${sanitize[@]}" tests/c/test_hpp.cpp "${link[@]}" -o "$out/test_hpp.asan"; then
  run "test_hpp [asan]" test_hpp.asan 180 env BECKON_TEST_SLOW=0 \
    "ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1" \
    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1" "LSAN_OPTIONS=$lsan_options" "$out/test_hpp.asan" || true
fi
if run "build examples/demo.cpp" build-demo 180 "${cxx[@]}" examples/demo.cpp "${link[@]}" -o "$out/demo_cpp"; then
  if run "examples/demo.cpp runs" demo 60 "$out/demo_cpp"; then
    if grep -q "heard from bob" "$out/demo.log" && grep -q -- "--- done ---" "$out/demo.log"; then
      pass "demo: bob's device rang, bob accepted, alice heard it"
    else
      fail "demo: the flow did not finish (log ${out#"$root"/}/demo.log)"
    fi
  fi
fi

echo
echo "== scripts/packaging-test.sh"
rc=0
bash scripts/packaging-test.sh 2>&1 | tee "$out/packaging-test.log" | sed 's/^/  /' || rc=$?
summary=$(tail -n 1 "$out/packaging-test.log")
if [[ "$summary" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
  passed=$((passed + BASH_REMATCH[1]))
  failed=$((failed + BASH_REMATCH[2]))
  if [ "${BASH_REMATCH[2]}" -gt 0 ]; then failures+=("scripts/packaging-test.sh: ${BASH_REMATCH[2]} failed"); fi
fi
if [ "$rc" -ne 0 ] && ! [[ "$summary" =~ [1-9][0-9]*\ failed$ ]]; then
  fail "scripts/packaging-test.sh exited with $rc"
fi

echo
if [ "$failed" -gt 0 ]; then
  echo "failed:"
  for f in "${failures[@]}"; do echo "  $f"; done
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
