-- GET /appointments reads a page in one of its sort orders: with these, a page is an index range
-- instead of a sort of all of an organization's appointments.
CREATE INDEX appointments_owner_start_idx ON appointments (organization_id, livemode, starts_at, id);
CREATE INDEX appointments_owner_created_idx ON appointments (organization_id, livemode, created_at, id);
