//! Credits: balance, ledger, test grants, threshold and the low/depleted events.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{expect_error, expect_status, slot, spawn_app};

#[tokio::test]
async fn a_new_organization_has_100_test_credits_and_its_live_grant() {
    let app = spawn_app().await;
    let test = expect_status(app.get("/credits", &app.org.test_key).await, StatusCode::OK).await;
    assert_eq!(
        test,
        json!({"availableCredits": 100, "consumedCredits": 0, "refundedCredits": 0, "livemode": false, "lowBalanceThreshold": 5})
    );
    let live = expect_status(app.get("/credits", &app.org.live_key).await, StatusCode::OK).await;
    assert_eq!(live["availableCredits"], 10);
    assert_eq!(live["livemode"], true);
}

#[tokio::test]
async fn the_ledger_records_each_movement_with_its_running_balance() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 1).await;
    let id = expect_status(
        app.book(&key, department, &slot(2, "10:00")).await,
        StatusCode::CREATED,
    )
    .await["id"]
        .as_i64()
        .unwrap();
    expect_status(
        app.delete(&format!("/appointments/{id}"), &key).await,
        StatusCode::OK,
    )
    .await;
    let granted = expect_status(
        app.post(
            "/credits/grants",
            &key,
            &json!({"amount": 25, "reason": "Sandbox refill"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(granted["availableCredits"], 125);

    let ledger = expect_status(
        app.get("/credits/transactions?page=0&size=10", &key).await,
        StatusCode::OK,
    )
    .await;

    assert_eq!(ledger["totalElements"], 4);
    let lines: Vec<(String, i64, i64, Value)> = ledger["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["type"].as_str().unwrap().to_owned(),
                l["amount"].as_i64().unwrap(),
                l["balanceAfter"].as_i64().unwrap(),
                l["appointmentId"].clone(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("GRANT".to_owned(), 25, 125, Value::Null),
            ("REFUND".to_owned(), 1, 100, json!(id)),
            ("CONSUMPTION".to_owned(), -1, 99, json!(id)),
            ("GRANT".to_owned(), 100, 100, Value::Null),
        ]
    );
    let credits = expect_status(app.get("/credits", &key).await, StatusCode::OK).await;
    assert_eq!(
        (
            credits["consumedCredits"].as_i64(),
            credits["refundedCredits"].as_i64()
        ),
        (Some(1), Some(1))
    );
    let live_ledger = expect_status(
        app.get("/credits/transactions", &app.org.live_key).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        live_ledger["totalElements"], 1,
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
        let answer = expect_status(
            app.post("/credits/grants", &key, &body).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(
            (
                answer["errors"][0]["field"].as_str(),
                answer["error"]["code"].as_str()
            ),
            (Some(field), Some(code)),
            "{body}"
        );
    }
    let threshold = |v: Value| json!({"lowBalanceThreshold": v});
    for body in [json!({}), threshold(json!(-1)), threshold(json!("3"))] {
        expect_status(
            app.request(reqwest::Method::PUT, "/credits/settings", &key, Some(&body))
                .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    assert_eq!(app.footprint().await, before);
    assert_eq!(
        expect_status(app.get("/credits", &key).await, StatusCode::OK).await["lowBalanceThreshold"],
        5
    );
}

#[tokio::test]
async fn crossing_the_threshold_emits_credits_low_once_and_zero_emits_depleted() {
    let app = spawn_app().await;
    let org = app.create_org("Tight Clinic", 4).await;
    let key = org.live_key.clone();
    let set = app
        .request(
            reqwest::Method::PUT,
            "/credits/settings",
            &key,
            Some(&json!({"lowBalanceThreshold": 2})),
        )
        .await;
    assert_eq!(
        expect_status(set, StatusCode::OK).await["lowBalanceThreshold"],
        2
    );
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
    expect_error(
        app.book(&key, department, &slot(2, "10:00")).await,
        StatusCode::PAYMENT_REQUIRED,
        "INSUFFICIENT_CREDITS",
    )
    .await;
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
