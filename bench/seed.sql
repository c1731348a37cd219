-- Adds :add past appointments to the organization :org of bench/run.sh, for the runs at 10x and
-- 100x the appointments, half in each of its departments :book_dept (30-minute slots) and
-- :avail_dept (15-minute slots), each on a half-hour of its own before the earliest one there, as
-- COMPLETED history, each with its ledger consumption (after one grant of :add, so the balance
-- is unchanged) and its appointment.created event. Triggers (and so foreign-key checks) are off
-- for speed; the rows are what they would have written, and the checks at the end fail the run
-- if not.
\set ON_ERROR_STOP on
SET session_replication_role = replica;
BEGIN;
SELECT coalesce(max(id), 0) AS before FROM appointments \gset
SELECT date_trunc('hour', least(min(starts_at), now())) AS first FROM appointments \gset
INSERT INTO appointments (organization_id, livemode, department_id, starts_at, ends_at, local_starts_at, timezone,
                          status, name, email, check_in_token, created_at, updated_at)
SELECT :org, true, d.id, at, at + d.length, at AT TIME ZONE 'UTC', 'UTC', 'COMPLETED', 'History ' || i,
       'history' || i || '@example.test', md5(i::text || :'first'), at - interval '3 days', at
  FROM generate_series(1, :add) i,
       LATERAL (SELECT timestamptz :'first' - i * interval '30 minutes' AS at) t,
       LATERAL (SELECT CASE WHEN i % 2 = 0 THEN :book_dept ELSE :avail_dept END AS id,
                       CASE WHEN i % 2 = 0 THEN interval '30 minutes' ELSE interval '15 minutes' END AS length) d
 ORDER BY at;
SELECT balance FROM credit_accounts WHERE organization_id = :org AND livemode \gset
INSERT INTO credit_transactions (organization_id, livemode, type, amount, reason, balance_after)
VALUES (:org, true, 'GRANT', :add, 'Bench history', :balance + :add);
INSERT INTO credit_transactions (organization_id, livemode, type, amount, appointment_id, balance_after, created_at)
SELECT :org, true, 'CONSUMPTION', -1, id, :balance + :add - row_number() OVER (ORDER BY id), created_at
  FROM appointments WHERE id > :before ORDER BY id;
UPDATE credit_accounts SET consumed = consumed + :add WHERE organization_id = :org AND livemode;
INSERT INTO events (id, organization_id, livemode, type, appointment_id, sequence, payload, created_at)
SELECT 'evt_' || md5('history' || a.id), a.organization_id, true, 'appointment.created', a.id, 1,
       jsonb_build_object('id', 'evt_' || md5('history' || a.id), 'type', 'appointment.created',
                          'created', to_char(a.created_at, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), 'livemode', true,
                          'sequence', 1,
                          'data', jsonb_build_object('object', jsonb_build_object(
                              'id', a.id, 'departmentId', a.department_id, 'status', 'CONFIRMED',
                              'dateTime', a.local_starts_at, 'name', a.name, 'email', a.email, 'creditsUsed', 1))),
       a.created_at
  FROM appointments a WHERE a.id > :before;
-- What the triggers guarantee, checked: the balance is the ledger's sum and every seeded
-- appointment has its consumption. Capacity holds by construction: each seeded appointment is
-- alone on its interval, before every other appointment.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM credit_accounts c
                WHERE balance <> (SELECT coalesce(sum(amount), 0) FROM credit_transactions t
                                   WHERE t.organization_id = c.organization_id AND t.livemode = c.livemode)) THEN
        RAISE EXCEPTION 'a balance differs from its ledger';
    END IF;
END
$$;
SELECT count(*) = 0 AS ok FROM appointments a
 WHERE a.id > :before
   AND NOT EXISTS (SELECT 1 FROM credit_transactions t WHERE t.appointment_id = a.id AND t.type = 'CONSUMPTION') \gset
\if :ok
\else
  \echo 'seed: an appointment without its consumption'
  \quit 3
\endif
COMMIT;
SET session_replication_role = DEFAULT;
ANALYZE appointments;
ANALYZE credit_transactions;
ANALYZE events;
