//! `spawn_app()`: a real server on port 0 over a fresh database cloned from a migrated template,
//! with an organization and typed helpers to drive it over HTTP.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{Datelike, NaiveDate, Utc, Weekday};
use moncreneau::config::Settings;
use moncreneau::database::MIGRATOR;
use moncreneau::routes::api_keys::json::{ApiKeyCreate, ApiKeyCreated};
use moncreneau::routes::credits::json::Credits;
use moncreneau::routes::departments::json::Department;
use moncreneau::routes::workers::json::{Worker, WorkerCreate};
use moncreneau::startup::Application;
use reqwest::{Method, Response, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio::sync::OnceCell;

use crate::contract::ContractClient;
use crate::typed::{read, ReadReply};

pub const ADMIN_TOKEN: &str = "test-operator-token";

/// The server-level URL tests use: `DATABASE_URL` or the same default as the server.
pub fn base_options() -> PgConnectOptions {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| moncreneau::config::DEFAULT_DATABASE_URL.to_owned());
    PgConnectOptions::from_str(&url).expect("DATABASE_URL is a postgres URL")
}

async fn maintenance() -> PgConnection {
    base_options()
        .database("postgres")
        .connect()
        .await
        .expect("Postgres is reachable")
}

/// The name of the template for this set of migrations (of their up files: the template is only
/// ever migrated up, and a renamed up file keeps its checksum, so the name too).
fn template_name() -> String {
    let mut hash = Sha256::new();
    for migration in MIGRATOR
        .iter()
        .filter(|migration| migration.migration_type.is_up_migration())
    {
        hash.update(migration.version.to_le_bytes());
        hash.update(&migration.checksum);
    }
    format!("mc_template_{}", &hex::encode(hash.finalize())[..16])
}

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// Creates the migrated template once per database server (under an advisory lock, since test
/// processes run side by side) and drops test databases left over by interrupted runs.
async fn template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let name = template_name();
            let mut connection = maintenance().await;
            sqlx::query("SELECT pg_advisory_lock(7261001)")
                .execute(&mut connection)
                .await
                .unwrap();
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                    .bind(&name)
                    .fetch_one(&mut connection)
                    .await
                    .unwrap();
            if !exists {
                let building = format!("{name}_building");
                sqlx::query(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
                    .execute(&mut connection)
                    .await
                    .unwrap();
                sqlx::query(&format!("CREATE DATABASE {building}"))
                    .execute(&mut connection)
                    .await
                    .unwrap();
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(base_options().database(&building))
                    .await
                    .unwrap();
                MIGRATOR
                    .run(&pool)
                    .await
                    .expect("migrations apply to an empty database");
                pool.close().await;
                sqlx::query(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                    .execute(&mut connection)
                    .await
                    .unwrap();
            }
            drop_stale_databases(&mut connection).await;
            sqlx::query("SELECT pg_advisory_unlock(7261001)")
                .execute(&mut connection)
                .await
                .unwrap();
            name
        })
        .await
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn drop_stale_databases(connection: &mut PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'mc\\_test\\_%'")
            .fetch_all(&mut *connection)
            .await
            .unwrap();
    for name in names {
        let created: u64 = name
            .split('_')
            .nth(2)
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        if created + 3600 < unix_now() {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut *connection)
                .await;
        }
    }
}

