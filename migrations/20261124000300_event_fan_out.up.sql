-- An event reaches every endpoint subscribed to it by construction: writing the event writes its
-- pending deliveries, in the same statement, whoever writes it. (The server inserted the
-- deliveries itself, one more statement after each event.)
CREATE FUNCTION events_fan_out() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (id, webhook_id, event_id, next_attempt_at)
    SELECT 'dlv_' || replace(gen_random_uuid()::text, '-', ''), w.id, NEW.id, now()
      FROM webhooks w
     WHERE w.organization_id = NEW.organization_id AND w.livemode = NEW.livemode AND w.active
       AND (NEW.type = ANY (w.events) OR '*' = ANY (w.events));
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_fan_out
    AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_fan_out();
