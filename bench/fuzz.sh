#!/usr/bin/env bash
# Property-based fuzzing of the running service against its own OpenAPI document with
# schemathesis: no 5xx, and every response must match the spec. Loopback only.
#
#   bash bench/fuzz.sh               # 100 examples per operation
#   EXAMPLES=500 bash bench/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."

EXAMPLES="${EXAMPLES:-100}"
PORT="${PORT:-18081}"
VENV="${VENV:-/tmp/opsboard-schemathesis}"

[ -x "$VENV/bin/st" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q schemathesis; }
cargo build --locked -q

WORK="$(mktemp -d)"
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

export DATABASE_URL="${FUZZ_DATABASE_URL:-$WORK/fuzz.db}" OPSBOARD_BIND="127.0.0.1:$PORT" RUST_LOG=warn \
    OPSBOARD_JWT_SECRET="fuzz-secret-fuzz-secret-fuzz-secret-fuzz" \
    OPSBOARD_ADMIN_EMAIL=fuzz@example.org OPSBOARD_ADMIN_PASSWORD=fuzz-password-123
./target/debug/opsboard serve > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
    sleep 0.1
done
TOKEN="$(curl -fs "http://127.0.0.1:$PORT/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d '{"email":"fuzz@example.org","password":"fuzz-password-123"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')"

status=0
"$VENV/bin/st" run "http://127.0.0.1:$PORT/api-docs/openapi.json" \
    -H "Authorization: Bearer $TOKEN" --checks all --max-examples "$EXAMPLES" || status=$?
if grep -q ' 500 \| 5[0-9][0-9] ' "$WORK/server.log"; then
    echo "server log shows 5xx responses:"; grep ' 5[0-9][0-9] ' "$WORK/server.log" | head
fi
exit "$status"
