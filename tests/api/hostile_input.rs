//! No input or client can crash, hang or exhaust the server: panics answer 500 in the envelope,
//! dates outside the years 0001–9999 are a 400, duplicated keys and conflicting credentials are
//! refused, slow clients are cut off, and hostile values in every field of the contract answer
//! the envelope, never a 5xx.

use std::time::{Duration, Instant};

use axum::routing::get;
use moncreneau::routes::api_keys::json::ApiKeyCreate;
use moncreneau::routes::availability::json::Availability;
use moncreneau::routes::departments::json::{Department, DepartmentUpdate};
use moncreneau::routes::workers::json::Worker;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{
    resident_kib, slot, spawn_app, spawn_app_with, test_settings, TestApp, TestDatabase,
    ADMIN_TOKEN,
};
use crate::typed::{read, ErrorBody, ReadReply};
use moncreneau::routes::appointments::json::Appointment;

async fn health(address: &str) -> StatusCode {
    reqwest::get(format!("{address}/api/v1/health"))
        .await
        .map(|response| response.status())
        .unwrap_or(StatusCode::BAD_GATEWAY)
}

/// Sends raw bytes on one connection and reads until `marker` has been seen `count` times or the
/// connection closes; answers what was read.
async fn exchange(stream: &mut TcpStream, request: &[u8], marker: &str, count: usize) -> String {
    stream.write_all(request).await.unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0_u8; 4096];
    while String::from_utf8_lossy(&seen).matches(marker).count() < count {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buffer[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// A handler with a bug.
async fn boom() -> &'static str {
    let items: Vec<&str> = Vec::new();
    items[usize::from(items.is_empty())]
}

#[tokio::test]
async fn a_panicking_handler_answers_500_in_the_envelope_and_the_connection_stays_usable() {
    let database = TestDatabase::create().await;
    let settings = test_settings(&database.url());
    let pool = moncreneau::database::connect_and_migrate(&settings)
        .await
        .unwrap();
    let sender = moncreneau::webhooks::sender::Sender::new(&settings).unwrap();
    let state = moncreneau::state::AppState::new(pool, settings, sender);
    // The real middleware stack around one route that panics, and one that does not.
    let routes = axum::Router::new()
        .route("/boom", get(boom))
        .route("/fine", get(|| async { "fine" }));
    let router = moncreneau::startup::with_middleware(routes, state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let limits = moncreneau::serve::Limits {
        header_read_timeout: Duration::from_secs(5),
        max_connections: 16,
        shutdown_grace: Duration::from_secs(1),
    };
    tokio::spawn(moncreneau::serve::serve(
        listener,
        router,
        limits,
        std::future::pending(),
    ));

    let mut stream = TcpStream::connect(address).await.unwrap();
    let answers = exchange(
        &mut stream,
        b"GET /boom HTTP/1.1\r\nHost: x\r\nX-Request-Id: boom-1\r\n\r\nGET /fine HTTP/1.1\r\nHost: x\r\n\r\n",
        "HTTP/1.1 ",
        2,
    )
    .await;

    let (first, second) = answers.split_at(answers.rfind("HTTP/1.1 ").unwrap_or(0));
    assert!(first.starts_with("HTTP/1.1 500"), "{answers}");
    assert!(first.contains(r#""code":"INTERNAL_ERROR""#), "{answers}");
    assert!(first.contains(r#""requestId":"boom-1""#), "{answers}");
    assert!(
        !first.contains("index out of bounds"),
        "the cause stays in the log: {answers}"
    );
    assert!(
        second.starts_with("HTTP/1.1 200"),
        "the same connection serves on: {answers}"
    );
}

#[tokio::test]
async fn dates_outside_the_years_0001_to_9999_are_400_on_every_route_that_takes_one() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let night = json!([{"start": "00:00", "end": "24:00"}]);
    let department = app
        .create_department_with(
            &key,
            json!({"openingHours": {"monday": night, "tuesday": night, "wednesday": night,
                   "thursday": night, "friday": night, "saturday": night, "sunday": night}}),
        )
        .await;
    let booked: Appointment = app
        .book(&key, department, &slot(2, "10:00"))
        .reply()
        .await
        .json(StatusCode::CREATED);
    let before = app.footprint().await;
    let queries = [
        ("/appointments?endDate=%2B262142-12-31", "endDate"),
        ("/appointments?startDate=-4800-01-01", "startDate"),
        ("/appointments?startDate=0000-01-01", "startDate"),
        (&*format!("/departments/{department}/availability?startDate=-4800-01-01&endDate=2027-01-01"), "startDate"),
        (&*format!("/departments/{department}/availability?startDate=2027-01-01&endDate=%2B262142-12-31"), "endDate"),
    ];
    for (path, field) in queries {
        let body = app
            .get(path, &key)
            .reply()
            .await
            .error(StatusCode::BAD_REQUEST, "INVALID_REQUEST");
        assert_eq!(body.fields(), [field], "{path}: {body:?}");
    }
    for date_time in [
        "+262142-12-31T23:50:00",
        "-4800-01-01T10:00:00",
        "9999-12-31T23:59:59-23:59",
        "0000-06-01T10:00:00",
    ] {
        let body = json!({"departmentId": department, "dateTime": date_time, "name": "Far"});
        let answer = app
            .post("/appointments", &key, &body)
            .reply()
            .await
            .error(StatusCode::BAD_REQUEST, "INVALID_DATE_TIME");
        assert_eq!(answer.fields(), ["dateTime"], "{date_time}");
        let path = format!("/appointments/{}", booked.id);
        app.patch(&path, &key, &json!({"dateTime": date_time}))
            .reply()
            .await
            .error(StatusCode::BAD_REQUEST, "INVALID_DATE_TIME");
    }
    // The last slot of year 9999 is a date we take: refused as too far ahead, not a panic.
    let body =
        json!({"departmentId": department, "dateTime": "9999-12-31T23:00:00", "name": "Far"});
    let answer = app
        .post("/appointments", &key, &body)
        .reply()
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "SLOT_NOT_OFFERED");
    assert_eq!(answer.error.detail("reason"), Some(&json!("TOO_FAR_AHEAD")));
    let key_body = ApiKeyCreate {
        name: Some("Far".to_owned()),
        scopes: Some(vec!["appointments:read".to_owned()]),
        expires_at: Some("9999-12-31T23:59:59-23:59".to_owned()),
    };
    let answer = app
        .post("/api-keys", &key, &key_body)
        .reply()
        .await
        .error(StatusCode::BAD_REQUEST, "INVALID_DATE_TIME");
    assert_eq!(answer.fields(), ["expiresAt"]);
    // Dates out of the range a NaiveDate holds: raw JSON.
    for closure in [
        json!({"startDate": "0000-01-01", "endDate": "2027-01-01"}),
        json!({"startDate": "2027-01-01", "endDate": "+262142-01-01"}),
    ] {
        let patch = json!({"closures": [closure]});
        app.patch(&format!("/departments/{department}"), &key, &patch)
            .reply()
            .await
            .error(StatusCode::BAD_REQUEST, "INVALID_FIELD_VALUE");
    }
    assert_eq!(
        app.footprint().await,
        before,
        "no refused request wrote anything"
    );

    // Availability at the end of the calendar, in the zone furthest ahead: every instant it
    // answers is RFC 3339 (no slot runs into year 10000).
    let furthest = DepartmentUpdate {
        timezone: Some("Etc/GMT+12".to_owned()),
        ..Default::default()
    };
    let moved: Department = app
        .patch(&format!("/departments/{department}"), &key, &furthest)
        .reply()
        .await
        .json(StatusCode::OK);
    assert_eq!(moved.timezone, "Etc/GMT+12");
    let path = format!("/departments/{department}/availability?startDate=9999-12-30&endDate=9999-12-31&includeUnavailable=true");
    let reply = app.get(&path, &key).reply().await;
    // Reading it typed parses every instant as RFC 3339; the raw text shows its exact form.
    let listed: Availability = reply.json(StatusCode::OK);
    let slots: usize = listed.availability.iter().map(|day| day.slots.len()).sum();
    assert!(slots > 0);
    let raw: Value = reply.parse();
    let instants: Vec<&str> = raw["availability"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|day| day["slots"].as_array().into_iter().flatten())
        .flat_map(|slot| [&slot["startsAt"], &slot["endsAt"]])
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(instants.len(), 2 * slots);
    for text in instants {
        assert_eq!(text.len(), 20, "YYYY-MM-DDTHH:MM:SSZ: {text}");
    }
}

#[tokio::test]
async fn a_key_given_twice_in_a_body_is_refused_at_any_depth() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 2).await;
    let before = app.footprint().await;
    let date_time = slot(2, "10:00");
    let cases = [
        (
            format!(
                r#"{{"departmentId":{department},"dateTime":"{date_time}","name":"Checked","name":"Booked"}}"#
            ),
            "name",
        ),
        (
            format!(
                r#"{{"departmentId":{department},"dateTime":"{date_time}","name":"A","metadata":{{"k":"1","k":"2"}}}}"#
            ),
            "metadata.k",
        ),
    ];
    for (body, field) in cases {
        let response = app
            .client
            .post(app.url("/appointments"))
            .header("X-API-Key", &key)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let answer = read(response)
            .await
            .error(StatusCode::BAD_REQUEST, "INVALID_REQUEST");
        assert_eq!(answer.fields(), [field], "{body}: {answer:?}");
    }
    assert_eq!(app.footprint().await, before);
}

#[tokio::test]
async fn an_array_is_never_read_as_an_object_at_any_depth() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 2).await;
    let worker = app.create_worker(&key, department, "Dr. Diallo").await;
    let before = app.footprint().await;
    // serde reads a struct from an array of its fields in order; the schemas say object.
    let cases = [
        (
            Method::PATCH,
            format!("/departments/{department}/workers/{worker}"),
            json!([null, null]),
            "",
        ),
        (
            Method::POST,
            format!("/departments/{department}/workers"),
            json!(["Dr. Camara", true]),
            "",
        ),
        (
            Method::PATCH,
            format!("/departments/{department}"),
            json!({"closures": [["2030-01-01", "2030-01-02", "x"]]}),
            "closures[0]",
        ),
        (
            Method::PATCH,
            format!("/departments/{department}"),
            json!({"openingHours": {"monday": [["08:00", "12:00"]]}}),
            "openingHours.monday[0]",
        ),
        (
            Method::POST,
            "/appointments".to_owned(),
            json!([department, slot(2, "10:00"), "Jean"]),
            "",
        ),
        (
            Method::POST,
            "/credits/grants".to_owned(),
            json!([5, "why"]),
            "",
        ),
    ];
    for (method, path, body, field) in cases {
        let response = app.request(method.clone(), &path, &key, Some(&body)).await;
        let answer: ErrorBody = read(response).await.json(StatusCode::BAD_REQUEST);
        assert_eq!(
            answer.fields(),
            [field],
            "{method} {path} {body}: {answer:?}"
        );
        assert_eq!(
            answer.error.detail("fields"),
            Some(&json!([field])),
            "{answer:?}"
        );
    }
    assert_eq!(app.footprint().await, before);
    let unchanged: Worker = app
        .get(&format!("/departments/{department}/workers/{worker}"), &key)
        .reply()
        .await
        .json(StatusCode::OK);
    assert_eq!(unchanged.name, "Dr. Diallo");
}

