//! Bookings of one department written together: each keeps its own outcome (a refused one
//! leaves the others as they are), the credits and events are exact, and what changed while they
//! waited (the key, the department) is seen by each of them.
//!
//! Each test holds the department's row lock, so that the first booking's write waits for it
//! while the next ones queue behind it in the server; then lets go, and the queued ones are
//! written together.

use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, Postgres, Transaction};

use crate::helpers::{
    expect_error, expect_status, slot, spawn_app, spawn_app_with, test_settings, TestApp,
    TestDatabase,
};
use crate::relay::DatabaseRelay;

/// What this test process's servers report waiting to be written together (every server of
/// the process records into one recorder).
fn bookings_waiting() -> f64 {
    let text = moncreneau::metrics::install().render();
    text.lines()
        .find_map(|line| line.strip_prefix("moncreneau_bookings_waiting "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Holds the row lock of `department` until the transaction ends, once a booking's write waits
/// for it.
async fn hold_department(app: &TestApp, department: i64) -> Transaction<'static, Postgres> {
    let mut tx = app.db.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM departments WHERE id = $1 FOR UPDATE")
        .bind(department)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The server connections whose statement waits for a row lock.
async fn writes_waiting_for_a_lock(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap()
}

/// Sends `first` and waits until its write waits for the department held by `held`; then
/// sends `queued`, waits until they wait in the server (and no more writes wait in the
/// database than the first), lets go of the department, and answers every response in order.
async fn written_together(
    app: &TestApp,
    key: &str,
    held: Transaction<'static, Postgres>,
    first: Value,
    queued: Vec<Value>,
    meanwhile: impl AsyncFnOnce(),
) -> Vec<Response> {
    let waiting_before = bookings_waiting();
    let count = queued.len();
    let first = app.post("/appointments", key, &first);
    let rest = async {
        until("the first booking waits for the department", async || {
            writes_waiting_for_a_lock(app).await == 1
        })
        .await;
        let queued = join_all(
            queued
                .iter()
                .map(|body| app.post("/appointments", key, body)),
        );
        let release = async {
            until("the others wait in the server", async || {
                bookings_waiting() >= waiting_before + count as f64
            })
            .await;
            assert_eq!(
                writes_waiting_for_a_lock(app).await,
                1,
                "the queued bookings wait in the server, not each on the lock"
            );
            meanwhile().await;
            held.commit().await.unwrap();
        };
        let (responses, ()) = tokio::join!(queued, release);
        responses
    };
    let (first, rest) = tokio::join!(first, rest);
    std::iter::once(first).chain(rest).collect()
}

/// Two bookings, so that the server remembers the department as it is (a booking of a
/// department it remembers nothing of reads it first, alone; and the first booking of a
/// department records the length of its appointments in the department's row).
async fn warm_up(app: &TestApp, key: &str, department: i64) {
    for time in ["08:00", "08:30"] {
        let body = json!({"departmentId": department, "dateTime": slot(3, time), "name": "Warm"});
        let response = app.post("/appointments", key, &body).await;
        expect_status(response, StatusCode::CREATED).await;
    }
}

fn booking(department: i64, time: &str, name: &str, user: Option<&str>) -> Value {
    let mut body = json!({"departmentId": department, "dateTime": slot(1, time), "name": name});
    if let Some(user) = user {
        body["externalUserId"] = json!(user);
    }
    body
}

/// One booking of `department` at each of `times`, all named alike.
fn queued_at(department: i64, times: &[&str]) -> Vec<Value> {
    times
        .iter()
        .map(|time| booking(department, time, "Queued", None))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_bookings_written_together_leave_the_others_booked() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 2).await;
    warm_up(&app, &key, department).await;
    let before = app.footprint().await;
    let balance = app.balance(&key).await;

    let held = hold_department(&app, department).await;
    // The queued ones reach the server in any order: each slot's outcome does not depend on it.
    let responses = written_together(
        &app,
        &key,
        held,
        booking(department, "09:00", "First", Some("u-1")),
        vec![
            // The same person in the same slot as the first.
            booking(department, "09:00", "Second", Some("u-1")),
            // Three for the two places at 10:00.
            booking(department, "10:00", "Third", None),
            booking(department, "10:00", "Fourth", None),
            booking(department, "10:00", "Fifth", None),
            booking(department, "11:00", "Sixth", None),
        ],
        async || {},
    )
    .await;

    let mut booked = Vec::new();
    let mut outcomes = Vec::new();
    for response in responses {
        let status = response.status();
        let text = response.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap();
        if status == StatusCode::CREATED {
            booked.push((body["id"].as_i64().unwrap(), text));
            outcomes.push("201".to_owned());
        } else {
            let reason = body["error"]["details"]["reason"].as_str().unwrap_or("");
            outcomes.push(format!(
                "{} {} {reason}",
                status.as_u16(),
                body["error"]["code"]
            ));
        }
    }
    assert_eq!(outcomes[0], "201");
    assert_eq!(outcomes[1], "409 \"DUPLICATE_APPOINTMENT\" ");
    let mut at_ten = outcomes[2..5].to_vec();
    at_ten.sort();
    assert_eq!(
        at_ten,
        ["201", "201", "409 \"SLOT_NOT_AVAILABLE\" DEPARTMENT_FULL"]
    );
    assert_eq!(outcomes[5], "201");
    let after = app.footprint().await;
    assert_eq!(after.appointments, before.appointments + 4);
    assert_eq!(after.ledger_lines, before.ledger_lines + 4);
    assert_eq!(
        after.events,
        before.events + 4,
        "one appointment.created each"
    );
    assert_eq!(app.balance(&key).await, balance - 4);
    // Each 201 is what a later read answers, byte for byte.
    for (id, created) in booked {
        let read = app.get(&format!("/appointments/{id}"), &key).await;
        assert_eq!(read.status(), StatusCode::OK);
        assert_eq!(read.text().await.unwrap(), created);
    }
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookings_written_together_spend_no_credit_they_do_not_have() {
    let app = spawn_app().await;
    let org = app.create_org("Three credits", 5).await;
    let key = org.live_key.clone();
    let department = app.create_department(&key, 50).await;
    warm_up(&app, &key, department).await;

    let held = hold_department(&app, department).await;
    let times = ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"];
    let queued = queued_at(department, &times[1..]);
    let responses = written_together(
        &app,
        &key,
        held,
        booking(department, times[0], "First", None),
        queued,
        async || {},
    )
    .await;

    let mut statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses[0], 201, "the first one, written alone");
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 201, 201, 402, 402, 402]);
    assert_eq!(app.balance(&key).await, 0);
    let depleted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE organization_id = $1 AND type = 'credits.depleted'",
    )
    .bind(org.id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        depleted, 1,
        "the spend that reached zero announced it, once"
    );
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_while_its_bookings_wait_is_refused_to_each_of_them() {
    let app = spawn_app().await;
    let department = app.create_department(&app.org.test_key, 50).await;
    let issued = app.issue_key(&["appointments:create"]).await;
    let key = issued.key.clone();
    warm_up(&app, &key, department).await;
    let before = app.footprint().await;

    let held = hold_department(&app, department).await;
    let queued = queued_at(department, &["10:00", "11:00", "12:00"]);
    let path = format!("/api-keys/{}", issued.api_key.id);
    let responses = written_together(
        &app,
        &key,
        held,
        booking(department, "09:00", "First", None),
        queued,
        async || {
            let revoked = app.delete(&path, &app.org.test_key).await;
            assert!(revoked.status().is_success(), "{}", revoked.status());
        },
    )
    .await;

    let mut responses = responses.into_iter();
    // The first one's statement began before the revocation, and so is ordered before it.
    let first = responses.next().unwrap();
    expect_status(first, StatusCode::CREATED).await;
    for response in responses {
        expect_error(response, StatusCode::UNAUTHORIZED, "EXPIRED_API_KEY").await;
    }
    let mut after = app.footprint().await;
    after.api_keys = before.api_keys;
    let mut expected = before;
    expected.appointments += 1;
    expected.live_appointments += 1;
    expected.ledger_lines += 1;
    expected.events += 1;
    expected.balances = after.balances.clone();
    assert_eq!(
        after, expected,
        "nothing was booked on the revoked key after it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_deactivated_while_its_bookings_wait_refuses_each_of_them() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 50).await;
    warm_up(&app, &key, department).await;
    let before = app.footprint().await;

    let mut held = hold_department(&app, department).await;
    sqlx::query("UPDATE departments SET is_active = FALSE, updated_at = now() WHERE id = $1")
        .bind(department)
        .execute(&mut *held)
        .await
        .unwrap();
    let queued = queued_at(department, &["10:00", "11:00", "12:00"]);
    let responses = written_together(
        &app,
        &key,
        held,
        booking(department, "09:00", "First", None),
        queued,
        async || {},
    )
    .await;

    for response in responses {
        expect_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "DEPARTMENT_INACTIVE",
        )
        .await;
    }
    assert_eq!(app.footprint().await, before, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookings_whose_call_lost_its_link_fail_each_and_none_is_written_twice() {
    let database = TestDatabase::create().await;
    let relay = DatabaseRelay::start().await;
    let settings = test_settings(&relay.url(&database));
    let app = spawn_app_with(database, settings).await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 50).await;
    let worker = app.create_worker(&key, department, "Busy").await;
    warm_up(&app, &key, department).await;
    let before = app.footprint().await;
    let balance = app.balance(&key).await;

    // The first booking waits for the department; the queued ones name a staff member whose
    // row is held too, so that their call waits for it once the first one is written.
    let held = hold_department(&app, department).await;
    // On a connection of its own: the test's pool has two, for the department and the checks.
    let mut staff = sqlx::PgConnection::connect(&app.database.url())
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut staff).await.unwrap();
    sqlx::query("SELECT 1 FROM workers WHERE id = $1 FOR UPDATE")
        .bind(worker)
        .execute(&mut staff)
        .await
        .unwrap();
    let waiting_before = bookings_waiting();
    let first_body = booking(department, "09:00", "First", None);
    let first = app.post("/appointments", &key, &first_body);
    let rest = async {
        until("the first booking waits for the department", async || {
            writes_waiting_for_a_lock(&app).await == 1
        })
        .await;
        let bodies: Vec<Value> = queued_at(department, &["10:00", "11:00", "12:00"])
            .into_iter()
            .map(|mut body| {
                body["workerId"] = json!(worker);
                body
            })
            .collect();
        let queued = join_all(
            bodies
                .iter()
                .map(|body| app.post("/appointments", &key, body)),
        );
        let cut = async {
            until("the others wait in the server", async || {
                bookings_waiting() >= waiting_before + 3.0
            })
            .await;
            held.commit().await.unwrap();
            until("their call waits for the staff member", async || {
                let first_written: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM appointments WHERE name = 'First'")
                        .fetch_one(&app.db)
                        .await
                        .unwrap();
                first_written == 1 && writes_waiting_for_a_lock(&app).await == 1
            })
            .await;
            // The link goes with the call in flight.
            relay.cut();
            relay.restore();
        };
        let (responses, ()) = tokio::join!(queued, cut);
        responses
    };
    let (first, queued) = tokio::join!(first, rest);

    expect_status(first, StatusCode::CREATED).await;
    for response in queued {
        expect_error(
            response,
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
        )
        .await;
    }
    // The call reached the database before its link went: once the staff member is free, it
    // commits or rolls back as a whole (Postgres may notice the lost client first), and nothing
    // sends it again.
    sqlx::raw_sql("COMMIT").execute(&mut staff).await.unwrap();
    until("the orphaned call is done", async || {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND state = 'active'
                AND pid <> pg_backend_pid()",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        running == 0
    })
    .await;
    let after = app.footprint().await;
    let written = after.appointments - before.appointments;
    assert!(
        written == 1 || written == 4,
        "the first one, and the call's three all or none: {written}"
    );
    assert_eq!(after.ledger_lines, before.ledger_lines + written);
    assert_eq!(after.events, before.events + written);
    assert_eq!(app.balance(&key).await, balance - written);
    // The department is not left as being written: the next booking goes through.
    let next = app
        .post(
            "/appointments",
            &key,
            &booking(department, "13:00", "Next", None),
        )
        .await;
    expect_status(next, StatusCode::CREATED).await;
    app.assert_ledger_consistent().await;
}
