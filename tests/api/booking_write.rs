//! The booking write: decided on the department as read, written only if nothing changed since,
//! and answering exactly what a later read answers.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{expect_error, expect_status, slot, spawn_app, TestApp};

/// Waits until a booking's write statement waits for a row lock held by the test.
async fn until_a_booking_waits_for_a_lock(db: &PgPool) {
    for _ in 0..1000 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'
                AND query LIKE '%INSERT INTO appointments%'",
        )
        .fetch_one(db)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no booking ever waited for the department");
}

/// Books with `body` while `change` (an UPDATE of the row `id`) is written but not committed:
/// the booking reads the row as it was (no lock needed), then its write waits for the row, and
/// the change commits. Answers the booking's response.
async fn book_across(app: &TestApp, change: &str, id: i64, body: &Value) -> Response {
    let mut tx = app.db.begin().await.unwrap();
    sqlx::query(change)
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    let booking = app.post("/appointments", &app.org.test_key, body);
    let commit = async {
        until_a_booking_waits_for_a_lock(&app.db).await;
        tx.commit().await.unwrap();
    };
    let (response, ()) = tokio::join!(booking, commit);
    response
}

/// A booking of `department` at 10:00 tomorrow.
fn booking_of(department: i64) -> Value {
    json!({"departmentId": department, "dateTime": slot(1, "10:00"), "name": "Jean Dupont"})
}

#[tokio::test]
async fn a_department_deactivated_between_the_read_and_the_write_refuses_the_booking() {
    let app = spawn_app().await;
    let key = &app.org.test_key;
    let department = app.create_department(key, 3).await;
    let before = app.footprint().await;

    let response = book_across(
        &app,
        "UPDATE departments SET is_active = FALSE, updated_at = now() WHERE id = $1",
        department,
        &booking_of(department),
    )
    .await;

    expect_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "DEPARTMENT_INACTIVE",
    )
    .await;
    assert_eq!(app.footprint().await, before, "nothing was written");
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn hours_closed_between_the_read_and_the_write_refuse_the_booking() {
    let app = spawn_app().await;
    let key = &app.org.test_key;
    let department = app.create_department(key, 3).await;
    let before = app.footprint().await;

    let response = book_across(
        &app,
        "UPDATE departments SET opening_hours = '{}', updated_at = now() WHERE id = $1",
        department,
        &booking_of(department),
    )
    .await;

    expect_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "SLOT_NOT_OFFERED",
    )
    .await;
    assert_eq!(app.footprint().await, before, "nothing was written");
}

#[tokio::test]
async fn a_worker_deactivated_between_the_read_and_the_write_refuses_the_booking() {
    let app = spawn_app().await;
    let key = &app.org.test_key;
    let department = app.create_department(key, 3).await;
    let worker = app.create_worker(key, department, "Awa").await;
    let before = app.footprint().await;

    let body = json!({
        "departmentId": department, "workerId": worker,
        "dateTime": slot(1, "10:00"), "name": "Jean Dupont",
    });
    let response = book_across(
        &app,
        "UPDATE workers SET is_active = FALSE, updated_at = now() WHERE id = $1",
        worker,
        &body,
    )
    .await;

    expect_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "WORKER_INACTIVE",
    )
    .await;
    assert_eq!(app.footprint().await, before, "nothing was written");
}

#[tokio::test]
async fn a_department_renamed_between_the_read_and_the_write_books_under_its_new_name() {
    let app = spawn_app().await;
    let key = &app.org.test_key;
    let department = app.create_department(key, 3).await;

    let response = book_across(
        &app,
        "UPDATE departments SET name = 'Renamed', updated_at = now() WHERE id = $1",
        department,
        &booking_of(department),
    )
    .await;

    // Decided again on the current version: the answer and the event name what was written.
    let created = expect_status(response, StatusCode::CREATED).await;
    assert_eq!(created["department"]["name"], "Renamed");
    let event: Value = sqlx::query_scalar(
        "SELECT payload FROM events WHERE type = 'appointment.created' AND appointment_id = $1",
    )
    .bind(created["id"].as_i64().unwrap())
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(event["data"]["object"]["department"]["name"], "Renamed");
}

#[tokio::test]
async fn the_201_body_is_byte_for_byte_what_a_read_of_the_appointment_answers() {
    let app = spawn_app().await;
    let key = &app.org.test_key;
    let department = app.create_department(key, 3).await;
    let body = json!({
        "departmentId": department, "dateTime": slot(2, "09:30"), "name": "Aïssatou Bah",
        "phone": "+224621234567", "email": "a@example.org", "notes": "Fenêtre 3",
        "externalUserId": "u-42", "metadata": {"dossier": "P-17", "canal": "web"},
    });
    let response = app.post("/appointments", key, &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = response.bytes().await.unwrap();
    let id = serde_json::from_slice::<Value>(&created).unwrap()["id"]
        .as_i64()
        .unwrap();

    let read = app.get(&format!("/appointments/{id}"), key).await;
    assert_eq!(read.status(), StatusCode::OK);
    let read = read.bytes().await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&created),
        String::from_utf8_lossy(&read),
        "the 201 shows what was written"
    );

    // The event's copy is the same object, plus the credit it used.
    let event: Value = sqlx::query_scalar(
        "SELECT payload FROM events WHERE type = 'appointment.created' AND appointment_id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let mut object = event["data"]["object"].clone();
    assert_eq!(object["creditsUsed"], 1);
    object.as_object_mut().unwrap().remove("creditsUsed");
    assert_eq!(object, serde_json::from_slice::<Value>(&read).unwrap());
}
