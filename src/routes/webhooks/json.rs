//! The shapes of `/webhooks` on the wire, in their fields' order. The schemas of openapi.json
//! (`Webhook`, `WebhookCircuit`, `WebhookCreated`, `WebhookRotated`, `WebhookList`,
//! `WebhookCreateRequest`, `WebhookUpdateRequest`, `WebhookTestResult`, `WebhookDeleted`,
//! `DeliveryAttempt`, `DeliveryAttemptPage`, `RetryQueued`) are derived from these types; the
//! shared enumerations they refer to (`WebhookEventFilter`, `WebhookSecret`, `EventType`,
//! `DeliveryStatus`) stay in `openapi/base.json`, beside the event payloads that use them too.

use std::borrow::Cow;

use aide::generate::GenContext;
use aide::openapi::Operation;
use chrono::{DateTime, Utc};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::domain::datetime::format_timestamp;
use crate::error::{ErrorCode, FieldError};
use crate::events::{narrowed_schema, Envelope, WEBHOOK_TEST};
use crate::extract::PathParameters;
use crate::openapi::refer_parameter;
use crate::routes::pagination::{Listed, Page};
use crate::store::webhooks::{Attempt, Changes, Queued, Webhook as Stored};
use crate::webhooks::circuit::{CircuitRule, CircuitState};
use crate::webhooks::sender::Outcome;
use crate::webhooks::EVENT_TYPES;

/// The id of a webhook (`wh_…`), as given in the path: the contract's `WebhookId` parameter.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct WebhookId(pub String);

impl PathParameters for WebhookId {
    fn document(_: &mut GenContext, operation: &mut Operation) {
        refer_parameter(operation, "WebhookId");
    }
}

/// The id of a delivery (`dlv_…`), as given in the path: the contract's `DeliveryId` parameter.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct DeliveryId(pub String);

impl PathParameters for DeliveryId {
    fn document(_: &mut GenContext, operation: &mut Operation) {
        refer_parameter(operation, "DeliveryId");
    }
}

/// The endpoint's circuit. After `MONCRENEAU_WEBHOOK_CIRCUIT_FAILURES` consecutive failed attempts (default 5) it opens: the endpoint rests (`MONCRENEAU_WEBHOOK_CIRCUIT_PROBE_MS`, default 5 s, doubled after each failed probe, at most 10 min), then one probe goes out alone; its success closes the circuit and the queued deliveries drain in creation order, a few at a time. Deliveries waiting on an open circuit keep their attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookCircuit {
    /// CLOSED: deliveries go out as they fall due. OPEN: resting until `openUntil`. HALF_OPEN: rested; the next attempt is a probe.
    #[schemars(extend("enum" = ["CLOSED", "OPEN", "HALF_OPEN"]))]
    pub state: String,
    pub consecutive_failures: u32,
    /// While OPEN: when the next probe may go out; null otherwise.
    #[schemars(required, extend("type" = ["string", "null"], "format" = "date-time"))]
    pub open_until: Option<String>,
}

/// A webhook endpoint, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(example = Webhook::example())]
pub struct Webhook {
    #[schemars(extend("pattern" = "^wh_[A-Za-z0-9]{24}$", "examples" = ["wh_Vb3Nq8Lm2Xc7Rt5Yp1Kd9Hs4"]))]
    pub id: String,
    /// The receiver, in normalized form (e.g. `https://Example.com` reads `https://example.com/`).
    #[schemars(length(max = 2048), extend("format" = "uri"))]
    pub url: String,
    /// Subscribed event types (`*`: all).
    #[schemars(extend(
        "minItems" = 1,
        "uniqueItems" = true,
        "items" = {"$ref": "#/components/schemas/WebhookEventFilter"}
    ))]
    pub events: Vec<String>,
    #[schemars(required, length(max = 500), extend("type" = ["string", "null"]))]
    pub description: Option<String>,
    /// Only active webhooks get new deliveries; queued deliveries of an inactive webhook end FAILED without being sent.
    pub active: bool,
    /// Why the server disabled the webhook: `The receiver answered 410 Gone` or `No successful delivery for 3 days`; null otherwise, and cleared by `PUT` with `active: true`.
    #[schemars(
        required,
        extend("type" = ["string", "null"], "examples" = ["The receiver answered 410 Gone"])
    )]
    pub disabled_reason: Option<String>,
    pub circuit: WebhookCircuit,
    /// The mode of the key that created it; it only receives events of that mode.
    pub livemode: bool,
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    #[schemars(extend("format" = "date-time"))]
    pub updated_at: String,
}

