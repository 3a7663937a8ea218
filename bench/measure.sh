#!/usr/bin/env bash
# The figures of benches/README.md ("Load tool"): each configuration 3 times
# with the release build, then the median of each figure. Needs jq.
#   bash bench/measure.sh                 # all three configurations
#   RUNS=5 DURATION=10 bash bench/measure.sh ws
# Takes about 3 x 3 x (DURATION + 3) seconds, plus the build the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v jq >/dev/null || { echo "measure.sh needs jq" >&2; exit 1; }

runs=${RUNS:-3}
duration=${DURATION:-10}
pairs=${PAIRS:-8}
window=${IN_FLIGHT:-16}
rate=${RATE:-10000}
only=${1:-all}

cargo build -q --release -p beckon-bench
bin=target/release/beckon-bench
out=target/bench-measure
mkdir -p "$out"

. bench/stats-lib.sh

measure() {
  local name=$1
  shift
  local files=()
  for i in $(seq 1 "$runs"); do
    local file="$out/$name.$i.json"
    timeout 300 "$bin" --json --duration "$duration" --pairs "$pairs" --in-flight "$window" "$@" >"$file"
    files+=("$file")
  done
  local fig
  printf '%-26s' "$name"
  for fig in .invitations_per_sec .latency_us.send_to_received.p50 .latency_us.send_to_received.p99 \
    .latency_us.send_to_answer.p99 .cpu.us_per_invitation .cpu.load_average; do
    printf ' %12.1f' "$(for f in "${files[@]}"; do jq "$fig" "$f"; done | median)"
  done
  printf '   errors: %s\n' "$(jq -c -s 'map(.errors) | add' "${files[@]}")"
}

printf '%-26s %12s %12s %12s %12s %12s %12s\n' "median of $runs" "invit./s" "recv p50 us" "recv p99 us" "answ p99 us" "cpu us/inv" "load avg"
case $only in all | memory) measure memory --url memory://bench-measure ;; esac
case $only in all | ws) measure ws-spawned --spawn-server ;; esac
case $only in all | paced) measure "ws-paced-$rate" --spawn-server --rate "$rate" ;; esac