/// A fresh database for one test, dropped when the test ends (even by panic).
pub struct TestDatabase {
    pub name: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let template = template().await;
        let name = format!("mc_test_{}_{}", unix_now(), uuid::Uuid::new_v4().simple());
        let mut connection = maintenance().await;
        let statement = format!("CREATE DATABASE {name} TEMPLATE {template}");
        // A clone fails while another session still touches the template; that passes quickly.
        let mut attempt = 0;
        while let Err(error) = sqlx::query(&statement).execute(&mut connection).await {
            attempt += 1;
            assert!(attempt < 50, "cannot clone the template: {error}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        connection.close().await.ok();
        Self { name }
    }

    /// An empty database (no migration applied), for tests that migrate it themselves; named
    /// and dropped as the others, so one left by an interrupted run is cleaned up too.
    pub async fn create_empty() -> Self {
        // The template's creation also drops stale test databases.
        template().await;
        let name = format!("mc_test_{}_{}", unix_now(), uuid::Uuid::new_v4().simple());
        let mut connection = maintenance().await;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await
            .expect("an empty test database");
        connection.close().await.ok();
        Self { name }
    }

    pub fn url(&self) -> String {
        let options = base_options();
        format!(
            "postgres://{}@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            self.name
        )
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async; a short-lived runtime on its own thread does the work.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut connection = maintenance().await;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut connection)
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// An organization and its two admin keys.
#[derive(Debug, Clone)]
pub struct Org {
    pub id: i64,
    pub test_key: String,
    pub live_key: String,
}

pub struct TestApp {
    pub address: String,
    /// Every response it receives is checked against openapi.json.
    pub client: ContractClient,
    /// A separate pool on the test database, for assertions on what was written.
    pub db: PgPool,
    pub org: Org,
    pub database: TestDatabase,
}

pub fn test_settings(database_url: &str) -> Settings {
    let mut settings = Settings::from_lookup(|_| None).expect("default settings");
    settings.database_url = database_url.to_owned();
    settings.addr = "127.0.0.1:0".to_owned();
    settings.admin_token = Some(ADMIN_TOKEN.to_owned());
    settings.public_url = "http://moncreneau.test".to_owned();
    settings.webhook_allow_private = true;
    // A test-shortened delivery rhythm.
    settings.webhook_retry_schedule = vec![
        Duration::from_millis(300),
        Duration::from_millis(600),
        Duration::from_millis(900),
    ];
    settings.webhook_poll_interval = Duration::from_millis(50);
    // Tests run side by side on a Postgres shared with other work: a few connections each.
    settings.database_max_connections = 4;
    settings
}

/// Starts a server on `database` and answers its base address.
pub async fn start_server(settings: Settings) -> String {
    let application = Application::build(settings)
        .await
        .expect("the server starts");
    let address = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());
    address
}

pub async fn spawn_app() -> TestApp {
    let database = TestDatabase::create().await;
    let settings = test_settings(&database.url());
    spawn_app_with(database, settings).await
}

/// A test app on `database` with its own settings (their `database_url` must name it).
pub async fn spawn_app_with(database: TestDatabase, settings: Settings) -> TestApp {
    let address = start_server(settings).await;
    let db = PgPoolOptions::new()
        .max_connections(2)
        .connect(&database.url())
        .await
        .expect("test pool");
    let client = ContractClient::new(
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client"),
    );
    let mut app = TestApp {
        address,
        client,
        db,
        org: Org {
            id: 0,
            test_key: String::new(),
            live_key: String::new(),
        },
        database,
    };
    app.org = app.create_org("Ministry of Interior", 10).await;
    app
}

/// Counts of everything a request could write, for "nothing written" assertions.
#[derive(Debug, PartialEq, Eq)]
pub struct Footprint {
    pub appointments: i64,
    pub live_appointments: i64,
    pub ledger_lines: i64,
    pub events: i64,
    pub departments: i64,
    pub api_keys: i64,
    pub balances: Vec<(i64, bool, i64)>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{}", self.address, path)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .header("X-API-Key", key);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request sent")
    }

    /// POSTs `body` to `path` of the server at `base` (this app's or another process's on the
    /// same database) and answers the status.
    pub async fn post_status_at(
        &self,
        base: &str,
        path: &str,
        key: &str,
        body: &Value,
    ) -> StatusCode {
        self.client
            .post(format!("{base}/api/v1{path}"))
            .header("X-API-Key", key)
            .json(body)
            .send()
            .await
            .expect("request sent")
            .status()
    }

    pub async fn get(&self, path: &str, key: &str) -> Response {
        self.request(Method::GET, path, key, None).await
    }

    /// POSTs `body`: a wire type of the server (`DepartmentCreate`, …) or raw JSON.
    pub async fn post(&self, path: &str, key: &str, body: &(impl Serialize + ?Sized)) -> Response {
        self.request(Method::POST, path, key, Some(&to_json(body)))
            .await
    }

    /// PUTs `body`: a wire type of the server (`CreditSettings`, …) or raw JSON.
    pub async fn put(&self, path: &str, key: &str, body: &(impl Serialize + ?Sized)) -> Response {
        self.request(Method::PUT, path, key, Some(&to_json(body)))
            .await
    }

    /// PATCHes `body`: a wire type of the server (`DepartmentUpdate`, …) or raw JSON.
    pub async fn patch(&self, path: &str, key: &str, body: &(impl Serialize + ?Sized)) -> Response {
        self.request(Method::PATCH, path, key, Some(&to_json(body)))
            .await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Response {
        self.request(Method::DELETE, path, key, None).await
    }

    pub async fn create_org(&self, name: &str, live_credits: i64) -> Org {
        let response = self
            .client
            .post(self.url("/admin/organizations"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": name, "liveCredits": live_credits}))
            .send()
            .await
            .expect("request sent");
        let body = expect_status(response, StatusCode::CREATED).await;
        let key = |mode: &str| {
            body["apiKeys"]
                .as_array()
                .and_then(|keys| keys.iter().find(|k| k["mode"] == mode))
                .and_then(|k| k["key"].as_str())
                .expect("a key per mode")
                .to_owned()
        };
        Org {
            id: body["id"].as_i64().expect("org id"),
            test_key: key("test"),
            live_key: key("live"),
        }
    }

    /// A department open every day 08:00–18:00 in Africa/Conakry (UTC, no DST), 30-minute slots.
    pub async fn create_department(&self, key: &str, capacity: i64) -> i64 {
        self.create_department_with(key, json!({"capacity": capacity}))
            .await
    }

    pub async fn create_department_with(&self, key: &str, overrides: Value) -> i64 {
        let day = json!([{"start": "08:00", "end": "18:00"}]);
        let mut body = json!({
            "name": "Passport Service",
            "description": "Passport issuance",
            "timezone": "Africa/Conakry",
            "slotDuration": 30,
            "capacity": 3,
            "openingHours": {
                "monday": day, "tuesday": day, "wednesday": day, "thursday": day,
                "friday": day, "saturday": day, "sunday": day,
            },
            "maxAdvanceDays": 90,
        });
        if let (Some(target), Some(extra)) = (body.as_object_mut(), overrides.as_object()) {
            for (k, v) in extra {
                target.insert(k.clone(), v.clone());
            }
        }
        let response = self.post("/departments", key, &body).await;
        let department: Department = read(response).await.json(StatusCode::CREATED);
        department.id
    }

    /// Adds an active staff member named `name` to the department; answers its id.
    pub async fn create_worker(&self, key: &str, department_id: i64, name: &str) -> i64 {
        let body = WorkerCreate {
            name: Some(name.to_owned()),
            ..Default::default()
        };
        let response = self
            .post(&format!("/departments/{department_id}/workers"), key, &body)
            .await;
        let worker: Worker = read(response).await.json(StatusCode::CREATED);
        worker.id
    }

    /// A test-mode key with only `scopes`; answers the clear key.
    pub async fn create_key(&self, scopes: &[&str]) -> String {
        self.issue_key(scopes).await.key
    }

    /// A test-mode key with only `scopes`, as created (with its id and clear key).
    pub async fn issue_key(&self, scopes: &[&str]) -> ApiKeyCreated {
        let body = ApiKeyCreate {
            name: Some("Scoped".to_owned()),
            scopes: Some(scopes.iter().map(|scope| (*scope).to_owned()).collect()),
            expires_at: None,
        };
        self.post("/api-keys", &self.org.test_key, &body)
            .reply()
            .await
            .json(StatusCode::CREATED)
    }

    pub async fn book(&self, key: &str, department_id: i64, date_time: &str) -> Response {
        self.post(
            "/appointments",
            key,
            &json!({"departmentId": department_id, "dateTime": date_time, "name": "Jean Dupont"}),
        )
        .await
    }

    pub async fn balance(&self, key: &str) -> i64 {
        let credits: Credits = self.get("/credits", key).reply().await.json(StatusCode::OK);
        credits.available_credits
    }

    pub async fn footprint(&self) -> Footprint {
        let count = |table: &str| format!("SELECT count(*) FROM {table}");
        Footprint {
            appointments: sqlx::query_scalar(&count("appointments"))
                .fetch_one(&self.db)
                .await
                .unwrap(),
            live_appointments: sqlx::query_scalar(
                "SELECT count(*) FROM appointments WHERE status <> 'CANCELLED'",
            )
            .fetch_one(&self.db)
            .await
            .unwrap(),
            ledger_lines: sqlx::query_scalar(&count("credit_transactions"))
                .fetch_one(&self.db)
                .await
                .unwrap(),
            events: sqlx::query_scalar(&count("events"))
                .fetch_one(&self.db)
                .await
                .unwrap(),
            departments: sqlx::query_scalar(&count("departments"))
                .fetch_one(&self.db)
                .await
                .unwrap(),
            api_keys: sqlx::query_scalar(&count("api_keys"))
                .fetch_one(&self.db)
                .await
                .unwrap(),
            balances: sqlx::query_as(
                "SELECT organization_id, livemode, balance FROM credit_accounts ORDER BY 1, 2",
            )
            .fetch_all(&self.db)
            .await
            .unwrap(),
        }
    }

    /// Every account's balance equals its ledger's sum (and the counters match the ledger).
    pub async fn assert_ledger_consistent(&self) {
        let mismatches: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM credit_accounts c
              WHERE c.balance <> COALESCE((SELECT sum(amount) FROM credit_transactions t
                                            WHERE t.organization_id = c.organization_id AND t.livemode = c.livemode), 0)
                 OR c.consumed <> COALESCE((SELECT -sum(amount) FROM credit_transactions t
                                            WHERE t.organization_id = c.organization_id AND t.livemode = c.livemode
                                              AND t.type = 'CONSUMPTION'), 0)",
        )
        .fetch_one(&self.db)
        .await
        .unwrap();
        assert_eq!(mismatches, 0, "a balance differs from its ledger");
    }
}

/// `body` as JSON (every wire type of the server serializes).
fn to_json(body: &(impl Serialize + ?Sized)) -> Value {
    serde_json::to_value(body).expect("the body serializes")
}

/// Asserts the status (showing the body when it differs) and answers the JSON body.
pub async fn expect_status(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body expected, got {text}"))
    }
}

