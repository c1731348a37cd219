//! The HTTP load of `bench/run.sh`: a fixed number of keep-alive connections, each sending its
//! next request as soon as the last one is answered, for a number of seconds; then one JSON line
//! on stdout (requests, requests/s, p50/p99 in ms, responses by status, transport errors).
//!
//! Written in Rust rather than as wrk scripts because two of its scenarios need more than wrk
//! gives: the flash crowd runs bookers and readers side by side and counts every status of each,
//! and the webhook lag needs a real receiver in the same clock as the client that saw the 201.
//!
//! Booking requests spread over the slots of days 1 to 80 from now (UTC), 30-minute slots around
//! the clock: the department `run.sh` makes for them is open all day with capacity 1000, so its
//! capacity never refuses one of them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use chrono::{Duration as Days, Utc};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "HTTP load for bench/run.sh")]
struct Cli {
    /// The server, e.g. http://127.0.0.1:8080
    #[arg(long)]
    base: String,
    /// The API key every request presents.
    #[arg(long)]
    key: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// POST /api/v1/appointments in `department`, each request a different slot.
    Book {
        #[arg(long)]
        department: i64,
        #[arg(long)]
        connections: usize,
        #[arg(long)]
        seconds: f64,
    },
    /// GET `path` (under /api/v1).
    Get {
        #[arg(long)]
        path: String,
        #[arg(long)]
        connections: usize,
        #[arg(long)]
        seconds: f64,
    },
    /// `bookers` connections booking `slots` (local date-times, comma-separated) of `department`
    /// while `readers` connections GET `read_path` (its availability).
    Flash {
        #[arg(long)]
        department: i64,
        #[arg(long)]
        slots: String,
        #[arg(long)]
        bookers: usize,
        #[arg(long)]
        readers: usize,
        #[arg(long)]
        read_path: String,
        #[arg(long)]
        seconds: f64,
    },
    /// Registers a webhook on a loopback receiver of this process, books `count` appointments at
    /// `rate` per second, and measures receipt time minus the time the 201 was received.
    Webhook {
        #[arg(long)]
        department: i64,
        #[arg(long)]
        rate: f64,
        #[arg(long)]
        count: usize,
    },
}

/// What the connections of one scenario saw.
#[derive(Default)]
struct Tally {
    /// Microseconds per answered request.
    latencies: Vec<u64>,
    statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.transport_errors += other.transport_errors;
    }

    fn report(mut self, elapsed: Duration) -> Value {
        self.latencies.sort_unstable();
        let requests = self.latencies.len();
        let millis = |micros: u64| micros as f64 / 1000.0;
        json!({
            "requests": requests,
            "seconds": elapsed.as_secs_f64(),
            "rps": requests as f64 / elapsed.as_secs_f64().max(1e-9),
            "p50": percentile(&self.latencies, 0.50).map(millis),
            "p99": percentile(&self.latencies, 0.99).map(millis),
            "statuses": self.statuses.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "transportErrors": self.transport_errors,
        })
    }
}

/// The nearest-rank percentile of sorted values.
fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// One client per connection, so that `connections` means that many sockets to the server.
fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(60))
        .build()?)
}

/// The n-th booking slot: day 1..=80 from today (UTC), then the half-hour of that day.
fn booking_slot(n: u64) -> String {
    let day = (Utc::now().date_naive() + Days::days(1 + (n % 80) as i64)).format("%Y-%m-%d");
    let half_hour = (n / 80) % 48;
    format!("{day}T{:02}:{:02}:00", half_hour / 2, (half_hour % 2) * 30)
}

fn booking_body(department: i64, date_time: &str, n: u64) -> String {
    json!({"departmentId": department, "dateTime": date_time, "name": format!("Bench {n}")})
        .to_string()
}

/// Requests built by `next` (method, path, body) from each of `connections` connections until
/// `seconds` have passed.
async fn hammer(
    base: &str,
    key: &str,
    connections: usize,
    seconds: f64,
    next: Arc<dyn Fn() -> (reqwest::Method, String, Option<String>) + Send + Sync>,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let client = client()?;
        let (base, key, next) = (base.to_owned(), key.to_owned(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let (method, path, body) = next();
                let mut request = client
                    .request(method, format!("{base}/api/v1{path}"))
                    .header("X-API-Key", &key);
                if let Some(body) = body {
                    request = request
                        .header("Content-Type", "application/json")
                        .body(body);
                }
                let sent = Instant::now();
                match request.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        if response.bytes().await.is_err() {
                            tally.transport_errors += 1;
                            continue;
                        }
                        tally.latencies.push(sent.elapsed().as_micros() as u64);
                        *tally.statuses.entry(status).or_default() += 1;
                    }
                    Err(_) => tally.transport_errors += 1,
                }
            }
            (tally, Instant::now())
        }));
    }
    let mut tally = Tally::default();
    let mut ended = started;
    for task in tasks {
        let (part, at) = task.await?;
        tally.merge(part);
        ended = ended.max(at);
    }
    Ok(tally.report(ended - started))
}

fn booker(
    department: i64,
) -> Arc<dyn Fn() -> (reqwest::Method, String, Option<String>) + Send + Sync> {
    // Started from the clock so that successive runs spread over different slots first.
    let counter = Arc::new(AtomicU64::new(Utc::now().timestamp_subsec_micros().into()));
    Arc::new(move || {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let body = booking_body(department, &booking_slot(n), n);
        (
            reqwest::Method::POST,
            "/appointments".to_owned(),
            Some(body),
        )
    })
}

