//! Staff (workers): managed per department and tenant, named by bookings, one appointment at a
//! time each, and availability per worker that says exactly what POST accepts.

use futures::future::join_all;
use moncreneau::events::Envelope;
use moncreneau::routes::appointments::json::{
    Appointment, AppointmentChanges, AppointmentEvent, AppointmentPage, Change,
};
use moncreneau::routes::availability::json::{Availability, AvailabilitySlot};
use moncreneau::routes::departments::json::{Department, DepartmentUpdate};
use moncreneau::routes::events::json::EventPage;
use moncreneau::routes::workers::json::{Worker, WorkerCreate, WorkerUpdate};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{day_ahead, expect_status, slot, spawn_app, TestApp};
use crate::typed::{local_time, read, ErrorBody, ReadReply};

fn workers_path(department: i64) -> String {
    format!("/departments/{department}/workers")
}

fn worker_path(department: i64, worker: i64) -> String {
    format!("/departments/{department}/workers/{worker}")
}

fn named(name: &str) -> WorkerUpdate {
    WorkerUpdate {
        name: Some(name.to_owned()),
        ..Default::default()
    }
}

/// POST /appointments at `date_time`, naming `worker` when given.
async fn book_with(
    app: &TestApp,
    key: &str,
    department: i64,
    date_time: &str,
    worker: Option<i64>,
) -> Response {
    let mut body = json!({"departmentId": department, "dateTime": date_time, "name": "Awa Camara"});
    if let Some(worker) = worker {
        body["workerId"] = json!(worker);
    }
    app.post("/appointments", key, &body).await
}

async fn booked_id(
    app: &TestApp,
    key: &str,
    department: i64,
    date_time: &str,
    worker: Option<i64>,
) -> i64 {
    let booked: Appointment = book_with(app, key, department, date_time, worker)
        .reply()
        .await
        .json(StatusCode::CREATED);
    assert_eq!(booked.worker_id, worker, "{booked:?}");
    booked.id
}

/// Asserts a 409 `SLOT_NOT_AVAILABLE` with its reason.
async fn expect_busy(response: Response, reason: &str) {
    let body = read(response)
        .await
        .error(StatusCode::CONFLICT, "SLOT_NOT_AVAILABLE");
    assert_eq!(
        body.error.detail("reason"),
        Some(&json!(reason)),
        "{body:?}"
    );
}

async fn cancel(app: &TestApp, key: &str, appointment: i64) {
    expect_status(
        app.delete(&format!("/appointments/{appointment}"), key)
            .await,
        StatusCode::OK,
    )
    .await;
}

