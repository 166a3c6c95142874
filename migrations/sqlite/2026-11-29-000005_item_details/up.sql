-- Discussion on items. Editing keeps an edited flag; deleting leaves a tombstone.
CREATE TABLE item_comments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id    BIGINT  NOT NULL REFERENCES items (id),
    author_id  BIGINT  NOT NULL REFERENCES users (id),
    body       TEXT    NOT NULL,
    edited     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP,
    version    BIGINT  NOT NULL DEFAULT 1
);
CREATE INDEX item_comments_item_idx ON item_comments (item_id, id);

-- Links between items, stored once (blocks, relates, duplicates) and shown from both ends.
CREATE TABLE item_links (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id  BIGINT  NOT NULL REFERENCES items (id),
    target_id  BIGINT  NOT NULL REFERENCES items (id),
    kind       TEXT    NOT NULL CHECK (kind IN ('blocks', 'relates', 'duplicates')),
    created_by BIGINT  REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    CHECK (source_id <> target_id),
    UNIQUE (source_id, target_id, kind)
);
CREATE INDEX item_links_target_idx ON item_links (target_id);

-- References to the same item in other systems (JIRA, OpenProject), one per system, for sync.
CREATE TABLE item_external_refs (
    item_id BIGINT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    system  TEXT   NOT NULL,
    ext_key TEXT   NOT NULL,
    url     TEXT,
    PRIMARY KEY (item_id, system),
    UNIQUE (system, ext_key)
);
