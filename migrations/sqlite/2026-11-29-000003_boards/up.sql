-- Kanban boards. Items get keys KEY-1, KEY-2, … from next_item_number, never reused.
CREATE TABLE boards (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    key              TEXT    NOT NULL UNIQUE,
    name             TEXT    NOT NULL,
    description      TEXT    NOT NULL DEFAULT '',
    next_item_number BIGINT  NOT NULL DEFAULT 1,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    version          BIGINT  NOT NULL DEFAULT 1
);
CREATE INDEX boards_updated_at_idx ON boards (updated_at);

-- The steps of a board's workflow, in position order.
CREATE TABLE board_columns (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    board_id   BIGINT  NOT NULL REFERENCES boards (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    category   TEXT    NOT NULL CHECK (category IN ('todo', 'in_progress', 'done')),
    wip_limit  INTEGER CHECK (wip_limit IS NULL OR wip_limit > 0),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version    BIGINT  NOT NULL DEFAULT 1
);
-- Column names are unique on a board regardless of case.
CREATE UNIQUE INDEX board_columns_name_key ON board_columns (board_id, lower(name));
CREATE INDEX board_columns_position_idx ON board_columns (board_id, position);
