-- Back below 20261123000001: no workers, no `show_admins_in_booking`, no worker on appointments.
--
-- Refused while the lower version would lose something: any worker, any appointment naming one,
-- any department requiring one (`showAdminsInBooking`). With `moncreneau migrate --revert
-- --discard` (the session setting `moncreneau.revert_discards = on`) they are discarded: the
-- workers are deleted, appointments keep everything but their worker (they stay booked, and
-- still count against their department's capacity), and departments stop requiring a worker.
-- The appointments themselves, their credits and events are never touched.

DO $$
DECLARE
    workers_count      BIGINT;
    served             BIGINT;
    requiring          BIGINT;
BEGIN
    SELECT count(*) INTO workers_count FROM workers;
    SELECT count(*) INTO served FROM appointments WHERE worker_id IS NOT NULL;
    SELECT count(*) INTO requiring FROM departments WHERE show_admins_in_booking;
    IF (workers_count > 0 OR served > 0 OR requiring > 0)
       AND coalesce(current_setting('moncreneau.revert_discards', true), '') <> 'on' THEN
        RAISE EXCEPTION 'reverting 20261123000001 (staff) would discard % workers, the worker of % appointments and showAdminsInBooking of % departments',
            workers_count, served, requiring
            USING HINT = 'Add --discard to moncreneau migrate --revert to discard them.';
    END IF;
END
$$;

ALTER TABLE appointments DROP CONSTRAINT appointments_worker_one_at_a_time;
ALTER TABLE appointments DROP CONSTRAINT appointments_worker_in_department;
ALTER TABLE appointments DROP COLUMN worker_id;
DROP TABLE workers;
ALTER TABLE departments DROP COLUMN show_admins_in_booking;
-- The up created it for the exclusion constraint above, its only user; RESTRICT (the default)
-- refuses to drop it if anything else came to depend on it.
DROP EXTENSION IF EXISTS btree_gist;
