-- Webhooks: endpoints, one delivery job per (event, endpoint) written in the event's own
-- transaction, and a log of every attempt.

CREATE TABLE webhooks (
    id                          TEXT PRIMARY KEY,
    organization_id             BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    livemode                    BOOLEAN NOT NULL,
    url                         TEXT NOT NULL,
    events                      TEXT[] NOT NULL CHECK (cardinality(events) > 0),
    description                 TEXT,
    secret                      TEXT NOT NULL,
    -- During a rotation the previous secret keeps signing until it expires.
    previous_secret             TEXT,
    previous_secret_expires_at  TIMESTAMPTZ,
    active                      BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason             TEXT,
    -- First failure since the last success; 3 days of it disables the endpoint.
    failing_since               TIMESTAMPTZ,
    created_at                  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_owner_idx ON webhooks (organization_id, livemode);

-- The delivery queue. A worker claims a due row by setting `locked_until` (a lease) in one
-- statement with FOR UPDATE SKIP LOCKED, so each attempt belongs to exactly one worker; a worker
-- that dies leaves a lease that expires, and the attempt is made again.
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    status          TEXT NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ,
    locked_until    TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (webhook_id, event_id),
    CHECK ((status = 'PENDING') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'PENDING';

CREATE TABLE webhook_attempts (
    id              BIGSERIAL PRIMARY KEY,
    delivery_id     TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt         INTEGER NOT NULL,
    status_code     INTEGER,
    duration_ms     INTEGER NOT NULL,
    error           TEXT,
    next_attempt_at TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);

CREATE INDEX events_type_idx ON events (organization_id, livemode, type, created_at DESC);