async fn worker_rows(app: &TestApp) -> Vec<(i64, i64, String, bool)> {
    sqlx::query_as("SELECT id, department_id, name, is_active FROM workers ORDER BY id")
        .fetch_all(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn staff_are_read_with_departments_read_and_managed_with_api_admin() {
    let app = spawn_app().await;
    let admin = app.org.test_key.clone();
    let department = app.create_department(&admin, 2).await;
    let reader = app.create_key(&["departments:read"]).await;
    let booker = app.create_key(&["appointments:create"]).await;

    let body = WorkerCreate {
        name: Some("  Dr. Diallo ".to_owned()),
        ..Default::default()
    };
    let created: Worker = app
        .post(&workers_path(department), &admin, &body)
        .reply()
        .await
        .json(StatusCode::CREATED);
    let worker = created.id;
    assert_eq!(created.name, "Dr. Diallo", "stored trimmed");
    assert_eq!(
        (created.is_active, created.department_id, created.livemode),
        (true, department, false)
    );

    let listed: Vec<Worker> = app
        .get(&workers_path(department), &reader)
        .reply()
        .await
        .json(StatusCode::OK);
    assert_eq!(listed, [created], "a bare array of the workers");
    let one: Worker = app
        .get(&worker_path(department, worker), &reader)
        .reply()
        .await
        .json(StatusCode::OK);
    assert_eq!(one, listed[0]);

    let writes = [
        (
            reqwest::Method::POST,
            workers_path(department),
            Some(json!({"name": "Intruder"})),
        ),
        (
            reqwest::Method::PATCH,
            worker_path(department, worker),
            Some(json!({"name": "Renamed"})),
        ),
        (
            reqwest::Method::DELETE,
            worker_path(department, worker),
            None,
        ),
    ];
    for (method, path, body) in &writes {
        let response = app
            .request(method.clone(), path, &reader, body.as_ref())
            .await;
        let refused = read(response)
            .await
            .error(StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE");
        assert_eq!(
            refused.error.detail("requiredScope"),
            Some(&json!("api:admin")),
            "{method} {path}"
        );
    }
    let refused = app
        .get(&workers_path(department), &booker)
        .reply()
        .await
        .error(StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE");
    assert_eq!(
        refused.error.detail("requiredScope"),
        Some(&json!("departments:read"))
    );
    assert_eq!(
        worker_rows(&app).await,
        vec![(worker, department, "Dr. Diallo".to_owned(), true)],
        "a refused write changes nothing"
    );

    let renamed: Worker = app
        .patch(
            &worker_path(department, worker),
            &admin,
            &named("Dr. Aminata Diallo"),
        )
        .reply()
        .await
        .json(StatusCode::OK);
    assert_eq!(
        (renamed.name.as_str(), renamed.is_active),
        ("Dr. Aminata Diallo", true)
    );
    let deactivated: Worker = app
        .delete(&worker_path(department, worker), &admin)
        .reply()
        .await
        .json(StatusCode::OK);
    assert!(!deactivated.is_active);
    let listed: Vec<Worker> = app
        .get(&workers_path(department), &reader)
        .reply()
        .await
        .json(StatusCode::OK);
    assert_eq!(
        listed
            .iter()
            .map(|w| (w.id, w.is_active))
            .collect::<Vec<_>>(),
        [(worker, false)],
        "a deactivated worker stays listed"
    );
    let reactivate = WorkerUpdate {
        is_active: Some(true),
        ..Default::default()
    };
    let reactivated: Worker = app
        .patch(&worker_path(department, worker), &admin, &reactivate)
        .reply()
        .await
        .json(StatusCode::OK);
    assert!(reactivated.is_active);
    assert_eq!(
        reactivated.name, "Dr. Aminata Diallo",
        "an absent name is kept"
    );
}

#[tokio::test]
async fn another_organizations_or_modes_departments_and_workers_are_404() {
    let app = spawn_app().await;
    let mine = app.org.test_key.clone();
    let other = app.create_org("Other Ministry", 0).await;
    let my_department = app.create_department(&mine, 2).await;
    let my_other_department = app.create_department(&mine, 2).await;
    let my_worker = app
        .create_worker(&mine, my_other_department, "Mine, elsewhere")
        .await;
    let their_department = app.create_department(&other.test_key, 2).await;
    let their_worker = app
        .create_worker(&other.test_key, their_department, "Theirs")
        .await;
    let before = worker_rows(&app).await;

    let department_404 = [
        (reqwest::Method::GET, workers_path(their_department), None),
        (
            reqwest::Method::POST,
            workers_path(their_department),
            Some(json!({"name": "Sneaky"})),
        ),
        (
            reqwest::Method::GET,
            worker_path(their_department, their_worker),
            None,
        ),
        (
            reqwest::Method::PATCH,
            worker_path(their_department, their_worker),
            Some(json!({"name": "Sneaky"})),
        ),
        (
            reqwest::Method::DELETE,
            worker_path(their_department, their_worker),
            None,
        ),
    ];
    for (method, path, body) in &department_404 {
        let response = app
            .request(method.clone(), path, &mine, body.as_ref())
            .await;
        read(response)
            .await
            .error(StatusCode::NOT_FOUND, "DEPARTMENT_NOT_FOUND");
        // The same organization's other mode is another world too.
        let response = app
            .request(method.clone(), path, &other.live_key, body.as_ref())
            .await;
        read(response)
            .await
            .error(StatusCode::NOT_FOUND, "DEPARTMENT_NOT_FOUND");
    }
    // Their worker, or my own worker of another department, under my department's path.
    for worker in [their_worker, my_worker, 999_999] {
        for (method, body) in [
            (reqwest::Method::GET, None),
            (reqwest::Method::PATCH, Some(json!({"name": "Sneaky"}))),
            (reqwest::Method::DELETE, None),
        ] {
            let path = worker_path(my_department, worker);
            let response = app
                .request(method.clone(), &path, &mine, body.as_ref())
                .await;
            read(response)
                .await
                .error(StatusCode::NOT_FOUND, "WORKER_NOT_FOUND");
        }
        let booking = book_with(&app, &mine, my_department, &slot(2, "10:00"), Some(worker)).await;
        read(booking)
            .await
            .error(StatusCode::NOT_FOUND, "WORKER_NOT_FOUND");
        let availability = app
            .get(
                &format!(
                    "/departments/{my_department}/availability?startDate={0}&endDate={0}&workerId={worker}",
                    day_ahead(2)
                ),
                &mine,
            )
            .await;
        read(availability)
            .await
            .error(StatusCode::NOT_FOUND, "WORKER_NOT_FOUND");
    }
    assert_eq!(worker_rows(&app).await, before, "nothing changed anywhere");
}

#[tokio::test]
async fn worker_bodies_are_validated_naming_each_bad_field() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 2).await;
    let cases = [
        (json!({}), "name", "MISSING_REQUIRED_FIELD"),
        (json!({"name": ""}), "name", "INVALID_FIELD_VALUE"),
        (json!({"name": "   "}), "name", "INVALID_FIELD_VALUE"),
        (
            json!({"name": "x".repeat(201)}),
            "name",
            "INVALID_FIELD_VALUE",
        ),
        (json!({"name": 5}), "name", "INVALID_FIELD_VALUE"),
        (
            json!({"name": "Dr. Bah", "nmae": "typo"}),
            "nmae",
            "INVALID_REQUEST",
        ),
        (
            json!({"name": "Dr. Bah", "departmentId": 1}),
            "departmentId",
            "INVALID_REQUEST",
        ),
        (
            json!({"name": "Dr. Bah", "isActive": "yes"}),
            "isActive",
            "INVALID_FIELD_VALUE",
        ),
    ];
    // Malformed on purpose (wrong types, unknown members): raw JSON.
    for (body, field, code) in &cases {
        let response = app.post(&workers_path(department), &key, body).await;
        let refused = read(response).await.error(StatusCode::BAD_REQUEST, code);
        assert_eq!(refused.fields(), [*field], "POST {body}: {refused:?}");
    }
    assert!(
        worker_rows(&app).await.is_empty(),
        "no refused body wrote a worker"
    );

    let longest = "é".repeat(200);
    let worker = app.create_worker(&key, department, &longest).await;
    for (body, field, code) in &cases[1..] {
        let response = app
            .patch(&worker_path(department, worker), &key, body)
            .await;
        let refused = read(response).await.error(StatusCode::BAD_REQUEST, code);
        assert_eq!(refused.fields(), [*field], "PATCH {body}: {refused:?}");
    }
    assert_eq!(
        worker_rows(&app).await,
        vec![(worker, department, longest, true)],
        "200 characters are accepted, and no refused PATCH changed the worker"
    );
}

#[tokio::test]
async fn a_department_that_shows_its_staff_requires_an_active_worker_of_its_own() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let plain = app.create_department(&key, 3).await;
    let department = app
        .create_department_with(&key, json!({"capacity": 3, "showAdminsInBooking": true}))
        .await;
    let shown: Department = app
        .get(&format!("/departments/{department}"), &key)
        .reply()
        .await
        .json(StatusCode::OK);
    assert!(shown.show_admins_in_booking);
    let default: Department = app
        .get(&format!("/departments/{plain}"), &key)
        .reply()
        .await
        .json(StatusCode::OK);
    assert!(!default.show_admins_in_booking, "off unless asked for");
    let worker = app.create_worker(&key, department, "Dr. Diallo").await;
    let inactive = app.create_worker(&key, department, "Dr. Sow").await;
    let _: Worker = app
        .delete(&worker_path(department, inactive), &key)
        .reply()
        .await
        .json(StatusCode::OK);
    let elsewhere = app.create_worker(&key, plain, "Dr. Barry").await;
    let at = slot(2, "10:00");
    let before = app.footprint().await;

    let missing = book_with(&app, &key, department, &at, None)
        .reply()
        .await
        .error(StatusCode::BAD_REQUEST, "MISSING_REQUIRED_FIELD");
    assert_eq!(missing.fields(), ["workerId"], "{missing:?}");
    let zero = app
        .post(
            "/appointments",
            &key,
            &json!({"departmentId": department, "dateTime": at, "name": "A", "workerId": 0}),
        )
        .await;
    let zero = read(zero)
        .await
        .error(StatusCode::BAD_REQUEST, "INVALID_FIELD_VALUE");
    assert_eq!(zero.fields(), ["workerId"]);
    for unknown in [elsewhere, 999_999] {
        book_with(&app, &key, department, &at, Some(unknown))
            .reply()
            .await
            .error(StatusCode::NOT_FOUND, "WORKER_NOT_FOUND");
    }
    let refused = book_with(&app, &key, department, &at, Some(inactive))
        .reply()
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "WORKER_INACTIVE");
    assert_eq!(refused.error.detail("workerId"), Some(&json!(inactive)));
    assert_eq!(
        app.footprint().await,
        before,
        "a refused booking writes no appointment, ledger line or event and spends no credit"
    );

    booked_id(&app, &key, department, &at, Some(worker)).await;
    let after = app.footprint().await;
    assert_eq!(
        (after.appointments, after.ledger_lines, after.events),
        (
            before.appointments + 1,
            before.ledger_lines + 1,
            before.events + 1
        )
    );
    // Elsewhere, or once the flag is off, a booking may name nobody.
    booked_id(&app, &key, plain, &at, None).await;
    let hide = DepartmentUpdate {
        show_admins_in_booking: Some(false),
        ..Default::default()
    };
    let hidden: Department = app
        .patch(&format!("/departments/{department}"), &key, &hide)
        .reply()
        .await
        .json(StatusCode::OK);
    assert!(!hidden.show_admins_in_booking);
    booked_id(&app, &key, department, &at, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_simultaneous_bookings_of_one_workers_slot_give_one() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 50).await;
    let worker = app.create_worker(&key, department, "Dr. Diallo").await;
    let balance = app.balance(&key).await;
    let at = slot(2, "10:00");

    let (app_ref, key_ref, at_ref) = (&app, &key, &at);
    let results = join_all((0..20).map(|_| async move {
        book_with(app_ref, key_ref, department, at_ref, Some(worker))
            .reply()
            .await
    }))
    .await;

    let created = results
        .iter()
        .filter(|reply| reply.status == StatusCode::CREATED)
        .count();
    let busy = results
        .iter()
        .filter(|reply| {
            reply.status == StatusCode::CONFLICT && {
                let body: ErrorBody = reply.parse();
                body.error.code == "SLOT_NOT_AVAILABLE"
                    && body.error.detail("reason") == Some(&json!("WORKER_BUSY"))
            }
        })
        .count();
    assert_eq!((created, busy), (1, 19), "{results:?}");
    assert_eq!(
        app.balance(&key).await,
        balance - 1,
        "exactly one credit spent"
    );
    let (live, consumed, events): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM appointments WHERE worker_id = $1 AND status <> 'CANCELLED'),
                (SELECT count(*) FROM credit_transactions WHERE type = 'CONSUMPTION'),
                (SELECT count(*) FROM events WHERE type = 'appointment.created')",
    )
    .bind(worker)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((live, consumed, events), (1, 1, 1));
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn two_workers_share_a_slot_while_the_department_has_a_place_for_each() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let at = slot(2, "10:00");
    let two_desks = app.create_department(&key, 2).await;
    let first = app.create_worker(&key, two_desks, "Dr. Diallo").await;
    let second = app.create_worker(&key, two_desks, "Dr. Sow").await;

    booked_id(&app, &key, two_desks, &at, Some(first)).await;
    expect_busy(
        book_with(&app, &key, two_desks, &at, Some(first)).await,
        "WORKER_BUSY",
    )
    .await;
    booked_id(&app, &key, two_desks, &at, Some(second)).await;
    // Both desks are taken: nobody else, named or not.
    expect_busy(
        book_with(&app, &key, two_desks, &at, None).await,
        "DEPARTMENT_FULL",
    )
    .await;
    // Back to back is no overlap.
    booked_id(&app, &key, two_desks, &slot(2, "10:30"), Some(first)).await;

    let one_desk = app.create_department(&key, 1).await;
    let third = app.create_worker(&key, one_desk, "Dr. Barry").await;
    let fourth = app.create_worker(&key, one_desk, "Dr. Bah").await;
    booked_id(&app, &key, one_desk, &at, Some(third)).await;
    let before = app.footprint().await;
    expect_busy(
        book_with(&app, &key, one_desk, &at, Some(fourth)).await,
        "DEPARTMENT_FULL",
    )
    .await;
    assert_eq!(app.footprint().await, before);

    let overlapping: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM appointments a JOIN appointments b
             ON a.worker_id = b.worker_id AND a.id < b.id
            AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at
          WHERE a.status <> 'CANCELLED' AND b.status <> 'CANCELLED'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        overlapping, 0,
        "no worker holds two overlapping appointments"
    );
}

