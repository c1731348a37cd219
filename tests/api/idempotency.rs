//! Idempotency-Key on POST /appointments: replay, reuse with another body, in-flight, scope.

use futures::future::join_all;
use moncreneau::routes::appointments::json::Appointment;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{expect_error, expect_json, expect_status, slot, spawn_app, TestApp};

async fn book_with_key(
    app: &TestApp,
    key: &str,
    idempotency: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .post(app.url("/appointments"))
        .header("X-API-Key", key)
        .header("Idempotency-Key", idempotency)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_same_key_and_body_replay_the_first_response_byte_for_byte() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 3).await;
    let body = json!({"departmentId": department, "dateTime": slot(2, "10:00"), "name": "Jean"});

    let first = book_with_key(&app, &key, "order-1", &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_bytes = first.bytes().await.unwrap();
    let booked: Appointment = serde_json::from_slice(&first_bytes).unwrap();
    assert_eq!(booked.name, "Jean");
    assert_eq!(
        serde_json::to_vec(&booked).unwrap(),
        first_bytes,
        "the body lists the members in the contract's order"
    );
    let second = book_with_key(&app, &key, "order-1", &body).await;

    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(second.bytes().await.unwrap(), first_bytes);
    let footprint = app.footprint().await;
    assert_eq!(
        (footprint.appointments, app.balance(&key).await),
        (1, 99),
        "one booking, one credit"
    );
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422_and_writes_nothing() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 3).await;
    let body = json!({"departmentId": department, "dateTime": slot(2, "10:00"), "name": "Jean"});
    expect_status(
        book_with_key(&app, &key, "order-2", &body).await,
        StatusCode::CREATED,
    )
    .await;
    let before = app.footprint().await;

    let other = json!({"departmentId": department, "dateTime": slot(2, "10:30"), "name": "Jean"});
    expect_error(
        book_with_key(&app, &key, "order-2", &other).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;

    assert_eq!(app.footprint().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_requests_with_one_key_book_once() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 5).await;
    let body = json!({"departmentId": department, "dateTime": slot(2, "10:00"), "name": "Jean"});

    let answers = join_all((0..12).map(|_| book_with_key(&app, &key, "order-3", &body))).await;

    let mut created = 0;
    for answer in answers {
        match answer.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                let body: Value = answer.json().await.unwrap();
                assert_eq!(body["error"]["code"], "IDEMPOTENCY_CONFLICT");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(created >= 1, "the first one (and replays) answer 201");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM appointments")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        (rows, app.balance(&key).await),
        (1, 99),
        "booked exactly once"
    );
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn a_refusal_is_replayed_and_keys_are_scoped_per_organization_and_mode() {
    let app = spawn_app().await;
    let broke = app.create_org("Broke", 0).await;
    let department = app.create_department(&broke.live_key, 3).await;
    let body = json!({"departmentId": department, "dateTime": slot(2, "10:00"), "name": "Jean"});
    let refused = book_with_key(&app, &broke.live_key, "order-4", &body).await;
    let refused_bytes = {
        assert_eq!(refused.status(), StatusCode::PAYMENT_REQUIRED);
        refused.bytes().await.unwrap()
    };
    let again = book_with_key(&app, &broke.live_key, "order-4", &body).await;
    assert_eq!(
        (
            again.status(),
            again.headers()["idempotent-replayed"].to_str().unwrap()
        ),
        (StatusCode::PAYMENT_REQUIRED, "true")
    );
    assert_eq!(again.bytes().await.unwrap(), refused_bytes);

    // The same key in another organization is another key.
    let mine = app.create_department(&app.org.test_key, 3).await;
    let body = json!({"departmentId": mine, "dateTime": slot(2, "10:00"), "name": "Jean"});
    let booked: Appointment = expect_json(
        book_with_key(&app, &app.org.test_key, "order-4", &body).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(booked.department_id, mine);
}

#[tokio::test]
async fn an_expired_key_can_be_used_again() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 3).await;
    let body = json!({"departmentId": department, "dateTime": slot(2, "10:00"), "name": "Jean"});
    expect_status(
        book_with_key(&app, &key, "order-5", &body).await,
        StatusCode::CREATED,
    )
    .await;
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&app.db)
        .await
        .unwrap();
    let later = book_with_key(&app, &key, "order-5", &body).await;
    assert!(
        later.headers().get("idempotent-replayed").is_none(),
        "after 24 h the key is new"
    );
    expect_status(later, StatusCode::CREATED).await;
}

#[tokio::test]
async fn a_malformed_key_is_400() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 3).await;
    let body = json!({"departmentId": department, "dateTime": slot(2, "10:00"), "name": "Jean"});
    let long = "k".repeat(256);
    for bad in ["has space", long.as_str()] {
        let answer = expect_error(
            book_with_key(&app, &key, bad, &body).await,
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(answer["errors"][0]["field"], "Idempotency-Key");
    }
    assert_eq!(app.footprint().await.appointments, 0);
}
