-- Booking core: organizations, keys, departments, appointments, credits and the event outbox.
-- Every invariant of the contract that can live here does: capacity (one seat per appointment,
-- seats unique per slot and below capacity), credits (balance derived from the ledger by trigger,
-- never negative, one consumption and at most one refund per appointment).

CREATE TABLE organizations (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One credit account per organization and mode: test and live are separate worlds.
CREATE TABLE credit_accounts (
    organization_id       BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    livemode              BOOLEAN NOT NULL,
    balance               BIGINT NOT NULL DEFAULT 0 CONSTRAINT credit_balance_not_negative CHECK (balance >= 0),
    consumed              BIGINT NOT NULL DEFAULT 0 CHECK (consumed >= 0),
    refunded              BIGINT NOT NULL DEFAULT 0 CHECK (refunded >= 0),
    low_balance_threshold BIGINT NOT NULL DEFAULT 5 CHECK (low_balance_threshold >= 0),
    PRIMARY KEY (organization_id, livemode)
);

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    livemode        BOOLEAN NOT NULL,
    name            TEXT NOT NULL,
    -- SHA-256 of the clear key; the clear key is shown once and never stored.
    key_hash        BYTEA NOT NULL UNIQUE,
    key_prefix      TEXT NOT NULL,
    scopes          TEXT[] NOT NULL,
    expires_at      TIMESTAMPTZ,
    revoked_at      TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_owner_idx ON api_keys (organization_id, livemode);

CREATE TABLE departments (
    id                 BIGSERIAL PRIMARY KEY,
    organization_id    BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    livemode           BOOLEAN NOT NULL,
    name               TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description        TEXT,
    timezone           TEXT NOT NULL,
    slot_duration      INTEGER NOT NULL CHECK (slot_duration BETWEEN 5 AND 1440),
    capacity           INTEGER NOT NULL CHECK (capacity BETWEEN 1 AND 1000),
    is_active          BOOLEAN NOT NULL DEFAULT TRUE,
    opening_hours      JSONB NOT NULL,
    closures           JSONB NOT NULL DEFAULT '[]',
    min_notice_minutes INTEGER NOT NULL DEFAULT 0 CHECK (min_notice_minutes BETWEEN 0 AND 525600),
    max_advance_days   INTEGER NOT NULL DEFAULT 90 CHECK (max_advance_days BETWEEN 1 AND 730),
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX departments_owner_idx ON departments (organization_id, livemode, id);

CREATE TABLE appointments (
    id               BIGSERIAL PRIMARY KEY,
    organization_id  BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    livemode         BOOLEAN NOT NULL,
    department_id    BIGINT NOT NULL REFERENCES departments (id),
    starts_at        TIMESTAMPTZ NOT NULL,
    ends_at          TIMESTAMPTZ NOT NULL CHECK (ends_at > starts_at),
    -- The wall-clock start in the department's zone at booking time, and that zone.
    local_starts_at  TIMESTAMP NOT NULL,
    timezone         TEXT NOT NULL,
    -- Which of the slot's `capacity` places this appointment holds.
    seat             INTEGER NOT NULL CHECK (seat >= 0),
    status           TEXT NOT NULL DEFAULT 'CONFIRMED'
                     CHECK (status IN ('CONFIRMED', 'CANCELLED', 'COMPLETED', 'NO_SHOW')),
    name             TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    external_user_id TEXT,
    phone            TEXT,
    email            TEXT,
    notes            TEXT,
    metadata         JSONB NOT NULL DEFAULT '{}',
    check_in_token   TEXT NOT NULL UNIQUE,
    credits_consumed INTEGER NOT NULL DEFAULT 1,
    -- Bumped on every change, so receivers of events can drop stale ones.
    sequence         INTEGER NOT NULL DEFAULT 1,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    cancelled_at     TIMESTAMPTZ,
    cancelled_by     TEXT,
    cancel_reason    TEXT,
    CHECK ((status = 'CANCELLED') = (cancelled_at IS NOT NULL))
);

-- Capacity lives here: a slot has seats 0..capacity-1 and each seat holds one appointment that
-- is not cancelled. The bound on `seat` is checked by the trigger below.
CREATE UNIQUE INDEX appointments_seat_key
    ON appointments (department_id, starts_at, seat) WHERE status <> 'CANCELLED';
-- One live booking per end user and slot.
CREATE UNIQUE INDEX appointments_duplicate_key
    ON appointments (department_id, starts_at, external_user_id)
    WHERE status = 'CONFIRMED' AND external_user_id IS NOT NULL;
CREATE INDEX appointments_owner_idx ON appointments (organization_id, livemode, local_starts_at);
CREATE INDEX appointments_slot_idx ON appointments (department_id, starts_at) WHERE status <> 'CANCELLED';

CREATE FUNCTION appointments_seat_within_capacity() RETURNS trigger AS $$
DECLARE
    cap INTEGER;
BEGIN
    IF NEW.status = 'CANCELLED' THEN
        RETURN NEW;
    END IF;
    SELECT capacity INTO cap FROM departments WHERE id = NEW.department_id;
    IF NEW.seat >= cap THEN
        RAISE EXCEPTION 'seat % exceeds capacity % of department %', NEW.seat, cap, NEW.department_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'appointments_seat_within_capacity';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER appointments_seat_within_capacity
    BEFORE INSERT OR UPDATE OF seat, starts_at, department_id ON appointments
    FOR EACH ROW EXECUTE FUNCTION appointments_seat_within_capacity();

-- The credit ledger. The account balance is only ever changed by the trigger below, from these
-- rows, so it equals their sum by construction; the CHECK on the account refuses a negative one.
CREATE TABLE credit_transactions (
    id              BIGSERIAL PRIMARY KEY,
    organization_id BIGINT NOT NULL,
    livemode        BOOLEAN NOT NULL,
    type            TEXT NOT NULL CHECK (type IN ('GRANT', 'CONSUMPTION', 'REFUND')),
    amount          BIGINT NOT NULL,
    balance_after   BIGINT NOT NULL DEFAULT 0,
    appointment_id  BIGINT REFERENCES appointments (id),
    reason          TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    FOREIGN KEY (organization_id, livemode) REFERENCES credit_accounts (organization_id, livemode),
    CHECK ((type = 'CONSUMPTION') = (amount < 0)),
    CHECK (amount <> 0),
    CHECK (type = 'GRANT' OR appointment_id IS NOT NULL)
);
CREATE INDEX credit_transactions_owner_idx ON credit_transactions (organization_id, livemode, id);
-- A credit is spent once per appointment and refunded at most once.
CREATE UNIQUE INDEX credit_transactions_one_consumption
    ON credit_transactions (appointment_id) WHERE type = 'CONSUMPTION';
CREATE UNIQUE INDEX credit_transactions_one_refund
    ON credit_transactions (appointment_id) WHERE type = 'REFUND';

CREATE FUNCTION credit_transactions_apply() RETURNS trigger AS $$
BEGIN
    UPDATE credit_accounts
       SET balance  = balance + NEW.amount,
           consumed = consumed + CASE WHEN NEW.type = 'CONSUMPTION' THEN -NEW.amount ELSE 0 END,
           refunded = refunded + CASE WHEN NEW.type = 'REFUND' THEN NEW.amount ELSE 0 END
     WHERE organization_id = NEW.organization_id AND livemode = NEW.livemode
    RETURNING balance INTO NEW.balance_after;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER credit_transactions_apply
    BEFORE INSERT ON credit_transactions
    FOR EACH ROW EXECUTE FUNCTION credit_transactions_apply();

-- The ledger is append-only.
CREATE FUNCTION credit_transactions_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'credit_transactions is append-only';
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER credit_transactions_immutable
    BEFORE UPDATE OR DELETE ON credit_transactions
    FOR EACH ROW EXECUTE FUNCTION credit_transactions_immutable();

-- Transactional outbox: each state change writes its event in the same transaction.
CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    livemode        BOOLEAN NOT NULL,
    type            TEXT NOT NULL,
    appointment_id  BIGINT REFERENCES appointments (id),
    sequence        INTEGER,
    -- The whole event body as delivered: {id, type, created, livemode, data}.
    payload         JSONB NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX events_owner_idx ON events (organization_id, livemode, created_at DESC);
