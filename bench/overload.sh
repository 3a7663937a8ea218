#!/usr/bin/env bash
# Overload against a fresh release beckon-server with its default limits
# (benches/README.md, "Server tools"): `beckon-bench overload` runs, at once,
# 2000 connections that never log in, an invitation spammer, a client that
# never reads while it is invited, and a resume flood, while 8 ordinary pairs
# send 400 invitations/s; prints their latency, what each abuser met, the
# server's peak RSS and how /healthz and /metrics answered.
#   bash bench/overload.sh
#   DURATION=60 SILENT=5000 bash bench/overload.sh
#   SERVER_FLAGS="--max-pending-logins 512" bash bench/overload.sh
#   bash bench/overload.sh --resume-flooders 8 --rate 1000   # more beckon-bench flags
# Knobs: DURATION (s, default 20), SILENT (default 2000), PAIRS (default 8),
# RATE (default 400), SERVER_FLAGS, JSON=1 (one JSON object), BUILD=0.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/server-lib.sh

build_tools
raise_open_files
start_server
echo "server: $SERVER_URL (admin $SERVER_ADMIN, pid $SERVER_PID)${SERVER_FLAGS:+, flags: $SERVER_FLAGS}" >&2
status=0
timeout 900 "$bench_bin" overload --url "$SERVER_URL" --admin "$SERVER_ADMIN" \
  --server-pid "$SERVER_PID" --duration "${DURATION:-20}" --silent "${SILENT:-2000}" \
  --pairs "${PAIRS:-8}" --rate "${RATE:-400}" ${JSON:+--json} "$@" || status=$?
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "beckon-server exited during the run:" >&2
  tail -n 20 "$work_dir/server.log" >&2
  SERVER_PID=
  status=1
else
  # What the server logged at warning level or above, counted by message
  # (colours, times and quoted names taken out).
  echo "server log, warnings and errors by message:" >&2
  sed 's/\x1b\[[0-9;]*m//g' "$work_dir/server.log" | grep -E ' (WARN|ERROR) ' |
    grep -v 'DEVELOPMENT MODE' | sed -E "s/^[^ ]+ +//; s/'[^']*'/'.'/g; s/(peer|user)=[^ ]+/\1=./g" |
    sort | uniq -c | sort -rn | head -n 8 >&2 || true
fi
exit "$status"
