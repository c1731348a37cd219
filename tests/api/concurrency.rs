//! The invariants under load: no overbooking and no credit spent twice or lost, whatever the
//! number of simultaneous requests and server processes.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{expect_status, slot, spawn_app, start_server, test_settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_simultaneous_bookings_of_a_capacity_two_slot_over_two_servers_give_two() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 2).await;
    // A second server process on the same database.
    let second = start_server(test_settings(&app.database.url())).await;
    let date_time = slot(2, "10:00");
    let requests = (0..50).map(|i| {
        let base = if i % 2 == 0 { app.address.clone() } else { second.clone() };
        let client = app.client.clone();
        let key = key.clone();
        let body = json!({"departmentId": department, "dateTime": date_time, "name": format!("Person {i}")});
        async move {
            let response = client.post(format!("{base}/api/v1/appointments")).header("X-API-Key", key).json(&body).send().await.unwrap();
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, body)
        }
    });

    let results = join_all(requests).await;

    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let conflicts = results
        .iter()
        .filter(|(s, b)| *s == StatusCode::CONFLICT && b["error"]["code"] == "SLOT_NOT_AVAILABLE")
        .count();
    assert_eq!((created, conflicts), (2, 48), "{results:?}");
    assert_eq!(app.balance(&key).await, 98);
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM appointments WHERE status <> 'CANCELLED' AND department_id = $1",
    )
    .bind(department)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(live, 2);
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE type = 'appointment.created'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(events, 2);
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_credits_and_twenty_simultaneous_bookings_give_three() {
    let app = spawn_app().await;
    let org = app.create_org("Small Clinic", 3).await;
    let department = app.create_department(&org.live_key, 5).await;
    let requests = (0..20).map(|i| {
        let time = format!("{:02}:{:02}", 8 + i / 2, (i % 2) * 30);
        let app = &app;
        let key = org.live_key.clone();
        async move {
            let response = app.book(&key, department, &slot(2, &time)).await;
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, body)
        }
    });

    let results = join_all(requests).await;

    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let refused = results
        .iter()
        .filter(|(s, b)| {
            *s == StatusCode::PAYMENT_REQUIRED && b["error"]["code"] == "INSUFFICIENT_CREDITS"
        })
        .count();
    assert_eq!((created, refused), (3, 17), "{results:?}");
    assert_eq!(app.balance(&org.live_key).await, 0);
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM appointments WHERE organization_id = $1")
            .bind(org.id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(rows, 3, "refused bookings left no row");
    let depleted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE organization_id = $1 AND type = 'credits.depleted'",
    )
    .bind(org.id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(depleted, 1);
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_simultaneous_cancel_and_reschedule_leave_one_consistent_outcome() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 1).await;
    for round in 0..8 {
        let from = slot(2, &format!("{:02}:00", 8 + round));
        let to = slot(3, &format!("{:02}:00", 8 + round));
        let id = app.book_appointment(&key, department, &from).await.id;
        let path = format!("/appointments/{id}");
        let patch_body = json!({"dateTime": to});
        let (cancel, patch) =
            tokio::join!(app.delete(&path, &key), app.patch(&path, &key, &patch_body));
        let (cancel_status, patch_status) = (cancel.status(), patch.status());

        assert_eq!(
            cancel_status,
            StatusCode::OK,
            "round {round}: a cancel always succeeds"
        );
        assert!(
            patch_status == StatusCode::OK || patch_status == StatusCode::CONFLICT,
            "round {round}: reschedule answered {patch_status}"
        );
        let (status, starts, seat_holders_from, seat_holders_to): (String, String, i64, i64) = sqlx::query_as(
            "SELECT a.status, to_char(a.starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS'),
                    (SELECT count(*) FROM appointments b WHERE b.status <> 'CANCELLED' AND b.starts_at = $2::timestamp AT TIME ZONE 'UTC'),
                    (SELECT count(*) FROM appointments b WHERE b.status <> 'CANCELLED' AND b.starts_at = $3::timestamp AT TIME ZONE 'UTC')
               FROM appointments a WHERE a.id = $1",
        )
        .bind(id)
        .bind(&from)
        .bind(&to)
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!(status, "CANCELLED", "round {round}");
        let expected_start = if patch_status == StatusCode::OK {
            &to
        } else {
            &from
        };
        assert_eq!(
            &starts, expected_start,
            "round {round}: the reschedule applied iff it answered 200"
        );
        assert_eq!(
            (seat_holders_from, seat_holders_to),
            (0, 0),
            "round {round}: both slots are free again"
        );
    }
    let refunds: i64 =
        sqlx::query_scalar("SELECT count(*) FROM credit_transactions WHERE type = 'REFUND'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(refunds, 8, "one refund per cancelled appointment");
    assert_eq!(app.balance(&key).await, 100);
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_of_bookings_and_cancellations_keeps_the_ledger_exact() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 3).await;
    let mut booked = Vec::new();
    for time in ["08:00", "08:30", "09:00", "09:30", "10:00", "10:30"] {
        booked.push(
            app.book_appointment(&key, department, &slot(2, time))
                .await
                .id,
        );
    }
    // Cancel each of the first six twice while 30 new bookings compete for 4 slots.
    let cancels = booked.iter().flat_map(|id| [*id, *id]).map(|id| {
        let app = &app;
        let key = key.clone();
        async move {
            app.delete(&format!("/appointments/{id}"), &key)
                .await
                .status()
        }
    });
    let bookings = (0..30).map(|i| {
        let app = &app;
        let key = key.clone();
        let time = ["11:00", "11:30", "12:00", "12:30"][i % 4];
        async move { app.book(&key, department, &slot(3, time)).await.status() }
    });
    let (cancel_statuses, booking_statuses) = tokio::join!(join_all(cancels), join_all(bookings));

    assert!(
        cancel_statuses.iter().all(|s| *s == StatusCode::OK),
        "{cancel_statuses:?}"
    );
    let created = booking_statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 12, "4 slots of capacity 3: {booking_statuses:?}");
    let expected = 100 - 6 + 6 - 12;
    assert_eq!(app.balance(&key).await, expected);
    let (grants, consumed, refunded, live): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT COALESCE(sum(amount) FILTER (WHERE type = 'GRANT'), 0)::bigint,
                COALESCE(-sum(amount) FILTER (WHERE type = 'CONSUMPTION'), 0)::bigint,
                COALESCE(sum(amount) FILTER (WHERE type = 'REFUND'), 0)::bigint,
                (SELECT count(*) FROM appointments WHERE status <> 'CANCELLED')
           FROM credit_transactions WHERE NOT livemode",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(grants - consumed + refunded, expected);
    assert_eq!(
        consumed - refunded,
        live,
        "every live appointment holds exactly one credit"
    );
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grants_racing_bookings_leave_a_ledger_that_reads_like_a_bank_statement() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 40).await;
    let second = start_server(test_settings(&app.database.url())).await;
    let bookings = (0..24).map(|i| {
        let base = if i % 2 == 0 { &app.address } else { &second };
        let body = json!({"departmentId": department, "dateTime": slot(2, "10:00"), "name": format!("P{i}")});
        let (app, key) = (&app, &key);
        async move { app.post_status_at(base, "/appointments", key, &body).await }
    });
    let grants = (0..12).map(|i| {
        let base = if i % 2 == 0 { &second } else { &app.address };
        let body = json!({"amount": 2, "reason": format!("top-up {i}")});
        let (app, key) = (&app, &key);
        async move {
            app.post_status_at(base, "/credits/grants", key, &body)
                .await
        }
    });

    let (bookings, grants) = tokio::join!(join_all(bookings), join_all(grants));

    assert!(
        bookings.iter().all(|s| *s == StatusCode::CREATED),
        "{bookings:?}"
    );
    assert!(grants.iter().all(|s| s.is_success()), "{grants:?}");
    let listed = expect_status(
        app.get("/credits/transactions?size=100", &key).await,
        StatusCode::OK,
    )
    .await;
    let lines = listed["content"].as_array().expect("content");
    assert_eq!(
        lines.len(),
        1 + 24 + 12,
        "the opening grant, 24 bookings, 12 grants"
    );
    // Listed newest first: each line's balance is the next (older) one's plus its amount.
    for pair in lines.windows(2) {
        let (newer, older) = (&pair[0], &pair[1]);
        assert_eq!(
            newer["balanceAfter"].as_i64().unwrap(),
            older["balanceAfter"].as_i64().unwrap() + newer["amount"].as_i64().unwrap(),
            "{older} then {newer}"
        );
    }
    assert_eq!(
        lines[0]["balanceAfter"].as_i64(),
        Some(app.balance(&key).await)
    );
    app.assert_ledger_consistent().await;
}
