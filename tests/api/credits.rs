//! Credits: balance, ledger, test grants, threshold and the low/depleted events.

use moncreneau::domain::credits::CreditGrant;
use moncreneau::routes::credits::json::{
    CreditSettings, CreditTransactionPage, Credits, TransactionType,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{expect_status, slot, spawn_app};
use crate::typed::{ErrorBody, ReadReply};
use moncreneau::routes::appointments::json::Appointment;

#[tokio::test]
async fn a_new_organization_has_100_test_credits_and_its_live_grant() {
    let app = spawn_app().await;
    let test: Credits = app
        .get("/credits", &app.org.test_key)
        .reply()
        .await
        .json(StatusCode::OK);
    assert_eq!(
        test,
        Credits {
            available_credits: 100,
            consumed_credits: 0,
            refunded_credits: 0,
            livemode: false,
            low_balance_threshold: 5,
        }
    );
    let live: Credits = app
        .get("/credits", &app.org.live_key)
        .reply()
        .await
        .json(StatusCode::OK);
    assert_eq!((live.available_credits, live.livemode), (10, true));
}

#[tokio::test]
async fn the_ledger_records_each_movement_with_its_running_balance() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 1).await;
    let booked: Appointment = app
        .book(&key, department, &slot(2, "10:00"))
        .reply()
        .await
        .json(StatusCode::CREATED);
    let id = booked.id;
    expect_status(
        app.delete(&format!("/appointments/{id}"), &key).await,
        StatusCode::OK,
    )
    .await;
    let grant = CreditGrant {
        amount: Some(25),
        reason: Some("Sandbox refill".to_owned()),
    };
    let granted: Credits = app
        .post("/credits/grants", &key, &grant)
        .reply()
        .await
        .json(StatusCode::CREATED);
    assert_eq!(granted.available_credits, 125);

    let ledger: CreditTransactionPage = app
        .get("/credits/transactions?page=0&size=10", &key)
        .reply()
        .await
        .json(StatusCode::OK);

    assert_eq!(ledger.total_elements, 4);
    let lines: Vec<_> = ledger
        .content
        .iter()
        .map(|line| {
            (
                line.r#type,
                line.amount,
                line.balance_after,
                line.appointment_id,
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (TransactionType::Grant, 25, 125, None),
            (TransactionType::Refund, 1, 100, Some(id)),
            (TransactionType::Consumption, -1, 99, Some(id)),
            (TransactionType::Grant, 100, 100, None),
        ]
    );
    let credits: Credits = app.get("/credits", &key).reply().await.json(StatusCode::OK);
    assert_eq!((credits.consumed_credits, credits.refunded_credits), (1, 1));
    let live_ledger: CreditTransactionPage = app
        .get("/credits/transactions", &app.org.live_key)
        .reply()
        .await
        .json(StatusCode::OK);
    assert_eq!(
        live_ledger.total_elements, 1,
        "the live ledger only has its own grant"
    );
    app.assert_ledger_consistent().await;
}

#[tokio::test]
async fn bad_grants_and_settings_are_400_and_change_nothing() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let before = app.footprint().await;
    let cases = [
        (json!({"reason": "x"}), "amount", "MISSING_REQUIRED_FIELD"),
        (
            json!({"amount": 0, "reason": "x"}),
            "amount",
            "INVALID_FIELD_VALUE",
        ),
        (
            json!({"amount": -5, "reason": "x"}),
            "amount",
            "INVALID_FIELD_VALUE",
        ),
        (json!({"amount": 5}), "reason", "MISSING_REQUIRED_FIELD"),
        (
            json!({"amount": 5, "reason": " "}),
            "reason",
            "INVALID_FIELD_VALUE",
        ),
        (
            json!({"amount": "5", "reason": "x"}),
            "amount",
            "INVALID_FIELD_VALUE",
        ),
    ];
    for (body, field, code) in cases {
        let answer: ErrorBody = app
            .post("/credits/grants", &key, &body)
            .reply()
            .await
            .json(StatusCode::BAD_REQUEST);
        // The top-level code is the first field's.
        assert_eq!(
            (answer.first(), answer.error.code.as_str()),
            (Some((field, code)), code),
            "{body}"
        );
    }
    // Malformed on purpose (a string, a missing member): raw JSON.
    let threshold = |v: Value| json!({"lowBalanceThreshold": v});
    for body in [json!({}), threshold(json!(-1)), threshold(json!("3"))] {
        let _: ErrorBody = app
            .request(Method::PUT, "/credits/settings", &key, Some(&body))
            .reply()
            .await
            .json(StatusCode::BAD_REQUEST);
    }
    assert_eq!(app.footprint().await, before);
    let credits: Credits = app.get("/credits", &key).reply().await.json(StatusCode::OK);
    assert_eq!(credits.low_balance_threshold, 5);
}

