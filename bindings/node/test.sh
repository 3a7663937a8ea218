#!/usr/bin/env bash
# Runs every test of the Node binding against an already-built libbeckon, from
# ${BECKON_LIB_DIR:-<repo>/target/debug}: the node:test suites (test/*.test.js),
# the TypeScript declaration check, and the example. Run ci-install.sh first.
# The last line is "node: N passed, M failed"; the exit status is non-zero if
# anything failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
lib_dir=${BECKON_LIB_DIR:-$root/target/debug}
case "$(uname -s)" in
  Darwin) lib_name=libbeckon.dylib ;;
  *) lib_name=libbeckon.so ;;
esac
export BECKON_LIBRARY=$lib_dir/$lib_name
if [ ! -f "$BECKON_LIBRARY" ]; then
  echo "test.sh: no library at $BECKON_LIBRARY (build it with cargo build --lib, or set BECKON_LIB_DIR)" >&2
  exit 1
fi
cd "$here"
if [ ! -d node_modules/koffi ]; then
  echo "test.sh: node_modules is missing: run bindings/node/ci-install.sh first" >&2
  exit 1
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
passed=0
failed=0

echo "== node --test (library: $BECKON_LIBRARY)"
timeout --kill-after=5 100 node --test --test-reporter=spec --test-timeout=60000 test/*.test.js | tee "$out/tests.log"
status=${PIPESTATUS[0]}
tests_passed=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$out/tests.log" | tail -n 1)
tests_failed=$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$out/tests.log" | tail -n 1)
passed=$((passed + ${tests_passed:-0}))
failed=$((failed + ${tests_failed:-0}))
if [ "$status" -ne 0 ] && [ "${tests_failed:-0}" -eq 0 ]; then
  echo "FAIL node --test (exit status $status)"
  failed=$((failed + 1))
fi

echo
echo "== index.d.ts: tsc --noEmit on test/types/usage.ts"
if timeout --kill-after=5 40 node_modules/.bin/tsc -p test/types; then
  echo "PASS type declarations"
  passed=$((passed + 1))
else
  echo "FAIL type declarations"
  failed=$((failed + 1))
fi

echo
echo "== example: examples/demo.js"
if timeout --kill-after=5 30 node examples/demo.js >"$out/demo.log" 2>&1 &&
  grep -q '^\[alice\] heard: bob accepted$' "$out/demo.log" &&
  grep -q '^\[bob  \] event INVITATION_RECEIVED: from alice' "$out/demo.log" &&
  grep -q -- '^--- done ---$' "$out/demo.log"; then
  echo "PASS example"
  passed=$((passed + 1))
else
  echo "FAIL example; its output:"
  sed 's/^/    | /' "$out/demo.log"
  failed=$((failed + 1))
fi

echo
echo "node: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