/// Asserts an error response: status, `error.code`, a request id; answers the body.
pub async fn expect_error(response: Response, status: StatusCode, code: &str) -> Value {
    let header_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = expect_status(response, status).await;
    assert_eq!(body["error"]["code"], code, "wrong error code in {body}");
    assert!(body["error"]["message"].is_string(), "no message in {body}");
    assert_eq!(
        body["error"]["requestId"].as_str(),
        header_id.as_deref(),
        "request id differs from header"
    );
    body
}

/// A local date `days` ahead in Conakry (= UTC), at least one day ahead so notice never bites.
pub fn day_ahead(days: i64) -> NaiveDate {
    Utc::now().date_naive() + chrono::Duration::days(days)
}

/// `YYYY-MM-DDTHH:MM:00` on the day `days` ahead.
pub fn slot(days: i64, time: &str) -> String {
    format!("{}T{time}:00", day_ahead(days))
}

/// The resident memory of this process (the servers under test run in it), in KiB.
pub fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The next date (after today) that falls on `weekday`.
pub fn next_weekday(weekday: Weekday) -> NaiveDate {
    let mut date = Utc::now().date_naive() + chrono::Duration::days(1);
    while date.weekday() != weekday {
        date += chrono::Duration::days(1);
    }
    date
}

// Typed answers of the appointment routes: a test reads the same types the server writes, so a
// renamed or retyped member fails here instead of reading as null.

