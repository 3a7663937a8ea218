#!/usr/bin/env bash
# Smoke test of the load tool (debug build): 2 seconds against memory:// and 2
# seconds against a server it spawns on 127.0.0.1, each checked through the
# JSON report: invitations completed, none left unfinished, no errors. When
# redis-server is installed, also 2 seconds across three debug beckon-servers
# on a private Redis (every invitation crosses nodes).
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

# Three nodes on one Redis: a private redis-server on a free loopback port,
# three beckon-servers on it; all stopped by PID when the script ends.
if command -v redis-server >/dev/null; then
  echo "== cargo build -p beckon-server"
  cargo build -q -p beckon-server
  dir=$(mktemp -d "${TMPDIR:-/tmp}/beckon-smoke.XXXXXX")
  pids=()
  stop_all() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$dir"
  }
  trap stop_all EXIT
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$dir" </dev/null >/dev/null 2>&1 &
  pids+=("$!")
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  urls=
  admins=
  for i in 1 2 3; do
    target/debug/beckon-server serve --dev --listen 127.0.0.1:0 --admin 127.0.0.1:0 \
      --port-file "$dir/n$i.json" --store redis --redis-url "redis://127.0.0.1:$port/" --node-name "n$i" \
      --messages-per-sec 1000000 --messages-burst 10000000 </dev/null >>"$dir/n$i.log" 2>&1 &
    pids+=("$!")
    for _ in $(seq 200); do [ -s "$dir/n$i.json" ] && break; sleep 0.05; done
    ports=$(cat "$dir/n$i.json" 2>/dev/null || true)
    urls+="${urls:+,}ws://$(printf '%s' "$ports" | grep -o '"listen":"[^"]*"' | cut -d'"' -f4)"
    admins+="${admins:+,}$(printf '%s' "$ports" | grep -o '"admin":"[^"]*"' | cut -d'"' -f4)"
  done
  check "ws:// three nodes on one Redis, each invitee on the next node" --url "$urls" --admin "$admins"
else
  echo "SKIP three nodes on one Redis: no redis-server (scripts/install-redis.sh)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
