-- The lower version's server writes the deliveries of each event itself.
DROP TRIGGER events_fan_out ON events;
DROP FUNCTION events_fan_out();