async fn flash(
    cli: &Cli,
    department: i64,
    slots: &str,
    bookers: usize,
    readers: usize,
    read_path: &str,
    seconds: f64,
) -> anyhow::Result<Value> {
    let slots: Vec<String> = slots.split(',').map(str::to_owned).collect();
    let counter = Arc::new(AtomicU64::new(0));
    let book: Arc<dyn Fn() -> _ + Send + Sync> = Arc::new(move || {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let slot = &slots[(n % slots.len() as u64) as usize];
        let body = booking_body(department, slot, n);
        (
            reqwest::Method::POST,
            "/appointments".to_owned(),
            Some(body),
        )
    });
    let path = read_path.to_owned();
    let read: Arc<dyn Fn() -> _ + Send + Sync> =
        Arc::new(move || (reqwest::Method::GET, path.clone(), None));
    let (booked, read) = tokio::join!(
        hammer(&cli.base, &cli.key, bookers, seconds, book),
        hammer(&cli.base, &cli.key, readers, seconds, read)
    );
    Ok(json!({"book": booked?, "read": read?}))
}

type Receipts = Arc<Mutex<HashMap<i64, Instant>>>;

/// The receiver: notes when each appointment's `appointment.created` arrived, answers 204.
async fn receive(State(receipts): State<Receipts>, body: String) -> axum::http::StatusCode {
    let at = Instant::now();
    if let Some(id) = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|event| event["data"]["object"]["id"].as_i64())
    {
        receipts
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .entry(id)
            .or_insert(at);
    }
    axum::http::StatusCode::NO_CONTENT
}

async fn webhook(cli: &Cli, department: i64, rate: f64, count: usize) -> anyhow::Result<Value> {
    let receipts: Receipts = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(receipts.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let api = client()?;
    let created: Value = api
        .post(format!("{}/api/v1/webhooks", cli.base))
        .header("X-API-Key", &cli.key)
        .json(&json!({"url": format!("http://{address}/hook"), "events": ["appointment.created"]}))
        .send()
        .await?
        .error_for_status()
        .context("registering the webhook")?
        .json()
        .await?;
    let webhook_id = created["id"].as_str().context("webhook id")?.to_owned();

    let answered: Arc<Mutex<Vec<(i64, Instant)>>> = Arc::default();
    let book = booker(department);
    let client = reqwest::Client::new();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut tasks = Vec::with_capacity(count);
    let mut refused = 0_usize;
    for _ in 0..count {
        ticks.tick().await;
        let (_, path, body) = book();
        let request = client
            .post(format!("{}/api/v1{path}", cli.base))
            .header("X-API-Key", &cli.key)
            .header("Content-Type", "application/json")
            .body(body.unwrap_or_default());
        let answered = answered.clone();
        tasks.push(tokio::spawn(async move {
            let response = request.send().await.ok()?;
            let at = Instant::now();
            if response.status() != reqwest::StatusCode::CREATED {
                return None;
            }
            let id = response.json::<Value>().await.ok()?["id"].as_i64()?;
            answered
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .push((id, at));
            Some(())
        }));
    }
    for task in tasks {
        if task.await?.is_none() {
            refused += 1;
        }
    }
    let answered = std::mem::take(&mut *answered.lock().unwrap_or_else(|p| p.into_inner()));
    // Every delivery gets 30 s to arrive.
    let wait_until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < wait_until {
        let got = receipts.lock().unwrap_or_else(|p| p.into_inner()).len();
        if got >= answered.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let receipts = receipts.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // Signed: a delivery may arrive before the client has read the 201.
    let mut lags: Vec<f64> = answered
        .iter()
        .filter_map(|(id, at)| {
            let received = receipts.get(id)?;
            Some(if received >= at {
                (*received - *at).as_secs_f64() * 1000.0
            } else {
                -(*at - *received).as_secs_f64() * 1000.0
            })
        })
        .collect();
    lags.sort_by(f64::total_cmp);
    let missing = answered.len() - lags.len();
    api.delete(format!("{}/api/v1/webhooks/{webhook_id}", cli.base))
        .header("X-API-Key", &cli.key)
        .send()
        .await?
        .error_for_status()
        .context("removing the webhook")?;
    Ok(json!({
        "booked": answered.len(), "refused": refused, "received": lags.len(), "missing": missing,
        "p50": percentile(&lags, 0.50), "p99": percentile(&lags, 0.99), "max": lags.last(),
    }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let report = match &cli.command {
        Command::Book {
            department,
            connections,
            seconds,
        } => {
            hammer(
                &cli.base,
                &cli.key,
                *connections,
                *seconds,
                booker(*department),
            )
            .await?
        }
        Command::Get {
            path,
            connections,
            seconds,
        } => {
            let path = path.clone();
            let get = Arc::new(move || (reqwest::Method::GET, path.clone(), None));
            hammer(&cli.base, &cli.key, *connections, *seconds, get).await?
        }
        Command::Flash {
            department,
            slots,
            bookers,
            readers,
            read_path,
            seconds,
        } => {
            flash(
                &cli,
                *department,
                slots,
                *bookers,
                *readers,
                read_path,
                *seconds,
            )
            .await?
        }
        Command::Webhook {
            department,
            rate,
            count,
        } => {
            if *rate <= 0.0 {
                bail!("--rate must be positive");
            }
            webhook(&cli, *department, *rate, *count).await?
        }
    };
    println!("{report}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.50), Some(50));
        assert_eq!(percentile(&values, 0.99), Some(99));
        assert_eq!(percentile(&[7_u64], 0.99), Some(7));
        assert_eq!(percentile::<u64>(&[], 0.5), None);
    }

    #[test]
    fn booking_slots_are_all_different_over_a_cycle() {
        let slots: std::collections::HashSet<String> = (0..80 * 48).map(booking_slot).collect();
        assert_eq!(slots.len(), 80 * 48);
        assert!(slots
            .iter()
            .all(|slot| slot.ends_with(":00:00") || slot.ends_with(":30:00")));
    }
}
