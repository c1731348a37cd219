//! The operator: organizations over HTTP and from the command line.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{expect_error, expect_json, expect_status, spawn_app, TestApp, ADMIN_TOKEN};
use moncreneau::domain::keys::Scope;
use moncreneau::routes::admin::json::{
    LiveCreditGrantResult, Organization, OrganizationCreated, OrganizationList,
};

async fn operator(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_operator_creates_lists_reads_and_credits_organizations() {
    let app = spawn_app().await;
    let created: OrganizationCreated = expect_json(
        operator(
            &app,
            reqwest::Method::POST,
            "/admin/organizations",
            Some(json!({"name": "Clinic", "liveCredits": 7})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id = created.id;
    assert_eq!(
        (
            created.name.as_str(),
            created.test_credits,
            created.live_credits
        ),
        ("Clinic", 100, 7)
    );
    let keys = &created.api_keys;
    assert_eq!(
        keys.iter().map(|k| k.mode.as_str()).collect::<Vec<_>>(),
        ["test", "live"]
    );
    for key in keys {
        assert_eq!(key.scopes, [Scope::ApiAdmin]);
        assert!(key.key.starts_with(&format!("mk_{}_", key.mode)));
        assert!(key.id.starts_with("key_"));
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE organization_id = $1 AND key_hash = sha256(convert_to($2, 'UTF8'))")
        .bind(id)
        .bind(&keys[0].key)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 1, "only the hash is stored");

    let listed: OrganizationList = expect_json(
        operator(&app, reqwest::Method::GET, "/admin/organizations", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        listed.data.iter().map(|o| o.id).collect::<Vec<_>>(),
        [app.org.id, id],
        "oldest first"
    );
    let fetched: Organization = expect_json(
        operator(
            &app,
            reqwest::Method::GET,
            &format!("/admin/organizations/{id}"),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (fetched.id, fetched.live_credits, fetched.test_credits),
        (id, 7, 100)
    );
    assert_eq!(listed.data[1], fetched);

    let granted: LiveCreditGrantResult = expect_json(
        operator(
            &app,
            reqwest::Method::POST,
            &format!("/admin/organizations/{id}/credits"),
            Some(json!({"amount": 50, "reason": "Invoice 12"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        granted,
        LiveCreditGrantResult {
            organization_id: id,
            available_credits: 57,
            livemode: true
        }
    );
    let live_key = &keys.iter().find(|k| k.mode == "live").unwrap().key;
    assert_eq!(app.balance(live_key).await, 57);
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn bad_operator_requests_are_refused_without_effect() {
    let app = spawn_app().await;
    let before = app.footprint().await;
    for (body, field) in [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "X", "liveCredits": -1}), "liveCredits"),
    ] {
        let answer = expect_status(
            operator(
                &app,
                reqwest::Method::POST,
                "/admin/organizations",
                Some(body.clone()),
            )
            .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(answer["errors"][0]["field"], field, "{body}");
    }
    expect_error(
        operator(
            &app,
            reqwest::Method::GET,
            "/admin/organizations/999999",
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    expect_error(
        operator(
            &app,
            reqwest::Method::POST,
            "/admin/organizations/999999/credits",
            Some(json!({"amount": 5, "reason": "x"})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let path = format!("/admin/organizations/{}/credits", app.org.id);
    expect_status(
        operator(
            &app,
            reqwest::Method::POST,
            &path,
            Some(json!({"amount": 0, "reason": "x"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(app.footprint().await, before);
}

#[tokio::test]
async fn the_command_line_creates_an_organization_whose_keys_work() {
    let app = spawn_app().await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_moncreneau"))
        .args([
            "admin",
            "create-org",
            "--name",
            "Clinique du Port",
            "--live-credits",
            "12",
        ])
        .env("DATABASE_URL", app.database.url())
        .env("MONCRENEAU_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: OrganizationCreated =
        serde_json::from_slice(&output.stdout).expect("the command prints the organization");
    assert_eq!(
        (printed.name.as_str(), printed.live_credits),
        ("Clinique du Port", 12)
    );
    let live_key = &printed
        .api_keys
        .iter()
        .find(|k| k.mode == "live")
        .unwrap()
        .key;
    assert_eq!(app.balance(live_key).await, 12);
}

#[tokio::test]
async fn the_server_exits_non_zero_when_the_database_stays_unreachable() {
    let started = std::time::Instant::now();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_moncreneau"))
        .arg("serve")
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere")
        .env("MONCRENEAU_ADDR", "127.0.0.1:0")
        .env("MONCRENEAU_DATABASE_CONNECT_TIMEOUT_S", "2")
        .env("MONCRENEAU_LOG_FORMAT", "json")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "it gave up within a bounded time"
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("database unreachable"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
