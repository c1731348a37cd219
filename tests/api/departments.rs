//! Departments: create, read, list, update, deactivate, and their validation.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{expect_error, expect_status, spawn_app};

#[tokio::test]
async fn a_created_department_reads_back_in_the_contract_shape() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let body = json!({
        "name": "Passport Service", "description": "Passport issuance", "timezone": "Africa/Conakry",
        "slotDuration": 15, "capacity": 3,
        "openingHours": {"monday": [{"start": "13:00", "end": "16:30"}, {"start": "08:00", "end": "12:00"}], "tuesday": []},
        "closures": [{"startDate": "2026-12-24", "endDate": "2026-12-26", "reason": "Holidays"}],
        "minNoticeMinutes": 60, "maxAdvanceDays": 90,
    });
    let created = expect_status(
        app.post("/departments", &key, &body).await,
        StatusCode::CREATED,
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(
        created["organization"],
        json!({"id": app.org.id, "name": "Ministry of Interior"})
    );
    assert_eq!(
        created["openingHours"]["monday"],
        json!([{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "16:30"}])
    );
    assert_eq!(created["openingHours"]["sunday"], json!([]));
    assert_eq!(created["closures"], body["closures"]);
    for field in [
        "name",
        "description",
        "timezone",
        "slotDuration",
        "capacity",
        "minNoticeMinutes",
        "maxAdvanceDays",
    ] {
        assert_eq!(created[field], body[field], "{field}");
    }
    assert_eq!(
        (created["isActive"].as_bool(), created["livemode"].as_bool()),
        (Some(true), Some(false))
    );

    let fetched = expect_status(
        app.get(&format!("/departments/{id}"), &key).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(fetched, created);
    let listed = expect_status(app.get("/departments", &key).await, StatusCode::OK).await;
    assert_eq!(listed, json!([created]), "a bare array");
}

#[tokio::test]
async fn patch_changes_only_the_given_fields_and_delete_deactivates() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let id = app.create_department(&key, 2).await;
    let before = expect_status(
        app.get(&format!("/departments/{id}"), &key).await,
        StatusCode::OK,
    )
    .await;

    let patched = expect_status(
        app.patch(
            &format!("/departments/{id}"),
            &key,
            &json!({"capacity": 5, "name": "Visas"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (patched["capacity"].as_i64(), patched["name"].as_str()),
        (Some(5), Some("Visas"))
    );
    assert_eq!(patched["openingHours"], before["openingHours"]);
    assert_eq!(patched["timezone"], before["timezone"]);

    let deleted = expect_status(
        app.delete(&format!("/departments/{id}"), &key).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(deleted["isActive"], false);
    let listed = expect_status(app.get("/departments", &key).await, StatusCode::OK).await;
    assert_eq!(listed[0]["isActive"], false, "still listed, inactive");
    let reactivated = expect_status(
        app.patch(
            &format!("/departments/{id}"),
            &key,
            &json!({"isActive": true}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(reactivated["isActive"], true);
    expect_error(
        app.patch("/departments/999999", &key, &json!({"name": "x"}))
            .await,
        StatusCode::NOT_FOUND,
        "DEPARTMENT_NOT_FOUND",
    )
    .await;
    expect_error(
        app.delete("/departments/999999", &key).await,
        StatusCode::NOT_FOUND,
        "DEPARTMENT_NOT_FOUND",
    )
    .await;
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
        let answer = expect_status(
            app.post("/departments", &key, &body).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(answer["errors"][0]["field"], field, "{body}: {answer}");
        assert_eq!(answer["errors"][0]["code"], code, "{body}");
    }
    let id = app.create_department(&key, 1).await;
    let before_patch = expect_status(
        app.get(&format!("/departments/{id}"), &key).await,
        StatusCode::OK,
    )
    .await;
    let answer = expect_status(
        app.patch(
            &format!("/departments/{id}"),
            &key,
            &json!({"capacity": 0, "slotDuration": 2}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        answer["errors"].as_array().unwrap().len(),
        2,
        "both bad fields are named: {answer}"
    );
    assert_eq!(
        expect_status(
            app.get(&format!("/departments/{id}"), &key).await,
            StatusCode::OK
        )
        .await,
        before_patch
    );
    assert_eq!(app.footprint().await.departments, before.departments + 1);
}
