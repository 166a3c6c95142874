"""The JIRA bridge against the release binary (SQLite and PostgreSQL) and the mock JIRA.

2,000 issues in JIRA and 500 items in opsboard; a first run syncs both ways; then people edit,
create and delete on both sides (some items on both sides at once), the bridge is killed (SIGKILL)
right after a random one of its JIRA writes is applied and before it hears the answer, run
again and killed after a random number of its opsboard writes, run again to its end, and then
runs once more. Checked at the end: every item has exactly one JIRA reference
and every issue exactly one item (no duplicates), every synced field is equal on both sides (no
losses), deletions went both ways, and the last run wrote nothing on either side. The runtime
and writes per side of each run go to build/figures.jsonl.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

from conftest import SYNC, RetryingClient, record_figures
from mock_jira import MockJira

ISSUES = int(os.environ.get("BRIDGE_JIRA_ISSUES", "2000"))
ITEMS = int(os.environ.get("BRIDGE_OPSBOARD_ITEMS", "500"))
EDITS = max(10, ISSUES // 20)  # edits per side and kind
SEED = int(os.environ.get("BRIDGE_SEED", str(random.randrange(1 << 30))))
BOARD = "SYNC"
PROJECT = "OZG"
STATUSES = ["To Do", "In Progress", "Done"]
PRIORITIES = {"Highest": "critical", "High": "high", "Medium": "medium", "Low": "low"}
LABELS = ["upload", "bundid", "wohngeld", "portal", "ozg", "formular", "zahlung"]
BOT = ("sync-bot@example.org", "bot-api-token")


def text(rng: random.Random, words: int) -> str:
    vocab = "Antrag Upload Portal Fehler Zertifikat Formular Zahlung Bescheid Postfach Login Termin Nachweis".split()
    return " ".join(rng.choice(vocab) for _ in range(words))


def due(rng: random.Random) -> str | None:
    return None if rng.random() < 0.5 else f"2027-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def adf(value: str) -> dict | None:
    if not value:
        return None
    return {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": line}] if line else []} for line in value.split("\n")]}


def jira_fields(rng: random.Random) -> dict:
    return {
        "project": {"key": PROJECT},
        "issuetype": {"name": "Task"},
        "summary": text(rng, 5),
        "description": adf(text(rng, 8) + "\n" + text(rng, 6)) if rng.random() < 0.8 else None,
        "priority": {"name": rng.choice(list(PRIORITIES))},
        "labels": sorted(rng.sample(LABELS, rng.randint(0, 3))),
        "duedate": due(rng),
    }


def run_bridge(opsboard, jira, token: str, state: str, kill_after_jira_writes: int | None = None,
               kill_after_opsboard_events: int | None = None) -> dict:
    """One run of the bridge as its own process; its figures and the writes each side saw.
    With a kill_after_…, the bridge is killed (SIGKILL) once it made that many JIRA writes
    (right after JIRA applied the last one, before the bridge hears the answer), or once
    opsboard's feed moved on by that many events (watched every 10 ms)."""
    cmd = [
        sys.executable, str(SYNC / "jira_bridge.py"),
        "--opsboard-url", opsboard.url, "--opsboard-token", token, "--origin", "jira-sync",
        "--board", BOARD, "--jira-url", jira.url, "--jira-email", BOT[0], "--jira-token", BOT[1],
        "--project", PROJECT, "--state", state,
    ]
    bot = jira.accounts[BOT]["accountId"]
    seq0, jira0 = opsboard.head_seq(), jira.writes_by(bot)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = {"at": None}
    if kill_after_jira_writes is not None:
        def after_write(account):
            if account["accountId"] == bot and jira.writes_by(bot) - jira0 >= kill_after_jira_writes and killed["at"] is None:
                killed["at"] = jira.writes_by(bot) - jira0
                os.kill(proc.pid, signal.SIGKILL)
        jira.after_write = after_write
    watcher = None
    if kill_after_opsboard_events is not None:
        def watch():
            with RetryingClient(base_url=opsboard.http.base_url, headers=dict(opsboard.http.headers), timeout=10) as c:
                while proc.poll() is None:
                    if c.get("/changes/head").json()["seq"] - seq0 >= kill_after_opsboard_events:
                        killed["at"] = "opsboard"
                        proc.send_signal(signal.SIGKILL)  # a no-op once the run has ended
                        return
                    time.sleep(0.01)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
    out, err = proc.communicate(timeout=600)
    if watcher is not None:
        watcher.join()
    jira.after_write = None
    seconds = round(time.monotonic() - started, 2)
    if proc.returncode != -signal.SIGKILL:  # not killed (or it ended first)
        assert proc.returncode == 0, f"the bridge failed:\n{err[-4000:]}"
        stats = json.loads(out.strip().splitlines()[-1])
    else:
        stats = {"killed": f"after {killed['at']} JIRA writes" if killed["at"] != "opsboard"
                 else f"after {kill_after_opsboard_events}+ opsboard events"}
    return {
        "seconds": seconds,
        "opsboard_events": opsboard.head_seq() - seq0,  # what opsboard recorded (nobody else writes now)
        "jira_writes": jira.writes_by(bot) - jira0,  # what JIRA applied for the bridge's account
        "bridge": stats,
    }


