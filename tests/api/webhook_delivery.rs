//! Delivery: retries on schedule, timeouts, 410, giving up, several processes, a killed process,
//! rolled-back changes, and the address guard at delivery time.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    attempts, attempts_until, book_once, expect_json, expect_status, pending_deliveries,
    register_webhook, slot, spawn_app, spawn_app_without_worker, test_settings, worker_of, TestApp,
    TestDatabase, ADMIN_TOKEN,
};
use crate::receiver::{Receiver, Reply};
use moncreneau::events::Envelope;
use moncreneau::routes::webhooks::json::{RetryQueued, Webhook};

const WAIT: Duration = Duration::from_secs(15);

/// Registers a webhook for `appointment.created` to `receiver`, then books once; answers the
/// webhook's id.
async fn subscribe_and_book(app: &TestApp, key: &str, receiver: &Receiver) -> String {
    let webhook = register_webhook(app, key, &receiver.url, json!(["appointment.created"])).await;
    book_once(app, key).await;
    webhook.webhook.id
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
    let ids: Vec<String> = received.iter().map(|r| r.event::<Value>().id).collect();
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
    let statuses: Vec<Option<i32>> = log.iter().map(|a| a.status_code).collect();
    assert_eq!(statuses, [Some(500), Some(500), Some(200)]);
    assert_eq!(log.iter().map(|a| a.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(log[0].next_retry_at.is_some() && log[0].error.is_some());
    assert!(log[2].next_retry_at.is_none() && log[2].error.is_none());
    assert_eq!(log[2].delivery_status, "SUCCEEDED");
    // Nothing is queued any more, and a worker finds nothing due: nothing more can be sent.
    assert_eq!(pending_deliveries(&app).await, 0);
    assert_eq!(worker_of(&app).deliver_due().await.unwrap(), 0);
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

    assert_eq!(log[0].error.as_deref(), Some("timed out"));
    assert_eq!(log[0].status_code, None);
    let duration = log[0].duration_ms;
    assert!(
        (400..1500).contains(&duration),
        "the attempt lasted {duration} ms"
    );
    eprintln!("timed-out attempt lasted {duration} ms (timeout 400 ms)");
    assert_eq!(log[1].status_code, Some(200));
}

#[tokio::test]
async fn gone_disables_the_webhook_and_stops_deliveries() {
    // The test drives the queue itself: every attempt is one it asked for.
    let app = spawn_app_without_worker().await;
    let worker = worker_of(&app);
    let key = app.org.test_key.clone();
    let receiver = Receiver::start(vec![Reply::status(410)]).await;
    let webhook = register_webhook(&app, &key, &receiver.url, json!(["*"]))
        .await
        .webhook
        .id;
    let department = app.create_department(&key, 2).await;
    expect_status(
        app.book(&key, department, &slot(2, "10:00")).await,
        StatusCode::CREATED,
    )
    .await;

    assert_eq!(worker.deliver_due().await.unwrap(), 1);

    let log = attempts(&app, &key, &webhook).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status_code, Some(410));
    assert_eq!(log[0].delivery_status, "FAILED");
    let state: Webhook = expect_json(
        app.get(&format!("/webhooks/{webhook}"), &key).await,
        StatusCode::OK,
    )
    .await;
    assert!(!state.active);
    assert!(state.disabled_reason.unwrap().contains("410"));

    expect_status(
        app.book(&key, department, &slot(2, "10:30")).await,
        StatusCode::CREATED,
    )
    .await;
    // A disabled endpoint gets no new delivery: nothing is queued, nothing is sent.
    assert_eq!(pending_deliveries(&app).await, 0);
    assert_eq!(worker.deliver_due().await.unwrap(), 0);
    assert_eq!(receiver.received().len(), 1, "no attempt after 410");
    assert_eq!(attempts(&app, &key, &webhook).await.len(), 1);
}

#[tokio::test]
async fn three_days_without_success_disable_the_webhook() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let receiver = Receiver::start(vec![Reply::status(500)]).await;
    let webhook = register_webhook(&app, &key, &receiver.url, json!(["appointment.created"]))
        .await
        .webhook
        .id;
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

    assert_eq!(log[0].delivery_status, "FAILED");
    let state: Webhook = expect_json(
        app.get(&format!("/webhooks/{webhook}"), &key).await,
        StatusCode::OK,
    )
    .await;
    assert!(!state.active);
    assert!(state.disabled_reason.unwrap().contains("3 days"));
    // Re-enabled, a manual retry of the delivery goes through.
    let enabled = app
        .request(
            reqwest::Method::PUT,
            &format!("/webhooks/{webhook}"),
            &key,
            Some(&json!({"active": true})),
        )
        .await;
    let enabled: Webhook = expect_json(enabled, StatusCode::OK).await;
    assert_eq!(enabled.disabled_reason, None);
    let delivery = &log[0].delivery_id;
    let retried: RetryQueued = expect_json(
        app.post(
            &format!("/webhooks/{webhook}/deliveries/{delivery}/retry"),
            &key,
            &json!({}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(
        (
            retried.status.as_str(),
            &retried.delivery_id,
            &retried.webhook_id
        ),
        ("PENDING", delivery, &webhook)
    );
    let log = attempts_until(&app, &key, &webhook, |list| list.len() == 2).await;
    assert_eq!(
        (log[1].status_code, log[1].delivery_status.as_str()),
        (Some(200), "SUCCEEDED")
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
        (log[0].status_code, log[0].delivery_status.as_str()),
        (Some(302), "SUCCEEDED")
    );
    assert_eq!(log[0].error.as_deref(), Some("receiver answered 302"));
    assert_eq!(
        log[1].status_code,
        Some(200),
        "retried at the registered address"
    );
    assert!(
        elsewhere.received().is_empty(),
        "the redirect target was never called"
    );
}

#[tokio::test]
async fn a_rolled_back_booking_sends_nothing() {
    // The test drives the queue itself: what it delivers is all there is.
    let app = spawn_app_without_worker().await;
    let org = app.create_org("Broke", 0).await;
    let key = org.live_key.clone();
    let receiver = Receiver::start(vec![]).await;
    register_webhook(&app, &key, &receiver.url, json!(["*"])).await;
    let department = app.create_department(&key, 2).await;
    let refused = app.book(&key, department, &slot(2, "10:00")).await;
    assert_eq!(refused.status(), StatusCode::PAYMENT_REQUIRED);
    let deliveries: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(deliveries, 0);

    // A later successful booking is the marker: its events are all the queue holds.
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
    let worker = worker_of(&app);
    assert_eq!(worker.deliver_due().await.unwrap(), 2);
    assert_eq!(worker.deliver_due().await.unwrap(), 0);
    assert_eq!(pending_deliveries(&app).await, 0);
    let received: Vec<Envelope<Value>> = receiver.received().iter().map(|r| r.event()).collect();
    let mut types: Vec<&str> = received.iter().map(|e| e.kind.as_str()).collect();
    types.sort_unstable();
    assert_eq!(types, ["appointment.created", "credits.depleted"]);
    let created = received
        .iter()
        .find(|e| e.kind == "appointment.created")
        .unwrap();
    assert_eq!(created.data["object"]["id"], booked["id"]);
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
    let pool = sqlx::PgPool::connect(&database.url()).await.unwrap();
    // Once every delivery is recorded, none can go out again (each attempt is claimed, and
    // counted, before it is sent).
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let settled: i64 =
            sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE status <> 'PENDING'")
                .fetch_one(&pool)
                .await
                .unwrap();
        if settled == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{settled} of 200 recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill().await.unwrap();
    second.kill().await.unwrap();

    let mut per_event: HashMap<String, usize> = HashMap::new();
    for request in receiver.received() {
        *per_event.entry(request.event::<Value>().id).or_default() += 1;
    }
    assert_eq!(received.len(), 200);
    assert_eq!(per_event.len(), 200, "200 distinct events");
    assert!(per_event.values().all(|n| *n == 1), "each exactly once");
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
        assert_eq!(log[0].status_code, None, "{webhook}: {log:?}");
        let error = log[0].error.as_deref().unwrap_or_default();
        assert!(
            error.contains("not allowed") || error.contains("forbidden"),
            "{webhook}: {log:?}"
        );
    }
    assert!(
        receiver.received().is_empty(),
        "nothing reached the internal address"
    );
}
