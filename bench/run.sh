#!/usr/bin/env bash
# The performance bars of the README ("Benchmark"), measured side by side in one run: the release
# server on a database of its own, the bare-SQL ceiling of a booking with pgbench, then each path
# of the table, one table of ratios and bars, and the figures past it.
# Usage: [DURATION=seconds per scenario, default 10] bash bench/run.sh
# Also RATE_LIMIT (the rate-limit row's per-hour limit), WEBHOOK_COUNT (the webhook row's
# bookings), SCALE_STEPS.
# Needs pgbench and psql (Debian: postgresql-15 and postgresql-client) and the Postgres the tests
# use (DATABASE_URL's server). The database is dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-10}
# A per-hour limit that no run of this script reaches (the default 1000 would be spent in the
# first second at these rates), so that the rate-limit row measures the cost of counting, not
# refusals.
rate_limit=${RATE_LIMIT:-10000000}
webhook_count=${WEBHOOK_COUNT:-200}
scale_steps=${SCALE_STEPS:-10 100}
for tool in pgbench psql python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done
cargo build --release --quiet --bin moncreneau --bin bench-load
load=target/release/bench-load
if [ -n "${CARGO_TARGET_DIR:-}" ]; then load=$CARGO_TARGET_DIR/release/bench-load; fi
server=${load%/bench-load}/moncreneau

export RUST_LOG=warn,moncreneau::startup=info
export MONCRENEAU_RATE_LIMIT_PER_HOUR=0 MONCRENEAU_ADMIN_TOKEN=bench-operator
export MONCRENEAU_WEBHOOK_ALLOW_PRIVATE=true
source scripts/scratch-server.sh
start_scratch_server "$server" mc_bench
results=$(mktemp -d)
trap 'stop_scratch_server; rm -rf "$results"' EXIT
sql() { psql "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 "$@"; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
log() { echo "bench: $*" >&2; }

# The organization, its live key and its two departments.
org_json=$("$server" admin create-org --name Bench --live-credits 1000000)
org=$(json '["id"]' <<<"$org_json")
key=$(python3 -c 'import json,sys; print(next(k["key"] for k in json.load(sys.stdin)["apiKeys"] if k["mode"] == "live"))' <<<"$org_json")
department() {
  curl -sf -X POST "$base/api/v1/departments" -H "X-API-Key: $key" -H 'Content-Type: application/json' -d "$1" | json '["id"]'
}
all_day='[{"start": "00:00", "end": "24:00"}]'
book_dept=$(department "{\"name\": \"Bench bookings\", \"timezone\": \"UTC\", \"slotDuration\": 30, \"capacity\": 1000, \"maxAdvanceDays\": 90,
  \"openingHours\": {\"monday\": $all_day, \"tuesday\": $all_day, \"wednesday\": $all_day, \"thursday\": $all_day, \"friday\": $all_day, \"saturday\": $all_day, \"sunday\": $all_day}}")
# Weekdays 08:00-17:00 in 15-minute slots, capacity 3: 36 slots a day, and 22 weekdays in the 31
# days from a Thursday or a Sunday, so 792 slots.
work='[{"start": "08:00", "end": "17:00"}]'
avail_dept=$(department "{\"name\": \"Bench availability\", \"timezone\": \"UTC\", \"slotDuration\": 15, \"capacity\": 3, \"maxAdvanceDays\": 90,
  \"openingHours\": {\"monday\": $work, \"tuesday\": $work, \"wednesday\": $work, \"thursday\": $work, \"friday\": $work, \"saturday\": [], \"sunday\": []}}")
for offset in 1 2 3 4 5 6 7; do
  start=$(date -u -d "+$offset days" +%F)
  case $(date -u -d "$start" +%u) in 4 | 7) break ;; esac
done
end=$(date -u -d "$start +30 days" +%F)
availability="/departments/$avail_dept/availability?startDate=$start&endDate=$end"
slots=$(curl -sf "$base/api/v1$availability" -H "X-API-Key: $key" | python3 -c 'import json,sys; print(sum(len(d["slots"]) for d in json.load(sys.stdin)["availability"]))')
# One booking through the API, whose event body is the payload of the pgbench transactions.
"$load" --base "$base" --key "$key" book --department "$book_dept" --connections 1 --seconds 0.2 >/dev/null
payload=$(sql -c "SELECT payload FROM events WHERE type = 'appointment.created' LIMIT 1")

