-- Webhooks: subscriptions of receivers to the events of the history, and the outbox of their
-- deliveries (one row per event and subscription, written in the event's own transaction).

-- A subscription. `events` is `*` or the kinds between commas (`,created,moved,`), so that one
-- LIKE matches a kind. The secret signs every delivery (it must be kept in clear to sign);
-- after a rotation the previous one signs too until `previous_secret_expires_at`.
CREATE TABLE webhook_subscriptions (
    id                         INTEGER   PRIMARY KEY AUTOINCREMENT,
    url                        TEXT      NOT NULL,
    events                     TEXT      NOT NULL,
    entity_type                TEXT,
    board_id                   BIGINT    REFERENCES boards (id) ON DELETE CASCADE,
    description                TEXT      NOT NULL,
    active                     BOOLEAN   NOT NULL,
    secret                     TEXT      NOT NULL,
    previous_secret            TEXT,
    previous_secret_expires_at TIMESTAMP,
    failing_since              TIMESTAMP,
    disabled_reason            TEXT,
    created_by                 BIGINT    REFERENCES users (id),
    created_at                 TIMESTAMP NOT NULL,
    updated_at                 TIMESTAMP NOT NULL,
    version                    BIGINT    NOT NULL
);
CREATE INDEX webhook_subscriptions_active_idx ON webhook_subscriptions (active);

-- The outbox. `status`: pending (to be sent at `next_attempt_at`), delivered, failed (given
-- up). A worker claims a row by setting `claimed_by`/`claimed_until` (a lease that another
-- instance takes over once it has passed). `payload` is the body, built at the first attempt
-- from the event (which then has its position in the feed) and sent unchanged on every retry.
CREATE TABLE webhook_deliveries (
    id              INTEGER   PRIMARY KEY AUTOINCREMENT,
    subscription_id BIGINT    NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_id        BIGINT    REFERENCES events (id),
    message_id      TEXT      NOT NULL,
    event_type      TEXT      NOT NULL,
    entity_type     TEXT,
    entity_id       BIGINT,
    payload         TEXT,
    status          TEXT      NOT NULL,
    attempts        INTEGER   NOT NULL,
    next_attempt_at TIMESTAMP,
    claimed_by      TEXT,
    claimed_until   TIMESTAMP,
    last_attempt_at TIMESTAMP,
    last_status     INTEGER,
    last_response   TEXT,
    last_error      TEXT,
    created_at      TIMESTAMP NOT NULL,
    delivered_at    TIMESTAMP
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_subscription_idx ON webhook_deliveries (subscription_id, id);
CREATE INDEX webhook_deliveries_order_idx
    ON webhook_deliveries (subscription_id, entity_type, entity_id, event_id);
