#!/usr/bin/env bash
# Three beckon-server nodes on one Redis, on this machine, in the foreground:
# Ctrl-C (or SIGTERM) stops them all. For trying a deployment out and for
# tests; deploy/compose.yaml and deploy/systemd/ are for real ones.
#
#   bash deploy/three-nodes.sh            # --dev: any token is accepted
#   SECRET_FILE=secret bash deploy/three-nodes.sh
#   bash deploy/three-nodes.sh --messages-per-sec 100000   # flags for every node
#
# Clients:  ws://127.0.0.1:7001, ws://127.0.0.1:7002, ws://127.0.0.1:7003
# Admin:    127.0.0.1:7101..7103 (/metrics, /healthz, /users/USER/devices)
# Redis:    its own redis-server on 127.0.0.1:7000 (AOF, appendfsync everysec),
#           or REDIS_URL=redis://HOST:PORT/ to use one that runs already.
#
# Knobs: PORT_BASE (7000: Redis on it, nodes on +1..+3, admin on +101..+103),
# DATA_DIR (Redis's files and the logs; default a temporary directory removed
# at exit), PREFIX (the Redis key prefix, "beckon"), SECRET_FILE, REDIS_URL,
# BECKON_SERVER (the binary; default target/release/beckon-server, built if
# missing), BUILD=1 (build even if present).
set -euo pipefail
cd "$(dirname "$0")/.."

base=${PORT_BASE:-7000}
case $base in '' | *[!0-9]*) echo "PORT_BASE: '$base' is not a port number" >&2; exit 2 ;; esac
[ "$base" -ge 1 ] && [ "$base" -le 65400 ] || { echo "PORT_BASE: $base is outside 1..65400" >&2; exit 2; }
prefix=${PREFIX:-beckon}
server_bin=${BECKON_SERVER:-target/release/beckon-server}

if [ ! -x "$server_bin" ] || [ "${BUILD:-0}" = 1 ]; then
  echo "== cargo build --release -p beckon-server"
  cargo build --release -p beckon-server
fi

if [ -n "${DATA_DIR:-}" ]; then
  data_dir=$DATA_DIR
  mkdir -p "$data_dir"
  keep=1
else
  data_dir=$(mktemp -d "${TMPDIR:-/tmp}/beckon-three-nodes.XXXXXX")
  keep=
fi

redis_pid=
node_pids=()
stopping=

# stop PID NAME: SIGTERM, then SIGKILL after 15 s.
stop() {
  local pid=$1 name=$2 waited=0
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 150 ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$name (pid $pid) did not stop within 15 s: killed" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

stop_all() {
  [ -z "$stopping" ] || return 0
  stopping=1
  local i
  # The nodes first (they write to Redis until they stop), then Redis.
  for i in "${!node_pids[@]}"; do kill -TERM "${node_pids[$i]}" 2>/dev/null || true; done
  for i in "${!node_pids[@]}"; do stop "${node_pids[$i]}" "n$((i + 1))"; done
  [ -z "$redis_pid" ] || stop "$redis_pid" redis-server
  if [ -z "$redis_pid" ] && [ "${#node_pids[@]}" -eq 0 ]; then
    [ -n "$keep" ] || rm -rf "$data_dir"
  elif [ -n "$keep" ]; then
    echo "stopped; logs and Redis's files in $data_dir"
  else
    rm -rf "$data_dir"
    echo "stopped"
  fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# wait_for NAME PID LOG CHECK...: until CHECK succeeds (10 s at most).
wait_for() {
  local name=$1 pid=$2 log=$3 waited=0
  shift 3
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$name did not start:" >&2
      tail -n 20 "$log" >&2
      exit 1
    fi
    waited=$((waited + 1))
    if [ "$waited" -gt 100 ]; then
      echo "$name did not answer within 10 s (see $log)" >&2
      exit 1
    fi
    sleep 0.1
  done
}

# healthy PORT: the admin address answers /healthz with 200.
healthy() {
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  local status
  read -r _ status _ <&3 || true
  exec 3<&-
  [ "$status" = 200 ]
}

# Refuse to start beside another deployment on the same ports: its checks
# would answer for ours (and a node under the same name on the same Redis
# would take that one's lease).
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=("$((base + 1))" "$((base + 2))" "$((base + 3))" "$((base + 101))" "$((base + 102))" "$((base + 103))")
[ -n "${REDIS_URL:-}" ] || ports=("$base" "${ports[@]}")
for port in "${ports[@]}"; do
  if in_use "$port"; then
    echo "127.0.0.1:$port is in use (another three-nodes.sh?); set PORT_BASE" >&2
    exit 1
  fi
done

redis_url=${REDIS_URL:-}
if [ -z "$redis_url" ]; then
  command -v redis-server >/dev/null || {
    echo "redis-server not found (scripts/install-redis.sh installs it), or set REDIS_URL" >&2
    exit 1
  }
  # Each process in a session of its own: Ctrl-C reaches this script
  # alone, which stops the nodes first and Redis last.
  setsid redis-server --bind 127.0.0.1 --port "$base" --dir "$data_dir" \
    --appendonly yes --appendfsync everysec --save "" \
    --logfile "$data_dir/redis.log" </dev/null >/dev/null 2>&1 &
  redis_pid=$!
  wait_for redis-server "$redis_pid" "$data_dir/redis.log" redis-cli -p "$base" ping
  redis_url="redis://127.0.0.1:$base/"
fi

printf '[redis]\nprefix = "%s"\n' "$prefix" >"$data_dir/beckon.toml"
auth=(--dev)
[ -z "${SECRET_FILE:-}" ] || auth=(--secret-file "$SECRET_FILE")

for i in 1 2 3; do
  log="$data_dir/n$i.log"
  setsid "$server_bin" serve "${auth[@]}" --config "$data_dir/beckon.toml" \
    --listen "127.0.0.1:$((base + i))" --admin "127.0.0.1:$((base + 100 + i))" \
    --store redis --redis-url "$redis_url" --node-name "n$i" "$@" \
    </dev/null >>"$log" 2>&1 &
  node_pids+=("$!")
  wait_for "node n$i" "$!" "$log" healthy "$((base + 100 + i))"
done

echo "3 nodes on $redis_url (prefix \"$prefix\"):"
for i in 1 2 3; do
  echo "  n$i  ws://127.0.0.1:$((base + i))   admin 127.0.0.1:$((base + 100 + i))   log $data_dir/n$i.log"
done
[ "${auth[0]}" != --dev ] || echo "  --dev: any token is accepted; set SECRET_FILE for real tokens"
echo "Ctrl-C stops them all."

# Until a signal, or until one of them stops by itself.
while :; do
  for i in "${!node_pids[@]}"; do
    if ! kill -0 "${node_pids[$i]}" 2>/dev/null; then
      echo "n$((i + 1)) (pid ${node_pids[$i]}) stopped by itself; stopping the others:" >&2
      tail -n 10 "$data_dir/n$((i + 1)).log" >&2
      exit 1
    fi
  done
  if [ -n "$redis_pid" ] && ! kill -0 "$redis_pid" 2>/dev/null; then
    echo "redis-server (pid $redis_pid) stopped by itself; stopping the nodes" >&2
    exit 1
  fi
  sleep 1
done
