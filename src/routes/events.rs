//! `/events` (ext, `webhooks:manage`): the events of the last 30 days, so that a receiver that
//! was down can catch up.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{scope, Authorized};
use crate::error::{check_fields, ApiError, ApiResult, ErrorCode, FieldError};
use crate::extract::{ApiPath, ApiQuery};
use crate::routes::pagination::PageQuery;
use crate::state::AppState;
use crate::webhooks::EVENT_TYPES;

const RETENTION: &str = "30 days";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/events", get(list))
        .route("/events/{id}", get(retrieve))
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    r#type: Option<String>,
    page: Option<i64>,
    size: Option<i64>,
}

/// Events newest first, optionally of one type; each exactly as delivered.
async fn list(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> ApiResult<Json<Value>> {
    let mut errors = Vec::new();
    let page = PageQuery {
        page: query.page,
        size: query.size,
    }
    .check(&mut errors);
    if let Some(kind) = &query.r#type {
        if !EVENT_TYPES.contains(&kind.as_str()) {
            errors.push(FieldError::new(
                "type",
                ErrorCode::InvalidRequest,
                "unknown event type",
            ));
        }
    }
    check_fields(errors)?;
    let filter = format!(
        "organization_id = $1 AND livemode = $2 AND ($3::text IS NULL OR type = $3)
         AND created_at > now() - interval '{RETENTION}'"
    );
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM events WHERE {filter}"))
        .bind(auth.tenant.organization_id)
        .bind(auth.tenant.livemode)
        .bind(&query.r#type)
        .fetch_one(&state.pool)
        .await?;
    let payloads: Vec<Value> = sqlx::query_scalar(&format!(
        "SELECT payload FROM events WHERE {filter} ORDER BY created_at DESC, id DESC{}",
        page.limit_clause()
    ))
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode)
    .bind(&query.r#type)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(page.respond(payloads, total)))
}

/// One event of the last 30 days.
async fn retrieve(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let payload: Option<Value> = sqlx::query_scalar(&format!(
        "SELECT payload FROM events WHERE id = $1 AND organization_id = $2 AND livemode = $3
           AND created_at > now() - interval '{RETENTION}'"
    ))
    .bind(&id)
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode)
    .fetch_optional(&state.pool)
    .await?;
    payload
        .map(Json)
        .ok_or_else(|| ApiError::not_found(ErrorCode::NotFound, "Event"))
}
