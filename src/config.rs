//! Typed settings: defaults, overridden by the environment (a `.env` file is read first).

use std::time::Duration;

use anyhow::{bail, Context};

use crate::webhooks::circuit::CircuitRule;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/moncreneau";

#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    pub addr: String,
    pub public_url: String,
    pub admin_token: Option<String>,
    pub rate_limit_per_hour: u32,
    pub webhook_timeout: Duration,
    pub webhook_retry_schedule: Vec<Duration>,
    pub webhook_allow_private: bool,
    /// How often idle delivery workers look for due deliveries.
    pub webhook_poll_interval: Duration,
    /// Whether this process runs the delivery worker (an API-only process does not; the others
    /// deliver what it commits).
    pub webhook_worker: bool,
    /// Deliveries attempted at once by one server process, all endpoints together.
    pub webhook_concurrency: u32,
    /// Attempts in flight at once to one endpoint, over every server process.
    pub webhook_endpoint_concurrency: u32,
    /// Attempts in flight at once to the endpoints of one organization's mode.
    pub webhook_organization_concurrency: u32,
    /// Consecutive failures after which an endpoint's circuit opens.
    pub webhook_circuit_failures: u32,
    /// How long an open circuit waits before its first probe; doubled after each failed probe.
    pub webhook_circuit_probe: Duration,
    pub log_format: Option<LogFormat>,
    /// How long start-up waits for the database before giving up.
    pub database_connect_timeout: Duration,
    /// Connections one server process keeps to the database at most.
    pub database_max_connections: u32,
    /// How long a request waits for a free connection before answering 503.
    pub database_acquire_timeout: Duration,
    /// The longest one statement may run (Postgres `statement_timeout`).
    pub database_statement_timeout: Duration,
    /// The longest one statement may wait for a row lock (Postgres `lock_timeout`).
    pub database_lock_timeout: Duration,
    /// The longest a transaction may sit idle, e.g. behind a stalled link, holding its locks
    /// (Postgres `idle_in_transaction_session_timeout`).
    pub database_idle_in_transaction_timeout: Duration,
    /// The longest a request may take before it is answered 503 `SERVICE_UNAVAILABLE`.
    pub request_timeout: Duration,
    /// The longest a client may take to send a request head, or leave a connection idle.
    pub header_read_timeout: Duration,
    /// Client connections one server process keeps open at once.
    pub max_client_connections: usize,
}

impl Settings {
    /// When an endpoint's circuit opens and how long it rests.
    pub fn webhook_circuit(&self) -> CircuitRule {
        CircuitRule {
            failures: self.webhook_circuit_failures,
            probe: self.webhook_circuit_probe,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

// Secrets stay out of logs and panics.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact_url(&self.database_url))
            .field("addr", &self.addr)
            .field("public_url", &self.public_url)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<set>"))
            .field("rate_limit_per_hour", &self.rate_limit_per_hour)
            .finish_non_exhaustive()
    }
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |name: &str| get(name).filter(|value| !value.trim().is_empty());
        let log_format = match get("MONCRENEAU_LOG_FORMAT").as_deref() {
            None => None,
            Some("json") => Some(LogFormat::Json),
            Some("pretty") => Some(LogFormat::Pretty),
            Some(other) => bail!("MONCRENEAU_LOG_FORMAT must be json or pretty, not {other:?}"),
        };
        Ok(Self {
            database_url: get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            addr: get("MONCRENEAU_ADDR").unwrap_or_else(|| "0.0.0.0:8080".to_owned()),
            public_url: get("MONCRENEAU_PUBLIC_URL")
                .unwrap_or_else(|| "http://localhost:8080".to_owned())
                .trim_end_matches('/')
                .to_owned(),
            admin_token: get("MONCRENEAU_ADMIN_TOKEN"),
            rate_limit_per_hour: parse(&get, "MONCRENEAU_RATE_LIMIT_PER_HOUR", 1000)?,
            webhook_timeout: Duration::from_millis(parse(
                &get,
                "MONCRENEAU_WEBHOOK_TIMEOUT_MS",
                10_000,
            )?),
            webhook_retry_schedule: match get("MONCRENEAU_WEBHOOK_RETRY_SCHEDULE") {
                Some(text) => parse_schedule(&text).context("MONCRENEAU_WEBHOOK_RETRY_SCHEDULE")?,
                None => parse_schedule("5s,1m,5m,30m,2h,6h,12h,24h")?,
            },
            webhook_allow_private: parse(&get, "MONCRENEAU_WEBHOOK_ALLOW_PRIVATE", false)?,
            webhook_poll_interval: Duration::from_millis(parse(
                &get,
                "MONCRENEAU_WEBHOOK_POLL_MS",
                500,
            )?),
            webhook_worker: parse(&get, "MONCRENEAU_WEBHOOK_WORKER", true)?,
            webhook_concurrency: parse(&get, "MONCRENEAU_WEBHOOK_CONCURRENCY", 64)?.max(1),
            webhook_endpoint_concurrency: parse(
                &get,
                "MONCRENEAU_WEBHOOK_ENDPOINT_CONCURRENCY",
                4,
            )?
            .max(1),
            webhook_organization_concurrency: parse(
                &get,
                "MONCRENEAU_WEBHOOK_ORGANIZATION_CONCURRENCY",
                16,
            )?
            .max(1),
            webhook_circuit_failures: parse(&get, "MONCRENEAU_WEBHOOK_CIRCUIT_FAILURES", 5)?.max(1),
            webhook_circuit_probe: millis(&get, "MONCRENEAU_WEBHOOK_CIRCUIT_PROBE_MS", 5_000)?,
            log_format,
            database_connect_timeout: Duration::from_secs(parse(
                &get,
                "MONCRENEAU_DATABASE_CONNECT_TIMEOUT_S",
                10,
            )?),
            database_max_connections: parse(&get, "MONCRENEAU_DATABASE_MAX_CONNECTIONS", 16)?
                .max(1),
            database_acquire_timeout: millis(
                &get,
                "MONCRENEAU_DATABASE_ACQUIRE_TIMEOUT_MS",
                5_000,
            )?,
            database_statement_timeout: millis(
                &get,
                "MONCRENEAU_DATABASE_STATEMENT_TIMEOUT_MS",
                5_000,
            )?,
            database_lock_timeout: millis(&get, "MONCRENEAU_DATABASE_LOCK_TIMEOUT_MS", 2_000)?,
            database_idle_in_transaction_timeout: millis(
                &get,
                "MONCRENEAU_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS",
                5_000,
            )?,
            request_timeout: millis(&get, "MONCRENEAU_REQUEST_TIMEOUT_MS", 15_000)?,
            header_read_timeout: millis(&get, "MONCRENEAU_HEADER_READ_TIMEOUT_MS", 10_000)?,
            max_client_connections: parse(&get, "MONCRENEAU_MAX_CLIENT_CONNECTIONS", 1024)?.max(1),
        })
    }
}