impl Webhook {
    /// The public form of `webhook`, its circuit as `rule` reads it at `now`.
    pub fn new(webhook: &Stored, rule: CircuitRule, now: DateTime<Utc>) -> Self {
        let consecutive = u32::try_from(webhook.consecutive_failures).unwrap_or(0);
        let state = rule.state(consecutive, webhook.circuit_open_until, now);
        Self {
            id: webhook.id.clone(),
            url: webhook.url.clone(),
            events: webhook.events.clone(),
            description: webhook.description.clone(),
            active: webhook.active,
            disabled_reason: webhook.disabled_reason.clone(),
            circuit: WebhookCircuit {
                state: state.as_str().to_owned(),
                consecutive_failures: consecutive,
                open_until: (state == CircuitState::Open)
                    .then_some(webhook.circuit_open_until)
                    .flatten()
                    .map(format_timestamp),
            },
            livemode: webhook.livemode,
            created_at: format_timestamp(webhook.created_at),
            updated_at: format_timestamp(webhook.updated_at),
        }
    }

    /// The contract's example webhook.
    pub fn example() -> Self {
        Self {
            id: "wh_Vb3Nq8Lm2Xc7Rt5Yp1Kd9Hs4".to_owned(),
            url: "https://hooks.example.com/moncreneau".to_owned(),
            events: vec![
                "appointment.created".to_owned(),
                "appointment.cancelled".to_owned(),
            ],
            description: Some("Booking sync".to_owned()),
            active: true,
            disabled_reason: None,
            circuit: WebhookCircuit {
                state: CircuitState::Closed.as_str().to_owned(),
                consecutive_failures: 0,
                open_until: None,
            },
            livemode: false,
            created_at: "2026-01-21T14:30:00.123Z".to_owned(),
            updated_at: "2026-01-21T14:30:00.123Z".to_owned(),
        }
    }
}

/// A new webhook with its signing `secret`. The secret is shown here and by rotate-secret only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookCreated {
    #[serde(flatten)]
    pub webhook: Webhook,
    pub secret: String,
}

impl WebhookCreated {
    pub fn example() -> Self {
        Self {
            webhook: Webhook::example(),
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwYmPmOLzXrUc=".to_owned(),
        }
    }
}

/// The webhook with its new `secret`. The previous secret keeps signing alongside it until `previousSecretExpiresAt` (24 hours).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookRotated {
    #[serde(flatten)]
    pub webhook: Webhook,
    pub secret: String,
    pub previous_secret_expires_at: Option<String>,
}

impl WebhookRotated {
    pub fn example() -> Self {
        let mut webhook = Webhook::example();
        webhook.updated_at = "2026-01-25T08:00:00.000Z".to_owned();
        Self {
            webhook,
            secret: "whsec_q7U0sXg3bq1m5cVvJ9rZ2yT8kN4pA6dHfW1eL3oR5iE=".to_owned(),
            previous_secret_expires_at: Some("2026-01-26T08:00:00.000Z".to_owned()),
        }
    }
}

/// `Webhook` and the members a secret-bearing answer adds, as `allOf` (what serde's flatten
/// writes on the wire).
fn webhook_with(
    generator: &mut SchemaGenerator,
    description: &str,
    extra: Schema,
    example: serde_json::Value,
) -> Schema {
    let webhook = generator.subschema_for::<Webhook>();
    let mut schema = json_schema!({ "description": description });
    schema.insert(
        "allOf".to_owned(),
        serde_json::Value::Array(vec![webhook.into(), extra.into()]),
    );
    schema.insert(
        "examples".to_owned(),
        serde_json::Value::Array(vec![example]),
    );
    schema
}

