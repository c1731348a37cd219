//! Receivers that try to hurt the server: internal addresses in disguise, and (below) answers
//! too large or too slow to read. Each attack must be refused or cut short, and the server must
//! keep answering.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{expect_status, spawn_app_with, test_settings, TestDatabase};

#[tokio::test]
async fn ipv6_forms_of_internal_addresses_are_refused_at_registration() {
    let database = TestDatabase::create().await;
    let mut settings = test_settings(&database.url());
    settings.webhook_allow_private = false;
    let app = spawn_app_with(database, settings).await;
    let key = app.org.test_key.clone();

    for (url, why) in [
        ("https://[::ffff:127.0.0.1]/hook", "IPv4-mapped loopback"),
        ("https://[::127.0.0.1]/hook", "IPv4-compatible loopback"),
        (
            "https://[::ffff:0:127.0.0.1]/hook",
            "SIIT IPv4-translated loopback",
        ),
        (
            "https://[64:ff9b::a9fe:a9fe]/latest",
            "NAT64 of the metadata service",
        ),
        (
            "https://[64:ff9b:1::808:808]/hook",
            "local-use NAT64, whatever it embeds",
        ),
        ("https://[2002:7f00:1::]/hook", "6to4 of 127.0.0.1"),
        ("https://[2002:a00:1::1]/hook", "6to4 of 10.0.0.1"),
        (
            "https://[2001:0:a00:1::f7f7:f7f7]/hook",
            "Teredo server 10.0.0.1",
        ),
        (
            "https://[2001:0:808:808::80ff:fffe]/hook",
            "Teredo client 127.0.0.1",
        ),
        ("https://[::]/hook", "IPv6 unspecified"),
        ("https://0.0.0.0/hook", "IPv4 unspecified"),
        ("https://[ff02::1]/hook", "IPv6 multicast"),
        ("https://224.0.0.1/hook", "IPv4 multicast"),
        ("https://[100::1]/hook", "discard-only"),
        ("https://[2001:20::1]/hook", "ORCHIDv2"),
    ] {
        let refused = app
            .post("/webhooks", &key, &json!({"url": url, "events": ["*"]}))
            .await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{why}: {url}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["errors"][0]["field"], "url", "{why}: {url}");
    }
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM webhooks")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(written, 0, "a refused registration wrote a webhook");

    // The same forms carrying a public address stay registrable.
    for url in [
        "https://[2002:808:808::1]/hook",
        "https://[64:ff9b::808:808]/hook",
    ] {
        expect_status(
            app.post("/webhooks", &key, &json!({"url": url, "events": ["*"]}))
                .await,
            StatusCode::CREATED,
        )
        .await;
    }
}
