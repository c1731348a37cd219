//! Capacity means people at once: whatever changed since appointments were booked (capacity, slot
//! length, opening hours, time zone), the live appointments overlapping any instant never
//! outnumber the capacity, availability says so, and the database refuses the rest.

use chrono::NaiveDateTime;
use moncreneau::domain::status::Status;
use moncreneau::routes::appointments::json::Appointment;
use moncreneau::routes::availability::json::{Availability, AvailabilitySlot};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    day_ahead, expect_error, expect_json, expect_status, slot, spawn_app, TestApp,
};
use crate::typed::ReadReply;

/// The availability entry of the slot starting at local `date_time` (`YYYY-MM-DDTHH:MM:SS`),
/// listing unavailable slots too; `None` when the grid has no such slot.
async fn listed(
    app: &TestApp,
    key: &str,
    department: i64,
    date_time: &str,
) -> Option<AvailabilitySlot> {
    let at = NaiveDateTime::parse_from_str(date_time, "%Y-%m-%dT%H:%M:%S")
        .unwrap_or_else(|_| panic!("{date_time} is YYYY-MM-DDTHH:MM:SS"));
    let date = at.date();
    let path = format!(
        "/departments/{department}/availability?startDate={date}&endDate={date}&includeUnavailable=true"
    );
    let listing: Availability = app.get(&path, key).reply().await.json(StatusCode::OK);
    listing
        .availability
        .into_iter()
        .flat_map(|day| day.slots)
        .find(|slot| slot.date_time.0 == at)
}

/// Availability and booking agree on `date_time`: listed available ⇔ POST accepts. An accepted
/// probe is cancelled again, so the load is as before.
async fn assert_bookable_iff_available(
    app: &TestApp,
    key: &str,
    department: i64,
    date_time: &str,
    expected: bool,
) {
    let entry = listed(app, key, department, date_time)
        .await
        .unwrap_or_else(|| panic!("{date_time} is a slot of the grid"));
    assert_eq!(
        entry.available, expected,
        "availability of {date_time}: {entry:?}"
    );
    let response = app.book(key, department, date_time).await;
    if expected {
        let booked: Appointment = expect_json(response, StatusCode::CREATED).await;
        let id = booked.id;
        expect_status(
            app.delete(&format!("/appointments/{id}"), key).await,
            StatusCode::OK,
        )
        .await;
    } else {
        assert_eq!(entry.remaining, 0, "{entry:?}");
        expect_error(response, StatusCode::CONFLICT, "SLOT_NOT_AVAILABLE").await;
    }
}

async fn book_id(app: &TestApp, key: &str, department: i64, date_time: &str) -> i64 {
    app.book_appointment(key, department, date_time).await.id
}

async fn set(app: &TestApp, key: &str, department: i64, change: Value) {
    expect_status(
        app.patch(&format!("/departments/{department}"), key, &change)
            .await,
        StatusCode::OK,
    )
    .await;
}

/// No instant of the department holds more live appointments than `capacity` (checked in SQL,
/// independently of the server's own rule).
async fn assert_never_above(app: &TestApp, department: i64, capacity: i64) {
    let peak: Option<i64> = sqlx::query_scalar(
        "SELECT max((SELECT count(*) FROM appointments b
                      WHERE b.department_id = a.department_id AND b.status <> 'CANCELLED'
                        AND b.starts_at <= a.starts_at AND b.ends_at > a.starts_at))
           FROM appointments a WHERE a.department_id = $1 AND a.status <> 'CANCELLED'",
    )
    .bind(department)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(
        peak.unwrap_or(0) <= capacity,
        "peak {peak:?} above {capacity}"
    );
}

#[tokio::test]
async fn a_lowered_capacity_takes_nobody_new_until_the_slot_is_below_it() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 3).await;
    let at = slot(2, "10:00");
    let ids = [
        book_id(&app, &key, department, &at).await,
        book_id(&app, &key, department, &at).await,
        book_id(&app, &key, department, &at).await,
    ];
    set(&app, &key, department, json!({"capacity": 2})).await;
    expect_status(
        app.delete(&format!("/appointments/{}", ids[0]), &key).await,
        StatusCode::OK,
    )
    .await;

    // Two remain in a capacity-2 department: full.
    assert_bookable_iff_available(&app, &key, department, &at, false).await;
    expect_status(
        app.delete(&format!("/appointments/{}", ids[1]), &key).await,
        StatusCode::OK,
    )
    .await;
    assert_bookable_iff_available(&app, &key, department, &at, true).await;
    assert_never_above(&app, department, 2).await;
}

