//! `/metrics`. The metrics recorder is global to a process, and this test
//! process runs many servers, so the exact counts are read from the real binary in a child
//! process of its own: nothing but this test's traffic reaches it.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prom_text_format_parser::{Scrape, Type, ValueType};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::contract::ContractClient;
use crate::helpers::{expect_error, expect_status, slot, TestDatabase, ADMIN_TOKEN};
use crate::receiver::Receiver;

const WAIT: Duration = Duration::from_secs(30);

/// The binary serving on a database of its own, every line it writes kept.
struct Server {
    _child: tokio::process::Child,
    address: String,
    /// Standard error and standard output, in arrival order.
    _lines: Arc<Mutex<Vec<String>>>,
}

fn keep_lines(stream: impl AsyncRead + Unpin + Send + 'static, lines: Arc<Mutex<Vec<String>>>) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            lines.lock().unwrap().push(line);
        }
    });
}

impl Server {
    async fn start(database: &TestDatabase) -> Self {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_moncreneau"))
            .arg("serve")
            .env("DATABASE_URL", database.url())
            .env("MONCRENEAU_ADDR", "127.0.0.1:0")
            .env("MONCRENEAU_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("MONCRENEAU_WEBHOOK_ALLOW_PRIVATE", "true")
            .env("MONCRENEAU_WEBHOOK_POLL_MS", "50")
            .env("MONCRENEAU_DATABASE_MAX_CONNECTIONS", "4")
            .env("MONCRENEAU_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        keep_lines(child.stderr.take().unwrap(), lines.clone());
        keep_lines(child.stdout.take().unwrap(), lines.clone());
        let deadline = Instant::now() + WAIT;
        let address = loop {
            let listening = lines.lock().unwrap().iter().find_map(|line| {
                let entry: Value = serde_json::from_str(line).ok()?;
                let address = entry["fields"]["address"].as_str()?;
                (entry["fields"]["message"] == "listening").then(|| format!("http://{address}"))
            });
            if let Some(address) = listening {
                break address;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not listen in time"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Self {
            _child: child,
            address,
            _lines: lines,
        }
    }
}

/// One parsed scrape of `/metrics`.
struct Metrics(Scrape);

impl Metrics {
    async fn scrape(client: &ContractClient, url: &str) -> Self {
        let response = client.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let text = response.text().await.unwrap();
        // Strict: any line that is not valid exposition format fails the parse.
        let scrape = Scrape::parse(&text)
            .unwrap_or_else(|error| panic!("the exposition does not parse: {error:?}\n{text}"));
        Self(scrape)
    }

    /// The value of the sample of `name` (of type `kind`) whose labels include `labels`, of the
    /// given sample type (`Count` for a histogram's count); 0 when absent, as Prometheus reads
    /// a counter not yet incremented.
    fn value(&self, name: &str, kind: Type, part: ValueType, labels: &[(&str, &str)]) -> f64 {
        let matching: Vec<f64> = self
            .0
            .metrics
            .iter()
            .filter(|metric| metric.name == name)
            .inspect(|metric| assert_eq!(metric.kind, kind, "{name}"))
            .flat_map(|metric| &metric.samples)
            .filter(|sample| sample.value.value_type == part)
            .filter(|sample| {
                labels.iter().all(|(key, value)| {
                    sample
                        .labels
                        .iter()
                        .any(|label| label.key == *key && label.value == *value)
                })
            })
            .map(|sample| sample.value.value.as_f64())
            .collect();
        assert!(matching.len() <= 1, "{name} {labels:?}: {matching:?}");
        matching.first().copied().unwrap_or(0.0)
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, Type::Counter, ValueType::Sample, labels)
    }

    fn gauge(&self, name: &str) -> Option<f64> {
        self.0
            .metrics
            .iter()
            .find(|metric| metric.name == name && metric.kind == Type::Gauge)
            .map(|_| self.value(name, Type::Gauge, ValueType::Sample, &[]))
    }

    fn histogram_count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, Type::Histogram, ValueType::Count, labels)
    }
}