#[tokio::test]
async fn a_move_into_the_workers_busy_time_is_refused_and_a_cancellation_frees_the_worker() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 5).await;
    let worker = app.create_worker(&key, department, "Dr. Diallo").await;
    let colleague = app.create_worker(&key, department, "Dr. Sow").await;
    let ten = slot(2, "10:00");
    let eleven = slot(2, "11:00");
    let held = booked_id(&app, &key, department, &ten, Some(worker)).await;
    let moving = booked_id(&app, &key, department, &eleven, Some(worker)).await;
    let path = format!("/appointments/{moving}");
    let before = app.footprint().await;

    expect_busy(
        app.patch(&path, &key, &json!({"dateTime": ten})).await,
        "WORKER_BUSY",
    )
    .await;
    let other = booked_id(&app, &key, department, &eleven, Some(colleague)).await;
    // Handing it to a colleague busy at that time is refused just the same.
    expect_busy(
        app.patch(&path, &key, &json!({"workerId": colleague}))
            .await,
        "WORKER_BUSY",
    )
    .await;
    cancel(&app, &key, other).await;
    let kept: Appointment = app.get(&path, &key).reply().await.json(StatusCode::OK);
    assert_eq!(
        (kept.date_time.as_str(), kept.worker_id),
        (&*eleven, Some(worker))
    );
    let after = app.footprint().await;
    assert_eq!(
        (after.live_appointments, after.balances),
        (before.live_appointments, before.balances),
        "the refused moves changed nothing"
    );

    // Moving with another worker takes that worker's time; the event says who changed.
    let moved: Appointment = app
        .patch(
            &path,
            &key,
            &json!({"dateTime": ten, "workerId": colleague}),
        )
        .reply()
        .await
        .json(StatusCode::OK);
    assert_eq!(
        (moved.date_time.as_str(), moved.worker_id),
        (&*ten, Some(colleague))
    );
    let changes: sqlx::types::Json<AppointmentChanges> = sqlx::query_scalar(
        "SELECT payload->'data'->'changes' FROM events
          WHERE appointment_id = $1 AND type = 'appointment.updated'",
    )
    .bind(moving)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        changes.0.worker_id,
        Some(Change {
            from: Some(worker),
            to: Some(colleague)
        })
    );

    // Once its 10:00 appointment is cancelled, the worker takes 10:00 again.
    cancel(&app, &key, held).await;
    let back = booked_id(&app, &key, department, &slot(2, "12:00"), Some(worker)).await;
    let moved: Appointment = app
        .patch(
            &format!("/appointments/{back}"),
            &key,
            &json!({"dateTime": ten}),
        )
        .reply()
        .await
        .json(StatusCode::OK);
    assert_eq!(
        (moved.date_time.as_str(), moved.worker_id),
        (&*ten, Some(worker)),
        "a move keeps the worker"
    );

    // Deactivated, the worker keeps its appointment, which can be edited but not moved.
    expect_status(
        app.delete(&worker_path(department, worker), &key).await,
        StatusCode::OK,
    )
    .await;
    let back_path = format!("/appointments/{back}");
    let edited: Appointment = app
        .patch(&back_path, &key, &json!({"notes": "Bring the form"}))
        .reply()
        .await
        .json(StatusCode::OK);
    assert_eq!(edited.worker_id, Some(worker));
    app.patch(&back_path, &key, &json!({"dateTime": slot(2, "13:00")}))
        .reply()
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "WORKER_INACTIVE");
}