#[tokio::test]
async fn credential_headers_that_disagree_are_refused() {
    let app = spawn_app().await;
    let other = app.create_org("Other", 0).await;
    for (name, first, second) in [
        (
            "X-API-Key",
            app.org.test_key.clone(),
            other.test_key.clone(),
        ),
        (
            "Authorization",
            format!("Bearer {}", app.org.test_key),
            format!("Bearer {}", other.test_key),
        ),
    ] {
        let response = app
            .client
            .get(app.url("/departments"))
            .header(name, &first)
            .header(name, &second)
            .send()
            .await
            .unwrap();
        read(response)
            .await
            .error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN_FORMAT");
        // The same value twice is one value.
        let response = app
            .client
            .get(app.url("/departments"))
            .header(name, &first)
            .header(name, &first)
            .send()
            .await
            .unwrap();
        let _: Vec<Department> = read(response).await.json(StatusCode::OK);
    }
}

/// An app whose clients must send a request head within 1 s.
async fn impatient_app() -> TestApp {
    let database = TestDatabase::create().await;
    let mut settings = test_settings(&database.url());
    settings.header_read_timeout = Duration::from_secs(1);
    spawn_app_with(database, settings).await
}

async fn closed_within(stream: &mut TcpStream, bound: Duration) -> bool {
    let mut buffer = [0_u8; 1024];
    let deadline = Instant::now() + bound;
    loop {
        match tokio::time::timeout_at(deadline.into(), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_request_head_or_idles_is_cut_off() {
    let app = impatient_app().await;
    let address = app.address.trim_start_matches("http://").to_owned();

    let mut slow = TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(
        closed_within(&mut slow, Duration::from_secs(5)).await,
        "a half-sent head is cut off"
    );

    let mut idle = TcpStream::connect(&address).await.unwrap();
    let answer = exchange(
        &mut idle,
        b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
        "HTTP/1.1 200",
        1,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)).await,
        "an idle keep-alive is cut off"
    );
    assert_eq!(health(&app.address).await, StatusCode::OK);
}

#[tokio::test]
async fn hundreds_of_slow_clients_cost_bounded_memory_and_go_away() {
    let app = impatient_app().await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let before = resident_kib();
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream
            .write_all(b"POST /api/v1/appointments HTTP/1.1\r\nHost: x\r\nX-Pad: ")
            .await
            .unwrap();
        slow.push(stream);
    }
    assert_eq!(
        health(&app.address).await,
        StatusCode::OK,
        "served while 300 clients dawdle"
    );
    let grown_kib = resident_kib().saturating_sub(before);
    eprintln!("300 slow clients: resident memory {before} KiB, grew by {grown_kib} KiB");
    let grown_mib = grown_kib / 1024;
    assert!(
        grown_mib < 32,
        "300 slow clients grew memory by {grown_mib} MiB"
    );
    for stream in &mut slow {
        assert!(
            closed_within(stream, Duration::from_secs(5)).await,
            "every slow client is cut off"
        );
    }
    assert_eq!(health(&app.address).await, StatusCode::OK);
}

