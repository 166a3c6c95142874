#!/usr/bin/env bash
# Generates the Python client of the opsboard API from openapi/openapi.json into
# contrib/sync/build/opsboard-client (not committed: it is rebuilt from the spec, so CI fails when
# a change of the spec breaks generated clients). --fail-on-warning: a part of the spec that the
# generator cannot turn into code fails too, instead of being skipped quietly.
# Needs openapi-python-client (requirements.txt) on PATH, e.g. in the venv of run-tests.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
spec="$here/../../openapi/openapi.json"
out="$here/build/opsboard-client"
mkdir -p "$here/build"
openapi-python-client generate --path "$spec" --output-path "$out" --overwrite \
    --config "$here/generate-client.config.yml" --fail-on-warning
# a smoke test: the package imports and has the calls the bridges use
PYTHONPATH="$out" python3 - <<'PY'
from opsboard_client import AuthenticatedClient  # noqa: F401
from opsboard_client.api.items import put_item_by_ref, delete_item_by_ref, get_item, list_items, update_item  # noqa: F401
from opsboard_client.api.changes import list_changes, changes_head  # noqa: F401
PY
echo "generated $out"
