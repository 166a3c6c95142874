#!/usr/bin/env bash
# Benchmark of the changes feed, on SQLite and on PostgreSQL in one run:
# - its cost on writes: items/s created over HTTP (wrk, 8 connections) by this tree's binary
#   and by the binary of BASE_REV, the commit before the feed's bookkeeping (event origin and
#   position, the item snapshot of every item event), on the same machine in the same run;
# - its throughput: events/s read by one client paging the whole feed (limit=500) from the
#   start, and by wrk fetching 500-event pages with 8 connections.
# Load comes from wrk on loopback only. PostgreSQL: BENCH_PG_URL (default the local server's
# database `test`); each run gets a fresh schema that is dropped afterwards.
#
#   bash bench/changes.sh                     # create for 10 s per binary and engine
#   CREATE_FOR=20s BASE_REV=744af38 bash bench/changes.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CREATE_FOR="${CREATE_FOR:-10s}"
READ_FOR="${READ_FOR:-10s}"
PORT="${PORT:-18083}"
BASE_REV="${BASE_REV:-744af38}"
BENCH_PG_URL="${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"

source bench/lib.sh
bench_need_wrk
cargo build --release --locked -q
CURRENT="${CARGO_TARGET_DIR:-target}/release/opsboard"

# The binary of BASE_REV, built once in a worktree of its own (kept under target/ for reuse).
BASE_TREE="target/bench-base-$BASE_REV"
if [ ! -x "$BASE_TREE/target/release/opsboard" ]; then
    rm -rf "$BASE_TREE"
    git worktree prune
    git worktree add -f --detach "$BASE_TREE" "$BASE_REV" >/dev/null
    (cd "$BASE_TREE" && CARGO_TARGET_DIR="$PWD/target" cargo build --release --locked -q)
fi
BASE_BIN="$BASE_TREE/target/release/opsboard"

export OPSBOARD_BIND="127.0.0.1:$PORT" RUST_LOG=warn \
    OPSBOARD_JWT_SECRET="bench-secret-bench-secret-bench-secret-!" \
    OPSBOARD_ADMIN_EMAIL=bench@example.org OPSBOARD_ADMIN_PASSWORD=bench-password-123

cat > "$WORK/create.lua" <<'LUA'
local i = 0
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
request = function()
    i = i + 1
    local body = string.format('{"board":"OPS","type":"task","title":"Bench %d","labels":["bench"]}', i)
    return wrk.format("POST", "/api/v1/items", nil, body)
end
LUA

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

# Starts binary $2 on a fresh database of engine $1 with a board OPS; sets TOKEN.
start_fresh() {
    local engine="$1" binary="$2"
    stop_server
    drop_schema
    if [ "$engine" = sqlite ]; then
        rm -f "$WORK"/bench.db*
        export DATABASE_URL="$WORK/bench.db"
    else
        SCHEMA="bench_$$_$RANDOM"
        psql -q "$BENCH_PG_URL" -c "CREATE SCHEMA $SCHEMA" >/dev/null
        local sep='?'
        [[ "$BENCH_PG_URL" == *\?* ]] && sep='&'
        export DATABASE_URL="${BENCH_PG_URL}${sep}options=-csearch_path%3D$SCHEMA"
    fi
    bench_start "$binary" serve
    TOKEN="$(bench_token bench@example.org bench-password-123)"
    export TOKEN
    curl -fs "$BASE/api/v1/boards" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d '{"key":"OPS","name":"Betrieb","lead":1}' >/dev/null
}

# The number of the newest item on OPS: how many were created (numbers are never skipped).
count_items() {
    curl -fs "$BASE/api/v1/items?board=OPS&limit=1&sort=-created_at" -H "Authorization: Bearer $TOKEN" \
        | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["items"][0]["key"].split("-")[1]))'
}

# Items/s created by binary $2 on engine $1.
create_rate() {
    start_fresh "$1" "$2"
    local out
    out="$(wrk -t2 -c8 -d"$CREATE_FOR" -s "$WORK/create.lua" --latency "$BASE")"
    local seconds="${CREATE_FOR%s}" created
    created="$(count_items)"
    printf '%s items/s (p50 %s, p99 %s, non-2xx %s)' "$(( created / seconds ))" \
        "$(awk '$1 == "50%" {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")" \
        "$(awk '/Non-2xx/ {print $NF}' <<<"$out" | grep . || echo 0)"
}

# Reads the whole feed from the start, 500 events a page, with one client: events and seconds.
read_feed() {
    python3 - "$BASE" "$TOKEN" <<'PY'
import json, sys, time, urllib.request
base, token = sys.argv[1], sys.argv[2]
after, events, started = None, 0, time.monotonic()
while True:
    url = f"{base}/api/v1/changes?limit=500" + (f"&after={after}" if after else "")
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    page = json.load(urllib.request.urlopen(req))
    events += len(page["items"])
    after = page["next_cursor"]
    if not page["has_more"]:
        break
elapsed = time.monotonic() - started
print(f"{events} events in {elapsed:.2f} s: {events / elapsed:.0f} events/s")
PY
}

echo "machine: $(nproc) cores; $(date -u +%FT%TZ); base $BASE_REV vs $(git rev-parse --short HEAD)"
for engine in sqlite postgres; do
    echo "== $engine"
    # Not in $(…): the server started here must outlive the call for the reads below.
    printf '%s' "item creation, without the feed's bookkeeping ($BASE_REV): "
    create_rate "$engine" "$BASE_BIN"
    printf '\n%s' "item creation, with it (this tree):               "
    create_rate "$engine" "$CURRENT"
    echo
    echo "feed read, one client, pages of 500:              $(read_feed)"
    out="$(wrk -t2 -c8 -d"$READ_FOR" -H "Authorization: Bearer $TOKEN" --latency "$BASE/api/v1/changes?limit=500")"
    rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
    echo "feed read, 8 connections, pages of 500:          $(python3 -c "print(round($rps * 500))") events/s ($(bench_figures "$out"))"
    stop_server
    drop_schema
done