#[tokio::test]
async fn raising_then_lowering_the_capacity_never_lets_the_slot_overflow() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 2).await;
    let at = slot(2, "10:00");
    let first = book_id(&app, &key, department, &at).await;
    book_id(&app, &key, department, &at).await;
    set(&app, &key, department, json!({"capacity": 3})).await;
    book_id(&app, &key, department, &at).await;
    set(&app, &key, department, json!({"capacity": 2})).await;
    expect_status(
        app.delete(&format!("/appointments/{first}"), &key).await,
        StatusCode::OK,
    )
    .await;

    assert_bookable_iff_available(&app, &key, department, &at, false).await;
    assert_never_above(&app, department, 2).await;
}

#[tokio::test]
async fn a_reschedule_into_a_slot_at_a_lowered_capacity_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 2).await;
    let full = slot(2, "10:00");
    book_id(&app, &key, department, &full).await;
    book_id(&app, &key, department, &full).await;
    set(&app, &key, department, json!({"capacity": 1})).await;
    let moving = book_id(&app, &key, department, &slot(2, "11:00")).await;
    let before = app.footprint().await;

    let response = app
        .patch(
            &format!("/appointments/{moving}"),
            &key,
            &json!({"dateTime": full}),
        )
        .await;

    expect_error(response, StatusCode::CONFLICT, "SLOT_NOT_AVAILABLE").await;
    assert_eq!(
        app.footprint().await,
        before,
        "a refused reschedule writes nothing"
    );
    let kept: Appointment = expect_json(
        app.get(&format!("/appointments/{moving}"), &key).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(kept.date_time, slot(2, "11:00"));
}

#[tokio::test]
async fn an_appointment_above_a_lowered_capacity_stays_valid_and_editable() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 2).await;
    let at = slot(2, "10:00");
    let first = book_id(&app, &key, department, &at).await;
    let second = book_id(&app, &key, department, &at).await;
    set(&app, &key, department, json!({"capacity": 1})).await;

    let edited = app
        .patch(
            &format!("/appointments/{first}"),
            &key,
            &json!({"notes": "Bring the receipt", "name": "Jean Dupont Jr"}),
        )
        .await;
    let edited: Appointment = expect_json(edited, StatusCode::OK).await;
    assert_eq!(edited.notes.as_deref(), Some("Bring the receipt"));
    assert_eq!(edited.name, "Jean Dupont Jr");
    assert_eq!(edited.status, Status::Confirmed);
    // Its own time, given again, is no move.
    let same = app
        .patch(
            &format!("/appointments/{second}"),
            &key,
            &json!({"dateTime": at, "notes": "same time"}),
        )
        .await;
    expect_status(same, StatusCode::OK).await;
    let validated = app
        .post(
            &format!("/appointments/{second}/validate"),
            &key,
            &json!({}),
        )
        .await;
    let validated: Appointment = expect_json(validated, StatusCode::OK).await;
    assert_eq!(validated.status, Status::Completed);
}

#[tokio::test]
async fn a_shorter_slot_length_never_overlaps_an_earlier_booking() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 1).await;
    book_id(&app, &key, department, &slot(2, "10:00")).await; // 10:00–10:30
    set(&app, &key, department, json!({"slotDuration": 15})).await;

    assert_bookable_iff_available(&app, &key, department, &slot(2, "10:00"), false).await;
    assert_bookable_iff_available(&app, &key, department, &slot(2, "10:15"), false).await;
    assert_bookable_iff_available(&app, &key, department, &slot(2, "10:30"), true).await;
    assert_bookable_iff_available(&app, &key, department, &slot(2, "09:45"), true).await;
    assert_never_above(&app, department, 1).await;
}

