//! How long each migration takes at scale, and the whole chain.
//!
//! Usage: `cargo run --release --bin migrations-bench [appointments, default 1000000]`, with the
//! Postgres of `DATABASE_URL` (default: the server's). Builds the database `mc_bench_migrations`
//! (dropped first if left over, dropped at the end), applies the migrations one by one and, as
//! soon as a release's tables exist, fills them as that release would have: `appointments`
//! appointments with their ledger lines and events, a delivery per event and an attempt per five
//! deliveries, an idempotency key per ten appointments. The fill disables triggers (and so
//! foreign-key checks) for speed, computes what the triggers would have (balances, running
//! balances, seats), then checks every invariant and key before going on. Then it reverts the
//! last four migrations one by one and applies them again, and prints the table.

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use moncreneau::database::{self, migrator_up_to, versions};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

const DATABASE: &str = "mc_bench_migrations";

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let appointments: i64 = match std::env::args().nth(1) {
        Some(count) => count
            .parse()
            .context("the argument is a number of appointments")?,
        None => 1_000_000,
    };
    ensure!(
        appointments >= 1000 && appointments % 100 == 0,
        "at least 1000 appointments, a multiple of 100"
    );
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| moncreneau::config::DEFAULT_DATABASE_URL.to_owned());
    let server = PgConnectOptions::from_str(&url).context("DATABASE_URL")?;
    let mut maintenance = server.clone().database("postgres").connect().await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .execute(&mut maintenance)
        .await?;

    // The chain on an empty database: what a new installation waits.
    sqlx::query(&format!("CREATE DATABASE {DATABASE}"))
        .execute(&mut maintenance)
        .await?;
    let options = server.clone().database(DATABASE);
    let mut connection = options.connect().await?;
    let started = Instant::now();
    database::MIGRATOR.run(&mut connection).await?;
    let empty_chain = started.elapsed();
    connection.close().await?;
    sqlx::query(&format!("DROP DATABASE {DATABASE} WITH (FORCE)"))
        .execute(&mut maintenance)
        .await?;

    sqlx::query(&format!("CREATE DATABASE {DATABASE}"))
        .execute(&mut maintenance)
        .await?;
    let mut connection = options.connect().await?;
    let mut table: Vec<(String, Duration)> = Vec::new();
    let mut chain = Duration::ZERO;
    let mut fills = Duration::ZERO;
    let versions = versions();
    for (index, version) in versions.iter().enumerate() {
        let level = index + 1;
        let started = Instant::now();
        migrator_up_to(*version).run(&mut connection).await?;
        let took = started.elapsed();
        chain += took;
        let name = name_of(*version);
        table.push((format!("up   {version} {name}"), took));
        let started = Instant::now();
        let filled = fill(&mut connection, level, appointments).await?;
        if let Some(what) = filled {
            let took = started.elapsed();
            fills += took;
            table.push((format!("     (fill: {what})"), took));
        }
    }
    let settings = {
        let mut settings = moncreneau::config::Settings::from_lookup(|_| None)?;
        settings.database_url = format!(
            "postgres://{}@{}:{}/{DATABASE}",
            server.get_username(),
            server.get_host(),
            server.get_port()
        );
        settings
    };
    let mut downs = Duration::ZERO;
    for version in versions.iter().rev().take(4) {
        let started = Instant::now();
        database::revert(&settings, 1, false).await?;
        let took = started.elapsed();
        downs += took;
        table.push((format!("down {version} {}", name_of(*version)), took));
    }
    let started = Instant::now();
    database::MIGRATOR.run(&mut connection).await?;
    let again = started.elapsed();
    check_invariants(&mut connection, versions.len()).await?;
    connection.close().await?;
    sqlx::query(&format!("DROP DATABASE {DATABASE} WITH (FORCE)"))
        .execute(&mut maintenance)
        .await?;

    println!(
        "migrations at scale: {appointments} appointments, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("{:<60} {:>10}", "step", "seconds");
    for (step, took) in &table {
        println!("{step:<60} {:>10.2}", took.as_secs_f64());
    }
    println!(
        "{:<60} {:>10.2}",
        "chain at scale (ups only, fills excluded)",
        chain.as_secs_f64()
    );
    println!(
        "{:<60} {:>10.2}",
        "fills (not part of any migration)",
        fills.as_secs_f64()
    );
    println!("{:<60} {:>10.2}", "last four downs", downs.as_secs_f64());
    println!(
        "{:<60} {:>10.2}",
        "last four ups again",
        again.as_secs_f64()
    );
    println!(
        "{:<60} {:>10.2}",
        "chain on an empty database",
        empty_chain.as_secs_f64()
    );
    Ok(())
}

fn name_of(version: i64) -> String {
    database::MIGRATOR
        .iter()
        .find(|m| m.version == version)
        .map(|m| m.description.to_string())
        .unwrap_or_default()
}

