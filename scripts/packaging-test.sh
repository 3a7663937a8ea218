#!/usr/bin/env bash
# The packaging test: installs libbeckon with cargo-c into a temporary prefix,
# then uses it as an application would.
#
#  - the layout: libbeckon.so.X.Y.Z with its libbeckon.so.MAJOR and libbeckon.so
#    links, libbeckon.a, include/beckon/beckon.h and beckon.hpp (identical to
#    the tree's), lib/pkgconfig/beckon.pc, share/cmake/beckon/*.cmake;
#  - the SONAME (readelf -d): libbeckon.so.MAJOR;
#  - the exports (nm -D --defined-only): only beckon_* symbols, and exactly the
#    functions beckon.h declares (the test hooks aside); the static library
#    defines them all too;
#  - pkg-config: version, flags; examples/demo.c and examples/demo.cpp built
#    with `pkg-config --cflags --libs beckon`, linked to libbeckon.so.MAJOR, run;
#  - CMake: tests/packaging/cmake (find_package(beckon 0.1), beckon::beckon for
#    demo.cpp, beckon::beckon_static for demo.c) built and run; a request for
#    the next major version is refused;
#  - a staged install (--destdir, as distribution packages are built).
#
# Needs cargo-c, cmake, pkg-config, a C and a C++ compiler, readelf and nm
# (packaging/ci-install.sh installs them). cargo-c builds the library itself,
# with the dev profile to stay quick (packagers use the release default), in
# target/cargo-c. One PASS/FAIL line per check, then "N passed, M failed";
# exit status non-zero on any failure. Logs: build/packaging/*.log.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/build/packaging
rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/beckon-packaging.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/usr
lib=$prefix/lib

