//! Migrations you can trust: every up has its down, a released up never changes, every down
//! restores its lower schema exactly, a step down and back keeps every row the lower version can
//! hold (and refuses, or keeps aside, what it cannot), and a database of every released schema,
//! filled as that release filled it, upgrades to one on which the whole API works.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use moncreneau::database::{self, migrator_up_to, versions, MIGRATOR, REVERT_DISCARDS_SETTING};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::migrate::{MigrationType, Migrator};
use sqlx::{Connection, PgConnection, PgPool};

use crate::helpers::{
    day_ahead, expect_status, slot, spawn_app, spawn_app_with, test_settings, TestApp, TestDatabase,
};
use crate::receiver::Receiver;

/// The released checksums, as committed: a changed up file or a new one missing here fails.
const CHECKSUMS: &str = include_str!("../../migrations/checksums.txt");

/// Levels (how many migrations are applied) at which a table or column appears.
const WEBHOOKS_LEVEL: usize = 2;
const LIMITS_LEVEL: usize = 3;
const CAPACITY_LEVEL: usize = 5;
const STAFF_LEVEL: usize = 6;

/// Released versions that the tests step down to.
const LIST_INDEXES: i64 = 20261121000004;
const CAPACITY: i64 = 20261122000001;
const STAFF: i64 = 20261123000001;

/// How many migrations come after `version`: the steps of a revert down to it.
fn steps_above(version: i64) -> u32 {
    let steps = versions().iter().filter(|v| **v > version).count();
    u32::try_from(steps).expect("a few migrations")
}

#[test]
fn every_up_has_its_down_and_every_down_its_up() {
    let of_type = |wanted: MigrationType| -> BTreeSet<i64> {
        MIGRATOR
            .iter()
            .filter(|m| m.migration_type == wanted)
            .map(|m| m.version)
            .collect()
    };
    let simple = of_type(MigrationType::Simple);
    assert!(
        simple.is_empty(),
        "forward-only migrations (name them .up.sql and add a .down.sql): {simple:?}"
    );
    let ups = of_type(MigrationType::ReversibleUp);
    let downs = of_type(MigrationType::ReversibleDown);
    assert_eq!(
        ups.difference(&downs).collect::<Vec<_>>(),
        Vec::<&i64>::new(),
        "up migrations without a down file"
    );
    assert_eq!(
        downs.difference(&ups).collect::<Vec<_>>(),
        Vec::<&i64>::new(),
        "down files without an up migration"
    );
    assert_eq!(ups.len(), 9, "the released chain is all there");
}

#[test]
fn released_up_migrations_keep_the_checksums_committed_in_checksums_txt() {
    let committed: BTreeMap<i64, String> = CHECKSUMS
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (version, checksum) = line
                .split_once(' ')
                .expect("a line is `<version> <hex sha384>`");
            (
                version.parse().expect("a numeric version"),
                checksum.trim().to_owned(),
            )
        })
        .collect();
    let built: BTreeMap<i64, String> = MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| (m.version, hex::encode(&m.checksum)))
        .collect();
    for (version, checksum) in &built {
        match committed.get(version) {
            None => panic!(
                "migration {version} is not in migrations/checksums.txt: add `{version} {checksum}`"
            ),
            Some(expected) => assert_eq!(
                expected, checksum,
                "the up file of released migration {version} was edited: databases migrated by it would refuse to start; add a new migration instead"
            ),
        }
    }
    for version in committed.keys() {
        assert!(
            built.contains_key(version),
            "released migration {version} is missing from migrations/"
        );
    }
}

/// A connection of its own to a test database.
async fn connect(database: &TestDatabase) -> PgConnection {
    PgConnection::connect(&database.url())
        .await
        .expect("the test database is reachable")
}

