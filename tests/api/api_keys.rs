//! Key management: keys are created in the caller's mode, shown once, scoped, revocable.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{expect_error, expect_status, spawn_app};

#[tokio::test]
async fn a_scoped_key_is_shown_once_and_works_within_its_scopes() {
    let app = spawn_app().await;
    let created = expect_status(
        app.post(
            "/api-keys",
            &app.org.live_key,
            &json!({"name": "Front desk", "scopes": ["departments:read", "appointments:read"]}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("mk_live_"), "created in the caller's mode");
    assert_eq!(
        created["scopes"],
        json!(["departments:read", "appointments:read"])
    );

    expect_status(app.get("/departments", key).await, StatusCode::OK).await;
    expect_error(
        app.post(
            "/departments",
            key,
            &json!({"name": "D", "timezone": "UTC"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "INSUFFICIENT_SCOPE",
    )
    .await;

    let listed = expect_status(
        app.get("/api-keys", &app.org.live_key).await,
        StatusCode::OK,
    )
    .await;
    let keys = listed["data"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(
        keys.iter().all(|k| k.get("key").is_none()),
        "clear keys are never listed again"
    );
    assert!(keys.iter().all(|k| k["livemode"] == true));
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
        let answer = expect_status(
            app.post("/api-keys", &app.org.test_key, &body).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(
            (
                answer["errors"][0]["field"].as_str(),
                answer["errors"][0]["code"].as_str()
            ),
            (Some(field), Some(code)),
            "{body}"
        );
    }
    assert_eq!(app.footprint().await, before);
    expect_error(
        app.delete("/api-keys/key_doesnotexist", &app.org.test_key)
            .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
}
