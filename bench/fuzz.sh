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

source bench/lib.sh

export DATABASE_URL="${FUZZ_DATABASE_URL:-$WORK/fuzz.db}" OPSBOARD_BIND="127.0.0.1:$PORT" RUST_LOG=warn \
    OPSBOARD_JWT_SECRET="fuzz-secret-fuzz-secret-fuzz-secret-fuzz" \
    OPSBOARD_ADMIN_EMAIL=fuzz@example.org OPSBOARD_ADMIN_PASSWORD=fuzz-password-123
bench_start "${CARGO_TARGET_DIR:-target}/debug/opsboard" serve
TOKEN="$(bench_token fuzz@example.org fuzz-password-123)"

status=0
"$VENV/bin/st" run "http://127.0.0.1:$PORT/api-docs/openapi.json" \
    -H "Authorization: Bearer $TOKEN" --checks all --max-examples "$EXAMPLES" || status=$?
if grep -q ' 500 \| 5[0-9][0-9] ' "$WORK/server.log"; then
    echo "server log shows 5xx responses:"; grep ' 5[0-9][0-9] ' "$WORK/server.log" | head
fi
exit "$status"
