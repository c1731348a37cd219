//! Key management: keys are created in the caller's mode, shown once, scoped, revocable.

use moncreneau::domain::keys::Scope;
use moncreneau::routes::api_keys::json::{ApiKeyCreate, ApiKeyCreated, ApiKeyList, Mode};
use moncreneau::routes::departments::json::{Department, DepartmentCreate};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::spawn_app;
use crate::typed::{ErrorBody, ReadReply};

#[tokio::test]
async fn a_scoped_key_is_shown_once_and_works_within_its_scopes() {
    let app = spawn_app().await;
    let request = ApiKeyCreate {
        name: Some("Front desk".to_owned()),
        scopes: Some(vec![
            "departments:read".to_owned(),
            "appointments:read".to_owned(),
        ]),
        expires_at: None,
    };
    let created: ApiKeyCreated = app
        .post("/api-keys", &app.org.live_key, &request)
        .reply()
        .await
        .json(StatusCode::CREATED);
    let key = created.key.as_str();
    assert!(key.starts_with("mk_live_"), "created in the caller's mode");
    assert_eq!(created.api_key.mode, Mode::Live);
    assert_eq!(
        created.api_key.scopes,
        [Scope::DepartmentsRead, Scope::AppointmentsRead]
    );

    let _: Vec<Department> = app
        .get("/departments", key)
        .reply()
        .await
        .json(StatusCode::OK);
    let department = DepartmentCreate {
        name: Some("D".to_owned()),
        timezone: Some("UTC".to_owned()),
        ..Default::default()
    };
    app.post("/departments", key, &department)
        .reply()
        .await
        .error(StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE");

    let listed = app.get("/api-keys", &app.org.live_key).reply().await;
    let keys: ApiKeyList = listed.json(StatusCode::OK);
    assert_eq!(keys.data.len(), 2);
    assert!(keys.data.iter().all(|k| k.livemode));
    // The typed list ignores members it does not know: the absence of `key` is read raw.
    let raw: Value = listed.parse();
    assert_eq!(
        raw["data"]
            .as_array()
            .map(|keys| keys.iter().filter(|k| k.get("key").is_some()).count()),
        Some(0),
        "clear keys are never listed again"
    );
}

#[tokio::test]
async fn bad_key_requests_are_400() {
    let app = spawn_app().await;
    let before = app.footprint().await;
    let cases = [
        (
            json!({"scopes": ["api:admin"]}),
            "name",
            "MISSING_REQUIRED_FIELD",
        ),
        (json!({"name": "k"}), "scopes", "MISSING_REQUIRED_FIELD"),
        (
            json!({"name": "k", "scopes": []}),
            "scopes",
            "INVALID_FIELD_VALUE",
        ),
        (
            json!({"name": "k", "scopes": ["appointments:delete"]}),
            "scopes[0]",
            "INVALID_FIELD_VALUE",
        ),
        (
            json!({"name": "k", "scopes": ["api:admin"], "expiresAt": "2000-01-01T00:00:00Z"}),
            "expiresAt",
            "INVALID_DATE_TIME",
        ),
        (
            json!({"name": "k", "scopes": ["api:admin"], "expiresAt": "soon"}),
            "expiresAt",
            "INVALID_DATE_TIME",
        ),
    ];
    for (body, field, code) in cases {
        let answer: ErrorBody = app
            .post("/api-keys", &app.org.test_key, &body)
            .reply()
            .await
            .json(StatusCode::BAD_REQUEST);
        assert_eq!(answer.first(), Some((field, code)), "{body}");
    }
    assert_eq!(app.footprint().await, before);
    app.delete("/api-keys/key_doesnotexist", &app.org.test_key)
        .reply()
        .await
        .error(StatusCode::NOT_FOUND, "NOT_FOUND");
}
