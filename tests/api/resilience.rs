//! When things go wrong: a database outage is a 503 that heals by itself, an internal failure
//! is a 500 that says nothing of its cause.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{expect_error, expect_status, slot, spawn_app, start_server, test_settings};
use crate::relay::DatabaseRelay;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_503_and_the_server_recovers_when_it_returns() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 2).await;
    let relay = DatabaseRelay::start().await;
    let address = start_server(test_settings(&relay.url(&app.database))).await;
    let get = |path: &str| {
        app.client
            .get(format!("{address}{path}"))
            .header("X-API-Key", &key)
            .send()
    };
    expect_status(get("/api/v1/credits").await.unwrap(), StatusCode::OK).await;

    relay.cut();
    let started = Instant::now();
    expect_error(
        get("/api/v1/credits").await.unwrap(),
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
    )
    .await;
    let booking = app
        .client
        .post(format!("{address}/api/v1/appointments"))
        .header("X-API-Key", &key)
        .json(&json!({"departmentId": department, "dateTime": slot(2, "10:00"), "name": "During outage"}))
        .send()
        .await
        .unwrap();
    expect_error(
        booking,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
    )
    .await;
    expect_status(
        get("/ready").await.unwrap(),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    expect_status(get("/health").await.unwrap(), StatusCode::OK).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "503s come within the pool's bounded wait"
    );

    relay.restore();
    let mut recovered = false;
    for _ in 0..50 {
        if get("/api/v1/credits").await.unwrap().status() == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        recovered,
        "the server serves again once the database is back"
    );
    let booked = app
        .client
        .post(format!("{address}/api/v1/appointments"))
        .header("X-API-Key", &key)
        .json(&json!({"departmentId": department, "dateTime": slot(2, "10:00"), "name": "After outage"}))
        .send()
        .await
        .unwrap();
    expect_status(booked, StatusCode::CREATED).await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM appointments")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        rows, 1,
        "the booking refused during the outage left nothing"
    );
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn an_internal_failure_is_a_500_that_leaks_nothing() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 2).await;
    // Corrupt a stored value behind the API's back.
    sqlx::query("UPDATE departments SET timezone = 'Atlantis/Lost_City' WHERE id = $1")
        .bind(department)
        .execute(&app.db)
        .await
        .unwrap();

    let response = app
        .get(
            &format!(
                "/departments/{department}/availability?startDate=2027-01-01&endDate=2027-01-02"
            ),
            &key,
        )
        .await;

    let body = expect_error(
        response,
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL_ERROR",
    )
    .await;
    let text = body.to_string();
    assert!(
        !text.contains("Atlantis") && !text.to_lowercase().contains("time zone"),
        "{text}"
    );
    assert_eq!(body["error"]["message"], "An internal error occurred");
}