#[tokio::test]
async fn a_worker_booked_on_an_older_grid_blocks_only_the_slots_it_overlaps() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 10).await;
    let worker = app.create_worker(&key, department, "Dr. Diallo").await;
    // 10:00–10:30 on the 30-minute grid, then hourly slots: 10:00–11:00 overlaps it, 09:00 and
    // 11:00 do not.
    booked_id(&app, &key, department, &slot(2, "10:00"), Some(worker)).await;
    let hourly = DepartmentUpdate {
        slot_duration: Some(60),
        ..Default::default()
    };
    let changed: Department = app
        .patch(&format!("/departments/{department}"), &key, &hourly)
        .reply()
        .await
        .json(StatusCode::OK);
    assert_eq!(changed.slot_duration, 60);
    let listed = worker_availability(&app, &key, department, worker).await;
    for (time, expected) in [("09:00", true), ("10:00", false), ("11:00", true)] {
        let entry = listed
            .iter()
            .find(|s| local_time(s) == time)
            .expect("an hourly slot");
        assert_eq!(
            (entry.available, entry.remaining),
            (expected, i64::from(expected)),
            "{time}: {entry:?}"
        );
    }
    expect_busy(
        book_with(&app, &key, department, &slot(2, "10:00"), Some(worker)).await,
        "WORKER_BUSY",
    )
    .await;
    booked_id(&app, &key, department, &slot(2, "09:00"), Some(worker)).await;
    booked_id(&app, &key, department, &slot(2, "11:00"), Some(worker)).await;
}

