#!/usr/bin/env bash
# One node against three on one Redis, side by side in one run (benches/README.md,
# "Several nodes"). A private redis-server on a free loopback port (no
# persistence: `--save "" --appendonly no`), then, alternating, RUNS rounds of:
#   redis1  1 beckon-server on the Redis store (a fresh prefix)
#   redis3  3 beckon-servers on the same Redis (a fresh prefix): beckon-bench
#           puts pair i's inviter on node i % 3 and its invitee on node
#           (i + 1) % 3, so every invitation, answer and push crosses nodes
#   sqlite  1 beckon-server on SQLite (a fresh data directory), for context
#   redis1-nohistory  as redis1 with history_per_user = 0 (only when named in
#           CONFIGS): what keeping history in Redis costs
# each measured closed loop (throughput) and paced at each of RATES/s
# (latency below and near saturation), the same clients, dispatch and
# duration for all. Nodes are started fresh for each run and
# stopped by PID after it; the run waits until presence has spread (each
# inviter's node counts its invitee online) before measuring.
# Prints the medians, the ratio 3-node/1-node and the latency 3 nodes add.
# Needs jq and redis-server.
#   bash bench/cluster.sh
#   RUNS=5 DURATION=5 MODES=closed bash bench/cluster.sh
#   RATES=1000 CONFIGS="redis1 redis3" bash bench/cluster.sh
#   MODES=closed CONFIGS="redis1 redis1-nohistory" bash bench/cluster.sh
# Knobs: RUNS (3), DURATION (s, 8), WARMUP (s, 1), PAIRS (9), IN_FLIGHT (16),
# DISPATCH (pool: the clients' callbacks on the library's pool; thread spins
# most of a core away at a paced rate on 2 cores), RATES ("500 2000"),
# MODES ("closed paced"), CONFIGS ("redis1 redis3 sqlite"), BUILD=0 (skip
# the cargo build), KEEP_LOGS=1. Takes about RUNS x (1 + |RATES|) x |CONFIGS|
# x (DURATION + 2) s: 4.5 min by default.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v jq >/dev/null || { echo "cluster.sh needs jq" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "cluster.sh needs redis-server (scripts/install-redis.sh)" >&2; exit 1; }
. bench/server-lib.sh

runs=${RUNS:-3}
duration=${DURATION:-8}
warmup=${WARMUP:-1}
pairs=${PAIRS:-9}
window=${IN_FLIGHT:-16}
dispatch=${DISPATCH:-pool}
read -r -a rates <<<"${RATES:-500 2000}"
# closed, and paced at each rate ("paced500", ...).
modes=()
for mode in ${MODES:-closed paced}; do
  case $mode in
    closed) modes+=(closed) ;;
    paced) for rate in "${rates[@]}"; do modes+=("paced$rate"); done ;;
    *) echo "MODES: '$mode' is not closed or paced" >&2; exit 2 ;;
  esac
done
read -r -a configs <<<"${CONFIGS:-redis1 redis3 sqlite}"
out=target/bench-cluster
# Limits out of the load's way, as --spawn-server sets them.
limits=(--messages-per-sec 1000000 --messages-burst 10000000 --max-open-invitations 100000)

build_tools
raise_open_files
rm -rf "$out"
mkdir -p "$out"

REDIS_PID=
NODE_PIDS=()
NODE_URLS=()
NODE_ADMINS=()

# A free loopback TCP port (the kernel's choice; released before use).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_redis() {
  local port
  port=$(free_port)
  mkdir -p "$work_dir/redis"
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --dir "$work_dir/redis" --logfile "$work_dir/redis/redis.log" </dev/null >/dev/null 2>&1 &
  REDIS_PID=$!
  REDIS_PORT=$port
  local waited=0
  until redis-cli -p "$port" ping >/dev/null 2>&1; do
    kill -0 "$REDIS_PID" 2>/dev/null || { echo "redis-server did not start" >&2; REDIS_PID=; exit 1; }
    waited=$((waited + 1))
    [ "$waited" -lt 100 ] || { echo "redis-server did not answer within 5 s" >&2; exit 1; }
    sleep 0.05
  done
}

