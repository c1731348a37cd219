-- Back below 20261121000002: no webhook endpoints, deliveries nor attempts (events stay: they
-- belong to the booking core).
--
-- Refused while an endpoint exists. With `moncreneau migrate --revert --discard` the endpoints,
-- their secrets, their delivery queue and attempt log are dropped.

DO $$
DECLARE
    endpoints  BIGINT;
    deliveries BIGINT;
BEGIN
    SELECT count(*) INTO endpoints FROM webhooks;
    SELECT count(*) INTO deliveries FROM webhook_deliveries;
    IF (endpoints > 0 OR deliveries > 0)
       AND coalesce(current_setting('moncreneau.revert_discards', true), '') <> 'on' THEN
        RAISE EXCEPTION 'reverting 20261121000002 (webhooks) would discard % webhook endpoints and % deliveries',
            endpoints, deliveries
            USING HINT = 'Add --discard to moncreneau migrate --revert to discard them.';
    END IF;
END
$$;

DROP INDEX events_type_idx;
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
