#!/usr/bin/env bash
# Durable throughput against in-memory, side by side in one run: the load tool
# over ws:// against a spawned server on `--server-store memory` and on
# `--server-store sqlite` (a fresh data directory each run), alternating, RUNS
# times each; then the medians and their ratio. Needs jq.
#   bash bench/store-ratio.sh                   # in flight 16 per pair (the default window)
#   IN_FLIGHT=64 RUNS=5 bash bench/store-ratio.sh
#   DURABILITY=full bash bench/store-ratio.sh
#   DISPATCH=pool bash bench/store-ratio.sh     # the clients' callbacks on the library's pool
# Takes about 2 x RUNS x (DURATION + 3) seconds, plus the build the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v jq >/dev/null || { echo "store-ratio.sh needs jq" >&2; exit 1; }

runs=${RUNS:-3}
duration=${DURATION:-5}
pairs=${PAIRS:-8}
window=${IN_FLIGHT:-16}
durability=${DURABILITY:-normal}
dispatch=${DISPATCH:-thread}

cargo build -q --release -p beckon-bench
bin=target/release/beckon-bench
out=target/bench-store-ratio
rm -rf "$out"; mkdir -p "$out"

. bench/stats-lib.sh

for i in $(seq 1 "$runs"); do
  for store in memory sqlite; do
    timeout 120 "$bin" --json --spawn-server --server-store "$store" --server-durability "$durability" \
      --duration "$duration" --pairs "$pairs" --in-flight "$window" --dispatch "$dispatch" >"$out/$store.$i.json"
  done
done

figure() { for f in "$out/$1".*.json; do jq "$2" "$f"; done | median; }
printf '%-8s %12s %12s %12s %12s\n' "median/$runs" "invit./s" "answ p50 us" "answ p99 us" "cpu us/inv"
for store in memory sqlite; do
  printf '%-8s %12.0f %12.0f %12.0f %12.1f   errors: %s\n' "$store" \
    "$(figure "$store" .invitations_per_sec)" \
    "$(figure "$store" .latency_us.send_to_answer.p50)" \
    "$(figure "$store" .latency_us.send_to_answer.p99)" \
    "$(figure "$store" .cpu.us_per_invitation)" \
    "$(jq -c -s 'map(.errors) | add' "$out/$store".*.json)"
done
memory=$(figure memory .invitations_per_sec)
sqlite=$(figure sqlite .invitations_per_sec)
awk -v m="$memory" -v s="$sqlite" -v d="$durability" -v w="$window" -v p="$pairs" -v t="$dispatch" \
  'BEGIN { printf "sqlite (%s) / memory: %.1f %% (%d pairs, %d in flight each, %s dispatch)\n", d, 100 * s / m, p, w, t }'
