#!/usr/bin/env bash
# Benchmark of the reports: 50,000 items with 1,000,000 history events over two years on the
# demo's OPS board, written straight into the database by bench/reports_data.py (the tables the
# import fills), then `opsboard reports rebuild`, then over HTTP: the flow report for 90 days
# (p95 of 20 calls), each SVG chart, the governance report and a 10,000-trial forecast.
# Targets: flow ≤ 500 ms p95, each SVG ≤ 1 s, governance ≤ 3 s, forecast ≤ 1 s.
# BENCH_DATABASE_URL=postgres://… runs it on PostgreSQL (an empty database or schema);
# ITEMS=… EVENTS=… change the size; PROFILE=debug uses the debug build.
#
#   bash bench/reports.sh
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench bash bench/reports.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${PORT:-18083}"
ITEMS="${ITEMS:-50000}"
EVENTS="${EVENTS:-1000000}"
PROFILE="${PROFILE:-release}"

source bench/lib.sh
if [ "$PROFILE" = release ]; then cargo build --release --locked -q; else cargo build --locked -q; fi
BIN="${CARGO_TARGET_DIR:-target}/$PROFILE/opsboard"

export DATABASE_URL="${BENCH_DATABASE_URL:-$WORK/bench.db}" OPSBOARD_BIND="127.0.0.1:$PORT" RUST_LOG=warn \
    OPSBOARD_JWT_SECRET="bench-secret-bench-secret-bench-secret-!" \
    OPSBOARD_ADMIN_EMAIL=bench@example.org OPSBOARD_ADMIN_PASSWORD=bench-password-123
# The demo data with the bench admin (a first start creates them), then the server stops.
bench_start "$BIN" serve --demo
kill "$SERVER_PID" && wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=

sql() {
    case "$DATABASE_URL" in
        postgres*) psql -q -v ON_ERROR_STOP=1 -At "$DATABASE_URL" "$@" ;;
        *) sqlite3 "$DATABASE_URL" "$@" ;;
    esac
}
query() { case "$DATABASE_URL" in postgres*) sql -c "$1" ;; *) sql "$1" ;; esac; }
BOARD="$(query "SELECT id FROM boards WHERE key = 'OPS'")"
COLUMNS="$(query "SELECT id FROM board_columns WHERE board_id = $BOARD ORDER BY position" | paste -sd, -)"
ADMIN="$(query "SELECT id FROM users WHERE email = 'bench@example.org'")"
echo "data: $ITEMS items, $EVENTS events on OPS (columns $COLUMNS)"
start=$(date +%s.%N)
python3 bench/reports_data.py "$BOARD" "$COLUMNS" "$ADMIN" "$ITEMS" "$EVENTS" > "$WORK/data.sql"
case "$DATABASE_URL" in
    postgres*) sql -f "$WORK/data.sql" >/dev/null ;;
    *) sql < "$WORK/data.sql" ;;
esac
printf 'loaded in %.1f s: %s events\n' "$(echo "$(date +%s.%N) - $start" | bc)" \
    "$(query "SELECT count(*) FROM events WHERE entity_type = 'item'")"
"$BIN" reports rebuild

bench_start "$BIN" serve
TOKEN="$(bench_token bench@example.org bench-password-123)"
TO="$(date +%F)"
FROM="$(date -d "$TO - 89 days" +%F)"
time_of() { # seconds of one authenticated request: METHOD PATH [BODY]
    if [ $# -gt 2 ]; then
        curl -fs -o /dev/null -w '%{time_total}' -X "$1" "$BASE$2" -H "Authorization: Bearer $TOKEN" \
            -H 'Content-Type: application/json' -d "$3"
    else
        curl -fs -o /dev/null -w '%{time_total}' "$BASE$2" -H "Authorization: Bearer $TOKEN"
    fi
}
times=()
for _ in $(seq 1 20); do times+=("$(time_of GET "/api/v1/reports/flow?board=OPS&from=$FROM&to=$TO")"); done
printf 'flow JSON, 90 days: p95 %s s (20 calls; target 0.5 s)\n' \
    "$(printf '%s\n' "${times[@]}" | sort -n | sed -n 19p)"
for chart in cfd cycle-time throughput aging; do
    printf '%s.svg: %s s (target 1 s)\n' "$chart" "$(time_of GET "/api/v1/reports/flow/$chart.svg?board=OPS&from=$FROM&to=$TO")"
done
printf 'sla.svg: %s s (target 1 s)\n' "$(time_of GET "/api/v1/reports/sla.svg")"
printf 'governance (html), %s: %s s (target 3 s)\n' "$(date +%Y-%m)" \
    "$(time_of GET "/api/v1/reports/governance?month=$(date +%Y-%m)&format=html")"
printf 'forecast, 10,000 trials: %s s (target 1 s)\n' \
    "$(time_of POST /api/v1/forecasts '{"board": "OPS", "mode": "when", "items": 100, "seed": 1}')"
echo "server memory: $(bench_rss peak)"
