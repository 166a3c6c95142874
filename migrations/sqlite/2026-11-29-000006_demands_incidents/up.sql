-- Demand fields, one row per demand item: intake (who asks, why, by when) and the decision.
CREATE TABLE demand_details (
    item_id            BIGINT  NOT NULL PRIMARY KEY REFERENCES items (id),
    requesting_org_id  BIGINT  REFERENCES organizations (id),
    proposed_service   TEXT,
    desired_date       DATE,
    justification      TEXT    NOT NULL DEFAULT '',
    value              INTEGER CHECK (value BETWEEN 1 AND 5),
    effort             TEXT    CHECK (effort IN ('xs', 's', 'm', 'l', 'xl')),
    decision           TEXT    NOT NULL DEFAULT 'pending'
                               CHECK (decision IN ('pending', 'accepted', 'rejected', 'deferred')),
    decision_reason    TEXT,
    decided_by         BIGINT  REFERENCES users (id),
    decided_at         TIMESTAMP,
    target_quarter     TEXT,
    -- A rejected or deferred demand always says why.
    CHECK (decision IN ('pending', 'accepted') OR decision_reason IS NOT NULL)
);
-- A requester's every read filters by organization.
CREATE INDEX demand_details_org_idx ON demand_details (requesting_org_id);

-- Incident fields, one row per incident item.
CREATE TABLE incident_details (
    item_id            BIGINT    NOT NULL PRIMARY KEY REFERENCES items (id),
    severity           TEXT      NOT NULL CHECK (severity IN ('s1', 's2', 's3', 's4')),
    reported_at        TIMESTAMP NOT NULL,
    reported_by_org_id BIGINT    REFERENCES organizations (id),
    impact             TEXT      NOT NULL DEFAULT '',
    first_response_at  TIMESTAMP,
    resolved_at        TIMESTAMP,
    resolution         TEXT
);

-- The services an incident affects (its own service among them).
CREATE TABLE incident_services (
    item_id    BIGINT NOT NULL REFERENCES items (id),
    service_id BIGINT NOT NULL REFERENCES services (id),
    PRIMARY KEY (item_id, service_id)
);
CREATE INDEX incident_services_service_idx ON incident_services (service_id);

-- Columns where an incident waits for someone outside the team stop its SLA clock.
ALTER TABLE board_columns ADD COLUMN pauses_sla BOOLEAN NOT NULL DEFAULT FALSE;

-- Response and resolution targets per severity, optionally for one service.
CREATE TABLE sla_policies (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    severity           TEXT    NOT NULL CHECK (severity IN ('s1', 's2', 's3', 's4')),
    service_id         BIGINT  REFERENCES services (id),
    response_minutes   INTEGER NOT NULL CHECK (response_minutes > 0),
    resolution_minutes INTEGER NOT NULL CHECK (resolution_minutes > 0),
    clock              TEXT    NOT NULL CHECK (clock IN ('business', 'calendar')),
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL,
    version            BIGINT  NOT NULL DEFAULT 1
);
-- One policy per severity for all services, and one per severity and service.
CREATE UNIQUE INDEX sla_policies_default_idx ON sla_policies (severity) WHERE service_id IS NULL;
CREATE UNIQUE INDEX sla_policies_service_idx ON sla_policies (severity, service_id)
    WHERE service_id IS NOT NULL;