# start_node NAME [FLAGS...]: one beckon-server, ports from its port file.
start_node() {
  local name=$1
  shift
  local port_file="$work_dir/$name.ports.json"
  rm -f "$port_file"
  "$server_bin" serve --dev --listen 127.0.0.1:0 --admin 127.0.0.1:0 \
    --port-file "$port_file" "${limits[@]}" "$@" \
    </dev/null >>"$work_dir/$name.log" 2>&1 &
  local pid=$!
  NODE_PIDS+=("$pid")
  local waited=0
  while [ ! -s "$port_file" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "beckon-server $name did not start:" >&2
      tail -n 20 "$work_dir/$name.log" >&2
      exit 1
    fi
    waited=$((waited + 1))
    [ "$waited" -lt 300 ] || { echo "beckon-server $name wrote no port file within 15 s" >&2; exit 1; }
    sleep 0.05
  done
  local ports
  ports=$(cat "$port_file")
  NODE_URLS+=("ws://$(json_string listen "$ports")")
  NODE_ADMINS+=("$(json_string admin "$ports")")
}

stop_nodes() {
  local pid
  for pid in "${NODE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${NODE_PIDS[@]}"; do stop_pid "$pid"; done
  NODE_PIDS=()
  NODE_URLS=()
  NODE_ADMINS=()
}

cleanup_cluster() {
  stop_nodes
  [ -z "$REDIS_PID" ] || stop_pid "$REDIS_PID"
  REDIS_PID=
  cleanup
}
trap cleanup_cluster EXIT

# CPU seconds (user + system) of a process so far.
cpu_of() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}
cpu_sum() {
  local pid total=0
  for pid in "$@"; do total=$(awk -v a="$total" -v b="$(cpu_of "$pid")" 'BEGIN { print a + b }'); done
  echo "$total"
}

# measure CONFIG MODE ROUND: one run; its JSON in $out, plus the nodes' and
# Redis's CPU seconds over it.
measure() {
  local config=$1 mode=$2 round=$3
  local prefix="bench-$$-$round-$config-$mode"
  case $config in
    redis1 | redis3 | redis1-nohistory)
      local cfg="$work_dir/$prefix.toml"
      {
        [ "$config" != redis1-nohistory ] || echo 'history_per_user = 0'
        printf '[redis]\nprefix = "%s"\n' "$prefix"
      } >"$cfg"
      local n=${config#redis} i
      n=${n%%-*}
      for i in $(seq 1 "$n"); do
        start_node "$prefix-n$i" --config "$cfg" --store redis \
          --redis-url "redis://127.0.0.1:$REDIS_PORT/" --node-name "n$i"
      done
      ;;
    sqlite)
      start_node "$prefix" --store sqlite --data-dir "$work_dir/$prefix.data"
      ;;
  esac
  local flags=(--json --duration "$duration" --warmup "$warmup" --pairs "$pairs" --in-flight "$window"
    --dispatch "$dispatch")
  [ "$mode" = closed ] || flags+=(--rate "${mode#paced}")
  local urls admins
  urls=$(IFS=,; echo "${NODE_URLS[*]}")
  admins=$(IFS=,; echo "${NODE_ADMINS[*]}")
  local file="$out/$config.$mode.$round.json"
  local nodes_before redis_before=0
  nodes_before=$(cpu_sum "${NODE_PIDS[@]}")
  [ "$config" = sqlite ] || redis_before=$(cpu_of "$REDIS_PID")
  local status=0
  timeout 300 "$bench_bin" "${flags[@]}" --url "$urls" --admin "$admins" >"$file.raw" || status=$?
  local nodes_cpu redis_cpu=0
  nodes_cpu=$(awk -v a="$(cpu_sum "${NODE_PIDS[@]}")" -v b="$nodes_before" 'BEGIN { print a - b }')
  [ "$config" = sqlite ] || redis_cpu=$(awk -v a="$(cpu_of "$REDIS_PID")" -v b="$redis_before" 'BEGIN { print a - b }')
  stop_nodes
  [ "$config" = sqlite ] || redis-cli -p "$REDIS_PORT" flushall >/dev/null
  if [ "$status" -ne 0 ] || ! jq -e . "$file.raw" >/dev/null 2>&1; then
    echo "beckon-bench failed ($config $mode round $round, exit $status); server logs in $work_dir" >&2
    KEEP_LOGS=1
    exit 1
  fi
  # CPU per invitation sent (warm-up included, as the CPU counts it).
  jq --argjson nodes "$nodes_cpu" --argjson redis "$redis_cpu" \
    '. + {nodes_cpu_secs: $nodes, redis_cpu_secs: $redis,
          nodes_us_per_invitation: (1e6 * $nodes / ([.sent, 1] | max)),
          redis_us_per_invitation: (1e6 * $redis / ([.sent, 1] | max))}' "$file.raw" >"$file"
  rm -f "$file.raw"
  printf '%-7s %-10s round %d: %8.0f/s  recv p50 %6.2f ms  p99 %6.2f ms  errors %s\n' "$config" "$mode" "$round" \
    "$(jq .invitations_per_sec "$file")" "$(jq '.latency_us.send_to_received.p50 / 1000' "$file")" \
    "$(jq '.latency_us.send_to_received.p99 / 1000' "$file")" "$(jq -c .errors "$file")" >&2
}