/// Every slot of the day two days ahead for `worker` (unavailable ones too).
async fn worker_availability(
    app: &TestApp,
    key: &str,
    department: i64,
    worker: i64,
) -> Vec<AvailabilitySlot> {
    slots_of(app, key, department, Some(worker), 2, true).await
}

/// The listed slots of the day `days` ahead, for `worker` when given.
async fn slots_of(
    app: &TestApp,
    key: &str,
    department: i64,
    worker: Option<i64>,
    days: i64,
    include_unavailable: bool,
) -> Vec<AvailabilitySlot> {
    let date = day_ahead(days);
    let mut path = format!(
        "/departments/{department}/availability?startDate={date}&endDate={date}&includeUnavailable={include_unavailable}"
    );
    if let Some(worker) = worker {
        path.push_str(&format!("&workerId={worker}"));
    }
    let body: Availability = app.get(&path, key).reply().await.json(StatusCode::OK);
    assert_eq!(body.worker_id, worker);
    body.availability
        .into_iter()
        .flat_map(|day| day.slots)
        .collect()
}

#[tokio::test]
async fn without_a_worker_a_department_that_shows_its_staff_lists_slots_some_active_worker_can_take(
) {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app
        .create_department_with(
            &key,
            json!({"capacity": 3, "showAdminsInBooking": true,
                   "openingHours": {"monday": [{"start": "08:00", "end": "09:30"}], "tuesday": [{"start": "08:00", "end": "09:30"}],
                                    "wednesday": [{"start": "08:00", "end": "09:30"}], "thursday": [{"start": "08:00", "end": "09:30"}],
                                    "friday": [{"start": "08:00", "end": "09:30"}], "saturday": [{"start": "08:00", "end": "09:30"}],
                                    "sunday": [{"start": "08:00", "end": "09:30"}]}}),
        )
        .await;
    assert!(
        slots_of(&app, &key, department, None, 2, false)
            .await
            .is_empty(),
        "no worker yet: nothing can be booked, so nothing is listed"
    );
    let first = app.create_worker(&key, department, "Dr. Diallo").await;
    let second = app.create_worker(&key, department, "Dr. Sow").await;
    let gone = app.create_worker(&key, department, "Dr. Barry").await;
    let _: Worker = app
        .delete(&worker_path(department, gone), &key)
        .reply()
        .await
        .json(StatusCode::OK);
    booked_id(&app, &key, department, &slot(2, "08:00"), Some(first)).await;
    booked_id(&app, &key, department, &slot(2, "08:00"), Some(second)).await;
    booked_id(&app, &key, department, &slot(2, "08:30"), Some(first)).await;

    let all = slots_of(&app, &key, department, None, 2, true).await;
    let summary: Vec<(String, bool, i64)> = all
        .iter()
        .map(|s| (local_time(s), s.available, s.remaining))
        .collect();
    // 08:00: a desk is left but both active workers are busy; the deactivated one does not count.
    assert_eq!(
        summary,
        vec![
            ("08:00".into(), false, 0),
            ("08:30".into(), true, 1),
            ("09:00".into(), true, 2)
        ]
    );
    let listed = slots_of(&app, &key, department, None, 2, false).await;
    assert_eq!(
        listed.first().map(local_time).as_deref(),
        Some("08:30"),
        "the first listed slot is bookable"
    );
    expect_busy(
        book_with(&app, &key, department, &slot(2, "08:30"), Some(first)).await,
        "WORKER_BUSY",
    )
    .await;
    booked_id(&app, &key, department, &slot(2, "08:30"), Some(second)).await;
    book_with(&app, &key, department, &slot(2, "08:00"), Some(gone))
        .reply()
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "WORKER_INACTIVE");
    assert!(
        slots_of(&app, &key, department, Some(gone), 2, true)
            .await
            .is_empty(),
        "a deactivated worker lists nothing"
    );
    let zero = app
        .get(
            &format!(
                "/departments/{department}/availability?startDate={0}&endDate={0}&workerId=0",
                day_ahead(2)
            ),
            &key,
        )
        .await;
    read(zero)
        .await
        .error(StatusCode::BAD_REQUEST, "INVALID_REQUEST");
}

