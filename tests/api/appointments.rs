//! Booking, reading, listing, cancelling, validating: the flows of the client testing guide and
//! every error of these routes, with what each leaves in the database.

use moncreneau::domain::status::Status;
use moncreneau::routes::appointments::json::{
    Appointment, AppointmentEvent, AppointmentPage, DepartmentRef,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{day_ahead, expect_error, expect_json, expect_status, slot, spawn_app};

#[tokio::test]
async fn creating_an_appointment_answers_201_confirmed_with_the_contract_shape() {
    let app = spawn_app().await;
    let department = app.create_department(&app.org.test_key, 3).await;
    let body = json!({
        "departmentId": department, "dateTime": slot(3, "10:00"), "name": "  Jean Dupont ",
        "externalUserId": "u-42", "phone": "+224621234567", "email": "jean@example.gn",
        "notes": "first visit", "metadata": {"file": "A-1"},
    });

    let created: Appointment = expect_json(
        app.post("/appointments", &app.org.test_key, &body).await,
        StatusCode::CREATED,
    )
    .await;

    assert!(created.id > 0);
    assert_eq!(created.status, Status::Confirmed);
    assert_eq!(created.department_id, department);
    assert_eq!(
        created.department,
        DepartmentRef {
            id: department,
            name: "Passport Service".to_owned()
        }
    );
    assert_eq!(created.worker_id, None);
    assert_eq!(created.date_time, slot(3, "10:00"));
    assert_eq!(created.end_date_time, slot(3, "10:30"));
    assert_eq!(created.starts_at, format!("{}T10:00:00Z", day_ahead(3)));
    assert_eq!(created.ends_at, format!("{}T10:30:00Z", day_ahead(3)));
    assert_eq!(created.timezone, "Africa/Conakry");
    assert_eq!(created.name, "Jean Dupont", "the name is trimmed");
    assert_eq!(created.external_user_id.as_deref(), Some("u-42"));
    assert_eq!(created.phone.as_deref(), Some("+224621234567"));
    assert_eq!(created.email.as_deref(), Some("jean@example.gn"));
    assert_eq!(created.notes.as_deref(), Some("first visit"));
    assert_eq!(
        Value::Object(created.metadata.clone()),
        json!({"file": "A-1"})
    );
    assert_eq!(created.credits_consumed, 1);
    assert!(!created.livemode);
    assert!(created.qr_code.starts_with(&format!(
        "http://moncreneau.test/api/v1/appointments/{}/qr.svg?token=",
        created.id
    )));
    assert_eq!(
        (
            &created.cancelled_at,
            &created.cancelled_by,
            &created.cancel_reason
        ),
        (&None, &None, &None)
    );
    assert_eq!(app.balance(&app.org.test_key).await, 99);
    let event: (String, Value) =
        sqlx::query_as("SELECT type, payload FROM events WHERE appointment_id = $1")
            .bind(created.id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(event.0, "appointment.created");
    let data: AppointmentEvent = serde_json::from_value(event.1["data"].clone()).unwrap();
    assert_eq!(data.object.credits_used, Some(1));
    assert_eq!(data.object.credits_refunded, None);
    assert_eq!(
        data.object.appointment, created,
        "the event carries the answer"
    );
    assert_eq!(data.changes, None);
}

#[tokio::test]
async fn missing_fields_are_400_listing_every_one() {
    let app = spawn_app().await;
    app.create_department(&app.org.test_key, 3).await;
    let before = app.footprint().await;

    let response = app
        .post(
            "/appointments",
            &app.org.test_key,
            &json!({"departmentId": 5}),
        )
        .await;

    let body = expect_error(response, StatusCode::BAD_REQUEST, "MISSING_REQUIRED_FIELD").await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["dateTime", "name"]);
    assert_eq!(app.footprint().await, before);
}

#[tokio::test]
async fn each_bad_input_is_a_400_naming_its_field_and_writes_nothing() {
    let app = spawn_app().await;
    let department = app.create_department(&app.org.test_key, 3).await;
    let good = json!({"departmentId": department, "dateTime": slot(3, "10:00"), "name": "Jean"});
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let cases: Vec<(Value, &str, &str, &str)> = vec![
        (
            with("name", json!("   ")),
            "MISSING_REQUIRED_FIELD",
            "name",
            "blank name",
        ),
        (
            with("name", json!("x".repeat(201))),
            "INVALID_FIELD_VALUE",
            "name",
            "name over 200",
        ),
        (
            with("name", json!(format!("{}Jean Dupont", " ".repeat(195)))),
            "INVALID_FIELD_VALUE",
            "name",
            "padded beyond 200: the limit counts the value as sent",
        ),
        (
            with("phone", json!("0621234567")),
            "INVALID_PHONE_NUMBER",
            "phone",
            "phone without +",
        ),
        (
            with("phone", json!("+224 62 12")),
            "INVALID_PHONE_NUMBER",
            "phone",
            "phone with spaces",
        ),
        (
            with("email", json!("jean@")),
            "INVALID_EMAIL",
            "email",
            "email without domain",
        ),
        (
            with("dateTime", json!("15/02/2027 10:00")),
            "INVALID_DATE_TIME",
            "dateTime",
            "other date format",
        ),
        (
            with("dateTime", json!("2027-02-30T10:00:00")),
            "INVALID_DATE_TIME",
            "dateTime",
            "no such day",
        ),
        (
            with("departmentId", json!("five")),
            "INVALID_FIELD_VALUE",
            "departmentId",
            "id as a word",
        ),
        (
            with("departmentId", json!(-3)),
            "INVALID_FIELD_VALUE",
            "departmentId",
            "negative id",
        ),
        (
            with("metadata", json!({"n": 1})),
            "INVALID_FIELD_VALUE",
            "metadata.n",
            "non-string metadata",
        ),
        (
            with("notes", json!("x".repeat(2001))),
            "INVALID_FIELD_VALUE",
            "notes",
            "notes over 2000",
        ),
        (
            with("externalUserId", json!("")),
            "INVALID_FIELD_VALUE",
            "externalUserId",
            "empty external id",
        ),
        (
            with("nmae", json!("typo")),
            "INVALID_REQUEST",
            "nmae",
            "unknown field",
        ),
    ];
    let before = app.footprint().await;
    for (body, code, field, why) in cases {
        let response = app.post("/appointments", &app.org.test_key, &body).await;
        let answer = expect_status(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(answer["error"]["code"], code, "{why}: {answer}");
        assert_eq!(answer["errors"][0]["field"], field, "{why}: {answer}");
    }
    assert_eq!(app.footprint().await, before);
}

#[tokio::test]
async fn malformed_bodies_are_refused_in_the_error_format() {
    let app = spawn_app().await;
    let url = app.url("/appointments");
    let key = app.org.test_key.clone();
    let before = app.footprint().await;

    let broken = app
        .client
        .post(&url)
        .header("X-API-Key", &key)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    expect_error(broken, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;

    let text = app
        .client
        .post(&url)
        .header("X-API-Key", &key)
        .header("content-type", "text/plain")
        .body("name=Jean")
        .send()
        .await
        .unwrap();
    expect_error(
        text,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;

    let untyped = app
        .client
        .post(&url)
        .header("X-API-Key", &key)
        .body("{}")
        .send()
        .await
        .unwrap();
    expect_error(
        untyped,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;

    let huge = json!({"departmentId": 1, "dateTime": slot(2, "10:00"), "name": "J", "notes": "x".repeat(70 * 1024)});
    expect_error(
        app.post("/appointments", &key, &huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
    )
    .await;

    let array = app
        .client
        .post(&url)
        .header("X-API-Key", &key)
        .json(&json!([1, 2]))
        .send()
        .await
        .unwrap();
    expect_status(array, StatusCode::BAD_REQUEST).await;
    assert_eq!(app.footprint().await, before);
}

#[tokio::test]
async fn an_organization_without_credits_gets_402_and_keeps_nothing() {
    let app = spawn_app().await;
    let broke = app.create_org("Broke Clinic", 0).await;
    let department = app.create_department(&broke.live_key, 3).await;
    let before = app.footprint().await;

    let response = app
        .book(&broke.live_key, department, &slot(2, "10:00"))
        .await;

    let body = expect_error(
        response,
        StatusCode::PAYMENT_REQUIRED,
        "INSUFFICIENT_CREDITS",
    )
    .await;
    assert_eq!(body["error"]["details"]["availableCredits"], 0);
    assert_eq!(
        app.footprint().await,
        before,
        "no appointment, ledger line or event"
    );
    assert_eq!(app.balance(&broke.live_key).await, 0);
}

#[tokio::test]
async fn unknown_department_is_404_and_an_inactive_one_422() {
    let app = spawn_app().await;
    let department = app.create_department(&app.org.test_key, 3).await;
    expect_error(
        app.book(&app.org.test_key, 999_999, &slot(2, "10:00"))
            .await,
        StatusCode::NOT_FOUND,
        "DEPARTMENT_NOT_FOUND",
    )
    .await;

    expect_status(
        app.delete(&format!("/departments/{department}"), &app.org.test_key)
            .await,
        StatusCode::OK,
    )
    .await;
    let before = app.footprint().await;
    expect_error(
        app.book(&app.org.test_key, department, &slot(2, "10:00"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "DEPARTMENT_INACTIVE",
    )
    .await;
    assert_eq!(app.footprint().await, before);
}

#[tokio::test]
async fn slots_that_are_not_offered_are_422_with_their_reason() {
    let app = spawn_app().await;
    let department = app
        .create_department_with(
            &app.org.test_key,
            json!({"minNoticeMinutes": 1440 * 2, "maxAdvanceDays": 10,
                   "closures": [{"startDate": day_ahead(5).to_string(), "endDate": day_ahead(5).to_string(), "reason": "Holiday"}]}),
        )
        .await;
    let cases = [
        (slot(3, "10:10"), "MISALIGNED", "between two slots"),
        (slot(3, "07:30"), "CLOSED", "before opening"),
        (slot(3, "17:45"), "MISALIGNED", "off the grid near closing"),
        (slot(3, "18:00"), "CLOSED", "at closing time"),
        (slot(5, "10:00"), "CLOSED", "closure day"),
        (slot(-1, "10:00"), "PAST", "yesterday"),
        (slot(1, "10:00"), "TOO_SOON", "inside the minimum notice"),
        (slot(12, "10:00"), "TOO_FAR_AHEAD", "beyond the horizon"),
    ];
    let before = app.footprint().await;
    for (date_time, reason, why) in cases {
        let body = expect_status(
            app.book(&app.org.test_key, department, &date_time).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(body["error"]["code"], "SLOT_NOT_OFFERED", "{why}");
        assert_eq!(body["error"]["details"]["reason"], reason, "{why}: {body}");
    }
    assert_eq!(app.footprint().await, before);
}

#[tokio::test]
async fn a_full_slot_is_409_and_a_second_booking_of_one_user_409_duplicate() {
    let app = spawn_app().await;
    let department = app.create_department(&app.org.test_key, 2).await;
    let book = |user: &str| json!({"departmentId": department, "dateTime": slot(2, "09:00"), "name": "N", "externalUserId": user});
    expect_status(
        app.post("/appointments", &app.org.test_key, &book("u1"))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let before = app.footprint().await;
    expect_error(
        app.post("/appointments", &app.org.test_key, &book("u1"))
            .await,
        StatusCode::CONFLICT,
        "DUPLICATE_APPOINTMENT",
    )
    .await;
    assert_eq!(app.footprint().await, before);
    expect_status(
        app.post("/appointments", &app.org.test_key, &book("u2"))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let before = app.footprint().await;
    expect_error(
        app.post("/appointments", &app.org.test_key, &book("u3"))
            .await,
        StatusCode::CONFLICT,
        "SLOT_NOT_AVAILABLE",
    )
    .await;
    assert_eq!(app.footprint().await, before);
    assert_eq!(app.balance(&app.org.test_key).await, 98);
}

#[tokio::test]
async fn the_guide_end_to_end_flow_books_the_first_listed_slot_then_cancels_it() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 1).await;
    let control = app
        .book_appointment(&key, department, &slot(4, "15:00"))
        .await;

    let path = format!(
        "/departments/{department}/availability?startDate={}&endDate={}",
        day_ahead(1),
        day_ahead(28)
    );
    let listing = expect_status(app.get(&path, &key).await, StatusCode::OK).await;
    let first = &listing["availability"][0]["slots"][0];
    let created = app
        .book_appointment(&key, department, first["dateTime"].as_str().unwrap())
        .await;
    let id = created.id;

    let fetched: Appointment = expect_json(
        app.get(&format!("/appointments/{id}"), &key).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(fetched.status, Status::Confirmed);
    assert_eq!(fetched, created);

    let cancelled: Appointment = expect_json(
        app.delete(&format!("/appointments/{id}"), &key).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cancelled.status, Status::Cancelled);
    assert_eq!(
        cancelled
            .cancelled_by
            .as_deref()
            .map(|s| s.starts_with("key_")),
        Some(true)
    );
    assert!(cancelled.cancelled_at.is_some());

    let final_state: Appointment = expect_json(
        app.get(&format!("/appointments/{id}"), &key).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(final_state, cancelled);
    assert_eq!(
        app.balance(&key).await,
        99,
        "the cancelled one was refunded, the control one was not"
    );
    let control_now: Appointment = expect_json(
        app.get(&format!("/appointments/{}", control.id), &key)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(control_now, control, "the control appointment is untouched");
    let listing = expect_status(app.get(&path, &key).await, StatusCode::OK).await;
    assert_eq!(
        listing["availability"][0]["slots"][0], *first,
        "the freed slot is offered again"
    );
}

#[tokio::test]
async fn cancelling_twice_refunds_once_and_records_the_reason() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 1).await;
    let id = app
        .book_appointment(&key, department, &slot(2, "10:00"))
        .await
        .id;
    let path = format!("/appointments/{id}");

    let first = app
        .request(
            reqwest::Method::DELETE,
            &path,
            &key,
            Some(&json!({"reason": "Patient ill"})),
        )
        .await;
    let first: Appointment = expect_json(first, StatusCode::OK).await;
    assert_eq!(first.cancel_reason.as_deref(), Some("Patient ill"));
    let second: Appointment = expect_json(app.delete(&path, &key).await, StatusCode::OK).await;
    assert_eq!(
        second, first,
        "a repeated cancel answers the same appointment"
    );

    assert_eq!(app.balance(&key).await, 100);
    let refunds: i64 =
        sqlx::query_scalar("SELECT count(*) FROM credit_transactions WHERE type = 'REFUND'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(refunds, 1);
    let cancel_events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE type = 'appointment.cancelled'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(cancel_events, 1);
    let payload: Value =
        sqlx::query_scalar("SELECT payload FROM events WHERE type = 'appointment.cancelled'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    let data: AppointmentEvent = serde_json::from_value(payload["data"].clone()).unwrap();
    assert_eq!(data.object.credits_refunded, Some(1));
    assert_eq!(data.object.credits_used, None);
    assert_eq!(
        data.object.appointment, first,
        "the event carries the answer"
    );
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn a_cancellation_after_the_start_refunds_nothing() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 1).await;
    let id = app
        .book_appointment(&key, department, &slot(2, "10:00"))
        .await
        .id;
    // The appointment's time has come: move it into the past directly in the database.
    sqlx::query("UPDATE appointments SET starts_at = now() - interval '1 hour', ends_at = now() - interval '30 minutes' WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();

    let cancelled: Appointment = expect_json(
        app.delete(&format!("/appointments/{id}"), &key).await,
        StatusCode::OK,
    )
    .await;

    assert_eq!(cancelled.status, Status::Cancelled);
    assert_eq!(app.balance(&key).await, 99);
    let payload: Value =
        sqlx::query_scalar("SELECT payload FROM events WHERE type = 'appointment.cancelled'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    let data: AppointmentEvent = serde_json::from_value(payload["data"].clone()).unwrap();
    assert_eq!(data.object.credits_refunded, Some(0));
}

#[tokio::test]
async fn validate_and_no_show_conclude_a_confirmed_appointment_only() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 3).await;
    let book = |time: &'static str| {
        let app = &app;
        let key = key.clone();
        async move {
            app.book_appointment(&key, department, &slot(2, time))
                .await
                .id
        }
    };
    let (a, b, c) = (
        book("10:00").await,
        book("10:30").await,
        book("11:00").await,
    );

    let done: Appointment = expect_json(
        app.post(&format!("/appointments/{a}/validate"), &key, &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(done.status, Status::Completed);
    let absent: Appointment = expect_json(
        app.post(&format!("/appointments/{b}/no-show"), &key, &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(absent.status, Status::NoShow);
    expect_status(
        app.delete(&format!("/appointments/{c}"), &key).await,
        StatusCode::OK,
    )
    .await;

    let before = app.footprint().await;
    let moves = [
        (format!("/appointments/{a}/no-show"), "COMPLETED"),
        (format!("/appointments/{a}/validate"), "COMPLETED"),
        (format!("/appointments/{b}/validate"), "NO_SHOW"),
        (format!("/appointments/{c}/validate"), "CANCELLED"),
        (format!("/appointments/{c}/no-show"), "CANCELLED"),
    ];
    for (path, current) in moves {
        let body = expect_error(
            app.post(&path, &key, &json!({})).await,
            StatusCode::CONFLICT,
            "INVALID_STATUS_TRANSITION",
        )
        .await;
        assert_eq!(body["error"]["details"]["currentStatus"], current, "{path}");
    }
    for id in [a, b] {
        let body = expect_error(
            app.delete(&format!("/appointments/{id}"), &key).await,
            StatusCode::CONFLICT,
            "INVALID_STATUS_TRANSITION",
        )
        .await;
        assert!(body["error"]["details"]["currentStatus"].is_string());
    }
    assert_eq!(app.footprint().await, before);
    assert_eq!(
        app.balance(&key).await,
        98,
        "validate and no-show refund nothing; the cancel did"
    );
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT type FROM events WHERE appointment_id IS NOT NULL ORDER BY created_at, type",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(
        types.contains(&"appointment.validated".to_owned())
            && types.contains(&"appointment.no_show".to_owned()),
        "{types:?}"
    );
}

#[tokio::test]
async fn unknown_and_malformed_appointment_ids() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    expect_error(
        app.get("/appointments/424242", &key).await,
        StatusCode::NOT_FOUND,
        "APPOINTMENT_NOT_FOUND",
    )
    .await;
    expect_error(
        app.delete("/appointments/424242", &key).await,
        StatusCode::NOT_FOUND,
        "APPOINTMENT_NOT_FOUND",
    )
    .await;
    expect_error(
        app.post("/appointments/424242/validate", &key, &json!({}))
            .await,
        StatusCode::NOT_FOUND,
        "APPOINTMENT_NOT_FOUND",
    )
    .await;
    expect_error(
        app.get("/appointments/abc", &key).await,
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
    )
    .await;
}

#[tokio::test]
async fn listing_pages_filters_and_sorts() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let first = app.create_department(&key, 3).await;
    let second = app.create_department(&key, 3).await;
    let mut ids = Vec::new();
    for (department, days, time, user) in [
        (first, 3, "10:00", "u1"),
        (first, 2, "11:00", "u2"),
        (second, 4, "09:00", "u1"),
        (second, 2, "08:00", "u3"),
        (first, 5, "12:00", "u1"),
    ] {
        let body = json!({"departmentId": department, "dateTime": slot(days, time), "name": "N", "externalUserId": user});
        let created: Appointment = expect_json(
            app.post("/appointments", &key, &body).await,
            StatusCode::CREATED,
        )
        .await;
        ids.push(created.id);
    }
    expect_status(
        app.delete(&format!("/appointments/{}", ids[1]), &key).await,
        StatusCode::OK,
    )
    .await;
    let list = |query: String| {
        let app = &app;
        let key = key.clone();
        async move {
            expect_json::<AppointmentPage>(
                app.get(&format!("/appointments?{query}"), &key).await,
                StatusCode::OK,
            )
            .await
        }
    };
    let ids_of =
        |page: &AppointmentPage| -> Vec<i64> { page.content.iter().map(|a| a.id).collect() };

    let page = list("page=0&size=2".into()).await;
    assert_eq!(
        (
            page.page,
            page.size,
            page.total_elements,
            page.total_pages,
            page.last
        ),
        (0, 2, 5, 3, false)
    );
    assert_eq!(ids_of(&page), [ids[3], ids[1]], "default order is by start");
    let last = list("page=2&size=2".into()).await;
    assert_eq!((ids_of(&last), last.last), (vec![ids[4]], true));
    assert_eq!(
        ids_of(&list("page=9&size=2".into()).await),
        Vec::<i64>::new()
    );

    assert_eq!(ids_of(&list("status=cancelled".into()).await), [ids[1]]);
    assert_eq!(
        ids_of(&list("status=Confirmed&departmentId=".to_owned() + &first.to_string()).await),
        [ids[0], ids[4]]
    );
    // The official SDK's word for a confirmed appointment; responses keep CONFIRMED.
    let scheduled = list("status=SCHEDULED&departmentId=".to_owned() + &first.to_string()).await;
    assert_eq!(ids_of(&scheduled), [ids[0], ids[4]]);
    assert!(scheduled
        .content
        .iter()
        .all(|appointment| appointment.status == Status::Confirmed));
    assert_eq!(
        ids_of(&list("externalUserId=u1&sort=-dateTime".into()).await),
        [ids[4], ids[2], ids[0]]
    );
    assert_eq!(
        ids_of(
            &list(format!(
                "startDate={}&endDate={}",
                day_ahead(3),
                day_ahead(4)
            ))
            .await
        ),
        [ids[0], ids[2]]
    );
    assert_eq!(
        ids_of(&list("sort=-createdAt".into()).await),
        [ids[4], ids[3], ids[2], ids[1], ids[0]]
    );

    for (query, field) in [
        ("size=101", "size"),
        ("size=0", "size"),
        ("page=-1", "page"),
        ("status=pending", "status"),
        ("sort=name", "sort"),
        ("startDate=tomorrow", "startDate"),
        ("startDate=2027-02-02&endDate=2027-02-01", "endDate"),
    ] {
        let body = expect_error(
            app.get(&format!("/appointments?{query}"), &key).await,
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(body["errors"][0]["field"], field, "{query}");
    }
    expect_error(
        app.get("/appointments?page=x", &key).await,
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
    )
    .await;
}
