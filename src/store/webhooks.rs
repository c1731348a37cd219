//! The webhook endpoints of a tenant, their secrets, their attempt log and manual retries. The
//! outbox rows themselves are written by `crate::events` and worked by the delivery worker.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

use crate::domain::keys::random_id;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::tenant::Tenant;
use crate::webhooks::previous_secret_in_force;

/// One endpoint as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Webhook {
    pub id: String,
    pub livemode: bool,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub active: bool,
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i32,
    pub circuit_open_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Webhook {
    /// The secret rotated out, while it still signs alongside the current one.
    pub fn previous_secret(&self, now: DateTime<Utc>) -> Option<&str> {
        previous_secret_in_force(
            self.previous_secret.as_deref(),
            self.previous_secret_expires_at,
            now,
        )
    }
}

const WEBHOOK_COLUMNS: &str = "id, livemode, url, events, description, secret, previous_secret,
    previous_secret_expires_at, active, disabled_reason, consecutive_failures, circuit_open_until,
    created_at, updated_at";

/// 404 `WEBHOOK_NOT_FOUND`: unknown, or of another organization or mode.
pub fn not_found() -> ApiError {
    ApiError::not_found(ErrorCode::WebhookNotFound, "Webhook")
}

/// The checked members of a new endpoint.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub secret: String,
}

/// The checked members of a change; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub active: Option<bool>,
}

/// The tenant's endpoint `id`, or 404 `WEBHOOK_NOT_FOUND`.
pub async fn find(pool: &PgPool, tenant: Tenant, id: &str) -> ApiResult<Webhook> {
    sqlx::query_as(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1 AND organization_id = $2 AND livemode = $3"
    ))
    .bind(id)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .fetch_optional(pool)
    .await?
    .ok_or_else(not_found)
}

/// Every endpoint of the tenant, oldest first.
pub async fn list(pool: &PgPool, tenant: Tenant) -> ApiResult<Vec<Webhook>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE organization_id = $1 AND livemode = $2 ORDER BY created_at, id"
    ))
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .fetch_all(pool)
    .await?)
}

/// Registers an endpoint of the tenant, active.
pub async fn create(pool: &PgPool, tenant: Tenant, new: &NewWebhook) -> ApiResult<Webhook> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO webhooks (id, organization_id, livemode, url, events, description, secret)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING {WEBHOOK_COLUMNS}"
    ))
    .bind(random_id("wh"))
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .bind(&new.url)
    .bind(&new.events)
    .bind(&new.description)
    .bind(&new.secret)
    .fetch_one(pool)
    .await?)
}

/// Applies `changes` to the tenant's endpoint `id`; re-enabling a disabled endpoint clears its
/// failure record (reason and failure clock).
pub async fn update(
    pool: &PgPool,
    tenant: Tenant,
    id: &str,
    changes: &Changes,
) -> ApiResult<Webhook> {
    sqlx::query_as(&format!(
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
    .bind(id)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .bind(&changes.url)
    .bind(&changes.events)
    .bind(&changes.description)
    .bind(changes.active)
    .fetch_optional(pool)
    .await?
    .ok_or_else(not_found)
}

/// Deletes the tenant's endpoint `id` with its deliveries and attempt log (cascade).
pub async fn delete(pool: &PgPool, tenant: Tenant, id: &str) -> ApiResult<Webhook> {
    sqlx::query_as(&format!(
        "DELETE FROM webhooks WHERE id = $1 AND organization_id = $2 AND livemode = $3 RETURNING {WEBHOOK_COLUMNS}"
    ))
    .bind(id)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .fetch_optional(pool)
    .await?
    .ok_or_else(not_found)
}

/// Makes `secret` the endpoint's secret; the current one keeps signing for `overlap` (the
/// database's clock), replacing any secret rotated out earlier.
pub async fn rotate_secret(
    pool: &PgPool,
    tenant: Tenant,
    id: &str,
    secret: &str,
    overlap: Duration,
) -> ApiResult<Webhook> {
    sqlx::query_as(&format!(
        "UPDATE webhooks
            SET previous_secret = secret, previous_secret_expires_at = now() + make_interval(secs => $4),
                secret = $5, updated_at = now()
          WHERE id = $1 AND organization_id = $2 AND livemode = $3
          RETURNING {WEBHOOK_COLUMNS}"
    ))
    .bind(id)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .bind(overlap.num_seconds() as f64)
    .bind(secret)
    .fetch_optional(pool)
    .await?
    .ok_or_else(not_found)
}

/// One logged attempt, with its delivery's event and current status.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Attempt {
    pub id: i64,
    pub delivery_id: String,
    pub event_id: String,
    pub event_type: String,
    pub attempt: i32,
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    pub error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    pub waited_for: Option<String>,
    pub delivery_status: String,
    pub created_at: DateTime<Utc>,
}

/// How many attempts the log of the tenant's endpoint `webhook` holds (404 when it is not the
/// tenant's).
pub async fn count_attempts(pool: &PgPool, tenant: Tenant, webhook: &str) -> ApiResult<i64> {
    let webhook = find(pool, tenant, webhook).await?;
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
          WHERE d.webhook_id = $1",
    )
    .bind(&webhook.id)
    .fetch_one(pool)
    .await?)
}

/// A page of the attempt log of endpoint `webhook` (already checked to be the tenant's by
/// [`count_attempts`]), newest first; `limit_clause` is a checked ` LIMIT n OFFSET m`.
pub async fn attempts(pool: &PgPool, webhook: &str, limit_clause: &str) -> ApiResult<Vec<Attempt>> {
    Ok(sqlx::query_as(&format!(
        "SELECT a.id, a.delivery_id, d.event_id, e.type AS event_type, a.attempt, a.status_code, a.duration_ms,
                a.error, a.next_attempt_at, a.due_at, a.waited_for, d.status AS delivery_status, a.created_at
           FROM webhook_attempts a
           JOIN webhook_deliveries d ON d.id = a.delivery_id
           JOIN events e ON e.id = d.event_id
          WHERE d.webhook_id = $1
          ORDER BY a.id DESC{limit_clause}"
    ))
    .bind(webhook)
    .fetch_all(pool)
    .await?)
}

/// A delivery queued again: its id and its event's.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Queued {
    pub id: String,
    pub event_id: String,
}

/// Puts delivery `delivery` of the tenant's endpoint `webhook` back to PENDING, due now, whatever
/// became of it. One in flight (its lease running) is left to finish: it is being attempted
/// already. 404 `WEBHOOK_NOT_FOUND` for an endpoint not the tenant's, `NOT_FOUND` for a delivery
/// not the endpoint's.
pub async fn retry(
    pool: &PgPool,
    tenant: Tenant,
    webhook: &str,
    delivery: &str,
) -> ApiResult<Queued> {
    let webhook = find(pool, tenant, webhook).await?;
    let queued: Option<Queued> = sqlx::query_as(
        "UPDATE webhook_deliveries SET status = 'PENDING', next_attempt_at = now(), locked_until = NULL,
                updated_at = now()
          WHERE id = $1 AND webhook_id = $2 AND (locked_until IS NULL OR locked_until < now())
          RETURNING id, event_id",
    )
    .bind(delivery)
    .bind(&webhook.id)
    .fetch_optional(pool)
    .await?;
    // Not updated: unknown, or in flight right now.
    match queued {
        Some(queued) => Ok(queued),
        None => sqlx::query_as(
            "SELECT id, event_id FROM webhook_deliveries WHERE id = $1 AND webhook_id = $2",
        )
        .bind(delivery)
        .bind(&webhook.id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::NotFound, "Delivery")),
    }
}
