#!/usr/bin/env bash
# Smoke test of the load tool (debug build): 2 seconds against memory:// and 2
# seconds against a server it spawns on 127.0.0.1, each checked through the
# JSON report: invitations completed, none left unfinished, no errors.
# The last line is "N passed, M failed"; the exit status is non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo build -p beckon-bench"
cargo build -q -p beckon-bench
bin=target/debug/beckon-bench

passed=0
failed=0
# field NAME JSON: the number after "NAME": (empty if absent)
field() {
  printf '%s' "$2" | grep -o "\"$1\":[0-9.]*" | head -n 1 | cut -d: -f2
}
check() {
  local label=$1
  shift
  local out status=0
  out=$(timeout 120 "$bin" --json --duration 2 --warmup 0.5 --pairs 4 --in-flight 16 "$@") || status=$?
  local completed unfinished
  completed=$(field completed "$out")
  unfinished=$(field unfinished "$out")
  if [ "$status" -eq 0 ] && [ "${completed:-0}" -gt 0 ] && [ "${unfinished:-1}" -eq 0 ] &&
    printf '%s' "$out" | grep -q '"errors":{}'; then
    echo "PASS $label: $completed complete invitations, $(field invitations_per_sec "$out" | cut -d. -f1)/s"
    passed=$((passed + 1))
  else
    echo "FAIL $label (exit $status): $out"
    failed=$((failed + 1))
  fi
}

check "memory://" --url memory://smoke
check "ws:// spawned server" --spawn-server
check "ws:// spawned server, paced 2000/s" --spawn-server --rate 2000

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
