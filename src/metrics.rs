//! Prometheus metrics, served by `GET /metrics`: requests by route, bookings and refusals,
//! webhook deliveries, and the database pool. Recording is in memory (no database round trip per
//! request); the two values read from elsewhere, the pool's state and the number of pending
//! deliveries, are read when the metrics are scraped.
//!
//! The recorder is process-global (the `metrics` facade has one): it is installed once, and
//! every server of the process (the integration tests start many) records into it.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ::metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;

use crate::error::ErrorCode;
use crate::webhooks::circuit::{CircuitRule, CircuitState};

/// The media type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The route label of a request that matched no route (the raw path would let any client add
/// a series per path it invents).
pub const UNMATCHED_ROUTE: &str = "unmatched";

const HTTP_REQUESTS: &str = "moncreneau_http_requests_total";
const HTTP_DURATION: &str = "moncreneau_http_request_duration_seconds";
const BOOKINGS: &str = "moncreneau_bookings_created_total";
const CANCELLATIONS: &str = "moncreneau_appointments_cancelled_total";
const BOOKINGS_WAITING: &str = "moncreneau_bookings_waiting";
const BOOKINGS_TOGETHER: &str = "moncreneau_bookings_written_together_total";
const ERRORS: &str = "moncreneau_error_responses_total";
const WEBHOOK_ATTEMPTS: &str = "moncreneau_webhook_attempts_total";
const WEBHOOK_LAG: &str = "moncreneau_webhook_delivery_lag_seconds";
const WEBHOOK_PENDING: &str = "moncreneau_webhook_deliveries_pending";
const WEBHOOK_PENDING_BY_CIRCUIT: &str = "moncreneau_webhook_deliveries_pending_by_circuit";
const WEBHOOK_OLDEST_PENDING: &str = "moncreneau_webhook_oldest_pending_seconds";
const POOL_IN_USE: &str = "moncreneau_db_pool_connections_in_use";
const POOL_IDLE: &str = "moncreneau_db_pool_connections_idle";
const POOL_MAX: &str = "moncreneau_db_pool_connections_max";
const POOL_WAITING: &str = "moncreneau_db_pool_waiting";
const POOL_ACQUIRE: &str = "moncreneau_db_pool_acquire_seconds";

/// Request latencies: milliseconds for most answers, up to the default 15 s request timeout.
const HTTP_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0,
];
/// Commit to first attempt: a poll interval (0.5 s by default) when all is well, minutes or
/// hours when the workers fall behind or were down.
const LAG_BUCKETS: [f64; 14] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0,
];
/// Waiting for a connection: none when the pool has one idle, up to the acquire timeout (5 s by
/// default) when it is exhausted.
const ACQUIRE_BUCKETS: [f64; 13] = [
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// How often histograms are drained into their buckets, so that memory stays bounded between
/// scrapes (or without any).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// The longest a scrape waits for the count of pending deliveries.
const QUEUE_QUERY_BOUND: Duration = Duration::from_secs(2);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder the first time, and answers its handle. Never fails: when
/// another recorder was installed first, `/metrics` renders only what this one saw (nothing).
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        if ::metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will stay empty");
        }
        describe();
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            });
        if let Err(error) = spawned {
            tracing::warn!("cannot start the metrics upkeep thread: {error}");
        }
        handle
    })
}

