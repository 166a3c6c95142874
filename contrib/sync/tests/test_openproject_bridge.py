"""The OpenProject bridge against the release binary (SQLite and PostgreSQL) and the mock
OpenProject, at a smaller scale than the JIRA scenario: 300 work packages and 100 items, then
edits, creates and deletes on both sides, a person saving another attribute just before one in
five of the bridge's PATCHes (409 UpdateConflict), the bridge killed right after a random one of
its writes and run again, and once more: no duplicates, no losses, deletions both ways, and the
last run writes nothing."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

from conftest import SYNC, record_figures
from mock_openproject import PRIORITIES, MockOpenProject
from test_jira_bridge import due, text

REMOTE = int(os.environ.get("BRIDGE_OP_WORK_PACKAGES", "300"))
ITEMS = int(os.environ.get("BRIDGE_OP_OPSBOARD_ITEMS", "100"))
EDITS = max(5, REMOTE // 20)
SEED = int(os.environ.get("BRIDGE_SEED", str(random.randrange(1 << 30))))
BOARD = "OPWP"
COLUMN_OF = {"New": "To Do", "In progress": "In Progress", "Closed": "Done"}
STATUS_ID = {"New": 1, "In progress": 7, "Closed": 12}
PRIORITY_ID = {v: k for k, v in PRIORITIES.items()}
OB_PRIORITY = {"Immediate": "critical", "High": "high", "Normal": "medium", "Low": "low"}


def wp_body(rng: random.Random, status: str | None = None) -> dict:
    return {
        "subject": text(rng, 5),
        "description": {"raw": text(rng, 8) + "\n\n" + text(rng, 4) if rng.random() < 0.8 else ""},
        "dueDate": due(rng),
        "_links": {"priority": {"href": f"/api/v3/priorities/{PRIORITY_ID[rng.choice(list(OB_PRIORITY))]}"},
                   "status": {"href": f"/api/v3/statuses/{STATUS_ID[status or rng.choice(list(STATUS_ID))]}"}},
    }


def run_bridge(opsboard, op, token: str, state: str, kill_after_writes: int | None = None) -> dict:
    cmd = [
        sys.executable, str(SYNC / "openproject_bridge.py"),
        "--opsboard-url", opsboard.url, "--opsboard-token", token,  # the origin: the token's own
        "--board", BOARD, "--openproject-url", op.url, "--openproject-key", "bot-api-key",
        "--project", str(op.project_id), "--state", state,
    ]
    seq0, w0 = opsboard.head_seq(), op.writes_by(op.bot)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = {"at": None}
    if kill_after_writes is not None:
        def after_write(user):
            if user is op.bot and op.writes_by(op.bot) - w0 >= kill_after_writes and killed["at"] is None:
                killed["at"] = op.writes_by(op.bot) - w0
                os.kill(proc.pid, signal.SIGKILL)
        op.after_write = after_write
    out, err = proc.communicate(timeout=600)
    op.after_write = None
    seconds = round(time.monotonic() - started, 2)
    if killed["at"] is None:
        assert proc.returncode == 0, f"the bridge failed:\n{err[-4000:]}"
        stats = json.loads(out.strip().splitlines()[-1])
    else:
        assert proc.returncode == -signal.SIGKILL
        stats = {"killed": f"after {killed['at']} OpenProject writes"}
    return {"seconds": seconds, "opsboard_events": opsboard.head_seq() - seq0,
            "remote_writes": op.writes_by(op.bot) - w0, "bridge": stats}


def values_of_wp(wp: dict) -> dict:
    return {
        "title": wp["subject"], "description": wp["description"]["raw"],
        "priority": OB_PRIORITY[wp["_links"]["priority"]["title"]], "due_date": wp["dueDate"],
        "column": COLUMN_OF[wp["_links"]["status"]["title"]],
    }


def values_of_item(item: dict) -> dict:
    return {"title": item["title"], "description": item["description"], "priority": item["priority"],
            "due_date": item.get("due_date"), "column": item["column"]["name"]}


def test_two_way_sync_with_conflicts_and_a_crash(opsboard, tmp_path):
    rng = random.Random(SEED)
    print(f"seed {SEED} ({opsboard.engine})", file=sys.stderr)
    http = opsboard.http
    opsboard.ok(http.post("/boards", json={
        "key": BOARD, "name": "Mirrored from OpenProject", "lead": "admin@example.org",
        "columns": [{"name": "To Do", "category": "todo"}, {"name": "In Progress", "category": "in_progress"},
                    {"name": "Done", "category": "done"}]}))
    columns = {c["name"]: c["id"] for c in opsboard.ok(http.get(f"/boards/{BOARD}"))["columns"]}
    opsboard.ok(http.post("/users", json={"email": "sync-op@example.org", "display_name": "OpenProject bridge",
                                          "role": "member", "password": "a long unused password"}))
    token = opsboard.ok(http.post("/tokens", json={"name": "OpenProject bridge", "scopes": ["read", "write"],
                                                   "origin": "openproject-sync", "user": "sync-op@example.org"}))["secret"]
    op = MockOpenProject(seed=SEED, conflict_probability=0.2).start()
    try:
        for _ in range(REMOTE):
            op.create(wp_body(rng))
        for _ in range(ITEMS):
            item = opsboard.ok(http.post("/items", json={
                "board": BOARD, "type": "task", "title": text(rng, 5), "description": text(rng, 6),
                "priority": rng.choice(list(OB_PRIORITY.values())), "due_date": due(rng)}))
            column = rng.choice(list(columns))
            if column != "To Do":
                opsboard.ok(http.post(f"/items/{item['key']}/move", json={"column": columns[column]}))
        state = str(tmp_path / "bridge.sqlite")
        runs = [run_bridge(opsboard, op, token, state)]
        assert len(opsboard.items(BOARD)) == REMOTE + ITEMS == len(op.snapshot())

        by_ref = {next(r["key"] for r in i["external_refs"] if r["system"] == "openproject"): i
                  for i in opsboard.items(BOARD)}
        picked = rng.sample(sorted(op.snapshot()), 5 * EDITS)
        op_edit, op_delete, ob_edit, ob_delete, merge = (picked[k * EDITS:(k + 1) * EDITS] for k in range(5))
        for i in op_edit:
            wp = op.snapshot()[i]
            op.update(i, {"lockVersion": wp["lockVersion"], **wp_body(rng)})
        for i in op_delete:
            op.delete(i)
        new_wps = [op.create(wp_body(rng))["id"] for _ in range(EDITS)]
        for i in ob_edit:
            key = by_ref[str(i)]["key"]
            opsboard.ok(http.patch(f"/items/{key}", json={"title": text(rng, 4) + " (opsboard)", "due_date": due(rng)}))
            opsboard.ok(http.post(f"/items/{key}/move", json={"column": columns[rng.choice(list(columns))]}))
        for i in ob_delete:
            opsboard.ok(http.delete(f"/items/{by_ref[str(i)]['key']}"))
        for _ in range(EDITS):
            opsboard.ok(http.post("/items", json={"board": BOARD, "type": "task", "title": text(rng, 4) + " (new)"}))
        merged = {}
        for i in merge:  # OpenProject changes the subject, opsboard the priority: both stay
            wp = op.snapshot()[i]
            subject = text(rng, 4) + " (OpenProject, merged)"
            op.update(i, {"lockVersion": wp["lockVersion"], "subject": subject})
            opsboard.ok(http.patch(f"/items/{by_ref[str(i)]['key']}", json={"priority": "critical"}))
            merged[i] = subject

        runs.append(run_bridge(opsboard, op, token, state, kill_after_writes=rng.randint(1, 2 * EDITS)))
        runs.append(run_bridge(opsboard, op, token, state))
        runs.append(run_bridge(opsboard, op, token, state))

        last = runs[-1]
        assert (last["opsboard_events"], last["remote_writes"]) == (0, 0), last

        items = opsboard.items(BOARD)
        wps = op.snapshot()
        refs = []
        for item in items:
            mine = [r for r in item["external_refs"] if r["system"] == "openproject"]
            assert len(mine) == 1, item
            refs.append(mine[0]["key"])
        assert len(refs) == len(set(refs))
        assert sorted(refs) == sorted(str(i) for i in wps)
        assert len(items) == REMOTE + ITEMS
        item_of = dict(zip(refs, items))
        for i, wp in wps.items():
            assert values_of_item(item_of[str(i)]) == values_of_wp(wp), (item_of[str(i)]["key"], i)
        for i in new_wps:
            assert str(i) in item_of
        for i, subject in merged.items():
            assert item_of[str(i)]["title"] == subject and item_of[str(i)]["priority"] == "critical"
        for i in op_delete:
            assert http.get(f"/items/by-ref/openproject/{i}").status_code == 404
        for i in ob_delete:
            assert i not in wps
        assert op.conflicts > 0, "no 409 UpdateConflict was met"

        record_figures({
            "bridge": "openproject", "engine": opsboard.engine, "seed": SEED, "remote_items": REMOTE,
            "opsboard_items": ITEMS, "edits_per_kind": EDITS, "final_items": len(items),
            "conflicts_injected": op.conflicts,
            "runs": [{"run": n, **r} for n, r in zip(["1 initial", "2 killed", "2 restarted", "3 last"], runs)],
        })
    finally:
        op.stop()
