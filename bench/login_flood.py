#!/usr/bin/env python3
"""Login flood against the release binary on SQLite, on loopback only.

Starts `opsboard serve` on an empty temporary database, logs the admin in once, then sends
400 wrong logins (200 for the admin's account, 200 for 200 other e-mails) over 32 concurrent
connections while 4 more connections keep reading GET /api/v1/me with the admin's token.
Prints the statuses, the resident memory before, at its peak during and after the flood, and
the latency of /me during it. Run it twice to see both sides of the throttle:

    cargo build --release --locked
    python3 bench/login_flood.py                       # the default limits
    python3 bench/login_flood.py --no-throttle         # every attempt reaches argon2

Only the standard library; nothing leaves 127.0.0.1; the server is stopped at the end.
"""

import argparse
import http.client
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

ADMIN = "flood-admin@example.org"
ADMIN_PASSWORD = "flood-admin-password-1"


def rss_kib(pid):
    out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


def request(port, method, path, body=None, token=None, conn=None):
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    data = response.read()
    if own:
        conn.close()
    return response.status, data


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "release", "opsboard"))
    parser.add_argument("--port", type=int, default=18181)
    parser.add_argument("--logins", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--readers", type=int, default=4, help="connections reading /me")
    parser.add_argument("--no-throttle", action="store_true",
                        help="raise the login limits so that every attempt is verified")
    args = parser.parse_args()

    work = tempfile.mkdtemp()
    env = dict(os.environ,
               DATABASE_URL=os.path.join(work, "flood.db"),
               OPSBOARD_BIND=f"127.0.0.1:{args.port}",
               OPSBOARD_JWT_SECRET=secrets.token_urlsafe(48),
               OPSBOARD_ADMIN_EMAIL=ADMIN, OPSBOARD_ADMIN_PASSWORD=ADMIN_PASSWORD,
               RUST_LOG="warn")
    if args.no_throttle:
        env.update(OPSBOARD__AUTH__LOGIN_ACCOUNT_BURST="100000",
                   OPSBOARD__AUTH__LOGIN_ADDRESS_BURST="100000")
    log = open(os.path.join(work, "server.log"), "w")
    server = subprocess.Popen([args.binary, "serve"], env=env, stdout=log, stderr=log)
    try:
        for _ in range(100):
            try:
                if request(args.port, "GET", "/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        status, body = request(args.port, "POST", "/api/v1/auth/login",
                               {"email": ADMIN, "password": ADMIN_PASSWORD})
        assert status == 200, body
        token = json.loads(body)["access_token"]
        # Warm up the /me path, then let the allocator settle.
        me = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
        for _ in range(200):
            assert request(args.port, "GET", "/api/v1/me", token=token, conn=me)[0] == 200
        time.sleep(1)
        before = rss_kib(server.pid)

        done = threading.Event()
        peak = [before]
        latencies = []

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kib(server.pid))
                time.sleep(0.05)

        def read_me():
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
            while not done.is_set():
                start = time.perf_counter()
                status, _ = request(args.port, "GET", "/api/v1/me", token=token, conn=conn)
                latencies.append((time.perf_counter() - start) * 1000)
                assert status == 200, status

        local = threading.local()

        def wrong_login(i):
            if not hasattr(local, "conn"):
                local.conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
            email = ADMIN if i % 2 == 0 else f"probe{i}@example.org"
            return request(args.port, "POST", "/api/v1/auth/login",
                           {"email": email, "password": "wrong-password-123"}, conn=local.conn)[0]

        watchers = [threading.Thread(target=sample)]
        watchers += [threading.Thread(target=read_me) for _ in range(args.readers)]
        for w in watchers:
            w.start()
        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            statuses = list(pool.map(wrong_login, range(args.logins)))
        elapsed = time.perf_counter() - started
        done.set()
        for w in watchers:
            w.join()
        time.sleep(1)
        after = rss_kib(server.pid)

        counts = {s: statuses.count(s) for s in sorted(set(statuses))}
        mode = "limits raised (every attempt verified)" if args.no_throttle else "default limits"
        print(f"{args.logins} wrong logins, {args.concurrency} connections, {mode}: "
              f"{elapsed:.1f} s, statuses {counts}")
        print(f"RSS before {before / 1024:.1f} MiB, peak during {peak[0] / 1024:.1f} MiB, "
              f"1 s after {after / 1024:.1f} MiB")
        if latencies:
            ordered = sorted(latencies)
            p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            print(f"GET /me during the flood ({args.readers} connections): {len(latencies)} "
                  f"requests, median {statistics.median(latencies):.2f} ms, "
                  f"mean {statistics.mean(latencies):.2f} ms, p99 {p99:.2f} ms, "
                  f"max {ordered[-1]:.2f} ms")
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


if __name__ == "__main__":
    sys.exit(main())
