#!/usr/bin/env bash
# The performance benchmark (issue "ten times the peer"): on SQLite and on PostgreSQL in one
# run, with wrk on loopback, each figure printed beside its target and its ratio to /health
# measured in the same run on the same server.
#
# Per engine, on a fresh database with the demo data:
# - resident memory idle with the demo;
# - GET /health (the ceiling: no database, no authentication), 2 threads, 8 connections;
# - boards of 1,000, 3,000 and 5,000 tasks over five columns, filled through the upsert by
#   reference (bench/fill_board.py);
# - the board view of the 1,000-card board (2 threads, 8 connections: the peer comparison,
#   Kanboard 1.2.53 read 54 req/s with p99 322 ms on this machine) and of the 5,000-card board
#   (1 connection: the latency of one user); at the end, the 1,000-card view and the 64-view
#   peak again with no views kept (boards.view_cache_mb = 0), each view built afresh;
# - an authenticated GET /items/{key} of a task and of an incident, and the statements each
#   sends to PostgreSQL (log_statement on a second server over the same schema, when the
#   server log is readable);
# - item creation over HTTP with 8 connections (with the changes feed's bookkeeping);
# - peak resident memory under 64 concurrent views of the 3,000-card board.
#
#   bash bench/board.sh                            # this tree's release binary, 10 s each
#   FOR=20s ENGINES=sqlite bash bench/board.sh
#   BIN=/path/to/other/opsboard bash bench/board.sh  # the same run for another build
# The server runs as the Dockerfile deploys it, with MIMALLOC_PURGE_DELAY=0 and
# MIMALLOC_ARENA_EAGER_COMMIT=0 (set MIMALLOC_PURGE_DELAY=10 MIMALLOC_ARENA_EAGER_COMMIT=2 for
# the allocator's defaults).
# PostgreSQL: BENCH_PG_URL (default the local server's database `test`); each engine run
# gets a fresh schema that is dropped afterwards. The run says whether the connections are
# encrypted: libpq's default `sslmode=prefer` uses TLS even on loopback when the server offers
# it (Debian's does), which costs every statement a little; add `?sslmode=disable`, or reach
# the server over its Unix socket, to measure without.
set -euo pipefail
cd "$(dirname "$0")/.."

FOR="${FOR:-10s}"
PORT="${PORT:-18082}"
ENGINES="${ENGINES:-sqlite postgres}"
BENCH_PG_URL="${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
PG_LOG="${PG_LOG:-$(ls /var/log/postgresql/postgresql-*-main.log 2>/dev/null | head -1)}"

source bench/lib.sh
bench_need_wrk
if [ -z "${BIN:-}" ]; then
    cargo build --release --locked -q
    BIN="${CARGO_TARGET_DIR:-target}/release/opsboard"
fi

export OPSBOARD_BIND="127.0.0.1:$PORT" RUST_LOG=warn \
    OPSBOARD_JWT_SECRET="bench-secret-bench-secret-bench-secret-!" \
    OPSBOARD_ADMIN_EMAIL=bench@example.org OPSBOARD_ADMIN_PASSWORD=bench-password-123

SCHEMA=
drop_schema() {
    [ -n "$SCHEMA" ] && psql -q "$BENCH_PG_URL" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1
    SCHEMA=
}
stop_server() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
}
trap 'stop_server; drop_schema; bench_cleanup' EXIT

pg_url() {
    local sep='?'
    [[ "$BENCH_PG_URL" == *\?* ]] && sep='&'
    echo "${BENCH_PG_URL}${sep}options=-csearch_path%3D$SCHEMA$1"
}

# Starts the binary on a fresh database of engine $1 with the demo data; sets TOKEN.
start_fresh() {
    stop_server
    drop_schema
    if [ "$1" = sqlite ]; then
        rm -f "$WORK"/bench.db*
        export DATABASE_URL="$WORK/bench.db"
    else
        SCHEMA="bench_$$_$RANDOM"
        psql -q "$BENCH_PG_URL" -c "CREATE SCHEMA $SCHEMA" >/dev/null
        DATABASE_URL="$(pg_url '')"
        export DATABASE_URL
    fi
    MIMALLOC_PURGE_DELAY="${MIMALLOC_PURGE_DELAY-0}" \
        MIMALLOC_ARENA_EAGER_COMMIT="${MIMALLOC_ARENA_EAGER_COMMIT-0}" bench_start "$BIN" serve --demo
    TOKEN="$(bench_token bench@example.org bench-password-123)"
}

