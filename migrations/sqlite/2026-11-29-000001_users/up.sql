-- People with a login. E-mail is stored lower-cased, so the unique index is case-insensitive.
CREATE TABLE users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    email           TEXT    NOT NULL,
    display_name    TEXT    NOT NULL,
    role            TEXT    NOT NULL CHECK (role IN ('admin', 'manager', 'member', 'viewer', 'requester')),
    organization_id BIGINT,
    password_hash   TEXT    NOT NULL,
    active          BOOLEAN NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    version         BIGINT  NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_updated_at_idx ON users (updated_at);

-- The append-only history of every change; written in the same transaction as the change.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    entity_type TEXT    NOT NULL,
    entity_id   BIGINT  NOT NULL,
    kind        TEXT    NOT NULL,
    actor_id    BIGINT  REFERENCES users (id),
    data        TEXT    NOT NULL DEFAULT '{}',
    created_at  TIMESTAMP NOT NULL
);
CREATE INDEX events_entity_idx ON events (entity_type, entity_id, id);