#[tokio::test]
async fn past_the_connection_cap_new_clients_wait_for_a_place_and_are_served() {
    let database = TestDatabase::create().await;
    let mut settings = test_settings(&database.url());
    settings.header_read_timeout = Duration::from_secs(1);
    settings.max_client_connections = 2;
    let app = spawn_app_with(database, settings).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    // The pooled connections of the test client hold places too: two silent sockets fill the
    // rest, and are cut off after a second, making room.
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(TcpStream::connect(&address).await.unwrap());
    }
    let started = Instant::now();
    let status = reqwest::Client::new()
        .get(format!("{}/api/v1/health", app.address))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "served within {:?}",
        started.elapsed()
    );
}

/// Values an attacker would try in a string, number or id position.
fn hostile_json_values() -> Vec<Value> {
    vec![
        json!(""),
        json!(" "),
        json!("\u{0000}"),
        json!("x".repeat(5000)),
        json!("+262142-12-31T23:50:00"),
        json!("-4800-01-01"),
        json!("9999-12-31T23:59:59-23:59"),
        json!("0000-01-01"),
        json!("2027-02-30"),
        json!("😀\u{202e}ǅ"),
        json!("' OR 1=1 --"),
        json!("../../etc/passwd"),
        json!(-1),
        json!(0),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(1e308),
        json!(-1.5),
        json!(true),
        json!(null),
        json!([]),
        json!([[[[[["deep"]]]]]]),
        json!({}),
        json!({"a": {"b": {"c": "d"}}}),
    ]
}

