-- Rate limits per API key (one fixed window per hour, shared by every server process) and
-- idempotency keys of POST /appointments.

CREATE TABLE rate_limit_windows (
    key_id       TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    window_start TIMESTAMPTZ NOT NULL,
    requests     INTEGER NOT NULL,
    PRIMARY KEY (key_id, window_start)
);

-- One row per (organization, mode, key). IN_FLIGHT while the first request runs (its claim
-- expires, so a request that died does not hold the key forever); DONE with the exact response
-- to replay. A successful booking stores its response in its own transaction.
CREATE TABLE idempotency_keys (
    organization_id BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    livemode        BOOLEAN NOT NULL,
    key             TEXT NOT NULL,
    request_hash    BYTEA NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('IN_FLIGHT', 'DONE')),
    locked_until    TIMESTAMPTZ,
    response_status INTEGER,
    response_body   BYTEA,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, livemode, key),
    CHECK ((state = 'DONE') = (response_status IS NOT NULL AND response_body IS NOT NULL))
);