impl JsonSchema for WebhookCreated {
    fn schema_name() -> Cow<'static, str> {
        "WebhookCreated".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let extra = json_schema!({
            "type": "object",
            "required": ["secret"],
            "properties": {"secret": {"$ref": "#/components/schemas/WebhookSecret"}},
        });
        webhook_with(
            generator,
            "A new webhook with its signing `secret`. The secret is shown here and by rotate-secret only.",
            extra,
            serde_json::to_value(Self::example()).unwrap_or_default(),
        )
    }
}

impl JsonSchema for WebhookRotated {
    fn schema_name() -> Cow<'static, str> {
        "WebhookRotated".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let extra = json_schema!({
            "type": "object",
            "required": ["secret", "previousSecretExpiresAt"],
            "properties": {
                "secret": {"$ref": "#/components/schemas/WebhookSecret"},
                "previousSecretExpiresAt": {
                    "type": "string",
                    "format": "date-time",
                    "description": "Until when deliveries are also signed with the secret rotated out.",
                },
            },
        });
        webhook_with(
            generator,
            "The webhook with its new `secret`. The previous secret keeps signing alongside it until `previousSecretExpiresAt` (24 hours).",
            extra,
            serde_json::to_value(Self::example()).unwrap_or_default(),
        )
    }
}

/// Every webhook of the caller's organization and mode, oldest first, without secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookList {
    pub data: Vec<Webhook>,
}

/// The `url` rule, written in both request schemas.
const URL_RULE: &str = "An absolute `https` URL of at most 2048 characters, without credentials, whose host does not resolve to a loopback, private, link-local or otherwise internal address (else 400 INVALID_FIELD_VALUE). With MONCRENEAU_WEBHOOK_ALLOW_PRIVATE=true, `http` and internal addresses are allowed.";

/// A new webhook. `active` is not accepted here (400 INVALID_REQUEST, `is set with PUT`); other unknown members: 400 INVALID_REQUEST.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    rename = "WebhookCreateRequest",
    extend("examples" = [{
        "url": "https://hooks.example.com/moncreneau",
        "events": ["appointment.created", "appointment.cancelled"],
        "description": "Booking sync"
    }])
)]
pub struct WebhookCreate {
    // Optional in Rust so that a missing member is named in the 400 (the schema says required).
    #[schemars(with = "String", length(max = 2048), extend("format" = "uri", "description" = URL_RULE))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Event types to subscribe to, or `*`; at least one (else 400 INVALID_FIELD_VALUE on `events`, an unknown type on `events[i]`). Duplicates are dropped.
    #[schemars(with = "Vec<String>", extend(
        "minItems" = 1,
        "items" = {"$ref": "#/components/schemas/WebhookEventFilter"}
    ))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// At most 500 characters.
    #[schemars(length(max = 500))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Your own signing secret (e.g. to share one across environments); generated when absent or null. A malformed one: 400 INVALID_FIELD_VALUE.
    #[schemars(schema_with = "secret_or_null")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Refused with a message of its own (set with PUT); not part of the contract.
    #[schemars(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// The members to change; an absent or null member keeps its value (partial update, although the method is PUT). `secret` is not accepted here (400 INVALID_REQUEST, `is changed with rotate-secret`): use `POST /webhooks/{id}/rotate-secret`. Other unknown members: 400 INVALID_REQUEST.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    rename = "WebhookUpdateRequest",
    extend("examples" = [{"events": ["*"], "active": true}])
)]
pub struct WebhookUpdate {
    #[schemars(length(max = 2048), extend("format" = "uri", "description" = URL_RULE))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Replaces the whole subscription list (same rules as on creation). Deliveries already queued stay.
    #[schemars(extend(
        "minItems" = 1,
        "items" = {"$ref": "#/components/schemas/WebhookEventFilter"}
    ))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// Null keeps the current value; an empty string replaces it with an empty string.
    #[schemars(length(max = 500))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// false pauses the webhook; true re-enables it and clears `disabledReason` and the failure clock (the 3 days without success start over).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Refused with a message of its own (changed with rotate-secret); not part of the contract.
    #[schemars(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// The members of a create or update checked alone (the URL is checked by the caller: its