#[tokio::test]
async fn a_database_migrated_by_the_former_single_files_upgrades_and_reverts() {
    // The migrations under their former names (`<version>_<name>.sql`, forward-only), as the
    // releases before reversible migrations shipped them.
    let directory = std::env::temp_dir().join(format!(
        "mc_simple_migrations_{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&directory).unwrap();
    for migration in MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
    {
        let name = format!(
            "{}_{}.sql",
            migration.version,
            migration.description.replace(' ', "_")
        );
        std::fs::write(directory.join(name), migration.sql.as_bytes()).unwrap();
    }
    let former = Migrator::new(directory.as_path()).await.unwrap();
    std::fs::remove_dir_all(&directory).ok();
    assert!(former
        .iter()
        .all(|m| m.migration_type == MigrationType::Simple));

    let database = TestDatabase::create_empty().await;
    let mut connection = connect(&database).await;
    former.run(&mut connection).await.unwrap();
    let recorded: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut connection)
            .await
            .unwrap();
    let expected: Vec<(i64, Vec<u8>)> = MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| (m.version, m.checksum.to_vec()))
        .collect();
    assert_eq!(
        recorded, expected,
        "the renamed up files keep the former checksums"
    );
    // The binary starts on it (no checksum mismatch), then steps back and up again.
    MIGRATOR
        .run(&mut connection)
        .await
        .expect("the current migrator accepts a database migrated by the former files");
    let settings = test_settings(&database.url());
    let reverted = database::revert(&settings, 1, false).await.unwrap();
    assert_eq!(reverted, [*versions().last().unwrap()]);
    MIGRATOR.run(&mut connection).await.unwrap();
    connection.close().await.ok();
}

/// Everything of the schema `public` a migration can change, one line per object, sorted.
/// Columns are compared by name, not position: a down re-adds a dropped column at the end of
/// its table, and Postgres cannot put it back in place without rewriting the table.
async fn schema_dump(connection: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        r#"
        SELECT 'table ' || table_name || ' ' || table_type
          FROM information_schema.tables WHERE table_schema = 'public'
        UNION ALL
        SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' '
               || is_nullable || ' default ' || coalesce(column_default, '-')
          FROM information_schema.columns WHERE table_schema = 'public'
        UNION ALL
        SELECT 'constraint ' || c.conrelid::regclass || ' ' || c.conname || ' '
               || pg_get_constraintdef(c.oid)
          FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
         WHERE n.nspname = 'public'
        UNION ALL
        SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
        UNION ALL
        SELECT 'trigger ' || t.tgrelid::regclass || ' ' || t.tgname || ' ' || pg_get_triggerdef(t.oid)
          FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid
          JOIN pg_namespace n ON n.oid = r.relnamespace
         WHERE n.nspname = 'public' AND NOT t.tgisinternal
        UNION ALL
        SELECT 'function ' || p.proname || ' ' || pg_get_functiondef(p.oid)
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public'
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
        UNION ALL
        SELECT 'extension ' || extname FROM pg_extension
        UNION ALL
        SELECT 'sequence ' || sequence_name || ' ' || data_type
          FROM information_schema.sequences WHERE sequence_schema = 'public'
        ORDER BY 1
        "#,
    )
    .fetch_all(connection)
    .await
    .unwrap()
}

#[tokio::test]
async fn every_down_leaves_the_schema_exactly_as_the_lower_version_had_it() {
    let versions = versions();
    // Built up one migration at a time: the schema of every level, as the ups leave it.
    let built = TestDatabase::create_empty().await;
    let mut building = connect(&built).await;
    let mut expected = Vec::new();
    migrator_up_to(0).run(&mut building).await.unwrap();
    expected.push(schema_dump(&mut building).await);
    for version in &versions {
        migrator_up_to(*version).run(&mut building).await.unwrap();
        expected.push(schema_dump(&mut building).await);
    }
    building.close().await.ok();
    assert_ne!(expected[0], expected[1], "the dump sees the migrations");

    // Each level + 1, then one step down, must be that level again.
    let stepped = TestDatabase::create_empty().await;
    let settings = test_settings(&stepped.url());
    let mut stepping = connect(&stepped).await;
    for (level, version) in versions.iter().enumerate() {
        migrator_up_to(*version).run(&mut stepping).await.unwrap();
        assert_eq!(
            schema_dump(&mut stepping).await,
            expected[level + 1],
            "up to {version}"
        );
        let reverted = database::revert(&settings, 1, false).await.unwrap();
        assert_eq!(reverted, [*version]);
        let actual = schema_dump(&mut stepping).await;
        let missing: Vec<_> = expected[level]
            .iter()
            .filter(|line| !actual.contains(line))
            .collect();
        let extra: Vec<_> = actual
            .iter()
            .filter(|line| !expected[level].contains(line))
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "reverting {version} left a schema other than its lower version's:\nmissing {missing:#?}\nextra {extra:#?}"
        );
    }
    stepping.close().await.ok();
}

