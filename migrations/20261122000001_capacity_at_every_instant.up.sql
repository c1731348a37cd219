-- Capacity means people at once. Seats numbered per slot start could not hold it once a
-- department changed: a lowered capacity left seats above it occupied and uncounted, and a new
-- slot length or opening hours let a slot overlap one booked on the old grid. The rule now:
-- at every instant, the appointments of a department that are not cancelled and whose
-- [starts_at, ends_at) contains it number at most the department's capacity. Schedule changes
-- never move nor cancel an appointment; a booking is refused while any instant of its interval is
-- at capacity, whatever grid the others were booked on.

DROP TRIGGER appointments_seat_within_capacity ON appointments;
DROP FUNCTION appointments_seat_within_capacity();
DROP INDEX appointments_seat_key;
ALTER TABLE appointments DROP COLUMN seat;

-- A slot lasts at most a day (slot_duration <= 1440), which bounds the search for overlaps.
ALTER TABLE appointments
    ADD CONSTRAINT appointments_at_most_one_day CHECK (ends_at <= starts_at + interval '1 day');
-- The longest appointment a department ever held bounds it tighter: an appointment overlapping
-- an instant started less than that long before it. Only ever raised, by the trigger below.
ALTER TABLE departments
    ADD COLUMN longest_appointment INTERVAL NOT NULL DEFAULT interval '0'
        CHECK (longest_appointment <= interval '1 day');
UPDATE departments d
   SET longest_appointment = (SELECT max(a.ends_at - a.starts_at) FROM appointments a WHERE a.department_id = d.id)
 WHERE EXISTS (SELECT 1 FROM appointments a WHERE a.department_id = d.id);

CREATE FUNCTION appointments_within_capacity() RETURNS trigger AS $$
DECLARE
    cap     INTEGER;
    longest INTERVAL;
    peak    BIGINT;
BEGIN
    IF NEW.status = 'CANCELLED' THEN
        RETURN NEW;
    END IF;
    -- A live appointment that keeps its interval takes no new place (a status or contact change,
    -- even above a lowered capacity).
    IF TG_OP = 'UPDATE' AND OLD.status <> 'CANCELLED' AND OLD.department_id = NEW.department_id
       AND OLD.starts_at = NEW.starts_at AND OLD.ends_at = NEW.ends_at THEN
        RETURN NEW;
    END IF;
    -- The department's row lock serialises every change of its load with every other one and
    -- with changes of its capacity, on any number of server processes.
    SELECT capacity, longest_appointment INTO cap, longest
      FROM departments WHERE id = NEW.department_id FOR NO KEY UPDATE;
    IF NEW.ends_at - NEW.starts_at > longest THEN
        longest := NEW.ends_at - NEW.starts_at;
        UPDATE departments SET longest_appointment = longest WHERE id = NEW.department_id;
    END IF;
    -- The load is highest at the new start or at a start of another appointment inside the new
    -- interval: it only rises at starts.
    SELECT max(load) INTO peak
      FROM (SELECT (SELECT count(*) FROM appointments o
                     WHERE o.department_id = NEW.department_id AND o.status <> 'CANCELLED'
                       AND o.id <> NEW.id
                       AND o.starts_at <= point.at AND o.ends_at > point.at
                       AND o.starts_at > point.at - longest) AS load
              FROM (SELECT NEW.starts_at AS at
                    UNION
                    SELECT o.starts_at FROM appointments o
                     WHERE o.department_id = NEW.department_id AND o.status <> 'CANCELLED'
                       AND o.id <> NEW.id
                       AND o.starts_at > NEW.starts_at AND o.starts_at < NEW.ends_at) AS point
           ) AS loads;
    IF peak >= cap THEN
        RAISE EXCEPTION 'department % serves % people at once already', NEW.department_id, peak
            USING ERRCODE = 'check_violation', CONSTRAINT = 'appointments_within_capacity';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER appointments_within_capacity
    BEFORE INSERT OR UPDATE OF starts_at, ends_at, department_id, status ON appointments
    FOR EACH ROW EXECUTE FUNCTION appointments_within_capacity();

-- The ledger reads like a bank statement. Lines were numbered when inserted, before the trigger
-- took the account's row lock, so two racing lines could be numbered in the other order than the
-- one in which they changed the balance. Numbered under that lock (held until commit), the order
-- of ids is the order of balances.
CREATE OR REPLACE FUNCTION credit_transactions_apply() RETURNS trigger AS $$
BEGIN
    UPDATE credit_accounts
       SET balance  = balance + NEW.amount,
           consumed = consumed + CASE WHEN NEW.type = 'CONSUMPTION' THEN -NEW.amount ELSE 0 END,
           refunded = refunded + CASE WHEN NEW.type = 'REFUND' THEN NEW.amount ELSE 0 END
     WHERE organization_id = NEW.organization_id AND livemode = NEW.livemode
    RETURNING balance INTO NEW.balance_after;
    NEW.id := nextval(pg_get_serial_sequence('credit_transactions', 'id'));
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

-- Idempotency keys are held by the booking's own transaction (an advisory lock) and written in
-- it: a key exists exactly when its first request's outcome committed, so a lost answer to COMMIT
-- is replayed and a request that did not commit leaves the key free. No IN_FLIGHT state remains.
DELETE FROM idempotency_keys WHERE state <> 'DONE';
ALTER TABLE idempotency_keys DROP COLUMN state, DROP COLUMN locked_until;
ALTER TABLE idempotency_keys
    ALTER COLUMN response_status SET NOT NULL,
    ALTER COLUMN response_body SET NOT NULL;