/// guard resolves the host). Every error goes to `errors`.
pub fn check_members(
    events: Option<&[String]>,
    description: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> (Option<Vec<String>>, Option<String>) {
    let events = events.and_then(|events| match check_events(events) {
        Ok(events) => Some(events),
        Err(error) => {
            errors.push(error);
            None
        }
    });
    let description = description.and_then(|description| {
        if description.chars().count() > 500 {
            errors.push(FieldError::invalid(
                "description",
                "must be at most 500 characters",
            ));
            None
        } else {
            Some(description.to_owned())
        }
    });
    (events, description)
}

/// A subscription list: at least one entry, each a known type or `*`; duplicates dropped, the
/// first occurrence keeping its place.
pub fn check_events(events: &[String]) -> Result<Vec<String>, FieldError> {
    if events.is_empty() {
        return Err(FieldError::invalid(
            "events",
            "must name at least one event type or \"*\"",
        ));
    }
    if let Some(index) = events
        .iter()
        .position(|e| e != "*" && !EVENT_TYPES.contains(&e.as_str()))
    {
        return Err(FieldError::invalid(
            &format!("events[{index}]"),
            "unknown event type",
        ));
    }
    let mut unique: Vec<String> = Vec::new();
    for event in events {
        if !unique.contains(event) {
            unique.push(event.clone());
        }
    }
    Ok(unique)
}

impl WebhookUpdate {
    /// The refusals of members an update does not take.
    pub fn refused(&self, errors: &mut Vec<FieldError>) {
        if self.secret.is_some() {
            errors.push(FieldError::new(
                "secret",
                ErrorCode::InvalidRequest,
                "is changed with rotate-secret",
            ));
        }
    }

    /// The changes, once `url` (checked by the caller) is known.
    pub fn changes(
        &self,
        url: Option<String>,
        events: Option<Vec<String>>,
        description: Option<String>,
    ) -> Changes {
        Changes {
            url,
            events,
            description,
            active: self.active,
        }
    }
}

impl WebhookCreate {
    /// The refusals of members missing or not taken on creation.
    pub fn refused(&self, errors: &mut Vec<FieldError>) {
        if self.url.is_none() {
            errors.push(FieldError::missing("url"));
        }
        if self.events.is_none() {
            errors.push(FieldError::missing("events"));
        }
        if self.active.is_some() {
            errors.push(FieldError::new(
                "active",
                ErrorCode::InvalidRequest,
                "is set with PUT",
            ));
        }
    }
}

/// How the receiver answered a signed `webhook.test` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("examples" = [
    {"success": true, "httpStatus": 200, "responseTime": 142, "message": "The receiver accepted the test event"},
    {"success": false, "httpStatus": null, "responseTime": 10003, "message": "timed out"}
]))]
pub struct WebhookTestResult {
    /// Whether the receiver answered 2xx, with its answer's body (up to 4 KiB) read within the timeout.
    pub success: bool,
    /// The receiver's status; present also when its body did not arrive in time (`timed out reading the answer`); null when no answer came (timeout, connection failure, refused address).
    #[schemars(required, range(min = 100, max = 599), extend("type" = ["integer", "null"]))]
    pub http_status: Option<u16>,
    /// Milliseconds the attempt took.
    pub response_time: u64,
    /// `The receiver accepted the test event`; on failure what went wrong, e.g. `receiver answered 503`, `timed out`, `timed out reading the answer`, `connection failed: …`, `the receiver address is not allowed`.
    pub message: String,
}

impl WebhookTestResult {
    pub fn new(outcome: &Outcome) -> Self {
        let message = match (&outcome.error, outcome.succeeded()) {
            (_, true) => "The receiver accepted the test event".to_owned(),
            (Some(error), false) => error.clone(),
            (None, false) => "The receiver refused the test event".to_owned(),
        };
        Self {
            success: outcome.succeeded(),
            http_status: outcome.status,
            response_time: u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
            message,
        }
    }
}

/// The `data` of a `webhook.test` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(inline)]
pub struct TestData {
    pub object: TestObject,
}

