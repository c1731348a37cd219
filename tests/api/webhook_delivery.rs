//! Delivery: retries on schedule, timeouts, 410, giving up, several processes, a killed process,
//! rolled-back changes, and the address guard at delivery time.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    expect_status, slot, spawn_app, test_settings, TestApp, TestDatabase, ADMIN_TOKEN,
};
use crate::receiver::{Receiver, Reply};
use crate::webhooks::create_webhook;

const WAIT: Duration = Duration::from_secs(15);

async fn attempts(app: &TestApp, key: &str, webhook: &str) -> Vec<Value> {
    let log = expect_status(
        app.get(&format!("/webhooks/{webhook}/deliveries?size=100"), key)
            .await,
        StatusCode::OK,
    )
    .await;
    let mut list = log["content"].as_array().unwrap().clone();
    list.reverse();
    list
}

/// Opens a one-place department and books it once: the change whose event is delivered.
pub async fn book_once(app: &TestApp, key: &str) {
    let department = app.create_department(key, 1).await;
    expect_status(
        app.book(key, department, &slot(2, "10:00")).await,
        StatusCode::CREATED,
    )
    .await;
}

/// Registers a webhook for `appointment.created` to `receiver`, then books once; answers the
/// webhook's id.
async fn subscribe_and_book(app: &TestApp, key: &str, receiver: &Receiver) -> String {
    let (webhook, _) =
        create_webhook(app, key, &receiver.url, json!(["appointment.created"])).await;
    book_once(app, key).await;
    webhook
}

