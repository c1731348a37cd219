//! Operations: health, readiness, request ids, fallbacks, and the spec file.

use moncreneau::domain::keys::Scope;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{expect_error, expect_status, spawn_app};

#[tokio::test]
async fn health_and_ready_answer_without_a_key() {
    let app = spawn_app().await;
    for path in ["/health", "/ready", "/api/v1/health", "/api/v1/ready"] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        expect_status(response, StatusCode::OK).await;
    }
}

#[tokio::test]
async fn ready_is_503_when_migrations_are_missing() {
    let app = spawn_app().await;
    sqlx::query("DELETE FROM _sqlx_migrations")
        .execute(&app.db)
        .await
        .unwrap();
    let response = app
        .client
        .get(format!("{}/ready", app.address))
        .send()
        .await
        .unwrap();
    expect_status(response, StatusCode::SERVICE_UNAVAILABLE).await;
}

#[tokio::test]
async fn a_request_id_is_echoed_or_generated() {
    let app = spawn_app().await;
    let given = app
        .client
        .get(app.url("/credits"))
        .header("X-API-Key", &app.org.test_key)
        .header("X-Request-Id", "trace-123")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "trace-123");
    let failed = app
        .client
        .get(app.url("/credits"))
        .header("X-Request-Id", "trace-456")
        .send()
        .await
        .unwrap();
    let body = expect_error(failed, StatusCode::UNAUTHORIZED, "MISSING_API_KEY").await;
    assert_eq!(body["error"]["requestId"], "trace-456");
    let generated = app
        .client
        .get(app.url("/credits"))
        .header("X-API-Key", &app.org.test_key)
        .send()
        .await
        .unwrap();
    assert!(generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_"));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_format() {
    let app = spawn_app().await;
    expect_error(
        app.get("/nowhere", &app.org.test_key).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    expect_error(
        app.request(
            reqwest::Method::PUT,
            "/appointments",
            &app.org.test_key,
            None,
        )
        .await,
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
    )
    .await;
}

/// Every operation of openapi.json is served (not the 404/405 fallbacks), and it is OpenAPI 3.1.
#[tokio::test]
async fn every_documented_operation_exists() {
    let app = spawn_app().await;
    let spec: Value =
        serde_json::from_str(include_str!("../../openapi.json")).expect("openapi.json is JSON");
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = spec["paths"].as_object().unwrap();
    let mut checked = 0;
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let concrete = path.replace("{id}", "1");
            let response = app
                .client
                .request(
                    method.to_uppercase().parse().unwrap(),
                    format!("{}{concrete}", app.address),
                )
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let fallback = body["error"]["message"] == "No such route"
                || status == StatusCode::METHOD_NOT_ALLOWED;
            assert!(!fallback, "{method} {path} is documented but not served");
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} operations documented");
}

/// Each operation that states a scope in the spec (`x-required-scope`, written by the
/// operation's own `Authorized<S>` extractor) refuses a key holding every other scope, naming
/// that scope, and writes nothing. The spec is the only table of scopes.
#[tokio::test]
async fn each_operation_refuses_a_key_without_the_scope_it_states() {
    let app = spawn_app().await;
    let spec: Value = serde_json::from_str(include_str!("../../openapi.json")).unwrap();
    // For each scope, a key holding every other scope but `api:admin` (which implies them all).
    let mut keys = std::collections::HashMap::new();
    for scope in Scope::ALL.map(Scope::as_str) {
        let others: Vec<&str> = Scope::ALL
            .map(Scope::as_str)
            .into_iter()
            .filter(|other| *other != scope && *other != "api:admin")
            .collect();
        keys.insert(scope, app.create_key(&others).await);
    }
    let before = app.footprint().await;
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        let Some(path) = path.strip_prefix("/api/v1") else {
            continue;
        };
        for (method, operation) in item.as_object().unwrap() {
            let Some(scope) = operation["x-required-scope"].as_str() else {
                continue;
            };
            // The scope is checked before the path, the query or the body is read.
            let concrete = path
                .replace("{id}", "1")
                .replace("{workerId}", "1")
                .replace("{delivery_id}", "dlv_1");
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let body = serde_json::json!({});
            let response = app
                .request(method.clone(), &concrete, &keys[scope], Some(&body))
                .await;
            let refused = expect_error(response, StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE").await;
            assert_eq!(
                refused["error"]["details"]["requiredScope"], scope,
                "{method} {path}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} operations state a scope");
    assert_eq!(app.footprint().await, before);
}

#[tokio::test]
async fn a_nul_character_in_a_body_query_or_path_is_a_400_not_a_500() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let before = app.footprint().await;
    let grant = app
        .post(
            "/credits/grants",
            &key,
            &serde_json::json!({"amount": 1, "reason": "a\u{0}b"}),
        )
        .await;
    let body = expect_error(grant, StatusCode::BAD_REQUEST, "INVALID_FIELD_VALUE").await;
    assert_eq!(body["errors"][0]["field"], "reason");
    expect_error(
        app.get("/appointments?externalUserId=%00", &key).await,
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
    )
    .await;
    expect_error(
        app.get("/webhooks/wh_%00", &key).await,
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(app.footprint().await, before);
}
