-- Bookings of one department that arrive together are written together: one call, one
-- transaction, one commit flush for all of them, instead of one each, all waiting in turn on
-- the department's and the credit account's row locks (held until each commit). Each booking
-- is still the one statement of a lone booking, in a subtransaction of its own, so that one
-- refused (capacity, staff member busy, duplicate, no credit) leaves the others as they are;
-- every constraint and trigger runs for each as for a lone one.
--
-- `bookings` is a JSON array of what the lone statement binds (see store::appointments,
-- `write_together`); one row answers each booking, in their order: `booked`, `stale` (the
-- department, staff member, threshold or key changed since it was decided: nothing written),
-- `key_refused`, or `refused` with the error's SQLSTATE, constraint and message (nothing
-- written).
CREATE FUNCTION book_appointments(bookings jsonb)
RETURNS TABLE (appointment_id bigint, outcome text, error_code text, error_constraint text,
               error_message text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    booking record;
    booked  boolean;
    valid   boolean;
BEGIN
    FOR booking IN
        SELECT * FROM jsonb_to_recordset(bookings) AS x (
            department_id bigint, version text, worker_id bigint, id bigint,
            organization_id bigint, livemode boolean, starts_at timestamptz,
            ends_at timestamptz, local_starts_at timestamp, timezone text, status text, name text,
            external_user_id text, phone text, email text, notes text, metadata jsonb,
            check_in_token text, credits_consumed integer, sequence integer,
            created_at timestamptz, event_id text, event_type text, payload jsonb,
            low_balance_threshold bigint, announcements jsonb, key_id text)
    LOOP
        appointment_id := booking.id;
        error_code := NULL;
        error_constraint := NULL;
        error_message := NULL;
        BEGIN
            WITH k AS (
                SELECT 1 FROM api_keys k
                 WHERE k.id = booking.key_id AND k.revoked_at IS NULL
                   AND (k.expires_at IS NULL OR k.expires_at > now())
            ), d AS (
                SELECT d.id FROM departments d
                 WHERE d.id = booking.department_id AND d.xmin::text = booking.version
                   AND EXISTS (SELECT 1 FROM k)
                   AND EXISTS (SELECT 1 FROM credit_accounts c
                                WHERE c.organization_id = booking.organization_id
                                  AND c.livemode = booking.livemode
                                  AND c.low_balance_threshold = booking.low_balance_threshold)
                   FOR NO KEY UPDATE
            ), w AS (
                SELECT w.id FROM workers w
                 WHERE w.id = booking.worker_id AND w.department_id = booking.department_id
                   AND w.is_active
                   FOR SHARE
            ), a AS (
                INSERT INTO appointments (id, organization_id, livemode, department_id, worker_id,
                                          starts_at, ends_at, local_starts_at, timezone, status,
                                          name, external_user_id, phone, email, notes, metadata,
                                          check_in_token, credits_consumed, sequence, created_at,
                                          updated_at)
                SELECT booking.id, booking.organization_id, booking.livemode, d.id,
                       booking.worker_id, booking.starts_at, booking.ends_at,
                       booking.local_starts_at, booking.timezone, booking.status, booking.name,
                       booking.external_user_id, booking.phone, booking.email, booking.notes,
                       booking.metadata, booking.check_in_token, booking.credits_consumed,
                       booking.sequence, booking.created_at, booking.created_at
                  FROM d
                 WHERE booking.worker_id IS NULL OR EXISTS (SELECT 1 FROM w)
                RETURNING id
            ), l AS (
                INSERT INTO credit_transactions (organization_id, livemode, type, amount,
                                                 appointment_id)
                SELECT booking.organization_id, booking.livemode, 'CONSUMPTION',
                       -booking.credits_consumed::bigint, a.id
                  FROM a
                RETURNING balance_after
            ), e AS (
                INSERT INTO events (id, organization_id, livemode, type, appointment_id, sequence,
                                    payload)
                SELECT booking.event_id, booking.organization_id, booking.livemode,
                       booking.event_type, a.id, booking.sequence, booking.payload
                  FROM a
            ), announced AS (
                INSERT INTO events (id, organization_id, livemode, type, payload)
                SELECT n.id, booking.organization_id, booking.livemode, n.kind, n.payload
                  FROM l, jsonb_to_recordset(booking.announcements)
                          AS n (id text, kind text, payload jsonb, after bigint)
                 WHERE n.after = l.balance_after
            )
            SELECT EXISTS (SELECT 1 FROM a), EXISTS (SELECT 1 FROM k) INTO booked, valid;
            outcome := CASE WHEN booked THEN 'booked' WHEN valid THEN 'stale' ELSE 'key_refused' END;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS error_code = RETURNED_SQLSTATE,
                                    error_constraint = CONSTRAINT_NAME,
                                    error_message = MESSAGE_TEXT;
            outcome := 'refused';
        END;
        RETURN NEXT;
    END LOOP;
END
$$;