version=$(sed -n 's/^#define BECKON_VERSION "\([0-9.]*\)"$/\1/p' include/beckon.h)
major=${version%%.*}
cargo_version=$(sed -n 's/^version = "\([0-9.]*\)"$/\1/p' Cargo.toml | head -n 1)

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
# Checks a condition given as a command; the label says what it means.
check() {
  local label=$1
  shift
  if "$@" >>"$out/checks.log" 2>&1; then pass "$label"; else fail "$label"; fi
}
# Runs a command with a time limit, output in $out/$2.log; tail on failure.
step() {
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
  tail -n 25 "$log" | sed 's/^/    | /'
  return 1
}
finish() {
  echo
  if [ "$failed" -gt 0 ]; then
    echo "failed:"
    for f in "${failures[@]}"; do echo "  $f"; done
  fi
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

echo "== versions: beckon.h $version, Cargo.toml $cargo_version"
check "BECKON_VERSION in beckon.h is the crate version" test "$version" = "$cargo_version"

echo
echo "== tools"
missing=()
for tool in cmake pkg-config cc c++ readelf nm; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ! cargo cinstall --version >/dev/null 2>&1; then missing+=("cargo-c"); fi
if [ ${#missing[@]} -gt 0 ]; then
  fail "tools present (missing: ${missing[*]}; run packaging/ci-install.sh)"
  finish
fi
pass "tools present ($(cargo cinstall --version 2>/dev/null | head -n 1), $(cmake --version | head -n 1))"

echo
echo "== cargo cinstall into a temporary prefix"
cinstall=(cargo cinstall --locked --debug --target-dir "$root/target/cargo-c")
if ! step "cargo cinstall --prefix <tmp>/usr" cinstall 900 "${cinstall[@]}" --prefix "$prefix" --libdir "$lib"; then
  finish
fi

echo
echo "== layout"
real=$lib/libbeckon.so.$version
check "lib/libbeckon.so.$version is a file" test -f "$real" -a ! -L "$real"
check "lib/libbeckon.so.$major -> libbeckon.so.$version" test "$(readlink "$lib/libbeckon.so.$major")" = "libbeckon.so.$version"
check "lib/libbeckon.so -> libbeckon.so.$version" test "$(readlink "$lib/libbeckon.so")" = "libbeckon.so.$version"
check "lib/libbeckon.a" test -f "$lib/libbeckon.a"
check "include/beckon/beckon.h is the tree's" cmp include/beckon.h "$prefix/include/beckon/beckon.h"
check "include/beckon/beckon.hpp is the tree's" cmp include/beckon.hpp "$prefix/include/beckon/beckon.hpp"
check "lib/pkgconfig/beckon.pc" test -f "$lib/pkgconfig/beckon.pc"
check "share/cmake/beckon/beckonConfig.cmake" cmp packaging/cmake/beckonConfig.cmake "$prefix/share/cmake/beckon/beckonConfig.cmake"
check "share/cmake/beckon/beckonConfigVersion.cmake" \
  cmp packaging/cmake/beckonConfigVersion.cmake "$prefix/share/cmake/beckon/beckonConfigVersion.cmake"

echo
echo "== SONAME and exported symbols"
soname=$(readelf -d "$real" | sed -n 's/.*(SONAME).*\[\(.*\)\]$/\1/p')
check "SONAME is libbeckon.so.$major (readelf: '$soname')" test "$soname" = "libbeckon.so.$major"
nm -D --defined-only "$real" | awk '{print $3}' | sed 's/@.*//' | sort -u >"$out/exported.txt"
# The functions beckon.h declares: declarations, not comments; no test hooks.
grep -vE '^[[:space:]]*(//|\*|/\*)' include/beckon.h | grep -oE '\bbeckon_[a-z0-9_]+\(' | tr -d '(' |
  grep -v '^beckon_test_' | sort -u >"$out/declared.txt"
stray=$(grep -v '^beckon_' "$out/exported.txt" || true)
check "only beckon_* symbols exported ($(wc -l <"$out/exported.txt") exported${stray:+; stray: $(echo "$stray" | head -n 5 | tr '\n' ' ')})" \
  test -z "$stray"
check "exports are exactly beckon.h's $(wc -l <"$out/declared.txt") functions (diff in checks.log)" \
  diff "$out/declared.txt" "$out/exported.txt"
nm --defined-only "$lib/libbeckon.a" 2>/dev/null | awk '$2 == "T" {print $3}' | grep '^beckon_' |
  grep -v '^beckon_test_' | sort -u >"$out/static.txt" || true
check "libbeckon.a defines every function of beckon.h" diff "$out/declared.txt" "$out/static.txt"

echo
echo "== pkg-config"
export PKG_CONFIG_PATH=$lib/pkgconfig
# pkg-config's answer with its trailing blank trimmed.
pc() { pkg-config "$@" | sed 's/[[:space:]]*$//'; }
check "pkg-config --modversion beckon is $version" test "$(pc --modversion beckon)" = "$version"
check "pkg-config --cflags beckon is -I<prefix>/include/beckon" test "$(pc --cflags beckon)" = "-I$prefix/include/beckon"
check "pkg-config --libs beckon is -L<prefix>/lib -lbeckon" test "$(pc --libs beckon)" = "-L$lib -lbeckon"
read -r -a pc_flags <<<"$(pc --cflags --libs beckon)"
if step "cc examples/demo.c \$(pkg-config --cflags --libs beckon)" build-demo-c 120 \
  cc -std=c11 -Wall -Wextra -Werror -pthread examples/demo.c "${pc_flags[@]}" -Wl,-rpath,"$lib" -o "$work/demo_c"; then
  check "demo_c needs libbeckon.so.$major" bash -c "readelf -d '$work/demo_c' | grep -q 'NEEDED.*\[libbeckon.so.$major\]'"
  step "demo_c runs the flow" run-demo-c 60 "$work/demo_c" && check "demo_c finished" grep -q -- "--- done ---" "$out/run-demo-c.log"
fi
if step "c++ examples/demo.cpp \$(pkg-config --cflags --libs beckon)" build-demo-cpp 180 \
  c++ -std=c++17 -Wall -Wextra -Werror -pthread examples/demo.cpp "${pc_flags[@]}" -Wl,-rpath,"$lib" -o "$work/demo_cpp"; then
  step "demo_cpp runs the flow" run-demo-cpp 60 "$work/demo_cpp" &&
    check "demo_cpp finished, bob accepted" grep -q -- "heard from bob" "$out/run-demo-cpp.log"
fi
unset PKG_CONFIG_PATH

echo
echo "== CMake: find_package(beckon)"
build=$work/cmake-build
if step "cmake configure (CMAKE_PREFIX_PATH=<prefix>)" cmake-configure 120 \
    cmake -S tests/packaging/cmake -B "$build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release &&
  step "cmake --build" cmake-build 300 cmake --build "$build"; then
  check "find_package found beckon $version" grep -q "beckon $version: $lib/libbeckon.so" "$out/cmake-configure.log"
  check "demo_cpp (beckon::beckon) needs libbeckon.so.$major" \
    bash -c "readelf -d '$build/demo_cpp' | grep -q 'NEEDED.*\[libbeckon.so.$major\]'"
  check "demo_c_static (beckon::beckon_static) needs no libbeckon" \
    bash -c "! readelf -d '$build/demo_c_static' | grep -q 'NEEDED.*libbeckon'"
  step "demo_cpp (CMake) runs the flow" run-cmake-demo-cpp 60 "$build/demo_cpp" &&
    check "demo_cpp (CMake) finished" grep -q -- "--- done ---" "$out/run-cmake-demo-cpp.log"
  step "demo_c_static (CMake) runs the flow" run-cmake-demo-c 60 "$build/demo_c_static" &&
    check "demo_c_static (CMake) finished" grep -q -- "--- done ---" "$out/run-cmake-demo-c.log"
fi
next=$((major + 1)).0
if timeout 120 cmake -S tests/packaging/cmake -B "$work/cmake-next" -DCMAKE_PREFIX_PATH="$prefix" \
  -DBECKON_FIND_VERSION="$next" >"$out/cmake-next.log" 2>&1; then
  fail "find_package(beckon $next) is refused (it was accepted)"
else
  check "find_package(beckon $next) is refused" grep -q "beckonConfig.cmake, version: $version" "$out/cmake-next.log"
fi

echo
echo "== staged install (--destdir, prefix /usr)"
stage=$work/stage
if step "cargo cinstall --destdir <tmp>/stage --prefix /usr" cinstall-staged 600 \
  "${cinstall[@]}" --destdir "$stage" --prefix /usr --libdir /usr/lib; then
  check "staged: usr/lib/libbeckon.so.$version" test -f "$stage/usr/lib/libbeckon.so.$version"
  check "staged: usr/include/beckon/beckon.hpp" test -f "$stage/usr/include/beckon/beckon.hpp"
  check "staged: beckon.pc says prefix=/usr" grep -qx 'prefix=/usr' "$stage/usr/lib/pkgconfig/beckon.pc"
  check "staged: usr/share/cmake/beckon/beckonConfig.cmake" test -f "$stage/usr/share/cmake/beckon/beckonConfig.cmake"
fi

finish
