-- The lower version's server writes each booking on its own.
DROP FUNCTION book_appointments(jsonb);
