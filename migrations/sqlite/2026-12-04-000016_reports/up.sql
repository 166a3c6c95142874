-- Reports: what the flow metrics read, derived from the items' history and kept in the same
-- transaction as the events (src/reports/derive.rs); `opsboard reports rebuild` recomputes it.

-- Each stay of an item in a column: entered, left (NULL while it is there), and the column's
-- category at the time it was derived.
CREATE TABLE item_intervals (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id    BIGINT    NOT NULL REFERENCES items (id),
    board_id   BIGINT    NOT NULL,
    column_id  BIGINT    NOT NULL,
    category   TEXT      NOT NULL,
    entered_at TIMESTAMP NOT NULL,
    left_at    TIMESTAMP
);
CREATE INDEX item_intervals_item_idx ON item_intervals (item_id, entered_at);
CREATE INDEX item_intervals_board_idx ON item_intervals (board_id, entered_at);
-- The intervals a range of days overlaps: those still open, and those left since its start.
CREATE INDEX item_intervals_left_idx ON item_intervals (board_id, left_at);

-- Each item's start, finish and reopenings by the definitions of the flow report.
CREATE TABLE item_flow (
    item_id          BIGINT    PRIMARY KEY REFERENCES items (id),
    board_id         BIGINT    NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    started_at       TIMESTAMP,
    finished_at      TIMESTAMP,
    reopen_count     INTEGER   NOT NULL,
    skipped_wip      BOOLEAN   NOT NULL,
    progress_seconds BIGINT    NOT NULL,
    deleted_at       TIMESTAMP
);
CREATE INDEX item_flow_finished_idx ON item_flow (board_id, finished_at);
CREATE INDEX item_flow_started_idx ON item_flow (board_id, started_at);