#[tokio::test]
async fn crossing_the_threshold_emits_credits_low_once_and_zero_emits_depleted() {
    let app = spawn_app().await;
    let org = app.create_org("Tight Clinic", 4).await;
    let key = org.live_key.clone();
    let settings = CreditSettings {
        low_balance_threshold: Some(2),
    };
    let set: Credits = app
        .put("/credits/settings", &key, &settings)
        .reply()
        .await
        .json(StatusCode::OK);
    assert_eq!(set.low_balance_threshold, 2);
    let department = app.create_department(&key, 5).await;
    let events = || async {
        sqlx::query_as::<_, (String, Value)>("SELECT type, payload FROM events WHERE organization_id = $1 AND type LIKE 'credits.%' ORDER BY created_at")
            .bind(org.id)
            .fetch_all(&app.db)
            .await
            .unwrap()
    };

    expect_status(
        app.book(&key, department, &slot(2, "08:00")).await,
        StatusCode::CREATED,
    )
    .await; // 3 left
    assert!(events().await.is_empty());
    expect_status(
        app.book(&key, department, &slot(2, "08:30")).await,
        StatusCode::CREATED,
    )
    .await; // 2 left
    let low = events().await;
    assert_eq!(low.len(), 1);
    assert_eq!(low[0].0, "credits.low");
    assert_eq!(low[0].1["data"]["object"]["availableCredits"], 2);
    expect_status(
        app.book(&key, department, &slot(2, "09:00")).await,
        StatusCode::CREATED,
    )
    .await; // 1 left
    assert_eq!(
        events().await.len(),
        1,
        "still below: no second credits.low"
    );
    expect_status(
        app.book(&key, department, &slot(2, "09:30")).await,
        StatusCode::CREATED,
    )
    .await; // 0 left
    let all: Vec<String> = events().await.into_iter().map(|(t, _)| t).collect();
    assert_eq!(all, ["credits.low", "credits.depleted"]);
    app.book(&key, department, &slot(2, "10:00"))
        .reply()
        .await
        .error(StatusCode::PAYMENT_REQUIRED, "INSUFFICIENT_CREDITS");
    assert_eq!(events().await.len(), 2, "a refused booking emits nothing");
}

#[tokio::test]
async fn the_database_itself_refuses_a_negative_balance_and_ledger_edits() {
    let app = spawn_app().await;
    let negative = sqlx::query(
        "INSERT INTO credit_transactions (organization_id, livemode, type, amount, reason) VALUES ($1, true, 'GRANT', -50, 'x')",
    )
    .bind(app.org.id)
    .execute(&app.db)
    .await;
    assert!(negative.is_err(), "a GRANT cannot be negative");
    let overdraw =
        sqlx::query("UPDATE credit_accounts SET balance = -1 WHERE organization_id = $1")
            .bind(app.org.id)
            .execute(&app.db)
            .await;
    assert!(overdraw.is_err(), "a balance cannot go below zero");
    let edit = sqlx::query("UPDATE credit_transactions SET amount = 1000")
        .execute(&app.db)
        .await;
    assert!(edit.is_err(), "the ledger is append-only");
    app.assert_ledger_consistent().await;
}
