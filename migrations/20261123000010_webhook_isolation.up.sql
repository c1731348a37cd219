-- One endpoint's failures cost its own deliveries their time and nobody else's.
--
-- A circuit per endpoint: after `consecutive_failures` reaches the configured threshold the
-- endpoint is not tried again before `circuit_open_until`; then one probe goes out, and only a
-- success lets its queue drain. Attempts say when they were due and whether they waited for the
-- circuit. Committed deliveries wake the workers of every process at once (NOTIFY), so the first
-- attempt does not wait for a poll.

ALTER TABLE webhooks
    ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    ADD COLUMN circuit_open_until   TIMESTAMPTZ,
    -- When a success last closed an opened circuit: attempts due before it waited for it.
    ADD COLUMN circuit_closed_at    TIMESTAMPTZ;

ALTER TABLE webhook_attempts
    ADD COLUMN due_at     TIMESTAMPTZ,
    ADD COLUMN waited_for TEXT CHECK (waited_for IN ('CIRCUIT_OPEN'));

-- The claim walks one endpoint's due deliveries in creation order.
CREATE INDEX webhook_deliveries_endpoint_queue_idx
    ON webhook_deliveries (webhook_id, created_at, id) WHERE status = 'PENDING';
-- The attempts in flight (a lease taken and not yet given back), counted at every claim: a few
-- rows, whatever the length of the queues.
CREATE INDEX webhook_deliveries_in_flight_idx
    ON webhook_deliveries (webhook_id) WHERE status = 'PENDING' AND locked_until IS NOT NULL;

-- A delivery due now (a new one, or one queued again by hand) wakes the workers when its
-- transaction commits; NOTIFY folds the notices of one transaction into one.
CREATE FUNCTION webhook_deliveries_wake_workers() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('moncreneau_deliveries', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER webhook_deliveries_wake_workers
    AFTER INSERT OR UPDATE OF next_attempt_at ON webhook_deliveries
    FOR EACH ROW
    WHEN (NEW.status = 'PENDING' AND NEW.next_attempt_at <= now())
    EXECUTE FUNCTION webhook_deliveries_wake_workers();
