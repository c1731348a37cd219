//! Authentication, scopes and modes: every 401 and 403 code of the contract.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    expect_error, expect_status, spawn_app, start_server, test_settings, TestDatabase, ADMIN_TOKEN,
};

#[tokio::test]
async fn a_request_without_key_is_401_missing_api_key_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/departments"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    expect_error(response, StatusCode::UNAUTHORIZED, "MISSING_API_KEY").await;
}

#[tokio::test]
async fn malformed_credentials_are_401_invalid_token_format() {
    let app = spawn_app().await;
    let cases = [
        ("authorization", "Bearer".to_owned(), "Bearer without a key"),
        (
            "authorization",
            "Basic dXNlcjpwYXNz".to_owned(),
            "another scheme",
        ),
        (
            "authorization",
            "Bearer sk_test_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_owned(),
            "wrong prefix",
        ),
        ("x-api-key", "mk_test_short".to_owned(), "too short"),
        (
            "x-api-key",
            format!("mk_prod_{}", "a".repeat(40)),
            "unknown mode",
        ),
    ];
    for (header, value, why) in cases {
        let response = app
            .client
            .get(app.url("/departments"))
            .header(header, value)
            .send()
            .await
            .unwrap();
        let body = expect_status(response, StatusCode::UNAUTHORIZED).await;
        assert_eq!(
            body["error"]["code"], "INVALID_TOKEN_FORMAT",
            "{why}: {body}"
        );
    }
}

#[tokio::test]
async fn an_unknown_well_formed_key_is_401_invalid_api_key() {
    let app = spawn_app().await;
    let response = app
        .get("/departments", &format!("mk_test_{}", "Z".repeat(40)))
        .await;
    expect_error(response, StatusCode::UNAUTHORIZED, "INVALID_API_KEY").await;
}

