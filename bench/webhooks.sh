#!/usr/bin/env bash
# What event webhooks cost the server, side by side in one run: the load tool
# over ws:// against a spawned server (memory store) without webhooks and
# with every event sent to a receiver in the bench process that answers 204
# at once (--server-webhook), alternating, RUNS times each; then medians.
# Two loads: closed loop (as fast as it goes: the webhook queue may fill and
# drop, which is counted), and paced at RATE invitations/s (every event
# should arrive: received per invitation, nothing dropped). Needs jq.
#   bash bench/webhooks.sh
#   RUNS=5 RATE=5000 bash bench/webhooks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v jq >/dev/null || { echo "webhooks.sh needs jq" >&2; exit 1; }

runs=${RUNS:-3}
duration=${DURATION:-5}
pairs=${PAIRS:-8}
rate=${RATE:-2000}

cargo build -q --release -p beckon-bench
bin=target/release/beckon-bench
out=target/bench-webhooks
rm -rf "$out"
mkdir -p "$out"

. bench/stats-lib.sh

for i in $(seq 1 "$runs"); do
  for hooks in off on; do
    flag=()
    [ "$hooks" = on ] && flag=(--server-webhook)
    timeout 120 "$bin" --json --spawn-server "${flag[@]}" --duration "$duration" --pairs "$pairs" \
      >"$out/closed-$hooks.$i.json"
    timeout 120 "$bin" --json --spawn-server "${flag[@]}" --duration "$duration" --pairs "$pairs" \
      --rate "$rate" >"$out/paced-$hooks.$i.json"
  done
done

figure() { for f in "$out/$1".*.json; do jq "$2 // 0" "$f"; done | median; }
for load in closed paced; do
  printf '%-12s %10s %12s %12s %12s %14s %9s\n' "$load/$runs" "invit./s" "answ p50 us" "answ p99 us" "cpu us/inv" "hooks/inv" "dropped"
  for hooks in off on; do
    printf '%-12s %10.0f %12.0f %12.0f %12.1f %14.2f %9.0f\n' "webhooks $hooks" \
      "$(figure "$load-$hooks" .invitations_per_sec)" \
      "$(figure "$load-$hooks" .latency_us.send_to_answer.p50)" \
      "$(figure "$load-$hooks" .latency_us.send_to_answer.p99)" \
      "$(figure "$load-$hooks" .cpu.us_per_invitation)" \
      "$(figure "$load-$hooks" .server_webhooks.received_per_invitation)" \
      "$(figure "$load-$hooks" .server_webhooks.dropped)"
  done
done
off=$(figure closed-off .invitations_per_sec)
on=$(figure closed-on .invitations_per_sec)
awk -v a="$off" -v b="$on" 'BEGIN { printf "closed loop, webhooks on / off: %.1f %%\n", 100 * b / a }'