kib() { awk '{print $1}' <<<"$1"; }
mb() { awk -v k="$1" 'BEGIN {printf "%.1f MB", k / 1024}'; }
rps() { awk '/Requests\/sec/ {print $2}' <<<"$1"; }
pct() { awk -v p="$1%" '$1 == p {print $2}' <<<"$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f %%", 100 * a / b}'; }
# The value of wrk's latency string $1 in milliseconds.
ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.2f", v * 1000 }
        else print v }'
}
# "ok" or "MISSED" for `$1 $2 $3` (a comparison awk understands, such as `12.5 < 20`).
verdict() { awk -v a="$1" -v b="$3" "BEGIN { print (a $2 b) ? \"ok\" : \"MISSED\" }"; }

key_of() {
    curl -fs "$BASE/api/v1/items?$1&limit=1" -H "Authorization: Bearer $TOKEN" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["key"])'
}

# The statements in the server log so far, but the webhook worker's (it looks for due
# deliveries once a second, and that look fell into the window of a GET now and then; a GET
# never reads the deliveries) and the commit watch's `SELECT 1` (twice a second, on its own
# connection, to notice a dead one).
logged_statements() {
    grep -E 'LOG:  (statement|execute)' "$PG_LOG" | grep -v '"webhook_deliveries"' \
        | grep -vcE 'statement: SELECT 1$' || true
}

# Statements the running server's schema sees for one GET of each path after warm-up GETs,
# from a second server with log_statement=all and the settings of the variables in $1 (such
# as OPSBOARD__DATABASE__ITEM_CACHE_MB=0); empty when the log is not readable.
statements_per_get() {
    local settings="$1"
    shift
    [ -r "$PG_LOG" ] || return 0
    local saved_pid="$SERVER_PID" saved_url="$DATABASE_URL" saved_bind="$OPSBOARD_BIND" saved_base="$BASE"
    PORT_SAVED="$PORT"
    PORT=$((PORT + 1))
    export OPSBOARD_BIND="127.0.0.1:$PORT" DATABASE_URL
    DATABASE_URL="$(pg_url '%20-clog_statement%3Dall')"
    env $settings "$BIN" serve > "$WORK/server-log.log" 2>&1 &
    local pid=$!
    BASE="http://127.0.0.1:$PORT"
    for _ in $(seq 1 100); do curl -fs "$BASE/health" >/dev/null 2>&1 && break; sleep 0.1; done
    local token
    token="$(bench_token bench@example.org bench-password-123)"
    local out=""
    for path in "$@"; do
        # Two warm-up reads: the first wakes the commit watch if it idles, the second is
        # kept where caches keep.
        for _ in 1 2; do
            curl -fs -o /dev/null "$BASE$path" -H "Authorization: Bearer $token"
            sleep 0.2
        done
        local before after
        before="$(logged_statements)"
        curl -fs -o /dev/null "$BASE$path" -H "Authorization: Bearer $token"
        sleep 0.2
        after="$(logged_statements)"
        out="$out $((after - before))"
    done
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    PORT="$PORT_SAVED" BASE="$saved_base" SERVER_PID="$saved_pid" DATABASE_URL="$saved_url" OPSBOARD_BIND="$saved_bind"
    export DATABASE_URL OPSBOARD_BIND
    echo "$out"
}

# 64 concurrent views of the 3,000-card board for $FOR, wrk's output in $WORK/mem.out; sets
# peak to the server's highest resident memory meanwhile (KiB).
views_of_3k_with_peak() {
    peak=0
    wrk -t2 -c64 -d"$FOR" -H "Authorization: Bearer $TOKEN" --latency "$BASE/api/v1/boards/B3K/view" > "$WORK/mem.out" &
    local wrk_pid=$!
    while kill -0 "$wrk_pid" 2>/dev/null; do
        now="$(kib "$(bench_rss)")"
        [ "$now" -gt "$peak" ] && peak="$now"
        sleep 0.1
    done
}

