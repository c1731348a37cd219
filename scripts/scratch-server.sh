# Sourced by scripts/contract-checks.sh and bench/run.sh: starts a server binary on a database of
# its own, sets `base` to its address, and drops everything on exit.
# Usage: start_scratch_server BINARY NAME_PREFIX   (the caller exports MONCRENEAU_* first)
# Then `start_scratch_peer BINARY [NAME=VALUE...]` starts one more process of BINARY on the same
# database, with those variables set for it alone, and sets `peer_base`; `stop_scratch_peer` ends it.

# Starts "$@" (a command line ending in `serve`) in the background, its log in file $1.
scratch_launch() {
  local log=$1
  shift
  "$@" 2>"$log" &
  scratch_launched=$!
}

# Prints the address the server of log $1 (process $2) listens on, once it says so.
scratch_address() {
  local log=$1 pid=$2 address=""
  for _ in $(seq 1 100); do
    address=$(grep -o '"address":"[^"]*"' "$log" | head -n1 | cut -d'"' -f4 || true)
    [ -n "$address" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if [ -z "$address" ]; then
    echo "the server did not start:" >&2
    cat "$log" >&2
    exit 1
  fi
  echo "http://$address"
}

start_scratch_server() {
  local binary=$1 prefix=$2
  scratch_server_url=${DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/moncreneau}
  scratch_database=${prefix}_$$
  export DATABASE_URL="${scratch_server_url%/*}/$scratch_database"
  export MONCRENEAU_ADDR=127.0.0.1:0 MONCRENEAU_LOG_FORMAT=json
  scratch_log=$(mktemp)
  scratch_peer_pid=""
  scratch_peer_log=""
  scratch_launch "$scratch_log" "$binary" serve
  scratch_pid=$scratch_launched
  trap stop_scratch_server EXIT
  base=$(scratch_address "$scratch_log" "$scratch_pid") || exit 1
}

start_scratch_peer() {
  local binary=$1
  shift
  scratch_peer_log=$(mktemp)
  scratch_launch "$scratch_peer_log" env "$@" "$binary" serve
  scratch_peer_pid=$scratch_launched
  peer_base=$(scratch_address "$scratch_peer_log" "$scratch_peer_pid") || exit 1
}

stop_scratch_peer() {
  if [ -n "${scratch_peer_pid:-}" ]; then
    kill "$scratch_peer_pid" 2>/dev/null || true
    wait "$scratch_peer_pid" 2>/dev/null || true
    rm -f "$scratch_peer_log"
    scratch_peer_pid=""
  fi
}

stop_scratch_server() {
  stop_scratch_peer
  kill "$scratch_pid" 2>/dev/null || true
  wait "$scratch_pid" 2>/dev/null || true
  psql "${scratch_server_url%/*}/postgres" -qc "DROP DATABASE IF EXISTS $scratch_database WITH (FORCE)" >/dev/null 2>&1 || true
  rm -f "$scratch_log"
}
