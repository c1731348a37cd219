//! Receivers that try to hurt the server: internal addresses in disguise, and (below) answers
//! too large or too slow to read. Each attack must be refused or cut short, and the server must
//! keep answering.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::helpers::{
    attempts_until, book_once, expect_json, expect_status, register_webhook, resident_kib,
    spawn_app, spawn_app_with, test_settings, TestApp, TestDatabase,
};
use crate::receiver::{Hostile, HostileReceiver};
use moncreneau::routes::webhooks::json::WebhookTestResult;

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

/// The most the server's memory may grow during one attack; the attacks below send 256 MB, or
/// would hold a connection for ever.
const MAX_GROWTH_MIB: u64 = 64;
/// The answer of the huge-body receivers.
const HUGE: u64 = 256 * 1024 * 1024;
/// What the server reads of an answer at most (`ANSWER_READ_CAP`).
const CAP: usize = 4096;

/// Attacks run one at a time, so that each one's memory measure is its own.
static ONE_ATTACK_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// Samples the resident memory every 2 ms on its own thread, so that a peak between the start
/// and the end of an attack is seen even when the memory is given back afterwards.
struct MemoryWatch {
    before: u64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<()>,
}

impl MemoryWatch {
    fn start() -> Self {
        let before = resident_kib();
        let peak = Arc::new(AtomicU64::new(before));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    peak.fetch_max(resident_kib(), Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        Self {
            before,
            peak,
            stop,
            sampler,
        }
    }

    /// Stops sampling, prints before / peak / after and asserts the peak growth is bounded.
    fn assert_bounded(self, attack: &str) {
        self.stop.store(true, Ordering::SeqCst);
        self.sampler.join().unwrap();
        let after = resident_kib();
        let peak = self.peak.load(Ordering::SeqCst).max(after);
        let mib = |kib: u64| kib as f64 / 1024.0;
        eprintln!(
            "{attack}: resident memory before {:.1} MiB, peak {:.1} MiB, after {:.1} MiB",
            mib(self.before),
            mib(peak),
            mib(after)
        );
        assert!(
            peak.saturating_sub(self.before) < MAX_GROWTH_MIB * 1024,
            "{attack}: memory grew from {:.1} MiB to {:.1} MiB",
            mib(self.before),
            mib(peak)
        );
    }
}

/// Asserts the server stopped reading early: the receiver got out less than an eighth of the
/// `meant` bytes it tried to send (the rest of what it got out sits in socket buffers).
fn assert_read_cut_short(receiver: &HostileReceiver, meant: u64) {
    eprintln!("the receiver got {} of {meant} bytes out", receiver.sent());
    assert!(
        receiver.sent() < meant / 8,
        "the server read {} bytes",
        receiver.sent()
    );
}

async fn assert_alive(app: &TestApp) {
    let health = app
        .client
        .get(format!("{}/health", app.address))
        .send()
        .await
        .expect("the server answers");
    expect_status(health, StatusCode::OK).await;
}

async fn send_test_event(app: &TestApp, webhook: &str) -> WebhookTestResult {
    expect_json(
        app.post(
            &format!("/webhooks/{webhook}/test"),
            &app.org.test_key,
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await
}

/// Sends a test event to a receiver answering as `hostile` says, watching the memory meanwhile;
/// answers the receiver and the test result.
async fn test_event_under_watch(
    app: &TestApp,
    hostile: Hostile,
    attack: &str,
) -> (HostileReceiver, WebhookTestResult) {
    let receiver = HostileReceiver::start(hostile).await;
    let webhook = register_webhook(app, &app.org.test_key, &receiver.url, json!(["*"]))
        .await
        .webhook
        .id;
    let watch = MemoryWatch::start();
    let result = send_test_event(app, &webhook).await;
    watch.assert_bounded(&format!("{attack}, to a test event"));
    (receiver, result)
}

#[tokio::test]
async fn a_huge_answer_to_a_test_event_is_read_only_up_to_the_cap() {
    let _alone = ONE_ATTACK_AT_A_TIME.lock().await;
    let app = spawn_app().await;
    let hostile = Hostile::HugeBody {
        bytes: HUGE,
        chunked: false,
    };
    let (receiver, result) = test_event_under_watch(&app, hostile, "256 MB answer").await;

    assert_eq!(
        (result.success, result.http_status),
        (true, Some(200)),
        "{result:?}"
    );
    assert_read_cut_short(&receiver, HUGE);
    assert_alive(&app).await;
}

#[tokio::test]
async fn huge_answers_to_a_batch_of_deliveries_are_read_only_up_to_the_cap() {
    let _alone = ONE_ATTACK_AT_A_TIME.lock().await;
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let receiver = HostileReceiver::start(Hostile::HugeBody {
        bytes: HUGE,
        chunked: true,
    })
    .await;
    // As many webhooks as a worker attempts at once: one booking, 8 huge answers side by side.
    let mut webhooks = Vec::new();
    for _ in 0..8 {
        let created =
            register_webhook(&app, &key, &receiver.url, json!(["appointment.created"])).await;
        webhooks.push(created.webhook.id);
    }

    let watch = MemoryWatch::start();
    book_once(&app, &key).await;
    let mut logs = Vec::new();
    for webhook in &webhooks {
        logs.push(attempts_until(&app, &key, webhook, |list| !list.is_empty()).await);
    }
    watch.assert_bounded("8 deliveries answered with 256 MB each");

    for log in logs {
        let attempt = &log[0];
        assert_eq!(
            (
                attempt.status_code,
                attempt.error.as_deref(),
                attempt.delivery_status.as_str()
            ),
            (Some(200), None, "SUCCEEDED"),
            "{attempt:?}"
        );
        let logged = serde_json::to_string(attempt).unwrap();
        assert!(
            logged.len() < CAP,
            "the log keeps more than the cap: {logged}"
        );
    }
    assert_eq!(receiver.requests(), 8);
    assert_read_cut_short(&receiver, 8 * HUGE);
    assert_alive(&app).await;
}

#[tokio::test]
async fn an_answer_dripping_one_byte_at_a_time_ends_at_the_timeout() {
    let _alone = ONE_ATTACK_AT_A_TIME.lock().await;
    let database = TestDatabase::create().await;
    let mut settings = test_settings(&database.url());
    settings.webhook_timeout = Duration::from_secs(1);
    let app = spawn_app_with(database, settings).await;
    let key = app.org.test_key.clone();
    let receiver = HostileReceiver::start(Hostile::DripBody {
        every: Duration::from_millis(200),
    })
    .await;
    let webhook = register_webhook(&app, &key, &receiver.url, json!(["appointment.created"]))
        .await
        .webhook
        .id;
    let watch = MemoryWatch::start();

    // The server answers others while an attempt hangs on the drip.
    let (result, ()) = tokio::join!(send_test_event(&app, &webhook), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_alive(&app).await;
    });
    let took = result.response_time;
    assert_eq!(
        (result.success, result.http_status, result.message.as_str()),
        (false, Some(200), "timed out reading the answer"),
        "{result:?}"
    );
    assert!(
        (1000..1500).contains(&took),
        "the test event took {took} ms"
    );

    book_once(&app, &key).await;
    let log = attempts_until(&app, &key, &webhook, |list| !list.is_empty()).await;
    watch.assert_bounded("answers dripping one byte every 200 ms");
    let duration = log[0].duration_ms;
    assert_eq!(
        log[0].error.as_deref(),
        Some("timed out reading the answer"),
        "{log:?}"
    );
    assert_eq!(log[0].status_code, Some(200));
    assert!(log[0].next_retry_at.is_some(), "retried: {log:?}");
    assert!(
        (1000..1500).contains(&duration),
        "the attempt lasted {duration} ms"
    );
    eprintln!(
        "dripping answers: test event {took} ms, delivery attempt {duration} ms (timeout 1000 ms)"
    );
    assert_alive(&app).await;
}

#[tokio::test]
async fn endless_answer_headers_end_the_attempt_at_the_client_limit() {
    let _alone = ONE_ATTACK_AT_A_TIME.lock().await;
    let app = spawn_app().await;
    let (receiver, result) =
        test_event_under_watch(&app, Hostile::EndlessHeaders, "endless answer headers").await;

    assert_eq!(
        (result.success, result.http_status),
        (false, None),
        "{result:?}"
    );
    // Refused at hyper's limit on the answer's head (100 headers, ~400 KiB), not at the timeout.
    assert!(result.response_time < 5000, "{result:?}");
    assert_read_cut_short(&receiver, 64_000_000);
    assert_alive(&app).await;
}
