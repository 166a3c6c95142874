#!/usr/bin/env bash
# Tests the example bridges: a venv with requirements.txt, the opsboard client regenerated from
# openapi/openapi.json, the release binary (built here unless given as $1 or OPSBOARD_BIN),
# then pytest on SQLite and, when OPSBOARD_TEST_DATABASE_URL is set, on PostgreSQL (each test
# creates and drops a database of its own there). Prints the figures of each run at the end.
# Scale: BRIDGE_JIRA_ISSUES (2000), BRIDGE_OPSBOARD_ITEMS (500); BRIDGE_SEED repeats a run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$here/build/venv"

mkdir -p "$here/build"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
PATH="$venv/bin:$PATH" "$here/generate-client.sh"

binary="${1:-${OPSBOARD_BIN:-}}"
if [ -z "$binary" ]; then
    (cd "$repo" && cargo build --release --locked)
    binary="$repo/target/release/opsboard"
fi
export OPSBOARD_BIN="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"
if [ -z "${OPSBOARD_TEST_DATABASE_URL:-}" ]; then
    echo "OPSBOARD_TEST_DATABASE_URL is not set: the PostgreSQL runs are skipped" >&2
fi

# one seed for the whole run, printed with the figures, so that a failure can be repeated
export BRIDGE_SEED="${BRIDGE_SEED:-$(( (RANDOM << 15) | RANDOM ))}"
echo "BRIDGE_SEED=$BRIDGE_SEED"
rm -f "$here/build/figures.jsonl"
cd "$here/tests"
"$venv/bin/python" -m pytest -q -p no:cacheprovider -rs "$here/tests"

# the figures of the scenario runs, one line per run
"$venv/bin/python" - "$here/build/figures.jsonl" <<'PY'
import json, sys
# opsboard events: history events the run caused (what the feed shows); writes: the bridge's
# successful write requests (none reported by a killed run); remote writes: as the mock counted
print(f"\n{'bridge':<12}{'engine':<10}{'run':<13}{'seconds':>8}{'opsboard events':>16}{'opsboard writes':>16}{'remote writes':>14}")
for line in open(sys.argv[1]):
    d = json.loads(line)
    for r in d["runs"]:
        writes = r["bridge"].get("opsboard_writes", "-")
        print(f"{d['bridge']:<12}{d['engine']:<10}{r['run']:<13}{r['seconds']:>8}{r['opsboard_events']:>16}{writes:>16}{r.get('jira_writes', r.get('remote_writes', 0)):>14}")
    print(f"  ({d.get('jira_issues', d.get('remote_items'))} remote, {d['opsboard_items']} opsboard items at the start, "
          f"{d['final_items']} at the end; seed {d['seed']})")
PY
