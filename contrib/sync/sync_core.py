"""The part of a two-way bridge that does not depend on the other system: opsboard through the
client generated from openapi/openapi.json, the bridge's state in SQLite, and one run of the
sync. jira_bridge.py and openproject_bridge.py give it a `Remote` each.

One run:

1. **Recover** what a crash may have left half done: remote creates whose intent was recorded
   but whose new id was not (found again by the opsboard key the create wrote into the remote
   issue), and links whose opsboard item does not carry its reference yet.
2. **opsboard -> remote**: the changes feed after the saved cursor, without the bridge's own
   writes (`exclude_origin` = its token's origin); for each item named there, its current state
   is compared with the state both sides had when they last agreed (the link's snapshot), and
   only the fields that differ are written to the remote. A new item is created there after an
   intent is recorded; a deleted item deletes its issue. The first run (or after a 410
   `cursor-expired`) takes the feed's head and then a snapshot of the board instead.
3. **remote -> opsboard**: the issues changed since the watermark minus an overlap; an issue
   whose changes were all made by the bridge's own account is not mirrored back; the others are
   upserted by reference (`PUT /items/by-ref/{system}/{id}`) with `source_updated_at` = the
   remote's own time of that state, sending only the fields that differ from the snapshot.
4. **Census**: an incremental search never returns a deleted issue, so all ids are listed; a
   linked issue that is missing (and answers 404 by id) deletes its item.

Conflicts: when one field changed on both sides between two runs, opsboard's value wins (it is
pushed first); different fields of one item merge. A write that changes nothing is never sent,
so a run right after a run writes nothing on either side. Every step commits its state as it
goes, so the bridge may be killed at any point and started again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "build" / "opsboard-client"))

from opsboard_client import AuthenticatedClient  # noqa: E402
from opsboard_client.api.boards import get_board  # noqa: E402
from opsboard_client.api.changes import changes_head, list_changes  # noqa: E402
from opsboard_client.api.tokens import list_tokens  # noqa: E402
from opsboard_client.api.items import (  # noqa: E402
    delete_item_by_ref,
    get_item,
    list_items,
    put_item_by_ref,
    update_item,
)
from opsboard_client.models import ExternalRef, ItemChanges, ItemType, ItemUpsert  # noqa: E402
from opsboard_client.types import UNSET, Response  # noqa: E402

log = logging.getLogger("bridge")

# The fields a bridge may sync, in opsboard's terms; `status` is the remote's status name,
# which maps to a column of the board.
ALL_FIELDS = ("title", "description", "priority", "labels", "due_date", "status")


class BridgeError(Exception):
    pass


def retry_after(value: str | None, attempt: int) -> float:
    """Seconds to wait for a Retry-After header (seconds), or a backoff when there is none."""
    try:
        return max(0.0, float(value)) if value is not None else min(30.0, 2 ** attempt)
    except ValueError:
        return min(30.0, 2 ** attempt)


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class Stats:
    """What one run did; printed as JSON at its end."""

    started: float = field(default_factory=time.monotonic)
    remote_writes: int = 0
    opsboard_writes: int = 0
    remote_retries: int = 0
    created_remote: int = 0
    created_in_opsboard: int = 0
    updated_remote: int = 0
    updated_in_opsboard: int = 0
    deleted_remote: int = 0
    deleted_in_opsboard: int = 0
    skipped_own: int = 0
    conflicts: int = 0
    recovered: int = 0

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "started"}
        d["seconds"] = round(time.monotonic() - self.started, 2)
        return d


class State:
    """The bridge's memory, in SQLite, committed after every step."""

    def __init__(self, path: str):
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
            -- one row per pair: the opsboard item, the remote issue, and the fields as both
            -- sides last agreed on them
            CREATE TABLE IF NOT EXISTS links (
                issue_id TEXT PRIMARY KEY,
                issue_key TEXT NOT NULL,
                item_key TEXT NOT NULL UNIQUE,
                snapshot TEXT NOT NULL,
                remote_updated TEXT,
                ref_attached INTEGER NOT NULL DEFAULT 0,
                deleted INTEGER NOT NULL DEFAULT 0
            );
            -- a remote create about to be sent: found again after a crash by the item's key
            CREATE TABLE IF NOT EXISTS intents (item_key TEXT PRIMARY KEY, at TEXT NOT NULL);
            """
        )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Statements that commit together or not at all (the connection autocommits otherwise)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

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
            "SELECT issue_id, issue_key, item_key, snapshot, remote_updated, ref_attached, deleted"
            f" FROM links WHERE {col} = ?",
            (value,),
        ).fetchone()
        if not row:
            return None
        return {
            "issue_id": row[0], "issue_key": row[1], "item_key": row[2], "snapshot": json.loads(row[3]),
            "remote_updated": row[4], "ref_attached": bool(row[5]), "deleted": bool(row[6]),
        }

    def live_links(self) -> list[dict]:
        rows = self.db.execute("SELECT issue_id FROM links WHERE deleted = 0").fetchall()
        return [self.link_by_issue(r[0]) for r in rows]

    def save_link(self, link: dict) -> None:
        self.db.execute(
            """INSERT INTO links (issue_id, issue_key, item_key, snapshot, remote_updated, ref_attached, deleted)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (issue_id) DO UPDATE SET issue_key = excluded.issue_key, item_key = excluded.item_key,
                 snapshot = excluded.snapshot, remote_updated = excluded.remote_updated,
                 ref_attached = excluded.ref_attached, deleted = excluded.deleted""",
            (link["issue_id"], link["issue_key"], link["item_key"], json.dumps(link["snapshot"], sort_keys=True),
             link.get("remote_updated"), int(link.get("ref_attached", False)), int(link.get("deleted", False))),
        )

    def intents(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT item_key FROM intents ORDER BY item_key")]


class Remote:
    """What a bridge needs of the other system. An issue is the remote's own JSON."""

    system = "remote"  # the opsboard reference system: jira, openproject
    synced_fields: tuple[str, ...] = ALL_FIELDS  # the fields it syncs
    initial_status = ""  # the status a new issue gets

    def start(self) -> None:
        """Called at the start of a run (who am I, which time zone, ...)."""

    def issue_id(self, issue: dict) -> str:
        raise NotImplementedError

    def issue_key(self, issue: dict) -> str:
        """The human key, the reference's alias."""
        raise NotImplementedError

    def issue_url(self, issue_key: str) -> str | None:
        return None

    def updated(self, issue: dict) -> str:
        """The remote's own time of this state, as the remote writes it."""
        raise NotImplementedError

    def updated_utc(self, issue: dict) -> dt.datetime:
        raise NotImplementedError

    def values(self, issue: dict) -> dict:
        """The synced fields of an issue, in opsboard's terms."""
        raise NotImplementedError

    def changed_since(self, watermark: dt.datetime | None) -> Iterator[dict]:
        """Every issue changed since the watermark (all of them without one); may return more."""
        raise NotImplementedError

    def all_ids(self) -> set[str]:
        raise NotImplementedError

    def get(self, issue_id: str) -> dict | None:
        """The issue, or None when it does not exist (any more)."""
        raise NotImplementedError

    def find_created(self, item_key: str) -> dict | None:
        """The issue a create for this item made, if one did."""
        raise NotImplementedError

    def create(self, item_key: str, values: dict) -> dict:
        """Creates the issue (writing item_key where find_created finds it); returns it."""
        raise NotImplementedError

    def update(self, issue_id: str, changed: dict, snapshot: dict) -> bool:
        """Writes the changed fields; False when the issue is gone."""
        raise NotImplementedError

    def delete(self, issue_id: str) -> None:
        raise NotImplementedError

    def own_changes_only(self, issue: dict, since: str | None) -> bool:
        """Whether every change since `since` was made by the bridge's own account."""
        return False


