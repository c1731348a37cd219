//! A database link that is cut, stalled or loses an answer: bookings stay exactly-once, keys
//! come free, every wait is bounded and other organizations keep being served.

use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    expect_error, expect_status, slot, spawn_app, start_server, test_settings, TestApp,
};
use crate::relay::{DatabaseRelay, Fault};

/// Bounds short enough for a test: an idle transaction lives 1 s, a lock wait 4 s, a request 3 s.
fn bounded_settings(database_url: &str) -> moncreneau::config::Settings {
    let mut settings = test_settings(database_url);
    settings.database_idle_in_transaction_timeout = Duration::from_millis(1_000);
    settings.database_lock_timeout = Duration::from_millis(4_000);
    settings.database_statement_timeout = Duration::from_millis(4_000);
    settings.database_acquire_timeout = Duration::from_millis(4_000);
    settings.request_timeout = Duration::from_millis(3_000);
    settings
}

async fn post_booking(
    app: &TestApp,
    address: &str,
    key: &str,
    idempotency: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{address}/api/v1/appointments"))
        .header("X-API-Key", key)
        .json(body);
    if let Some(idempotency) = idempotency {
        request = request.header("Idempotency-Key", idempotency);
    }
    request.send().await.expect("request sent")
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.db).await.unwrap()
}

