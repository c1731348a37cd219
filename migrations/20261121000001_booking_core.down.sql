-- Back to an empty database.
--
-- Refused while any organization exists. With `moncreneau migrate --revert --discard` every
-- organization, key, department, appointment, credit account, ledger line and event is dropped.

DO $$
DECLARE
    organizations_count BIGINT;
BEGIN
    SELECT count(*) INTO organizations_count FROM organizations;
    IF organizations_count > 0
       AND coalesce(current_setting('moncreneau.revert_discards', true), '') <> 'on' THEN
        RAISE EXCEPTION 'reverting 20261121000001 (booking core) would discard % organizations and all their data',
            organizations_count
            USING HINT = 'Add --discard to moncreneau migrate --revert to discard them.';
    END IF;
END
$$;

DROP TABLE events;
DROP TABLE credit_transactions;
DROP TABLE appointments;
DROP TABLE departments;
DROP TABLE api_keys;
DROP TABLE credit_accounts;
DROP TABLE organizations;
DROP FUNCTION credit_transactions_immutable();
DROP FUNCTION credit_transactions_apply();
DROP FUNCTION appointments_seat_within_capacity();