. bench/stats-lib.sh
figure() { for f in "$out/$1".*.json; do jq "$2" "$f"; done | median; }

started=$(date +%s)
start_redis
echo "redis-server $(redis-server --version | grep -o 'v=[^ ]*') on 127.0.0.1:$REDIS_PORT; $runs rounds of: ${configs[*]} x ${modes[*]}" >&2
for round in $(seq 1 "$runs"); do
  for mode in "${modes[@]}"; do
    for config in "${configs[@]}"; do
      measure "$config" "$mode" "$round"
    done
  done
done

{
  echo "median of $runs, $pairs pairs x $window in flight, $dispatch dispatch, ${duration} s after ${warmup} s warm-up; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for mode in "${modes[@]}"; do
    printf '%-14s %9s %9s %9s %9s %9s %9s %9s %9s %9s\n' "$mode" "invit./s" "recv p50" "recv p99" "answ p50" "answ p99" \
      "bench" "nodes" "redis" "all"
    printf '%-14s %9s %9s %9s %9s %9s %9s %9s %9s %9s\n' "" "" "ms" "ms" "ms" "ms" "us/inv" "us/inv" "us/inv" "us/inv"
    for config in "${configs[@]}"; do
      printf '%-14s %9.0f %9.2f %9.2f %9.2f %9.2f %9.1f %9.1f %9.1f %9.1f   errors: %s\n' "$config" \
        "$(figure "$config.$mode" .invitations_per_sec)" \
        "$(figure "$config.$mode" '.latency_us.send_to_received.p50 / 1000')" \
        "$(figure "$config.$mode" '.latency_us.send_to_received.p99 / 1000')" \
        "$(figure "$config.$mode" '.latency_us.send_to_answer.p50 / 1000')" \
        "$(figure "$config.$mode" '.latency_us.send_to_answer.p99 / 1000')" \
        "$(figure "$config.$mode" .cpu.us_per_invitation)" \
        "$(figure "$config.$mode" .nodes_us_per_invitation)" \
        "$(figure "$config.$mode" .redis_us_per_invitation)" \
        "$(figure "$config.$mode" '.cpu.us_per_invitation + .nodes_us_per_invitation + .redis_us_per_invitation')" \
        "$(jq -c -s 'map(.errors) | add' "$out/$config.$mode".*.json)"
    done
    if [ -n "$(ls "$out"/redis1."$mode".*.json 2>/dev/null)" ] && [ -n "$(ls "$out"/redis3."$mode".*.json 2>/dev/null)" ]; then
      awk -v t1="$(figure "redis1.$mode" .invitations_per_sec)" -v t3="$(figure "redis3.$mode" .invitations_per_sec)" \
        -v p1="$(figure "redis1.$mode" .latency_us.send_to_received.p50)" \
        -v p3="$(figure "redis3.$mode" .latency_us.send_to_received.p50)" \
        -v q1="$(figure "redis1.$mode" .latency_us.send_to_received.p99)" \
        -v q3="$(figure "redis3.$mode" .latency_us.send_to_received.p99)" -v m="$mode" \
        'BEGIN { printf "%s: 3 nodes / 1 node: %.2f x the invitations/s; cross-node adds %+.2f ms at recv p50, %+.2f ms at p99\n",
                 m, t3 / t1, (p3 - p1) / 1000, (q3 - q1) / 1000 }'
    fi
  done
  echo "took $(($(date +%s) - started)) s; JSON in $out/"
} | tee "$out/summary.txt"
