//! The workers (staff members) of a tenant's departments. A worker belongs to one department
//! and, through it, to one organization and mode: every query filters on the department's
//! tenant, so anyone else's worker is missing.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::tenant::Tenant;

/// One worker as stored, with the mode of its department.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Worker {
    pub id: i64,
    pub department_id: i64,
    pub livemode: bool,
    pub name: String,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT_WORKER: &str = "
    SELECT w.id, w.department_id, d.livemode, w.name, w.is_active, w.created_at, w.updated_at
      FROM workers w JOIN departments d ON d.id = w.department_id";

/// 422 `WORKER_INACTIVE`: a deactivated staff member takes no bookings.
pub fn worker_inactive(worker_id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::WorkerInactive,
        "This staff member is deactivated and takes no bookings",
    )
    .with_detail("workerId", worker_id)
}

/// 404 `WORKER_NOT_FOUND`: unknown, of another department, or of another organization or mode.
pub fn worker_not_found() -> ApiError {
    ApiError::not_found(ErrorCode::WorkerNotFound, "Worker")
}

/// The workers of the tenant's department `department_id`, active or not, by id.
pub async fn list(pool: &PgPool, tenant: Tenant, department_id: i64) -> ApiResult<Vec<Worker>> {
    Ok(sqlx::query_as(&format!(
        "{SELECT_WORKER} WHERE w.department_id = $1 AND d.organization_id = $2 AND d.livemode = $3
          ORDER BY w.id"
    ))
    .bind(department_id)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .fetch_all(pool)
    .await?)
}

/// The tenant's worker `worker_id` of department `department_id`, or 404 `WORKER_NOT_FOUND`.
pub async fn find_worker<'e>(
    executor: impl PgExecutor<'e>,
    tenant: Tenant,
    department_id: i64,
    worker_id: i64,
) -> ApiResult<Worker> {
    sqlx::query_as(&format!(
        "{SELECT_WORKER} WHERE w.id = $1 AND w.department_id = $2
                           AND d.organization_id = $3 AND d.livemode = $4"
    ))
    .bind(worker_id)
    .bind(department_id)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .fetch_optional(executor)
    .await?
    .ok_or_else(worker_not_found)
}

/// Checks that `worker_id` may take a new booking in the tenant's department `department_id`:
/// 404 `WORKER_NOT_FOUND` when it is not one of that department's workers, 422
/// `WORKER_INACTIVE` when deactivated. The worker's row stays share-locked until the end of the
/// transaction, so that a concurrent deactivation either waits for this booking to commit or is
/// seen by it: no booking lands on a worker deactivated before it committed.
pub async fn bookable_worker(
    connection: &mut PgConnection,
    tenant: Tenant,
    department_id: i64,
    worker_id: i64,
) -> ApiResult<i64> {
    let active: Option<bool> = sqlx::query_scalar(
        "SELECT w.is_active FROM workers w JOIN departments d ON d.id = w.department_id
          WHERE w.id = $1 AND w.department_id = $2 AND d.organization_id = $3 AND d.livemode = $4
            FOR SHARE OF w",
    )
    .bind(worker_id)
    .bind(department_id)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .fetch_optional(connection)
    .await?;
    bookable(worker_id, active)
}

/// Staff member `worker_id` judged for a booking on its state as read: `active` is `None` when
/// it is not one of the department's (404), `Some(false)` when deactivated (422).
pub fn bookable(worker_id: i64, active: Option<bool>) -> ApiResult<i64> {
    match active {
        None => Err(worker_not_found()),
        Some(false) => Err(worker_inactive(worker_id)),
        Some(true) => Ok(worker_id),
    }
}

/// Creates a worker in the tenant's department `department_id`.
pub async fn create(
    pool: &PgPool,
    tenant: Tenant,
    department_id: i64,
    name: &str,
    is_active: bool,
) -> ApiResult<Worker> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO workers (department_id, name, is_active)
         SELECT d.id, $4, $5 FROM departments d
          WHERE d.id = $1 AND d.organization_id = $2 AND d.livemode = $3
         RETURNING id",
    )
    .bind(department_id)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .bind(name)
    .bind(is_active)
    .fetch_optional(pool)
    .await?;
    let id = id.ok_or_else(crate::store::departments::department_not_found)?;
    find_worker(pool, tenant, department_id, id).await
}

/// Applies the given changes (`None`: unchanged) to the tenant's worker `worker_id` of
/// department `department_id`, or 404 `WORKER_NOT_FOUND`.
pub async fn change(
    pool: &PgPool,
    tenant: Tenant,
    department_id: i64,
    worker_id: i64,
    name: Option<&str>,
    is_active: Option<bool>,
) -> ApiResult<Worker> {
    let updated = sqlx::query(
        "UPDATE workers w SET name = COALESCE($5, w.name), is_active = COALESCE($6, w.is_active),
                updated_at = now()
           FROM departments d
          WHERE w.id = $1 AND w.department_id = $2 AND d.id = w.department_id
            AND d.organization_id = $3 AND d.livemode = $4",
    )
    .bind(worker_id)
    .bind(department_id)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .bind(name)
    .bind(is_active)
    .execute(pool)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(worker_not_found());
    }
    find_worker(pool, tenant, department_id, worker_id).await
}
