#!/usr/bin/env bash
# Benchmark of the rollout views on SQLite with the demo data (116 administrations × 6
# services, about 500 entries): the matrix as JSON, CSV and SVG and the progress by service,
# district and wave, each with wrk (CONNECTIONS connections for DURATION) on loopback.
# The target (issue 14): every view within 200 ms.
#
#   bash bench/rollout.sh                       # release build, 4 connections, 10 s each
#   BIN=target/debug/opsboard DURATION=5s bash bench/rollout.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-4}"
PORT="${PORT:-18191}"

source bench/lib.sh
bench_need_wrk
if [ -z "${BIN:-}" ]; then
    cargo build --release --locked -q
    BIN="${CARGO_TARGET_DIR:-target}/release/opsboard"
fi

export OPSBOARD_BIND="127.0.0.1:$PORT" RUST_LOG=warn DATABASE_URL="$WORK/rollout.db" \
    OPSBOARD_JWT_SECRET="$(bench_secret)" \
    OPSBOARD_ADMIN_EMAIL=bench@example.org OPSBOARD_ADMIN_PASSWORD=bench-password-123
bench_start "$BIN" serve --demo
TOKEN="$(bench_token bench@example.org bench-password-123)"

echo "rollout views, SQLite, demo data, $CONNECTIONS connections, $DURATION each ($BIN):"
for query in "matrix" "matrix?format=csv" "matrix?format=svg" \
    "progress?by=service" "progress?by=district" "progress?by=wave"; do
    out="$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency \
        -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/rollout/$query")"
    if grep -q "Non-2xx" <<<"$out"; then
        echo "  $query: errors" >&2
        echo "$out" >&2
        exit 1
    fi
    printf '  %-22s %s (%s a response)\n' "$query" "$(bench_figures "$out")" \
        "$(curl -fs -o /dev/null -w '%{size_download} bytes' -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/rollout/$query")"
done
