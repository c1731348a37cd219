-- Back below 20261121000003: no rate-limit windows, no idempotency keys.
--
-- Refused while either table holds a row: an idempotency key dropped would let a retried
-- booking book twice, a window dropped would reset a key's hourly count. With
-- `moncreneau migrate --revert --discard` both tables are dropped with their rows.

DO $$
DECLARE
    windows BIGINT;
    keys    BIGINT;
BEGIN
    SELECT count(*) INTO windows FROM rate_limit_windows;
    SELECT count(*) INTO keys FROM idempotency_keys;
    IF (windows > 0 OR keys > 0)
       AND coalesce(current_setting('moncreneau.revert_discards', true), '') <> 'on' THEN
        RAISE EXCEPTION 'reverting 20261121000003 (limits and idempotency) would discard % rate-limit windows and % idempotency keys',
            windows, keys
            USING HINT = 'Add --discard to moncreneau migrate --revert to discard them.';
    END IF;
END
$$;

DROP TABLE idempotency_keys;
DROP TABLE rate_limit_windows;
