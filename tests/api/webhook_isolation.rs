//! One tenant's dead receivers never delay another tenant's webhooks: a receiver that hangs,
//! refuses connections or answers 500 costs its own deliveries their time and nobody else's; a
//! failing endpoint backs off as a whole (its circuit) and drains its backlog once back.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::helpers::{
    expect_status, register_webhook, slot, spawn_app_with, start_server, test_settings, Org,
    TestApp, TestDatabase,
};
use crate::receiver::{Hostile, HostileReceiver, Receiver};

/// How long a dead receiver holds each attempt.
const DEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// What a healthy tenant's receiver may wait for any event, whatever the dead ones do.
const HEALTHY_BOUND: Duration = Duration::from_secs(2);

async fn app_with_slow_timeout(processes: usize) -> (TestApp, Vec<String>) {
    let database = TestDatabase::create().await;
    let mut settings = test_settings(&database.url());
    settings.webhook_timeout = DEAD_TIMEOUT;
    let app = spawn_app_with(database, settings.clone()).await;
    let mut others = Vec::new();
    for _ in 1..processes {
        others.push(start_server(settings.clone()).await);
    }
    (app, others)
}

/// An address where nothing listens: connections are refused.
async fn refusing_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/hooks")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// Books `count` times at `every`, on the server processes `bases` in turn; answers each
/// appointment id with the instant its 201 arrived (the booking committed before it).
async fn book_steadily(
    app: &TestApp,
    bases: &[String],
    key: &str,
    department: i64,
    count: usize,
    every: Duration,
) -> Vec<(i64, Instant)> {
    let mut booked = Vec::new();
    let mut ticker = tokio::time::interval(every);
    for base in bases.iter().cycle().take(count) {
        ticker.tick().await;
        let response = app
            .client
            .post(format!("{base}/api/v1/appointments"))
            .header("X-API-Key", key)
            .json(&json!({"departmentId": department, "dateTime": slot(3, "09:00"), "name": "Steady"}))
            .send()
            .await
            .unwrap();
        let body = expect_status(response, StatusCode::CREATED).await;
        booked.push((body["id"].as_i64().unwrap(), Instant::now()));
    }
    booked
}

/// A second organization whose receiver answers at once: its key, receiver and department.
async fn healthy_tenant(app: &TestApp) -> (Org, Receiver, i64) {
    let healthy = app.create_org("Healthy clinic", 0).await;
    let receiver = Receiver::start(vec![]).await;
    register_webhook(
        app,
        &healthy.test_key,
        &receiver.url,
        json!(["appointment.created"]),
    )
    .await;
    let department = app.create_department(&healthy.test_key, 100).await;
    (healthy, receiver, department)
}

/// Per appointment id: the instants its `appointment.created` event reached `receiver`.
fn arrivals(receiver: &Receiver) -> HashMap<i64, Vec<Instant>> {
    let mut arrivals: HashMap<i64, Vec<Instant>> = HashMap::new();
    for request in receiver.received() {
        let event = request.json();
        if event["type"] == "appointment.created" {
            let id = event["data"]["object"]["id"].as_i64().unwrap();
            arrivals.entry(id).or_default().push(request.at);
        }
    }
    arrivals
}

