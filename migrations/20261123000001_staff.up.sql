-- Staff (workers): the people of a department who serve appointments. A staff member serves one
-- appointment at a time; a department may require every booking to name one
-- (`show_admins_in_booking`, MONCRENEAU's `showAdminsInBooking`). An appointment with a worker
-- also takes one of the department's places (a desk), so the capacity trigger counts it as before.

-- Exclusion constraints on (bigint =, range &&) need the btree operator classes in GiST.
CREATE EXTENSION IF NOT EXISTS btree_gist;

ALTER TABLE departments ADD COLUMN show_admins_in_booking BOOLEAN NOT NULL DEFAULT FALSE;

-- A worker belongs to one department and, through it, to one organization and mode. Workers are
-- deactivated, never deleted, so that the appointments they served keep naming them; they go with
-- their department (an organization removed takes its departments, workers and appointments).
CREATE TABLE workers (
    id            BIGSERIAL PRIMARY KEY,
    department_id BIGINT NOT NULL REFERENCES departments (id) ON DELETE CASCADE,
    name          TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    is_active     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The target of the appointments' (worker, department) key below.
    UNIQUE (id, department_id)
);
CREATE INDEX workers_department_idx ON workers (department_id, id);

-- The worker of an appointment is one of its own department's: a key over both columns, checked
-- only when a worker is named (MATCH SIMPLE skips a NULL worker_id).
ALTER TABLE appointments ADD COLUMN worker_id BIGINT;
ALTER TABLE appointments
    ADD CONSTRAINT appointments_worker_in_department
        FOREIGN KEY (worker_id, department_id) REFERENCES workers (id, department_id);

-- One appointment at a time per worker: two live appointments of one worker never overlap
-- ([starts_at, ends_at) intervals, so back-to-back slots do not conflict). The constraint, not
-- the code, decides, so concurrent bookings on any number of server processes cannot double-book
-- a worker. Cancelled appointments free their worker.
ALTER TABLE appointments
    ADD CONSTRAINT appointments_worker_one_at_a_time
        EXCLUDE USING gist (worker_id WITH =, tstzrange(starts_at, ends_at) WITH &&)
        WHERE (worker_id IS NOT NULL AND status <> 'CANCELLED');
