//! The stored responses of `Idempotency-Key` requests, per tenant, and the lock that holds a
//! key while its request runs (the rules are `crate::idempotency`'s).

use sqlx::PgConnection;

use crate::error::ApiResult;
use crate::tenant::Tenant;

/// The response stored under a key by a first request that committed.
#[derive(sqlx::FromRow)]
pub struct Stored {
    pub request_hash: Vec<u8>,
    pub response_status: i32,
    pub response_body: Vec<u8>,
    /// Stored less than 24 hours ago.
    pub current: bool,
}

/// Takes the key's lock for the rest of the caller's transaction; false while another
/// transaction holds it. The lock is transaction-level, so Postgres frees it however the
/// transaction ends.
pub async fn try_lock(connection: &mut PgConnection, tenant: Tenant, key: &str) -> ApiResult<bool> {
    Ok(
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!(
                "idempotency:{}:{}:{key}",
                tenant.organization_id, tenant.livemode
            ))
            .fetch_one(connection)
            .await?,
    )
}

/// The response stored under the key, current or expired.
pub async fn find(
    connection: &mut PgConnection,
    tenant: Tenant,
    key: &str,
) -> ApiResult<Option<Stored>> {
    Ok(sqlx::query_as(
        "SELECT request_hash, response_status, response_body,
                created_at > now() - interval '24 hours' AS current
           FROM idempotency_keys WHERE organization_id = $1 AND livemode = $2 AND key = $3",
    )
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .bind(key)
    .fetch_optional(connection)
    .await?)
}

/// Forgets the response stored under the key.
pub async fn delete(connection: &mut PgConnection, tenant: Tenant, key: &str) -> ApiResult<()> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE organization_id = $1 AND livemode = $2 AND key = $3",
    )
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .bind(key)
    .execute(connection)
    .await?;
    Ok(())
}

/// Stores the response of the request that holds the key.
pub async fn insert(
    connection: &mut PgConnection,
    tenant: Tenant,
    key: &str,
    request_hash: &[u8],
    response_status: i32,
    response_body: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO idempotency_keys (organization_id, livemode, key, request_hash, response_status, response_body)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .bind(key)
    .bind(request_hash)
    .bind(response_status)
    .bind(response_body)
    .execute(connection)
    .await?;
    Ok(())
}