/// The same as text, for paths and query strings (percent-encoded when sent).
fn hostile_texts() -> Vec<String> {
    vec![
        String::new(),
        "-1".into(),
        "0".into(),
        "99999999999999999999".into(),
        "1e3".into(),
        "abc".into(),
        "\u{0000}".into(),
        "%00".into(),
        "x".repeat(3000),
        "+262142-12-31".into(),
        "-4800-01-01".into(),
        "9999-12-31T23:59:59-23:59".into(),
        "😀".into(),
        "' OR 1=1 --".into(),
        "true".into(),
        "[]".into(),
    ]
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// One request of the sweep: its answer must be the envelope when it is an error, never a 5xx
/// (the contract hook of the client also checks it against openapi.json).
async fn probe(app: &TestApp, method: &Method, path: &str, body: Option<Vec<u8>>) {
    let admin = path.starts_with("/api/v1/admin");
    let mut request = app
        .client
        .request(method.clone(), format!("{}{path}", app.address));
    request = if admin {
        request.bearer_auth(ADMIN_TOKEN)
    } else {
        request.header("X-API-Key", &app.org.test_key)
    };
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
    let reply = read(response).await;
    let status = reply.status;
    assert!(
        status.as_u16() < 500,
        "{method} {path} answered {status}: {}",
        reply.text
    );
    if status.as_u16() >= 400 {
        let body: ErrorBody = reply.parse();
        assert!(
            !body.error.request_id.is_empty(),
            "{method} {path}: {}",
            reply.text
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_in_every_path_query_and_body_field_of_the_contract_never_give_a_5xx() {
    let database = TestDatabase::create().await;
    let mut settings = test_settings(&database.url());
    settings.rate_limit_per_hour = 0;
    let app = spawn_app_with(database, settings).await;
    let department = app.create_department(&app.org.test_key, 2).await;
    let spec: Value = serde_json::from_str(include_str!("../../openapi.json")).unwrap();
    let mut probes = 0;
    for (template, operations) in spec["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            if !matches!(
                method,
                Method::GET | Method::POST | Method::PUT | Method::PATCH | Method::DELETE
            ) {
                continue;
            }
            let parameters: Vec<&Value> = operation["parameters"]
                .as_array()
                .map(|p| p.iter().collect())
                .unwrap_or_default();
            let resolve = |p: &Value| -> Value {
                match p["$ref"].as_str() {
                    Some(reference) => spec
                        .pointer(reference.trim_start_matches('#'))
                        .cloned()
                        .unwrap_or(Value::Null),
                    None => p.clone(),
                }
            };
            let parameters: Vec<Value> = parameters.into_iter().map(resolve).collect();
            let path_names: Vec<String> = parameters
                .iter()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect();
            // Ids that exist where one does (the department), else plain numbers: the request
            // reaches the checks behind the path.
            let fill = |except: Option<(&str, &str)>| -> String {
                let mut path = template.clone();
                for name in &path_names {
                    let value = match except {
                        Some((hostile_name, value)) if hostile_name == name => encode(value),
                        _ if name == "id" && template.starts_with("/api/v1/departments") => {
                            department.to_string()
                        }
                        _ => "999999".to_owned(),
                    };
                    path = path.replace(&format!("{{{name}}}"), &value);
                }
                path
            };
            for name in &path_names {
                // An empty segment is another route (`//`), not a value of this one.
                for text in hostile_texts().into_iter().filter(|text| !text.is_empty()) {
                    probe(&app, &method, &fill(Some((name, &text))), None).await;
                    probes += 1;
                }
            }
            for parameter in parameters.iter().filter(|p| p["in"] == "query") {
                let Some(name) = parameter["name"].as_str() else {
                    continue;
                };
                for text in hostile_texts() {
                    let path = format!("{}?{name}={}", fill(None), encode(&text));
                    probe(&app, &method, &path, None).await;
                    probes += 1;
                }
            }
            let Some(schema) = operation.pointer("/requestBody/content/application~1json/schema")
            else {
                continue;
            };
            let schema = resolve(schema);
            let properties: Vec<String> = schema["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            for property in &properties {
                for value in hostile_json_values() {
                    let body = serde_json::to_vec(&json!({property: value})).unwrap();
                    probe(&app, &method, &fill(None), Some(body)).await;
                    probes += 1;
                }
            }
            for raw in [
                &b"[]"[..],
                b"\"x\"",
                b"1",
                b"null",
                b"{",
                b"{\"a\":1,\"a\":2}",
                &b"[".repeat(10_000),
            ] {
                probe(&app, &method, &fill(None), Some(raw.to_vec())).await;
                probes += 1;
            }
        }
    }
    assert!(probes > 1000, "the sweep sent {probes} requests");
    assert_eq!(health(&app.address).await, StatusCode::OK);
}