/// Asserts the status (showing the body when it differs) and reads the body as `T`.
pub async fn expect_json<T: serde::de::DeserializeOwned>(
    response: Response,
    status: StatusCode,
) -> T {
    let actual = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("body does not read as expected ({error}): {text}"))
}

impl TestApp {
    /// Books `date_time` (department time) in `department_id`, asserting the 201.
    pub async fn book_appointment(
        &self,
        key: &str,
        department_id: i64,
        date_time: &str,
    ) -> moncreneau::routes::appointments::json::Appointment {
        expect_json(
            self.book(key, department_id, date_time).await,
            StatusCode::CREATED,
        )
        .await
    }
}

// ---- Webhooks: registration, and a queue the test drives itself. ----

/// Registers a webhook of `events` to `url`; answers it with its secret.
pub async fn register_webhook(
    app: &TestApp,
    key: &str,
    url: &str,
    events: Value,
) -> moncreneau::routes::webhooks::json::WebhookCreated {
    expect_json(
        app.post("/webhooks", key, &json!({"url": url, "events": events}))
            .await,
        StatusCode::CREATED,
    )
    .await
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

/// The attempt log of `webhook`, oldest first.
pub async fn attempts(
    app: &TestApp,
    key: &str,
    webhook: &str,
) -> Vec<moncreneau::routes::webhooks::json::DeliveryAttempt> {
    let page: moncreneau::routes::webhooks::json::DeliveryAttemptPage = expect_json(
        app.get(&format!("/webhooks/{webhook}/deliveries?size=100"), key)
            .await,
        StatusCode::OK,
    )
    .await;
    let mut list = page.content;
    list.reverse();
    list
}

/// Polls (bounded, 15 s) until the webhook's attempt log satisfies `done`.
pub async fn attempts_until(
    app: &TestApp,
    key: &str,
    webhook: &str,
    done: impl Fn(&[moncreneau::routes::webhooks::json::DeliveryAttempt]) -> bool,
) -> Vec<moncreneau::routes::webhooks::json::DeliveryAttempt> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
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

/// A test app whose server runs no delivery worker: deliveries go out only when the test drives
/// the queue with [`worker_of`]'s `deliver_due`, so "nothing more was sent" needs no waiting.
pub async fn spawn_app_without_worker() -> TestApp {
    let database = TestDatabase::create().await;
    let mut settings = test_settings(&database.url());
    settings.webhook_worker = false;
    spawn_app_with(database, settings).await
}

/// A delivery worker on the test database with the test settings, posting over real HTTP.
pub fn worker_of(app: &TestApp) -> moncreneau::webhooks::worker::Worker {
    let settings = test_settings(&app.database.url());
    let sender = moncreneau::webhooks::sender::Sender::new(&settings).expect("the webhook client");
    moncreneau::webhooks::worker::Worker::new(app.db.clone(), sender, &settings)
}

/// How many deliveries of the test database are still PENDING (due now or later).
pub async fn pending_deliveries(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE status = 'PENDING'")
        .fetch_one(&app.db)
        .await
        .expect("count pending deliveries")
}
