//! `/webhooks` (`webhooks:manage`): endpoints, their secrets, a test delivery, the attempt log
//! and manual retries.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{scope, ApiKeyAuth, Authorized};
use crate::domain::datetime::{format_instant, format_timestamp};
use crate::domain::keys::random_id;
use crate::error::{check_fields, ApiError, ApiResult, ErrorCode, FieldError};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::pagination::PageQuery;
use crate::state::AppState;
use crate::webhooks::circuit::{CircuitRule, CircuitState};
use crate::webhooks::guard::check_receiver_url;
use crate::webhooks::sender::Secrets;
use crate::webhooks::signing::{generate_secret, secret_bytes};
use crate::webhooks::EVENT_TYPES;

/// How long a rotated-out secret keeps signing.
const ROTATION_OVERLAP: Duration = Duration::hours(24);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list).post(create))
        .route("/webhooks/{id}", get(retrieve).put(update).delete(remove))
        .route("/webhooks/{id}/test", post(test))
        .route("/webhooks/{id}/rotate-secret", post(rotate_secret))
        .route("/webhooks/{id}/deliveries", get(deliveries))
        .route("/webhooks/{id}/deliveries/{delivery_id}/retry", post(retry))
}

#[derive(Debug, sqlx::FromRow)]
struct WebhookRow {
    id: String,
    livemode: bool,
    url: String,
    events: Vec<String>,
    description: Option<String>,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_expires_at: Option<DateTime<Utc>>,
    active: bool,
    disabled_reason: Option<String>,
    consecutive_failures: i32,
    circuit_open_until: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

const WEBHOOK_COLUMNS: &str = "id, livemode, url, events, description, secret, previous_secret,
    previous_secret_expires_at, active, disabled_reason, consecutive_failures, circuit_open_until,
    created_at, updated_at";

impl WebhookRow {
    /// The public form; the secret only where the caller is meant to see it.
    fn to_json(&self, with_secret: bool, rule: CircuitRule) -> Value {
        let consecutive = u32::try_from(self.consecutive_failures).unwrap_or(0);
        let state = rule.state(consecutive, self.circuit_open_until, Utc::now());
        let mut body = json!({
            "id": self.id,
            "url": self.url,
            "events": self.events,
            "description": self.description,
            "active": self.active,
            "disabledReason": self.disabled_reason,
            "circuit": {
                "state": state.as_str(),
                "consecutiveFailures": consecutive,
                "openUntil": (state == CircuitState::Open)
                    .then_some(self.circuit_open_until)
                    .flatten()
                    .map(format_timestamp),
            },
            "livemode": self.livemode,
            "createdAt": format_timestamp(self.created_at),
            "updatedAt": format_timestamp(self.updated_at),
        });
        if with_secret {
            body["secret"] = json!(self.secret);
        }
        body
    }

    fn previous_secret(&self) -> Option<&str> {
        self.previous_secret.as_deref().filter(|_| {
            self.previous_secret_expires_at
                .is_some_and(|at| at > Utc::now())
        })
    }
}

fn not_found() -> ApiError {
    ApiError::not_found(ErrorCode::WebhookNotFound, "Webhook")
}

async fn find(state: &AppState, auth: &ApiKeyAuth, id: &str) -> ApiResult<WebhookRow> {
    sqlx::query_as(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1 AND organization_id = $2 AND livemode = $3"
    ))
    .bind(id)
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(not_found)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookBody {
    url: Option<String>,
    events: Option<Vec<String>>,
    description: Option<String>,
    secret: Option<String>,
    active: Option<bool>,
}

/// The checked fields of a create or update; absent fields stay `None`.
struct WebhookFields {
    url: Option<String>,
    events: Option<Vec<String>>,
    description: Option<String>,
}

async fn check_body(
    state: &AppState,
    body: &WebhookBody,
    errors: &mut Vec<FieldError>,
) -> WebhookFields {
    let mut fields = WebhookFields {
        url: None,
        events: None,
        description: None,
    };
    if let Some(url) = &body.url {
        match check_receiver_url(url, state.settings.webhook_allow_private).await {
            Ok(url) => fields.url = Some(url.to_string()),
            Err(message) => errors.push(FieldError::invalid("url", message)),
        }
    }
    if let Some(events) = &body.events {
        let unknown = events
            .iter()
            .position(|e| e != "*" && !EVENT_TYPES.contains(&e.as_str()));
        match unknown {
            _ if events.is_empty() => errors.push(FieldError::invalid(
                "events",
                "must name at least one event type or \"*\"",
            )),
            Some(index) => errors.push(FieldError::invalid(
                &format!("events[{index}]"),
                "unknown event type",
            )),
            None => {
                let mut unique: Vec<String> = Vec::new();
                for event in events {
                    if !unique.contains(event) {
                        unique.push(event.clone());
                    }
                }
                fields.events = Some(unique);
            }
        }
    }
    if let Some(description) = &body.description {
        if description.chars().count() > 500 {
            errors.push(FieldError::invalid(
                "description",
                "must be at most 500 characters",
            ));
        } else {
            fields.description = Some(description.clone());
        }
    }
    fields
}

/// Registers an endpoint; the secret is generated unless given, and shown in this answer.
async fn create(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<WebhookBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut errors = Vec::new();
    if body.url.is_none() {
        errors.push(FieldError::missing("url"));
    }
    if body.events.is_none() {
        errors.push(FieldError::missing("events"));
    }
    if body.active.is_some() {
        errors.push(FieldError::new(
            "active",
            ErrorCode::InvalidRequest,
            "is set with PUT",
        ));
    }
    let secret = match &body.secret {
        Some(secret) if secret_bytes(secret).is_none() => {
            errors.push(FieldError::invalid(
                "secret",
                "must be whsec_ followed by the base64 of 24 to 64 bytes",
            ));
            String::new()
        }
        Some(secret) => secret.clone(),
        None => generate_secret(),
    };
    let fields = check_body(&state, &body, &mut errors).await;
    check_fields(errors)?;
    let row: WebhookRow = sqlx::query_as(&format!(
        "INSERT INTO webhooks (id, organization_id, livemode, url, events, description, secret)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING {WEBHOOK_COLUMNS}"
    ))
    .bind(random_id("wh"))
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode)
    .bind(&fields.url)
    .bind(&fields.events)
    .bind(&fields.description)
    .bind(&secret)
    .fetch_one(&state.pool)
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(row.to_json(true, state.settings.webhook_circuit())),
    ))
}

