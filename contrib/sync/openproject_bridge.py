#!/usr/bin/env python3
"""Two-way sync of one OpenProject project's work packages (API v3) with one opsboard board.

An example to adapt, tested in CI against a mock OpenProject (tests/mock_openproject.py). The
run itself (recovery, opsboard -> OpenProject from the changes feed, OpenProject -> opsboard by
upsert, census) is in sync_core.py; this file is what is OpenProject's:

- Every PATCH carries the `lockVersion` the bridge just read; a `409 UpdateConflict` (someone
  saved meanwhile) is answered by reading the work package again and sending only the fields
  that still differ from what opsboard wants, with the new `lockVersion`.
- OpenProject -> opsboard with the `updatedAt` filter (`<>d`, from watermark - overlap) and the
  status filter `*`: without it OpenProject lists open work packages only.
- A create writes the item's key into a text custom field (--ref-field), where the filter
  `customFieldN ~ OPS-42` finds it again after a crash between the create and the checkpoint.
- Deletions: a deleted work package is simply 404, so the census lists the project's ids.
- OpenProject has no changelog on the work package itself: the bridge's own writes are not
  mirrored back because they equal the state both sides agreed on (the link's snapshot).

Fields synced: subject <-> title, description (Markdown), priority, due date, status <->
column (by name, see --status). Work packages have no labels. Items of type task only.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import logging
import os
import sys
import time
from typing import Any, Iterator

import httpx

from sync_core import Bridge, BridgeError, Remote, Stats, iso, retry_after

log = logging.getLogger("openproject_bridge")

PRIORITY_FROM_OP = {"Immediate": "critical", "High": "high", "Normal": "medium", "Low": "low"}
PRIORITY_TO_OP = {v: k for k, v in PRIORITY_FROM_OP.items()}


class OpenProject(Remote):
    system = "openproject"
    synced_fields = ("title", "description", "priority", "due_date", "status")

    def __init__(self, url: str, api_key: str, project: str, ref_field: str, stats: Stats):
        auth = base64.b64encode(f"apikey:{api_key}".encode()).decode()
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=30.0,
                                 headers={"Authorization": f"Basic {auth}", "Accept": "application/hal+json"})
        self.project = project
        self.ref_field = ref_field
        self.stats = stats
        self.statuses: dict[str, str] = {}  # name -> href
        self.priorities: dict[str, str] = {}

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        for attempt in range(20):
            r = self.http.request(method, path, **kw)
            if r.status_code in (429, 503):
                self.stats.remote_retries += 1
                time.sleep(retry_after(r.headers.get("Retry-After"), attempt))
                continue
            if method != "GET" and r.status_code < 300:
                self.stats.remote_writes += 1
            return r
        raise BridgeError(f"OpenProject kept answering {r.status_code} to {method} {path}")

    def ok(self, r: httpx.Response) -> httpx.Response:
        if r.status_code >= 400:
            raise BridgeError(f"OpenProject {r.request.method} {r.request.url.path}: {r.status_code} {r.text[:500]}")
        return r

    def list(self, filters: list[dict], page_size: int = 200) -> Iterator[dict]:
        """Every work package the filters match, page by page (by id, so pages stay put)."""
        offset = 1
        while True:
            page = self.ok(self.request("GET", f"/api/v3/projects/{self.project}/work_packages", params={
                "filters": json.dumps([{"status": {"operator": "*", "values": []}}, *filters]),
                "sortBy": json.dumps([["id", "asc"]]), "pageSize": page_size, "offset": offset,
            })).json()
            elements = page["_embedded"]["elements"]
            yield from elements
            if offset * page["pageSize"] >= page["total"] or not elements:
                return
            offset += 1

    def remember_links(self, wp: dict) -> None:
        """Status and priority hrefs by name, as the work packages show them."""
        links = wp["_links"]
        self.statuses.setdefault(links["status"]["title"], links["status"]["href"])
        self.priorities.setdefault(links["priority"]["title"], links["priority"]["href"])

    def issue_id(self, issue: dict) -> str:
        return str(issue["id"])

    def issue_key(self, issue: dict) -> str:
        return f"#{issue['id']}"

    def issue_url(self, issue_key: str) -> str | None:
        return f"{self.url}/work_packages/{issue_key.lstrip('#')}"

    def updated(self, issue: dict) -> str:
        return issue["updatedAt"]

    def updated_utc(self, issue: dict) -> dt.datetime:
        return dt.datetime.fromisoformat(issue["updatedAt"].replace("Z", "+00:00"))

    def values(self, issue: dict) -> dict:
        self.remember_links(issue)
        return {
            "title": issue["subject"],
            "description": (issue.get("description") or {}).get("raw") or "",
            "priority": PRIORITY_FROM_OP.get(issue["_links"]["priority"]["title"], "medium"),
            "due_date": issue.get("dueDate"),
            "status": issue["_links"]["status"]["title"],
        }

    def changed_since(self, watermark: dt.datetime | None) -> Iterator[dict]:
        filters = [] if watermark is None else [{"updatedAt": {"operator": "<>d", "values": [iso(watermark), ""]}}]
        yield from self.list(filters)

    def all_ids(self) -> set[str]:
        return {str(wp["id"]) for wp in self.list([], page_size=1000)}

    def get(self, issue_id: str) -> dict | None:
        r = self.request("GET", f"/api/v3/work_packages/{issue_id}")
        if r.status_code == 404:
            return None
        return self.ok(r).json()

    def find_created(self, item_key: str) -> dict | None:
        hits = self.list([{self.ref_field: {"operator": "~", "values": [item_key]}}])
        return next((h for h in hits if h.get(self.ref_field) == item_key), None)

    def body(self, values: dict) -> dict:
        out: dict[str, Any] = {}
        links: dict[str, Any] = {}
        if "title" in values:
            out["subject"] = values["title"]
        if "description" in values:
            out["description"] = {"raw": values["description"]}
        if "due_date" in values:
            out["dueDate"] = values["due_date"]
        if "priority" in values:
            links["priority"] = {"href": self.href("priority", PRIORITY_TO_OP[values["priority"]])}
        if values.get("status") is not None:
            links["status"] = {"href": self.href("status", values["status"])}
        if links:
            out["_links"] = links
        return out

    def href(self, kind: str, name: str) -> str:
        table = self.statuses if kind == "status" else self.priorities
        if name not in table:
            # the instance's list (GET /api/v3/statuses or /priorities) names them all
            path = "/api/v3/statuses" if kind == "status" else "/api/v3/priorities"
            r = self.request("GET", path)
            if r.status_code == 200:
                for e in r.json()["_embedded"]["elements"]:
                    table.setdefault(e["name"], e["_links"]["self"]["href"])
        if name not in table:
            raise BridgeError(f"OpenProject has no {kind} named {name!r}")
        return table[name]

    def create(self, item_key: str, values: dict) -> dict:
        body = self.body(values)
        body.setdefault("_links", {})["type"] = {"href": "/api/v3/types/1"}
        body[self.ref_field] = item_key
        return self.ok(self.request("POST", f"/api/v3/projects/{self.project}/work_packages", json=body)).json()

    def update(self, issue_id: str, changed: dict, snapshot: dict) -> bool:
        want = dict(changed)
        for _ in range(10):
            wp = self.get(issue_id)
            if wp is None:
                return False
            # only what still differs (after a conflict, someone may have set it already)
            now = self.values(wp)
            todo = {f: v for f, v in want.items() if now.get(f) != v}
            if not todo:
                return True
            r = self.request("PATCH", f"/api/v3/work_packages/{issue_id}",
                             json={"lockVersion": wp["lockVersion"], **self.body(todo)})
            if r.status_code == 404:
                return False
            if r.status_code == 409 and "UpdateConflict" in r.text:
                self.stats.conflicts += 1
                continue
            self.ok(r)
            return True
        raise BridgeError(f"work package {issue_id}: still in conflict after 10 tries")

    def delete(self, issue_id: str) -> None:
        r = self.request("DELETE", f"/api/v3/work_packages/{issue_id}")
        if r.status_code not in (204, 404):
            self.ok(r)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    env = os.environ.get
    p.add_argument("--opsboard-url", default=env("OPSBOARD_URL", "http://127.0.0.1:8080"))
    p.add_argument("--opsboard-token", default=env("OPSBOARD_TOKEN"),
                   help="an API token (opb_…) with read and write; env OPSBOARD_TOKEN")
    p.add_argument("--origin", default=env("OPSBOARD_ORIGIN"),
                   help="the origin of the token's writes, left out of the feed the bridge reads; "
                        "by default the token's own (it must have one)")
    p.add_argument("--board", required=True)
    p.add_argument("--openproject-url", default=env("OPENPROJECT_URL"))
    p.add_argument("--openproject-key", default=env("OPENPROJECT_API_KEY"),
                   help="the API key of the bridge's own OpenProject user; env OPENPROJECT_API_KEY")
    p.add_argument("--project", required=True, help="the OpenProject project (id or identifier)")
    p.add_argument("--state", default="openproject-bridge.sqlite", help="the bridge's state file")
    p.add_argument("--status", action="append", default=[], metavar="STATUS=COLUMN",
                   help="maps an OpenProject status to a column of the board (repeat)")
    p.add_argument("--ref-field", default="customField1",
                   help="a text custom field of work packages where a create writes the item's key")
    p.add_argument("--overlap-minutes", type=float, default=1.0)
    p.add_argument("--interval", type=float, default=0, help="seconds between runs; 0 runs once")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    for name in ("opsboard_token", "openproject_url", "openproject_key"):
        if not getattr(args, name):
            p.error(f"--{name.replace('_', '-')} is required")
    statuses = args.status or ["New=To Do", "In progress=In Progress", "Closed=Done"]
    while True:
        stats = Stats()
        remote = OpenProject(args.openproject_url, args.openproject_key, args.project, args.ref_field, stats)
        bridge = Bridge(remote, opsboard_url=args.opsboard_url, opsboard_token=args.opsboard_token,
                        origin=args.origin, board=args.board, state_path=args.state,
                        status_to_column=dict(s.split("=", 1) for s in statuses),
                        overlap=dt.timedelta(minutes=args.overlap_minutes), stats=stats)
        print(json.dumps(bridge.run_once()), flush=True)
        if not args.interval:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
