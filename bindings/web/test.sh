#!/usr/bin/env bash
# Runs every test of the web client (bindings/web): the node:test suites
# (test/*.test.mjs: the client in Node with `ws`, in headless Chromium, with a
# native C peer, and dist/'s freshness) against real beckon-server processes,
# and the type declarations' check. Needs target/debug/beckon-server and
# target/debug/libbeckon.so built (cargo build -p beckon-server; cargo build
# --lib), and ci-install.sh run first. The last line is
# "web: N passed, M failed"; the exit status is non-zero if anything failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export BECKON_SERVER=${BECKON_SERVER:-$root/target/debug/beckon-server}
export BECKON_LIB_DIR=${BECKON_LIB_DIR:-$root/target/debug}
for need in "$BECKON_SERVER" "$BECKON_LIB_DIR/libbeckon.so"; do
  if [ ! -f "$need" ]; then
    echo "test.sh: $need is missing (cargo build -p beckon-server; cargo build --lib)" >&2
    echo "web: 0 passed, 1 failed"
    exit 1
  fi
done
cd "$here"
if [ ! -d node_modules/playwright-core ] || [ ! -x /usr/bin/chromium ]; then
  echo "test.sh: node_modules or /usr/bin/chromium is missing: run bindings/web/ci-install.sh first" >&2
  echo "web: 0 passed, 1 failed"
  exit 1
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
passed=0
failed=0

echo "== node --test (server: $BECKON_SERVER)"
# Three files at a time (one process each; they mostly wait on servers);
# each test is bounded, and so is the whole.
timeout --kill-after=10 300 node --test --test-reporter=spec --test-concurrency=3 --test-timeout=90000 test/*.test.mjs | tee "$out/tests.log"
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
echo "== dist/beckon.d.ts: tsc --noEmit on test/types/usage.ts"
if timeout --kill-after=5 60 node_modules/.bin/tsc -p test/types; then
  echo "PASS type declarations"
  passed=$((passed + 1))
else
  echo "FAIL type declarations"
  failed=$((failed + 1))
fi

echo
echo "web: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