fn parse<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: T,
) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match get(name) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse()
            .map_err(|error| anyhow::anyhow!("{name}={text:?} is invalid: {error}")),
    }
}

/// A duration in milliseconds, at least 1 ms (0 would turn the Postgres bounds off).
fn millis(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
) -> anyhow::Result<Duration> {
    let value: u64 = parse(get, name, default)?;
    if value == 0 {
        bail!("{name} must be at least 1 (milliseconds)");
    }
    Ok(Duration::from_millis(value))
}

/// `5s,1m,2h` → durations; units ms, s, m, h, d.
pub fn parse_schedule(text: &str) -> anyhow::Result<Vec<Duration>> {
    text.split(',')
        .map(|item| {
            let item = item.trim();
            let split = item
                .find(|c: char| !c.is_ascii_digit())
                .with_context(|| format!("{item:?} has no unit"))?;
            let (number, unit) = item.split_at(split);
            let number: u64 = number.parse().with_context(|| format!("{item:?}"))?;
            let millis = match unit {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => bail!("{item:?}: unit must be ms, s, m, h or d"),
            };
            Ok(Duration::from_millis(number * millis))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let settings = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(settings.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(settings.addr, "0.0.0.0:8080");
        assert_eq!(settings.rate_limit_per_hour, 1000);
        assert_eq!(settings.webhook_retry_schedule.len(), 8);
        assert_eq!(settings.webhook_retry_schedule[1], Duration::from_secs(60));
        assert!(settings.admin_token.is_none());
        assert_eq!(settings.database_max_connections, 16);
        assert_eq!(settings.database_lock_timeout, Duration::from_secs(2));
    }

    #[test]
    fn database_bounds_are_settings_and_zero_is_refused() {
        let settings = Settings::from_lookup(|name| match name {
            "MONCRENEAU_DATABASE_MAX_CONNECTIONS" => Some("3".into()),
            "MONCRENEAU_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS" => Some("750".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(settings.database_max_connections, 3);
        assert_eq!(
            settings.database_idle_in_transaction_timeout,
            Duration::from_millis(750)
        );
        let error = Settings::from_lookup(|name| {
            (name == "MONCRENEAU_DATABASE_LOCK_TIMEOUT_MS").then(|| "0".to_owned())
        })
        .unwrap_err();
        assert!(error
            .to_string()
            .contains("MONCRENEAU_DATABASE_LOCK_TIMEOUT_MS"));
    }

    #[test]
    fn a_bad_number_is_reported_with_its_variable() {
        let error = Settings::from_lookup(|name| {
            (name == "MONCRENEAU_RATE_LIMIT_PER_HOUR").then(|| "lots".to_owned())
        })
        .unwrap_err();
        assert!(error.to_string().contains("MONCRENEAU_RATE_LIMIT_PER_HOUR"));
    }

    #[test]
    fn a_schedule_without_unit_is_rejected() {
        assert!(parse_schedule("5,1m").is_err());
        assert_eq!(
            parse_schedule("250ms").unwrap(),
            vec![Duration::from_millis(250)]
        );
    }

    #[test]
    fn the_debug_form_hides_secrets() {
        let settings = Settings::from_lookup(|name| match name {
            "DATABASE_URL" => Some("postgres://u:secretpw@h/db".into()),
            "MONCRENEAU_ADMIN_TOKEN" => Some("tok123".into()),
            _ => None,
        })
        .unwrap();
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("secretpw") && !shown.contains("tok123"),
            "{shown}"
        );
    }
}
