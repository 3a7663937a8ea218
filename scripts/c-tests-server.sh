#!/usr/bin/env bash
# The C test programs of the C ABI (tests/c/) against a real beckon-server:
# builds beckon-server (debug: these runs test behaviour, not speed, and a
# release build of the server alone takes minutes on a small machine) and
# libbeckon (release, test-hooks), builds the programs
# that exercise client behaviour the way scripts/c-tests.sh does (plain and
# ASan+UBSan), then for each program and mode (plain, asan, valgrind) starts a
# fresh `beckon-server serve --dev` on 127.0.0.1 with an ephemeral port, runs the
# program with BECKON_TEST_SERVER_URL=ws://127.0.0.1:PORT, and stops the server
# (SIGTERM, then SIGKILL). A fresh server per run: no run sees another's users
# or invitations (the programs also suffix their user ids per run).
#
# Checks that only make sense on memory:// print "SKIP ...: memory:// only" in
# the program's log (counted on its last line). One PASS/FAIL line per program
# and mode; a run also fails if its server did not stop cleanly or reported a
# panic. The last line is "N passed, M failed"; the exit status is non-zero if
# anything failed.
#
# Logs: build/c-tests-server/<program>.<mode>.log, and the server's own
# <program>.<mode>.server.log (the tails are printed on failure).
# Knobs: C_TESTS_ONLY="test_flow test_threads" runs a subset; C_TESTS_MODES="plain
# asan valgrind" picks modes; C_TESTS_CARGO=0 skips the cargo builds and reuses
# the server and library that the last run copied into build/c-tests-server/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=build/c-tests-server
mkdir -p "$out/lib" "$out/bin"

if [ "${C_TESTS_CARGO:-1}" = 0 ] && [ -x "$out/bin/beckon-server" ] && [ -f "$out/lib/libbeckon.so" ]; then
  echo "== C_TESTS_CARGO=0: the server and library copied by the last run"
else
  echo "== cargo build -p beckon-server"
  cargo build --locked -p beckon-server
  echo "== cargo build --release --features test-hooks"
  cargo build --locked --release --features test-hooks
  # Private copies: another build in this checkout cannot swap them mid-run.
  cp -f target/debug/beckon-server "$out/bin/beckon-server"
  cp -f target/release/libbeckon.so "$out/lib/libbeckon.so"
fi
server_bin=$root/$out/bin/beckon-server

programs=(test_flow test_free_in_flight test_reentrancy test_threads test_history)
if [ -n "${C_TESTS_ONLY:-}" ]; then
  read -r -a programs <<<"$C_TESTS_ONLY"
fi
read -r -a modes <<<"${C_TESTS_MODES:-plain asan valgrind}"

common=(-Iinclude -DBECKON_TEST_HOOKS -g -pthread)
cflags=(-std=c11 -Wall -Wextra -Werror "${common[@]}")
link=(-L"$out/lib" -lbeckon -Wl,-rpath,"$root/$out/lib")
sanitize=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
# The programs send up to 1,000 frames at once on one connection (free in
# flight, threads): well over the default rate limit and open-invitation quota,
# which are not under test.
server_flags=(--dev --listen 127.0.0.1:0 --messages-per-sec 1000000 --messages-burst 1000000
  --max-open-invitations 100000)

# shellcheck source=lib/c-programs.sh
source scripts/lib/c-programs.sh

# ---- one server per run ---------------------------------------------------------

server_pid=
server_port=
stop_server() {
  local pid=$server_pid
  server_pid=
  [ -n "$pid" ] || return 0
  local rc=0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    # graceful shutdown gives clients up to 10 s; allow a little more
    local i
    for ((i = 0; i < 150; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "beckon-server did not stop within 15 s of SIGTERM: killed" >&2
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      return 2
    fi
  fi
  wait "$pid" 2>/dev/null || rc=$?
  return "$rc"
}
trap 'stop_server || true' EXIT
trap 'stop_server || true; exit 130' INT TERM

# Starts a fresh server logging to $1; sets server_pid and server_port. Fails
# (returns 1) if it exits or writes no port file within 20 s.
start_server() {
  local log=$1
  local ports=$out/ports.json
  rm -f "$ports" "$out/ports.partial"
  # A fresh server: its store (SQLite, the default) starts empty.
  rm -rf "$out/data"
  NO_COLOR=1 "$server_bin" serve "${server_flags[@]}" --data-dir "$root/$out/data" \
    --port-file "$root/$ports" </dev/null >"$log" 2>&1 &
  server_pid=$!
  server_port=
  local i
  for ((i = 0; i < 200; i++)); do
    if [ -s "$ports" ]; then
      server_port=$(sed -n 's/.*"listen":"[^"]*:\([0-9][0-9]*\)".*/\1/p' "$ports")
      [ -n "$server_port" ] && return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "beckon-server wrote no port file within 20 s" >>"$log"
  stop_server || true
  return 1
}

# Runs "$@" against a fresh server with a time limit; one PASS/FAIL under $1.
run() {
  local label=$1 log=$2 limit=$3
  shift 3
  local server_log=${log%.log}.server.log
  if ! start_server "$server_log"; then
    fail "$label (beckon-server did not start, log $server_log)"
    show_tail "$server_log" 10
    return
  fi
  local start=$SECONDS rc=0 stop_rc=0
  timeout --kill-after=10 "$limit" env BECKON_TEST_SERVER_URL="ws://127.0.0.1:$server_port" "$@" >"$log" 2>&1 ||
    rc=$?
  local took=$((SECONDS - start))
  stop_server 2>>"$server_log" || stop_rc=$?
  local why=
  if [ "$rc" -ne 0 ]; then
    why=$(exit_reason "$rc" "$limit")
  elif [ "$stop_rc" -ne 0 ]; then
    why="the server did not stop cleanly (status $stop_rc)"
  elif grep -q 'panicked' "$server_log"; then
    why="the server panicked"
  fi
  local skips
  skips=$(grep -c '^SKIP ' "$log" || true)
  if [ -z "$why" ]; then
    pass "$label (${took}s, $skips memory-only checks skipped)"
  else
    fail "$label ($why, log $log)"
    show_tail "$log"
    echo "    server log ($server_log):"
    tail -n 8 "$server_log" | sed 's/^/    | /'
  fi
}

echo
echo "== build"
build_programs "${programs[@]}"

run_modes "run against beckon-server" 180 300 600 "${modes[@]}"
summary
