#!/usr/bin/env bash
# Benchmark of the running service on the embedded default (SQLite), on this machine:
# requests per second and latency of GET /health, of an authenticated GET /api/v1/me and of a
# user list page, plus login latency and idle memory. Load comes from wrk on loopback only.
#
#   bash bench/run.sh            # 10 s per endpoint
#   DURATION=30s bash bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
PORT="${PORT:-18080}"

source bench/lib.sh
bench_need_wrk
cargo build --release --locked -q


export DATABASE_URL="$WORK/bench.db" OPSBOARD_BIND="127.0.0.1:$PORT" RUST_LOG=warn \
    OPSBOARD_JWT_SECRET="bench-secret-bench-secret-bench-secret-!" \
    OPSBOARD_ADMIN_EMAIL=bench@example.org OPSBOARD_ADMIN_PASSWORD=bench-password-123 \
    OPSBOARD__AUTH__LOGIN_ACCOUNT_BURST=1000
# The sequential logins below would otherwise meet the login throttle (10 per account).
bench_start "${CARGO_TARGET_DIR:-target}/release/opsboard" serve
sleep 1
echo "idle RSS after start: $(bench_rss)"
login() {
    curl -fs "$BASE/api/v1/auth/login" -H 'Content-Type: application/json' \
        -d '{"email":"bench@example.org","password":"bench-password-123"}'
}
TOKEN="$(login | sed -E 's/.*"access_token":"([^"]+)".*/\1/')"
for i in $(seq 1 60); do
    curl -fs "$BASE/api/v1/users" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d "{\"email\":\"user$i@example.org\",\"display_name\":\"User $i\",\"role\":\"member\",\"password\":\"user-password-123\"}" >/dev/null
done

echo "machine: $(nproc) cores; $(date -u +%FT%TZ); wrk ${DURATION}, ${CONNECTIONS} connections, 2 threads"
echo "RSS after start and 60 user creations: $(bench_rss)"

start=$(date +%s%N)
for _ in $(seq 1 20); do login >/dev/null; done
echo "login (argon2id verify), sequential: $(( ($(date +%s%N) - start) / 20000000 )) ms per request"

run() {
    local name="$1"; shift
    local out
    out="$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$@")"
    local rps p50 p99
    rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
    p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    local errors
    errors="$(awk '/Non-2xx/ {print $NF}' <<<"$out")"
    printf '%-34s %10s req/s   p50 %-9s p99 %-9s non-2xx %s\n' "$name" "$rps" "$p50" "$p99" "${errors:-0}"
    echo "$rps" > "$WORK/$name.rps"
}
run health "$BASE/health"
run me -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/me"
run users_page_50 -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/users?limit=50"
awk -v h="$(cat "$WORK/health.rps")" -v m="$(cat "$WORK/me.rps")" \
    'BEGIN { printf "authenticated GET /me reaches %.0f%% of /health (target: at least 33%%)\n", 100 * m / h }'
echo "RSS after load: $(bench_rss)"
sleep 3
echo "idle RSS 3 s after load: $(bench_rss)"
