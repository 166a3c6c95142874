-- Sync, part 1: what scripts that mirror opsboard to JIRA or OpenProject need.

-- This database's identity: cursors of the changes feed carry it, so that a cursor from another
-- database (a restore, a second installation) is refused instead of silently skipping events.
CREATE TABLE installation (
    id         TEXT PRIMARY KEY,
    created_at TIMESTAMP NOT NULL
);
INSERT INTO installation (id, created_at) VALUES (lower(hex(randomblob(16))), strftime('%Y-%m-%d %H:%M:%f', 'now'));

-- API tokens for scripts: a user's identity narrowed by scopes, stored only as a hash.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      BIGINT    NOT NULL REFERENCES users (id),
    name         TEXT      NOT NULL,
    secret_hash  TEXT      NOT NULL UNIQUE,
    prefix       TEXT      NOT NULL,
    scopes       TEXT      NOT NULL,
    origin       TEXT,
    expires_at   TIMESTAMP NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    created_by   BIGINT    REFERENCES users (id),
    last_used_at TIMESTAMP,
    revoked_at   TIMESTAMP,
    revoked_by   BIGINT    REFERENCES users (id)
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id, id);

-- Events: the origin of the write (a token's, or X-Opsboard-Origin), the token it came
-- through, its position in the changes feed, and for item events the item after the change.
-- SQLite has one writer at a time, so the order of ids is the order of commits: the trigger
-- makes `seq` the id.
ALTER TABLE events ADD COLUMN origin TEXT;
ALTER TABLE events ADD COLUMN token_id BIGINT;
ALTER TABLE events ADD COLUMN seq BIGINT;
ALTER TABLE events ADD COLUMN item_snapshot TEXT;
UPDATE events SET seq = id;
CREATE UNIQUE INDEX events_seq_key ON events (seq);
CREATE TRIGGER events_seq_from_id AFTER INSERT ON events WHEN NEW.seq IS NULL
BEGIN
    UPDATE events SET seq = NEW.id WHERE id = NEW.id;
END;

-- Idempotency-Key: the first response to a request, per caller and key, for 24 hours.
CREATE TABLE idempotency_keys (
    principal        TEXT      NOT NULL,
    idempotency_key  TEXT      NOT NULL,
    fingerprint      TEXT      NOT NULL,
    method           TEXT      NOT NULL,
    path             TEXT      NOT NULL,
    status           INTEGER,
    response_headers TEXT,
    response_body    BLOB,
    created_at       TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (principal, idempotency_key)
);
CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_at);

-- External references: `ext_key` is the remote's stable id (Jira's numeric issue id), `alias`
-- its human key (OZG-123), `source_updated_at` the remote's own time of the last applied change.
ALTER TABLE item_external_refs ADD COLUMN alias TEXT;
ALTER TABLE item_external_refs ADD COLUMN source_updated_at TIMESTAMP;

-- The same for comments mirrored from another system.
CREATE TABLE comment_external_refs (
    comment_id        BIGINT NOT NULL REFERENCES item_comments (id) ON DELETE CASCADE,
    system            TEXT   NOT NULL,
    ext_key           TEXT   NOT NULL,
    url               TEXT,
    source_updated_at TIMESTAMP,
    PRIMARY KEY (comment_id, system),
    UNIQUE (system, ext_key)
);