/// The `data.object` of `webhook.test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "WebhookTestObject")]
pub struct TestObject {
    #[schemars(extend("pattern" = "^wh_[A-Za-z0-9]{24}$"))]
    pub webhook_id: String,
    #[schemars(extend("examples" = ["This is a test event"]))]
    pub message: String,
}

impl TestData {
    pub fn new(webhook_id: &str) -> Self {
        Self {
            object: TestObject {
                webhook_id: webhook_id.to_owned(),
                message: "This is a test event".to_owned(),
            },
        }
    }
}

/// A `webhook.test` event, as `POST /webhooks/{id}/test` sends it (never stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookTestEvent(pub Envelope<TestData>);

impl WebhookTestEvent {
    /// A test event for `webhook`, happening now.
    pub fn new(webhook_id: &str, livemode: bool) -> Self {
        Self(Envelope::new(
            WEBHOOK_TEST,
            livemode,
            None,
            TestData::new(webhook_id),
        ))
    }

    /// The contract's example.
    pub fn example() -> Self {
        Self(Envelope {
            id: "evt_Te5St6Ev7En8Tx9Yz0Ab1Cd2".to_owned(),
            kind: WEBHOOK_TEST.to_owned(),
            created: "2026-01-21T14:31:00Z".to_owned(),
            livemode: false,
            sequence: None,
            data: TestData::new("wh_Vb3Nq8Lm2Xc7Rt5Yp1Kd9Hs4"),
        })
    }
}

impl JsonSchema for WebhookTestEvent {
    fn schema_name() -> Cow<'static, str> {
        "WebhookTestEvent".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        narrowed_schema(
            generator,
            WEBHOOK_TEST,
            "`webhook.test`: sent by `POST /webhooks/{id}/test` only, to that webhook whatever its subscription; not stored, not retried and not listed by `/events`. No `sequence`.",
            &Self::example().0,
        )
    }
}

/// A deleted webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("examples" = [{"id": "wh_Vb3Nq8Lm2Xc7Rt5Yp1Kd9Hs4", "deleted": true}]))]
pub struct WebhookDeleted {
    #[schemars(extend("pattern" = "^wh_[A-Za-z0-9]{24}$"))]
    pub id: String,
    #[schemars(extend("const" = true))]
    pub deleted: bool,
}

/// One attempt to deliver an event to a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("examples" = [{
    "id": 981,
    "deliveryId": "dlv_8f14e45fceea167a5a36dedd4bea2543",
    "eventId": "evt_Qw3Er5Ty7Ui9Op1As3Df5Gh7",
    "eventType": "appointment.created",
    "attempt": 1,
    "statusCode": 503,
    "durationMs": 87,
    "error": "receiver answered 503",
    "nextRetryAt": "2026-01-21T14:30:05.412Z",
    "dueAt": "2026-01-21T14:30:00.300Z",
    "waitedFor": null,
    "deliveryStatus": "PENDING",
    "createdAt": "2026-01-21T14:30:00.318Z"
}]))]
pub struct DeliveryAttempt {
    /// Id of the attempt, increasing.
    pub id: i64,
    /// The delivery (event × webhook) this attempt belongs to; `POST …/deliveries/{delivery_id}/retry` takes it.
    #[schemars(extend("pattern" = "^dlv_[0-9a-f]{32}$"))]
    pub delivery_id: String,
    #[schemars(extend("pattern" = "^evt_[A-Za-z0-9]{24}$"))]
    pub event_id: String,
    #[schemars(schema_with = "event_type")]
    pub event_type: String,
    /// 1 for the first attempt of the delivery, then 2, 3…
    #[schemars(range(min = 1))]
    pub attempt: i32,
    /// The receiver's HTTP status; null when no answer came. Only the status is kept: at most 4 KiB of the answer's body are read, none stored.
    #[schemars(required, extend("type" = ["integer", "null"]))]
    pub status_code: Option<i32>,
    #[schemars(range(min = 0))]
    pub duration_ms: i32,
    /// Null on success; else e.g. `receiver answered 500`, `timed out`, `timed out reading the answer` (a 2xx whose body did not arrive within the timeout), `connection failed: …`.
    #[schemars(required, extend("type" = ["string", "null"]))]
    pub error: Option<String>,
    /// When this failed attempt scheduled the next one; null when none was (success, 410, schedule spent).
    #[schemars(required, extend("type" = ["string", "null"], "format" = "date-time"))]
    pub next_retry_at: Option<String>,
    /// When the attempt fell due (null for attempts logged before this field existed).
    #[schemars(required, extend("type" = ["string", "null"], "format" = "date-time"))]
    pub due_at: Option<String>,
    /// CIRCUIT_OPEN when the attempt waited past `dueAt` because its endpoint's circuit was open (a probe, or a delivery queued behind one); null otherwise.
    #[schemars(
        required,
        extend("type" = ["string", "null"], "enum" = ["CIRCUIT_OPEN", null])
    )]
    pub waited_for: Option<String>,
    // The delivery's status now (not when this attempt was made): said in its schema.
    #[schemars(schema_with = "delivery_status")]
    pub delivery_status: String,
    /// When the attempt was recorded.
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
}

