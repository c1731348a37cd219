//! `/departments/{id}/workers`: a department's staff. Listed and read with `departments:read`;
//! created, renamed, deactivated and reactivated with `api:admin`. A worker belongs to one
//! department and, through it, to one organization and mode: anyone else gets a 404, as for a
//! missing worker. A worker serves one appointment at a time (a constraint of the database).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgExecutor};

use crate::auth::{scope, ApiKeyAuth, Authorized};
use crate::domain::datetime::format_timestamp;
use crate::error::{check_fields, required_text, ApiError, ApiResult, ErrorCode};
use crate::extract::{ApiJson, ApiPath};
use crate::routes::departments::find_department;
use crate::state::AppState;

/// The longest worker name, in characters.
const NAME_MAX: usize = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/departments/{id}/workers", get(list).post(create))
        .route(
            "/departments/{id}/workers/{workerId}",
            get(retrieve).patch(update).delete(deactivate),
        )
}

/// One worker as stored, with the mode of its department.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WorkerRow {
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

impl WorkerRow {
    /// The contract's worker object.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "isActive": self.is_active,
            "departmentId": self.department_id,
            "livemode": self.livemode,
            "createdAt": format_timestamp(self.created_at),
            "updatedAt": format_timestamp(self.updated_at),
        })
    }
}

/// 404 `WORKER_NOT_FOUND`: unknown, of another department, or of another organization or mode.
pub fn worker_not_found() -> ApiError {
    ApiError::not_found(ErrorCode::WorkerNotFound, "Worker")
}

/// The caller's worker `worker_id` of department `department_id`, or 404 `WORKER_NOT_FOUND`.
pub async fn find_worker<'e>(
    executor: impl PgExecutor<'e>,
    auth: &ApiKeyAuth,
    department_id: i64,
    worker_id: i64,
) -> ApiResult<WorkerRow> {
    sqlx::query_as(&format!(
        "{SELECT_WORKER} WHERE w.id = $1 AND w.department_id = $2
                           AND d.organization_id = $3 AND d.livemode = $4"
    ))
    .bind(worker_id)
    .bind(department_id)
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode)
    .fetch_optional(executor)
    .await?
    .ok_or_else(worker_not_found)
}

/// Checks that `worker_id` may take a new booking in `department_id` (a department the caller
/// already holds): 404 `WORKER_NOT_FOUND` when it is not one of that department's workers, 422
/// `WORKER_INACTIVE` when deactivated. The row stays share-locked until the end of the
/// transaction, so that a concurrent deactivation either waits for this booking to commit or is
/// seen by it: no booking lands on a worker deactivated before it committed.
pub async fn bookable_worker(
    connection: &mut PgConnection,
    department_id: i64,
    worker_id: i64,
) -> ApiResult<i64> {
    let active: Option<bool> = sqlx::query_scalar(
        "SELECT is_active FROM workers WHERE id = $1 AND department_id = $2 FOR SHARE",
    )
    .bind(worker_id)
    .bind(department_id)
    .fetch_optional(connection)
    .await?;
    match active {
        None => Err(worker_not_found()),
        Some(false) => Err(ApiError::new(
            ErrorCode::WorkerInactive,
            "This staff member is deactivated and takes no bookings",
        )
        .with_detail("workerId", worker_id)),
        Some(true) => Ok(worker_id),
    }
}

/// The department's workers, active or not, in creation order, as a bare array.
async fn list(
    auth: Authorized<scope::DepartmentsRead>,
    State(state): State<AppState>,
    ApiPath(department_id): ApiPath<i64>,
) -> ApiResult<Json<Vec<Value>>> {
    let department = find_department(&state.pool, &auth, department_id).await?;
    let rows: Vec<WorkerRow> = sqlx::query_as(&format!(
        "{SELECT_WORKER} WHERE w.department_id = $1 ORDER BY w.id"
    ))
    .bind(department.id)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows.iter().map(WorkerRow::to_json).collect()))
}

/// One worker of the department.
async fn retrieve(
    auth: Authorized<scope::DepartmentsRead>,
    State(state): State<AppState>,
    ApiPath((department_id, worker_id)): ApiPath<(i64, i64)>,
) -> ApiResult<Json<Value>> {
    let department = find_department(&state.pool, &auth, department_id).await?;
    let worker = find_worker(&state.pool, &auth, department.id, worker_id).await?;
    Ok(Json(worker.to_json()))
}

/// The body of POST and PATCH; in a PATCH an absent (or null) field keeps its value.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WorkerBody {
    name: Option<String>,
    is_active: Option<bool>,
}

/// Creates a worker in the department (active unless `isActive: false`).
async fn create(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiPath(department_id): ApiPath<i64>,
    ApiJson(body): ApiJson<WorkerBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut errors = Vec::new();
    let name = required_text(&mut errors, "name", body.name.as_deref(), NAME_MAX);
    check_fields(errors)?;
    let department = find_department(&state.pool, &auth, department_id).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO workers (department_id, name, is_active) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(department.id)
    .bind(&name)
    .bind(body.is_active.unwrap_or(true))
    .fetch_one(&state.pool)
    .await?;
    let worker = find_worker(&state.pool, &auth, department.id, id).await?;
    Ok((StatusCode::CREATED, Json(worker.to_json())))
}

/// Renames, deactivates or reactivates a worker. Its appointments stay as they are.
async fn update(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiPath((department_id, worker_id)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<WorkerBody>,
) -> ApiResult<Json<Value>> {
    let mut errors = Vec::new();
    let name = body
        .name
        .as_deref()
        .map(|name| required_text(&mut errors, "name", Some(name), NAME_MAX));
    check_fields(errors)?;
    let department = find_department(&state.pool, &auth, department_id).await?;
    change(
        &state,
        &auth,
        department.id,
        worker_id,
        name,
        body.is_active,
    )
    .await
}

/// Deactivates a worker: still listed (`isActive: false`), its appointments stay, it takes no new
/// booking (422 `WORKER_INACTIVE`) until reactivated with PATCH.
async fn deactivate(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiPath((department_id, worker_id)): ApiPath<(i64, i64)>,
) -> ApiResult<Json<Value>> {
    let department = find_department(&state.pool, &auth, department_id).await?;
    change(&state, &auth, department.id, worker_id, None, Some(false)).await
}

/// Applies the given changes to a worker of the caller's department `department_id`.
async fn change(
    state: &AppState,
    auth: &ApiKeyAuth,
    department_id: i64,
    worker_id: i64,
    name: Option<String>,
    is_active: Option<bool>,
) -> ApiResult<Json<Value>> {
    let updated = sqlx::query(
        "UPDATE workers SET name = COALESCE($3, name), is_active = COALESCE($4, is_active),
                updated_at = now()
          WHERE id = $1 AND department_id = $2",
    )
    .bind(worker_id)
    .bind(department_id)
    .bind(name)
    .bind(is_active)
    .execute(&state.pool)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(worker_not_found());
    }
    let worker = find_worker(&state.pool, auth, department_id, worker_id).await?;
    Ok(Json(worker.to_json()))
}
