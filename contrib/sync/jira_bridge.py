#!/usr/bin/env python3
"""Two-way sync of one JIRA project (Cloud, REST API v3) with one opsboard board.

An example to adapt, tested in CI against a mock JIRA (tests/mock_jira.py). One run:

1. **Recover** what a crash may have left half done: JIRA creates whose intent was recorded but
   whose issue id was not (found again by the opsboard key the create wrote into a custom
   field), and links whose opsboard item does not carry its JIRA reference yet.
2. **opsboard -> JIRA**: the changes feed after the saved cursor, without the bridge's own
   writes (`exclude_origin` = its token's origin); for each item named there, its current state
   is compared with the state both sides had when they last agreed (the link's snapshot), and
   only the fields that differ are written to JIRA. A new item is created in JIRA after an
   intent is recorded; a deleted item deletes its issue. The first run (or after a 410
   `cursor-expired`) takes the feed's head and a snapshot of the board instead.
3. **JIRA -> opsboard**: JQL `updated >= watermark - overlap` (JIRA compares to the minute, in
   the searching user's time zone, so the bridge formats the time in that zone) with the
   changelog; an issue whose changes since the last sync were all made by the bridge's own JIRA
   account is not mirrored back; the others are upserted by reference
   (`PUT /items/by-ref/jira/{issue id}`) with `source_updated_at` = JIRA's `updated`, sending
   only the fields that differ from the snapshot.
4. **Census**: JQL search cannot return a deleted issue, so the ids of the project are listed;
   a linked issue that is missing (and answers 404 by id) deletes its item.

Conflicts: when a field changed on both sides between two runs, opsboard's value wins (it is
pushed first); different fields of one item merge. Writes that change nothing are never sent,
so a run after a run writes nothing on either side.

State (feed cursor, watermark, links with their snapshots, intents) lives in a local SQLite
file; every step commits as it goes, so the bridge may be killed at any point and run again.

Fields synced: summary <-> title, description (Atlassian Document Format <-> text), priority,
labels, due date, status <-> column (by name, see --status). Items of type task only.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import logging
import os
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator
from zoneinfo import ZoneInfo

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "build" / "opsboard-client"))

from opsboard_client import AuthenticatedClient  # noqa: E402
from opsboard_client.api.boards import get_board  # noqa: E402
from opsboard_client.api.changes import changes_head, list_changes  # noqa: E402
from opsboard_client.api.items import (  # noqa: E402
    delete_item_by_ref,
    get_item,
    list_items,
    put_item_by_ref,
    update_item,
)
from opsboard_client.models import ExternalRef, ItemChanges, ItemType, ItemUpsert, Priority  # noqa: E402
from opsboard_client.types import UNSET, Response  # noqa: E402

log = logging.getLogger("jira_bridge")

SYSTEM = "jira"
FIELDS = ("title", "description", "priority", "labels", "due_date", "status")
# JIRA priority name <-> opsboard priority
PRIORITY_FROM_JIRA = {"Highest": "critical", "High": "high", "Medium": "medium", "Low": "low", "Lowest": "low"}
PRIORITY_TO_JIRA = {"critical": "Highest", "high": "High", "medium": "Medium", "low": "Low"}


class BridgeError(Exception):
    pass


# --- state ---------------------------------------------------------------------------------

class State:
    """The bridge's memory, in SQLite: committed after every step."""

    def __init__(self, path: str):
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
            -- one row per pair: the opsboard item and the JIRA issue, and the fields as both
            -- sides last agreed on them
            CREATE TABLE IF NOT EXISTS links (
                issue_id TEXT PRIMARY KEY,
                issue_key TEXT NOT NULL,
                item_key TEXT NOT NULL UNIQUE,
                snapshot TEXT NOT NULL,
                jira_updated TEXT,
                ref_attached INTEGER NOT NULL DEFAULT 0,
                deleted INTEGER NOT NULL DEFAULT 0
            );
            -- a JIRA create about to be sent: found again after a crash by the item's key
            CREATE TABLE IF NOT EXISTS intents (item_key TEXT PRIMARY KEY, at TEXT NOT NULL);
            """
        )

    def get(self, k: str) -> str | None:
        row = self.db.execute("SELECT v FROM meta WHERE k = ?", (k,)).fetchone()
        return row[0] if row else None

    def put(self, k: str, v: str) -> None:
        self.db.execute("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", (k, v))

    def link_by_issue(self, issue_id: str) -> dict | None:
        return self._link("issue_id", issue_id)

    def link_by_item(self, item_key: str) -> dict | None:
        return self._link("item_key", item_key)

    def _link(self, col: str, value: str) -> dict | None:
        row = self.db.execute(
            f"SELECT issue_id, issue_key, item_key, snapshot, jira_updated, ref_attached, deleted FROM links WHERE {col} = ?",
            (value,),
        ).fetchone()
        if not row:
            return None
        return {
            "issue_id": row[0], "issue_key": row[1], "item_key": row[2], "snapshot": json.loads(row[3]),
            "jira_updated": row[4], "ref_attached": bool(row[5]), "deleted": bool(row[6]),
        }

    def live_links(self) -> list[dict]:
        rows = self.db.execute("SELECT issue_id FROM links WHERE deleted = 0").fetchall()
        return [self.link_by_issue(r[0]) for r in rows]

    def save_link(self, link: dict) -> None:
        self.db.execute(
            """INSERT INTO links (issue_id, issue_key, item_key, snapshot, jira_updated, ref_attached, deleted)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (issue_id) DO UPDATE SET issue_key = excluded.issue_key, item_key = excluded.item_key,
                 snapshot = excluded.snapshot, jira_updated = excluded.jira_updated,
                 ref_attached = excluded.ref_attached, deleted = excluded.deleted""",
            (link["issue_id"], link["issue_key"], link["item_key"], json.dumps(link["snapshot"], sort_keys=True),
             link.get("jira_updated"), int(link.get("ref_attached", False)), int(link.get("deleted", False))),
        )

    def intents(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT item_key FROM intents ORDER BY item_key")]


# --- JIRA ----------------------------------------------------------------------------------

class Jira:
    """JIRA Cloud REST API v3 over httpx, with Basic auth (e-mail and API token) and 429 handling."""

    def __init__(self, url: str, email: str, token: str, stats: "Stats"):
        auth = base64.b64encode(f"{email}:{token}".encode()).decode()
        self.http = httpx.Client(
            base_url=url.rstrip("/"), timeout=30.0,
            headers={"Authorization": f"Basic {auth}", "Accept": "application/json"},
        )
        self.stats = stats

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        for attempt in range(20):
            r = self.http.request(method, path, **kw)
            if r.status_code in (429, 503):
                wait = _retry_after(r.headers.get("Retry-After"), attempt)
                self.stats.jira_retries += 1
                log.info("JIRA answered %s; waiting %.1f s as Retry-After says", r.status_code, wait)
                time.sleep(wait)
                continue
            if method != "GET" and r.status_code < 300:
                self.stats.jira_writes += 1
            return r
        raise BridgeError(f"JIRA kept answering {r.status_code} to {method} {path}")

    def ok(self, r: httpx.Response) -> httpx.Response:
        if r.status_code >= 400:
            raise BridgeError(f"JIRA {r.request.method} {r.request.url.path}: {r.status_code} {r.text[:500]}")
        return r

    def myself(self) -> dict:
        return self.ok(self.request("GET", "/rest/api/3/myself")).json()

    def search(self, jql: str, fields: list[str], expand: str = "", page_size: int = 100) -> Iterator[dict]:
        token = None
        while True:
            params: dict[str, Any] = {"jql": jql, "fields": ",".join(fields), "maxResults": page_size}
            if expand:
                params["expand"] = expand
            if token:
                params["nextPageToken"] = token
            page = self.ok(self.request("GET", "/rest/api/3/search/jql", params=params)).json()
            yield from page.get("issues", [])
            token = page.get("nextPageToken")
            if not token or page.get("isLast"):
                return


def _retry_after(value: str | None, attempt: int) -> float:
    try:
        return max(0.0, float(value)) if value is not None else min(30.0, 2 ** attempt)
    except ValueError:
        return min(30.0, 2 ** attempt)


# --- mapping -------------------------------------------------------------------------------

def adf_to_text(doc: dict | None) -> str:
    """Atlassian Document Format to text: paragraphs become lines (enough for this example)."""
    if not doc:
        return ""
    lines = []
    for block in doc.get("content", []):
        lines.append("".join(node.get("text", "") for node in block.get("content", []) if node.get("type") == "text"))
    return "\n".join(lines)


def text_to_adf(text: str) -> dict | None:
    if not text:
        return None
    return {
        "type": "doc", "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": line}] if line else []}
                    for line in text.split("\n")],
    }


def parse_jira_time(value: str) -> dt.datetime:
    """2026-02-02T09:00:00.000+0100 -> an aware datetime."""
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def fields_of_issue(issue: dict) -> dict:
    f = issue["fields"]
    return {
        "title": f.get("summary") or "",
        "description": adf_to_text(f.get("description")),
        "priority": PRIORITY_FROM_JIRA.get((f.get("priority") or {}).get("name"), "medium"),
        "labels": sorted(f.get("labels") or []),
        "due_date": f.get("duedate"),
        "status": (f.get("status") or {}).get("name"),
    }


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    jira_writes: int = 0
    opsboard_writes: int = 0
    jira_retries: int = 0
    created_in_jira: int = 0
    created_in_opsboard: int = 0
    updated_in_jira: int = 0
    updated_in_opsboard: int = 0
    deleted_in_jira: int = 0
    deleted_in_opsboard: int = 0
    skipped_own: int = 0
    recovered: int = 0

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "started"}
        d["seconds"] = round(time.monotonic() - self.started, 2)
        return d


# --- the bridge ----------------------------------------------------------------------------

class Bridge:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.stats = Stats()
        self.state = State(args.state)
        self.jira = Jira(args.jira_url, args.jira_email, args.jira_token, self.stats)
        self.ob = AuthenticatedClient(base_url=args.opsboard_url.rstrip("/"), token=args.opsboard_token, timeout=60.0)
        self.board = args.board
        self.project = args.project
        self.origin = args.origin
        self.ref_field = args.ref_field
        self.ref_cf = self.ref_field.removeprefix("customfield_")
        # JIRA status <-> opsboard column name
        self.status_to_column_name = dict(pair.split("=", 1) for pair in args.status)
        self.column_name_to_status = {v: k for k, v in self.status_to_column_name.items()}
        self.columns: dict[str, int] = {}
        self.me: dict = {}

    # opsboard calls through the generated client, with 503 + Retry-After handled
    def call(self, fn: Callable[..., Response], *a, write: bool = False, **kw) -> Response:
        for attempt in range(10):
            r = fn(*a, client=self.ob, **kw)
            if r.status_code == 503:
                time.sleep(_retry_after(r.headers.get("Retry-After"), attempt))
                continue
            if write and r.status_code < 300:
                self.stats.opsboard_writes += 1
            return r
        raise BridgeError(f"opsboard kept answering 503 to {fn.__module__}")

    def expect(self, r: Response, *ok: int) -> Any:
        if r.status_code not in ok:
            raise BridgeError(f"opsboard answered {r.status_code}: {r.content[:500]!r}")
        return r.parsed

    # --- opsboard helpers --------------------------------------------------------------

    def load_columns(self) -> None:
        board = self.expect(self.call(get_board.sync_detailed, self.board), 200)
        self.columns = {c.name: c.id for c in board.columns}
        for status, name in self.status_to_column_name.items():
            if name not in self.columns:
                raise BridgeError(f"--status {status}={name}: the board {self.board} has no column {name!r}")

    def fields_of_item(self, item: dict) -> dict:
        return {
            "title": item["title"],
            "description": item.get("description") or "",
            "priority": item["priority"],
            "labels": sorted(item.get("labels") or []),
            "due_date": item.get("due_date"),
            "status": self.column_name_to_status.get(item["column"]["name"]),
        }

    def item(self, key: str) -> dict | None:
        r = self.call(get_item.sync_detailed, key)
        if r.status_code == 404:
            return None
        return self.expect(r, 200).to_dict()

    def board_items(self, include_deleted: bool) -> Iterator[dict]:
        cursor = UNSET
        while True:
            r = self.call(list_items.sync_detailed, board=self.board, include_deleted=include_deleted,
                          limit=200, cursor=cursor, type_=[ItemType.TASK])
            page = self.expect(r, 200)
            for it in page.items:
                yield it.to_dict()
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def jira_ref(self, item: dict) -> dict | None:
        return next((r for r in item.get("external_refs") or [] if r["system"] == SYSTEM), None)

    def attach_ref(self, link: dict) -> None:
        """Writes the JIRA reference onto the opsboard item (kept with the others it has)."""
        item = self.item(link["item_key"])
        if item is None:
            return
        refs = [r for r in item.get("external_refs") or [] if r["system"] != SYSTEM]
        ref = self.jira_ref(item)
        want = {"system": SYSTEM, "key": link["issue_id"], "alias": link["issue_key"],
                "url": f"{self.args.jira_url.rstrip('/')}/browse/{link['issue_key']}"}
        if ref is None or ref["key"] != want["key"] or ref.get("alias") != want["alias"]:
            refs.append(want)
            body = ItemChanges(external_refs=[ExternalRef.from_dict(x) for x in refs])
            r = self.call(update_item.sync_detailed, link["item_key"], body=body,
                          if_match=f'"{item["version"]}"', write=True)
            if r.status_code == 412:  # changed meanwhile: once more with the new version
                return self.attach_ref(link)
            self.expect(r, 200)
        link["ref_attached"] = True
        self.state.save_link(link)

    # --- JIRA helpers ------------------------------------------------------------------

    def jira_fields(self, values: dict) -> dict:
        out: dict[str, Any] = {}
        if "title" in values:
            out["summary"] = values["title"]
        if "description" in values:
            out["description"] = text_to_adf(values["description"])
        if "priority" in values:
            out["priority"] = {"name": PRIORITY_TO_JIRA[values["priority"]]}
        if "labels" in values:
            out["labels"] = values["labels"]
        if "due_date" in values:
            out["duedate"] = values["due_date"]
        return out

    def transition(self, issue_id: str, status: str) -> None:
        r = self.jira.ok(self.jira.request("GET", f"/rest/api/3/issue/{issue_id}/transitions"))
        t = next((t for t in r.json()["transitions"] if t["to"]["name"] == status), None)
        if t is None:
            raise BridgeError(f"JIRA issue {issue_id}: no transition to {status!r}")
        self.jira.ok(self.jira.request("POST", f"/rest/api/3/issue/{issue_id}/transitions",
                                       json={"transition": {"id": t["id"]}}))

    def search_fields(self) -> list[str]:
        return ["summary", "description", "priority", "labels", "duedate", "status", "updated",
                "issuetype", self.ref_field]

    # --- 1. recovery -------------------------------------------------------------------

    def recover(self) -> None:
        for item_key in self.state.intents():
            hits = list(self.jira.search(
                f'project = {self.project} AND cf[{self.ref_cf}] ~ "{item_key}"', self.search_fields()))
            hits = [h for h in hits if (h["fields"].get(self.ref_field) or "") == item_key]
            with self.state.db:
                if hits:
                    issue = hits[0]
                    log.info("recovered the JIRA create of %s: %s", item_key, issue["key"])
                    self.state.save_link({
                        "issue_id": issue["id"], "issue_key": issue["key"], "item_key": item_key,
                        "snapshot": fields_of_issue(issue), "jira_updated": issue["fields"]["updated"],
                    })
                    self.stats.recovered += 1
                self.state.db.execute("DELETE FROM intents WHERE item_key = ?", (item_key,))
        for row in self.state.db.execute("SELECT issue_id FROM links WHERE ref_attached = 0 AND deleted = 0").fetchall():
            self.attach_ref(self.state.link_by_issue(row[0]))

    # --- 2. opsboard -> JIRA -----------------------------------------------------------

    def push(self) -> None:
        cursor = self.state.get("cursor")
        if cursor is None:
            self.push_snapshot()
            return
        while True:
            r = self.call(list_changes.sync_detailed, after=cursor, board=self.board,
                          exclude_origin=[self.origin], limit=500)
            if r.status_code == 410:
                log.warning("the feed cursor expired: starting again from a snapshot")
                self.push_snapshot()
                return
            page = self.expect(r, 200)
            keys: dict[str, bool] = {}  # item key -> deleted
            for ev in page.items:
                key = ev.entity_key or (ev.item.key if ev.item else None)
                if ev.entity_type.value != "item" or not key:
                    continue
                keys[key] = keys.get(key, False) or ev.kind == "deleted"
            for key, deleted in keys.items():
                self.push_item(key, None if deleted else self.item(key))
            cursor = page.next_cursor
            self.state.put("cursor", cursor)
            if not page.has_more:
                return

    def push_snapshot(self) -> None:
        """First run (or an expired cursor): the head, then every item of the board."""
        head = self.expect(self.call(changes_head.sync_detailed), 200)
        for item in self.board_items(include_deleted=True):
            self.push_item(item["key"], None if item.get("deleted_at") else item)
        self.state.put("cursor", head.cursor)

    def push_item(self, key: str, item: dict | None) -> None:
        link = self.state.link_by_item(key)
        if item is None:  # deleted in opsboard
            if link and not link["deleted"]:
                r = self.jira.request("DELETE", f"/rest/api/3/issue/{link['issue_id']}")
                if r.status_code not in (204, 404):
                    self.jira.ok(r)
                link["deleted"] = True
                self.state.save_link(link)
                self.stats.deleted_in_jira += 1
            return
        if item["type"] != "task" or item["board"] != self.board:
            return
        if link is None:
            ref = self.jira_ref(item)
            if ref is not None:
                link = self.adopt(item, ref)
                if link is None:
                    return
            else:
                self.create_in_jira(item)
                return
        if link["deleted"]:
            return
        now = self.fields_of_item(item)
        changed = {f: v for f, v in now.items() if v != link["snapshot"].get(f) and not (f == "status" and v is None)}
        if not changed:
            return
        fields = self.jira_fields(changed)
        if fields:
            r = self.jira.request("PUT", f"/rest/api/3/issue/{link['issue_id']}", json={"fields": fields})
            if r.status_code == 404:
                return self.issue_gone(link)
            self.jira.ok(r)
        if "status" in changed:
            self.transition(link["issue_id"], changed["status"])
        link["snapshot"].update(changed)
        self.state.save_link(link)
        self.stats.updated_in_jira += 1

    def adopt(self, item: dict, ref: dict) -> dict | None:
        """An item that names a JIRA issue the bridge has no link for (say, imported)."""
        r = self.jira.request("GET", f"/rest/api/3/issue/{ref['key']}", params={"fields": ",".join(self.search_fields())})
        if r.status_code == 404:
            return None
        issue = self.jira.ok(r).json()
        link = {"issue_id": issue["id"], "issue_key": issue["key"], "item_key": item["key"],
                "snapshot": fields_of_issue(issue), "jira_updated": issue["fields"]["updated"], "ref_attached": True}
        self.state.save_link(link)
        return link

    def create_in_jira(self, item: dict) -> None:
        values = self.fields_of_item(item)
        with self.state.db:
            self.state.db.execute("INSERT OR REPLACE INTO intents (item_key, at) VALUES (?, ?)",
                                  (item["key"], iso(dt.datetime.now(dt.timezone.utc))))
        fields = {k: v for k, v in self.jira_fields(values).items() if v is not None}
        fields.update({"project": {"key": self.project}, "issuetype": {"name": "Task"}, self.ref_field: item["key"]})
        created = self.jira.ok(self.jira.request("POST", "/rest/api/3/issue", json={"fields": fields})).json()
        snapshot = dict(values, status=self.args.initial_status)
        link = {"issue_id": created["id"], "issue_key": created["key"], "item_key": item["key"], "snapshot": snapshot}
        with self.state.db:
            self.state.save_link(link)
            self.state.db.execute("DELETE FROM intents WHERE item_key = ?", (item["key"],))
        self.stats.created_in_jira += 1
        if values["status"] and values["status"] != self.args.initial_status:
            self.transition(created["id"], values["status"])
            link["snapshot"]["status"] = values["status"]
            self.state.save_link(link)
        self.attach_ref(link)

    def issue_gone(self, link: dict) -> None:
        r = self.call(delete_item_by_ref.sync_detailed, SYSTEM, link["issue_id"], write=True)
        if r.status_code not in (204, 404):
            self.expect(r, 204)
        link["deleted"] = True
        self.state.save_link(link)
        self.stats.deleted_in_opsboard += 1

    # --- 3. JIRA -> opsboard -----------------------------------------------------------

    def pull(self) -> None:
        tz = ZoneInfo(self.me.get("timeZone") or "UTC")
        started = dt.datetime.now(dt.timezone.utc)
        jql = f"project = {self.project}"
        watermark = self.state.get("watermark")
        if watermark:
            since = dt.datetime.fromisoformat(watermark) - dt.timedelta(minutes=self.args.overlap_minutes)
            # JIRA reads this in the searching user's time zone, to the minute
            jql += f' AND updated >= "{since.astimezone(tz).strftime("%Y-%m-%d %H:%M")}"'
        jql += " ORDER BY id ASC"
        for issue in self.jira.search(jql, self.search_fields(), expand="changelog"):
            self.pull_issue(issue)
        self.state.put("watermark", started.isoformat())

    def own_changes_only(self, issue: dict, since: str | None) -> bool:
        if since is None:
            return False
        since_t = parse_jira_time(since)
        newer = [h for h in (issue.get("changelog") or {}).get("histories", [])
                 if parse_jira_time(h["created"]) > since_t]
        return bool(newer) and all(h["author"]["accountId"] == self.me["accountId"] for h in newer)

    def pull_issue(self, issue: dict) -> None:
        if (issue["fields"].get("issuetype") or {}).get("name", "Task") != "Task":
            return
        now = fields_of_issue(issue)
        updated = issue["fields"]["updated"]
        link = self.state.link_by_issue(issue["id"])
        if link is not None and link["deleted"]:
            return
        if link is not None:
            changed = {f: v for f, v in now.items() if v != link["snapshot"].get(f)}
            if not changed:
                if link.get("jira_updated") != updated:
                    link["jira_updated"] = updated
                    self.state.save_link(link)
                return
            if self.own_changes_only(issue, link.get("jira_updated")):
                # the bridge's own write coming back: never mirrored
                self.stats.skipped_own += 1
                link["jira_updated"] = updated
                self.state.save_link(link)
                return
            body = self.upsert_body(issue, changed, create=False)
            r = self.call(put_item_by_ref.sync_detailed, SYSTEM, issue["id"], body=body, write=True)
            if r.status_code == 409 and b"stale-source" in r.content:
                return
            if r.status_code == 409 and b"item-deleted" in r.content:
                return  # the next feed read deletes the issue
            self.expect(r, 200, 201)
            link["snapshot"].update(changed)
            link["jira_updated"] = updated
            link["issue_key"] = issue["key"]
            self.state.save_link(link)
            self.stats.updated_in_opsboard += 1
            return
        # a new issue (or one whose item was made by a crashed run: the intent recovery
        # linked those already)
        body = self.upsert_body(issue, now, create=True)
        r = self.call(put_item_by_ref.sync_detailed, SYSTEM, issue["id"], body=body, write=True)
        if r.status_code == 409 and b"item-deleted" in r.content:
            # its item was deleted in opsboard: delete the issue too
            self.jira.request("DELETE", f"/rest/api/3/issue/{issue['id']}")
            self.stats.deleted_in_jira += 1
            return
        item = self.expect(r, 200, 201).to_dict()
        self.state.save_link({
            "issue_id": issue["id"], "issue_key": issue["key"], "item_key": item["key"],
            "snapshot": now, "jira_updated": updated, "ref_attached": True,
        })
        if r.status_code == 201:
            self.stats.created_in_opsboard += 1
        else:
            self.stats.updated_in_opsboard += 1

    def upsert_body(self, issue: dict, values: dict, create: bool) -> ItemUpsert:
        body: dict[str, Any] = {
            "alias": issue["key"],
            "source_updated_at": iso(parse_jira_time(issue["fields"]["updated"])),
        }
        if create:
            body.update({"board": self.board, "type": "task",
                         "url": f"{self.args.jira_url.rstrip('/')}/browse/{issue['key']}"})
        for f in ("title", "description", "priority", "labels", "due_date"):
            if f in values:
                body[f] = values[f]
        if "status" in values and values["status"] in self.status_to_column_name:
            body["column"] = self.columns[self.status_to_column_name[values["status"]]]
        if create and not body.get("title"):
            body["title"] = issue["key"]
        return ItemUpsert.from_dict(body)

    # --- 4. census ---------------------------------------------------------------------

    def census(self) -> None:
        ids = {i["id"] for i in self.jira.search(f"project = {self.project} ORDER BY id ASC", ["id"], page_size=5000)}
        for link in self.state.live_links():
            if link["issue_id"] in ids:
                continue
            r = self.jira.request("GET", f"/rest/api/3/issue/{link['issue_id']}", params={"fields": "id"})
            if r.status_code == 404:  # deleted (not only moved to another project)
                self.issue_gone(link)

    # --- a run ---------------------------------------------------------------------------

    def run_once(self) -> dict:
        self.me = self.jira.myself()
        self.load_columns()
        self.recover()
        self.push()
        self.pull()
        self.census()
        return self.stats.as_dict()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    env = os.environ.get
    p.add_argument("--opsboard-url", default=env("OPSBOARD_URL", "http://127.0.0.1:8080"))
    p.add_argument("--opsboard-token", default=env("OPSBOARD_TOKEN"), help="an API token (opb_…) with read and write; env OPSBOARD_TOKEN")
    p.add_argument("--origin", default=env("OPSBOARD_ORIGIN", "jira-sync"), help="the token's origin (its writes are left out of the feed it reads)")
    p.add_argument("--board", required=True)
    p.add_argument("--jira-url", default=env("JIRA_URL"))
    p.add_argument("--jira-email", default=env("JIRA_EMAIL"), help="the bridge's own JIRA account")
    p.add_argument("--jira-token", default=env("JIRA_TOKEN"), help="its API token; env JIRA_TOKEN")
    p.add_argument("--project", required=True, help="the JIRA project key")
    p.add_argument("--state", default="jira-bridge.sqlite", help="the bridge's state file")
    p.add_argument("--status", action="append", default=[], metavar="JIRA_STATUS=COLUMN",
                   help="maps a JIRA status to a column of the board (repeat); by default each to the column of its name")
    p.add_argument("--initial-status", default="To Do", help="the status JIRA gives a new issue")
    p.add_argument("--ref-field", default="customfield_10100",
                   help="a JIRA text field where a create writes the item's key, to find it again after a crash")
    p.add_argument("--overlap-minutes", type=float, default=2.0)
    p.add_argument("--interval", type=float, default=0, help="seconds between runs; 0 runs once")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    for name in ("opsboard_token", "jira_url", "jira_email", "jira_token"):
        if not getattr(args, name):
            p.error(f"--{name.replace('_', '-')} is required")
    if not args.status:
        args.status = ["To Do=To Do", "In Progress=In Progress", "Done=Done"]
    while True:
        stats = Bridge(args).run_once()
        print(json.dumps(stats), flush=True)
        if not args.interval:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