/// A tenant with ten dead receivers (four silent, three refusing connections, three answering
/// 500) books 3 times a second while a healthy tenant books 20 times a second on `processes`
/// server processes; every healthy event must arrive once, within the bound.
async fn healthy_tenant_beside_dead_ones(processes: usize) {
    let (app, others) = app_with_slow_timeout(processes).await;
    let dead_key = app.org.test_key.clone();
    let (healthy, receiver, healthy_department) = healthy_tenant(&app).await;
    let mut silent = Vec::new();
    let mut failing = Vec::new();
    let mut dead_urls = Vec::new();
    for _ in 0..4 {
        let receiver = HostileReceiver::start(Hostile::Silent).await;
        dead_urls.push(receiver.url.clone());
        silent.push(receiver);
    }
    for _ in 0..3 {
        dead_urls.push(refusing_url().await);
        let receiver = Receiver::start(vec![]).await;
        receiver.answer_otherwise(500);
        dead_urls.push(receiver.url.clone());
        failing.push(receiver);
    }
    for url in &dead_urls {
        register_webhook(&app, &dead_key, url, json!(["*"])).await;
    }
    let dead_department = app.create_department(&dead_key, 100).await;
    let bases: Vec<String> = std::iter::once(app.address.clone()).chain(others).collect();

    // Act: both tenants book side by side, the healthy one over every process in turn.
    let (_, healthy_bookings) = tokio::join!(
        book_steadily(
            &app,
            &bases[..1],
            &dead_key,
            dead_department,
            12,
            Duration::from_millis(333)
        ),
        book_steadily(
            &app,
            &bases,
            &healthy.test_key,
            healthy_department,
            60,
            Duration::from_millis(50)
        ),
    );
    let expected = healthy_bookings.len();
    receiver.wait_for(expected, Duration::from_secs(20)).await;
    // No duplicate can follow once every healthy delivery is settled: each after exactly one
    // attempt (the worker records a success just after the receiver answered it).
    let settle_by = Instant::now() + Duration::from_secs(5);
    let (unsettled, attempts) = loop {
        let (unsettled, attempts): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE d.status <> 'SUCCEEDED'), coalesce(sum(d.attempts), 0)
               FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
              WHERE w.url = $1",
        )
        .bind(&receiver.url)
        .fetch_one(&app.db)
        .await
        .unwrap();
        if unsettled == 0 || Instant::now() > settle_by {
            break (unsettled, attempts);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        (unsettled, attempts),
        (0, expected as i64),
        "healthy deliveries left to settle, or attempted twice"
    );

    // Assert: each event once, each within the bound.
    let arrivals = arrivals(&receiver);
    let mut latencies = Vec::new();
    for (id, committed) in &healthy_bookings {
        let times = arrivals.get(id).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            times.len(),
            1,
            "appointment {id} was delivered {} times",
            times.len()
        );
        latencies.push(times[0].saturating_duration_since(*committed));
    }
    latencies.sort();
    let (p50, p99, max) = (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
    );
    println!(
        "healthy tenant beside 10 dead receivers ({processes} process(es)): {expected} events, \
         p50 {p50:?}, p99 {p99:?}, max {max:?}"
    );
    assert!(
        max <= HEALTHY_BOUND,
        "an event took {max:?} (p50 {p50:?}, p99 {p99:?})"
    );

    // Each attempt is made once: the failing receivers got exactly the attempts logged for them.
    let failing_urls: Vec<String> = failing.iter().map(|r| r.url.clone()).collect();
    let (logged, in_flight): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM webhook_attempts a
                   JOIN webhook_deliveries d ON d.id = a.delivery_id
                   JOIN webhooks w ON w.id = d.webhook_id
                  WHERE w.url = ANY($1)),
                (SELECT count(*) FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
                  WHERE w.url = ANY($1) AND d.locked_until > now())",
    )
    .bind(&failing_urls)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let requests: i64 = failing.iter().map(|r| r.received().len() as i64).sum();
    assert!(
        (logged..=logged + in_flight).contains(&requests),
        "the failing receivers got {requests} requests for {logged} logged attempts ({in_flight} in flight)"
    );
    assert!(
        silent.iter().all(|r| r.requests() >= 1),
        "every silent receiver was tried"
    );
}

#[tokio::test]
async fn a_healthy_tenant_is_served_promptly_beside_dead_receivers() {
    healthy_tenant_beside_dead_ones(1).await;
}

#[tokio::test]
async fn the_same_holds_over_two_server_processes_with_each_attempt_made_once() {
    healthy_tenant_beside_dead_ones(2).await;
}

async fn circuit_of(app: &TestApp, key: &str, webhook: &str) -> Value {
    let body = expect_status(
        app.get(&format!("/webhooks/{webhook}"), key).await,
        StatusCode::OK,
    )
    .await;
    body["circuit"].clone()
}