class Bridge:
    def __init__(self, remote: Remote, *, opsboard_url: str, opsboard_token: str, origin: str | None, board: str,
                 state_path: str, status_to_column: dict[str, str], overlap: dt.timedelta, stats: Stats):
        self.remote = remote
        self.system = remote.system
        self.stats = stats
        self.state = State(state_path)
        self.ob = AuthenticatedClient(base_url=opsboard_url.rstrip("/"), token=opsboard_token, timeout=60.0)
        self.secret = opsboard_token
        self.board = board
        self.origin = origin
        self.status_to_column_name = status_to_column
        self.column_name_to_status = {v: k for k, v in status_to_column.items()}
        self.overlap = overlap
        self.columns: dict[str, int] = {}

    # --- opsboard, through the generated client ------------------------------------------

    def call(self, fn: Callable[..., Response], *a, write: bool = False, **kw) -> Response:
        """One call, waiting out 503 + Retry-After; counts successful writes."""
        for attempt in range(10):
            r = fn(*a, client=self.ob, **kw)
            if r.status_code == 503:
                time.sleep(retry_after(r.headers.get("Retry-After"), attempt))
                continue
            if write and r.status_code < 300:
                self.stats.opsboard_writes += 1
            return r
        raise BridgeError(f"opsboard kept answering 503 to {fn.__module__}")

    def expect(self, r: Response, *ok: int) -> Any:
        if r.status_code not in ok:
            raise BridgeError(f"opsboard answered {r.status_code}: {r.content[:500]!r}")
        return r.parsed

    def check_origin(self) -> None:
        """The origin the token's writes record, which the feed must leave out: without one,
        the bridge would read its own writes back. Taken from the token (`GET /tokens` lists
        the caller's own, each with the first characters of its secret); a given --origin must
        match it."""
        r = self.call(list_tokens.sync_detailed, limit=200)
        if r.status_code != 200:
            if self.origin is None:
                raise BridgeError(f"cannot read the token's origin ({r.status_code}): give --origin")
            return
        mine = [t for t in r.parsed.items if t.active and self.secret.startswith(t.prefix)]
        if len(mine) != 1:
            if self.origin is None:
                raise BridgeError("cannot tell which token is the bridge's: give --origin")
            return
        origin = mine[0].origin if isinstance(mine[0].origin, str) else None
        if origin is None:
            raise BridgeError(f"the token {mine[0].name!r} has no origin: make the bridge one with an origin "
                              "(POST /api/v1/tokens with \"origin\"), or its writes come back through the feed")
        if self.origin is not None and self.origin != origin:
            raise BridgeError(f"--origin {self.origin} is not the token's origin ({origin})")
        self.origin = origin

    def load_columns(self) -> None:
        board = self.expect(self.call(get_board.sync_detailed, self.board), 200)
        self.columns = {c.name: c.id for c in board.columns}
        for status, name in self.status_to_column_name.items():
            if name not in self.columns:
                raise BridgeError(f"status {status} maps to {name!r}, which is no column of {self.board}")

    def values_of_item(self, item: dict) -> dict:
        values = {
            "title": item["title"],
            "description": item.get("description") or "",
            "priority": item["priority"],
            "labels": sorted(item.get("labels") or []),
            "due_date": item.get("due_date"),
            "status": self.column_name_to_status.get(item["column"]["name"]),
        }
        return {f: values[f] for f in self.remote.synced_fields}

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

    def ref_of(self, item: dict) -> dict | None:
        return next((r for r in item.get("external_refs") or [] if r["system"] == self.system), None)

    def attach_ref(self, link: dict) -> None:
        """Writes the reference onto the opsboard item (kept with the others it has)."""
        item = self.item(link["item_key"])
        if item is None:
            return
        ref = self.ref_of(item)
        if ref is None or ref["key"] != link["issue_id"] or ref.get("alias") != link["issue_key"]:
            refs = [r for r in item.get("external_refs") or [] if r["system"] != self.system]
            want = {"system": self.system, "key": link["issue_id"], "alias": link["issue_key"]}
            url = self.remote.issue_url(link["issue_key"])
            if url:
                want["url"] = url
            refs.append(want)
            body = ItemChanges(external_refs=[ExternalRef.from_dict(x) for x in refs])
            r = self.call(update_item.sync_detailed, link["item_key"], body=body,
                          if_match=f'"{item["version"]}"', write=True)
            if r.status_code == 412:  # changed meanwhile: once more, with the new version
                return self.attach_ref(link)
            self.expect(r, 200)
        link["ref_attached"] = True
        self.state.save_link(link)

    def delete_item(self, link: dict) -> None:
        r = self.call(delete_item_by_ref.sync_detailed, self.system, link["issue_id"], write=True)
        if r.status_code not in (204, 404):
            self.expect(r, 204)
        link["deleted"] = True
        self.state.save_link(link)
        self.stats.deleted_in_opsboard += 1

    def delete_issue(self, link: dict) -> None:
        self.remote.delete(link["issue_id"])
        link["deleted"] = True
        self.state.save_link(link)
        self.stats.deleted_remote += 1

    # --- 1. recovery -------------------------------------------------------------------

    def recover(self) -> None:
        for item_key in self.state.intents():
            issue = self.remote.find_created(item_key)
            with self.state.transaction():
                if issue is not None:
                    log.info("recovered the create of %s: %s", item_key, self.remote.issue_key(issue))
                    self.state.save_link({
                        "issue_id": self.remote.issue_id(issue), "issue_key": self.remote.issue_key(issue),
                        "item_key": item_key, "snapshot": self.remote.values(issue),
                        "remote_updated": self.remote.updated(issue),
                    })
                    self.stats.recovered += 1
                self.state.db.execute("DELETE FROM intents WHERE item_key = ?", (item_key,))
        for row in self.state.db.execute("SELECT issue_id FROM links WHERE ref_attached = 0 AND deleted = 0").fetchall():
            self.attach_ref(self.state.link_by_issue(row[0]))

    # --- 2. opsboard -> remote -----------------------------------------------------------

    def push(self) -> None:
        cursor = self.state.get("cursor")
        if cursor is None:
            return self.push_snapshot()
        while True:
            r = self.call(list_changes.sync_detailed, after=cursor, board=self.board,
                          exclude_origin=[self.origin], limit=500)
            if r.status_code == 410:
                log.warning("the feed cursor expired: starting again from a snapshot")
                return self.push_snapshot()
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
        """First run (or an expired cursor): the feed's head, then every item of the board."""
        head = self.expect(self.call(changes_head.sync_detailed), 200)
        for item in self.board_items(include_deleted=True):
            self.push_item(item["key"], None if item.get("deleted_at") else item)
        self.state.put("cursor", head.cursor)

    def push_item(self, key: str, item: dict | None) -> None:
        link = self.state.link_by_item(key)
        if item is None:  # deleted in opsboard
            if link and not link["deleted"]:
                self.delete_issue(link)
            return
        if item["type"] != "task" or item["board"] != self.board:
            return
        if link is None:
            ref = self.ref_of(item)
            if ref is None:
                return self.create_remote(item)
            link = self.adopt(item, ref)
            if link is None:
                return
        if link["deleted"]:
            return
        now = self.values_of_item(item)
        changed = {f: v for f, v in now.items() if v != link["snapshot"].get(f) and not (f == "status" and v is None)}
        if not changed:
            return
        if not self.remote.update(link["issue_id"], changed, link["snapshot"]):
            return self.delete_item(link)
        link["snapshot"].update(changed)
        self.state.save_link(link)
        self.stats.updated_remote += 1

    def adopt(self, item: dict, ref: dict) -> dict | None:
        """An item that names a remote issue the bridge has no link for (say, imported)."""
        issue = self.remote.get(ref["key"])
        if issue is None:
            return None
        link = {"issue_id": self.remote.issue_id(issue), "issue_key": self.remote.issue_key(issue),
                "item_key": item["key"], "snapshot": self.remote.values(issue),
                "remote_updated": self.remote.updated(issue), "ref_attached": True}
        self.state.save_link(link)
        return link

    def create_remote(self, item: dict) -> None:
        values = self.values_of_item(item)
        # the intent first: a crash after the create and before the link is saved below is
        # found again by recover() instead of creating a second issue
        with self.state.transaction():
            self.state.db.execute("INSERT OR REPLACE INTO intents (item_key, at) VALUES (?, ?)",
                                  (item["key"], iso(dt.datetime.now(dt.timezone.utc))))
        issue = self.remote.create(item["key"], values)
        link = {"issue_id": self.remote.issue_id(issue), "issue_key": self.remote.issue_key(issue),
                "item_key": item["key"], "snapshot": self.remote.values(issue)}
        with self.state.transaction():
            self.state.save_link(link)
            self.state.db.execute("DELETE FROM intents WHERE item_key = ?", (item["key"],))
        self.stats.created_remote += 1
        # what the create could not set (a status other than the initial one)
        changed = {f: v for f, v in values.items() if v != link["snapshot"].get(f) and not (f == "status" and v is None)}
        if changed:
            self.remote.update(link["issue_id"], changed, link["snapshot"])
            link["snapshot"].update(changed)
            self.state.save_link(link)
        self.attach_ref(link)

    # --- 3. remote -> opsboard -----------------------------------------------------------

    def pull(self) -> None:
        started = dt.datetime.now(dt.timezone.utc)
        watermark = self.state.get("watermark")
        since = dt.datetime.fromisoformat(watermark) - self.overlap if watermark else None
        for issue in self.remote.changed_since(since):
            self.pull_issue(issue)
        self.state.put("watermark", started.isoformat())

    def pull_issue(self, issue: dict) -> None:
        now = self.remote.values(issue)
        issue_id = self.remote.issue_id(issue)
        updated = self.remote.updated(issue)
        link = self.state.link_by_issue(issue_id)
        if link is not None and link["deleted"]:
            return
        if link is not None:
            changed = {f: v for f, v in now.items() if v != link["snapshot"].get(f)}
            if not changed:
                if link.get("remote_updated") != updated:
                    link["remote_updated"] = updated
                    self.state.save_link(link)
                return
            if self.remote.own_changes_only(issue, link.get("remote_updated")):
                # the bridge's own write coming back (as the remote stored it): never mirrored,
                # and taken as the state both sides agree on, so that it is not seen again
                self.stats.skipped_own += 1
                link["snapshot"].update(changed)
                link["remote_updated"] = updated
                self.state.save_link(link)
                return
            r = self.call(put_item_by_ref.sync_detailed, self.system, issue_id,
                          body=self.upsert_body(issue, changed, create=False), write=True)
            if r.status_code == 409 and (b"stale-source" in r.content or b"item-deleted" in r.content):
                return  # an older state, or an item deleted meanwhile (the next feed read deletes the issue)
            self.expect(r, 200, 201)
            link["snapshot"].update(changed)
            link["remote_updated"] = updated
            link["issue_key"] = self.remote.issue_key(issue)
            self.state.save_link(link)
            self.stats.updated_in_opsboard += 1
            return
        # a new issue
        r = self.call(put_item_by_ref.sync_detailed, self.system, issue_id,
                      body=self.upsert_body(issue, now, create=True), write=True)
        if r.status_code == 409 and b"item-deleted" in r.content:
            # its item was deleted in opsboard: delete the issue too
            self.remote.delete(issue_id)
            self.stats.deleted_remote += 1
            return
        item = self.expect(r, 200, 201).to_dict()
        self.state.save_link({
            "issue_id": issue_id, "issue_key": self.remote.issue_key(issue), "item_key": item["key"],
            "snapshot": now, "remote_updated": updated, "ref_attached": True,
        })
        if r.status_code == 201:
            self.stats.created_in_opsboard += 1
        else:
            self.stats.updated_in_opsboard += 1

    def upsert_body(self, issue: dict, values: dict, create: bool) -> ItemUpsert:
        key = self.remote.issue_key(issue)
        body: dict[str, Any] = {"alias": key, "source_updated_at": iso(self.remote.updated_utc(issue))}
        if create:
            body.update({"board": self.board, "type": "task"})
            url = self.remote.issue_url(key)
            if url:
                body["url"] = url
        for f in ("title", "description", "priority", "labels", "due_date"):
            if f in values:
                body[f] = values[f]
        if "status" in values and values["status"] in self.status_to_column_name:
            body["column"] = self.columns[self.status_to_column_name[values["status"]]]
        if create and not body.get("title"):
            body["title"] = key
        return ItemUpsert.from_dict(body)

    # --- 4. census -----------------------------------------------------------------------

    def census(self) -> None:
        ids = self.remote.all_ids()
        for link in self.state.live_links():
            if link["issue_id"] not in ids and self.remote.get(link["issue_id"]) is None:
                self.delete_item(link)  # deleted there (not only moved out of the search's scope)

    # --- a run ---------------------------------------------------------------------------

    def run_once(self) -> dict:
        self.remote.start()
        self.check_origin()
        self.load_columns()
        self.recover()
        self.push()
        self.pull()
        self.census()
        return self.stats.as_dict()
