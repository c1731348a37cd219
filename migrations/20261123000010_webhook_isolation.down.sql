-- Back below 20261123000010: no circuit per endpoint, no due time on attempts, no wake-up NOTIFY
-- (the lower version finds due deliveries by polling).
--
-- Nothing is refused and nothing is lost: what the lower version cannot hold, the circuit state of
-- each endpoint and the due time of each attempt, is kept aside in the schema
-- `moncreneau_reverted` (tables suffixed with this version) before the columns go. Applying the
-- migration again starts every circuit closed (the lower version kept retrying and disabling
-- endpoints by `failing_since` meanwhile, so the old circuit state is stale by then); the kept
-- values stay there for an operator, and README ("Migrations") shows how to copy them back.

CREATE SCHEMA IF NOT EXISTS moncreneau_reverted;

CREATE TABLE IF NOT EXISTS moncreneau_reverted.webhooks_20261123000010 (
    id                   TEXT PRIMARY KEY,
    consecutive_failures INTEGER NOT NULL,
    circuit_open_until   TIMESTAMPTZ,
    circuit_closed_at    TIMESTAMPTZ,
    kept_at              TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO moncreneau_reverted.webhooks_20261123000010
       (id, consecutive_failures, circuit_open_until, circuit_closed_at)
SELECT id, consecutive_failures, circuit_open_until, circuit_closed_at
  FROM webhooks
 WHERE consecutive_failures > 0 OR circuit_open_until IS NOT NULL OR circuit_closed_at IS NOT NULL
    ON CONFLICT (id) DO UPDATE
   SET consecutive_failures = EXCLUDED.consecutive_failures,
       circuit_open_until   = EXCLUDED.circuit_open_until,
       circuit_closed_at    = EXCLUDED.circuit_closed_at,
       kept_at              = now();

CREATE TABLE IF NOT EXISTS moncreneau_reverted.webhook_attempts_20261123000010 (
    id         BIGINT PRIMARY KEY,
    due_at     TIMESTAMPTZ,
    waited_for TEXT,
    kept_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO moncreneau_reverted.webhook_attempts_20261123000010 (id, due_at, waited_for)
SELECT id, due_at, waited_for
  FROM webhook_attempts
 WHERE due_at IS NOT NULL OR waited_for IS NOT NULL
    ON CONFLICT (id) DO UPDATE
   SET due_at = EXCLUDED.due_at, waited_for = EXCLUDED.waited_for, kept_at = now();

DROP TRIGGER webhook_deliveries_wake_workers ON webhook_deliveries;
DROP FUNCTION webhook_deliveries_wake_workers();
DROP INDEX webhook_deliveries_in_flight_idx;
DROP INDEX webhook_deliveries_endpoint_queue_idx;
ALTER TABLE webhook_attempts DROP COLUMN due_at, DROP COLUMN waited_for;
ALTER TABLE webhooks
    DROP COLUMN consecutive_failures,
    DROP COLUMN circuit_open_until,
    DROP COLUMN circuit_closed_at;
