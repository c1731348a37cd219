//! The organizations, as the operator sees them: each with the balances of its two credit
//! accounts. Not scoped by a tenant: only the operator API (and the command line) reaches them.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::error::{ApiError, ApiResult, ErrorCode};

/// One organization with both balances.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Organization {
    pub id: i64,
    pub name: String,
    pub test_credits: i64,
    pub live_credits: i64,
    pub created_at: DateTime<Utc>,
}

const SELECT_ORGANIZATIONS: &str = "
    SELECT o.id, o.name, o.created_at,
           COALESCE(t.balance, 0) AS test_credits, COALESCE(l.balance, 0) AS live_credits
      FROM organizations o
      LEFT JOIN credit_accounts t ON t.organization_id = o.id AND NOT t.livemode
      LEFT JOIN credit_accounts l ON l.organization_id = o.id AND l.livemode";

/// Writes a new organization named `name` (its accounts and keys are the caller's, in the same
/// transaction); answers its id.
pub async fn insert(connection: &mut PgConnection, name: &str) -> ApiResult<i64> {
    Ok(
        sqlx::query_scalar("INSERT INTO organizations (name) VALUES ($1) RETURNING id")
            .bind(name)
            .fetch_one(connection)
            .await?,
    )
}

/// Every organization, oldest first.
pub async fn list(pool: &PgPool) -> ApiResult<Vec<Organization>> {
    Ok(
        sqlx::query_as(&format!("{SELECT_ORGANIZATIONS} ORDER BY o.id"))
            .fetch_all(pool)
            .await?,
    )
}

/// Organization `id`, or 404 `NOT_FOUND`.
pub async fn find(pool: &PgPool, id: i64) -> ApiResult<Organization> {
    sqlx::query_as(&format!("{SELECT_ORGANIZATIONS} WHERE o.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::NotFound, "Organization"))
}