/// The endpoints of the caller's mode, secrets hidden.
async fn list(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
) -> ApiResult<Json<Value>> {
    let rows: Vec<WebhookRow> = sqlx::query_as(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE organization_id = $1 AND livemode = $2 ORDER BY created_at, id"
    ))
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(
        json!({"data": rows.iter().map(|row| row.to_json(false, state.settings.webhook_circuit())).collect::<Vec<_>>()}),
    ))
}

/// One endpoint, secret hidden.
async fn retrieve(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        find(&state, &auth, &id)
            .await?
            .to_json(false, state.settings.webhook_circuit()),
    ))
}

/// Changes url, events, description or active; re-enabling clears the failure record.
async fn update(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<WebhookBody>,
) -> ApiResult<Json<Value>> {
    let mut errors = Vec::new();
    if body.secret.is_some() {
        errors.push(FieldError::new(
            "secret",
            ErrorCode::InvalidRequest,
            "is changed with rotate-secret",
        ));
    }
    let fields = check_body(&state, &body, &mut errors).await;
    check_fields(errors)?;
    let row: Option<WebhookRow> = sqlx::query_as(&format!(
        "UPDATE webhooks
            SET url = COALESCE($4, url), events = COALESCE($5, events), description = COALESCE($6, description),
                active = COALESCE($7, active),
                -- Only re-enabling a disabled endpoint clears its failure record.
                disabled_reason = CASE WHEN $7 AND NOT active THEN NULL ELSE disabled_reason END,
                failing_since = CASE WHEN $7 AND NOT active THEN NULL ELSE failing_since END,
                updated_at = now()
          WHERE id = $1 AND organization_id = $2 AND livemode = $3
          RETURNING {WEBHOOK_COLUMNS}"
    ))
    .bind(&id)
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode)
    .bind(&fields.url)
    .bind(&fields.events)
    .bind(&fields.description)
    .bind(body.active)
    .fetch_optional(&state.pool)
    .await?;
    Ok(Json(
        row.ok_or_else(not_found)?
            .to_json(false, state.settings.webhook_circuit()),
    ))
}

/// Deletes an endpoint and its delivery log.
async fn remove(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let row: Option<WebhookRow> = sqlx::query_as(&format!(
        "DELETE FROM webhooks WHERE id = $1 AND organization_id = $2 AND livemode = $3 RETURNING {WEBHOOK_COLUMNS}"
    ))
    .bind(&id)
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode)
    .fetch_optional(&state.pool)
    .await?;
    let row = row.ok_or_else(not_found)?;
    Ok(Json(json!({"id": row.id, "deleted": true})))
}

/// Sends a signed `webhook.test` event now and reports how the receiver answered.
async fn test(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let webhook = find(&state, &auth, &id).await?;
    let event = json!({
        "id": random_id("evt"),
        "type": "webhook.test",
        "created": format_instant(Utc::now()),
        "livemode": webhook.livemode,
        "data": {"object": {"webhookId": webhook.id, "message": "This is a test event"}},
    });
    let secrets = Secrets {
        current: &webhook.secret,
        previous: webhook.previous_secret(),
    };
    let outcome = state.sender.send(&webhook.url, &event, &secrets).await;
    let message = match (&outcome.error, outcome.succeeded()) {
        (_, true) => "The receiver accepted the test event".to_owned(),
        (Some(error), false) => error.clone(),
        (None, false) => "The receiver refused the test event".to_owned(),
    };
    Ok(Json(json!({
        "success": outcome.succeeded(),
        "httpStatus": outcome.status,
        "responseTime": u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
        "message": message,
    })))
}

