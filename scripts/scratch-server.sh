# Sourced by scripts/contract-checks.sh and bench/run.sh: starts a server binary on a database of
# its own, sets `base` to its address, and drops everything on exit.
# Usage: start_scratch_server BINARY NAME_PREFIX   (the caller exports MONCRENEAU_* first)

start_scratch_server() {
  local binary=$1 prefix=$2
  scratch_server_url=${DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/moncreneau}
  scratch_database=${prefix}_$$
  export DATABASE_URL="${scratch_server_url%/*}/$scratch_database"
  export MONCRENEAU_ADDR=127.0.0.1:0 MONCRENEAU_LOG_FORMAT=json
  scratch_log=$(mktemp)
  "$binary" serve 2>"$scratch_log" &
  scratch_pid=$!
  trap stop_scratch_server EXIT
  local address=""
  for _ in $(seq 1 100); do
    address=$(grep -o '"address":"[^"]*"' "$scratch_log" | head -n1 | cut -d'"' -f4 || true)
    [ -n "$address" ] && break
    kill -0 "$scratch_pid" 2>/dev/null || break
    sleep 0.2
  done
  if [ -z "$address" ]; then
    echo "the server did not start:" >&2
    cat "$scratch_log" >&2
    exit 1
  fi
  base="http://$address"
}

stop_scratch_server() {
  kill "$scratch_pid" 2>/dev/null || true
  wait "$scratch_pid" 2>/dev/null || true
  psql "${scratch_server_url%/*}/postgres" -qc "DROP DATABASE IF EXISTS $scratch_database WITH (FORCE)" >/dev/null 2>&1 || true
  rm -f "$scratch_log"
}
