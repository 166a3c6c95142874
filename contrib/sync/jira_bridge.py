#!/usr/bin/env python3
"""Two-way sync of one JIRA project (Cloud, REST API v3) with one opsboard board.

An example to adapt, tested in CI against a mock JIRA (tests/mock_jira.py). The run itself
(recovery, opsboard -> JIRA from the changes feed, JIRA -> opsboard by upsert, census) is in
sync_core.py; this file is what is JIRA's:

- JIRA -> opsboard by JQL `updated >= "watermark - overlap"`: JIRA compares to the minute, in
  the searching user's time zone, so the time is written in the zone `/myself` names. With
  `expand=changelog`, an issue whose changes since the last sync were all made by the bridge's
  own JIRA account is its own write coming back, and is not mirrored.
- A create writes the item's key into a text custom field (--ref-field), where JQL
  `cf[NNNNN] ~ "OPS-42"` finds it again after a crash between the create and the checkpoint.
- A status changes only through a transition (`GET/POST /issue/{id}/transitions`).
- 429 (and 503) wait for `Retry-After`.
- Deletions: JQL never returns a deleted issue, so the census lists the project's ids.

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
import sys
import time
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import httpx

from sync_core import Bridge, BridgeError, Remote, Stats, retry_after

log = logging.getLogger("jira_bridge")

# JIRA priority name <-> opsboard priority
PRIORITY_FROM_JIRA = {"Highest": "critical", "High": "high", "Medium": "medium", "Low": "low", "Lowest": "low"}
PRIORITY_TO_JIRA = {"critical": "Highest", "high": "High", "medium": "Medium", "low": "Low"}


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


class Jira(Remote):
    """JIRA Cloud REST API v3 over httpx: Basic auth with e-mail and API token."""

    system = "jira"

    def __init__(self, url: str, email: str, token: str, project: str, ref_field: str, initial_status: str,
                 stats: Stats):
        auth = base64.b64encode(f"{email}:{token}".encode()).decode()
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=30.0,
                                 headers={"Authorization": f"Basic {auth}", "Accept": "application/json"})
        self.project = project
        self.ref_field = ref_field
        self.ref_cf = ref_field.removeprefix("customfield_")
        self.initial_status = initial_status
        self.stats = stats
        self.me: dict = {}
        self.transitions: dict[str, str] = {}  # target status -> transition id

    # --- HTTP ------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        for attempt in range(20):
            r = self.http.request(method, path, **kw)
            if r.status_code in (429, 503):
                wait = retry_after(r.headers.get("Retry-After"), attempt)
                self.stats.remote_retries += 1
                log.info("JIRA answered %s; waiting %.1f s as Retry-After says", r.status_code, wait)
                time.sleep(wait)
                continue
            if method != "GET" and r.status_code < 300:
                self.stats.remote_writes += 1
            return r
        raise BridgeError(f"JIRA kept answering {r.status_code} to {method} {path}")

    def ok(self, r: httpx.Response) -> httpx.Response:
        if r.status_code >= 400:
            raise BridgeError(f"JIRA {r.request.method} {r.request.url.path}: {r.status_code} {r.text[:500]}")
        return r

    def search(self, jql: str, fields: list[str], expand: str = "", page_size: int = 100) -> Iterator[dict]:
        """POST-free /search/jql, page by page with nextPageToken."""
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

    def search_fields(self) -> list[str]:
        return ["summary", "description", "priority", "labels", "duedate", "status", "updated",
                "issuetype", self.ref_field]

    # --- Remote ----------------------------------------------------------------------------

    def start(self) -> None:
        self.me = self.ok(self.request("GET", "/rest/api/3/myself")).json()

    def issue_id(self, issue: dict) -> str:
        return str(issue["id"])

    def issue_key(self, issue: dict) -> str:
        return issue["key"]

    def issue_url(self, issue_key: str) -> str | None:
        return f"{self.url}/browse/{issue_key}"

    def updated(self, issue: dict) -> str:
        return issue["fields"]["updated"]

    def updated_utc(self, issue: dict) -> dt.datetime:
        return parse_jira_time(issue["fields"]["updated"])

    def values(self, issue: dict) -> dict:
        f = issue["fields"]
        return {
            "title": f.get("summary") or "",
            "description": adf_to_text(f.get("description")),
            "priority": PRIORITY_FROM_JIRA.get((f.get("priority") or {}).get("name"), "medium"),
            "labels": sorted(f.get("labels") or []),
            "due_date": f.get("duedate"),
            "status": (f.get("status") or {}).get("name"),
        }

    def changed_since(self, watermark: dt.datetime | None) -> Iterator[dict]:
        jql = f"project = {self.project}"
        if watermark is not None:
            # JIRA reads this in the searching user's time zone, to the minute
            tz = ZoneInfo(self.me.get("timeZone") or "UTC")
            jql += f' AND updated >= "{watermark.astimezone(tz).strftime("%Y-%m-%d %H:%M")}"'
        for issue in self.search(jql + " ORDER BY id ASC", self.search_fields(), expand="changelog"):
            if (issue["fields"].get("issuetype") or {}).get("name", "Task") == "Task":
                yield issue

    def all_ids(self) -> set[str]:
        return {str(i["id"]) for i in self.search(f"project = {self.project} ORDER BY id ASC", ["id"], page_size=5000)}

    def get(self, issue_id: str) -> dict | None:
        r = self.request("GET", f"/rest/api/3/issue/{issue_id}", params={"fields": ",".join(self.search_fields())})
        if r.status_code == 404:
            return None
        return self.ok(r).json()

    def find_created(self, item_key: str) -> dict | None:
        hits = self.search(f'project = {self.project} AND cf[{self.ref_cf}] ~ "{item_key}"', self.search_fields())
        # `~` matches words: OPS-1 would find OPS-10 too
        return next((h for h in hits if (h["fields"].get(self.ref_field) or "") == item_key), None)

    def fields(self, values: dict) -> dict:
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

    def create(self, item_key: str, values: dict) -> dict:
        fields = {k: v for k, v in self.fields(values).items() if v is not None}
        fields.update({"project": {"key": self.project}, "issuetype": {"name": "Task"}, self.ref_field: item_key})
        created = self.ok(self.request("POST", "/rest/api/3/issue", json={"fields": fields})).json()
        # JIRA answers only id and key: the issue as it now is (the status it starts in)
        issue = self.get(created["id"])
        if issue is None:
            raise BridgeError(f"JIRA issue {created['key']} vanished right after its create")
        return issue

    def update(self, issue_id: str, changed: dict, snapshot: dict) -> bool:
        fields = self.fields(changed)
        if fields:
            r = self.request("PUT", f"/rest/api/3/issue/{issue_id}", json={"fields": fields})
            if r.status_code == 404:
                return False
            self.ok(r)
        if "status" in changed:
            if changed["status"] not in self.transitions:
                r = self.request("GET", f"/rest/api/3/issue/{issue_id}/transitions")
                if r.status_code == 404:
                    return False
                for t in self.ok(r).json()["transitions"]:
                    self.transitions[t["to"]["name"]] = t["id"]
            tid = self.transitions.get(changed["status"])
            if tid is None:
                raise BridgeError(f"JIRA issue {issue_id}: no transition to {changed['status']!r}")
            r = self.request("POST", f"/rest/api/3/issue/{issue_id}/transitions", json={"transition": {"id": tid}})
            if r.status_code == 404:
                return False
            self.ok(r)
        return True

    def delete(self, issue_id: str) -> None:
        r = self.request("DELETE", f"/rest/api/3/issue/{issue_id}")
        if r.status_code not in (204, 404):
            self.ok(r)

    def own_changes_only(self, issue: dict, since: str | None) -> bool:
        if since is None:
            return False
        since_t = parse_jira_time(since)
        newer = [h for h in (issue.get("changelog") or {}).get("histories", [])
                 if parse_jira_time(h["created"]) > since_t]
        return bool(newer) and all(h["author"]["accountId"] == self.me["accountId"] for h in newer)


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
    p.add_argument("--jira-url", default=env("JIRA_URL"))
    p.add_argument("--jira-email", default=env("JIRA_EMAIL"), help="the bridge's own JIRA account")
    p.add_argument("--jira-token", default=env("JIRA_TOKEN"), help="its API token; env JIRA_TOKEN")
    p.add_argument("--project", required=True, help="the JIRA project key")
    p.add_argument("--state", default="jira-bridge.sqlite", help="the bridge's state file")
    p.add_argument("--status", action="append", default=[], metavar="JIRA_STATUS=COLUMN",
                   help="maps a JIRA status to a column of the board (repeat); "
                        "default: To Do, In Progress and Done each to the column of its name")
    p.add_argument("--initial-status", default="To Do", help="the status JIRA gives a new issue")
    p.add_argument("--ref-field", default="customfield_10100",
                   help="a JIRA text custom field where a create writes the item's key")
    p.add_argument("--overlap-minutes", type=float, default=2.0)
    p.add_argument("--interval", type=float, default=0, help="seconds between runs; 0 runs once")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    for name in ("opsboard_token", "jira_url", "jira_email", "jira_token"):
        if not getattr(args, name):
            p.error(f"--{name.replace('_', '-')} is required")
    statuses = args.status or ["To Do=To Do", "In Progress=In Progress", "Done=Done"]
    while True:
        stats = Stats()
        jira = Jira(args.jira_url, args.jira_email, args.jira_token, args.project, args.ref_field,
                    args.initial_status, stats)
        bridge = Bridge(jira, opsboard_url=args.opsboard_url, opsboard_token=args.opsboard_token,
                        origin=args.origin, board=args.board, state_path=args.state,
                        status_to_column=dict(s.split("=", 1) for s in statuses),
                        overlap=dt.timedelta(minutes=args.overlap_minutes), stats=stats)
        print(json.dumps(bridge.run_once()), flush=True)
        if not args.interval:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
