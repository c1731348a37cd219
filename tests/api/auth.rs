//! Authentication, scopes and modes: every 401 and 403 code of the contract.

use moncreneau::domain::credits::CreditGrant;
use moncreneau::routes::api_keys::json::ApiKey;
use moncreneau::routes::credits::json::Credits;
use moncreneau::routes::departments::json::Department;
use reqwest::StatusCode;
use serde_json::json;

use crate::contract::ContractClient;
use crate::helpers::{
    expect_status, spawn_app, start_server, test_settings, TestDatabase, ADMIN_TOKEN,
};
use crate::typed::{read, ReadReply};

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
    read(response)
        .await
        .error(StatusCode::UNAUTHORIZED, "MISSING_API_KEY");
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
        let reply = read(response).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{why}: {reply:?}");
        reply.error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN_FORMAT");
    }
}

#[tokio::test]
async fn an_unknown_well_formed_key_is_401_invalid_api_key() {
    let app = spawn_app().await;
    app.get("/departments", &format!("mk_test_{}", "Z".repeat(40)))
        .reply()
        .await
        .error(StatusCode::UNAUTHORIZED, "INVALID_API_KEY");
}

#[tokio::test]
async fn revoked_and_expired_keys_are_401_expired_api_key() {
    let app = spawn_app().await;
    let created = app.issue_key(&["departments:read"]).await;
    let key = created.key.as_str();
    let _: Vec<Department> = app
        .get("/departments", key)
        .reply()
        .await
        .json(StatusCode::OK);

    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(&created.api_key.id)
        .execute(&app.db)
        .await
        .unwrap();
    app.get("/departments", key)
        .reply()
        .await
        .error(StatusCode::UNAUTHORIZED, "EXPIRED_API_KEY");

    let other = app.issue_key(&["departments:read"]).await;
    let path = format!("/api-keys/{}", other.api_key.id);
    let revoked: ApiKey = app
        .delete(&path, &app.org.test_key)
        .reply()
        .await
        .json(StatusCode::OK);
    assert!(revoked.revoked_at.is_some(), "{revoked:?}");
    app.get("/departments", &other.key)
        .reply()
        .await
        .error(StatusCode::UNAUTHORIZED, "EXPIRED_API_KEY");
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
    let test: Credits = read(bearer).await.json(StatusCode::OK);
    assert!(!test.livemode);
    let header = app
        .client
        .get(app.url("/credits"))
        .header("X-API-Key", &app.org.live_key)
        .send()
        .await
        .unwrap();
    let live: Credits = read(header).await.json(StatusCode::OK);
    assert!(live.livemode);
}

#[tokio::test]
async fn live_test_credit_grants_are_403_live_mode_forbidden() {
    let app = spawn_app().await;
    let grant = CreditGrant {
        amount: Some(5),
        reason: Some("top-up".to_owned()),
    };
    app.post("/credits/grants", &app.org.live_key, &grant)
        .reply()
        .await
        .error(StatusCode::FORBIDDEN, "LIVE_MODE_FORBIDDEN");
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
    read(none)
        .await
        .error(StatusCode::UNAUTHORIZED, "MISSING_API_KEY");
    let wrong = app
        .client
        .get(app.url("/admin/organizations"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    read(wrong)
        .await
        .error(StatusCode::UNAUTHORIZED, "INVALID_API_KEY");
    // An organization key is not an operator token.
    let org_key = app
        .client
        .get(app.url("/admin/organizations"))
        .bearer_auth(&app.org.test_key)
        .send()
        .await
        .unwrap();
    read(org_key)
        .await
        .error(StatusCode::UNAUTHORIZED, "INVALID_API_KEY");
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
    let response = ContractClient::new(reqwest::Client::new())
        .post(format!("{address}/api/v1/admin/organizations"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "X"}))
        .send()
        .await
        .unwrap();
    read(response)
        .await
        .error(StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn a_missing_scope_is_reported_before_any_body_problem() {
    let app = spawn_app().await;
    let key = &app.create_key(&["appointments:read"]).await;
    // Malformed bodies on purpose: the scope is checked before them.
    app.post("/appointments", key, &json!({}))
        .reply()
        .await
        .error(StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE");
    let text = app
        .client
        .post(app.url("/appointments"))
        .header("X-API-Key", key)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    read(text)
        .await
        .error(StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE");
    let unauthenticated = app
        .client
        .post(app.url("/appointments"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    read(unauthenticated)
        .await
        .error(StatusCode::UNAUTHORIZED, "MISSING_API_KEY");
}