#[tokio::test]
async fn metrics_count_exactly_what_a_server_did() {
    let database = TestDatabase::create().await;
    let receiver = Receiver::start(vec![]).await;
    let server = Server::start(&database).await;
    let base = server.address.clone();
    let client = ContractClient::new(reqwest::Client::new());

    // An organization with one live credit, a webhook and a department, in live mode.
    let org = expect_status(
        client
            .post(format!("{base}/api/v1/admin/organizations"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": "Metered", "liveCredits": 1}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let live = org["apiKeys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["mode"] == "live")
        .unwrap();
    let key = live["key"].as_str().unwrap().to_owned();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{base}/api/v1{path}"))
            .header("X-API-Key", &key)
            .json(&body)
            .send()
    };
    let webhook = json!({"url": receiver.url, "events": ["appointment.created"]});
    expect_status(
        post("/webhooks", webhook).await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let day = json!([{"start": "08:00", "end": "12:00"}]);
    let hours = json!({"monday": day, "tuesday": day, "wednesday": day, "thursday": day,
                       "friday": day, "saturday": day, "sunday": day});
    let department = json!({"name": "D", "timezone": "UTC", "capacity": 5, "openingHours": hours});
    let department = expect_status(
        post("/departments", department).await.unwrap(),
        StatusCode::CREATED,
    )
    .await["id"]
        .clone();

    let before = Metrics::scrape(&client, &format!("{base}/metrics")).await;

    // One booking (the only credit), one refused for want of credits, one delivery.
    let booking =
        |time: &str| json!({"departmentId": department, "dateTime": slot(2, time), "name": "M"});
    let booked = post("/appointments", booking("09:00")).await.unwrap();
    let booked = expect_status(booked, StatusCode::CREATED).await;
    expect_error(
        post("/appointments", booking("09:30")).await.unwrap(),
        StatusCode::PAYMENT_REQUIRED,
        "INSUFFICIENT_CREDITS",
    )
    .await;
    let id = booked["id"].as_i64().unwrap();
    let read = client
        .get(format!("{base}/api/v1/appointments/{id}"))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    expect_status(read, StatusCode::OK).await;
    let stray = client
        .get(format!("{base}/api/v1/nowhere/{id}"))
        .send()
        .await
        .unwrap();
    expect_error(stray, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let delivered = receiver.wait_for(1, WAIT).await.len();

    // The attempt is counted once the receiver has answered: wait for it, bounded.
    let deadline = Instant::now() + WAIT;
    let after = loop {
        let after = Metrics::scrape(&client, &format!("{base}/api/v1/metrics")).await;
        let attempts = [("outcome", "success")];
        if after.counter("moncreneau_webhook_attempts_total", &attempts)
            > before.counter("moncreneau_webhook_attempts_total", &attempts)
        {
            break after;
        }
        assert!(Instant::now() < deadline, "no attempt counted in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let moved = |name: &str, labels: &[(&str, &str)]| {
        after.counter(name, labels) - before.counter(name, labels)
    };
    assert_eq!(moved("moncreneau_bookings_created_total", &[]), 1.0);
    assert_eq!(
        moved(
            "moncreneau_error_responses_total",
            &[("code", "INSUFFICIENT_CREDITS")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "moncreneau_webhook_attempts_total",
            &[("outcome", "success")]
        ),
        delivered as f64
    );
    assert_eq!(
        after.histogram_count("moncreneau_webhook_delivery_lag_seconds", &[])
            - before.histogram_count("moncreneau_webhook_delivery_lag_seconds", &[]),
        delivered as f64
    );
    assert_eq!(
        after.gauge("moncreneau_webhook_deliveries_pending"),
        Some(0.0)
    );
    for gauge in [
        "moncreneau_db_pool_connections_in_use",
        "moncreneau_db_pool_connections_idle",
        "moncreneau_db_pool_waiting",
    ] {
        assert!(after.gauge(gauge).is_some(), "{gauge} is exposed");
    }
    assert_eq!(after.gauge("moncreneau_db_pool_connections_max"), Some(4.0));
    assert!(after.histogram_count("moncreneau_db_pool_acquire_seconds", &[]) >= 2.0);
}