/// Histograms with explicit buckets (summaries otherwise, which cannot be aggregated).
fn builder() -> PrometheusBuilder {
    let buckets: [(&str, &[f64]); 3] = [
        (HTTP_DURATION, &HTTP_BUCKETS),
        (WEBHOOK_LAG, &LAG_BUCKETS),
        (POOL_ACQUIRE, &ACQUIRE_BUCKETS),
    ];
    buckets
        .into_iter()
        .try_fold(PrometheusBuilder::new(), |builder, (name, bounds)| {
            builder.set_buckets_for_metric(Matcher::Full(name.to_owned()), bounds)
        })
        // Only an empty list of buckets is refused, and none of the above is empty.
        .unwrap_or_else(|_| PrometheusBuilder::new())
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, matched route template and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        ::metrics::Unit::Seconds,
        "Time to answer an HTTP request (to its response head), by method, route and status"
    );
    describe_counter!(BOOKINGS, "Appointments booked (committed)");
    describe_counter!(CANCELLATIONS, "Appointments cancelled (committed)");
    describe_gauge!(
        BOOKINGS_WAITING,
        "Bookings waiting for the one being written in their department, to be written together"
    );
    describe_counter!(
        BOOKINGS_TOGETHER,
        "Bookings written in a call with others of their department (whatever their outcome)"
    );
    describe_counter!(
        ERRORS,
        "Error responses answered, by error code: INSUFFICIENT_CREDITS (402), SLOT_NOT_AVAILABLE and the other 409s, RATE_LIMIT_EXCEEDED (429), ..."
    );
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        "Webhook delivery attempts, by outcome: success (2xx), gone (410), failure (any other)"
    );
    describe_histogram!(
        WEBHOOK_LAG,
        ::metrics::Unit::Seconds,
        "From an event's write to the first attempt to deliver it"
    );
    describe_gauge!(
        WEBHOOK_PENDING,
        "Webhook deliveries waiting for an attempt (due or scheduled), read at scrape time"
    );
    describe_gauge!(
        WEBHOOK_PENDING_BY_CIRCUIT,
        "Pending webhook deliveries by the circuit state of their endpoint, read at scrape time"
    );
    describe_gauge!(
        WEBHOOK_OLDEST_PENDING,
        "Age of the oldest pending delivery, by the circuit state of its endpoint, at scrape time"
    );
    describe_gauge!(POOL_IN_USE, "Database connections lent out, at scrape time");
    describe_gauge!(
        POOL_IDLE,
        "Database connections open and idle, at scrape time"
    );
    describe_gauge!(POOL_MAX, "Database connections this process may open");
    describe_gauge!(
        POOL_WAITING,
        "Requests waiting for a database connection to look up their API key"
    );
    describe_histogram!(
        POOL_ACQUIRE,
        ::metrics::Unit::Seconds,
        "Time a request waited for a database connection to look up its API key"
    );
}

/// The method as a label: the standard ones by name, any other as `OTHER` (a client can send
/// any token as a method).
fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "CONNECT" => "CONNECT",
        _ => "OTHER",
    }
}

