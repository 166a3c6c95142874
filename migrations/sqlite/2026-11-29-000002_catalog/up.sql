-- Stakeholder organizations: ministries, agencies, IT operators, municipal bodies, vendors.
CREATE TABLE organizations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    short_name    TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('ministry', 'agency', 'it_operator', 'municipal_association', 'district', 'municipality', 'vendor', 'other')),
    contact_email TEXT,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    version       BIGINT  NOT NULL DEFAULT 1
);
-- Short names are unique regardless of case ("FM" and "fm" are the same body).
CREATE UNIQUE INDEX organizations_short_name_key ON organizations (lower(short_name));
CREATE INDEX organizations_updated_at_idx ON organizations (updated_at);

-- The catalogue of online services ("Onlinedienste").
CREATE TABLE services (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    key            TEXT    NOT NULL UNIQUE,
    name           TEXT    NOT NULL,
    description    TEXT    NOT NULL DEFAULT '',
    lifecycle      TEXT    NOT NULL CHECK (lifecycle IN ('planned', 'pilot', 'productive', 'retired')),
    kind           TEXT    NOT NULL CHECK (kind IN ('efa', 'own', 'reuse')),
    maturity_level SMALLINT NOT NULL CHECK (maturity_level BETWEEN 0 AND 4),
    ozg_id         TEXT,
    topic          TEXT,
    operator_id    BIGINT  REFERENCES organizations (id),
    responsible_id BIGINT  REFERENCES organizations (id),
    url            TEXT,
    go_live_date   DATE,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    version        BIGINT  NOT NULL DEFAULT 1,
    raci_version   BIGINT  NOT NULL DEFAULT 1
);
CREATE INDEX services_name_idx ON services (name, id);
CREATE INDEX services_updated_at_idx ON services (updated_at, id);
CREATE INDEX services_operator_idx ON services (operator_id);
CREATE INDEX services_responsible_idx ON services (responsible_id);

-- LeiKa service keys of a service, in the order given.
CREATE TABLE service_leika_keys (
    service_id BIGINT  NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    leika_key  TEXT    NOT NULL CHECK (length(leika_key) = 14),
    position   INTEGER NOT NULL,
    PRIMARY KEY (service_id, leika_key)
);
CREATE INDEX service_leika_keys_key_idx ON service_leika_keys (leika_key);

-- Free tags of a service.
CREATE TABLE service_tags (
    service_id BIGINT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    tag        TEXT   NOT NULL,
    PRIMARY KEY (service_id, tag)
);
CREATE INDEX service_tags_tag_idx ON service_tags (tag);

-- The RACI template of a service, copied onto its new items.
CREATE TABLE service_raci (
    service_id BIGINT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id),
    role       TEXT   NOT NULL CHECK (role IN ('responsible', 'accountable', 'consulted', 'informed')),
    PRIMARY KEY (service_id, user_id, role)
);
-- Exactly one accountable person per service, enforced by the database.
CREATE UNIQUE INDEX service_raci_one_accountable ON service_raci (service_id) WHERE role = 'accountable';
CREATE INDEX service_raci_user_idx ON service_raci (user_id, role);
