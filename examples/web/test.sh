#!/usr/bin/env bash
# The web phone page's browser test (examples/web/test/*.test.mjs): a real
# headless Chromium against a real beckon-server. Prints
# "web-page: N passed, M failed"; exits non-zero on a failure.
#
# Needs target/debug/beckon-server (built here if missing or older than the
# page), playwright-core in bindings/web/node_modules (npm ci there) and
# /usr/bin/chromium (or CHROMIUM=...). Screenshots: build/web-screenshots/.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -d bindings/web/node_modules/playwright-core ]; then
    echo "web-page: bindings/web/node_modules/playwright-core is missing (cd bindings/web && npm ci)" >&2
    exit 2
fi
chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
    echo "web-page: $chromium is missing (apt-get install -y --no-install-recommends chromium)" >&2
    exit 2
fi

server=${BECKON_SERVER:-target/debug/beckon-server}
if [ -z "${BECKON_SERVER:-}" ]; then
    # cargo decides whether anything changed (the page and the web client
    # are embedded in the binary).
    cargo build --quiet -p beckon-server
fi
export BECKON_SERVER="$PWD/$server"
[ "${server#/}" != "$server" ] && export BECKON_SERVER="$server"

out=$(mktemp)
trap 'rm -f "$out"' EXIT
started=$(date +%s)
status=0
timeout 300 node --test --test-reporter=tap --test-concurrency=1 examples/web/test/*.test.mjs >"$out" 2>&1 || status=$?
passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$out" | tail -1)
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$out" | tail -1)
passed=${passed:-0}
failed=${failed:-0}
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
    cat "$out"
    [ "$failed" -eq 0 ] && failed=1
    echo "web-page: $passed passed, $failed failed ($(($(date +%s) - started)) s)"
    exit 1
fi
grep -E '^(not )?ok ' "$out" || true
echo "screenshots: build/web-screenshots/"
echo "web-page: $passed passed, $failed failed ($(($(date +%s) - started)) s)"
