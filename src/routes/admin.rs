//! The operator API (ext): organizations and their live credits, behind
//! `Authorization: Bearer $MONCRENEAU_ADMIN_TOKEN`. `moncreneau admin create-org` shares
//! [`create_organization`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::auth::Operator;
use crate::domain::credits::{CreditGrant, MAX_GRANT};
use crate::domain::datetime::format_timestamp;
use crate::domain::keys::Scope;
use crate::error::{check_fields, required_text, ApiError, ApiResult, ErrorCode, FieldError};
use crate::extract::{ApiJson, ApiPath};
use crate::ledger::{self, Account};
use crate::state::AppState;
use crate::store::api_keys;

/// Test credits every new organization starts with.
pub const INITIAL_TEST_CREDITS: i64 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/organizations", post(create).get(list))
        .route("/admin/organizations/{id}", get(retrieve))
        .route(
            "/admin/organizations/{id}/credits",
            post(grant_live_credits),
        )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateOrganization {
    name: Option<String>,
    live_credits: Option<i64>,
}

/// Creates an organization with one `api:admin` key per mode; the clear keys are shown once.
async fn create(
    _: Operator,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateOrganization>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut errors = Vec::new();
    let name = required_text(&mut errors, "name", body.name.as_deref(), 200);
    let live_credits = body.live_credits.unwrap_or(0);
    if !(0..=MAX_GRANT).contains(&live_credits) {
        errors.push(FieldError::invalid(
            "liveCredits",
            "must be between 0 and 1000000",
        ));
    }
    check_fields(errors)?;
    let created = create_organization(&state.pool, &name, live_credits).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Creates an organization, its two credit accounts and its two admin keys, in one transaction.
pub async fn create_organization(pool: &PgPool, name: &str, live_credits: i64) -> ApiResult<Value> {
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query_scalar("INSERT INTO organizations (name) VALUES ($1) RETURNING id")
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
    let mut keys = Vec::new();
    for livemode in [false, true] {
        let account = Account {
            organization_id: id,
            livemode,
        };
        let initial = if livemode {
            live_credits
        } else {
            INITIAL_TEST_CREDITS
        };
        ledger::open(&mut tx, account, initial, "Initial credits").await?;
        let issued = api_keys::issue(
            &mut tx,
            account,
            "Default admin key",
            &[Scope::ApiAdmin],
            None,
        )
        .await?;
        keys.push(json!({
            "id": issued.key.id,
            "key": issued.clear,
            "mode": if livemode { "live" } else { "test" },
            "scopes": [Scope::ApiAdmin.as_str()],
        }));
    }
    tx.commit().await?;
    Ok(json!({
        "id": id,
        "name": name,
        "testCredits": INITIAL_TEST_CREDITS,
        "liveCredits": live_credits,
        "apiKeys": keys,
    }))
}

#[derive(sqlx::FromRow)]
struct OrganizationRow {
    id: i64,
    name: String,
    test_credits: i64,
    live_credits: i64,
    created_at: DateTime<Utc>,
}

const SELECT_ORGANIZATIONS: &str = "
    SELECT o.id, o.name, o.created_at,
           COALESCE(t.balance, 0) AS test_credits, COALESCE(l.balance, 0) AS live_credits
      FROM organizations o
      LEFT JOIN credit_accounts t ON t.organization_id = o.id AND NOT t.livemode
      LEFT JOIN credit_accounts l ON l.organization_id = o.id AND l.livemode";

impl OrganizationRow {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "testCredits": self.test_credits,
            "liveCredits": self.live_credits,
            "createdAt": format_timestamp(self.created_at),
        })
    }
}

/// Every organization, oldest first.
async fn list(_: Operator, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let rows: Vec<OrganizationRow> =
        sqlx::query_as(&format!("{SELECT_ORGANIZATIONS} ORDER BY o.id"))
            .fetch_all(&state.pool)
            .await?;
    Ok(Json(
        json!({"data": rows.iter().map(OrganizationRow::to_json).collect::<Vec<_>>()}),
    ))
}

async fn find(pool: &PgPool, id: i64) -> ApiResult<OrganizationRow> {
    sqlx::query_as(&format!("{SELECT_ORGANIZATIONS} WHERE o.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::NotFound, "Organization"))
}

/// One organization with both balances.
async fn retrieve(
    _: Operator,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    Ok(Json(find(&state.pool, id).await?.to_json()))
}

/// Adds live credits to an organization; answers the new live balance.
async fn grant_live_credits(
    _: Operator,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CreditGrant>,
) -> ApiResult<Json<Value>> {
    let grant = body.parse()?;
    find(&state.pool, id).await?;
    let mut tx = state.pool.begin().await?;
    let account = Account {
        organization_id: id,
        livemode: true,
    };
    let balance = ledger::grant(&mut tx, account, grant.amount, &grant.reason).await?;
    tx.commit().await?;
    Ok(Json(
        json!({"organizationId": id, "availableCredits": balance, "livemode": true}),
    ))
}
