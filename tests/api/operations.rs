//! Operations: health, readiness, request ids, fallbacks, and the spec file.

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

/// Every route the code registers is documented in openapi.json.
#[test]
fn every_served_route_is_documented() {
    let spec: Value = serde_json::from_str(include_str!("../../openapi.json")).unwrap();
    let documented = spec["paths"].as_object().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
    let mut sources = vec![root.clone()];
    let mut served = Vec::new();
    while let Some(path) = sources.pop() {
        if path.is_dir() {
            sources.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .map(|entry| entry.unwrap().path()),
            );
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // `.api_route(` registers a route described in code (its operation is generated).
        let routes = text
            .match_indices(".route(")
            .chain(text.match_indices(".api_route("));
        for (index, _) in routes {
            served.push(text[index..].split('"').nth(1).unwrap().to_owned());
        }
    }
    assert!(served.len() >= 15, "found {served:?}");
    for route in served {
        let path = format!("/api/v1{route}");
        assert!(
            documented.contains_key(&path),
            "{path} is served but not in openapi.json"
        );
    }
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