#[tokio::test]
async fn appointments_and_their_events_carry_the_worker() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 3).await;
    let worker = app.create_worker(&key, department, "Dr. Diallo").await;
    let with = booked_id(&app, &key, department, &slot(2, "10:00"), Some(worker)).await;
    let without = booked_id(&app, &key, department, &slot(2, "10:00"), None).await;

    let read: Appointment = app
        .get(&format!("/appointments/{with}"), &key)
        .reply()
        .await
        .json(StatusCode::OK);
    assert_eq!(read.worker_id, Some(worker));
    let read: Appointment = app
        .get(&format!("/appointments/{without}"), &key)
        .reply()
        .await
        .json(StatusCode::OK);
    assert_eq!(read.worker_id, None, "null when nobody was named");
    let page: AppointmentPage = app
        .get(&format!("/appointments?workerId={worker}"), &key)
        .reply()
        .await
        .json(StatusCode::OK);
    let ids: Vec<i64> = page.content.iter().map(|a| a.id).collect();
    assert_eq!(ids, vec![with], "the worker filter");

    let events: EventPage = app
        .get("/events?type=appointment.created", &key)
        .reply()
        .await
        .json(StatusCode::OK);
    // An event is its stored payload, untyped on the wire (`Event` wraps the JSON as sent): it
    // is read into the envelope and appointment event the server wrote it from.
    let objects: Vec<Appointment> = events
        .content
        .into_iter()
        .map(|event| {
            let event: Envelope<AppointmentEvent> = serde_json::from_value(event.0)
                .unwrap_or_else(|error| panic!("not an appointment event: {error}"));
            event.data.object.appointment
        })
        .collect();
    let worker_of = |id: i64| {
        objects
            .iter()
            .find(|appointment| appointment.id == id)
            .map(|appointment| appointment.worker_id)
    };
    assert_eq!(worker_of(with), Some(Some(worker)));
    assert_eq!(worker_of(without), Some(None));
}

