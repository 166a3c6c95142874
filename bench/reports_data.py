#!/usr/bin/env python3
"""SQL for the reports benchmark: ITEMS items on one board with EVENTS history events over two
years (a `created` event and `moved` events each: forward through the columns, with false
starts and reopenings), written straight into the database (the history's tables, as the
import would fill them); `opsboard reports rebuild` derives the rest.

    python3 bench/reports_data.py BOARD_ID COLUMN_IDS ADMIN_ID [ITEMS] [EVENTS] > data.sql

COLUMN_IDS: the board's column ids in board order, comma-separated (todo…, in progress…, done).
"""
import datetime
import random
import sys

board, columns, admin = int(sys.argv[1]), [int(c) for c in sys.argv[2].split(",")], int(sys.argv[3])
items = int(sys.argv[4]) if len(sys.argv) > 4 else 50_000
events = int(sys.argv[5]) if len(sys.argv) > 5 else 1_000_000
per_item = events // items
rng = random.Random(7)
now = datetime.datetime.utcnow().replace(microsecond=0)
start = now - datetime.timedelta(days=730)
out = sys.stdout
out.write("BEGIN;\n")
item_rows, event_rows = [], []


def flush(force=False):
    if item_rows and (force or len(item_rows) >= 500):
        out.write("INSERT INTO items (id, board_id, number, key, item_type, title, description, column_id, rank, "
                  "priority, created_by, created_at, updated_at, version) VALUES\n" + ",\n".join(item_rows) + ";\n")
        item_rows.clear()
    if event_rows and (force or len(event_rows) >= 2000):
        out.write("INSERT INTO events (entity_type, entity_id, kind, actor_id, data, created_at, origin) VALUES\n"
                  + ",\n".join(event_rows) + ";\n")
        event_rows.clear()


def ts(t):
    return t.strftime("'%Y-%m-%d %H:%M:%S'")


for n in range(items):
    item_id = 1_000_000 + n
    created = start + datetime.timedelta(seconds=rng.randrange(0, 730 * 86400))
    t = created
    position = 0
    path = []
    for _ in range(per_item - 1):
        t += datetime.timedelta(minutes=rng.randrange(30, 60 * 24 * 2))
        if t > now:
            break
        if position == len(columns) - 1 or (position > 1 and rng.random() < 0.15):
            position = max(0, position - rng.choice([1, 2]))  # reopening or a false start
        else:
            position += 1
        path.append((t, columns[position]))
    column = path[-1][1] if path else columns[0]
    item_rows.append(f"({item_id}, {board}, {item_id}, 'BENCH-{item_id}', 'task', 'Bench item {n}', '', "
                     f"{column}, 'm{n:08d}', 'medium', {admin}, {ts(created)}, {ts(t)}, {len(path) + 1})")
    event_rows.append(f"('item', {item_id}, 'created', {admin}, '{{\"column\": {columns[0]}}}', {ts(created)}, 'bench')")
    previous = columns[0]
    for at, to in path:
        event_rows.append(f"('item', {item_id}, 'moved', {admin}, "
                          f"'{{\"from_column\": {previous}, \"to_column\": {to}}}', {ts(at)}, 'bench')")
        previous = to
    flush()
flush(True)
out.write("COMMIT;\n")
