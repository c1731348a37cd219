//! `/credits`: balance, ledger, test-mode grants, low-balance threshold.

pub mod json;

use aide::axum::routing::{get_with, post_with, put_with};
use aide::axum::ApiRouter;
use aide::transform::TransformOperation;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use self::json::{CreditSettings, CreditTransaction, CreditTransactionPage, Credits};
use crate::auth::{scope, Authorized};
use crate::domain::credits::CreditGrant;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{ApiJson, ApiQuery};
use crate::ledger;
use crate::routes::pagination::PageQuery;
use crate::state::AppState;
use crate::store::credits as store;
use crate::tenant::Tenant;

pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route("/credits", get_with(balance, balance_docs))
        .api_route(
            "/credits/transactions",
            get_with(transactions, transactions_docs),
        )
        .api_route("/credits/grants", post_with(grant, grant_docs))
        .api_route("/credits/settings", put_with(settings, settings_docs))
}

async fn credits(state: &AppState, tenant: Tenant) -> ApiResult<Credits> {
    let balance = store::balance(&state.pool, tenant).await?;
    Ok(Credits::new(&balance, tenant.livemode))
}

/// The balance of the caller's mode; any valid key may read it.
async fn balance(
    auth: Authorized<scope::AnyKey>,
    State(state): State<AppState>,
) -> ApiResult<Json<Credits>> {
    Ok(Json(credits(&state, auth.tenant).await?))
}

fn balance_docs(op: TransformOperation) -> TransformOperation {
    op.id("getCredits")
        .summary("Credit balance")
        .description("Any valid key may read it (no scope needed).")
        .tag("credits")
        .response_with::<200, Json<Credits>, _>(|r| {
            r.description("The balance of the caller's mode.")
        })
}

/// The ledger, newest first. Consumptions have a negative amount.
async fn transactions(
    auth: Authorized<scope::AnyKey>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<CreditTransactionPage>> {
    let page = query.request()?;
    let total = store::count_transactions(&state.pool, auth.tenant).await?;
    let lines = store::transactions(&state.pool, auth.tenant, &page.limit_clause()).await?;
    let content = lines.into_iter().map(CreditTransaction::new).collect();
    Ok(Json(CreditTransactionPage::new(page, content, total)))
}

fn transactions_docs(op: TransformOperation) -> TransformOperation {
    op.id("listCreditTransactions")
        .summary("Credit ledger")
        .description("Any valid key may read it (no scope needed).")
        .tag("credits")
        .response_with::<200, Json<CreditTransactionPage>, _>(|r| {
            r.description(
                "A page of the ledger, newest first. Amounts are signed (CONSUMPTION is -1).",
            )
        })
}

/// Adds test credits (`api:admin`, test mode only: live credits come from the operator).
async fn grant(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreditGrant>,
) -> ApiResult<(StatusCode, Json<Credits>)> {
    if auth.tenant.livemode {
        return Err(ApiError::new(
            ErrorCode::LiveModeForbidden,
            "Live credits are granted by the operator; grants are for test mode only",
        ));
    }
    let grant = body.parse()?;
    let mut tx = state.pool.begin().await?;
    ledger::grant(&mut tx, auth.account(), grant.amount, &grant.reason).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(credits(&state, auth.tenant).await?),
    ))
}

fn grant_docs(op: TransformOperation) -> TransformOperation {
    op.id("grantTestCredits")
        .summary("Grant test credits")
        .description("Test mode only: with a live key 403 LIVE_MODE_FORBIDDEN (live credits come from the operator).")
        .tag("credits")
        .response_with::<201, Json<Credits>, _>(|r| r.description("The new balance."))
}

/// Sets the balance under which `credits.low` is sent.
async fn settings(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreditSettings>,
) -> ApiResult<Json<Credits>> {
    let threshold = body.parse()?;
    store::set_low_balance_threshold(&state.pool, auth.tenant, threshold).await?;
    Ok(Json(credits(&state, auth.tenant).await?))
}

fn settings_docs(op: TransformOperation) -> TransformOperation {
    op.id("updateCreditSettings")
        .summary("Set the low-balance threshold")
        .tag("credits")
        .response_with::<200, Json<Credits>, _>(|r| {
            r.description("The balance with the new threshold.")
        })
}