#[tokio::test]
async fn a_receiver_down_then_back_gets_its_whole_backlog_while_others_are_served() {
    let database = TestDatabase::create().await;
    let mut settings = test_settings(&database.url());
    // A schedule long enough that no delivery runs out of attempts during the outage.
    settings.webhook_retry_schedule = vec![Duration::from_millis(200); 30];
    settings.webhook_circuit_failures = 3;
    settings.webhook_circuit_probe = Duration::from_millis(400);
    let app = spawn_app_with(database, settings).await;
    let key = app.org.test_key.clone();
    let (healthy, receiver, healthy_department) = healthy_tenant(&app).await;
    let down = Receiver::start(vec![]).await;
    down.answer_otherwise(503);
    let webhook = register_webhook(&app, &key, &down.url, json!(["*"]))
        .await
        .webhook
        .id;
    let department = app.create_department(&key, 100).await;

    // Act: ten appointments, five of them then renamed (two events each), while the receiver is
    // down; the healthy tenant books meanwhile.
    let mut ids = Vec::new();
    for n in 0..10 {
        let body = expect_status(
            app.book(&key, department, &slot(3, "10:00")).await,
            StatusCode::CREATED,
        )
        .await;
        let id = body["id"].as_i64().unwrap();
        if n % 2 == 0 {
            let renamed = app
                .patch(
                    &format!("/appointments/{id}"),
                    &key,
                    &json!({"name": format!("Renamed {n}")}),
                )
                .await;
            expect_status(renamed, StatusCode::OK).await;
        }
        ids.push(id);
    }
    let healthy_bookings = book_steadily(
        &app,
        std::slice::from_ref(&app.address),
        &healthy.test_key,
        healthy_department,
        10,
        Duration::from_millis(100),
    )
    .await;

    // The endpoint's circuit opens: its queued deliveries wait for the next probe instead of
    // being tried one by one.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let circuit = circuit_of(&app, &key, &webhook).await;
        if circuit["state"] != "CLOSED" {
            assert!(
                circuit["consecutiveFailures"].as_i64().unwrap() >= 3,
                "{circuit}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the circuit never opened: {circuit}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Operators see the queue held by the circuit.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let exposition = app
            .client
            .get(format!("{}/metrics", app.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let held: f64 = exposition
            .lines()
            .filter(|line| {
                line.starts_with(
                    "moncreneau_webhook_deliveries_pending_by_circuit{circuit=\"OPEN\"}",
                ) || line.starts_with(
                    "moncreneau_webhook_deliveries_pending_by_circuit{circuit=\"HALF_OPEN\"}",
                )
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if held > 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no pending delivery shown behind a circuit"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tried_while_down = down.received().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tried_later = down.received().len() - tried_while_down;
    assert!(
        tried_later <= 6,
        "{tried_later} attempts in 2 s with the circuit open: only probes should go out"
    );
    // The attempt log says which attempts the circuit held, and when they were due.
    let log = expect_status(
        app.get(&format!("/webhooks/{webhook}/deliveries?size=100"), &key)
            .await,
        StatusCode::OK,
    )
    .await;
    let attempts = log["content"].as_array().unwrap();
    assert!(
        attempts.iter().all(|attempt| attempt["dueAt"].is_string()),
        "{log}"
    );
    let waited = attempts
        .iter()
        .filter(|attempt| attempt["waitedFor"] == "CIRCUIT_OPEN")
        .count();
    assert!(waited >= 1, "no attempt says it waited for the circuit");
    let arrivals_healthy = arrivals(&receiver);
    for (id, committed) in &healthy_bookings {
        let at = arrivals_healthy
            .get(id)
            .and_then(|times| times.first())
            .copied();
        let at =
            at.unwrap_or_else(|| panic!("appointment {id} of the healthy tenant not delivered"));
        assert!(at.saturating_duration_since(*committed) <= HEALTHY_BOUND);
    }

    // The receiver comes back: the whole backlog arrives, each appointment's events numbered
    // 1..n by `sequence`, so a receiver can order them.
    down.answer_otherwise(200);
    // While the backlog drains, the healthy tenant is still served at once.
    let draining = book_steadily(
        &app,
        std::slice::from_ref(&app.address),
        &healthy.test_key,
        healthy_department,
        10,
        Duration::from_millis(50),
    )
    .await;
    receiver
        .wait_for(
            healthy_bookings.len() + draining.len(),
            Duration::from_secs(5),
        )
        .await;
    let arrivals_healthy = arrivals(&receiver);
    for (id, committed) in &draining {
        let at = arrivals_healthy[id][0];
        assert!(
            at.saturating_duration_since(*committed) <= HEALTHY_BOUND,
            "appointment {id} of the healthy tenant waited for the backlog"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1 AND status <> 'SUCCEEDED'",
        )
        .bind(&webhook)
        .fetch_one(&app.db)
        .await
        .unwrap();
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} deliveries still not done"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let succeeded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1 AND status = 'SUCCEEDED'",
    )
    .bind(&webhook)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(succeeded, 15, "10 created + 5 updated events");
    let mut delivered: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for request in down.received() {
        let event = request.json();
        let id = event["data"]["object"]["id"].as_i64().unwrap();
        delivered
            .entry(id)
            .or_default()
            .push(event["sequence"].as_i64().unwrap());
    }
    for (n, id) in ids.iter().enumerate() {
        let mut sequences = delivered.remove(id).unwrap_or_default();
        sequences.sort();
        sequences.dedup();
        let expected: Vec<i64> = if n % 2 == 0 { vec![1, 2] } else { vec![1] };
        assert_eq!(sequences, expected, "appointment {id}");
    }
    let circuit = circuit_of(&app, &key, &webhook).await;
    assert_eq!(circuit["state"], "CLOSED", "{circuit}");
}

#[tokio::test]
async fn a_commit_on_one_process_wakes_the_worker_of_another_at_once() {
    let database = TestDatabase::create().await;
    let mut settings = test_settings(&database.url());
    // Polling alone would take a minute: only the wake-up on commit can be this prompt.
    settings.webhook_poll_interval = Duration::from_secs(60);
    let mut api_only = settings.clone();
    api_only.webhook_worker = false;
    let app = spawn_app_with(database, api_only).await;
    let _delivering = start_server(settings).await;
    let key = app.org.test_key.clone();
    let receiver = Receiver::start(vec![]).await;
    register_webhook(&app, &key, &receiver.url, json!(["appointment.created"])).await;
    let department = app.create_department(&key, 100).await;

    let bookings = book_steadily(
        &app,
        std::slice::from_ref(&app.address),
        &key,
        department,
        5,
        Duration::from_millis(200),
    )
    .await;

    receiver.wait_for(5, Duration::from_secs(5)).await;
    let arrivals = arrivals(&receiver);
    for (id, committed) in bookings {
        let at = arrivals[&id][0];
        assert!(
            at.saturating_duration_since(committed) < Duration::from_secs(1),
            "appointment {id} arrived {:?} after its commit",
            at.saturating_duration_since(committed)
        );
    }
}