echo "bench: $(nproc) cores ($(uptime | sed 's/.*load average/load average/')), ${duration}s per scenario; server, Postgres and load on this machine" >&2

# The ceiling: pgbench's transactions per second and per-transaction latencies (from its log).
pgbench_run() {
  local clients=$1 seconds=$2 dir attempt
  dir=$(mktemp -d)
  for attempt in 1 2 3; do
    if (cd "$dir" && pgbench -n -M prepared -f "$OLDPWD/bench/booking.sql" -c "$clients" -j "$(( clients < 2 ? 1 : 2 ))" \
        -T "$seconds" -l -D org="$org" -D dept="$book_dept" -D payload="$payload" "$DATABASE_URL" >out 2>err); then
      python3 - "$dir" <<'PY'
import glob, json, re, sys
d = sys.argv[1]
lat = sorted(int(line.split()[2]) for f in glob.glob(d + "/pgbench_log.*") for line in open(f))
tps = float(re.search(r"tps = ([0-9.]+)", open(d + "/out").read()).group(1))
pick = lambda p: lat[max(1, -(-int(p * len(lat) * 1000) // 1000)) - 1] / 1000 if lat else None
print(json.dumps({"rps": tps, "requests": len(lat), "p50": pick(0.50), "p99": pick(0.99)}))
PY
      rm -rf "$dir"
      return
    fi
    log "pgbench -c $clients failed (attempt $attempt): $(tail -n1 "$dir/err")"
    sleep 20
  done
  rm -rf "$dir"
  exit 1
}
# Each concurrency's ceiling and bookings in turn, twice, half the duration each, so that both
# meet the machine as it is then (other work on a shared machine moves either by tens of percent
# within minutes); each side's figure is the mean of its two turns.
booking_half=$(( duration / 2 > 0 ? duration / 2 : 1 ))
for c in 1 4 16 64; do
  for turn in 1 2; do
    log "pgbench ceiling @$c, turn $turn"
    pgbench_run "$c" "$booking_half" >"$results/ceiling_${c}_$turn"
    log "POST /appointments @$c, turn $turn"
    "$load" --base "$base" --key "$key" book --department "$book_dept" --connections "$c" --seconds "$booking_half" >"$results/book_${c}_$turn"
  done
done
sql -c "VACUUM ANALYZE"

log "GET /departments/$avail_dept @64 (rate limit off)"
"$load" --base "$base" --key "$key" get --path "/departments/$avail_dept" --connections 64 --seconds "$duration" >"$results/dept_off"
log "GET availability, $slots slots @64"
"$load" --base "$base" --key "$key" get --path "$availability" --connections 64 --seconds "$duration" >"$results/availability"
# Rate limiting is a setting of the process: a second one on the same database counts requests.
start_scratch_peer "$server" MONCRENEAU_RATE_LIMIT_PER_HOUR="$rate_limit" MONCRENEAU_WEBHOOK_WORKER=false
# Warmed up as the first process is by then: its pool open, its statements prepared.
"$load" --base "$peer_base" --key "$key" get --path "/departments/$avail_dept" --connections 64 --seconds 1 >/dev/null
# Off and on in turn, six times, a sixth of the duration each, in the order off-on then on-off:
# both sides meet the machine as it is (other work moves either by a tenth, up to a fifth under
# other writes, from one 2-second run to the next), and each side's figure is the mean of its
# six turns.
sixth=$(python3 -c "print($duration / 6)")
for turn in 1 2 3 4 5 6; do
  log "GET /departments/$avail_dept @64, rate limit off and on ($rate_limit/h), turn $turn"
  sides="off on"
  if [ $(( turn % 2 )) -eq 0 ]; then sides="on off"; fi
  for side in $sides; do
    if [ "$side" = off ]; then address=$base; else address=$peer_base; fi
    "$load" --base "$address" --key "$key" get --path "/departments/$avail_dept" --connections 64 --seconds "$sixth" >"$results/dept_${side}_$turn"
  done
done
stop_scratch_peer

log "webhook lag, $webhook_count bookings at 20/s"
"$load" --base "$base" --key "$key" webhook --department "$book_dept" --rate 20 --count "$webhook_count" >"$results/webhook"

# Past the table: a flash crowd on the first four slots of the availability department's first
# day (capacity 3: 12 places), 256 bookers while 32 connections read its availability.
flash_slots="${start}T08:00:00,${start}T08:15:00,${start}T08:30:00,${start}T08:45:00"
log "flash crowd"
"$load" --base "$base" --key "$key" flash --department "$avail_dept" --slots "$flash_slots" --bookers 256 --readers 32 \
  --read-path "$availability" --seconds "$duration" >"$results/flash"
flash_booked=$(sql -c "SELECT count(*) FROM appointments WHERE department_id = $avail_dept AND status <> 'CANCELLED' AND local_starts_at >= '$start 08:00' AND local_starts_at < '$start 09:00'")

# Growth: bookings @16 and availability @64 now, then with 10x and 100x the appointments.
base_count=$(sql -c "SELECT count(*) FROM appointments")
scale_run() {
  local factor=$1
  sql -c "VACUUM ANALYZE"
  sql -c "SELECT count(*) FROM appointments" >"$results/scale_count_$factor"
  log "x$factor ($(cat "$results/scale_count_$factor") appointments): POST @16, availability @64"
  "$load" --base "$base" --key "$key" book --department "$book_dept" --connections 16 --seconds "$duration" >"$results/scale_book_$factor"
  "$load" --base "$base" --key "$key" get --path "$availability" --connections 64 --seconds "$duration" >"$results/scale_avail_$factor"
}
scale_run 1
for factor in $scale_steps; do
  have=$(sql -c "SELECT count(*) FROM appointments")
  add=$(( base_count * factor - have ))
  if [ "$add" -gt 0 ]; then
    log "seeding $add appointments"
    seeded_at=$(date +%s)
    sql -v org="$org" -v book_dept="$book_dept" -v avail_dept="$avail_dept" -v add="$add" -f bench/seed.sql
    echo $(( $(date +%s) - seeded_at )) >"$results/scale_seed_$factor"
    # The seed leaves gigabytes of dirty pages; flush them now, as the next checkpoint would,
    # so that the bookings measured next do not wait behind that write-back.
    sql -c "CHECKPOINT"
  fi
  scale_run "$factor"
done

rss=$(awk '/VmRSS/ {print $2}' "/proc/$scratch_pid/status")

python3 - "$results" "$slots" "$rss" "$rate_limit" "$flash_booked" "$base_count" "$scale_steps" <<'PY'
import json, os, sys
d, slots, rss_kib, rate_limit, flash_booked, base_count = sys.argv[1:7]
steps = ["1"] + sys.argv[7].split()
r = lambda name: json.load(open(os.path.join(d, name)))
rows = []
def row(path, server, reference, ratio, bar, held):
    rows.append((path, server, reference, ratio, bar, "yes" if held else "NO"))
ms = lambda v: "-" if v is None else f"{v:,.1f} ms"
# One side of a row measured in turns: rate and p50 the means of its turns, p99 the worst turn's,
# and the answers other than 200.
def turns(name, count):
    parts = [r(f"{name}_{turn}") for turn in range(1, count + 1)]
    mean = lambda key: None if any(p[key] is None for p in parts) else sum(p[key] for p in parts) / len(parts)
    return {"rps": mean("rps"), "p50": mean("p50"),
            "p99": None if any(p["p99"] is None for p in parts) else max(p["p99"] for p in parts),
            "refused": sum(n for p in parts for s, n in p.get("statuses", {}).items() if s != "200")}
booked = {c: turns(f"book_{c}", 2) for c in (1, 4, 16, 64)}
for c in (1, 4, 16, 64):
    b, p = booked[c], turns(f"ceiling_{c}", 2)
    ratio = b["rps"] / p["rps"]
    row(f"POST /appointments @{c} vs pgbench", f"{b['rps']:,.0f}/s p50 {ms(b['p50'])} p99 {ms(b['p99'])}",
        f"{p['rps']:,.0f} tps p50 {ms(p['p50'])} p99 {ms(p['p99'])}", f"{ratio:.2f}x", ">= 1.0x", ratio >= 1.0)
b16 = booked[16]
row("POST /appointments p99 @16", ms(b16["p99"]), "", "", "< 50 ms", b16["p99"] is not None and b16["p99"] < 50)
a, g = r("availability"), r("dept_off")
ratio = a["rps"] / g["rps"]
row(f"availability 31 days ({slots} slots) vs GET /departments/{{id}} @64", f"{a['rps']:,.0f}/s p99 {ms(a['p99'])}",
    f"{g['rps']:,.0f}/s p99 {ms(g['p99'])}", f"{ratio:.2f}x", ">= 0.5x", ratio >= 0.5)
row("availability p99 @64", ms(a["p99"]), "", "", "< 50 ms", a["p99"] is not None and a["p99"] < 50)
on, off = turns("dept_on", 6), turns("dept_off", 6)
ratio = on["rps"] / off["rps"]
refused = on["refused"] + off["refused"]
row(f"rate limit on ({int(rate_limit):,}/h) vs off, GET /departments/{{id}} @64",
    f"{on['rps']:,.0f}/s p99 {ms(on['p99'])}" + (f", {refused} not 200" if refused else ""),
    f"{off['rps']:,.0f}/s p99 {ms(off['p99'])}", f"{ratio:.2f}x", ">= 0.9x", ratio >= 0.9 and refused == 0)
w = r("webhook")
lag_ok = w["missing"] == 0 and w["p50"] is not None and w["p50"] < 20 and w["p99"] < 100
row("webhook commit -> receipt, 20 bookings/s", f"p50 {ms(w['p50'])} p99 {ms(w['p99'])}",
    f"{w['received']}/{w['booked']} received", "", "p50 < 20 ms, p99 < 100 ms", lag_ok)
rss = int(rss_kib) / 1024
row("server RSS after all of it", f"{rss:.1f} MiB", "", "", "< 64 MiB", rss < 64)

head = ("path", "server", "ceiling/reference", "ratio", "bar", "held?")
widths = [max(len(str(x[i])) for x in rows + [head]) for i in range(6)]
line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
print(line(head))
print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
for x in rows:
    print(line(x))
print()
best = max((b["rps"], c) for c, b in booked.items())
print(f"bookings one organization takes: {best[0]:,.0f}/s (at {best[1]} connections)")
f = r("flash")
others = lambda part: {s: n for s, n in part["statuses"].items() if s not in ("201", "409", "200")}
print(f"flash crowd, 256 connections booking 4 slots of capacity 3 while 32 read their availability: "
      f"bookings {f['book']['statuses']} p99 {ms(f['book']['p99'])}, reads {f['read']['statuses']} p99 {ms(f['read']['p99'])}, "
      f"transport errors {f['book']['transportErrors'] + f['read']['transportErrors']}; "
      f"{flash_booked} booked in the 4 slots (at most 12); "
      + ("no error other than 409" if not others(f["book"]) and not others(f["read"]) and f['book']['transportErrors'] + f['read']['transportErrors'] == 0 and int(flash_booked) <= 12 else "ERRORS"))
print(f"growth with the appointments in the database (x1: {int(base_count):,}, the count after the runs above):")
print("| appointments | seeded in | POST @16 | POST p99 | availability @64 | availability p99 |")
print("|---|---|---|---|---|---|")
for s in steps:
    b, a = r(f"scale_book_{s}"), r(f"scale_avail_{s}")
    count = int(open(os.path.join(d, f"scale_count_{s}")).read())
    seed = os.path.join(d, f"scale_seed_{s}")
    seeded = f"{open(seed).read().strip()} s" if os.path.exists(seed) else "-"
    print(f"| x{s}: {count:,} | {seeded} | {b['rps']:,.0f}/s | {ms(b['p99'])} | {a['rps']:,.0f}/s | {ms(a['p99'])} |")
PY
