#!/usr/bin/env bash
# Benchmark of the kanban core on the embedded default (SQLite) with the demo data: how fast
# items are created over HTTP, then the board view of the OPS board with about 5,000 cards
# over the demo's online services, and a single-item GET. Load comes from wrk on loopback only.
# BENCH_DATABASE_URL=postgres://… runs it on PostgreSQL (an empty database or schema).
#
#   bash bench/board.sh                 # create for 6 s, then view for 10 s
#   CREATE_FOR=10s VIEW_FOR=30s bash bench/board.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CREATE_FOR="${CREATE_FOR:-6s}"
VIEW_FOR="${VIEW_FOR:-10s}"
PORT="${PORT:-18082}"

source bench/lib.sh
bench_need_wrk
cargo build --release --locked -q

export DATABASE_URL="${BENCH_DATABASE_URL:-$WORK/bench.db}" OPSBOARD_BIND="127.0.0.1:$PORT" RUST_LOG=warn \
    OPSBOARD_JWT_SECRET="bench-secret-bench-secret-bench-secret-!" \
    OPSBOARD_ADMIN_EMAIL=bench@example.org OPSBOARD_ADMIN_PASSWORD=bench-password-123
bench_start "${CARGO_TARGET_DIR:-target}/release/opsboard" serve --demo
TOKEN="$(bench_token bench@example.org bench-password-123)"
KEYS="$(curl -fs "$BASE/api/v1/services?limit=500" -H "Authorization: Bearer $TOKEN" \
    | python3 -c 'import json,sys; print(",".join(chr(34)+s["key"]+chr(34) for s in json.load(sys.stdin)["items"]))')"
cat > "$WORK/create.lua" <<LUA
local services = {$KEYS}
local i = 0
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
request = function()
    i = i + 1
    local body = string.format('{"board":"OPS","type":"task","title":"Bench %d","service":"%s"}', i, services[(i % #services) + 1])
    return wrk.format("POST", "/api/v1/items", nil, body)
end
LUA
view_cards() {
    curl -fs "$BASE/api/v1/boards/OPS/view" -H "Authorization: Bearer $TOKEN" \
        | python3 -c 'import json,sys; v=json.load(sys.stdin); print(sum(c["count"] for c in v["columns"]))'
}
echo "machine: $(nproc) cores; $(date -u +%FT%TZ)"
echo "services: $(tr ',' '\n' <<<"$KEYS" | wc -l); cards on OPS before: $(view_cards)"
before="$(view_cards)"
out="$(wrk -t2 -c8 -d"$CREATE_FOR" -s "$WORK/create.lua" --latency "$BASE")"
after="$(view_cards)"
seconds="${CREATE_FOR%s}"
echo "item creation over HTTP, 8 connections: $(( (after - before) / seconds )) items/s" \
    "(p50 $(awk '$1 == "50%" {print $2}' <<<"$out"), p99 $(awk '$1 == "99%" {print $2}' <<<"$out"), non-2xx $(awk '/Non-2xx/ {print $NF}' <<<"$out"))"
echo "cards on OPS now: $after"
for connections in 1 16; do
    out="$(wrk -t1 -c"$connections" -d"$VIEW_FOR" -H "Authorization: Bearer $TOKEN" --latency "$BASE/api/v1/boards/OPS/view")"
    echo "board view, $connections connection(s): $(awk '/Requests\/sec/ {print $2}' <<<"$out") req/s," \
        "p50 $(awk '$1 == "50%" {print $2}' <<<"$out"), p99 $(awk '$1 == "99%" {print $2}' <<<"$out")," \
        "$(curl -fs -o /dev/null -w '%{size_download}' "$BASE/api/v1/boards/OPS/view" -H "Authorization: Bearer $TOKEN") bytes"
done
out="$(wrk -t2 -c16 -d"$VIEW_FOR" -H "Authorization: Bearer $TOKEN" --latency "$BASE/api/v1/items/OPS-100")"
echo "GET /api/v1/items/OPS-100, 16 connections: $(awk '/Requests\/sec/ {print $2}' <<<"$out") req/s," \
    "p50 $(awk '$1 == "50%" {print $2}' <<<"$out"), p99 $(awk '$1 == "99%" {print $2}' <<<"$out")"
out="$(wrk -t2 -c16 -d"$VIEW_FOR" --latency "$BASE/health")"
echo "GET /health, 16 connections: $(awk '/Requests\/sec/ {print $2}' <<<"$out") req/s"
echo "RSS after load: $(bench_rss)"
