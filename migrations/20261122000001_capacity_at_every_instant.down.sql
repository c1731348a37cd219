-- Back below 20261122000001: capacity as seats numbered per slot start, ledger lines numbered
-- before the account's lock, idempotency keys with an IN_FLIGHT state.
--
-- Each live appointment gets a seat 0, 1, … among the live appointments of its department that
-- start at the same instant, in booking (id) order; cancelled ones get seat 0 (the lower version
-- never reads a cancelled appointment's seat). Every idempotency key is DONE, as it was.
-- `longest_appointment` is derived data: applying the migration again computes it afresh.
--
-- Refused when some slot start holds more live appointments than its department's capacity (a
-- capacity lowered under existing bookings, which the lower version cannot number within its
-- seats). With `moncreneau migrate --revert --discard` the revert goes on and those appointments
-- keep seats numbered at or above the capacity, as the lower version itself left them when a
-- capacity was lowered: no appointment is cancelled or deleted, but the lower version does not
-- count them, so what is discarded is the bound of those slots until they pass.

DO $$
DECLARE
    crowded BIGINT;
BEGIN
    SELECT count(*) INTO crowded
      FROM (SELECT 1
              FROM appointments a JOIN departments d ON d.id = a.department_id
             WHERE a.status <> 'CANCELLED'
             GROUP BY a.department_id, a.starts_at, d.capacity
            HAVING count(*) > d.capacity) AS over;
    IF crowded > 0
       AND coalesce(current_setting('moncreneau.revert_discards', true), '') <> 'on' THEN
        RAISE EXCEPTION 'reverting 20261122000001 (capacity at every instant) cannot seat the appointments of % slots holding more live appointments than their capacity',
            crowded
            USING HINT = 'Add --discard to moncreneau migrate --revert to revert anyway, seats above capacity kept.';
    END IF;
END
$$;

DROP TRIGGER appointments_within_capacity ON appointments;
DROP FUNCTION appointments_within_capacity();
ALTER TABLE departments DROP COLUMN longest_appointment;
ALTER TABLE appointments DROP CONSTRAINT appointments_at_most_one_day;

-- Filled before the trigger exists, so the appointments kept above a lowered capacity pass.
-- Added with a default, the column costs no rewrite; only the rows whose seat is not 0 (the
-- second and later appointments of a slot start) are written, then the default goes, as the
-- lower version had none.
ALTER TABLE appointments
    ADD COLUMN seat INTEGER NOT NULL DEFAULT 0 CONSTRAINT appointments_seat_check CHECK (seat >= 0);
UPDATE appointments a
   SET seat = numbered.seat
  FROM (SELECT id, row_number() OVER (PARTITION BY department_id, starts_at ORDER BY id) - 1 AS seat
          FROM appointments
         WHERE status <> 'CANCELLED') AS numbered
 WHERE a.id = numbered.id AND numbered.seat > 0;
ALTER TABLE appointments ALTER COLUMN seat DROP DEFAULT;
CREATE UNIQUE INDEX appointments_seat_key
    ON appointments (department_id, starts_at, seat) WHERE status <> 'CANCELLED';

-- The functions below are restored as 20261121000001 wrote them, to the byte.
CREATE FUNCTION appointments_seat_within_capacity() RETURNS trigger AS $$
DECLARE
    cap INTEGER;
BEGIN
    IF NEW.status = 'CANCELLED' THEN
        RETURN NEW;
    END IF;
    SELECT capacity INTO cap FROM departments WHERE id = NEW.department_id;
    IF NEW.seat >= cap THEN
        RAISE EXCEPTION 'seat % exceeds capacity % of department %', NEW.seat, cap, NEW.department_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'appointments_seat_within_capacity';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER appointments_seat_within_capacity
    BEFORE INSERT OR UPDATE OF seat, starts_at, department_id ON appointments
    FOR EACH ROW EXECUTE FUNCTION appointments_seat_within_capacity();

CREATE OR REPLACE FUNCTION credit_transactions_apply() RETURNS trigger AS $$
BEGIN
    UPDATE credit_accounts
       SET balance  = balance + NEW.amount,
           consumed = consumed + CASE WHEN NEW.type = 'CONSUMPTION' THEN -NEW.amount ELSE 0 END,
           refunded = refunded + CASE WHEN NEW.type = 'REFUND' THEN NEW.amount ELSE 0 END
     WHERE organization_id = NEW.organization_id AND livemode = NEW.livemode
    RETURNING balance INTO NEW.balance_after;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

-- Every key left is DONE: the lower version's IN_FLIGHT claims never existed above it.
ALTER TABLE idempotency_keys
    ALTER COLUMN response_status DROP NOT NULL,
    ALTER COLUMN response_body DROP NOT NULL,
    ADD COLUMN state TEXT NOT NULL DEFAULT 'DONE'
        CONSTRAINT idempotency_keys_state_check CHECK (state IN ('IN_FLIGHT', 'DONE')),
    ADD COLUMN locked_until TIMESTAMPTZ;
ALTER TABLE idempotency_keys
    ALTER COLUMN state DROP DEFAULT,
    ADD CONSTRAINT idempotency_keys_check
        CHECK ((state = 'DONE') = (response_status IS NOT NULL AND response_body IS NOT NULL));
