#!/usr/bin/env bash
# What durability costs, taken apart: the load tool against a spawned server
# on four stores, alternating, RUNS rounds, then the medians and each one's
# ratio to memory:
#   memory    `--store memory`: nothing is written, nothing waits;
#   sqlite    the SQLite store as a server runs it;
#   null      SQLite's writer commits nothing, but frames still wait for
#             their (instant) commits: the cost of waiting alone;
#   ungated   SQLite writes everything, but frames do not wait: the cost of
#             the writing alone.
# `null` and `ungated` break durability on purpose: they come from a build
# with the `experiments` feature (server/src/store/experiments.rs), never a
# production one. Needs jq.
#   bash bench/store-floor.sh                  # 8 pairs x 16 in flight, RUNS=4
#   IN_FLIGHT=64 RUNS=6 bash bench/store-floor.sh
# Takes about 4 x RUNS x (DURATION + 2) seconds, plus the builds.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v jq >/dev/null || { echo "store-floor.sh needs jq" >&2; exit 1; }

runs=${RUNS:-4}
duration=${DURATION:-5}
pairs=${PAIRS:-8}
window=${IN_FLIGHT:-16}
dispatch=${DISPATCH:-thread}

out=target/bench-store-floor
rm -rf "$out"; mkdir -p "$out"
# Two builds of the same tool: the experiments' knobs exist only in the second.
cargo build -q --release -p beckon-bench --features experiments
cp target/release/beckon-bench "$out/beckon-bench-experiments"
cargo build -q --release -p beckon-bench
plain=target/release/beckon-bench
experiments=$out/beckon-bench-experiments

run() { # name, binary, store, environment...
  local name=$1 bin=$2 store=$3 i=$4; shift 4
  env "$@" timeout 120 "$bin" --json --spawn-server --server-store "$store" \
    --duration "$duration" --pairs "$pairs" --in-flight "$window" --dispatch "$dispatch" \
    >"$out/$name.$i.json"
}
for i in $(seq 1 "$runs"); do
  run memory "$plain" memory "$i"
  run sqlite "$plain" sqlite "$i"
  run null "$experiments" sqlite "$i" BECKON_EXPERIMENT_NULL_WRITER=1
  run ungated "$experiments" sqlite "$i" BECKON_EXPERIMENT_UNGATED=1
done

. bench/stats-lib.sh
figure() { for f in "$out/$1".*.json; do jq "$2" "$f"; done | median; }
memory=$(figure memory .invitations_per_sec)
printf '%-8s %10s %8s %12s %11s   %s\n' "median/$runs" "invit./s" "ratio" "answ p50 us" "cpu us/inv" "each run's invit./s"
for name in memory sqlite null ungated; do
  rate=$(figure "$name" .invitations_per_sec)
  printf '%-8s %10.0f %7.1f%% %12.0f %11.1f   %s   errors: %s\n' "$name" "$rate" \
    "$(awk -v r="$rate" -v m="$memory" 'BEGIN { print 100 * r / m }')" \
    "$(figure "$name" .latency_us.send_to_answer.p50)" \
    "$(figure "$name" .cpu.us_per_invitation)" \
    "$(for f in "$out/$name".*.json; do jq '.invitations_per_sec | floor' "$f"; done | tr '\n' ' ')" \
    "$(jq -c -s 'map(.errors) | add' "$out/$name".*.json)"
done
echo "($pairs pairs, $window in flight each, $dispatch dispatch, ${duration} s per run)"
