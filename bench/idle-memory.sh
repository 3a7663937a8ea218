#!/usr/bin/env bash
# The server's memory per idle logged-in device (benches/README.md, "Server
# tools"). For each N (default 1000 5000 10000): a fresh release beckon-server
# (--dev, 127.0.0.1, ports from its port file), its VmRSS with no device, then
# `beckon-bench idle` logs N devices in (256 at once), waits SETTLE seconds and
# reads the VmRSS again; bytes per device = (RSS_N - RSS_0) / N logged in.
#   bash bench/idle-memory.sh                  # 1000 5000 10000
#   bash bench/idle-memory.sh 1000 5000
#   SETTLE=3 HOLD=50 bash bench/idle-memory.sh 1000   # idle across heartbeats
#   SERVER_FLAGS="--heartbeat-secs 5" bash bench/idle-memory.sh 2000
#   LARGE_FRAME=60000 bash bench/idle-memory.sh 5000  # after one large frame each
# Knobs: SETTLE (s, default 3), HOLD (s, default 2), CONCURRENCY (default 256),
# LARGE_FRAME (bytes of one request each device sends before idling, default
# 0: none), JSON=1 (one JSON object per N on stdout instead of the table),
# BUILD=0.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/server-lib.sh

settle=${SETTLE:-3}
hold=${HOLD:-2}
concurrency=${CONCURRENCY:-256}
large_frame=${LARGE_FRAME:-0}
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1000 5000 10000)
for n in "${counts[@]}"; do
  case $n in '' | *[!0-9]*) echo "not a count: $n" >&2; exit 2 ;; esac
done

build_tools
raise_open_files

# number NAME JSON: the number after "NAME": (empty if absent)
number() {
  printf '%s' "$2" | grep -o "\"$1\":-\?[0-9.e+]*" | head -n 1 | cut -d: -f2
}
object() {
  printf '%s' "$2" | grep -o "\"$1\":{[^}]*}" | head -n 1 | cut -d: -f2-
}

if [ -z "${JSON:-}" ]; then
  printf '%8s %9s %8s %9s %11s %11s %13s %11s  %s\n' devices logged_in login_s logins/s \
    "RSS_0 MiB" "RSS_N MiB" "bytes/device" "KiB/device" "failed / dropped while idle"
fi
status=0
for n in "${counts[@]}"; do
  start_server
  sleep 1
  rss0=$(rss_of "$SERVER_PID")
  out=$(timeout 900 "$bench_bin" idle --url "$SERVER_URL" --devices "$n" \
    --concurrency "$concurrency" --large-frame "$large_frame" --settle "$settle" --hold "$hold" \
    --server-pid "$SERVER_PID" --json) || status=$?
  stop_server
  if [ -z "$out" ]; then
    echo "idle run with $n devices failed (exit $status)" >&2
    continue
  fi
  if [ -n "${JSON:-}" ]; then
    printf '%s\n' "$out"
    continue
  fi
  logged=$(number logged_in "$out")
  rssn=$(number rss_logged_in "$out")
  awk -v n="$n" -v logged="$logged" -v secs="$(number login_secs "$out")" \
    -v rate="$(number logins_per_sec "$out")" -v r0="$rss0" -v rn="$rssn" \
    -v failed="$(object failures "$out")" -v dropped="$(object dropped_while_idle "$out")" \
    'BEGIN {
      per = logged > 0 ? (rn - r0) / logged : 0
      printf "%8d %9d %8.2f %9.0f %11.1f %11.1f %13.0f %11.2f  %s / %s\n",
        n, logged, secs, rate, r0 / 1048576, rn / 1048576, per, per / 1024, failed, dropped
    }'
done
exit "$status"