# GET /items/{key} of each key after $1 (a label) with 8 connections, against the target share
# $share of /health.
get_items() {
    local label="$1" key out r
    shift
    for key in "$@"; do
        out="$(wrk -t2 -c8 -d"$FOR" -H "Authorization: Bearer $TOKEN" --latency "$BASE/api/v1/items/$key")"
        r="$(rps "$out")"
        echo "${label}GET /items/$key, 8 conns: $r req/s ($(ratio "$r" "$health") of /health), p99 $(ms "$(pct 99 "$out")") ms;" \
            "target ≥ 1/$share of /health: $(verdict "$r" '>=' "$(awk -v h="$health" -v s=$share 'BEGIN {print h / s}')")"
    done
}

cat > "$WORK/create.lua" <<'LUA'
local i = 0
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
request = function()
    i = i + 1
    local body = string.format('{"board":"NEW","type":"task","title":"Bench %d","labels":["bench"]}', i)
    return wrk.format("POST", "/api/v1/items", nil, body)
end
LUA

echo "machine: $(nproc) cores; $(date -u +%FT%TZ); binary $BIN ($(git rev-parse --short HEAD) tree)"
for engine in $ENGINES; do
    echo
    if [ "$engine" = postgres ]; then
        tls="$(psql -Atq "$BENCH_PG_URL" -c 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()' 2>/dev/null || true)"
        echo "== $engine (connections $([ "$tls" = t ] && echo 'over TLS' || echo 'unencrypted'))"
    else
        echo "== $engine"
    fi
    start_fresh "$engine"
    sleep 2
    idle="$(kib "$(bench_rss)")"
    echo "memory idle with the demo:            $(mb "$idle")   target < 50 MB: $(verdict "$idle" '<' 51200)"

    out="$(wrk -t2 -c8 -d"$FOR" --latency "$BASE/health")"
    health="$(rps "$out")"
    echo "GET /health, 8 connections:           $health req/s (the ceiling of this run)"

    started=$(date +%s.%N)
    python3 bench/fill_board.py "$BASE" "$TOKEN" B1K 1000
    python3 bench/fill_board.py "$BASE" "$TOKEN" B3K 3000
    python3 bench/fill_board.py "$BASE" "$TOKEN" B5K 5000
    echo "boards of 1,000, 3,000, 5,000 tasks:  filled in $(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}') s"

    out="$(wrk -t2 -c8 -d"$FOR" -H "Authorization: Bearer $TOKEN" --latency "$BASE/api/v1/boards/B1K/view")"
    r="$(rps "$out")"
    p99="$(ms "$(pct 99 "$out")")"
    echo "board view, 1,000 cards, 8 conns:     $r req/s ($(ratio "$r" "$health") of /health), p99 $p99 ms, views kept by ETag;" \
        "target ≥ 540 req/s: $(verdict "$r" '>=' 540), p99 ≤ 32.2 ms: $(verdict "$p99" '<=' 32.2)"
    out="$(wrk -t1 -c1 -d"$FOR" -H "Authorization: Bearer $TOKEN" --latency "$BASE/api/v1/boards/B5K/view")"
    p50="$(ms "$(pct 50 "$out")")"
    p99="$(ms "$(pct 99 "$out")")"
    limit=1
    [ "$engine" = postgres ] && limit=2
    echo "board view, 5,000 cards, 1 conn:      $(rps "$out") req/s, p50 $p50 ms, p99 $p99 ms," \
        "$(curl -fs -o /dev/null -w '%{size_download}' "$BASE/api/v1/boards/B5K/view" -H "Authorization: Bearer $TOKEN") bytes;" \
        "target p50 < $((20 * limit)) ms: $(verdict "$p50" '<' $((20 * limit))), p99 < $((60 * limit)) ms: $(verdict "$p99" '<' $((60 * limit)))"
    gz="$(curl -fs -o /dev/null -w '%{size_download}' "$BASE/api/v1/boards/B5K/view" -H "Authorization: Bearer $TOKEN" -H 'Accept-Encoding: gzip')"
    etag="$(curl -fs -D - -o /dev/null "$BASE/api/v1/boards/B5K/view" -H "Authorization: Bearer $TOKEN" | awk 'tolower($1) == "etag:" {print $2}' | tr -d '\r')"
    out="$(wrk -t1 -c1 -d"$FOR" -H "Authorization: Bearer $TOKEN" -H "If-None-Match: $etag" --latency "$BASE/api/v1/boards/B5K/view")"
    echo "  the same, gzip: $gz bytes; polled with If-None-Match (304): $(rps "$out") req/s, p50 $(ms "$(pct 50 "$out")") ms"

    task="$(key_of 'board=B1K&type=task')"
    incident="$(key_of 'type=incident')"
    share=3
    [ "$engine" = postgres ] && share=6
    # Both are answered from the item cache while nothing commits (a poller of one item); the
    # incident's SLA clocks are computed at each answer. Both read afresh: further down.
    get_items "" "$task" "$incident"

    curl -fs "$BASE/api/v1/boards" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d '{"key":"NEW","name":"Creation","lead":1}' >/dev/null
    export TOKEN
    out="$(wrk -t2 -c8 -d"$FOR" -s "$WORK/create.lua" --latency "$BASE")"
    created="$(curl -fs "$BASE/api/v1/items?board=NEW&limit=1&sort=-created_at" -H "Authorization: Bearer $TOKEN" \
        | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["items"][0]["key"].split("-")[1]))')"
    per_second=$(( created / ${FOR%s} ))
    target=1000
    [ "$engine" = postgres ] && target=500
    echo "item creation, 8 conns:               $per_second items/s (p50 $(ms "$(pct 50 "$out")") ms, p99 $(ms "$(pct 99 "$out")") ms," \
        "non-2xx $(awk '/Non-2xx/ {print $NF}' <<<"$out" | grep . || echo 0)); target ≥ $target/s: $(verdict "$per_second" '>=' $target)"

    views_of_3k_with_peak
    echo "64 concurrent views of 3,000 cards:   $(rps "$(cat "$WORK/mem.out")") req/s, p99 $(ms "$(pct 99 "$(cat "$WORK/mem.out")")") ms," \
        "peak memory $(mb "$peak"); target < 200 MB: $(verdict "$peak" '<' 204800)"

    # The same board views built every time and items read every time: the server again on
    # the same database, keeping no views, items or callers (boards.view_cache_mb,
    # database.item_cache_mb, auth.principal_cache_ms = 0), as when something commits between
    # any two requests.
    stop_server
    OPSBOARD__BOARDS__VIEW_CACHE_MB=0 OPSBOARD__DATABASE__ITEM_CACHE_MB=0 OPSBOARD__AUTH__PRINCIPAL_CACHE_MS=0 \
        MIMALLOC_PURGE_DELAY="${MIMALLOC_PURGE_DELAY-0}" \
        MIMALLOC_ARENA_EAGER_COMMIT="${MIMALLOC_ARENA_EAGER_COMMIT-0}" bench_start "$BIN" serve
    out="$(wrk -t2 -c8 -d"$FOR" -H "Authorization: Bearer $TOKEN" --latency "$BASE/api/v1/boards/B1K/view")"
    r="$(rps "$out")"
    p99="$(ms "$(pct 99 "$out")")"
    echo "  the same, built every time:         $r req/s ($(ratio "$r" "$health") of /health), p99 $p99 ms;" \
        "target ≥ 540 req/s: $(verdict "$r" '>=' 540), p99 ≤ 32.2 ms: $(verdict "$p99" '<=' 32.2)"
    get_items "  read afresh every time, " "$task" "$incident"
    views_of_3k_with_peak
    echo "  64 views of 3,000 built every time: $(rps "$(cat "$WORK/mem.out")") req/s, p99 $(ms "$(pct 99 "$(cat "$WORK/mem.out")")") ms," \
        "peak memory $(mb "$peak"); target < 200 MB: $(verdict "$peak" '<' 204800)"

    if [ "$engine" = postgres ]; then
        paths=("/api/v1/items/$task" "/api/v1/items/$incident")
        counts="$(statements_per_get "OPSBOARD__DATABASE__ITEM_CACHE_MB=0 OPSBOARD__AUTH__PRINCIPAL_CACHE_MS=0" "${paths[@]}")"
        if [ -n "$counts" ]; then
            read -r task_statements incident_statements <<<"$counts"
            read -r task_kept incident_kept <<<"$(statements_per_get "" "${paths[@]}")"
            echo "statements to PostgreSQL per GET:     task $task_statements (target ≤ 4: $(verdict "$task_statements" '<=' 4))," \
                "incident $incident_statements (target ≤ 6: $(verdict "$incident_statements" '<=' 6));" \
                "with caller and task kept: task $task_kept, incident $incident_kept"
        else
            echo "statements to PostgreSQL per GET:     not counted ($PG_LOG is not readable)"
        fi
    fi
    stop_server
    drop_schema
done
