"""A mock of the parts of JIRA Cloud's REST API v3 that jira_bridge.py uses, for the tests.

Faithful where a bridge can go wrong:

- `GET /rest/api/3/search/jql` pages with an opaque `nextPageToken` (no `startAt`, no `total`),
  `isLast`; `fields=` and `expand=changelog` as JIRA reads them.
- JQL `updated >= "yyyy-MM-dd HH:mm"` compares at minute precision, in the time zone of the
  user who searches (`/rest/api/3/myself` tells it), as JIRA does. Supported JQL: clauses
  `project = KEY`, `updated >= "…"`, `cf[NNNNN] ~ "…"` joined by AND, and `ORDER BY` (issues are
  always returned by ascending id).
- Every write stores who made it: `changelog.histories[]` with `author.accountId`, `created` and
  `items[].{field, fromString, toString}`; `updated` moves on with every write.
- `POST /issue`, `PUT /issue/{id}` (204), `DELETE /issue/{id}` (204, then 404),
  `GET/POST /issue/{id}/transitions` (a status changes only through a transition).
- Descriptions in Atlassian Document Format.
- 429 with `Retry-After` at random (`rate_limit_probability`).
- Accounts by Basic auth (e-mail and API token).

The test drives the "people" on the JIRA side through the methods of `MockJira` (not over HTTP).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import random
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

STATUSES = {
    "To Do": {"id": "10000", "name": "To Do", "statusCategory": {"key": "new", "name": "To Do"}},
    "In Progress": {
        "id": "3",
        "name": "In Progress",
        "statusCategory": {"key": "indeterminate", "name": "In Progress"},
    },
    "Done": {"id": "10001", "name": "Done", "statusCategory": {"key": "done", "name": "Done"}},
}
# The workflow allows every transition; its id is the target status's transition id.
TRANSITIONS = {"11": "To Do", "21": "In Progress", "31": "Done"}
PRIORITIES = ["Highest", "High", "Medium", "Low", "Lowest"]


def jira_time(t: dt.datetime, tz: ZoneInfo) -> str:
    """JIRA's timestamp form: 2026-02-02T09:00:00.000+0100."""
    local = t.astimezone(tz)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + local.strftime("%z")


def adf(text: str | None) -> dict | None:
    """Plain text as an Atlassian Document: one paragraph per line."""
    if text is None:
        return None
    content = []
    for line in text.split("\n"):
        content.append({"type": "paragraph", "content": [{"type": "text", "text": line}] if line else []})
    return {"type": "doc", "version": 1, "content": content}


class JiraError(Exception):
    def __init__(self, status: int, messages: list[str], errors: dict | None = None):
        super().__init__(messages)
        self.status = status
        self.body = {"errorMessages": messages, "errors": errors or {}}


