//! `/metrics` and the access log. The metrics recorder is global to a process, and this test
//! process runs many servers, so the exact counts are read from the real binary in a child
//! process of its own: nothing but this test's traffic reaches it.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moncreneau::routes::admin::json::OrganizationCreated;
use moncreneau::routes::appointments::json::Appointment;
use moncreneau::routes::departments::json::Department;
use prom_text_format_parser::{Scrape, Type, ValueType};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::contract::ContractClient;
use crate::helpers::{expect_error, expect_status, slot, TestDatabase, ADMIN_TOKEN};
use crate::receiver::Receiver;
use crate::typed::read;

const WAIT: Duration = Duration::from_secs(30);

/// The binary serving on a database of its own, every line it writes kept.
struct Server {
    _child: tokio::process::Child,
    address: String,
    /// Standard error and standard output, in arrival order.
    lines: Arc<Mutex<Vec<String>>>,
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
            lines,
        }
    }

    fn log(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
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

    /// Parses what this test process's recorder holds.
    fn of_this_process() -> Self {
        let text = moncreneau::metrics::install().render();
        if text.trim().is_empty() {
            // Nothing recorded yet in this process (the parser wants at least one line).
            return Self(Scrape {
                metrics: Vec::new(),
            });
        }
        Self(Scrape::parse(&text).unwrap_or_else(|error| panic!("{error:?}\n{text}")))
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

const BOOKING_ROUTE: [(&str, &str); 3] = [
    ("route", "/api/v1/appointments"),
    ("method", "POST"),
    ("status", "201"),
];

#[tokio::test]
async fn metrics_count_exactly_what_a_server_did_and_the_access_log_names_each_request() {
    let database = TestDatabase::create().await;
    let receiver = Receiver::start(vec![]).await;
    let server = Server::start(&database).await;
    let base = server.address.clone();
    let client = ContractClient::new(reqwest::Client::new());

    // An organization with one live credit, a webhook and a department, in live mode.
    let created = client
        .post(format!("{base}/api/v1/admin/organizations"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "Metered", "liveCredits": 1}))
        .send()
        .await
        .unwrap();
    let org: OrganizationCreated = read(created).await.json(StatusCode::CREATED);
    let live = org
        .api_keys
        .iter()
        .find(|key| key.mode == "live")
        .unwrap_or_else(|| panic!("a live key in {org:?}"));
    let (key, key_id) = (live.key.clone(), live.id.clone());
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
    let created = post("/departments", department).await.unwrap();
    let department: Department = read(created).await.json(StatusCode::CREATED);
    let department = department.id;

    let before = Metrics::scrape(&client, &format!("{base}/metrics")).await;

    // One booking (the only credit), one refused for want of credits, one delivery.
    let booking =
        |time: &str| json!({"departmentId": department, "dateTime": slot(2, time), "name": "M"});
    let booked = post("/appointments", booking("09:00")).await.unwrap();
    let request_id = booked.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let booked: Appointment = read(booked).await.json(StatusCode::CREATED);
    expect_error(
        post("/appointments", booking("09:30")).await.unwrap(),
        StatusCode::PAYMENT_REQUIRED,
        "INSUFFICIENT_CREDITS",
    )
    .await;
    let id = booked.id;
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
    let wrong_method = client
        .request(reqwest::Method::PUT, format!("{base}/api/v1/appointments"))
        .send()
        .await
        .unwrap();
    expect_error(
        wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
    )
    .await;
    let delivered = receiver.wait_for(1, WAIT).await.len();

    // The attempt is counted once the receiver has answered, and the delivery leaves the
    // queue once its outcome is recorded just after: wait for both, bounded.
    let deadline = Instant::now() + WAIT;
    let after = loop {
        let after = Metrics::scrape(&client, &format!("{base}/api/v1/metrics")).await;
        let attempts = [("outcome", "success")];
        let attempted = after.counter("moncreneau_webhook_attempts_total", &attempts)
            > before.counter("moncreneau_webhook_attempts_total", &attempts);
        if attempted && after.gauge("moncreneau_webhook_deliveries_pending") == Some(0.0) {
            break after;
        }
        assert!(
            Instant::now() < deadline,
            "the delivery was not settled in time"
        );
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
    assert_eq!(moved("moncreneau_http_requests_total", &BOOKING_ROUTE), 1.0);
    assert_eq!(
        moved(
            "moncreneau_http_requests_total",
            &[
                ("route", "/api/v1/appointments"),
                ("method", "POST"),
                ("status", "402")
            ]
        ),
        1.0
    );
    assert_eq!(
        after.histogram_count("moncreneau_http_request_duration_seconds", &BOOKING_ROUTE)
            - before.histogram_count("moncreneau_http_request_duration_seconds", &BOOKING_ROUTE),
        1.0
    );
    assert_eq!(
        after.histogram_count("moncreneau_webhook_delivery_lag_seconds", &[])
            - before.histogram_count("moncreneau_webhook_delivery_lag_seconds", &[]),
        delivered as f64
    );
    // Routes are labelled by template, never by raw path: one series for every appointment,
    // one for every path that matches no route.
    let template = [
        ("route", "/api/v1/appointments/{id}"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert_eq!(moved("moncreneau_http_requests_total", &template), 1.0);
    let unmatched = [("route", "unmatched"), ("method", "GET"), ("status", "404")];
    assert_eq!(moved("moncreneau_http_requests_total", &unmatched), 1.0);
    let refused_method = [
        ("route", "/api/v1/appointments"),
        ("method", "PUT"),
        ("status", "405"),
    ];
    assert_eq!(
        moved("moncreneau_http_requests_total", &refused_method),
        1.0
    );
    let raw_paths = [format!("/appointments/{id}"), format!("/nowhere/{id}")];
    assert!(
        after
            .0
            .metrics
            .iter()
            .flat_map(|m| &m.samples)
            .all(|sample| sample
                .labels
                .iter()
                .all(|label| raw_paths.iter().all(|raw| !label.value.contains(raw)))),
        "a raw path became a label"
    );
    assert!(moved("moncreneau_http_requests_total", &[("route", "/metrics")]) >= 1.0);
    for gauge in [
        "moncreneau_db_pool_connections_in_use",
        "moncreneau_db_pool_connections_idle",
        "moncreneau_db_pool_waiting",
    ] {
        assert!(after.gauge(gauge).is_some(), "{gauge} is exposed");
    }
    assert_eq!(after.gauge("moncreneau_db_pool_connections_max"), Some(4.0));
    assert!(after.histogram_count("moncreneau_db_pool_acquire_seconds", &[]) >= 2.0);

    // The access log: one JSON line for the booking, found by the request id it was answered.
    // The line is written before the response leaves; reading the child's pipe may lag.
    let deadline = Instant::now() + WAIT;
    while !server.log().iter().any(|line| line.contains(&request_id)) {
        assert!(Instant::now() < deadline, "no line for {request_id}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = server.log();
    let access: Vec<Value> = log
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| entry["target"] == "moncreneau::access")
        .collect();
    let lines: Vec<&Value> = access
        .iter()
        .filter(|entry| entry["fields"]["request_id"] == request_id.as_str())
        .collect();
    assert_eq!(lines.len(), 1, "one access line per request: {lines:?}");
    let fields = &lines[0]["fields"];
    assert_eq!(lines[0]["level"], "INFO");
    assert_eq!(fields["method"], "POST");
    assert_eq!(fields["route"], "/api/v1/appointments");
    assert_eq!(fields["status"], 201);
    assert!(fields["latency_ms"].as_f64().unwrap() > 0.0, "{fields}");
    assert_eq!(fields["key_id"], key_id.as_str());
    let scrape_line = access
        .iter()
        .find(|entry| entry["fields"]["route"] == "/metrics")
        .expect("scrapes are logged too");
    assert!(
        scrape_line["fields"].get("key_id").is_none(),
        "no key, no key id: {scrape_line}"
    );
    for line in &log {
        assert!(!line.contains(&key), "the API key is in the log: {line}");
    }
}

/// A log writer into memory, for the test's own subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn panics() -> &'static str {
    let items: Vec<&str> = Vec::new();
    items[usize::from(items.is_empty())]
}

async fn dawdles() -> &'static str {
    tokio::time::sleep(Duration::from_secs(10)).await;
    "too late"
}

/// A request that panics and one that outlives the request timeout are counted and logged with
/// the status they were answered (500, 503), not lost with the work they abandoned. The real
/// middleware stack around two routes of this test only, whose templates no other test uses, so
/// the shared recorder of this process gives exact counts.
#[tokio::test]
async fn a_panic_and_a_timeout_are_counted_and_logged_with_the_status_answered() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    // This thread only: the server below runs on this test's single-threaded runtime.
    let _logging = tracing::subscriber::set_default(subscriber);

    let database = TestDatabase::create().await;
    let mut settings = crate::helpers::test_settings(&database.url());
    settings.request_timeout = Duration::from_millis(300);
    let pool = moncreneau::database::connect_and_migrate(&settings)
        .await
        .unwrap();
    let sender = moncreneau::webhooks::sender::Sender::new(&settings).unwrap();
    let state = moncreneau::state::AppState::new(pool, settings, sender);
    let routes = axum::Router::new()
        .route("/metrics-probe/panics", axum::routing::get(panics))
        .route("/metrics-probe/dawdles", axum::routing::get(dawdles));
    let router = moncreneau::startup::with_middleware(routes, state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let client = reqwest::Client::new();
    // The access line's callsite may have been registered by another test's thread while this
    // test's subscriber was being set, its interest cached as "never": one request registers it
    // for sure, then every callsite's interest is computed again with this subscriber in place.
    client
        .get(format!("http://{address}/metrics-probe/warm-up"))
        .send()
        .await
        .unwrap();
    tracing::callsite::rebuild_interest_cache();
    let before = Metrics::of_this_process();
    for (path, status) in [("panics", 500), ("dawdles", 503)] {
        let response = client
            .get(format!("http://{address}/metrics-probe/{path}"))
            .header("X-Request-Id", format!("probe-{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
    }
    let after = Metrics::of_this_process();

    let written = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    for (path, status, code) in [
        ("panics", "500", "INTERNAL_ERROR"),
        ("dawdles", "503", "SERVICE_UNAVAILABLE"),
    ] {
        let route = format!("/metrics-probe/{path}");
        let labels = [
            ("route", route.as_str()),
            ("method", "GET"),
            ("status", status),
        ];
        assert_eq!(
            after.counter("moncreneau_http_requests_total", &labels)
                - before.counter("moncreneau_http_requests_total", &labels),
            1.0,
            "{path}"
        );
        assert_eq!(
            after.histogram_count("moncreneau_http_request_duration_seconds", &labels)
                - before.histogram_count("moncreneau_http_request_duration_seconds", &labels),
            1.0,
            "{path}"
        );
        // Other tests of this process answer such errors too: at least this one is counted.
        assert!(
            after.counter("moncreneau_error_responses_total", &[("code", code)])
                > before.counter("moncreneau_error_responses_total", &[("code", code)]),
            "{code}"
        );
        let line: Value = written
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|entry| {
                entry["target"] == "moncreneau::access"
                    && entry["fields"]["request_id"] == format!("probe-{path}")
            })
            .unwrap_or_else(|| panic!("no access line for {path}: {written}"));
        assert_eq!(line["fields"]["route"], route.as_str());
        assert_eq!(line["fields"]["status"].to_string(), status);
    }
}
