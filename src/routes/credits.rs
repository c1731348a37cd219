//! `/credits`: balance, ledger, test-mode grants, low-balance threshold.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{scope, ApiKeyAuth, Authorized};
use crate::domain::datetime::format_timestamp;
use crate::error::{check_fields, ApiError, ApiResult, ErrorCode, FieldError};
use crate::extract::{ApiJson, ApiQuery};
use crate::ledger;
use crate::routes::admin::GrantBody;
use crate::routes::pagination::PageQuery;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/credits", get(balance))
        .route("/credits/transactions", get(transactions))
        .route("/credits/grants", post(grant))
        .route("/credits/settings", put(settings))
}

async fn balance_json(state: &AppState, auth: &ApiKeyAuth) -> ApiResult<Value> {
    let (available, consumed, refunded, threshold): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT balance, consumed, refunded, low_balance_threshold FROM credit_accounts
          WHERE organization_id = $1 AND livemode = $2",
    )
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode)
    .fetch_one(&state.pool)
    .await?;
    Ok(json!({
        "availableCredits": available,
        "consumedCredits": consumed,
        "refundedCredits": refunded,
        "livemode": auth.tenant.livemode,
        "lowBalanceThreshold": threshold,
    }))
}

/// The balance of the caller's mode; any valid key may read it.
async fn balance(
    auth: Authorized<scope::AnyKey>,
    State(state): State<AppState>,
) -> ApiResult<Json<Value>> {
    Ok(Json(balance_json(&state, &auth).await?))
}

#[derive(sqlx::FromRow)]
struct TransactionRow {
    id: i64,
    r#type: String,
    amount: i64,
    balance_after: i64,
    appointment_id: Option<i64>,
    reason: Option<String>,
    created_at: DateTime<Utc>,
}

/// The ledger, newest first. Consumptions have a negative amount.
async fn transactions(
    auth: Authorized<scope::AnyKey>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    let page = query.request()?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM credit_transactions WHERE organization_id = $1 AND livemode = $2",
    )
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode)
    .fetch_one(&state.pool)
    .await?;
    let rows: Vec<TransactionRow> = sqlx::query_as(&format!(
        "SELECT id, type, amount, balance_after, appointment_id, reason, created_at
           FROM credit_transactions WHERE organization_id = $1 AND livemode = $2
          ORDER BY id DESC{}",
        page.limit_clause()
    ))
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode)
    .fetch_all(&state.pool)
    .await?;
    let content = rows
        .iter()
        .map(|row| {
            json!({
                "id": row.id,
                "type": row.r#type,
                "amount": row.amount,
                "balanceAfter": row.balance_after,
                "appointmentId": row.appointment_id,
                "reason": row.reason,
                "createdAt": format_timestamp(row.created_at),
            })
        })
        .collect();
    Ok(Json(page.respond(content, total)))
}

/// Adds test credits (`api:admin`, test mode only: live credits come from the operator).
async fn grant(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<GrantBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if auth.tenant.livemode {
        return Err(ApiError::new(
            ErrorCode::LiveModeForbidden,
            "Live credits are granted by the operator; grants are for test mode only",
        ));
    }
    let (amount, reason) = body.validate()?;
    let mut tx = state.pool.begin().await?;
    ledger::grant(&mut tx, auth.account(), amount, &reason).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(balance_json(&state, &auth).await?),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SettingsBody {
    low_balance_threshold: Option<i64>,
}

/// Sets the balance under which `credits.low` is sent.
async fn settings(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SettingsBody>,
) -> ApiResult<Json<Value>> {
    let threshold = match body.low_balance_threshold {
        None => {
            return Err(ApiError::validation(vec![FieldError::missing(
                "lowBalanceThreshold",
            )]))
        }
        Some(value) => value,
    };
    if !(0..=1_000_000).contains(&threshold) {
        check_fields(vec![FieldError::invalid(
            "lowBalanceThreshold",
            "must be between 0 and 1000000",
        )])?;
    }
    sqlx::query("UPDATE credit_accounts SET low_balance_threshold = $3 WHERE organization_id = $1 AND livemode = $2")
        .bind(auth.tenant.organization_id)
        .bind(auth.tenant.livemode)
        .bind(threshold)
        .execute(&state.pool)
        .await?;
    Ok(Json(balance_json(&state, &auth).await?))
}
