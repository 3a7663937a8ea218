#!/usr/bin/env bash
# The JVM binding's tests, against an already-built libbeckon:
#   1. compiles the binding (kotlinc) into build/beckon-kotlin.jar;
#   2. compiles the tests (kotlinc + javac) and fake libraries reporting other
#      ABI versions (gcc), then runs every test with the JUnit 5 console
#      launcher (reports in build/test-reports);
#   3. compiles and runs the Kotlin and Java examples.
# The library comes from ${BECKON_LIB_DIR:-<repo>/target/debug}. The last line
# is "kotlin: N passed, M failed"; the exit status is non-zero on any failure.
# Needs what ci-install.sh installs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
lib_dir="$(cd "${BECKON_LIB_DIR:-$root/target/debug}" 2>/dev/null && pwd)" || {
  echo "BECKON_LIB_DIR (${BECKON_LIB_DIR:-$root/target/debug}) is not a directory: build the library first (cargo build --lib)"
  exit 1
}
if [ ! -f "$lib_dir/libbeckon.so" ]; then
  echo "no libbeckon.so in $lib_dir: build the library first (cargo build --lib)"
  exit 1
fi
cd "$here"

jars=/usr/share/java
# Compile-time and run-time class paths (Debian's jars).
main_deps="$jars/jna.jar:$jars/kotlinx-coroutines-core.jar"
test_deps="$main_deps:$jars/kotlin-stdlib.jar:$jars/junit-jupiter-api.jar:$jars/apiguardian-api.jar:$jars/opentest4j.jar:$jars/kotlin-stdlib-jdk7.jar:$jars/kotlin-stdlib-jdk8.jar"
runtime="$jars/jna.jar:$jars/kotlin-stdlib.jar:$jars/kotlin-stdlib-jdk7.jar:$jars/kotlin-stdlib-jdk8.jar:$jars/kotlinx-coroutines-core.jar:$jars/atomicfu.jar"

build="$here/build"
rm -rf "$build"
mkdir -p "$build/test-classes" "$build/examples" "$build/fake"

# kotlinc 1.3 on JDK 17 prints a JVM warning about -noverify on every run:
# drop that line, keep everything else, keep the exit status.
quiet() {
  local log rc=0
  log="$(mktemp)"
  "$@" >"$log" 2>&1 || rc=$?
  grep -v -e 'Options -Xverify:none and -noverify were deprecated' "$log" || true
  rm -f "$log"
  return "$rc"
}

echo "== kotlinc: the binding -> build/beckon-kotlin.jar"
quiet kotlinc -jvm-target 1.8 -module-name beckon -Werror -cp "$main_deps" src/main/kotlin -d "$build/beckon-kotlin.jar"

echo "== kotlinc + javac: the tests"
quiet kotlinc -jvm-target 1.8 -cp "$build/beckon-kotlin.jar:$test_deps" src/test/kotlin -d "$build/test-classes"
javac -Xlint:all -Werror -d "$build/test-classes" -cp "$build/beckon-kotlin.jar:$build/test-classes:$test_deps" \
  src/test/java/dev/beckon/*.java
# build/fake/libbeckon-abi-NAME.so reports ABI version VALUE, for each NAME=VALUE
# (LibraryTest: another major, an older minor and the unversioned ABI 1 are
# refused, a newer minor is accepted).
for fake in 3.0=$((3 << 16)) 1.65535=$(((1 << 16) | 65535)) 1=1 2.0=$((2 << 16)) 2.1=$(((2 << 16) | 1)) 2.2=$(((2 << 16) | 2)) 2.4=$(((2 << 16) | 4)); do
  gcc -shared -fPIC -Wall -Werror -DFAKE_ABI_VERSION="${fake#*=}u" \
    -o "$build/fake/libbeckon-abi-${fake%%=*}.so" src/test/c/fake_abi.c
done

echo "== JUnit 5 (libbeckon from $lib_dir)"
classpath="$build/beckon-kotlin.jar:$build/test-classes:$runtime"
junit_log="$build/junit.log"
junit_rc=0
timeout --kill-after=10 150 java \
  -Djna.library.path="$lib_dir" \
  -Dbeckon.test.fakeLibraries="$build/fake" \
  -Dbeckon.test.classpath="$classpath" \
  -jar "$jars/junit-platform-console-standalone.jar" \
  --disable-banner --disable-ansi-colors --details=tree \
  --config=junit.jupiter.execution.timeout.default=60s \
  --reports-dir="$build/test-reports" \
  --class-path "$classpath" --select-package dev.beckon >"$junit_log" 2>&1 || junit_rc=$?
cat "$junit_log"
count() { sed -n "s/^\[ *\([0-9][0-9]*\) tests $1 *\]$/\1/p" "$junit_log" | tail -n 1; }
found="$(count found)"
passed="$(count successful)"
failed="$(count failed)"
aborted="$(count aborted)"
passed="${passed:-0}"
failed=$((${failed:-0} + ${aborted:-0}))
if [ "$junit_rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "JUnit exited with status $junit_rc (timeout or crash)"
  failed=1
fi
if [ "${found:-0}" -eq 0 ]; then
  echo "no test was found"
  failed=$((failed + 1))
fi

echo
echo "== examples"
example_failed=0
if quiet kotlinc -jvm-target 1.8 -cp "$build/beckon-kotlin.jar:$test_deps" examples/Demo.kt -d "$build/examples" &&
  javac -Xlint:all -Werror -d "$build/examples" -cp "$build/beckon-kotlin.jar:$runtime" examples/JavaDemo.java; then
  for main in DemoKt JavaDemo; do
    out="$build/examples/$main.out"
    if timeout --kill-after=10 60 java -Djna.library.path="$lib_dir" -cp "$build/examples:$build/beckon-kotlin.jar:$runtime" \
      "$main" >"$out" 2>&1 && grep -q -- '--- done ---' "$out" && grep -q 'accepted' "$out"; then
      cat "$out"
      echo "PASS example $main"
      passed=$((passed + 1))
    else
      cat "$out"
      echo "FAIL example $main"
      example_failed=$((example_failed + 1))
    fi
  done
else
  echo "FAIL examples do not compile"
  example_failed=2
fi
failed=$((failed + example_failed))

echo
echo "kotlin: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