/// Fills what appears at `level`, as the release at that level would have written it.
async fn fill(
    connection: &mut PgConnection,
    level: usize,
    appointments: i64,
) -> anyhow::Result<Option<String>> {
    let script = match level {
        1 => format!(
            r#"
            SET session_replication_role = replica;
            INSERT INTO organizations (id, name) SELECT g, 'Bench organization ' || g FROM generate_series(1, 10) g;
            SELECT setval(pg_get_serial_sequence('organizations', 'id'), 10);
            INSERT INTO credit_accounts (organization_id, livemode) SELECT g, l FROM generate_series(1, 10) g, (VALUES (false), (true)) v(l);
            INSERT INTO api_keys (id, organization_id, livemode, name, key_hash, key_prefix, scopes)
            SELECT 'key_bench' || g, g, true, 'Default admin key', sha256(convert_to('mk_live_bench' || g, 'UTF8')), 'mk_live_benc', ARRAY['api:admin']
              FROM generate_series(1, 10) g;
            -- 20 departments, two per organization, five places each, open 08:00-18:00 every day.
            INSERT INTO departments (id, organization_id, livemode, name, timezone, slot_duration, capacity, opening_hours)
            SELECT g, (g - 1) / 2 + 1, true, 'Department ' || g, 'UTC', 30, 5,
                   (SELECT jsonb_object_agg(day, '[{{"start": "08:00", "end": "18:00"}}]'::jsonb)
                      FROM unnest(ARRAY['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday']) day)
              FROM generate_series(1, 20) g;
            SELECT setval(pg_get_serial_sequence('departments', 'id'), 20);
            -- Appointment i: department i % 20, then seat, slot and day in that order; one in ten cancelled.
            INSERT INTO appointments (id, organization_id, livemode, department_id, starts_at, ends_at, local_starts_at,
                                      timezone, seat, status, name, external_user_id, email, check_in_token,
                                      sequence, created_at, updated_at, cancelled_at, cancelled_by, cancel_reason)
            SELECT i + 1, (i % 20) / 2 + 1, true, i % 20 + 1, at, at + interval '30 minutes', at AT TIME ZONE 'UTC',
                   'UTC', (i / 20) % 5, CASE WHEN i % 10 = 0 THEN 'CANCELLED' ELSE 'CONFIRMED' END,
                   'Client ' || i, 'user-' || i, 'client' || i || '@example.test', md5(i::text),
                   CASE WHEN i % 10 = 0 THEN 2 ELSE 1 END, at - interval '10 days', at - interval '10 days',
                   CASE WHEN i % 10 = 0 THEN at - interval '1 day' END,
                   CASE WHEN i % 10 = 0 THEN 'key_bench1' END,
                   CASE WHEN i % 10 = 0 THEN 'Changed plans' END
              FROM generate_series(0, {last}) i,
                   LATERAL (SELECT timestamptz '2026-01-05 08:00Z' + (i / 2000) * interval '1 day'
                                   + ((i / 100) % 20) * interval '30 minutes' AS at) t;
            SELECT setval(pg_get_serial_sequence('appointments', 'id'), {appointments});
            -- The ledger as the trigger would have written it: a grant, a consumption per booking,
            -- a refund per cancellation, each with the running balance.
            WITH lines AS (
                SELECT g AS organization_id, true AS livemode, 'GRANT' AS type, 2 * {appointments} AS amount,
                       NULL::bigint AS appointment_id, 'Initial credits' AS reason, 0::bigint AS ord
                  FROM generate_series(1, 10) g
                UNION ALL
                SELECT organization_id, livemode, 'CONSUMPTION', -1, id, 'Booking', 2 * id FROM appointments
                UNION ALL
                SELECT organization_id, livemode, 'REFUND', 1, id, 'Cancellation', 2 * id + 1
                  FROM appointments WHERE status = 'CANCELLED'
            )
            INSERT INTO credit_transactions (organization_id, livemode, type, amount, appointment_id, reason, balance_after)
            SELECT organization_id, livemode, type, amount, appointment_id, reason,
                   sum(amount) OVER (PARTITION BY organization_id, livemode ORDER BY ord ROWS UNBOUNDED PRECEDING)
              FROM lines ORDER BY ord, organization_id;
            UPDATE credit_accounts c
               SET balance = t.balance, consumed = t.consumed, refunded = t.refunded
              FROM (SELECT organization_id, livemode, sum(amount) AS balance,
                           coalesce(-sum(amount) FILTER (WHERE type = 'CONSUMPTION'), 0) AS consumed,
                           coalesce(sum(amount) FILTER (WHERE type = 'REFUND'), 0) AS refunded
                      FROM credit_transactions GROUP BY 1, 2) t
             WHERE c.organization_id = t.organization_id AND c.livemode = t.livemode;
            -- The outbox: one event per booking, one per cancellation.
            INSERT INTO events (id, organization_id, livemode, type, appointment_id, sequence, payload, created_at)
            SELECT 'evt_' || md5(a.id || e.type), a.organization_id, true, e.type, a.id, e.sequence,
                   jsonb_build_object('id', 'evt_' || md5(a.id || e.type), 'type', e.type,
                                      'created', to_char(a.created_at, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                      'livemode', true, 'sequence', e.sequence,
                                      'data', jsonb_build_object('object', jsonb_build_object(
                                          'id', a.id, 'departmentId', a.department_id, 'status', a.status,
                                          'dateTime', a.local_starts_at, 'name', a.name, 'email', a.email))),
                   a.created_at
              FROM appointments a
              JOIN (VALUES ('appointment.created', 1), ('appointment.cancelled', 2)) e(type, sequence)
                ON e.type = 'appointment.created' OR a.status = 'CANCELLED';
            SET session_replication_role = DEFAULT;
            ANALYZE;
            "#,
            last = appointments - 1,
        ),
        2 => r#"
            SET session_replication_role = replica;
            INSERT INTO webhooks (id, organization_id, livemode, url, events, secret)
            SELECT 'wh_bench' || g, g, true, 'https://hooks.example.test/' || g, ARRAY['*'],
                   'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
              FROM generate_series(1, 10) g;
            INSERT INTO webhook_deliveries (id, webhook_id, event_id, status, attempts, next_attempt_at, created_at, updated_at)
            SELECT 'dlv_' || substr(id, 5), 'wh_bench' || organization_id, id, 'SUCCEEDED', 1, NULL, created_at, created_at
              FROM events;
            INSERT INTO webhook_attempts (delivery_id, attempt, status_code, duration_ms, created_at)
            SELECT id, 1, 200, 35, created_at FROM webhook_deliveries WHERE abs(hashtext(id)) % 5 = 0;
            SET session_replication_role = DEFAULT;
            ANALYZE;
            "#
        .to_owned(),
        3 => r#"
            SET session_replication_role = replica;
            INSERT INTO idempotency_keys (organization_id, livemode, key, request_hash, state, response_status, response_body, created_at)
            SELECT organization_id, true, 'retry-' || id, sha256(convert_to(id::text, 'UTF8')), 'DONE', 201,
                   convert_to('{"id": ' || id || '}', 'UTF8'), created_at
              FROM appointments WHERE id % 10 = 3;
            INSERT INTO rate_limit_windows (key_id, window_start, requests)
            SELECT id, date_trunc('hour', now()) - h * interval '1 hour', 1000 FROM api_keys, generate_series(0, 23) h;
            SET session_replication_role = DEFAULT;
            ANALYZE;
            "#
        .to_owned(),
        _ => return Ok(None),
    };
    sqlx::raw_sql(&script).execute(&mut *connection).await?;
    check_invariants(connection, level).await?;
    Ok(Some(match level {
        1 => format!("{appointments} appointments, ledger, events"),
        2 => "a delivery per event, an attempt per five".to_owned(),
        _ => "idempotency keys, rate-limit windows".to_owned(),
    }))
}

/// What the triggers and foreign keys guarantee, checked after a fill that bypassed them and
/// at the end of the chain.
async fn check_invariants(connection: &mut PgConnection, level: usize) -> anyhow::Result<()> {
    let mut checks = vec![
        (
            "a balance differs from its ledger",
            "SELECT count(*) FROM credit_accounts c
              WHERE balance <> coalesce((SELECT sum(amount) FROM credit_transactions t
                                          WHERE t.organization_id = c.organization_id AND t.livemode = c.livemode), 0)",
        ),
        (
            "an appointment without its department or consumption",
            "SELECT count(*) FROM appointments a
              WHERE NOT EXISTS (SELECT 1 FROM departments d WHERE d.id = a.department_id AND d.organization_id = a.organization_id)
                 OR NOT EXISTS (SELECT 1 FROM credit_transactions t WHERE t.appointment_id = a.id AND t.type = 'CONSUMPTION')",
        ),
        (
            "an event of an unknown appointment",
            "SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM appointments a WHERE a.id = e.appointment_id)",
        ),
        (
            "an instant above capacity",
            "SELECT count(*) FROM (SELECT a.department_id, a.starts_at, d.capacity
                                     FROM appointments a JOIN departments d ON d.id = a.department_id
                                    WHERE a.status <> 'CANCELLED'
                                    GROUP BY 1, 2, 3 HAVING count(*) > d.capacity) over",
        ),
    ];
    if level < 5 {
        checks.push((
            "a seat at or above capacity",
            "SELECT count(*) FROM appointments a JOIN departments d ON d.id = a.department_id
              WHERE a.status <> 'CANCELLED' AND a.seat >= d.capacity",
        ));
    }
    if level >= 2 {
        checks.push((
            "a delivery of an unknown event or endpoint",
            "SELECT count(*) FROM webhook_deliveries w
              WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = w.event_id)
                 OR NOT EXISTS (SELECT 1 FROM webhooks h WHERE h.id = w.webhook_id)",
        ));
    }
    for (what, query) in checks {
        let count: i64 = sqlx::query_scalar(query)
            .fetch_one(&mut *connection)
            .await?;
        ensure!(count == 0, "{what}: {count} rows");
    }
    Ok(())
}