/// One answered request; `route` is the matched template or [`UNMATCHED_ROUTE`].
pub fn http_request(method: &axum::http::Method, route: &str, status: u16, elapsed: Duration) {
    let labels = [
        ("method", method_label(method).to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    counter!(HTTP_REQUESTS, &labels).increment(1);
    histogram!(HTTP_DURATION, &labels).record(elapsed);
}

/// An appointment booked (its transaction committed).
pub fn booking_created() {
    counter!(BOOKINGS).increment(1);
}

/// `count` more bookings wait to be written with others of their department (negative: fewer).
pub fn bookings_waiting(count: f64) {
    gauge!(BOOKINGS_WAITING).increment(count);
}

/// `count` bookings were written in one call (see `booking_batches`).
pub fn bookings_written_together(count: u64) {
    counter!(BOOKINGS_TOGETHER).increment(count);
}

/// An appointment cancelled (its transaction committed).
pub fn appointment_cancelled() {
    counter!(CANCELLATIONS).increment(1);
}

/// An error answered in the envelope.
pub fn error_response(code: ErrorCode) {
    counter!(ERRORS, "code" => code_label(code)).increment(1);
}

/// The code as the contract spells it (`INSUFFICIENT_CREDITS`).
fn code_label(code: ErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// One webhook attempt made (a request was sent, whatever came back).
pub fn webhook_attempt(succeeded: bool, gone: bool) {
    let outcome = match (succeeded, gone) {
        (true, _) => "success",
        (false, true) => "gone",
        (false, false) => "failure",
    };
    counter!(WEBHOOK_ATTEMPTS, "outcome" => outcome).increment(1);
}

/// The time between an event's write and the first attempt to deliver it.
pub fn webhook_first_attempt_lag(seconds: f64) {
    histogram!(WEBHOOK_LAG).record(seconds.max(0.0));
}

/// A wait for a database connection, counted in `moncreneau_db_pool_waiting` while it lasts and
/// recorded in `moncreneau_db_pool_acquire_seconds` when it ends (acquired, timed out or
/// abandoned with its request).
pub struct PoolWait {
    started: Instant,
}

impl PoolWait {
    /// Starts counting a wait.
    pub fn begin() -> Self {
        gauge!(POOL_WAITING).increment(1.0);
        Self {
            started: Instant::now(),
        }
    }
}

impl Drop for PoolWait {
    fn drop(&mut self) {
        gauge!(POOL_WAITING).decrement(1.0);
        histogram!(POOL_ACQUIRE).record(self.started.elapsed());
    }
}

/// Reads the values kept elsewhere (the pool's state, the deliveries pending by the circuit state
/// of their endpoint), then renders
/// every metric in the text exposition format.
pub async fn render(pool: &PgPool, circuit: CircuitRule) -> String {
    let handle = install();
    // Before the query below, which takes a connection of its own.
    let open = pool.size();
    let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
    gauge!(POOL_IN_USE).set(open.saturating_sub(idle));
    gauge!(POOL_IDLE).set(idle);
    gauge!(POOL_MAX).set(pool.options().get_max_connections());
    // One query over the pending deliveries, per scrape, not per request.
    let pending = sqlx::query_as::<_, (String, i64, f64)>(
        "SELECT CASE WHEN w.consecutive_failures < $1 THEN 'CLOSED'
                     WHEN w.circuit_open_until > now() THEN 'OPEN'
                     ELSE 'HALF_OPEN' END,
                count(*), COALESCE(extract(epoch FROM now() - min(d.created_at))::float8, 0)
           FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
          WHERE d.status = 'PENDING'
          GROUP BY 1",
    )
    .bind(i32::try_from(circuit.failures).unwrap_or(i32::MAX))
    .fetch_all(pool);
    match tokio::time::timeout(QUEUE_QUERY_BOUND, pending).await {
        Ok(Ok(rows)) => {
            let mut total = 0;
            for state in [
                CircuitState::Closed,
                CircuitState::Open,
                CircuitState::HalfOpen,
            ] {
                let row = rows.iter().find(|(name, _, _)| name == state.as_str());
                let (count, oldest) = row.map_or((0, 0.0), |(_, count, oldest)| (*count, *oldest));
                total += count;
                // Counts far below 2^53 are exact as f64.
                gauge!(WEBHOOK_PENDING_BY_CIRCUIT, "circuit" => state.as_str()).set(count as f64);
                gauge!(WEBHOOK_OLDEST_PENDING, "circuit" => state.as_str()).set(oldest);
            }
            gauge!(WEBHOOK_PENDING).set(total as f64);
        }
        Ok(Err(error)) => tracing::warn!("cannot count pending deliveries: {error}"),
        Err(_) => tracing::warn!("counting pending deliveries took too long"),
    }
    handle.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        use axum::http::Method;
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
    }

    #[test]
    fn error_codes_are_labelled_as_the_contract_spells_them() {
        assert_eq!(
            code_label(ErrorCode::InsufficientCredits),
            "INSUFFICIENT_CREDITS"
        );
    }

    #[test]
    fn every_histogram_has_buckets_in_increasing_order() {
        for bounds in [&HTTP_BUCKETS[..], &LAG_BUCKETS, &ACQUIRE_BUCKETS] {
            assert!(
                bounds.windows(2).all(|pair| pair[0] < pair[1]),
                "{bounds:?}"
            );
        }
    }
}
