//! Departments: create, read, list, update, deactivate, and their validation.

use chrono::NaiveDate;
use moncreneau::domain::schedule::{Closure, RangeText};
use moncreneau::routes::departments::json::{
    Department, DepartmentCreate, DepartmentUpdate, OrganizationRef, WeeklyHours,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::spawn_app;
use crate::typed::{ErrorBody, ReadReply};

fn range(start: &str, end: &str) -> RangeText {
    RangeText {
        start: start.to_owned(),
        end: end.to_owned(),
    }
}

fn date(text: &str) -> NaiveDate {
    text.parse().expect("a YYYY-MM-DD date")
}

#[tokio::test]
async fn a_created_department_reads_back_in_the_contract_shape() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let hours = [
        (
            "monday",
            vec![range("13:00", "16:30"), range("08:00", "12:00")],
        ),
        ("tuesday", vec![]),
    ];
    let closures = vec![Closure {
        start_date: date("2026-12-24"),
        end_date: date("2026-12-26"),
        reason: Some("Holidays".to_owned()),
    }];
    let body = DepartmentCreate {
        name: Some("Passport Service".to_owned()),
        description: Some("Passport issuance".to_owned()),
        timezone: Some("Africa/Conakry".to_owned()),
        slot_duration: Some(15),
        capacity: Some(3),
        opening_hours: Some(WeeklyHours(
            hours
                .into_iter()
                .map(|(day, ranges)| (day.to_owned(), ranges))
                .collect(),
        )),
        closures: Some(closures.clone()),
        min_notice_minutes: Some(60),
        max_advance_days: Some(90),
        ..Default::default()
    };
    let created: Department = app
        .post("/departments", &key, &body)
        .reply()
        .await
        .json(StatusCode::CREATED);
    let id = created.id;
    assert_eq!(
        created.organization,
        OrganizationRef {
            id: app.org.id,
            name: "Ministry of Interior".to_owned()
        }
    );
    let day = |name: &str| created.opening_hours.0.get(name).cloned();
    assert_eq!(
        day("monday"),
        Some(vec![range("08:00", "12:00"), range("13:00", "16:30")]),
        "ranges sorted by start"
    );
    assert_eq!(day("sunday"), Some(vec![]), "every day is listed");
    assert_eq!(created.closures, closures);
    assert_eq!(
        (
            created.name.as_str(),
            created.description.as_deref(),
            created.timezone.as_str()
        ),
        (
            "Passport Service",
            Some("Passport issuance"),
            "Africa/Conakry"
        )
    );
    assert_eq!(
        (
            created.slot_duration,
            created.capacity,
            created.min_notice_minutes,
            created.max_advance_days
        ),
        (15, 3, 60, 90)
    );
    assert_eq!((created.is_active, created.livemode), (true, false));

    let fetched: Department = app
        .get(&format!("/departments/{id}"), &key)
        .reply()
        .await
        .json(StatusCode::OK);
    assert_eq!(fetched, created);
    let listed: Vec<Department> = app
        .get("/departments", &key)
        .reply()
        .await
        .json(StatusCode::OK);
    assert_eq!(listed, [created], "a bare array");
}

#[tokio::test]
async fn patch_changes_only_the_given_fields_and_delete_deactivates() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let id = app.create_department(&key, 2).await;
    let path = format!("/departments/{id}");
    let before: Department = app.get(&path, &key).reply().await.json(StatusCode::OK);

    let changes = DepartmentUpdate {
        capacity: Some(5),
        name: Some("Visas".to_owned()),
        ..Default::default()
    };
    let patched: Department = app
        .patch(&path, &key, &changes)
        .reply()
        .await
        .json(StatusCode::OK);
    assert_eq!((patched.capacity, patched.name.as_str()), (5, "Visas"));
    assert_eq!(patched.opening_hours, before.opening_hours);
    assert_eq!(patched.timezone, before.timezone);

    let deleted: Department = app.delete(&path, &key).reply().await.json(StatusCode::OK);
    assert!(!deleted.is_active);
    let listed: Vec<Department> = app
        .get("/departments", &key)
        .reply()
        .await
        .json(StatusCode::OK);
    assert_eq!(
        listed
            .iter()
            .map(|d| (d.id, d.is_active))
            .collect::<Vec<_>>(),
        [(id, false)],
        "still listed, inactive"
    );
    let reactivate = DepartmentUpdate {
        is_active: Some(true),
        ..Default::default()
    };
    let reactivated: Department = app
        .patch(&path, &key, &reactivate)
        .reply()
        .await
        .json(StatusCode::OK);
    assert!(reactivated.is_active);
    let rename = DepartmentUpdate {
        name: Some("x".to_owned()),
        ..Default::default()
    };
    app.patch("/departments/999999", &key, &rename)
        .reply()
        .await
        .error(StatusCode::NOT_FOUND, "DEPARTMENT_NOT_FOUND");
    app.delete("/departments/999999", &key)
        .reply()
        .await
        .error(StatusCode::NOT_FOUND, "DEPARTMENT_NOT_FOUND");
}

