-- The bare-SQL ceiling of a booking for pgbench (bench/run.sh): the writes of
-- src/store/appointments.rs `book` (appointment, ledger line whose trigger moves the balance,
-- event whose trigger writes a delivery per subscribed webhook) as plain statements in one
-- transaction, in the same organization and department as the HTTP bookings, so they contend on
-- the same rows.
-- The slots are drawn from 570 years from 2030 on (far past any slot the HTTP load books), so
-- capacity never refuses one. :org, :dept and :payload (a real appointment.created body) come
-- from `pgbench -D`.
\set n random(0, 9999999)
BEGIN;
INSERT INTO appointments (organization_id, livemode, department_id, starts_at, ends_at, local_starts_at,
                          timezone, name, metadata, check_in_token)
VALUES (:org, true, :dept, timestamptz '2030-01-01 00:00Z' + :n * interval '30 minutes',
        timestamptz '2030-01-01 00:30Z' + :n * interval '30 minutes',
        timestamp '2030-01-01 00:00' + :n * interval '30 minutes', 'UTC', 'Ceiling ' || :n, '{}',
        md5(random()::text) || md5(random()::text))
RETURNING id AS appointment \gset
INSERT INTO credit_transactions (organization_id, livemode, type, amount, appointment_id)
VALUES (:org, true, 'CONSUMPTION', -1, :appointment);
INSERT INTO events (id, organization_id, livemode, type, appointment_id, sequence, payload)
VALUES ('evt_' || md5(random()::text), :org, true, 'appointment.created', :appointment, 1, :payload);
COMMIT;