/// Every row of every table of the schema `public` (but sqlx's bookkeeping), as JSON objects
/// ordered by primary key.
async fn rows(pool: &PgPool) -> BTreeMap<String, Vec<Value>> {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text,
                (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ordinality)
                   FROM pg_index i
                   CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, ordinality)
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                  WHERE i.indrelid = c.oid AND i.indisprimary)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut all = BTreeMap::new();
    for (table, key) in tables {
        let statement = format!("SELECT to_jsonb(t) FROM {table} t ORDER BY {key}");
        let table_rows: Vec<Value> = sqlx::query_scalar(&statement)
            .fetch_all(pool)
            .await
            .unwrap();
        all.insert(table, table_rows);
    }
    all
}

/// `higher` cut down to what `lower` has: its tables, and in each its columns.
fn as_lower(
    higher: &BTreeMap<String, Vec<Value>>,
    lower: &BTreeMap<String, Vec<Value>>,
) -> BTreeMap<String, Vec<Value>> {
    let columns = |table: &str| -> Option<BTreeSet<String>> {
        lower
            .get(table)
            .and_then(|rows| rows.first())
            .and_then(Value::as_object)
            .map(|row| row.keys().cloned().collect())
    };
    higher
        .iter()
        .filter(|(table, _)| lower.contains_key(*table))
        .map(|(table, table_rows)| {
            let kept = columns(table);
            let cut = table_rows
                .iter()
                .map(|row| match (&kept, row.as_object()) {
                    (Some(kept), Some(object)) => Value::Object(
                        object
                            .iter()
                            .filter(|(column, _)| kept.contains(*column))
                            .map(|(column, value)| (column.clone(), value.clone()))
                            .collect(),
                    ),
                    _ => row.clone(),
                })
                .collect();
            (table.clone(), cut)
        })
        .collect()
}

/// The tables' contents are equal, told table by table.
fn assert_same_rows(
    expected: &BTreeMap<String, Vec<Value>>,
    actual: &BTreeMap<String, Vec<Value>>,
    when: &str,
) {
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        actual.keys().collect::<Vec<_>>(),
        "{when}: other tables"
    );
    for (table, rows) in expected {
        assert_eq!(rows.len(), actual[table].len(), "{when}: rows of {table}");
        for (before, after) in rows.iter().zip(&actual[table]) {
            assert_eq!(before, after, "{when}: a row of {table} changed");
        }
    }
}

/// The invariants of every version: no instant of a department above its capacity (the load
/// only rises at starts, so the starts are the instants to check), balances equal to ledgers.
async fn assert_invariants(pool: &PgPool, when: &str) {
    let crowded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM appointments a JOIN departments d ON d.id = a.department_id
          WHERE a.status <> 'CANCELLED'
            AND (SELECT count(*) FROM appointments o
                  WHERE o.department_id = a.department_id AND o.status <> 'CANCELLED'
                    AND o.starts_at <= a.starts_at AND o.ends_at > a.starts_at) > d.capacity",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(crowded, 0, "{when}: an instant above capacity");
    let unbalanced: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM credit_accounts c
          WHERE c.balance <> COALESCE((SELECT sum(amount) FROM credit_transactions t
                                        WHERE t.organization_id = c.organization_id
                                          AND t.livemode = c.livemode), 0)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(unbalanced, 0, "{when}: a balance differs from its ledger");
}

