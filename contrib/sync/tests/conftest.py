"""Shared by the bridge tests: the opsboard binary started on SQLite or on a fresh PostgreSQL
database, its first admin, a board and the bridge's service user with its API token."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
SYNC = HERE.parent
REPO = SYNC.parent.parent
ADMIN_EMAIL = "admin@example.org"
ADMIN_PASSWORD = "a long admin password for the bridge test"
FIGURES = SYNC / "build" / "figures.jsonl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def opsboard_binary() -> str:
    path = os.environ.get("OPSBOARD_BIN") or str(REPO / "target" / "release" / "opsboard")
    if not os.path.exists(path):
        pytest.fail(f"no opsboard binary at {path}: run `cargo build --release` or set OPSBOARD_BIN")
    return path


class RetryingClient(httpx.Client):
    """The test's own requests wait out a 503 (a busy pool or lock on a loaded machine) as
    Retry-After says, as the bridges do. A read (GET, HEAD) is sent again once when the server
    closed the pooled keep-alive connection just as it was reused: after a bridge run the
    test's connection has been idle past the server's keep-alive (5 s), and the close can
    cross the request ("Server disconnected without sending a response")."""

    def __init__(self, *args, alive=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.alive = alive

    def send(self, request, **kwargs):
        for _ in range(20):
            try:
                response = super().send(request, **kwargs)
            except httpx.RemoteProtocolError:
                # A crashed server must fail the test, not be retried into a connect error.
                if request.method not in ("GET", "HEAD") or (self.alive and not self.alive()):
                    raise
                response = super().send(request, **kwargs)
            if response.status_code != 503:
                return response
            response.read()
            response.close()
            time.sleep(float(response.headers.get("Retry-After", "1")))
        return response


def _psql(url: str, sql: str) -> None:
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, capture_output=True)


class Opsboard:
    """A running opsboard with an admin session and helpers for the test's own (human) writes."""

    def __init__(self, engine: str, tmp: Path):
        self.engine = engine
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dropdb = None
        if engine == "sqlite":
            database_url = str(tmp / "opsboard.sqlite")
        else:
            base = os.environ.get("OPSBOARD_TEST_DATABASE_URL")
            if not base:
                pytest.skip("OPSBOARD_TEST_DATABASE_URL is not set")
            name = f"bridge_{uuid.uuid4().hex[:12]}"
            _psql(base, f"CREATE DATABASE {name}")
            parts = urllib.parse.urlsplit(base)
            database_url = urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
            self.dropdb = (base, name)
        env = dict(os.environ)
        env.update({
            "OPSBOARD_BIND": f"127.0.0.1:{self.port}",
            "DATABASE_URL": database_url,
            "OPSBOARD_ADMIN_EMAIL": ADMIN_EMAIL,
            "OPSBOARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "RUST_LOG": "warn",
        })
        self.log = open(tmp / f"opsboard-{engine}.log", "w")
        self.proc = subprocess.Popen([opsboard_binary(), "serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"opsboard did not start: {(tmp / f'opsboard-{engine}.log').read_text()[-2000:]}")
            time.sleep(0.1)
        self.http = RetryingClient(base_url=f"{self.url}/api/v1", timeout=60,
                                   alive=lambda: self.proc.poll() is None)
        r = self.http.post("/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        r.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def ok(self, r: httpx.Response, *codes: int) -> dict | None:
        if r.status_code not in (codes or (200, 201, 204)):
            raise AssertionError(f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:500]}")
        return r.json() if r.content else None

    def head_seq(self) -> int:
        return self.ok(self.http.get("/changes/head"))["seq"]

    def items(self, board: str) -> list[dict]:
        out, cursor = [], None
        while True:
            params = {"board": board, "limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = self.ok(self.http.get("/items", params=params))
            out.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return out

    def stop(self) -> None:
        crashed = self.proc.poll()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        if self.dropdb:
            base, name = self.dropdb
            try:
                _psql(base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            except subprocess.CalledProcessError:
                pass
        # The server must have run to the end of the test: an exit before stop() is a crash.
        assert crashed is None, f"opsboard exited with {crashed} during the test"


@pytest.fixture(params=["sqlite", "postgres"])
def opsboard(request, tmp_path):
    server = Opsboard(request.param, tmp_path)
    yield server
    server.stop()


def record_figures(entry: dict) -> None:
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    with open(FIGURES, "a") as f:
        f.write(json.dumps(entry) + "\n")
    print(json.dumps(entry), file=sys.stderr)