class MockJira:
    """JIRA's state, its HTTP server on a free port, and the people who act on it."""

    def __init__(self, project: str = "OZG", seed: int = 1, rate_limit_probability: float = 0.0):
        self.project = project
        self.server_tz = ZoneInfo("Europe/Berlin")
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self.rate_limit_probability = rate_limit_probability
        self.issues: dict[int, dict] = {}
        self.deleted: set[int] = set()
        self.next_id = 10000
        self.next_number = 1
        self.next_history = 1
        self.last_time = dt.datetime.now(dt.timezone.utc)
        self.accounts = {
            # (email, api token) -> account
            ("sync-bot@example.org", "bot-api-token"): {
                "accountId": "5b10ac8d82e05b22cc7d4ef5",
                "displayName": "opsboard bridge",
                "emailAddress": "sync-bot@example.org",
                "timeZone": "America/New_York",
                "accountType": "atlassian",
            },
            ("anja.krueger@example.org", "anja-api-token"): {
                "accountId": "712020:human-anja",
                "displayName": "Anja Krüger",
                "emailAddress": "anja.krueger@example.org",
                "timeZone": "Europe/Berlin",
                "accountType": "atlassian",
            },
        }
        self.human = self.accounts[("anja.krueger@example.org", "anja-api-token")]
        self.writes: dict[str, int] = {}  # accountId -> successful writes
        self.rate_limited = 0
        self.requests = 0
        # Called (with the account) after a write is applied and before it is answered:
        # the test kills the bridge here, so that the write happened and its answer is lost.
        self.after_write = None
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- life cycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> "MockJira":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def writes_by(self, account_id: str) -> int:
        with self.lock:
            return self.writes.get(account_id, 0)

    def total_writes(self) -> int:
        with self.lock:
            return sum(self.writes.values())

    # -- the model --------------------------------------------------------------------------

    def _now(self) -> dt.datetime:
        """The time of a write: strictly later than the one before (1 ms at least)."""
        now = dt.datetime.now(dt.timezone.utc)
        if now <= self.last_time:
            now = self.last_time + dt.timedelta(milliseconds=1)
        self.last_time = now
        return now

    def _get(self, id_or_key: str | int) -> dict:
        issue = None
        s = str(id_or_key)
        if s.isdigit():
            issue = self.issues.get(int(s))
        else:
            issue = next((i for i in self.issues.values() if i["key"] == s), None)
        if issue is None:
            raise JiraError(404, ["Issue does not exist or you do not have permission to see it."])
        return issue

    def _history(self, issue: dict, account: dict, at: dt.datetime, items: list[dict]) -> None:
        if not items:
            return
        issue["histories"].append(
            {
                "id": str(self.next_history),
                "author": {"accountId": account["accountId"], "displayName": account["displayName"]},
                "created": at,
                "items": items,
            }
        )
        self.next_history += 1

    def _count_write(self, account: dict) -> None:
        self.writes[account["accountId"]] = self.writes.get(account["accountId"], 0) + 1

    def create(self, fields: dict, account: dict | None = None, at: dt.datetime | None = None) -> dict:
        """Creates an issue as JIRA's POST /issue does; returns {id, key, self}."""
        account = account or self.human
        with self.lock:
            summary = fields.get("summary")
            if not isinstance(summary, str) or not summary.strip():
                raise JiraError(400, [], {"summary": "You must specify a summary of the issue."})
            project = (fields.get("project") or {}).get("key")
            if project != self.project:
                raise JiraError(400, [], {"project": "valid project is required"})
            now = at or self._now()
            issue_id = self.next_id
            self.next_id += 1
            key = f"{self.project}-{self.next_number}"
            self.next_number += 1
            issue = {
                "id": issue_id,
                "key": key,
                "created": now,
                "updated": now,
                "reporter": account,
                "status": "To Do",
                "summary": summary,
                "description": fields.get("description"),
                "priority": (fields.get("priority") or {}).get("name", "Medium"),
                "labels": list(fields.get("labels") or []),
                "duedate": fields.get("duedate"),
                "issuetype": (fields.get("issuetype") or {}).get("name", "Task"),
                "custom": {k: v for k, v in fields.items() if k.startswith("customfield_")},
                "histories": [],
            }
            self.issues[issue_id] = issue
            self._count_write(account)
            return {"id": str(issue_id), "key": key, "self": f"{self.url}/rest/api/3/issue/{issue_id}"}

    def update(self, id_or_key, fields: dict, account: dict | None = None) -> None:
        """Edits fields as JIRA's PUT /issue/{id} does (status is not a field: transition)."""
        account = account or self.human
        with self.lock:
            issue = self._get(id_or_key)
            items = []
            changes = {}
            for name, value in fields.items():
                if name == "summary":
                    if not isinstance(value, str) or not value.strip():
                        raise JiraError(400, [], {"summary": "You must specify a summary of the issue."})
                    new, old = value, issue["summary"]
                    changes["summary"] = (new, old, old, new)
                elif name == "description":
                    new, old = value, issue["description"]
                    changes["description"] = (new, old, _adf_text(old), _adf_text(new))
                elif name == "priority":
                    new = (value or {}).get("name")
                    if new not in PRIORITIES:
                        raise JiraError(400, [], {"priority": f"The priority selected is invalid: {new}"})
                    old = issue["priority"]
                    changes["priority"] = (new, old, old, new)
                elif name == "labels":
                    new, old = list(value or []), issue["labels"]
                    if any(" " in label for label in new):
                        raise JiraError(400, [], {"labels": "The label can't contain spaces."})
                    changes["labels"] = (new, old, " ".join(old), " ".join(new))
                elif name == "duedate":
                    new, old = value, issue["duedate"]
                    changes["duedate"] = (new, old, old, new)
                elif name.startswith("customfield_"):
                    new, old = value, issue["custom"].get(name)
                    changes[name] = (new, old, old, new)
                else:
                    raise JiraError(400, [], {name: f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."})
            now = self._now()
            for name, (new, old, from_s, to_s) in changes.items():
                if new == old:
                    continue
                if name.startswith("customfield_"):
                    issue["custom"][name] = new
                else:
                    issue[name] = new
                items.append({"field": name, "fieldtype": "jira", "fromString": from_s, "toString": to_s})
            # JIRA moves `updated` on every edit, even one that changes nothing.
            issue["updated"] = now
            self._history(issue, account, now, items)
            self._count_write(account)

    def transition(self, id_or_key, transition_id: str, account: dict | None = None) -> None:
        account = account or self.human
        with self.lock:
            issue = self._get(id_or_key)
            target = TRANSITIONS.get(str(transition_id))
            if target is None:
                raise JiraError(400, ["Transition id '%s' is not valid for this issue." % transition_id])
            now = self._now()
            if issue["status"] != target:
                self._history(
                    issue, account, now,
                    [{"field": "status", "fieldtype": "jira", "fromString": issue["status"], "toString": target}],
                )
                issue["status"] = target
            issue["updated"] = now
            self._count_write(account)

    def move_to(self, id_or_key, status: str, account: dict | None = None) -> None:
        tid = next(t for t, s in TRANSITIONS.items() if s == status)
        self.transition(id_or_key, tid, account)

    def delete(self, id_or_key, account: dict | None = None) -> None:
        account = account or self.human
        with self.lock:
            issue = self._get(id_or_key)
            del self.issues[issue["id"]]
            self.deleted.add(issue["id"])
            self._count_write(account)

    def snapshot(self) -> dict[int, dict]:
        with self.lock:
            return {i: copy.deepcopy(self._render(issue, None, False)) for i, issue in self.issues.items()}

    # -- rendering and search ---------------------------------------------------------------

    def _render(self, issue: dict, fields: list[str] | None, changelog: bool) -> dict:
        tz = self.server_tz
        all_fields = {
            "summary": issue["summary"],
            "description": issue["description"],
            "priority": {"name": issue["priority"], "id": str(PRIORITIES.index(issue["priority"]) + 1)},
            "labels": list(issue["labels"]),
            "duedate": issue["duedate"],
            "status": STATUSES[issue["status"]],
            "issuetype": {"name": issue["issuetype"]},
            "project": {"key": self.project},
            "created": jira_time(issue["created"], tz),
            "updated": jira_time(issue["updated"], tz),
            "reporter": {"accountId": issue["reporter"]["accountId"], "displayName": issue["reporter"]["displayName"]},
        }
        for name in fields or []:
            if name.startswith("customfield_"):
                all_fields[name] = issue["custom"].get(name)
        if fields is None or "*all" in fields or "*navigable" in fields:
            all_fields.update(issue["custom"])
            chosen = all_fields
        else:
            chosen = {k: v for k, v in all_fields.items() if k in fields}
        out = {"id": str(issue["id"]), "key": issue["key"], "self": f"{self.url}/rest/api/3/issue/{issue['id']}", "fields": chosen}
        if changelog:
            histories = [
                {**h, "created": jira_time(h["created"], tz)} for h in reversed(issue["histories"])
            ]
            out["changelog"] = {"startAt": 0, "maxResults": len(histories), "total": len(histories), "histories": histories}
        return out

    def search(self, account: dict, jql: str, token: str | None, max_results: int, fields: list[str], expand: str) -> dict:
        with self.lock:
            where, order = _split_order(jql)
            predicates = [_clause(c.strip(), account, self.project) for c in re.split(r"\s+AND\s+", where, flags=re.I) if c.strip()]
            after = -1
            if token:
                try:
                    after = int(json.loads(base64.urlsafe_b64decode(token.encode()))["a"])
                except Exception:
                    raise JiraError(400, ["The nextPageToken is invalid."])
            max_results = max(1, min(max_results, 5000 if set(fields) <= {"id", "key"} else 100))
            hits = []
            for issue_id in sorted(self.issues):
                if issue_id <= after:
                    continue
                issue = self.issues[issue_id]
                if all(p(issue) for p in predicates):
                    hits.append(issue)
                    if len(hits) > max_results:
                        break
            page, more = hits[:max_results], len(hits) > max_results
            out = {
                "issues": [self._render(i, fields, "changelog" in (expand or "")) for i in page],
                "isLast": not more,
            }
            if more:
                out["nextPageToken"] = base64.urlsafe_b64encode(json.dumps({"a": page[-1]["id"]}).encode()).decode()
            return out


def _adf_text(doc: dict | None) -> str | None:
    if doc is None:
        return None
    return "\n".join("".join(n.get("text", "") for n in p.get("content", [])) for p in doc.get("content", []))


def _split_order(jql: str) -> tuple[str, str]:
    m = re.search(r"\s+ORDER\s+BY\s+(.*)$", jql, flags=re.I)
    if m:
        return jql[: m.start()], m.group(1)
    return jql, ""


def _clause(clause: str, account: dict, project: str):
    m = re.fullmatch(r"project\s*=\s*\"?([A-Z][A-Z0-9]*)\"?", clause, flags=re.I)
    if m:
        key = m.group(1)
        if key.upper() != project:
            raise JiraError(400, [f"The value '{key}' does not exist for the field 'project'."])
        return lambda issue: True
    m = re.fullmatch(r"updated\s*(>=|>)\s*\"([^\"]+)\"", clause, flags=re.I)
    if m:
        text = m.group(2)
        try:
            # JIRA reads the time in the searching user's zone, to the minute.
            naive = dt.datetime.strptime(text, "%Y-%m-%d %H:%M")
        except ValueError:
            raise JiraError(400, [f"Date value '{text}' for field 'updated' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."])
        bound = naive.replace(tzinfo=ZoneInfo(account["timeZone"]))
        if m.group(1) == ">=":
            return lambda issue: issue["updated"].replace(second=0, microsecond=0) >= bound
        return lambda issue: issue["updated"].replace(second=0, microsecond=0) > bound
    m = re.fullmatch(r"cf\[(\d+)\]\s*~\s*\"([^\"]*)\"", clause, flags=re.I)
    if m:
        name, text = f"customfield_{m.group(1)}", m.group(2)
        return lambda issue: text in str(issue["custom"].get(name) or "")
    raise JiraError(400, [f"Error in the JQL Query: the mock does not understand '{clause}'."])


def _handler(jira: MockJira):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _send(self, status: int, body=None, headers: dict | None = None):
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _account(self):
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                try:
                    email, token = base64.b64decode(auth[6:]).decode().split(":", 1)
                except Exception:
                    return None
                return jira.accounts.get((email, token))
            return None

        def _body(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            if not raw:
                return {}
            try:
                return json.loads(raw)
            except ValueError:
                raise JiraError(400, ["Unexpected character in the JSON body."])

        def _route(self, method: str):
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            path = url.path
            account = self._account()
            if account is None:
                return self._send(401, {"errorMessages": ["You are not authenticated."], "errors": {}})
            with jira.lock:
                jira.requests += 1
                limited = jira.rate_limit_probability and jira.rng.random() < jira.rate_limit_probability
                if limited:
                    jira.rate_limited += 1
            if limited:
                self._body()
                return self._send(429, {"errorMessages": ["Rate limit exceeded."], "errors": {}}, {"Retry-After": "1"})
            try:
                body = self._body() if method in ("POST", "PUT") else None
                wrote = False
                if method == "GET" and path == "/rest/api/3/myself":
                    return self._send(200, account)
                if path == "/rest/api/3/search/jql" and method in ("GET", "POST"):
                    if method == "GET":
                        jql = (query.get("jql") or [""])[0]
                        token = (query.get("nextPageToken") or [None])[0]
                        max_results = int((query.get("maxResults") or ["50"])[0])
                        fields = ",".join(query.get("fields") or ["id"]).split(",")
                        expand = (query.get("expand") or [""])[0]
                    else:
                        jql, token = body.get("jql", ""), body.get("nextPageToken")
                        max_results = int(body.get("maxResults", 50))
                        fields = body.get("fields") or ["id"]
                        expand = body.get("expand") or ""
                        if isinstance(expand, list):
                            expand = ",".join(expand)
                    return self._send(200, jira.search(account, jql, token, max_results, fields, expand))
                if path == "/rest/api/3/issue" and method == "POST":
                    result = jira.create(body.get("fields") or {}, account)
                    wrote = True
                    status, answer = 201, result
                else:
                    m = re.fullmatch(r"/rest/api/3/issue/([^/]+)(/transitions)?", path)
                    if not m:
                        return self._send(404, {"errorMessages": ["Not found."], "errors": {}})
                    ident, transitions = m.group(1), m.group(2)
                    if transitions and method == "GET":
                        with jira.lock:
                            jira._get(ident)
                        return self._send(200, {"transitions": [
                            {"id": t, "name": s, "to": STATUSES[s], "isAvailable": True} for t, s in TRANSITIONS.items()
                        ]})
                    if transitions and method == "POST":
                        jira.transition(ident, str((body.get("transition") or {}).get("id")), account)
                        wrote, status, answer = True, 204, None
                    elif method == "GET":
                        with jira.lock:
                            issue = jira._get(ident)
                            fields = ",".join(query.get("fields") or ["*all"]).split(",")
                            rendered = jira._render(issue, fields, "changelog" in ",".join(query.get("expand") or []))
                        return self._send(200, rendered)
                    elif method == "PUT":
                        jira.update(ident, body.get("fields") or {}, account)
                        wrote, status, answer = True, 204, None
                    elif method == "DELETE":
                        jira.delete(ident, account)
                        wrote, status, answer = True, 204, None
                    else:
                        return self._send(405, {"errorMessages": ["Method not allowed."], "errors": {}})
                if wrote and jira.after_write is not None:
                    jira.after_write(account)
                return self._send(status, answer)
            except JiraError as e:
                return self._send(e.status, e.body)

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def do_PUT(self):
            self._route("PUT")

        def do_DELETE(self):
            self._route("DELETE")

    return Handler
