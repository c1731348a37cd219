//! Rate limits per key, shared by every server process.

use reqwest::StatusCode;

use crate::helpers::{
    expect_error, expect_status, spawn_app_with, start_server, test_settings, TestDatabase,
};

#[tokio::test]
async fn a_key_over_its_hourly_limit_gets_429_with_its_quota_across_processes() {
    let database = TestDatabase::create().await;
    let mut settings = test_settings(&database.url());
    settings.rate_limit_per_hour = 3;
    let app = spawn_app_with(database, settings.clone()).await;
    let second = start_server(settings).await;
    let key = app.org.test_key.clone();
    let get = |base: &str| {
        app.client
            .get(format!("{base}/api/v1/credits"))
            .header("X-API-Key", &key)
            .send()
    };

    let mut remaining = Vec::new();
    for base in [&app.address, &second, &app.address] {
        let answer = get(base).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(answer.headers()["x-ratelimit-limit"], "3");
        remaining.push(
            answer.headers()["x-ratelimit-remaining"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
        let reset: i64 = answer.headers()["x-ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let now = chrono::Utc::now().timestamp();
        assert!(
            reset > now && reset <= now + 3600,
            "reset {reset} within the hour"
        );
    }
    assert_eq!(remaining, ["2", "1", "0"], "one count over both processes");

    let limited = get(&second).await.unwrap();
    let retry_after: i64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after));
    assert_eq!(limited.headers()["x-ratelimit-remaining"], "0");
    let body = expect_error(
        limited,
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMIT_EXCEEDED",
    )
    .await;
    assert_eq!(body["error"]["details"]["limit"], 3);

    // Another key of the same organization has its own quota.
    let other = app
        .client
        .get(app.url("/credits"))
        .header("X-API-Key", &app.org.live_key)
        .send()
        .await
        .unwrap();
    assert_eq!(other.headers()["x-ratelimit-remaining"], "2");
    expect_status(other, StatusCode::OK).await;
}

#[tokio::test]
async fn without_a_limit_no_quota_headers_are_sent() {
    let database = TestDatabase::create().await;
    let mut settings = test_settings(&database.url());
    settings.rate_limit_per_hour = 0;
    let app = spawn_app_with(database, settings).await;
    for _ in 0..5 {
        let answer = app.get("/credits", &app.org.test_key).await;
        assert!(answer.headers().get("x-ratelimit-limit").is_none());
        expect_status(answer, StatusCode::OK).await;
    }
}

/// Processes reserve the shared count in blocks; however requests spread over them, exactly the
/// limit is admitted once every process has refused one (none keeps an unused block then).
#[tokio::test]
async fn concurrent_requests_over_two_processes_admit_exactly_the_limit() {
    let database = TestDatabase::create().await;
    let mut settings = test_settings(&database.url());
    settings.rate_limit_per_hour = 100;
    let app = spawn_app_with(database, settings.clone()).await;
    let second = start_server(settings).await;
    let key = app.org.test_key.clone();

    let statuses = futures::future::join_all((0..16).map(|client| {
        let base = if client % 2 == 0 {
            app.address.clone()
        } else {
            second.clone()
        };
        let (http, key) = (app.client.clone(), key.clone());
        async move {
            let mut statuses = Vec::new();
            for _ in 0..17 {
                let response = http
                    .get(format!("{base}/api/v1/credits"))
                    .header("X-API-Key", &key)
                    .send()
                    .await
                    .unwrap();
                statuses.push(response.status());
            }
            statuses
        }
    }))
    .await;

    let all: Vec<StatusCode> = statuses.into_iter().flatten().collect();
    let admitted = all.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = all
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((admitted, refused), (100, all.len() - 100), "{all:?}");
    let counted: i32 = sqlx::query_scalar("SELECT requests FROM rate_limit_windows")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(counted, 100, "the shared count never passes the limit");
}
