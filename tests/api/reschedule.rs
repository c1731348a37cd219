//! PATCH /appointments/{id}: atomic reschedule and contact changes.

use moncreneau::domain::status::Status;
use moncreneau::routes::appointments::json::{Appointment, AppointmentEvent, Change};
use moncreneau::routes::availability::json::Availability;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{expect_error, expect_json, expect_status, slot, spawn_app, TestApp};
use crate::typed::{local_time, ReadReply};

async fn remaining(app: &TestApp, key: &str, department: i64, days: i64, time: &str) -> i64 {
    let day = crate::helpers::day_ahead(days);
    let listing: Availability = app
        .get(&format!("/departments/{department}/availability?startDate={day}&endDate={day}&includeUnavailable=true"), key)
        .reply()
        .await
        .json(StatusCode::OK);
    listing
        .availability
        .iter()
        .flat_map(|listed| &listed.slots)
        .find(|slot| local_time(slot) == time)
        .map(|slot| slot.remaining)
        .unwrap_or_else(|| panic!("{time} listed on {day}: {listing:?}"))
}

#[tokio::test]
async fn rescheduling_takes_the_new_slot_frees_the_old_and_records_the_change() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 1).await;
    let created = app
        .book_appointment(&key, department, &slot(2, "10:00"))
        .await;
    let id = created.id;

    let moved: Appointment = expect_json(
        app.patch(
            &format!("/appointments/{id}"),
            &key,
            &json!({"dateTime": slot(3, "14:30"), "phone": "+224620000000"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;

    assert_eq!(moved.date_time, slot(3, "14:30"));
    assert_eq!(moved.end_date_time, slot(3, "15:00"));
    assert_eq!(moved.phone.as_deref(), Some("+224620000000"));
    assert_eq!(moved.status, Status::Confirmed);
    assert_eq!(moved.name, created.name, "what was not sent is kept");
    assert_eq!(
        remaining(&app, &key, department, 2, "10:00").await,
        1,
        "old slot freed"
    );
    assert_eq!(
        remaining(&app, &key, department, 3, "14:30").await,
        0,
        "new slot taken"
    );
    assert_eq!(app.balance(&key).await, 99, "a reschedule costs nothing");
    let (data, sequence): (sqlx::types::Json<AppointmentEvent>, i32) = sqlx::query_as(
        "SELECT payload->'data', sequence FROM events WHERE type = 'appointment.updated'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    let data = data.0;
    let changes = data.changes.expect("an update lists its changes");
    assert_eq!(
        changes.date_time,
        Some(Change {
            from: slot(2, "10:00"),
            to: slot(3, "14:30")
        })
    );
    assert_eq!(
        changes.phone,
        Some(Change {
            from: None,
            to: Some("+224620000000".to_owned())
        })
    );
    assert_eq!(
        (
            changes.name,
            changes.email,
            changes.notes,
            changes.metadata,
            changes.worker_id
        ),
        (None, None, None, None, None),
        "only what differs is listed"
    );
    assert_eq!(
        data.object.appointment, moved,
        "the event carries the answer"
    );
    assert_eq!(sequence, 2, "the second change of this appointment");
}

#[tokio::test]
async fn a_refused_reschedule_changes_nothing() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 1).await;
    let id = app
        .book_appointment(&key, department, &slot(2, "10:00"))
        .await
        .id;
    expect_status(
        app.book(&key, department, &slot(2, "11:00")).await,
        StatusCode::CREATED,
    )
    .await;
    let path = format!("/appointments/{id}");
    let original: Appointment = expect_json(app.get(&path, &key).await, StatusCode::OK).await;
    let before = app.footprint().await;

    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"dateTime": slot(2, "11:00")}),
            StatusCode::CONFLICT,
            "SLOT_NOT_AVAILABLE",
        ),
        (
            json!({"dateTime": slot(2, "11:10"), "name": "Other"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "SLOT_NOT_OFFERED",
        ),
        (
            json!({"dateTime": "next week"}),
            StatusCode::BAD_REQUEST,
            "INVALID_DATE_TIME",
        ),
        (
            json!({"email": "nope", "phone": "123"}),
            StatusCode::BAD_REQUEST,
            "INVALID_PHONE_NUMBER",
        ),
        (
            json!({"departmentId": 3}),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        ),
    ];
    for (body, status, code) in cases {
        expect_error(app.patch(&path, &key, &body).await, status, code).await;
    }
    assert_eq!(app.footprint().await, before);
    let after: Appointment = expect_json(app.get(&path, &key).await, StatusCode::OK).await;
    assert_eq!(after, original);

    expect_status(app.delete(&path, &key).await, StatusCode::OK).await;
    let body = app
        .patch(&path, &key, &json!({"name": "Late"}))
        .reply()
        .await
        .error(StatusCode::CONFLICT, "INVALID_STATUS_TRANSITION");
    assert_eq!(
        body.error.detail("currentStatus"),
        Some(&json!("CANCELLED")),
        "{body:?}"
    );
    expect_error(
        app.patch("/appointments/987654", &key, &json!({"name": "x"}))
            .await,
        StatusCode::NOT_FOUND,
        "APPOINTMENT_NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn a_patch_that_changes_nothing_writes_no_event() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 1).await;
    let created = app
        .book_appointment(&key, department, &slot(2, "10:00"))
        .await;
    let before = app.footprint().await;
    let same: Appointment = expect_json(
        app.patch(
            &format!("/appointments/{}", created.id),
            &key,
            &json!({"dateTime": slot(2, "10:00"), "name": "Jean Dupont"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(same, created);
    assert_eq!(app.footprint().await, before);
}
