"""Creates a board with five columns (no WIP limits) and N tasks spread evenly over them, through
PUT /api/v1/items/by-ref/bench-fill/{n} (create in a column in one request), with 8 threads.

    python3 bench/fill_board.py BASE TOKEN BOARD_KEY N
"""
import json
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

base, token, board, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return json.load(resp)


columns = [("Backlog", "todo"), ("Ready", "todo"), ("In progress", "in_progress"),
           ("Review", "in_progress"), ("Done", "done")]
created = call("POST", "/api/v1/boards", {
    "key": board, "name": f"Benchmark {count}", "lead": 1,
    "columns": [{"name": n, "category": c} for n, c in columns]})
column_ids = [c["id"] for c in created["columns"]]


def make(n):
    call("PUT", f"/api/v1/items/by-ref/bench-fill/{board}-{n}", {
        "board": board, "type": "task", "title": f"Benchmark card {n} of {board}",
        "labels": ["bench"], "column": column_ids[n % len(column_ids)]})


with ThreadPoolExecutor(8) as pool:
    list(pool.map(make, range(count)))
