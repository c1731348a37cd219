//! What the availability of a department reads besides the department itself: its active
//! workers and the appointments that occupy its slots.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::error::ApiResult;
use crate::tenant::Tenant;

/// The active workers of the tenant's department, by id.
pub async fn active_workers(
    pool: &PgPool,
    tenant: Tenant,
    department_id: i64,
) -> ApiResult<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT w.id FROM workers w JOIN departments d ON d.id = w.department_id
          WHERE w.department_id = $1 AND w.is_active
            AND d.organization_id = $2 AND d.livemode = $3
          ORDER BY w.id",
    )
    .bind(department_id)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .fetch_all(pool)
    .await?)
}

/// Live appointments of one interval and worker (or of none).
#[derive(sqlx::FromRow)]
pub struct Booked {
    pub worker_id: Option<i64>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub count: i64,
}

/// Every appointment of the tenant's department that is not cancelled and overlaps
/// `first..last`, whatever grid it was booked on, counted per interval and worker.
pub async fn booked(
    pool: &PgPool,
    tenant: Tenant,
    department_id: i64,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
) -> ApiResult<Vec<Booked>> {
    // An appointment lasts at most a day (a constraint), which bounds the index range.
    // Counted per interval and worker: one row per distinct slot rather than per appointment
    // (a worker holds at most one appointment per interval).
    Ok(sqlx::query_as(
        "SELECT worker_id, starts_at, ends_at, count(*) AS count FROM appointments
          WHERE department_id = $1 AND status <> 'CANCELLED'
            AND starts_at > $2 - interval '1 day' AND starts_at < $3 AND ends_at > $2
            AND organization_id = $4 AND livemode = $5
          GROUP BY worker_id, starts_at, ends_at",
    )
    .bind(department_id)
    .bind(first)
    .bind(last)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .fetch_all(pool)
    .await?)
}
