-- Municipal administrations as organizations: kinds `amt` and `city`, the district an
-- administration belongs to (`parent_id`), its official key, its seat and, for an Amt, its
-- member municipalities (one name a line). SQLite changes a CHECK by rebuilding the table;
-- foreign keys are off while migrations run (see db::run_migrations), so the rows that refer
-- to organizations keep them.
CREATE TABLE organizations_rebuilt (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    short_name    TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('ministry', 'agency', 'it_operator', 'municipal_association', 'district', 'municipality', 'vendor', 'other', 'amt', 'city')),
    contact_email TEXT,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    version       BIGINT  NOT NULL DEFAULT 1,
    parent_id     BIGINT  REFERENCES organizations (id),
    official_key  TEXT,
    seat          TEXT,
    members       TEXT    NOT NULL DEFAULT ''
);
INSERT INTO organizations_rebuilt (id, short_name, name, kind, contact_email, created_at, updated_at, version)
    SELECT id, short_name, name, kind, contact_email, created_at, updated_at, version FROM organizations;
DROP TABLE organizations;
ALTER TABLE organizations_rebuilt RENAME TO organizations;
CREATE UNIQUE INDEX organizations_short_name_key ON organizations (lower(short_name));
CREATE INDEX organizations_updated_at_idx ON organizations (updated_at);
CREATE INDEX organizations_parent_idx ON organizations (parent_id);

-- Rollout waves of a service: a name, when it starts and when it goes live.
CREATE TABLE rollout_waves (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id      BIGINT  NOT NULL REFERENCES services (id),
    name            TEXT    NOT NULL,
    planned_start   DATE,
    planned_go_live DATE,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    version         BIGINT  NOT NULL DEFAULT 1,
    UNIQUE (service_id, name)
);

-- One entry per (online service, administration) the service is rolled out to.
CREATE TABLE rollout_entries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id      BIGINT  NOT NULL REFERENCES services (id),
    organization_id BIGINT  NOT NULL REFERENCES organizations (id),
    wave_id         BIGINT  REFERENCES rollout_waves (id),
    status          TEXT    NOT NULL CHECK (status IN ('planned', 'preparing', 'technical_ready', 'testing', 'live', 'paused', 'not_applicable')),
    planned_go_live DATE,
    actual_go_live  DATE,
    owner_id        BIGINT  REFERENCES users (id),
    blocker         TEXT,
    checklist       TEXT    NOT NULL DEFAULT '{}',
    notes           TEXT    NOT NULL DEFAULT '',
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    version         BIGINT  NOT NULL DEFAULT 1,
    UNIQUE (service_id, organization_id)
);
CREATE INDEX rollout_entries_organization_idx ON rollout_entries (organization_id);
CREATE INDEX rollout_entries_wave_idx ON rollout_entries (wave_id);
CREATE INDEX rollout_entries_updated_at_idx ON rollout_entries (updated_at, id);

-- Items that block a rollout entry (`blocked_by`), shown from both ends.
CREATE TABLE rollout_blockers (
    entry_id BIGINT NOT NULL REFERENCES rollout_entries (id),
    item_id  BIGINT NOT NULL REFERENCES items (id),
    PRIMARY KEY (entry_id, item_id)
);
CREATE INDEX rollout_blockers_item_idx ON rollout_blockers (item_id);