/// A new secret; the old one keeps signing alongside for 24 hours.
async fn rotate_secret(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let row: Option<WebhookRow> = sqlx::query_as(&format!(
        "UPDATE webhooks
            SET previous_secret = secret, previous_secret_expires_at = now() + make_interval(secs => $4),
                secret = $5, updated_at = now()
          WHERE id = $1 AND organization_id = $2 AND livemode = $3
          RETURNING {WEBHOOK_COLUMNS}"
    ))
    .bind(&id)
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode)
    .bind(ROTATION_OVERLAP.num_seconds() as f64)
    .bind(generate_secret())
    .fetch_optional(&state.pool)
    .await?;
    let row = row.ok_or_else(not_found)?;
    let mut body = row.to_json(true, state.settings.webhook_circuit());
    body["previousSecretExpiresAt"] = json!(row.previous_secret_expires_at.map(format_timestamp));
    Ok(Json(body))
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    id: i64,
    delivery_id: String,
    event_id: String,
    event_type: String,
    attempt: i32,
    status_code: Option<i32>,
    duration_ms: i32,
    error: Option<String>,
    next_attempt_at: Option<DateTime<Utc>>,
    due_at: Option<DateTime<Utc>>,
    waited_for: Option<String>,
    delivery_status: String,
    created_at: DateTime<Utc>,
}

/// The attempt log of an endpoint, newest first.
async fn deliveries(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    let page = query.request()?;
    find(&state, &auth, &id).await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
          WHERE d.webhook_id = $1",
    )
    .bind(&id)
    .fetch_one(&state.pool)
    .await?;
    let rows: Vec<AttemptRow> = sqlx::query_as(&format!(
        "SELECT a.id, a.delivery_id, d.event_id, e.type AS event_type, a.attempt, a.status_code, a.duration_ms,
                a.error, a.next_attempt_at, a.due_at, a.waited_for, d.status AS delivery_status, a.created_at
           FROM webhook_attempts a
           JOIN webhook_deliveries d ON d.id = a.delivery_id
           JOIN events e ON e.id = d.event_id
          WHERE d.webhook_id = $1
          ORDER BY a.id DESC{}",
        page.limit_clause()
    ))
    .bind(&id)
    .fetch_all(&state.pool)
    .await?;
    let content = rows
        .iter()
        .map(|row| {
            json!({
                "id": row.id,
                "deliveryId": row.delivery_id,
                "eventId": row.event_id,
                "eventType": row.event_type,
                "attempt": row.attempt,
                "statusCode": row.status_code,
                "durationMs": row.duration_ms,
                "error": row.error,
                "nextRetryAt": row.next_attempt_at.map(format_timestamp),
                "dueAt": row.due_at.map(format_timestamp),
                "waitedFor": row.waited_for,
                "deliveryStatus": row.delivery_status,
                "createdAt": format_timestamp(row.created_at),
            })
        })
        .collect();
    Ok(Json(page.respond(content, total)))
}

/// Queues one more attempt of a delivery, due now, whatever became of it; an attempt already in
/// flight is left to finish. Once the retry schedule is spent, a failed manual retry stays failed.
async fn retry(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
    ApiPath((id, delivery_id)): ApiPath<(String, String)>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    find(&state, &auth, &id).await?;
    let queued: Option<(String, String)> = sqlx::query_as(
        "UPDATE webhook_deliveries SET status = 'PENDING', next_attempt_at = now(), locked_until = NULL,
                updated_at = now()
          WHERE id = $1 AND webhook_id = $2 AND (locked_until IS NULL OR locked_until < now())
          RETURNING id, event_id",
    )
    .bind(&delivery_id)
    .bind(&id)
    .fetch_optional(&state.pool)
    .await?;
    // Not updated: unknown, or in flight right now (then it is being attempted already).
    let queued = match queued {
        Some(queued) => queued,
        None => sqlx::query_as(
            "SELECT id, event_id FROM webhook_deliveries WHERE id = $1 AND webhook_id = $2",
        )
        .bind(&delivery_id)
        .bind(&id)
        .fetch_optional(&state.pool)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::NotFound, "Delivery"))?,
    };
    let (delivery_id, event_id): (String, String) = queued;
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({"deliveryId": delivery_id, "eventId": event_id, "webhookId": id, "status": "PENDING"}),
        ),
    ))
}