impl DeliveryAttempt {
    pub fn new(attempt: Attempt) -> Self {
        Self {
            id: attempt.id,
            delivery_id: attempt.delivery_id,
            event_id: attempt.event_id,
            event_type: attempt.event_type,
            attempt: attempt.attempt,
            status_code: attempt.status_code,
            duration_ms: attempt.duration_ms,
            error: attempt.error,
            next_retry_at: attempt.next_attempt_at.map(format_timestamp),
            due_at: attempt.due_at.map(format_timestamp),
            waited_for: attempt.waited_for,
            delivery_status: attempt.delivery_status,
            created_at: format_timestamp(attempt.created_at),
        }
    }
}

/// A page of the attempt log, newest first.
pub type DeliveryAttemptPage = Page<DeliveryAttempt>;

impl Listed for DeliveryAttempt {
    const PAGE_DESCRIPTION: &'static str = "A page of the attempt log, newest first.";
}

/// The delivery, queued again and due now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("examples" = [{
    "deliveryId": "dlv_8f14e45fceea167a5a36dedd4bea2543",
    "eventId": "evt_Qw3Er5Ty7Ui9Op1As3Df5Gh7",
    "webhookId": "wh_Vb3Nq8Lm2Xc7Rt5Yp1Kd9Hs4",
    "status": "PENDING"
}]))]
pub struct RetryQueued {
    #[schemars(extend("pattern" = "^dlv_[0-9a-f]{32}$"))]
    pub delivery_id: String,
    #[schemars(extend("pattern" = "^evt_[A-Za-z0-9]{24}$"))]
    pub event_id: String,
    #[schemars(extend("pattern" = "^wh_[A-Za-z0-9]{24}$"))]
    pub webhook_id: String,
    #[schemars(extend("const" = "PENDING"))]
    pub status: String,
}

impl RetryQueued {
    pub fn new(queued: Queued, webhook_id: String) -> Self {
        Self {
            delivery_id: queued.id,
            event_id: queued.event_id,
            webhook_id,
            status: "PENDING".to_owned(),
        }
    }
}

// The enumerations shared with the event payloads live in the base: referred to by name.

fn secret_or_null(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"oneOf": [{"$ref": "#/components/schemas/WebhookSecret"}, {"type": "null"}]})
}

fn event_type(_: &mut SchemaGenerator) -> Schema {
    Schema::new_ref("#/components/schemas/EventType".to_owned())
}

fn delivery_status(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "$ref": "#/components/schemas/DeliveryStatus",
        "description": "The delivery's status now (not when this attempt was made).",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn duplicate_event_types_are_dropped_keeping_the_first_place() {
        let events = strings(&["credits.low", "*", "credits.low"]);
        assert_eq!(
            check_events(&events).unwrap(),
            strings(&["credits.low", "*"])
        );
    }

    #[test]
    fn an_unknown_event_type_is_named_by_its_index() {
        let events = strings(&["credits.low", "appointment.moved"]);
        assert_eq!(check_events(&events).unwrap_err().field, "events[1]");
    }

    #[test]
    fn an_empty_subscription_is_refused() {
        assert_eq!(check_events(&[]).unwrap_err().field, "events");
    }
}
