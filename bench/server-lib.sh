# Sourced by bench/idle-memory.sh, bench/storm.sh and bench/overload.sh: start
# a release beckon-server on 127.0.0.1 (ports chosen by the kernel, read back
# from its --port-file), and stop it by its PID when the script ends.
#
#   start_server [FLAGS...]   # sets SERVER_PID, SERVER_URL, SERVER_ADMIN
#   stop_server               # SIGTERM, then SIGKILL after 15 s
#   stop_pid PID [NAME]       # the same for any process this script started
#   rss_of PID                # VmRSS in bytes
#
# SERVER_FLAGS (environment) is added to every server started, e.g.
# SERVER_FLAGS="--max-connections 3000". BUILD=0 skips the cargo build.
# SERVER_BIN runs another server binary (an older build, for before/after).

server_bin=${SERVER_BIN:-target/release/beckon-server}
bench_bin=target/release/beckon-bench
work_dir=$(mktemp -d "${TMPDIR:-/tmp}/beckon-bench.XXXXXX")
SERVER_PID=
SERVER_URL=
SERVER_ADMIN=

build_tools() {
  if [ "${BUILD:-1}" != 0 ]; then
    timeout 3000 cargo build -q --release -p beckon-bench -p beckon-server
  fi
  [ -x "$server_bin" ] && [ -x "$bench_bin" ] || {
    echo "missing $server_bin or $bench_bin" >&2
    exit 1
  }
}

# Every tool needs a socket per connection, and so does the server: as many
# open files as this shell may have (20,000 here).
raise_open_files() {
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

# The "key":"value" of a one-line JSON object (the port file).
json_string() {
  printf '%s' "$2" | grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | cut -d'"' -f4
}

start_server() {
  local port_file="$work_dir/ports.json"
  rm -f "$port_file"
  # shellcheck disable=SC2086 # SERVER_FLAGS is a list of flags
  "$server_bin" serve --dev --listen 127.0.0.1:0 --admin 127.0.0.1:0 \
    --port-file "$port_file" "$@" ${SERVER_FLAGS:-} \
    </dev/null >>"$work_dir/server.log" 2>&1 &
  SERVER_PID=$!
  local waited=0
  while [ ! -s "$port_file" ]; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "beckon-server did not start:" >&2
      tail -n 20 "$work_dir/server.log" >&2
      SERVER_PID=
      exit 1
    fi
    waited=$((waited + 1))
    if [ "$waited" -gt 200 ]; then
      echo "beckon-server wrote no port file within 10 s" >&2
      stop_server
      exit 1
    fi
    sleep 0.05
  done
  local ports
  ports=$(cat "$port_file")
  SERVER_URL="ws://$(json_string listen "$ports")"
  SERVER_ADMIN=$(json_string admin "$ports")
}

# stop_pid PID [NAME]: SIGTERM, then SIGKILL after 15 s.
stop_pid() {
  local pid=$1 name=${2:-process} waited=0
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 150 ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$name $pid did not stop within 15 s of SIGTERM: killed" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  stop_pid "$SERVER_PID" beckon-server
  SERVER_PID=
}

rss_of() {
  awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status"
}

cleanup() {
  stop_server
  if [ -n "${KEEP_LOGS:-}" ]; then
    echo "server log kept in $work_dir/server.log" >&2
  else
    rm -rf "$work_dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
