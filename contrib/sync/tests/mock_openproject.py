"""A mock of the parts of OpenProject's API v3 (work packages) that openproject_bridge.py uses.

Faithful where a bridge can go wrong:

- HAL collections paged by `offset` (the page number, from 1) and `pageSize`, with `total`;
  `filters` as JSON; without `filters` only *open* work packages are listed, as OpenProject's
  default filter does, so a bridge has to ask for every status (`status` operator `*`).
- `updatedAt` filter with operator `<>d` and ISO 8601 date-times (an empty bound is open).
- `lockVersion` on every PATCH: a stale one is `409` with the error identifier
  `urn:openproject-org:api:v3:errors:UpdateConflict`; a missing one `422`. `conflict_probability`
  makes a person edit another attribute just before a PATCH of the bridge, as happens in life.
- A deleted work package is simply `404` (`…:errors:NotFound`).
- Status and priority are links (`_links.status.href`), descriptions `{format, raw, html}`.
- Accounts by Basic auth `apikey:<token>`.
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

STATUSES = {1: ("New", False), 7: ("In progress", False), 12: ("Closed", True)}
PRIORITIES = {7: "Low", 8: "Normal", 9: "High", 10: "Immediate"}
ERR = "urn:openproject-org:api:v3:errors:"


def op_time(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class OpError(Exception):
    def __init__(self, status: int, ident: str, message: str):
        super().__init__(message)
        self.status = status
        self.body = {"_type": "Error", "errorIdentifier": ERR + ident, "message": message}


class MockOpenProject:
    def __init__(self, project_id: int = 3, seed: int = 1, conflict_probability: float = 0.0):
        self.project_id = project_id
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self.conflict_probability = conflict_probability
        self.wps: dict[int, dict] = {}
        self.next_id = 100
        self.last_time = dt.datetime.now(dt.timezone.utc)
        self.users = {
            "bot-api-key": {"id": 41, "name": "opsboard bridge"},
            "human-api-key": {"id": 5, "name": "Jan Schröder"},
        }
        self.bot = self.users["bot-api-key"]
        self.human = self.users["human-api-key"]
        self.writes: dict[int, int] = {}
        self.conflicts = 0
        self.after_write = None
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> "MockOpenProject":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def writes_by(self, user: dict) -> int:
        with self.lock:
            return self.writes.get(user["id"], 0)

    def _now(self) -> dt.datetime:
        now = dt.datetime.now(dt.timezone.utc)
        if now <= self.last_time:
            now = self.last_time + dt.timedelta(milliseconds=1)
        self.last_time = now
        return now

    def _get(self, wp_id) -> dict:
        wp = self.wps.get(int(wp_id)) if str(wp_id).isdigit() else None
        if wp is None:
            raise OpError(404, "NotFound", "The requested resource could not be found.")
        return wp

    def _apply(self, wp: dict, body: dict) -> None:
        """Writes the attributes and links a body names (create and update)."""
        if "subject" in body:
            if not isinstance(body["subject"], str) or not body["subject"].strip():
                raise OpError(422, "PropertyConstraintViolation", "Subject can't be blank.")
            wp["subject"] = body["subject"]
        if "description" in body:
            wp["description"] = (body["description"] or {}).get("raw") or ""
        if "dueDate" in body:
            wp["dueDate"] = body["dueDate"]
        if "estimatedTime" in body:
            wp["estimatedTime"] = body["estimatedTime"]
        for name, value in body.items():
            if name.startswith("customField"):
                wp["custom"][name] = value
        links = body.get("_links") or {}
        for name, plural, table in (("status", "statuses", STATUSES), ("priority", "priorities", PRIORITIES)):
            if name in links:
                m = re.fullmatch(rf"/api/v3/{plural}/(\d+)", (links[name] or {}).get("href") or "")
                if not m or int(m.group(1)) not in table:
                    raise OpError(422, "PropertyConstraintViolation", f"{name.capitalize()} is not set to one of the allowed values.")
                wp[name] = int(m.group(1))

    # people and the bridge alike
    def create(self, body: dict, user: dict | None = None) -> dict:
        user = user or self.human
        with self.lock:
            now = self._now()
            wp = {"id": self.next_id, "lockVersion": 0, "subject": "", "description": "", "dueDate": None,
                  "status": 1, "priority": 8, "estimatedTime": None, "custom": {}, "createdAt": now, "updatedAt": now,
                  "author": user}
            self._apply(wp, body)
            if not wp["subject"]:
                raise OpError(422, "PropertyConstraintViolation", "Subject can't be blank.")
            self.wps[wp["id"]] = wp
            self.next_id += 1
            self.writes[user["id"]] = self.writes.get(user["id"], 0) + 1
            return self.render(wp)

    def update(self, wp_id, body: dict, user: dict | None = None) -> dict:
        user = user or self.human
        with self.lock:
            wp = self._get(wp_id)
            if "lockVersion" not in body:
                raise OpError(422, "PropertyConstraintViolation", "Lock version is missing.")
            if user is self.bot and self.conflict_probability and self.rng.random() < self.conflict_probability:
                # somebody saved another attribute a moment earlier
                self.update(wp_id, {"lockVersion": wp["lockVersion"], "estimatedTime": f"PT{self.rng.randint(1, 9)}H"})
                self.conflicts += 1
            if body["lockVersion"] != wp["lockVersion"]:
                raise OpError(409, "UpdateConflict", "Your changes could not be saved, because the resource was "
                              "changed in the meantime. Please reload and try again.")
            trial = copy.deepcopy(wp)
            self._apply(trial, body)
            trial["lockVersion"] += 1
            trial["updatedAt"] = self._now()
            wp.clear()
            wp.update(trial)
            self.writes[user["id"]] = self.writes.get(user["id"], 0) + 1
            return self.render(wp)

    def delete(self, wp_id, user: dict | None = None) -> None:
        user = user or self.human
        with self.lock:
            wp = self._get(wp_id)
            del self.wps[wp["id"]]
            self.writes[user["id"]] = self.writes.get(user["id"], 0) + 1

    def render(self, wp: dict) -> dict:
        status_name = STATUSES[wp["status"]][0]
        out = {
            "_type": "WorkPackage",
            "id": wp["id"],
            "lockVersion": wp["lockVersion"],
            "subject": wp["subject"],
            "description": {"format": "markdown", "raw": wp["description"], "html": f"<p>{wp['description']}</p>"},
            "dueDate": wp["dueDate"],
            "estimatedTime": wp["estimatedTime"],
            "createdAt": op_time(wp["createdAt"]),
            "updatedAt": op_time(wp["updatedAt"]),
            "_links": {
                "self": {"href": f"/api/v3/work_packages/{wp['id']}", "title": wp["subject"]},
                "project": {"href": f"/api/v3/projects/{self.project_id}"},
                "type": {"href": "/api/v3/types/1", "title": "Task"},
                "status": {"href": f"/api/v3/statuses/{wp['status']}", "title": status_name},
                "priority": {"href": f"/api/v3/priorities/{wp['priority']}", "title": PRIORITIES[wp["priority"]]},
                "author": {"href": f"/api/v3/users/{wp['author']['id']}", "title": wp["author"]["name"]},
            },
        }
        out.update(wp["custom"])
        return out

    def snapshot(self) -> dict[int, dict]:
        with self.lock:
            return {i: self.render(wp) for i, wp in self.wps.items()}

    def list(self, query: dict) -> dict:
        with self.lock:
            raw = (query.get("filters") or [None])[0]
            filters = json.loads(raw) if raw is not None else [{"status": {"operator": "o", "values": []}}]
            preds = [_predicate(f) for f in filters]
            offset = max(1, int((query.get("offset") or ["1"])[0]))
            size = max(1, min(1000, int((query.get("pageSize") or ["20"])[0])))
            hits = [wp for _, wp in sorted(self.wps.items()) if all(p(wp) for p in preds)]
            page = hits[(offset - 1) * size: offset * size]
            return {
                "_type": "WorkPackageCollection", "total": len(hits), "count": len(page), "pageSize": size,
                "offset": offset, "_embedded": {"elements": [self.render(wp) for wp in page]},
            }


def _predicate(f: dict):
    ((name, spec),) = f.items()
    op, values = spec.get("operator"), spec.get("values") or []
    if name == "status":
        if op == "*":
            return lambda wp: True
        if op == "o":
            return lambda wp: not STATUSES[wp["status"]][1]
        if op == "c":
            return lambda wp: STATUSES[wp["status"]][1]
    if name == "updatedAt" and op == "<>d":
        lo = dt.datetime.fromisoformat(values[0].replace("Z", "+00:00")) if values and values[0] else None
        hi = dt.datetime.fromisoformat(values[1].replace("Z", "+00:00")) if len(values) > 1 and values[1] else None
        return lambda wp: (lo is None or wp["updatedAt"] >= lo) and (hi is None or wp["updatedAt"] <= hi)
    if name.startswith("customField") and op == "~":
        return lambda wp: bool(values) and values[0] in str(wp["custom"].get(name) or "")
    raise OpError(400, "InvalidQuery", f"Filter {name} with operator {op} is not supported by the mock.")


def _handler(op: MockOpenProject):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _send(self, status: int, body=None):
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/hal+json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str):
            auth = self.headers.get("Authorization", "")
            user = None
            if auth.startswith("Basic "):
                try:
                    name, key = base64.b64decode(auth[6:]).decode().split(":", 1)
                    user = op.users.get(key) if name == "apikey" else None
                except Exception:
                    user = None
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            if user is None:
                return self._send(401, {"_type": "Error", "errorIdentifier": ERR + "Unauthenticated",
                                        "message": "You need to be authenticated to access this resource."})
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            try:
                body = json.loads(raw) if raw else {}
                if method == "GET" and url.path in ("/api/v3/statuses", "/api/v3/priorities"):
                    kind, table = ("statuses", {k: v[0] for k, v in STATUSES.items()}) if url.path.endswith("statuses") \
                        else ("priorities", PRIORITIES)
                    return self._send(200, {"_type": "Collection", "total": len(table), "count": len(table),
                                            "_embedded": {"elements": [
                                                {"id": k, "name": v, "_links": {"self": {"href": f"/api/v3/{kind}/{k}", "title": v}}}
                                                for k, v in table.items()]}})
                if method == "GET" and url.path == f"/api/v3/projects/{op.project_id}/work_packages":
                    return self._send(200, op.list(query))
                if method == "POST" and url.path == f"/api/v3/projects/{op.project_id}/work_packages":
                    out, status = op.create(body, user), 201
                else:
                    m = re.fullmatch(r"/api/v3/work_packages/(\d+)", url.path)
                    if not m:
                        return self._send(404, {"_type": "Error", "errorIdentifier": ERR + "NotFound", "message": "Not found."})
                    if method == "GET":
                        with op.lock:
                            return self._send(200, op.render(op._get(m.group(1))))
                    if method == "PATCH":
                        out, status = op.update(m.group(1), body, user), 200
                    elif method == "DELETE":
                        op.delete(m.group(1), user)
                        out, status = None, 204
                    else:
                        return self._send(405, {"_type": "Error", "errorIdentifier": ERR + "NotImplemented", "message": "No."})
                if op.after_write is not None:
                    op.after_write(user)
                return self._send(status, out)
            except OpError as e:
                return self._send(e.status, e.body)
            except ValueError:
                return self._send(400, {"_type": "Error", "errorIdentifier": ERR + "InvalidRequestBody", "message": "Bad JSON."})

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def do_PATCH(self):
            self._route("PATCH")

        def do_DELETE(self):
            self._route("DELETE")

    return Handler
