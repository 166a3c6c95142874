-- Demands, tasks and incidents on boards. Keys (OPS-42) never change and are never reused;
-- deleted items keep their row as a tombstone (deleted_at) so that sync scripts learn of them.
CREATE TABLE items (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    board_id    BIGINT  NOT NULL REFERENCES boards (id),
    number      BIGINT  NOT NULL,
    key         TEXT    NOT NULL UNIQUE,
    item_type   TEXT    NOT NULL CHECK (item_type IN ('demand', 'task', 'incident')),
    title       TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    service_id  BIGINT  REFERENCES services (id),
    column_id   BIGINT  NOT NULL REFERENCES board_columns (id),
    rank        TEXT    NOT NULL,
    priority    TEXT    NOT NULL CHECK (priority IN ('critical', 'high', 'medium', 'low')),
    due_date    DATE,
    created_by  BIGINT  REFERENCES users (id),
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    started_at  TIMESTAMP,
    done_at     TIMESTAMP,
    deleted_at  TIMESTAMP,
    version     BIGINT  NOT NULL DEFAULT 1,
    UNIQUE (board_id, number),
    CHECK (item_type = 'task' OR service_id IS NOT NULL)
);
CREATE INDEX items_column_rank_idx ON items (column_id, rank);
CREATE INDEX items_board_idx ON items (board_id, deleted_at);
CREATE INDEX items_service_idx ON items (service_id);
CREATE INDEX items_updated_at_idx ON items (updated_at, id);

CREATE TABLE item_labels (
    item_id BIGINT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    label   TEXT   NOT NULL,
    PRIMARY KEY (item_id, label)
);
CREATE INDEX item_labels_label_idx ON item_labels (label);

CREATE TABLE item_raci (
    item_id BIGINT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id),
    role    TEXT   NOT NULL CHECK (role IN ('responsible', 'accountable', 'consulted', 'informed')),
    PRIMARY KEY (item_id, user_id, role)
);
-- Exactly one accountable person per item, enforced by the database.
CREATE UNIQUE INDEX item_raci_one_accountable ON item_raci (item_id) WHERE role = 'accountable';
CREATE INDEX item_raci_user_idx ON item_raci (user_id, role);
