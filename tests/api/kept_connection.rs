//! The connection a booking's write keeps for the next one: a booking on a department the
//! process remembers is one round trip to the database, and the connection goes back to the
//! pool once no booking comes.
//!
//! The server runs behind a relay that counts the round trips completed on its links, without
//! the delivery worker or rate limiting, whose own statements would be counted too.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    expect_error, expect_status, slot, spawn_app, start_server, test_settings, TestApp,
};
use crate::relay::DatabaseRelay;

/// A server behind a relay that counts its round trips, with a department of capacity 20 it
/// has booked on twice (so that it remembers the department as it now is).
async fn counted_server() -> (TestApp, DatabaseRelay, String, i64) {
    let app = spawn_app().await;
    let department = app.create_department(&app.org.test_key, 20).await;
    let relay = DatabaseRelay::start().await;
    let mut settings = test_settings(&relay.url(&app.database));
    settings.webhook_worker = false;
    settings.rate_limit_per_hour = 0;
    let address = start_server(settings).await;
    for n in 0..2 {
        book(&app, &address, department, &format!("Warm-up {n}")).await;
    }
    settle().await;
    (app, relay, address, department)
}

/// Time for any check after a write to be made: the pool's release check runs on a task of its
/// own, after the answer.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

async fn post(app: &TestApp, address: &str, department: i64, name: &str) -> reqwest::Response {
    app.client
        .post(format!("{address}/api/v1/appointments"))
        .header("X-API-Key", &app.org.test_key)
        .json(&json!({"departmentId": department, "dateTime": slot(2, "10:00"), "name": name}))
        .send()
        .await
        .expect("request sent")
}

async fn book(app: &TestApp, address: &str, department: i64, name: &str) {
    let response = post(app, address, department, name).await;
    expect_status(response, StatusCode::CREATED).await;
}

#[tokio::test]
async fn a_booking_on_a_remembered_department_is_one_round_trip() {
    let (app, relay, address, department) = counted_server().await;
    let before = relay.round_trips();
    for n in 0..10 {
        book(&app, &address, department, &format!("Booker {n}")).await;
    }
    settle().await;
    assert_eq!(
        relay.round_trips() - before,
        10,
        "each booking is its statement, with no check of its connection before or after"
    );
}

#[tokio::test]
async fn a_kept_connection_goes_back_to_the_pool_when_no_booking_comes() {
    let (app, relay, address, department) = counted_server().await;
    book(&app, &address, department, "Last before a pause").await;
    settle().await;
    let kept = relay.round_trips();
    // Kept for at most about twice the pool's trust of a released connection (1 s).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        relay.round_trips() - kept,
        1,
        "given back to the pool, which checked it once"
    );
    book(&app, &address, department, "After the pause").await;
    let booked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM appointments WHERE department_id = $1")
            .bind(department)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(booked, 4);
}

#[tokio::test]
async fn a_kept_connection_whose_link_broke_fails_one_booking_and_is_not_kept() {
    let (app, relay, address, department) = counted_server().await;
    book(&app, &address, department, "Before the cut").await;
    relay.cut();
    relay.restore();
    // Within the trust bound, as any connection the pool released a moment ago: the statement
    // fails on the broken link, and nothing is written.
    let failed = post(&app, &address, department, "On the broken link").await;
    expect_error(
        failed,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
    )
    .await;
    // Not kept: the next booking, at once, is written on a new connection.
    book(&app, &address, department, "After the cut").await;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM appointments WHERE department_id = $1 AND name NOT LIKE 'Warm-up%'
          ORDER BY id",
    )
    .bind(department)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(names, ["Before the cut", "After the cut"]);
}