/// Polls (bounded) until the webhook's attempt log satisfies `done`.
pub async fn attempts_until(
    app: &TestApp,
    key: &str,
    webhook: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let list = attempts(app, key, webhook).await;
        if done(&list) {
            return list;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "attempt log never got there: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_three_attempts_on_the_schedule() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let receiver = Receiver::start(vec![Reply::status(500), Reply::status(500)]).await;
    let webhook = subscribe_and_book(&app, &key, &receiver).await;

    let received = receiver.wait_for(3, WAIT).await;
    let log = attempts_until(&app, &key, &webhook, |list| list.len() == 3).await;

    assert_eq!(received.len(), 3);
    let ids: Vec<Value> = received.iter().map(|r| r.json()["id"].clone()).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one event, three attempts"
    );
    // Schedule 300 ms then 600 ms, ±10 % jitter, plus at most a poll interval (50 ms) and slack.
    for (gap, base) in [
        (received[1].at - received[0].at, 300),
        (received[2].at - received[1].at, 600),
    ] {
        let (low, high) = (
            Duration::from_millis(base * 9 / 10),
            Duration::from_millis(base * 11 / 10 + 400),
        );
        assert!(
            gap >= low && gap <= high,
            "gap {gap:?} outside {low:?}..{high:?}"
        );
        eprintln!("retry after {gap:?} (schedule {base} ms)");
    }
    let statuses: Vec<Value> = log.iter().map(|a| a["statusCode"].clone()).collect();
    assert_eq!(statuses, [json!(500), json!(500), json!(200)]);
    assert_eq!(
        log.iter()
            .map(|a| a["attempt"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(log[0]["nextRetryAt"].is_string() && log[0]["error"].is_string());
    assert!(log[2]["nextRetryAt"].is_null() && log[2]["error"].is_null());
    assert_eq!(log[2]["deliveryStatus"], "SUCCEEDED");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        receiver.received().len(),
        3,
        "nothing more after the success"
    );
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_is_recorded_as_a_timeout_then_retried() {
    let database = TestDatabase::create().await;
    let mut settings = test_settings(&database.url());
    settings.webhook_timeout = Duration::from_millis(400);
    let app = crate::helpers::spawn_app_with(database, settings).await;
    let key = app.org.test_key.clone();
    let receiver = Receiver::start(vec![Reply::slow(Duration::from_secs(2))]).await;
    let webhook = subscribe_and_book(&app, &key, &receiver).await;

    let log = attempts_until(&app, &key, &webhook, |list| list.len() == 2).await;

    assert_eq!(log[0]["error"], "timed out");
    assert!(log[0]["statusCode"].is_null());
    let duration = log[0]["durationMs"].as_i64().unwrap();
    assert!(
        (400..1500).contains(&duration),
        "the attempt lasted {duration} ms"
    );
    eprintln!("timed-out attempt lasted {duration} ms (timeout 400 ms)");
    assert_eq!(log[1]["statusCode"], 200);
}

#[tokio::test]
async fn gone_disables_the_webhook_and_stops_deliveries() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let receiver = Receiver::start(vec![Reply::status(410)]).await;
    let (webhook, _) = create_webhook(&app, &key, &receiver.url, json!(["*"])).await;
    let department = app.create_department(&key, 2).await;
    expect_status(
        app.book(&key, department, &slot(2, "10:00")).await,
        StatusCode::CREATED,
    )
    .await;

    let log = attempts_until(&app, &key, &webhook, |list| !list.is_empty()).await;
    assert_eq!(log[0]["statusCode"], 410);
    let state = expect_status(
        app.get(&format!("/webhooks/{webhook}"), &key).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(state["active"], false);
    assert!(state["disabledReason"].as_str().unwrap().contains("410"));

    expect_status(
        app.book(&key, department, &slot(2, "10:30")).await,
        StatusCode::CREATED,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 1, "no attempt after 410");
    assert_eq!(attempts(&app, &key, &webhook).await.len(), 1);
}

#[tokio::test]
async fn three_days_without_success_disable_the_webhook() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let receiver = Receiver::start(vec![Reply::status(500)]).await;
    let (webhook, _) =
        create_webhook(&app, &key, &receiver.url, json!(["appointment.created"])).await;
    sqlx::query(
        "UPDATE webhooks SET failing_since = now() - interval '3 days 1 minute' WHERE id = $1",
    )
    .bind(&webhook)
    .execute(&app.db)
    .await
    .unwrap();
    // Setting an active endpoint active again does not reset its failure clock.
    let again = app
        .request(
            reqwest::Method::PUT,
            &format!("/webhooks/{webhook}"),
            &key,
            Some(&json!({"active": true})),
        )
        .await;
    expect_status(again, StatusCode::OK).await;
    book_once(&app, &key).await;

    let log = attempts_until(&app, &key, &webhook, |list| !list.is_empty()).await;

    assert_eq!(log[0]["deliveryStatus"], "FAILED");
    let state = expect_status(
        app.get(&format!("/webhooks/{webhook}"), &key).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(state["active"], false);
    assert!(state["disabledReason"].as_str().unwrap().contains("3 days"));
    // Re-enabled, a manual retry of the delivery goes through.
    let enabled = app
        .request(
            reqwest::Method::PUT,
            &format!("/webhooks/{webhook}"),
            &key,
            Some(&json!({"active": true})),
        )
        .await;
    assert_eq!(
        expect_status(enabled, StatusCode::OK).await["disabledReason"],
        Value::Null
    );
    let delivery = log[0]["deliveryId"].as_str().unwrap();
    let retried = expect_status(
        app.post(
            &format!("/webhooks/{webhook}/deliveries/{delivery}/retry"),
            &key,
            &json!({}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(retried["status"], "PENDING");
    let log = attempts_until(&app, &key, &webhook, |list| list.len() == 2).await;
    assert_eq!(
        (
            log[1]["statusCode"].as_i64(),
            log[1]["deliveryStatus"].as_str()
        ),
        (Some(200), Some("SUCCEEDED"))
    );
    let unknown = app
        .post(
            &format!("/webhooks/{webhook}/deliveries/dlv_nope/retry"),
            &key,
            &json!({}),
        )
        .await;
    expect_status(unknown, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let elsewhere = Receiver::start(vec![]).await;
    let target: &'static str = Box::leak(elsewhere.url.clone().into_boxed_str());
    let receiver = Receiver::start(vec![Reply::redirect(target)]).await;
    let webhook = subscribe_and_book(&app, &key, &receiver).await;

    let log = attempts_until(&app, &key, &webhook, |list| list.len() == 2).await;

    assert_eq!(
        (
            log[0]["statusCode"].as_i64(),
            log[0]["deliveryStatus"].as_str()
        ),
        (Some(302), Some("SUCCEEDED"))
    );
    assert_eq!(log[0]["error"], "receiver answered 302");
    assert_eq!(
        log[1]["statusCode"], 200,
        "retried at the registered address"
    );
    assert!(
        elsewhere.received().is_empty(),
        "the redirect target was never called"
    );
}

#[tokio::test]
async fn a_rolled_back_booking_sends_nothing() {
    let app = spawn_app().await;
    let org = app.create_org("Broke", 0).await;
    let key = org.live_key.clone();
    let receiver = Receiver::start(vec![]).await;
    create_webhook(&app, &key, &receiver.url, json!(["*"])).await;
    let department = app.create_department(&key, 2).await;
    let refused = app.book(&key, department, &slot(2, "10:00")).await;
    assert_eq!(refused.status(), StatusCode::PAYMENT_REQUIRED);
    let deliveries: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(deliveries, 0);

    // A later successful booking is the marker: once its events arrive, nothing else came.
    app.client
        .post(app.url(&format!("/admin/organizations/{}/credits", org.id)))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"amount": 1, "reason": "top-up"}))
        .send()
        .await
        .unwrap();
    let booked = expect_status(
        app.book(&key, department, &slot(2, "11:00")).await,
        StatusCode::CREATED,
    )
    .await;
    let received = receiver.wait_for(2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let types: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(received.len(), 2);
    assert!(
        types.contains(&"appointment.created".to_owned())
            && types.contains(&"credits.depleted".to_owned()),
        "{types:?}"
    );
    let created = receiver
        .received()
        .into_iter()
        .find(|r| r.json()["type"] == "appointment.created")
        .unwrap();
    assert_eq!(created.json()["data"]["object"]["id"], booked["id"]);
}

/// An organization on real server processes, driven over HTTP.
struct Tenant {
    client: crate::contract::ContractClient,
    key: String,
}

impl Tenant {
    /// A new organization, created through the operator API of the server at `address`.
    async fn create(address: &str) -> Self {
        let client = crate::contract::ContractClient::new(reqwest::Client::new());
        let org = expect_status(
            client
                .post(format!("{address}/api/v1/admin/organizations"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({"name": "Tenant"}))
                .send()
                .await
                .unwrap(),
            StatusCode::CREATED,
        )
        .await;
        let key = org["apiKeys"][0]["key"].as_str().unwrap().to_owned();
        Self { client, key }
    }

    async fn post(&self, address: &str, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{address}/api/v1{path}"))
            .header("X-API-Key", &self.key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// A webhook to `receiver` for `appointment.created`, and a department open every day
    /// 08:00–12:00 UTC; answers the department's id.
    async fn arrange(&self, address: &str, receiver: &Receiver, capacity: i64) -> Value {
        let webhook = json!({"url": receiver.url, "events": ["appointment.created"]});
        expect_status(
            self.post(address, "/webhooks", webhook).await,
            StatusCode::CREATED,
        )
        .await;
        let day = json!([{"start": "08:00", "end": "12:00"}]);
        let hours = json!({"monday": day, "tuesday": day, "wednesday": day, "thursday": day,
                           "friday": day, "saturday": day, "sunday": day});
        let department =
            json!({"name": "D", "timezone": "UTC", "capacity": capacity, "openingHours": hours});
        expect_status(
            self.post(address, "/departments", department).await,
            StatusCode::CREATED,
        )
        .await["id"]
            .clone()
    }
}

/// Two real server processes on one database, bookings spread over both: every event reaches
/// the receiver exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_deliver_each_of_200_events_exactly_once() {
    let database = TestDatabase::create().await;
    let receiver = Receiver::start(vec![]).await;
    let (mut first, one) = spawn_binary(&database, "true").await;
    let (mut second, two) = spawn_binary(&database, "true").await;
    let tenant = Tenant::create(&one).await;
    let department = tenant.arrange(&one, &receiver, 50).await;
    let grant = json!({"amount": 150, "reason": "load"});
    expect_status(
        tenant.post(&two, "/credits/grants", grant).await,
        StatusCode::CREATED,
    )
    .await;
    let times = ["08:00", "08:30", "09:00", "09:30"];
    let mut created = 0;
    for chunk in (0..200).collect::<Vec<usize>>().chunks(25) {
        let requests = chunk.iter().map(|i| {
            let base = if i % 2 == 0 { one.clone() } else { two.clone() };
            let body = json!({"departmentId": department, "dateTime": slot(2, times[i % 4]), "name": format!("P{i}")});
            let tenant = &tenant;
            async move { tenant.post(&base, "/appointments", body).await.status() }
        });
        created += join_all(requests)
            .await
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count();
    }
    assert_eq!(created, 200);

    let received = receiver.wait_for(200, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    first.kill().await.unwrap();
    second.kill().await.unwrap();

    let mut per_event: HashMap<String, usize> = HashMap::new();
    for request in receiver.received() {
        *per_event
            .entry(request.json()["id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(received.len(), 200);
    assert_eq!(per_event.len(), 200, "200 distinct events");
    assert!(per_event.values().all(|n| *n == 1), "each exactly once");
    let pool = sqlx::PgPool::connect(&database.url()).await.unwrap();
    let (stored, succeeded): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM events WHERE type = 'appointment.created'),
                (SELECT count(*) FROM webhook_deliveries WHERE status = 'SUCCEEDED' AND attempts = 1)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (stored, succeeded),
        (200, 200),
        "every delivery succeeded at its first attempt"
    );
    pool.close().await;
}

/// The real binary, killed with SIGKILL after the booking committed and before its delivery,
/// delivers the event once restarted.
#[tokio::test]
async fn an_event_survives_a_kill_between_commit_and_delivery() {
    let database = TestDatabase::create().await;
    let receiver = Receiver::start(vec![]).await;
    // First life: an API-only process, whose commits wait for another process to deliver them.
    let (mut first, address) = spawn_binary(&database, "false").await;
    let tenant = Tenant::create(&address).await;
    let department = tenant.arrange(&address, &receiver, 3).await;
    let booking = json!({"departmentId": department, "dateTime": slot(2, "09:00"), "name": "K"});
    let booked = expect_status(
        tenant.post(&address, "/appointments", booking).await,
        StatusCode::CREATED,
    )
    .await;
    first.kill().await.unwrap(); // SIGKILL
    let pool = sqlx::PgPool::connect(&database.url()).await.unwrap();
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE status = 'PENDING'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(pending, 1, "committed, not yet delivered");
    assert!(receiver.received().is_empty());

    let (mut second, _) = spawn_binary(&database, "true").await;
    let delivered = receiver.wait_for(1, WAIT).await;
    second.kill().await.unwrap();
    assert_eq!(delivered[0].json()["data"]["object"]["id"], booked["id"]);
    pool.close().await;
}

/// Starts the binary on `database`, with or without its delivery worker; answers the child and
/// its base address.
async fn spawn_binary(database: &TestDatabase, worker: &str) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_moncreneau"))
        .arg("serve")
        .env("DATABASE_URL", database.url())
        .env("MONCRENEAU_ADDR", "127.0.0.1:0")
        .env("MONCRENEAU_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("MONCRENEAU_WEBHOOK_ALLOW_PRIVATE", "true")
        .env("MONCRENEAU_WEBHOOK_WORKER", worker)
        .env("MONCRENEAU_WEBHOOK_POLL_MS", "50")
        .env("MONCRENEAU_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let address = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let entry: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if entry["fields"]["message"] == "listening" {
                return format!("http://{}", entry["fields"]["address"].as_str().unwrap());
            }
        }
        panic!("the server exited before listening");
    })
    .await
    .expect("the server listens in time");
    // Keep draining the log so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, address)
}

#[tokio::test]
async fn delivery_refuses_internal_targets_when_private_receivers_are_not_allowed() {
    let database = TestDatabase::create().await;
    let mut settings = test_settings(&database.url());
    settings.webhook_allow_private = false;
    let app = crate::helpers::spawn_app_with(database, settings).await;
    let key = app.org.test_key.clone();
    let receiver = Receiver::start(vec![]).await;

    let refused = app
        .post(
            "/webhooks",
            &key,
            &json!({"url": receiver.url, "events": ["*"]}),
        )
        .await;
    let body = expect_status(refused, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["errors"][0]["field"], "url");
    let secure_loopback = receiver
        .url
        .replace("http://127.0.0.1", "https://localhost");
    expect_status(
        app.post(
            "/webhooks",
            &key,
            &json!({"url": secure_loopback, "events": ["*"]}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;

    // Registered while allowed (or before a DNS change): delivery checks again.
    for (id, url) in [
        ("wh_literal", receiver.url.replace("http://", "https://")),
        ("wh_named", secure_loopback),
    ] {
        sqlx::query("INSERT INTO webhooks (id, organization_id, livemode, url, events, secret) VALUES ($1, $2, false, $3, '{*}', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')")
            .bind(id)
            .bind(app.org.id)
            .bind(url)
            .execute(&app.db)
            .await
            .unwrap();
    }
    book_once(&app, &key).await;
    for webhook in ["wh_literal", "wh_named"] {
        let log = attempts_until(&app, &key, webhook, |list| !list.is_empty()).await;
        assert!(log[0]["statusCode"].is_null(), "{webhook}: {log:?}");
        assert!(
            log[0]["error"].as_str().unwrap().contains("not allowed")
                || log[0]["error"].as_str().unwrap().contains("forbidden"),
            "{webhook}: {log:?}"
        );
    }
    assert!(
        receiver.received().is_empty(),
        "nothing reached the internal address"
    );
}
