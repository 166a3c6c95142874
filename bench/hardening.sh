#!/usr/bin/env bash
# What abuse costs the embedded default (SQLite, demo data, release build): resident memory
# after 64 concurrent board views of a board with about 3,000 cards, and resident memory, the
# answers and the latency of an authenticated GET /api/v1/me during a flood of 400 wrong
# logins from 32 connections (one account, then many). Load comes from wrk and Python on
# loopback only. Figures are printed, never asserted.
#
#   bash bench/hardening.sh
#   CARDS=5000 VIEW_FOR=20s bash bench/hardening.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CARDS="${CARDS:-3000}"
VIEW_FOR="${VIEW_FOR:-10s}"
PORT="${PORT:-18083}"

source bench/lib.sh
bench_need_wrk
cargo build --release --locked -q

export DATABASE_URL="$WORK/bench.db" OPSBOARD_BIND="127.0.0.1:$PORT" RUST_LOG=warn \
    OPSBOARD_JWT_SECRET="$(bench_secret)" \
    OPSBOARD_ADMIN_EMAIL=bench@example.org OPSBOARD_ADMIN_PASSWORD=bench-password-123
bench_start "${CARGO_TARGET_DIR:-target}/release/opsboard" serve --demo
TOKEN="$(bench_token bench@example.org bench-password-123)"
cards() {
    curl -fs "$BASE/api/v1/boards/OPS/view" -H "Authorization: Bearer $TOKEN" \
        | python3 -c 'import json,sys; v=json.load(sys.stdin); print(sum(c["count"] for c in v["columns"]))'
}
cat > "$WORK/create.lua" <<LUA
local i = 0
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
request = function()
    i = i + 1
    return wrk.format("POST", "/api/v1/items", nil,
        string.format('{"board":"OPS","type":"task","title":"Bench %d","raci":{"accountable":1}}', i))
end
LUA
echo "machine: $(nproc) cores; $(date -u +%FT%TZ); resident after start with the demo: $(bench_rss)"
while [ "$(cards)" -lt "$CARDS" ]; do
    wrk -t2 -c8 -d2s -s "$WORK/create.lua" "$BASE" >/dev/null
done
echo "cards on OPS: $(cards); view payload $(curl -fs -o /dev/null -w '%{size_download}' \
    "$BASE/api/v1/boards/OPS/view" -H "Authorization: Bearer $TOKEN") bytes; resident: $(bench_rss)"

out="$(wrk -t2 -c64 -d"$VIEW_FOR" -H "Authorization: Bearer $TOKEN" --latency "$BASE/api/v1/boards/OPS/view")"
echo "board view, 64 connections: $(bench_figures "$out")," \
    "non-2xx $(awk '/Non-2xx/ {print $NF}' <<<"$out" | grep . || echo 0)"
echo "resident after 64 concurrent board views: $(bench_rss) (peak $(bench_rss peak))"

# 400 wrong logins from 32 connections while wrk measures an authenticated GET /me.
wrk -t1 -c4 -d12s -H "Authorization: Bearer $TOKEN" --latency "$BASE/api/v1/me" > "$WORK/me.txt" &
WRK_PID=$!
sleep 1
python3 - "$BASE" <<'PY'
import collections, concurrent.futures, json, sys, time, urllib.error, urllib.request
base = sys.argv[1]
def login(n):
    # The first 200 aim at one account, the next 200 at 200 different ones.
    email = "bench@example.org" if n < 200 else f"nobody{n}@example.org"
    body = json.dumps({"email": email, "password": "wrong-password-123"}).encode()
    request = urllib.request.Request(base + "/api/v1/auth/login", body, {"Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    return status, time.monotonic() - started
started = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(32) as pool:
    results = list(pool.map(login, range(400)))
took = time.monotonic() - started
statuses = collections.Counter(status for status, _ in results)
slowest = max(seconds for _, seconds in results)
print(f"400 wrong logins, 32 connections: {took:.1f} s, answers {dict(sorted(statuses.items()))}, slowest {slowest * 1000:.0f} ms")
PY
wait "$WRK_PID"
echo "GET /api/v1/me during the flood: $(bench_figures "$(cat "$WORK/me.txt")")"
echo "resident after the wrong logins: $(bench_rss) (peak $(bench_rss peak))"