#[tokio::test]
async fn a_longer_slot_length_never_overlaps_an_earlier_booking() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 1).await;
    book_id(&app, &key, department, &slot(2, "10:30")).await; // 10:30–11:00
    set(&app, &key, department, json!({"slotDuration": 60})).await;

    assert_bookable_iff_available(&app, &key, department, &slot(2, "10:00"), false).await;
    assert_bookable_iff_available(&app, &key, department, &slot(2, "11:00"), true).await;
}

#[tokio::test]
async fn opening_hours_shifted_by_five_minutes_never_overlap_an_earlier_booking() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 1).await;
    book_id(&app, &key, department, &slot(2, "10:00")).await; // 10:00–10:30
    let day = json!([{"start": "08:05", "end": "18:05"}]);
    let week = json!({"monday": day, "tuesday": day, "wednesday": day, "thursday": day,
                      "friday": day, "saturday": day, "sunday": day});
    set(&app, &key, department, json!({"openingHours": week})).await;

    assert_bookable_iff_available(&app, &key, department, &slot(2, "09:35"), false).await;
    assert_bookable_iff_available(&app, &key, department, &slot(2, "10:05"), false).await;
    assert_bookable_iff_available(&app, &key, department, &slot(2, "09:05"), true).await;
    assert_bookable_iff_available(&app, &key, department, &slot(2, "10:35"), true).await;
}

#[tokio::test]
async fn a_time_zone_change_keeps_every_appointment_at_its_instant() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 1).await; // Africa/Conakry = UTC
    let id = book_id(&app, &key, department, &slot(2, "10:00")).await; // 10:00Z–10:30Z
    set(&app, &key, department, json!({"timezone": "Africa/Lagos"})).await; // UTC+1

    let kept: Appointment = expect_json(
        app.get(&format!("/appointments/{id}"), &key).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(kept.starts_at, format!("{}T10:00:00Z", day_ahead(2)));
    // 11:00 in Lagos is 10:00Z: taken. 10:30 in Lagos ends at 10:00Z: free.
    assert_bookable_iff_available(&app, &key, department, &slot(2, "11:00"), false).await;
    assert_bookable_iff_available(&app, &key, department, &slot(2, "10:30"), true).await;
    assert_bookable_iff_available(&app, &key, department, &slot(2, "11:30"), true).await;
}

#[tokio::test]
async fn the_database_refuses_an_overlap_written_behind_the_api() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 1).await;
    let id = book_id(&app, &key, department, &slot(2, "10:00")).await;

    // A copy of the booking shifted by 15 minutes, inserted directly: the trigger refuses it.
    let refused = sqlx::query(
        "INSERT INTO appointments (organization_id, livemode, department_id, starts_at, ends_at,
                                   local_starts_at, timezone, name, check_in_token)
         SELECT organization_id, livemode, department_id, starts_at + interval '15 minutes',
                ends_at + interval '15 minutes', local_starts_at, timezone, 'Behind the API', 'tok-behind'
           FROM appointments WHERE id = $1",
    )
    .bind(id)
    .execute(&app.db)
    .await
    .expect_err("the overlap is refused");
    let constraint = refused.as_database_error().and_then(|e| e.constraint());
    assert_eq!(constraint, Some("appointments_within_capacity"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_capacity_lowered_during_a_burst_of_bookings_is_never_exceeded_afterwards() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 4).await;
    let second =
        crate::helpers::start_server(crate::helpers::test_settings(&app.database.url())).await;
    let at = slot(2, "10:00");
    let bookings = (0..12).map(|i| {
        let base = if i % 2 == 0 { &app.address } else { &second };
        let body = json!({"departmentId": department, "dateTime": at, "name": format!("P{i}")});
        let (app, key) = (&app, &key);
        async move { app.post_status_at(base, "/appointments", key, &body).await }
    });
    let lower = set(&app, &key, department, json!({"capacity": 2}));

    let (statuses, ()) = tokio::join!(futures::future::join_all(bookings), lower);

    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert!((2..=4).contains(&created), "{created} booked: {statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    assert_never_above(&app, department, 4).await;
    // Whatever the interleaving, the slot is now at or above the new capacity: full for both.
    assert_bookable_iff_available(&app, &key, department, &at, false).await;
}
