//! Tenancy and modes: another organization's objects, and the other mode's, are 404 everywhere.

use moncreneau::routes::api_keys::json::{ApiKeyCreate, ApiKeyCreated, ApiKeyList};
use moncreneau::routes::appointments::json::{Appointment, AppointmentPage};
use moncreneau::routes::departments::json::Department;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{slot, spawn_app};
use crate::typed::{read, ReadReply};

#[tokio::test]
async fn other_tenants_and_the_other_mode_see_404_on_every_route() {
    let app = spawn_app().await;
    let owner = app.org.test_key.clone();
    let department = app.create_department(&owner, 2).await;
    let booked: Appointment = app
        .book(&owner, department, &slot(2, "10:00"))
        .reply()
        .await
        .json(StatusCode::CREATED);
    let appointment = booked.id;
    let request = ApiKeyCreate {
        name: Some("k".to_owned()),
        scopes: Some(vec!["appointments:read".to_owned()]),
        expires_at: None,
    };
    let created: ApiKeyCreated = app
        .post("/api-keys", &owner, &request)
        .reply()
        .await
        .json(StatusCode::CREATED);
    let key_id = created.api_key.id;
    let stranger = app.create_org("Other Ministry", 5).await;
    let routes: Vec<(Method, String, Option<serde_json::Value>, &str)> = vec![
        (
            Method::GET,
            format!("/departments/{department}"),
            None,
            "DEPARTMENT_NOT_FOUND",
        ),
        (
            Method::PATCH,
            format!("/departments/{department}"),
            Some(json!({"name": "taken"})),
            "DEPARTMENT_NOT_FOUND",
        ),
        (
            Method::DELETE,
            format!("/departments/{department}"),
            None,
            "DEPARTMENT_NOT_FOUND",
        ),
        (
            Method::GET,
            format!(
                "/departments/{department}/availability?startDate={}&endDate={}",
                crate::helpers::day_ahead(1),
                crate::helpers::day_ahead(3)
            ),
            None,
            "DEPARTMENT_NOT_FOUND",
        ),
        (
            Method::POST,
            "/appointments".to_owned(),
            Some(
                json!({"departmentId": department, "dateTime": slot(2, "11:00"), "name": "Intruder"}),
            ),
            "DEPARTMENT_NOT_FOUND",
        ),
        (
            Method::GET,
            format!("/appointments/{appointment}"),
            None,
            "APPOINTMENT_NOT_FOUND",
        ),
        (
            Method::PATCH,
            format!("/appointments/{appointment}"),
            Some(json!({"name": "x"})),
            "APPOINTMENT_NOT_FOUND",
        ),
        (
            Method::DELETE,
            format!("/appointments/{appointment}"),
            None,
            "APPOINTMENT_NOT_FOUND",
        ),
        (
            Method::POST,
            format!("/appointments/{appointment}/validate"),
            None,
            "APPOINTMENT_NOT_FOUND",
        ),
        (
            Method::POST,
            format!("/appointments/{appointment}/no-show"),
            None,
            "APPOINTMENT_NOT_FOUND",
        ),
        (
            Method::DELETE,
            format!("/api-keys/{key_id}"),
            None,
            "NOT_FOUND",
        ),
    ];
    let before = app.footprint().await;
    for key in [&stranger.test_key, &stranger.live_key, &app.org.live_key] {
        for (method, path, body, code) in &routes {
            let response = app.request(method.clone(), path, key, body.as_ref()).await;
            let answer = read(response).await.error(StatusCode::NOT_FOUND, code);
            assert_eq!(answer.error.code, *code, "{method} {path}");
        }
        let listed: AppointmentPage = app
            .get("/appointments", key)
            .reply()
            .await
            .json(StatusCode::OK);
        assert_eq!(
            (listed.total_elements, listed.content.len()),
            (0, 0),
            "{listed:?}"
        );
        let departments: Vec<Department> = app
            .get("/departments", key)
            .reply()
            .await
            .json(StatusCode::OK);
        assert!(departments.is_empty(), "{departments:?}");
        let keys: ApiKeyList = app.get("/api-keys", key).reply().await.json(StatusCode::OK);
        assert!(keys.data.iter().all(|k| k.id != key_id));
    }
    assert_eq!(
        app.footprint().await,
        before,
        "nothing was changed from outside"
    );
    let status: String = sqlx::query_scalar("SELECT status FROM appointments WHERE id = $1")
        .bind(appointment)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(status, "CONFIRMED");
}