/// A keyed booking, sent to a server behind a relay, that meets `fault` at its commit and is
/// answered 503 in the envelope. Answers the app, the relay, the server's address and the body.
async fn booking_meeting(
    fault: Fault,
    name: &str,
    idempotency: &str,
) -> (TestApp, DatabaseRelay, String, Value) {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 3).await;
    let relay = DatabaseRelay::start().await;
    let address = start_server(bounded_settings(&relay.url(&app.database))).await;
    let body = json!({"departmentId": department, "dateTime": slot(2, "10:00"), "name": name});

    relay.arm(name, fault);
    let first = post_booking(&app, &address, &key, Some(idempotency), &body).await;
    relay.fired().await;

    expect_error(
        first,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
    )
    .await;
    (app, relay, address, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_to_commit_then_a_retry_with_the_same_key_books_once() {
    let (app, _relay, address, body) =
        booking_meeting(Fault::LoseTheAnswer, "Lost Answer", "order-lost").await;
    let key = app.org.test_key.clone();
    assert_eq!(
        count(&app, "SELECT count(*) FROM appointments").await,
        1,
        "the booking committed although its answer was lost"
    );

    let retry = post_booking(&app, &address, &key, Some("order-lost"), &body).await;

    let replayed = retry.headers().get("idempotent-replayed").cloned();
    assert_eq!(replayed.as_ref().map(|v| v.as_bytes()), Some(&b"true"[..]));
    let replay = expect_status(retry, StatusCode::CREATED).await;
    let stored: i64 = count(&app, "SELECT id FROM appointments").await;
    assert_eq!(
        replay["id"], stored,
        "the replay is the booking that committed"
    );
    assert_eq!(count(&app, "SELECT count(*) FROM appointments").await, 1);
    let consumed = "SELECT count(*) FROM credit_transactions WHERE type = 'CONSUMPTION'";
    assert_eq!(count(&app, consumed).await, 1, "one credit spent, once");
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_cut_before_commit_leaves_the_key_free_for_an_immediate_retry() {
    let (app, _relay, address, body) = booking_meeting(Fault::Cut, "Cut Short", "order-cut").await;
    let key = app.org.test_key.clone();
    assert_eq!(count(&app, "SELECT count(*) FROM appointments").await, 0);
    // The key is the cut transaction's advisory lock: Postgres frees it when it has ended that
    // transaction, which the cut (EOF on its socket) makes it do at once, not at the 1 s idle
    // bound. The 503 can reach the client a moment before that; wait for it, well within 1 s.
    let held = "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                 WHERE l.locktype = 'advisory' AND d.datname = current_database()";
    let cut_at = Instant::now();
    while count(&app, held).await > 0 {
        assert!(
            cut_at.elapsed() < Duration::from_millis(500),
            "the cut transaction still holds the key"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let retry = post_booking(&app, &address, &key, Some("order-cut"), &body).await;

    assert!(retry.headers().get("idempotent-replayed").is_none());
    expect_status(retry, StatusCode::CREATED).await;
    assert_eq!(count(&app, "SELECT count(*) FROM appointments").await, 1);
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_refused_during_an_outage_books_as_soon_as_the_database_answers() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 3).await;
    let relay = DatabaseRelay::start().await;
    let address = start_server(bounded_settings(&relay.url(&app.database))).await;
    let body = json!({"departmentId": department, "dateTime": slot(2, "10:00"), "name": "Outage"});

    relay.cut();
    let during = post_booking(&app, &address, &key, Some("order-outage"), &body).await;
    expect_error(
        during,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
    )
    .await;
    relay.restore();

    // The first answer after the outage is the booking: never 409 for a key nobody holds.
    let mut answer = None;
    for _ in 0..50 {
        let response = post_booking(&app, &address, &key, Some("order-outage"), &body).await;
        if response.status() != StatusCode::SERVICE_UNAVAILABLE {
            answer = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = answer.expect("the server books again once the database is back");
    expect_status(answer, StatusCode::CREATED).await;
    assert_eq!(count(&app, "SELECT count(*) FROM appointments").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_link_stalled_at_commit_holds_nobody_past_the_bounds() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 5).await;
    let other = app.create_org("Other Clinic", 10).await;
    let other_department = app.create_department(&other.test_key, 2).await;
    let relay = DatabaseRelay::start().await;
    // Process A reaches Postgres through the relay; process B directly.
    let stalled = start_server(bounded_settings(&relay.url(&app.database))).await;
    let healthy = start_server(bounded_settings(&app.database.url())).await;
    let balance = app.balance(&key).await;

    relay.arm("Stalled Booker", Fault::Stall);
    let body =
        json!({"departmentId": department, "dateTime": slot(2, "10:00"), "name": "Stalled Booker"});
    let started = Instant::now();
    let stalled_booking = {
        let (app, stalled, key) = (&app, stalled.clone(), key.clone());
        async move {
            let response = post_booking(app, &stalled, &key, Some("order-stalled"), &body).await;
            (started.elapsed(), response)
        }
    };
    let on_healthy = async {
        relay.fired().await;
        let since = Instant::now();
        // The stalled transaction holds the department's and the account's locks: bookings of
        // that organization on the healthy process wait for them (more than its pool holds),
        // while another organization reads.
        let bookings = (0..6).map(|i| {
            let body = json!({"departmentId": department, "dateTime": slot(2, &format!("{:02}:00", 11 + i)), "name": format!("Healthy {i}")});
            let (app, healthy, key) = (&app, healthy.clone(), key.clone());
            async move { post_booking(app, &healthy, &key, None, &body).await.status() }
        });
        let reads = (0..6).map(|_| {
            let path = format!("{healthy}/api/v1/departments/{other_department}");
            let (app, key) = (&app, other.test_key.clone());
            async move {
                let response = app
                    .client
                    .get(path)
                    .header("X-API-Key", key)
                    .send()
                    .await
                    .unwrap();
                (response.status(), since.elapsed())
            }
        });
        let (bookings, reads) = tokio::join!(join_all(bookings), join_all(reads));
        (bookings, reads, since.elapsed())
    };
    let ((stalled_elapsed, stalled_response), (bookings, reads, healthy_elapsed)) =
        tokio::join!(stalled_booking, on_healthy);

    // The stalled process answers within its request bound, in the error envelope.
    assert!(
        stalled_elapsed < Duration::from_secs(10),
        "took {stalled_elapsed:?}"
    );
    expect_error(
        stalled_response,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
    )
    .await;
    // Postgres ended the stalled transaction after 1 s idle: the healthy process books.
    assert!(
        bookings.iter().all(|status| *status == StatusCode::CREATED),
        "{bookings:?}"
    );
    assert!(
        healthy_elapsed < Duration::from_secs(8),
        "took {healthy_elapsed:?}"
    );
    for (status, elapsed) in &reads {
        assert_eq!(*status, StatusCode::OK);
        assert!(
            *elapsed < Duration::from_secs(6),
            "another organization waited {elapsed:?}"
        );
    }
    // Nothing of the stalled booking committed; a retry of its key books it once.
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM appointments WHERE name = 'Stalled Booker'"
        )
        .await,
        0
    );
    let body =
        json!({"departmentId": department, "dateTime": slot(2, "10:00"), "name": "Stalled Booker"});
    expect_status(
        post_booking(&app, &healthy, &key, Some("order-stalled"), &body).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(app.balance(&key).await, balance - 7);
    app.assert_ledger_consistent().await;
}