/// A live appointment of the model: its slot index on the grid and its worker.
#[derive(Debug, Clone)]
struct Booked {
    id: i64,
    slot: usize,
    worker: Option<i64>,
}

/// The rules, written apart from the server's: at a slot of a single grid (so overlapping means
/// the same slot), fewer than `capacity` appointments, and none of the named worker.
struct Model {
    capacity: i64,
    booked: Vec<Booked>,
}

impl Model {
    fn remaining(&self, slot: usize, worker: Option<i64>, except: Option<i64>) -> i64 {
        let others = || {
            self.booked
                .iter()
                .filter(move |b| b.slot == slot && Some(b.id) != except)
        };
        let places = self.capacity - i64::try_from(others().count()).unwrap();
        match worker {
            None => places.max(0),
            Some(worker) => places.clamp(0, i64::from(!others().any(|b| b.worker == Some(worker)))),
        }
    }
}

const GRID: [&str; 4] = ["08:00", "08:30", "09:00", "09:30"];

#[tokio::test]
async fn availability_per_worker_is_exactly_what_booking_accepts_over_random_sequences() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let day = json!([{"start": "08:00", "end": "10:00"}]);
    let hours: serde_json::Map<String, Value> = moncreneau::domain::schedule::WEEKDAYS
        .iter()
        .map(|name| ((*name).to_owned(), day.clone()))
        .collect();
    let department = app
        .create_department_with(&key, json!({"capacity": 2, "openingHours": hours}))
        .await;
    let mut workers = Vec::new();
    for name in ["Dr. Diallo", "Dr. Sow", "Dr. Barry"] {
        workers.push(app.create_worker(&key, department, name).await);
    }
    let choices: Vec<Option<i64>> = std::iter::once(None)
        .chain(workers.iter().copied().map(Some))
        .collect();
    let at = |slot: usize| slot_time(GRID[slot]);

    for seed in [11_u64, 29] {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut model = Model {
            capacity: 2,
            booked: Vec::new(),
        };
        for step in 0..24 {
            let context = format!("seed {seed}, step {step}");
            match rng.random_range(0..4) {
                0 | 1 => {
                    let slot = rng.random_range(0..GRID.len());
                    let worker = *choices.choose(&mut rng).unwrap();
                    let expected = model.remaining(slot, worker, None) > 0;
                    let response = book_with(&app, &key, department, &at(slot), worker).await;
                    if expected {
                        let body: Appointment = read(response).await.json(StatusCode::CREATED);
                        model.booked.push(Booked {
                            id: body.id,
                            slot,
                            worker,
                        });
                    } else {
                        assert_eq!(
                            response.status(),
                            StatusCode::CONFLICT,
                            "{context}: book {slot} {worker:?}"
                        );
                    }
                }
                2 if !model.booked.is_empty() => {
                    let index = rng.random_range(0..model.booked.len());
                    let target = model.booked[index].clone();
                    let slot = rng.random_range(0..GRID.len());
                    let worker = *choices.choose(&mut rng).unwrap();
                    // A move names its new worker when one is drawn, else keeps its own.
                    let new_worker = worker.or(target.worker);
                    let unchanged = slot == target.slot && new_worker == target.worker;
                    let expected =
                        unchanged || model.remaining(slot, new_worker, Some(target.id)) > 0;
                    let mut body = json!({"dateTime": at(slot)});
                    if let Some(worker) = worker {
                        body["workerId"] = json!(worker);
                    }
                    let response = app
                        .patch(&format!("/appointments/{}", target.id), &key, &body)
                        .await;
                    if expected {
                        expect_status(response, StatusCode::OK).await;
                        model.booked[index] = Booked {
                            slot,
                            worker: new_worker,
                            ..target
                        };
                    } else {
                        assert_eq!(
                            response.status(),
                            StatusCode::CONFLICT,
                            "{context}: move {target:?} to {slot} {worker:?}"
                        );
                    }
                }
                _ if !model.booked.is_empty() => {
                    let index = rng.random_range(0..model.booked.len());
                    cancel(&app, &key, model.booked.remove(index).id).await;
                }
                _ => {}
            }
            if step % 8 == 7 {
                assert_availability_is_bookability(
                    &app, &key, department, &choices, &model, &context,
                )
                .await;
            }
        }
        for booked in std::mem::take(&mut model.booked) {
            cancel(&app, &key, booked.id).await;
        }
    }
    app.assert_ledger_consistent().await;
}

