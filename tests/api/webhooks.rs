//! Webhook management, signatures checked by independent verifiers, and the events themselves.

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{expect_error, expect_json, expect_status, register_webhook, slot, spawn_app};
use crate::receiver::{Receiver, Reply};
use moncreneau::events::{CreditsEventObject, Envelope, ObjectData};
use moncreneau::routes::webhooks::json::{
    TestData, Webhook, WebhookCreated, WebhookDeleted, WebhookList, WebhookRotated,
    WebhookTestResult,
};

const WAIT: Duration = Duration::from_secs(10);

fn hex_hmac(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The official Python SDK's helper, verbatim in its algorithm: it re-serializes the parsed body
/// with `json.dumps` before computing the HMAC.
fn sdk_helper_accepts(body: &[u8], signature: &str, secret: &str) -> bool {
    let script = r#"
import hashlib, hmac, json, sys
payload = json.loads(sys.stdin.buffer.read())
computed = hmac.new(sys.argv[2].encode('utf-8'), json.dumps(payload).encode('utf-8'), hashlib.sha256).hexdigest()
sys.exit(0 if hmac.compare_digest(computed, sys.argv[1]) else 1)
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, signature, secret])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(body).unwrap();
    child.wait().unwrap().success()
}

#[tokio::test]
async fn webhooks_are_created_listed_read_updated_and_deleted() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let created: WebhookCreated = expect_json(
        app.post("/webhooks", &key, &json!({"url": "https://hooks.example.test/in", "events": ["appointment.created", "*"], "description": "CRM"})).await,
        StatusCode::CREATED,
    )
    .await;
    let id = created.webhook.id.as_str();
    assert!(id.starts_with("wh_"));
    assert!(created.secret.starts_with("whsec_"));
    assert_eq!(
        (created.webhook.active, created.webhook.livemode),
        (true, false)
    );
    assert_eq!(created.webhook.events, ["appointment.created", "*"]);
    assert_eq!(created.webhook.description.as_deref(), Some("CRM"));
    assert_eq!(
        (
            created.webhook.circuit.state.as_str(),
            created.webhook.circuit.consecutive_failures
        ),
        ("CLOSED", 0)
    );

    let listed = expect_status(app.get("/webhooks", &key).await, StatusCode::OK).await;
    assert!(
        listed["data"][0].get("secret").is_none(),
        "secrets are hidden when listed"
    );
    let listed: WebhookList = serde_json::from_value(listed).unwrap();
    assert_eq!(listed.data, std::slice::from_ref(&created.webhook));
    let fetched = expect_status(
        app.get(&format!("/webhooks/{id}"), &key).await,
        StatusCode::OK,
    )
    .await;
    assert!(fetched.get("secret").is_none());
    let fetched: Webhook = serde_json::from_value(fetched).unwrap();
    assert_eq!(fetched, created.webhook);

    let updated: Webhook = expect_json(
        app.request(
            reqwest::Method::PUT,
            &format!("/webhooks/{id}"),
            &key,
            Some(&json!({"events": ["appointment.cancelled"], "active": false})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (updated.events, updated.active),
        (vec!["appointment.cancelled".to_owned()], false)
    );
    assert_eq!(updated.url, "https://hooks.example.test/in");

    let given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let with_secret: WebhookCreated = expect_json(
        app.post(
            "/webhooks",
            &key,
            &json!({"url": "https://b.example.test/", "events": ["*"], "secret": given}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(with_secret.secret, given);

    let deleted: WebhookDeleted = expect_json(
        app.delete(&format!("/webhooks/{id}"), &key).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        deleted,
        WebhookDeleted {
            id: id.to_owned(),
            deleted: true
        }
    );
    expect_error(
        app.get(&format!("/webhooks/{id}"), &key).await,
        StatusCode::NOT_FOUND,
        "WEBHOOK_NOT_FOUND",
    )
    .await;
    // Another mode, another organization: not found.
    let other = with_secret.webhook.id.as_str();
    expect_error(
        app.get(&format!("/webhooks/{other}"), &app.org.live_key)
            .await,
        StatusCode::NOT_FOUND,
        "WEBHOOK_NOT_FOUND",
    )
    .await;
    let stranger = app.create_org("Other", 0).await;
    expect_error(
        app.delete(&format!("/webhooks/{other}"), &stranger.test_key)
            .await,
        StatusCode::NOT_FOUND,
        "WEBHOOK_NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn bad_webhook_bodies_are_400_and_the_scope_is_required() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let cases = [
        (json!({"events": ["*"]}), "url", "MISSING_REQUIRED_FIELD"),
        (
            json!({"url": "https://a.example.test/"}),
            "events",
            "MISSING_REQUIRED_FIELD",
        ),
        (
            json!({"url": "https://a.example.test/", "events": []}),
            "events",
            "INVALID_FIELD_VALUE",
        ),
        (
            json!({"url": "https://a.example.test/", "events": ["appointment.deleted"]}),
            "events[0]",
            "INVALID_FIELD_VALUE",
        ),
        (
            json!({"url": "ftp://a.example.test/", "events": ["*"]}),
            "url",
            "INVALID_FIELD_VALUE",
        ),
        (
            json!({"url": "https://a.example.test/", "events": ["*"], "secret": "plain"}),
            "secret",
            "INVALID_FIELD_VALUE",
        ),
        (
            json!({"url": "https://a.example.test/", "events": ["*"], "secret": "whsec_c2hvcnQ="}),
            "secret",
            "INVALID_FIELD_VALUE",
        ),
    ];
    for (body, field, code) in cases {
        let answer = expect_status(
            app.post("/webhooks", &key, &body).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(
            (
                answer["errors"][0]["field"].as_str(),
                answer["errors"][0]["code"].as_str()
            ),
            (Some(field), Some(code)),
            "{body}"
        );
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM webhooks")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 0);
    let reader = expect_status(
        app.post(
            "/api-keys",
            &key,
            &json!({"name": "r", "scopes": ["appointments:read"]}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let reader = reader["key"].as_str().unwrap();
    for path in ["/webhooks", "/events"] {
        let body = expect_error(
            app.get(path, reader).await,
            StatusCode::FORBIDDEN,
            "INSUFFICIENT_SCOPE",
        )
        .await;
        assert_eq!(body["error"]["details"]["requiredScope"], "webhooks:manage");
    }
}

#[tokio::test]
async fn every_delivery_is_signed_for_each_kind_of_verifier() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let receiver = Receiver::start(vec![]).await;
    let secret = register_webhook(&app, &key, &receiver.url, json!(["appointment.created"]))
        .await
        .secret;
    let department = app.create_department(&key, 2).await;
    // A non-ASCII name: the body must still verify through the SDK's re-serialization.
    let body = json!({"departmentId": department, "dateTime": slot(2, "10:00"), "name": "Aïssatou Diallo ☀"});
    expect_status(
        app.post("/appointments", &key, &body).await,
        StatusCode::CREATED,
    )
    .await;

    let delivery = receiver.wait_for(1, WAIT).await.remove(0);

    let expected = hex_hmac(secret.as_bytes(), &delivery.body);
    assert_eq!(
        delivery.header("x-moncreneau-signature"),
        format!("sha256={expected}")
    );
    assert_eq!(delivery.header("x-webhook-signature"), expected);
    assert_eq!(delivery.header("x-moncreneau-event"), "appointment.created");
    assert!(delivery
        .header("user-agent")
        .starts_with("Moncreneau-Webhooks/"));
    let event = delivery.event::<Value>();
    assert_eq!(
        (delivery.header("webhook-id"), event.kind.as_str()),
        (event.id.as_str(), "appointment.created")
    );
    standardwebhooks::Webhook::new(&secret)
        .unwrap()
        .verify(&delivery.body, &delivery.headers)
        .expect("Standard Webhooks verification");
    assert!(
        sdk_helper_accepts(
            &delivery.body,
            delivery.header("x-webhook-signature"),
            &secret
        ),
        "the SDK helper accepts it"
    );
    assert!(
        !sdk_helper_accepts(
            &delivery.body,
            delivery.header("x-webhook-signature"),
            "whsec_wrong"
        ),
        "and rejects a wrong secret"
    );
    let tampered = String::from_utf8(delivery.body.to_vec())
        .unwrap()
        .replace("Diallo", "Diall0");
    assert!(standardwebhooks::Webhook::new(&secret)
        .unwrap()
        .verify(tampered.as_bytes(), &delivery.headers)
        .is_err());
}

#[tokio::test]
async fn during_a_rotation_both_secrets_sign() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let receiver = Receiver::start(vec![]).await;
    let created = register_webhook(&app, &key, &receiver.url, json!(["*"])).await;
    let (id, old) = (created.webhook.id, created.secret);
    let rotated: WebhookRotated = expect_json(
        app.post(&format!("/webhooks/{id}/rotate-secret"), &key, &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    let new = rotated.secret.clone();
    assert_ne!(new, old);
    assert_eq!(rotated.webhook.id, id);
    assert!(rotated.previous_secret_expires_at.is_some());
    let department = app.create_department(&key, 2).await;
    expect_status(
        app.book(&key, department, &slot(2, "10:00")).await,
        StatusCode::CREATED,
    )
    .await;

    let delivery = receiver.wait_for(1, WAIT).await.remove(0);

    for secret in [&old, &new] {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(&delivery.body, &delivery.headers)
            .expect("each secret verifies");
    }
    assert_eq!(delivery.header("webhook-signature").split(' ').count(), 2);
    assert_eq!(
        delivery.header("x-webhook-signature"),
        hex_hmac(new.as_bytes(), &delivery.body)
    );
    assert_eq!(
        delivery.header("x-moncreneau-signature-previous"),
        format!("sha256={}", hex_hmac(old.as_bytes(), &delivery.body))
    );

    // Once the overlap is over, only the new secret signs.
    sqlx::query("UPDATE webhooks SET previous_secret_expires_at = now() - interval '1 second'")
        .execute(&app.db)
        .await
        .unwrap();
    expect_status(
        app.book(&key, department, &slot(2, "10:30")).await,
        StatusCode::CREATED,
    )
    .await;
    let later = receiver.wait_for(2, WAIT).await.remove(1);
    assert!(standardwebhooks::Webhook::new(&old)
        .unwrap()
        .verify(&later.body, &later.headers)
        .is_err());
    standardwebhooks::Webhook::new(&new)
        .unwrap()
        .verify(&later.body, &later.headers)
        .unwrap();
    assert!(later
        .headers
        .get("x-moncreneau-signature-previous")
        .is_none());
}

#[tokio::test]
async fn each_event_type_arrives_at_its_moment_with_its_payload_and_sequence() {
    let app = spawn_app().await;
    let org = app.create_org("Events Clinic", 6).await;
    let key = org.live_key.clone();
    let receiver = Receiver::start(vec![]).await;
    register_webhook(&app, &key, &receiver.url, json!(["*"])).await;
    let department = app.create_department(&key, 2).await;
    let book = |time: &'static str| {
        let (app, key) = (&app, key.clone());
        async move {
            expect_status(
                app.book(&key, department, &slot(2, time)).await,
                StatusCode::CREATED,
            )
            .await["id"]
                .as_i64()
                .unwrap()
        }
    };

    let a = book("10:00").await; // 5 left: at the threshold, credits.low
    expect_status(
        app.patch(
            &format!("/appointments/{a}"),
            &key,
            &json!({"dateTime": slot(3, "11:00")}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let cancel = app
        .request(
            reqwest::Method::DELETE,
            &format!("/appointments/{a}"),
            &key,
            Some(&json!({"reason": "Travel"})),
        )
        .await;
    expect_status(cancel, StatusCode::OK).await; // refund: 6 left
    let b = book("10:30").await; // 5
    expect_status(
        app.post(&format!("/appointments/{b}/validate"), &key, &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    let c = book("11:00").await; // 4
    expect_status(
        app.post(&format!("/appointments/{c}/no-show"), &key, &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    for time in ["11:30", "12:00", "12:30", "13:00"] {
        book(time).await; // down to 0: credits.depleted
    }
    let events: Vec<Envelope<Value>> = receiver
        .wait_for(14, WAIT)
        .await
        .iter()
        .map(|r| r.event())
        .collect();
    let of = |kind: &str| {
        events
            .iter()
            .filter(|e| e.kind == kind)
            .cloned()
            .collect::<Vec<_>>()
    };
    let about = |id: i64| {
        let mut list: Vec<(i32, String)> = events
            .iter()
            .filter(|e| e.data["object"]["id"] == id && e.kind.starts_with("appointment."))
            .map(|e| (e.sequence.unwrap(), e.kind.clone()))
            .collect();
        list.sort();
        list
    };
    assert!(
        events
            .iter()
            .all(|e| e.sequence.is_some() == e.kind.starts_with("appointment.")),
        "a sequence on appointment events only"
    );

    assert_eq!(
        about(a),
        [
            (1, "appointment.created".to_owned()),
            (2, "appointment.updated".to_owned()),
            (3, "appointment.cancelled".to_owned())
        ]
    );
    assert_eq!(
        about(b),
        [
            (1, "appointment.created".to_owned()),
            (2, "appointment.validated".to_owned())
        ]
    );
    assert_eq!(
        about(c),
        [
            (1, "appointment.created".to_owned()),
            (2, "appointment.no_show".to_owned())
        ]
    );
    let created = of("appointment.created")
        .into_iter()
        .find(|e| e.data["object"]["id"] == a)
        .unwrap();
    assert_eq!(created.data["object"]["creditsUsed"], 1);
    assert!(created.livemode);
    assert!(created.id.starts_with("evt_"));
    let updated = &of("appointment.updated")[0];
    assert_eq!(
        updated.data["changes"]["dateTime"],
        json!({"from": slot(2, "10:00"), "to": slot(3, "11:00")})
    );
    let cancelled = &of("appointment.cancelled")[0].data["object"];
    assert_eq!(
        (
            cancelled["cancelReason"].as_str(),
            cancelled["creditsRefunded"].as_i64()
        ),
        (Some("Travel"), Some(1))
    );
    assert!(
        cancelled["cancelledAt"].is_string()
            && cancelled["cancelledBy"]
                .as_str()
                .unwrap()
                .starts_with("key_")
    );
    let low = of("credits.low");
    assert_eq!(
        low.len(),
        2,
        "crossed downwards twice (6→5, and after the refund 6→5 again)"
    );
    // The credits events carry exactly the contract's CreditsEventObject.
    let credits = |event: &Envelope<Value>| -> CreditsEventObject {
        serde_json::from_value::<ObjectData<CreditsEventObject>>(event.data.clone())
            .unwrap()
            .object
    };
    let object = |available_credits| CreditsEventObject {
        available_credits,
        low_balance_threshold: 5,
        livemode: true,
    };
    assert_eq!(credits(&low[0]), object(5));
    let depleted = of("credits.depleted");
    assert_eq!(depleted.len(), 1);
    assert_eq!(credits(&depleted[0]), object(0));
    assert_eq!(
        depleted[0].data.as_object().unwrap().len(),
        1,
        "data is {{object}}"
    );
}

#[tokio::test]
async fn the_events_api_lets_a_receiver_catch_up() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 2).await;
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

    let all = expect_status(app.get("/events", &key).await, StatusCode::OK).await;
    assert_eq!(all["totalElements"], 2);
    assert_eq!(
        all["content"][0]["type"], "appointment.cancelled",
        "newest first"
    );
    let created = expect_status(
        app.get("/events?type=appointment.created&size=1", &key)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(created["content"].as_array().unwrap().len(), 1);
    let event_id = created["content"][0]["id"].as_str().unwrap();
    let one = expect_status(
        app.get(&format!("/events/{event_id}"), &key).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(one, created["content"][0]);
    expect_error(
        app.get(&format!("/events/{event_id}"), &app.org.live_key)
            .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    expect_error(
        app.get("/events?type=appointment.deleted", &key).await,
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
    )
    .await;
    // Older than 30 days: gone from the API.
    sqlx::query("UPDATE events SET created_at = now() - interval '31 days' WHERE id = $1")
        .bind(event_id)
        .execute(&app.db)
        .await
        .unwrap();
    expect_error(
        app.get(&format!("/events/{event_id}"), &key).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    assert_eq!(
        expect_status(app.get("/events", &key).await, StatusCode::OK).await["totalElements"],
        1
    );
}

#[tokio::test]
async fn the_test_endpoint_reports_how_the_receiver_answered() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let receiver = Receiver::start(vec![Reply::status(200), Reply::status(503)]).await;
    let created = register_webhook(&app, &key, &receiver.url, json!(["appointment.created"])).await;
    let (id, secret) = (created.webhook.id, created.secret);

    let ok: WebhookTestResult = expect_json(
        app.post(&format!("/webhooks/{id}/test"), &key, &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (ok.success, ok.http_status, ok.message.as_str()),
        (true, Some(200), "The receiver accepted the test event")
    );
    let refused: WebhookTestResult = expect_json(
        app.post(&format!("/webhooks/{id}/test"), &key, &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (
            refused.success,
            refused.http_status,
            refused.message.as_str()
        ),
        (false, Some(503), "receiver answered 503")
    );

    let test_event = receiver.received().remove(0);
    let envelope: Envelope<TestData> = test_event.event();
    assert_eq!(
        (envelope.kind.as_str(), envelope.livemode, envelope.sequence),
        ("webhook.test", false, None)
    );
    assert_eq!(envelope.data, TestData::new(&id));
    assert_eq!(test_event.header("webhook-id"), envelope.id);
    // Sent as written: the envelope's members in their declared order.
    let text = std::str::from_utf8(&test_event.body).unwrap();
    assert!(text.starts_with(r#"{"id": "evt_"#), "{text}");
    let order: Vec<usize> = ["\"type\"", "\"created\"", "\"livemode\"", "\"data\""]
        .iter()
        .map(|member| text.find(member).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    standardwebhooks::Webhook::new(&secret)
        .unwrap()
        .verify(&test_event.body, &test_event.headers)
        .unwrap();
}