#[tokio::test]
async fn invalid_departments_are_400_naming_the_field_and_write_nothing() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let good = json!({"name": "D", "timezone": "Africa/Conakry"});
    let with = |k: &str, v: Value| {
        let mut body = good.clone();
        body[k] = v;
        body
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"timezone": "UTC"}), "name", "MISSING_REQUIRED_FIELD"),
        (json!({"name": "D"}), "timezone", "MISSING_REQUIRED_FIELD"),
        (
            with("timezone", json!("Mars/Olympus")),
            "timezone",
            "INVALID_FIELD_VALUE",
        ),
        (with("name", json!(" ")), "name", "INVALID_FIELD_VALUE"),
        (
            with("slotDuration", json!(0)),
            "slotDuration",
            "INVALID_FIELD_VALUE",
        ),
        (
            with("slotDuration", json!(1441)),
            "slotDuration",
            "INVALID_FIELD_VALUE",
        ),
        (
            with("capacity", json!(0)),
            "capacity",
            "INVALID_FIELD_VALUE",
        ),
        (
            with("capacity", json!(5_000_000_000_i64)),
            "capacity",
            "INVALID_FIELD_VALUE",
        ),
        (
            with("maxAdvanceDays", json!(0)),
            "maxAdvanceDays",
            "INVALID_FIELD_VALUE",
        ),
        (
            with("minNoticeMinutes", json!(-1)),
            "minNoticeMinutes",
            "INVALID_FIELD_VALUE",
        ),
        (
            with(
                "openingHours",
                json!({"monday": [{"start": "08:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]}),
            ),
            "openingHours",
            "INVALID_FIELD_VALUE",
        ),
        (
            with(
                "openingHours",
                json!({"monday": [{"start": "12:00", "end": "08:00"}]}),
            ),
            "openingHours",
            "INVALID_FIELD_VALUE",
        ),
        (
            with("openingHours", json!({"funday": []})),
            "openingHours",
            "INVALID_FIELD_VALUE",
        ),
        (
            with(
                "openingHours",
                json!({"monday": [{"start": "8h", "end": "12:00"}]}),
            ),
            "openingHours",
            "INVALID_FIELD_VALUE",
        ),
        (
            with(
                "openingHours",
                json!({"monday": [{"start": "08:00", "end": "12:00", "desk": 1}]}),
            ),
            "openingHours.monday[0].desk",
            "INVALID_REQUEST",
        ),
        (
            with(
                "closures",
                json!([{"startDate": "2027-01-05", "endDate": "2027-01-01"}]),
            ),
            "closures[0]",
            "INVALID_FIELD_VALUE",
        ),
        (
            with(
                "closures",
                json!([{"startDate": "someday", "endDate": "2027-01-01"}]),
            ),
            "closures[0].startDate",
            "INVALID_FIELD_VALUE",
        ),
        (with("colour", json!("blue")), "colour", "INVALID_REQUEST"),
    ];
    let before = app.footprint().await;
    for (body, field, code) in cases {
        let answer: ErrorBody = app
            .post("/departments", &key, &body)
            .reply()
            .await
            .json(StatusCode::BAD_REQUEST);
        assert_eq!(answer.first(), Some((field, code)), "{body}: {answer:?}");
    }
    let id = app.create_department(&key, 1).await;
    let path = format!("/departments/{id}");
    let before_patch: Department = app.get(&path, &key).reply().await.json(StatusCode::OK);
    let changes = DepartmentUpdate {
        capacity: Some(0),
        slot_duration: Some(2),
        ..Default::default()
    };
    let answer: ErrorBody = app
        .patch(&path, &key, &changes)
        .reply()
        .await
        .json(StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.fields(),
        ["slotDuration", "capacity"],
        "both bad fields are named"
    );
    let after: Department = app.get(&path, &key).reply().await.json(StatusCode::OK);
    assert_eq!(after, before_patch);
    assert_eq!(app.footprint().await.departments, before.departments + 1);
}
