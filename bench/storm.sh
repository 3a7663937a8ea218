#!/usr/bin/env bash
# A connection storm against a fresh release beckon-server (benches/README.md,
# "Server tools"): `beckon-bench storm` starts N clients at the same instant
# (default 5000), each timing its TCP connect, WebSocket handshake and welcome,
# while /healthz and /metrics are polled every 100 ms; prints the report.
#   bash bench/storm.sh                       # 5000 clients
#   bash bench/storm.sh 10000
#   SERVER_FLAGS="--max-connections 3000" bash bench/storm.sh 5000
#   SERVER_FLAGS="--listen-backlog 4096 --max-pending-logins 512" bash bench/storm.sh
# SERVER_FLAGS go to the server as they are (flags it does not know make it
# refuse to start: the script then says so). Knobs: TIMEOUT (s per client,
# default 30), HOLD (s, default 1), JSON=1 (one JSON object), BUILD=0.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/server-lib.sh

clients=${1:-5000}
case $clients in '' | *[!0-9]*) echo "not a count: $clients" >&2; exit 2 ;; esac

build_tools
raise_open_files
start_server
echo "server: $SERVER_URL (admin $SERVER_ADMIN, pid $SERVER_PID)${SERVER_FLAGS:+, flags: $SERVER_FLAGS}" >&2
status=0
timeout 600 "$bench_bin" storm --url "$SERVER_URL" --clients "$clients" \
  --admin "$SERVER_ADMIN" --server-pid "$SERVER_PID" \
  --timeout "${TIMEOUT:-30}" --hold "${HOLD:-1}" ${JSON:+--json} || status=$?
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "beckon-server exited during the storm:" >&2
  tail -n 20 "$work_dir/server.log" >&2
  SERVER_PID=
  status=1
fi
exit "$status"
