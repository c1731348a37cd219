#!/usr/bin/env bash
# Latency and throughput of the main reads and of booking, on this machine, with wrk.
# Usage: bash bench/run.sh [seconds per scenario, default 10]
# Needs wrk (Debian: apt-get install wrk) and the Postgres the tests use. Prints wrk's latency
# distribution per scenario. The server runs the release build on a database of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
command -v wrk >/dev/null || { echo "bench: wrk is required (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet

export RUST_LOG=warn,moncreneau::startup=info
export MONCRENEAU_RATE_LIMIT_PER_HOUR=0 MONCRENEAU_ADMIN_TOKEN=bench-operator
source scripts/scratch-server.sh
start_scratch_server target/release/moncreneau mc_bench

key=$(target/release/moncreneau admin create-org --name Bench --live-credits 1000000 |
  python3 -c 'import json,sys; print(next(k["key"] for k in json.load(sys.stdin)["apiKeys"] if k["mode"] == "live"))')
day='[{"start": "08:00", "end": "18:00"}]'
department=$(curl -sf -X POST "$base/api/v1/departments" -H "X-API-Key: $key" -H 'Content-Type: application/json' \
  -d "{\"name\": \"Bench\", \"timezone\": \"UTC\", \"slotDuration\": 30, \"capacity\": 1000, \"openingHours\": {\"monday\": $day, \"tuesday\": $day, \"wednesday\": $day, \"thursday\": $day, \"friday\": $day, \"saturday\": $day, \"sunday\": $day}}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
start=$(date -u -d tomorrow +%F)
end=$(date -u -d '+7 days' +%F)

echo "bench: $(nproc) cores, ${duration}s per scenario, server, Postgres and wrk on this machine"
echo
echo "== one client at a time: POST /api/v1/appointments (per-request latency)"
wrk -t1 -c1 -d"${duration}s" --latency -s bench/book.lua "$base" -- "$department" "$key" | sed -n '/Latency Distribution/,$p'
echo
echo "== one client at a time: GET /api/v1/departments/$department/availability (7 days)"
wrk -t1 -c1 -d"${duration}s" --latency -H "X-API-Key: $key" "$base/api/v1/departments/$department/availability?startDate=$start&endDate=$end" | sed -n '/Latency Distribution/,$p'
echo
echo "== 16 connections from here on"
echo "== POST /api/v1/appointments (one credit and one slot place per booking, event written)"
wrk -t2 -c16 -d"${duration}s" --latency -s bench/book.lua "$base" -- "$department" "$key" | sed -n '/Latency Distribution/,$p'
# The tables just grew by thousands of rows; refresh the planner's statistics now, as autovacuum
# would within a minute, so the reads below run on the plans of a steady state.
psql "$DATABASE_URL" -qc "VACUUM ANALYZE"
echo
echo "== GET /api/v1/departments/$department/availability (7 days, 20 slots a day, with the bookings above)"
wrk -t2 -c16 -d"${duration}s" --latency -H "X-API-Key: $key" "$base/api/v1/departments/$department/availability?startDate=$start&endDate=$end" | sed -n '/Latency Distribution/,$p'
echo
echo "== GET /api/v1/appointments?size=50 (sorted by start, over all the bookings above)"
wrk -t2 -c16 -d"${duration}s" --latency -H "X-API-Key: $key" "$base/api/v1/appointments?size=50" | sed -n '/Latency Distribution/,$p'