#[tokio::test]
async fn revoked_and_expired_keys_are_401_expired_api_key() {
    let app = spawn_app().await;
    let created = expect_status(
        app.post(
            "/api-keys",
            &app.org.test_key,
            &json!({"name": "reader", "scopes": ["departments:read"]}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let key = created["key"].as_str().unwrap().to_owned();
    expect_status(app.get("/departments", &key).await, StatusCode::OK).await;

    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(created["id"].as_str().unwrap())
        .execute(&app.db)
        .await
        .unwrap();
    expect_error(
        app.get("/departments", &key).await,
        StatusCode::UNAUTHORIZED,
        "EXPIRED_API_KEY",
    )
    .await;

    let other = expect_status(
        app.post(
            "/api-keys",
            &app.org.test_key,
            &json!({"name": "temp", "scopes": ["departments:read"]}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let path = format!("/api-keys/{}", other["id"].as_str().unwrap());
    expect_status(app.delete(&path, &app.org.test_key).await, StatusCode::OK).await;
    expect_error(
        app.get("/departments", other["key"].as_str().unwrap())
            .await,
        StatusCode::UNAUTHORIZED,
        "EXPIRED_API_KEY",
    )
    .await;
}

#[tokio::test]
async fn both_header_styles_authenticate() {
    let app = spawn_app().await;
    let bearer = app
        .client
        .get(app.url("/credits"))
        .bearer_auth(&app.org.test_key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_status(bearer, StatusCode::OK).await["livemode"],
        false
    );
    let header = app
        .client
        .get(app.url("/credits"))
        .header("X-API-Key", &app.org.live_key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_status(header, StatusCode::OK).await["livemode"],
        true
    );
}

#[tokio::test]
async fn each_route_refuses_a_key_without_its_scope() {
    let app = spawn_app().await;
    let department = app.create_department(&app.org.test_key, 2).await;
    let booked = expect_status(
        app.book(
            &app.org.test_key,
            department,
            &crate::helpers::slot(2, "10:00"),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let appointment = booked["id"].as_i64().unwrap();
    // A key holding every scope but the one each route needs.
    let all_but = |missing: &str| -> Vec<&str> {
        [
            "appointments:read",
            "appointments:create",
            "appointments:cancel",
            "departments:read",
            "availability:check",
            "webhooks:manage",
        ]
        .into_iter()
        .filter(|s| *s != missing)
        .collect()
    };
    let cases: Vec<(&str, reqwest::Method, String, Option<serde_json::Value>)> = vec![
        (
            "departments:read",
            reqwest::Method::GET,
            "/departments".into(),
            None,
        ),
        (
            "departments:read",
            reqwest::Method::GET,
            format!("/departments/{department}"),
            None,
        ),
        (
            "availability:check",
            reqwest::Method::GET,
            format!(
                "/departments/{department}/availability?startDate={}&endDate={}",
                crate::helpers::day_ahead(1),
                crate::helpers::day_ahead(2)
            ),
            None,
        ),
        (
            "appointments:create",
            reqwest::Method::POST,
            "/appointments".into(),
            Some(
                json!({"departmentId": department, "dateTime": crate::helpers::slot(2, "11:00"), "name": "X"}),
            ),
        ),
        (
            "appointments:read",
            reqwest::Method::GET,
            format!("/appointments/{appointment}"),
            None,
        ),
        (
            "appointments:read",
            reqwest::Method::GET,
            "/appointments".into(),
            None,
        ),
        (
            "appointments:cancel",
            reqwest::Method::DELETE,
            format!("/appointments/{appointment}"),
            None,
        ),
        (
            "appointments:create",
            reqwest::Method::PATCH,
            format!("/appointments/{appointment}"),
            Some(json!({"name": "Y"})),
        ),
        (
            "api:admin",
            reqwest::Method::POST,
            format!("/appointments/{appointment}/validate"),
            None,
        ),
        (
            "api:admin",
            reqwest::Method::POST,
            format!("/appointments/{appointment}/no-show"),
            None,
        ),
        (
            "api:admin",
            reqwest::Method::POST,
            "/departments".into(),
            Some(json!({"name": "D", "timezone": "UTC"})),
        ),
        (
            "api:admin",
            reqwest::Method::PATCH,
            format!("/departments/{department}"),
            Some(json!({"name": "D"})),
        ),
        (
            "api:admin",
            reqwest::Method::DELETE,
            format!("/departments/{department}"),
            None,
        ),
        ("api:admin", reqwest::Method::GET, "/api-keys".into(), None),
        (
            "api:admin",
            reqwest::Method::POST,
            "/credits/grants".into(),
            Some(json!({"amount": 1, "reason": "r"})),
        ),
        (
            "api:admin",
            reqwest::Method::PUT,
            "/credits/settings".into(),
            Some(json!({"lowBalanceThreshold": 1})),
        ),
    ];
    let before = app.footprint().await;
    for (scope, method, path, body) in cases {
        let created = expect_status(
            app.post(
                "/api-keys",
                &app.org.test_key,
                &json!({"name": "limited", "scopes": all_but(scope)}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        let key = created["key"].as_str().unwrap();
        let response = app.request(method.clone(), &path, key, body.as_ref()).await;
        let body = expect_status(response, StatusCode::FORBIDDEN).await;
        assert_eq!(
            body["error"]["code"], "INSUFFICIENT_SCOPE",
            "{method} {path}: {body}"
        );
        assert_eq!(
            body["error"]["details"]["requiredScope"], scope,
            "{method} {path}"
        );
    }
    let after = app.footprint().await;
    assert_eq!(
        (
            before.appointments,
            before.ledger_lines,
            before.events,
            before.departments
        ),
        (
            after.appointments,
            after.ledger_lines,
            after.events,
            after.departments
        )
    );
    let status: String = sqlx::query_scalar("SELECT status FROM appointments WHERE id = $1")
        .bind(appointment)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(status, "CONFIRMED");
}

#[tokio::test]
async fn live_test_credit_grants_are_403_live_mode_forbidden() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/credits/grants",
            &app.org.live_key,
            &json!({"amount": 5, "reason": "top-up"}),
        )
        .await;
    expect_error(response, StatusCode::FORBIDDEN, "LIVE_MODE_FORBIDDEN").await;
    assert_eq!(app.balance(&app.org.live_key).await, 10);
}

#[tokio::test]
async fn the_operator_api_checks_its_token() {
    let app = spawn_app().await;
    let none = app
        .client
        .get(app.url("/admin/organizations"))
        .send()
        .await
        .unwrap();
    expect_error(none, StatusCode::UNAUTHORIZED, "MISSING_API_KEY").await;
    let wrong = app
        .client
        .get(app.url("/admin/organizations"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    expect_error(wrong, StatusCode::UNAUTHORIZED, "INVALID_API_KEY").await;
    // An organization key is not an operator token.
    let org_key = app
        .client
        .get(app.url("/admin/organizations"))
        .bearer_auth(&app.org.test_key)
        .send()
        .await
        .unwrap();
    expect_error(org_key, StatusCode::UNAUTHORIZED, "INVALID_API_KEY").await;
    let right = app
        .client
        .get(app.url("/admin/organizations"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    expect_status(right, StatusCode::OK).await;
}

#[tokio::test]
async fn without_an_admin_token_the_operator_api_does_not_exist() {
    let database = TestDatabase::create().await;
    let mut settings = test_settings(&database.url());
    settings.admin_token = None;
    let address = start_server(settings).await;
    let response = crate::contract::ContractClient::new(reqwest::Client::new())
        .post(format!("{address}/api/v1/admin/organizations"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "X"}))
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::NOT_FOUND, "NOT_FOUND").await;
}

#[tokio::test]
async fn a_missing_scope_is_reported_before_any_body_problem() {
    let app = spawn_app().await;
    let reader = expect_status(
        app.post(
            "/api-keys",
            &app.org.test_key,
            &json!({"name": "reader", "scopes": ["appointments:read"]}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let key = reader["key"].as_str().unwrap();
    let empty = app.post("/appointments", key, &json!({})).await;
    expect_error(empty, StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE").await;
    let text = app
        .client
        .post(app.url("/appointments"))
        .header("X-API-Key", key)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    expect_error(text, StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE").await;
    let unauthenticated = app
        .client
        .post(app.url("/appointments"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    expect_error(unauthenticated, StatusCode::UNAUTHORIZED, "MISSING_API_KEY").await;
}