def expected_fields_of_issue(issue: dict) -> dict:
    f = issue["fields"]
    desc = f.get("description")
    lines = ["".join(n.get("text", "") for n in p.get("content", [])) for p in (desc or {}).get("content", [])]
    return {
        "title": f["summary"],
        "description": "\n".join(lines),
        "priority": {"Lowest": "low", **PRIORITIES}[f["priority"]["name"]],
        "labels": sorted(f.get("labels") or []),
        "due_date": f.get("duedate"),
        "status": f["status"]["name"],
    }


def fields_of_item(item: dict) -> dict:
    return {
        "title": item["title"],
        "description": item["description"],
        "priority": item["priority"],
        "labels": sorted(item["labels"]),
        "due_date": item.get("due_date"),
        "status": item["column"]["name"],
    }


def test_two_way_sync_with_a_crash(opsboard, tmp_path):
    rng = random.Random(SEED)
    print(f"seed {SEED} ({opsboard.engine})", file=sys.stderr)
    http = opsboard.http
    opsboard.ok(http.post("/boards", json={
        "key": BOARD, "name": "Mirrored from JIRA", "lead": "admin@example.org",
        "columns": [{"name": "To Do", "category": "todo"}, {"name": "In Progress", "category": "in_progress"},
                    {"name": "Done", "category": "done"}]}))
    columns = {c["name"]: c["id"] for c in opsboard.ok(http.get(f"/boards/{BOARD}"))["columns"]}
    opsboard.ok(http.post("/users", json={"email": "sync-jira@example.org", "display_name": "JIRA bridge",
                                          "role": "member", "password": "a long unused password"}))
    token = opsboard.ok(http.post("/tokens", json={"name": "JIRA bridge", "scopes": ["read", "write"],
                                                   "origin": "jira-sync", "user": "sync-jira@example.org"}))["secret"]

    jira = MockJira(PROJECT, seed=SEED, rate_limit_probability=0.002).start()
    try:
        # JIRA's 2,000 issues and opsboard's 500 items, made by people
        for _ in range(ISSUES):
            created = jira.create(jira_fields(rng))
            status = rng.choice(STATUSES)
            if status != "To Do":
                jira.move_to(created["id"], status)
        for _ in range(ITEMS):
            item = opsboard.ok(http.post("/items", json={
                "board": BOARD, "type": "task", "title": text(rng, 5), "description": text(rng, 10),
                "priority": rng.choice(list(PRIORITIES.values())), "labels": sorted(rng.sample(LABELS, rng.randint(0, 3))),
                "due_date": due(rng)}))
            status = rng.choice(STATUSES)
            if status != "To Do":
                opsboard.ok(http.post(f"/items/{item['key']}/move", json={"column": columns[status]}))
        state = str(tmp_path / "bridge.sqlite")
        runs = []

        # run 1: everything both ways
        runs.append(run_bridge(opsboard, jira, token, state))
        assert len(opsboard.items(BOARD)) == ISSUES + ITEMS
        assert len(jira.snapshot()) == ISSUES + ITEMS

        # people at work on both sides
        items = opsboard.items(BOARD)
        by_ref = {next(r["key"] for r in i["external_refs"] if r["system"] == "jira"): i for i in items}
        issue_ids = sorted(jira.snapshot())
        picked = rng.sample(issue_ids, 6 * EDITS)
        jira_edit, jira_move, jira_delete, ob_edit, ob_move, ob_delete = (
            picked[k * EDITS:(k + 1) * EDITS] for k in range(6))
        both = rng.sample([i for i in issue_ids if i not in picked], 2 * EDITS // 2)
        merge, conflict = both[:EDITS // 2], both[EDITS // 2:]
        for i in jira_edit:
            jira.update(i, {"summary": text(rng, 4) + " (JIRA)", "labels": sorted(rng.sample(LABELS, 2)),
                            "description": adf(text(rng, 7))})
        for i in jira_move:
            jira.move_to(i, rng.choice(STATUSES))
        for i in jira_delete:
            jira.delete(i)
        new_issues = [jira.create(jira_fields(rng))["id"] for _ in range(EDITS)]
        for i in ob_edit:
            opsboard.ok(http.patch(f"/items/{by_ref[str(i)]['key']}", json={
                "title": text(rng, 4) + " (opsboard)", "priority": rng.choice(list(PRIORITIES.values())),
                "due_date": due(rng), "description": text(rng, 5) + "\n\n" + text(rng, 3)}))
        for i in ob_move:
            opsboard.ok(http.post(f"/items/{by_ref[str(i)]['key']}/move", json={"column": columns[rng.choice(STATUSES)]}))
        for i in ob_delete:
            opsboard.ok(http.delete(f"/items/{by_ref[str(i)]['key']}"))
        new_items = [opsboard.ok(http.post("/items", json={
            "board": BOARD, "type": "task", "title": text(rng, 5) + " (new)", "labels": ["neu"]}))["key"]
            for _ in range(EDITS)]
        merged = {}
        for i in merge:  # different fields on each side: both survive
            title = text(rng, 4) + " (JIRA, merged)"
            jira.update(i, {"summary": title})
            opsboard.ok(http.patch(f"/items/{by_ref[str(i)]['key']}", json={"priority": "critical", "labels": ["beide"]}))
            merged[i] = title
        conflicted = {}
        for i in conflict:  # the same field on both sides: opsboard's value wins
            jira.update(i, {"summary": "JIRA loses " + text(rng, 3)})
            title = "opsboard wins " + text(rng, 3)
            opsboard.ok(http.patch(f"/items/{by_ref[str(i)]['key']}", json={"title": title}))
            conflicted[i] = title

        # run 2, killed right after a random JIRA write of it (while it pushes opsboard's
        # changes), run again and killed after a random number of opsboard writes (while it
        # pulls JIRA's), run again to its end; then once more
        runs.append(run_bridge(opsboard, jira, token, state, kill_after_jira_writes=rng.randint(1, 4 * EDITS)))
        runs.append(run_bridge(opsboard, jira, token, state, kill_after_opsboard_events=rng.randint(1, 2 * EDITS)))
        runs.append(run_bridge(opsboard, jira, token, state))
        runs.append(run_bridge(opsboard, jira, token, state))

        # the last run wrote nothing on either side
        last = runs[-1]
        assert last["opsboard_events"] == 0, last
        assert last["jira_writes"] == 0, last
        assert last["bridge"]["opsboard_writes"] == 0 and last["bridge"]["remote_writes"] == 0, last

        # no duplicates: one reference per item, one item per issue
        items = opsboard.items(BOARD)
        issues = jira.snapshot()
        refs = []
        for item in items:
            jira_refs = [r for r in item["external_refs"] if r["system"] == "jira"]
            assert len(jira_refs) == 1, item
            refs.append(jira_refs[0]["key"])
        assert len(refs) == len(set(refs)), "two items name one issue"
        assert sorted(refs) == sorted(str(i) for i in issues), "items and issues differ"
        assert len(items) == ISSUES + ITEMS + 2 * EDITS - 2 * EDITS

        # no losses: every synced field equal on both sides
        item_of = {r: i for r, i in zip(refs, items)}
        for issue_id, issue in issues.items():
            item = item_of[str(issue_id)]
            assert fields_of_item(item) == expected_fields_of_issue(issue), (item["key"], issue["key"])
            assert next(r for r in item["external_refs"] if r["system"] == "jira")["alias"] == issue["key"]

        # the creates arrived, the merges kept both sides' fields, conflicts went to opsboard
        assert all(str(i) in item_of for i in new_issues)
        # counted over the items, not over a set of titles: two random titles may be equal
        assert sum(1 for i in items if i["title"].endswith("(new)")) == EDITS
        assert set(new_items) <= {i["key"] for i in items}  # each with its one reference (above)
        for i, title in merged.items():
            assert item_of[str(i)]["title"] == title and item_of[str(i)]["priority"] == "critical"
        for i, title in conflicted.items():
            assert item_of[str(i)]["title"] == title

        # deletions both ways
        for i in jira_delete:
            assert str(i) not in item_of
            assert http.get(f"/items/by-ref/jira/{i}").status_code == 404
        for i in ob_delete:
            assert i not in issues

        record_figures({
            "bridge": "jira", "engine": opsboard.engine, "seed": SEED, "jira_issues": ISSUES,
            "opsboard_items": ITEMS, "edits_per_kind": EDITS, "final_items": len(items),
            "rate_limited": jira.rate_limited,
            "runs": [{"run": n, **r} for n, r in zip(["1 initial", "2 killed", "2 killed again", "2 restarted",
                                                       "3 last"], runs)],
        })
    finally:
        jira.stop()


def test_a_crash_right_after_a_jira_create_does_not_create_twice(opsboard, tmp_path):
    """The bridge dies after JIRA made the issue and before it heard the new id: the intent it
    recorded first lets the next run find that issue instead of creating another."""
    http = opsboard.http
    opsboard.ok(http.post("/boards", json={
        "key": BOARD, "name": "Mirrored from JIRA", "lead": "admin@example.org",
        "columns": [{"name": s, "category": c} for s, c in zip(STATUSES, ["todo", "in_progress", "done"])]}))
    opsboard.ok(http.post("/users", json={"email": "sync-jira@example.org", "display_name": "JIRA bridge",
                                          "role": "member", "password": "a long unused password"}))
    token = opsboard.ok(http.post("/tokens", json={"name": "JIRA bridge", "scopes": ["read", "write"],
                                                   "origin": "jira-sync", "user": "sync-jira@example.org"}))["secret"]
    keys = [opsboard.ok(http.post("/items", json={"board": BOARD, "type": "task", "title": f"Aufgabe {n}"}))["key"]
            for n in range(5)]
    jira = MockJira(PROJECT, seed=1).start()
    try:
        state = str(tmp_path / "bridge.sqlite")
        killed = run_bridge(opsboard, jira, token, state, kill_after_jira_writes=1)
        assert killed["bridge"] == {"killed": "after 1 JIRA writes"}
        assert len(jira.snapshot()) == 1  # made, but the bridge never heard its id
        again = run_bridge(opsboard, jira, token, state)
        assert again["bridge"]["recovered"] == 1
        assert again["bridge"]["created_remote"] == 4
        issues = jira.snapshot()
        assert sorted(i["fields"]["summary"] for i in issues.values()) == [f"Aufgabe {n}" for n in range(5)]
        refs = sorted(next(r["key"] for r in i["external_refs"] if r["system"] == "jira") for i in opsboard.items(BOARD))
        assert refs == sorted(str(i) for i in issues)
        last = run_bridge(opsboard, jira, token, state)
        assert (last["opsboard_events"], last["jira_writes"]) == (0, 0), last
        assert sorted(opsboard.ok(http.get(f"/items/{k}"))["key"] for k in keys) == sorted(keys)
    finally:
        jira.stop()


def test_the_bridges_own_jira_writes_are_not_mirrored_back(opsboard, tmp_path):
    """A change in JIRA whose changelog names only the bridge's own account is its own write
    coming back: the next run leaves opsboard alone. A person's change is mirrored."""
    http = opsboard.http
    opsboard.ok(http.post("/boards", json={
        "key": BOARD, "name": "Mirrored from JIRA", "lead": "admin@example.org",
        "columns": [{"name": s, "category": c} for s, c in zip(STATUSES, ["todo", "in_progress", "done"])]}))
    opsboard.ok(http.post("/users", json={"email": "sync-jira@example.org", "display_name": "JIRA bridge",
                                          "role": "member", "password": "a long unused password"}))
    token = opsboard.ok(http.post("/tokens", json={"name": "JIRA bridge", "scopes": ["read", "write"],
                                                   "origin": "jira-sync", "user": "sync-jira@example.org"}))["secret"]
    jira = MockJira(PROJECT, seed=1).start()
    try:
        rng = random.Random(1)
        ids = [jira.create(jira_fields(rng))["id"] for _ in range(3)]
        state = str(tmp_path / "bridge.sqlite")
        run_bridge(opsboard, jira, token, state)
        titles = {i["title"] for i in opsboard.items(BOARD)}
        jira.update(ids[0], {"summary": "written by the bridge's account"}, account=jira.accounts[BOT])
        own = run_bridge(opsboard, jira, token, state)
        assert own["bridge"]["skipped_own"] == 1 and own["opsboard_events"] == 0, own
        assert {i["title"] for i in opsboard.items(BOARD)} == titles
        jira.update(ids[1], {"summary": "written by a person"})
        person = run_bridge(opsboard, jira, token, state)
        assert person["bridge"]["updated_in_opsboard"] == 1 and person["opsboard_events"] == 1, person
        assert "written by a person" in {i["title"] for i in opsboard.items(BOARD)}
    finally:
        jira.stop()