/// Waits (bounded) until no webhook delivery is pending: the background worker is then idle, so
/// the tables hold still while they are compared.
async fn wait_for_deliveries(pool: &PgPool) {
    for _ in 0..200 {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE status = 'PENDING'")
                .fetch_one(pool)
                .await
                .unwrap();
        if pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("deliveries still pending after 10 s");
}

async fn book_id(app: &TestApp, key: &str, body: Value) -> i64 {
    expect_status(
        app.post("/appointments", key, &body).await,
        StatusCode::CREATED,
    )
    .await["id"]
        .as_i64()
        .expect("appointment id")
}

#[tokio::test]
async fn stepping_down_below_the_webhook_isolation_and_up_again_keeps_every_row_written_through_the_api(
) {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let receiver = Receiver::start(vec![]).await;
    expect_status(
        app.post(
            "/webhooks",
            &key,
            &json!({"url": receiver.url, "events": ["*"]}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    expect_status(
        app.post(
            "/api-keys",
            &key,
            &json!({"name": "Front desk", "scopes": ["appointments:read"]}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let department = app.create_department(&key, 2).await;
    let staffed = app
        .create_department_with(&key, json!({"name": "Consular desk", "capacity": 1}))
        .await;
    let worker = app.create_worker(&key, staffed, "Mariama Bah").await;
    let first = book_id(
        &app,
        &key,
        json!({"departmentId": department, "dateTime": slot(2, "09:00"), "name": "Awa Camara"}),
    )
    .await;
    book_id(
        &app,
        &key,
        json!({"departmentId": department, "dateTime": slot(2, "09:00"), "name": "Ibrahima Sow", "email": "ibrahima@example.test", "metadata": {"file": "A-12"}}),
    )
    .await;
    book_id(
        &app,
        &key,
        json!({"departmentId": staffed, "dateTime": slot(3, "10:00"), "name": "Fatou Keita", "workerId": worker}),
    )
    .await;
    let replayed = app
        .client
        .post(app.url("/appointments"))
        .header("X-API-Key", &key)
        .header("Idempotency-Key", "round-trip-1")
        .json(&json!({"departmentId": department, "dateTime": slot(4, "11:00"), "name": "Moussa Traoré"}))
        .send()
        .await
        .unwrap();
    expect_status(replayed, StatusCode::CREATED).await;
    expect_status(
        app.delete(&format!("/appointments/{first}"), &key).await,
        StatusCode::OK,
    )
    .await;
    receiver.wait_for(5, Duration::from_secs(10)).await;
    wait_for_deliveries(&app.db).await;
    // What only the head can hold: an endpoint's circuit state (the attempts hold their due time).
    sqlx::query(
        "UPDATE webhooks SET consecutive_failures = 2, circuit_closed_at = now() - interval '1 hour'",
    )
    .execute(&app.db)
    .await
    .unwrap();

    let head = rows(&app.db).await;
    assert_eq!(head["appointments"].len(), 4);
    assert!(head["webhook_attempts"].len() >= 5);
    let kept_attempts: Vec<Value> = head["webhook_attempts"]
        .iter()
        .filter(|attempt| !attempt["due_at"].is_null())
        .map(|attempt| json!([attempt["id"], attempt["due_at"]]))
        .collect();
    assert!(!kept_attempts.is_empty(), "attempts record their due time");
    assert_invariants(&app.db, "at head").await;

    let settings = test_settings(&app.database.url());
    // Down to the version before the webhook isolation (the event fan-out came after it).
    let steps = steps_above(STAFF);
    let newest: Vec<i64> = versions()
        .iter()
        .rev()
        .take(steps as usize)
        .copied()
        .collect();
    assert_eq!(
        database::revert(&settings, steps, false).await.unwrap(),
        newest
    );
    let lower = rows(&app.db).await;
    assert_same_rows(&as_lower(&head, &lower), &lower, "one step down");
    assert!(
        lower["webhooks"][0].get("consecutive_failures").is_none(),
        "the step down happened"
    );
    assert_invariants(&app.db, "one step down").await;
    // What the lower version cannot hold was kept aside, not lost.
    let circuits: Vec<(String, i32)> = sqlx::query_as(
        "SELECT id, consecutive_failures FROM moncreneau_reverted.webhooks_20261123000010",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        circuits,
        [(head["webhooks"][0]["id"].as_str().unwrap().to_owned(), 2)]
    );
    let attempts: Vec<Value> = sqlx::query_scalar(
        "SELECT jsonb_build_array(id, due_at) FROM moncreneau_reverted.webhook_attempts_20261123000010 ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(attempts, kept_attempts);

    MIGRATOR.run(&app.db).await.unwrap();
    let again = rows(&app.db).await;
    assert_same_rows(
        &as_lower(&head, &lower),
        &as_lower(&again, &lower),
        "up again",
    );
    assert_invariants(&app.db, "up again").await;

    // The server on it still books, lists and delivers.
    book_id(
        &app,
        &key,
        json!({"departmentId": department, "dateTime": slot(2, "09:30"), "name": "Kadiatou Barry"}),
    )
    .await;
    let listed = expect_status(app.get("/appointments?size=50", &key).await, StatusCode::OK).await;
    assert_eq!(listed["content"].as_array().unwrap().len(), 5, "{listed}");
    receiver.wait_for(6, Duration::from_secs(10)).await;
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn reverting_staff_with_workers_refuses_unless_told_to_discard_them() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 2).await;
    let worker = app.create_worker(&key, department, "Mariama Bah").await;
    book_id(
        &app,
        &key,
        json!({"departmentId": department, "dateTime": slot(2, "09:00"), "name": "Awa Camara", "workerId": worker}),
    )
    .await;
    let before = rows(&app.db).await;

    // Through the binary, as an operator would: two steps, the second of which refuses.
    let migrate = |arguments: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_moncreneau"))
            .arg("migrate")
            .args(arguments)
            .env("DATABASE_URL", app.database.url())
            .env("RUST_LOG", "warn")
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .output()
            .expect("the binary runs")
    };
    let steps = steps_above(CAPACITY).to_string();
    let refused = migrate(&["--revert", &steps]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "refused: {stderr}");
    assert!(
        stderr.contains("would discard 1 workers, the worker of 1 appointments")
            && stderr.contains("--discard"),
        "says what and how: {stderr}"
    );
    // All or nothing: the step before the refusal is not left done either.
    assert_same_rows(&before, &rows(&app.db).await, "after a refusal");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(applied, versions().len() as i64);

    let discarded = migrate(&["--revert", &steps, "--discard"]);
    assert!(
        discarded.status.success(),
        "{}",
        String::from_utf8_lossy(&discarded.stderr)
    );
    let lower = rows(&app.db).await;
    assert!(!lower.contains_key("workers"));
    assert_eq!(lower["appointments"].len(), 1, "the appointment stays");
    assert_eq!(lower["appointments"][0]["status"], "CONFIRMED");
    assert!(lower["appointments"][0].get("worker_id").is_none());
    // The setting that allowed it ended with the revert's transaction.
    let setting: Option<String> = sqlx::query_scalar("SELECT current_setting($1, true)")
        .bind(REVERT_DISCARDS_SETTING)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_ne!(setting.as_deref(), Some("on"));
    MIGRATOR.run(&app.db).await.unwrap();
    assert_invariants(&app.db, "up again").await;
}

#[tokio::test]
async fn reverting_capacity_with_a_slot_above_a_lowered_capacity_refuses_unless_told() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 2).await;
    for name in ["Awa Camara", "Ibrahima Sow"] {
        book_id(
            &app,
            &key,
            json!({"departmentId": department, "dateTime": slot(2, "09:00"), "name": name}),
        )
        .await;
    }
    expect_status(
        app.patch(
            &format!("/departments/{department}"),
            &key,
            &json!({"capacity": 1}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let settings = test_settings(&app.database.url());
    let refused = database::revert(&settings, steps_above(LIST_INDEXES), false)
        .await
        .expect_err("two live appointments cannot share a slot of capacity 1 in seats");
    let message = format!("{refused:#}");
    assert!(
        message.contains("20261122000001") && message.contains("1 slots holding more"),
        "{message}"
    );
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(applied, versions().len() as i64, "nothing was reverted");

    database::revert(&settings, steps_above(LIST_INDEXES), true)
        .await
        .unwrap();
    let seats: Vec<i32> = sqlx::query_scalar("SELECT seat FROM appointments ORDER BY id")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(seats, [0, 1], "kept, the second above the capacity");
    assert_eq!(
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM appointments WHERE status = 'CONFIRMED'"
        )
        .fetch_one(&app.db)
        .await
        .unwrap(),
        2,
        "no appointment cancelled nor deleted"
    );
    MIGRATOR.run(&app.db).await.unwrap();
    app.assert_ledger_consistent().await;
}

/// What a release at `level` wrote, by SQL valid at that level: an organization with a key,
/// a department, three appointments (one cancelled) with their ledger lines and events, and the
/// rows of the tables that level has (webhook, delivery, attempt; idempotency key, rate-limit
/// window; worker).
async fn seed(connection: &mut PgConnection, level: usize, key: &str, receiver: &str) {
    let day = day_ahead(3);
    let hours = json!({"start": "08:00", "end": "18:00"});
    let week = json!({"monday": [hours], "tuesday": [hours], "wednesday": [hours], "thursday": [hours],
                      "friday": [hours], "saturday": [hours], "sunday": [hours]});
    let seat = |n: i32| {
        if level < CAPACITY_LEVEL {
            format!("{n}, ")
        } else {
            String::new()
        }
    };
    let seat_column = if level < CAPACITY_LEVEL { "seat, " } else { "" };
    let mut script = format!(
        r#"
        INSERT INTO organizations (id, name) VALUES (900001, 'Legacy Clinic');
        INSERT INTO credit_accounts (organization_id, livemode) VALUES (900001, false), (900001, true);
        INSERT INTO credit_transactions (organization_id, livemode, type, amount, reason)
        VALUES (900001, false, 'GRANT', 50, 'Initial credits'), (900001, true, 'GRANT', 5, 'Initial credits');
        INSERT INTO api_keys (id, organization_id, livemode, name, key_hash, key_prefix, scopes)
        VALUES ('key_legacy', 900001, false, 'Default admin key', sha256(convert_to('{key}', 'UTF8')),
                left('{key}', 12), ARRAY['api:admin']);
        INSERT INTO departments (id, organization_id, livemode, name, timezone, slot_duration, capacity, opening_hours)
        VALUES (900001, 900001, false, 'Legacy Passports', 'Africa/Conakry', 30, 2, '{week}');
        INSERT INTO appointments (id, organization_id, livemode, department_id, starts_at, ends_at,
                                  local_starts_at, timezone, {seat_column}status, name, email, check_in_token,
                                  sequence, cancelled_at, cancelled_by, cancel_reason)
        VALUES (900001, 900001, false, 900001, '{day} 09:00Z', '{day} 09:30Z', '{day} 09:00', 'Africa/Conakry',
                {s0}'CONFIRMED', 'Aminata Diallo', 'aminata@example.test', 'chk_legacy_1', 1, NULL, NULL, NULL),
               (900002, 900001, false, 900001, '{day} 09:00Z', '{day} 09:30Z', '{day} 09:00', 'Africa/Conakry',
                {s1}'CONFIRMED', 'Sekou Conde', NULL, 'chk_legacy_2', 1, NULL, NULL, NULL),
               (900003, 900001, false, 900001, '{day} 10:00Z', '{day} 10:30Z', '{day} 10:00', 'Africa/Conakry',
                {s0}'CANCELLED', 'Mamadou Bah', NULL, 'chk_legacy_3', 2, now(), 'key_legacy', 'Moved away');
        INSERT INTO credit_transactions (organization_id, livemode, type, amount, appointment_id, reason)
        VALUES (900001, false, 'CONSUMPTION', -1, 900001, 'Booking'),
               (900001, false, 'CONSUMPTION', -1, 900002, 'Booking'),
               (900001, false, 'CONSUMPTION', -1, 900003, 'Booking'),
               (900001, false, 'REFUND', 1, 900003, 'Cancellation');
        INSERT INTO events (id, organization_id, livemode, type, appointment_id, sequence, payload)
        SELECT 'evt_legacy' || n, 900001, false, type, appointment, sequence,
               jsonb_build_object('id', 'evt_legacy' || n, 'type', type, 'created', '2026-11-20T10:00:00Z',
                                  'livemode', false, 'sequence', sequence,
                                  'data', jsonb_build_object('object', jsonb_build_object('id', appointment)))
          FROM (VALUES (1, 'appointment.created', 900001, 1), (2, 'appointment.created', 900002, 1),
                       (3, 'appointment.created', 900003, 1), (4, 'appointment.cancelled', 900003, 2))
               AS e(n, type, appointment, sequence);
        "#,
        s0 = seat(0),
        s1 = seat(1),
    );
    if level >= WEBHOOKS_LEVEL {
        script.push_str(&format!(
            r#"
            INSERT INTO webhooks (id, organization_id, livemode, url, events, secret, failing_since)
            VALUES ('wh_legacy', 900001, false, '{receiver}', ARRAY['appointment.created', 'appointment.cancelled'],
                    'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', NULL);
            INSERT INTO webhook_deliveries (id, webhook_id, event_id, status, attempts, next_attempt_at)
            VALUES ('dlv_legacy1', 'wh_legacy', 'evt_legacy1', 'SUCCEEDED', 2, NULL);
            INSERT INTO webhook_attempts (delivery_id, attempt, status_code, duration_ms, error, next_attempt_at)
            VALUES ('dlv_legacy1', 1, 503, 40, 'HTTP 503', now() - interval '1 day'),
                   ('dlv_legacy1', 2, 200, 12, NULL, NULL);
            "#
        ));
    }
    if level >= LIMITS_LEVEL {
        let state = if level < CAPACITY_LEVEL {
            ("state, ", "'DONE', ")
        } else {
            ("", "")
        };
        script.push_str(&format!(
            r#"
            INSERT INTO idempotency_keys (organization_id, livemode, key, request_hash, {}response_status, response_body)
            VALUES (900001, false, 'legacy-retry-1', sha256('legacy'), {}201, convert_to('{{"id": 900001}}', 'UTF8'));
            INSERT INTO rate_limit_windows (key_id, window_start, requests)
            VALUES ('key_legacy', date_trunc('hour', now()) - interval '1 hour', 7);
            "#,
            state.0, state.1
        ));
    }
    if level >= STAFF_LEVEL {
        script.push_str(
            r#"
            INSERT INTO workers (id, department_id, name) VALUES (900001, 900001, 'Dr Legacy');
            UPDATE appointments SET worker_id = 900001 WHERE id = 900001;
            "#,
        );
    }
    sqlx::raw_sql(&script)
        .execute(connection)
        .await
        .unwrap_or_else(|error| panic!("the seed of level {level} is valid there: {error}"));
}

/// A database created by the first `level` migrations and filled as that release would have,
/// upgraded to head: the rows are kept, the invariants hold, and the whole API works on it.
async fn upgrade_from(level: usize) {
    let versions = versions();
    assert!(level >= 1 && level < versions.len());
    let receiver = Receiver::start(vec![]).await;
    let key = format!("mk_test_{}", "Legacy0key0for0upgrades0".repeat(2));
    let database = TestDatabase::create_empty().await;
    let mut connection = connect(&database).await;
    migrator_up_to(versions[level - 1])
        .run(&mut connection)
        .await
        .unwrap();
    seed(&mut connection, level, &key, &receiver.url).await;
    connection.close().await.ok();
    let pool = PgPool::connect(&database.url()).await.unwrap();
    let before = rows(&pool).await;
    assert_invariants(&pool, "as released").await;
    MIGRATOR
        .run(&pool)
        .await
        .expect("the upgrade to head applies");
    let after = rows(&pool).await;
    pool.close().await;
    // Over the tables and columns both versions have (the upgrade drops `seat`, for one).
    let after_cut = as_lower(&after, &before);
    assert_same_rows(&as_lower(&before, &after_cut), &after_cut, "upgraded");
    assert_eq!(
        after_cut.len(),
        before.len(),
        "no table of the release was lost"
    );

    let settings = test_settings(&database.url());
    let app = spawn_app_with(database, settings).await;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY 1")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(applied, versions);
    assert_invariants(&app.db, "upgraded").await;
    let seeded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM appointments WHERE organization_id = 900001 AND check_in_token LIKE 'chk_legacy_%'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(seeded, 3);

    // The legacy key reads what its release wrote.
    let listed = expect_status(app.get("/appointments?size=50", &key).await, StatusCode::OK).await;
    let ids: BTreeSet<i64> = listed["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["id"].as_i64())
        .collect();
    assert_eq!(ids, BTreeSet::from([900001, 900002, 900003]), "{listed}");
    assert_eq!(app.balance(&key).await, 48);
    let day = day_ahead(3);
    let availability = expect_status(
        app.get(
            &format!("/departments/900001/availability?startDate={day}&endDate={day}"),
            &key,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let times: Vec<&str> = availability["availability"][0]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["time"].as_str())
        .collect();
    assert!(
        !times.contains(&"09:00") && times.contains(&"10:00"),
        "the two seeded bookings fill 09:00, the cancelled one frees 10:00: {times:?}"
    );

    // Webhooks: the release's endpoint where it had one, a new one otherwise.
    if level < WEBHOOKS_LEVEL {
        expect_status(
            app.post(
                "/webhooks",
                &key,
                &json!({"url": receiver.url, "events": ["appointment.created", "appointment.cancelled"]}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
    }
    let booked = book_id(
        &app,
        &key,
        json!({"departmentId": 900001, "dateTime": format!("{day}T10:00:00"), "name": "Nouvelle Cliente"}),
    )
    .await;
    assert!(booked < 900001, "the sequence was left to the server");
    let full = app
        .post(
            "/appointments",
            &key,
            &json!({"departmentId": 900001, "dateTime": format!("{day}T09:00:00"), "name": "Too Late"}),
        )
        .await;
    crate::helpers::expect_error(full, StatusCode::CONFLICT, "SLOT_NOT_AVAILABLE").await;
    expect_status(
        app.delete("/appointments/900001", &key).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(app.balance(&key).await, 48);
    let received = receiver.wait_for(2, Duration::from_secs(10)).await;
    let types: BTreeSet<String> = received
        .iter()
        .filter_map(|r| r.json()["type"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        types,
        BTreeSet::from([
            "appointment.created".to_owned(),
            "appointment.cancelled".to_owned()
        ])
    );
    app.assert_ledger_consistent().await;
    assert_invariants(&app.db, "after the API wrote").await;
}

#[tokio::test]
async fn upgrades_from_booking_core() {
    upgrade_from(1).await;
}

#[tokio::test]
async fn upgrades_from_webhooks() {
    upgrade_from(2).await;
}

#[tokio::test]
async fn upgrades_from_limits_and_idempotency() {
    upgrade_from(3).await;
}

#[tokio::test]
async fn upgrades_from_appointment_list_indexes() {
    upgrade_from(4).await;
}

#[tokio::test]
async fn upgrades_from_capacity_at_every_instant() {
    upgrade_from(5).await;
}

#[tokio::test]
async fn upgrades_from_staff() {
    upgrade_from(6).await;
}
