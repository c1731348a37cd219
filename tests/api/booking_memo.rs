//! What a server process remembers of a department between its bookings: a change made through
//! another process is seen by the very next booking, accepted or refused as on a fresh read.

use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

use moncreneau::domain::schedule::WEEKDAYS;

use crate::helpers::{
    expect_error, expect_status, slot, spawn_app, start_server, test_settings, TestApp,
};

/// Sends `body` to `path` of the process at `base`, with the app's test key.
async fn send_at(
    app: &TestApp,
    base: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Response {
    let mut request = app
        .client
        .request(method, format!("{base}/api/v1{path}"))
        .header("X-API-Key", &app.org.test_key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request sent")
}

/// Books `department` at `time` the day after tomorrow through the app's own process, with
/// `key`; `extra` members added to (or replacing those of) the body.
async fn book_as(app: &TestApp, key: &str, department: i64, time: &str, extra: Value) -> Response {
    let mut body =
        json!({"departmentId": department, "dateTime": slot(2, time), "name": "Awa Diallo"});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    app.post("/appointments", key, &body).await
}

/// [`book_as`] with the app's test key.
async fn book(app: &TestApp, department: i64, time: &str, extra: Value) -> Response {
    book_as(app, &app.org.test_key, department, time, extra).await
}

/// PATCHes `path` with `change` through the process at `base` (200 expected).
async fn change_through(app: &TestApp, base: &str, path: &str, change: Value) {
    let response = send_at(app, base, Method::PATCH, path, Some(change)).await;
    expect_status(response, StatusCode::OK).await;
}

/// Asserts that the booking `booking` is refused with `status` and `code` and writes nothing.
async fn refused_with_nothing_written(
    app: &TestApp,
    booking: impl std::future::Future<Output = Response>,
    status: StatusCode,
    code: &str,
) {
    let before = app.footprint().await;
    expect_error(booking.await, status, code).await;
    assert_eq!(app.footprint().await, before, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn department_changes_made_through_another_process_are_seen_by_the_next_booking() {
    let app = spawn_app().await;
    let other = start_server(test_settings(&app.database.url())).await;
    let department = app.create_department(&app.org.test_key, 2).await;
    let path = format!("/departments/{department}");
    // This process reads the department and remembers it.
    expect_status(
        book(&app, department, "09:00", json!({})).await,
        StatusCode::CREATED,
    )
    .await;

    // Deactivated elsewhere: refused here, and nothing written.
    let change = json!({"isActive": false});
    change_through(&app, &other, &path, change).await;
    refused_with_nothing_written(
        &app,
        book(&app, department, "09:30", json!({})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "DEPARTMENT_INACTIVE",
    )
    .await;

    // Active again elsewhere: this process last saw it inactive, and books.
    let change = json!({"isActive": true, "name": "Guichet 2"});
    change_through(&app, &other, &path, change).await;
    let booked = expect_status(
        book(&app, department, "09:30", json!({})).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        booked["department"]["name"], "Guichet 2",
        "renamed elsewhere"
    );

    // Capacity lowered elsewhere to the one place already taken at 09:00.
    let change = json!({"capacity": 1});
    change_through(&app, &other, &path, change).await;
    let full = book(&app, department, "09:00", json!({})).await;
    expect_error(full, StatusCode::CONFLICT, "SLOT_NOT_AVAILABLE").await;

    // Hours closed elsewhere: the slot is no longer offered here.
    let closed: Value = WEEKDAYS
        .iter()
        .map(|day| (day.to_string(), json!([{"start": "14:00", "end": "15:00"}])))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let change = json!({"openingHours": closed});
    change_through(&app, &other, &path, change).await;
    refused_with_nothing_written(
        &app,
        book(&app, department, "10:00", json!({})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "SLOT_NOT_OFFERED",
    )
    .await;
    expect_status(
        book(&app, department, "14:00", json!({})).await,
        StatusCode::CREATED,
    )
    .await;
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_deactivated_through_another_process_is_refused_by_the_next_booking() {
    let app = spawn_app().await;
    let other = start_server(test_settings(&app.database.url())).await;
    let key = &app.org.test_key;
    let department = app.create_department(key, 3).await;
    let worker = app.create_worker(key, department, "Awa").await;
    let named = json!({"workerId": worker});
    expect_status(
        book(&app, department, "09:00", named.clone()).await,
        StatusCode::CREATED,
    )
    .await;

    let path = format!("/departments/{department}/workers/{worker}");
    let deactivated = send_at(&app, &other, Method::DELETE, &path, None).await;
    assert!(
        deactivated.status().is_success(),
        "{}",
        deactivated.status()
    );
    let before = app.footprint().await;

    let refused = book(&app, department, "10:00", named).await;
    expect_error(refused, StatusCode::UNPROCESSABLE_ENTITY, "WORKER_INACTIVE").await;
    assert_eq!(app.footprint().await, before, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_threshold_set_through_another_process_decides_the_next_bookings_events() {
    let app = spawn_app().await;
    let other = start_server(test_settings(&app.database.url())).await;
    let key = &app.org.test_key;
    let department = app.create_department(key, 10).await;
    expect_status(
        book(&app, department, "09:00", json!({})).await,
        StatusCode::CREATED,
    )
    .await;
    let balance = app.balance(key).await;

    // Set elsewhere so that the second booking from now crosses it.
    let threshold = balance - 2;
    let settings = json!({"lowBalanceThreshold": threshold});
    let set = send_at(
        &app,
        &other,
        Method::PUT,
        "/credits/settings",
        Some(settings),
    )
    .await;
    expect_status(set, StatusCode::OK).await;
    for time in ["09:30", "10:00", "10:30"] {
        expect_status(
            book(&app, department, time, json!({})).await,
            StatusCode::CREATED,
        )
        .await;
    }

    let low: Vec<Value> = sqlx::query_scalar(
        "SELECT payload FROM events WHERE type = 'credits.low' AND organization_id = $1",
    )
    .bind(app.org.id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(low.len(), 1, "{low:?}");
    let object = &low[0]["data"]["object"];
    assert_eq!(object["availableCredits"], threshold);
    assert_eq!(object["lowBalanceThreshold"], threshold);
    app.assert_ledger_consistent().await;
}

/// Ids allocated ahead by one process and bookings of another interleave without a clash, and
/// every booking keeps one id, one ledger line and one event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_booking_in_turn_each_give_distinct_ids() {
    let app = spawn_app().await;
    let other = start_server(test_settings(&app.database.url())).await;
    let department = app.create_department(&app.org.test_key, 50).await;
    let mut ids = Vec::new();
    for i in 0..12 {
        let body = json!({"departmentId": department, "dateTime": slot(2, "11:00"), "name": format!("Person {i}")});
        let base = if i % 3 == 0 {
            other.clone()
        } else {
            app.address.clone()
        };
        let response = send_at(&app, &base, Method::POST, "/appointments", Some(body)).await;
        let created = expect_status(response, StatusCode::CREATED).await;
        ids.push(created["id"].as_i64().unwrap());
        let read = app
            .get(&format!("/appointments/{}", ids[i]), &app.org.test_key)
            .await;
        assert_eq!(expect_status(read, StatusCode::OK).await, created);
    }
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE type = 'appointment.created' AND appointment_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(events, 12);
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_through_another_process_is_refused_by_the_next_booking() {
    let app = spawn_app().await;
    let other = start_server(test_settings(&app.database.url())).await;
    let department = app.create_department(&app.org.test_key, 20).await;
    let issued = app.issue_key(&["appointments:create"]).await;
    let key = issued.key.as_str();
    // This process reads the key on its first booking and remembers it.
    expect_status(
        book_as(&app, key, department, "15:00", json!({})).await,
        StatusCode::CREATED,
    )
    .await;
    expect_status(
        book_as(&app, key, department, "15:00", json!({"name": "B"})).await,
        StatusCode::CREATED,
    )
    .await;

    let path = format!("/api-keys/{}", issued.api_key.id);
    let revoked = send_at(&app, &other, Method::DELETE, &path, None).await;
    assert!(revoked.status().is_success(), "{}", revoked.status());
    let before = app.footprint().await;

    let refused = book_as(&app, key, department, "15:00", json!({"name": "C"})).await;
    expect_error(refused, StatusCode::UNAUTHORIZED, "EXPIRED_API_KEY").await;
    // Refused as a revoked key before anything else: a bad body, an Idempotency-Key.
    let bad = book_as(
        &app,
        key,
        department,
        "15:00",
        json!({"dateTime": "tomorrow"}),
    )
    .await;
    expect_error(bad, StatusCode::UNAUTHORIZED, "EXPIRED_API_KEY").await;
    let keyed = app
        .client
        .post(app.url("/appointments"))
        .header("X-API-Key", key)
        .header("Idempotency-Key", "revoked-key-retry")
        .json(&json!({"departmentId": department, "dateTime": slot(2, "16:00"), "name": "D"}))
        .send()
        .await
        .unwrap();
    expect_error(keyed, StatusCode::UNAUTHORIZED, "EXPIRED_API_KEY").await;
    assert_eq!(app.footprint().await, before, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_expired_since_this_process_read_it_is_refused_by_the_next_booking() {
    let app = spawn_app().await;
    let department = app.create_department(&app.org.test_key, 20).await;
    let issued = app.issue_key(&["appointments:create"]).await;
    let key = issued.key.as_str();
    expect_status(
        book_as(&app, key, department, "15:00", json!({})).await,
        StatusCode::CREATED,
    )
    .await;

    // Its expiry moved into the past by another hand than this process's.
    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(&issued.api_key.id)
        .execute(&app.db)
        .await
        .unwrap();
    let before = app.footprint().await;
    let refused = book_as(&app, key, department, "15:00", json!({"name": "B"})).await;
    expect_error(refused, StatusCode::UNAUTHORIZED, "EXPIRED_API_KEY").await;
    assert_eq!(app.footprint().await, before, "nothing was written");
}
