//! The events of a tenant: written (for `crate::events`; the database fans each out to its
//! deliveries), and read back by the `/events` routes. Only the last 30 days are visible: the window the contract
//! promises a receiver to catch up on, whatever older rows the table still holds.

use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json as SqlJson;
use sqlx::{PgConnection, PgPool};

use crate::error::ApiResult;
use crate::events::Envelope;
use crate::tenant::Tenant;

/// How long an event stays readable.
const RETENTION: &str = "30 days";

/// How many events of the tenant, of one type when `kind` is given, the last 30 days hold.
pub async fn count(pool: &PgPool, tenant: Tenant, kind: Option<&str>) -> ApiResult<i64> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT count(*) FROM events
          WHERE organization_id = $1 AND livemode = $2 AND ($3::text IS NULL OR type = $3)
            AND created_at > now() - interval '{RETENTION}'"
    ))
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .bind(kind)
    .fetch_one(pool)
    .await?)
}

/// A page of the tenant's events of the last 30 days, newest first, each the payload exactly
/// as delivered; `limit_clause` is a checked ` LIMIT n OFFSET m` (see
/// `PageRequest::limit_clause`).
pub async fn page(
    pool: &PgPool,
    tenant: Tenant,
    kind: Option<&str>,
    limit_clause: &str,
) -> ApiResult<Vec<Value>> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT payload FROM events
          WHERE organization_id = $1 AND livemode = $2 AND ($3::text IS NULL OR type = $3)
            AND created_at > now() - interval '{RETENTION}'
          ORDER BY created_at DESC, id DESC{limit_clause}"
    ))
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .bind(kind)
    .fetch_all(pool)
    .await?)
}

/// The payload of one event of the tenant of the last 30 days, if there is one.
pub async fn find(pool: &PgPool, tenant: Tenant, id: &str) -> ApiResult<Option<Value>> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT payload FROM events
          WHERE id = $1 AND organization_id = $2 AND livemode = $3
            AND created_at > now() - interval '{RETENTION}'"
    ))
    .bind(id)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .fetch_optional(pool)
    .await?)
}

/// Writes `event` (its payload exactly as it is to be delivered) for the tenant, about
/// `appointment` when given. The JSONB column keeps the members, not their order: deliveries
/// and `/events` read it back with its keys sorted.
pub async fn insert<T: Serialize>(
    connection: &mut PgConnection,
    tenant: Tenant,
    appointment: Option<i64>,
    event: &Envelope<T>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO events (id, organization_id, livemode, type, appointment_id, sequence, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&event.id)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .bind(&event.kind)
    .bind(appointment)
    .bind(event.sequence)
    .bind(SqlJson(event))
    .execute(connection)
    .await?;
    Ok(())
}