fn slot_time(time: &str) -> String {
    slot(3, time)
}

/// For every worker (and none): each slot's `available` and `remaining` are the model's, every
/// slot listed available is booked by POST with that worker, and every other one is refused. The
/// bookings made to check are cancelled again.
async fn assert_availability_is_bookability(
    app: &TestApp,
    key: &str,
    department: i64,
    choices: &[Option<i64>],
    model: &Model,
    context: &str,
) {
    for worker in choices {
        let listed = slots_of(app, key, department, *worker, 3, true).await;
        assert_eq!(listed.len(), GRID.len(), "{context}: the whole grid");
        for (index, entry) in listed.iter().enumerate() {
            let remaining = model.remaining(index, *worker, None);
            assert_eq!(
                (local_time(entry).as_str(), entry.remaining, entry.available),
                (GRID[index], remaining, remaining > 0),
                "{context}: worker {worker:?}, model {:?}",
                model.booked
            );
            let response = book_with(app, key, department, &slot_time(GRID[index]), *worker).await;
            if remaining > 0 {
                let probe: Appointment = read(response).await.json(StatusCode::CREATED);
                cancel(app, key, probe.id).await;
            } else {
                let reason = if worker.is_some() && model.remaining(index, None, None) > 0 {
                    "WORKER_BUSY"
                } else {
                    "DEPARTMENT_FULL"
                };
                expect_busy(response, reason).await;
            }
        }
    }
}
