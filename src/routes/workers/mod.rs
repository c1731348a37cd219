//! `/departments/{id}/workers`: a department's staff. Listed and read with `departments:read`;
//! created, renamed, deactivated and reactivated with `api:admin`. A worker belongs to one
//! department and, through it, to one organization and mode: anyone else gets a 404, as for a
//! missing worker. A worker serves one appointment at a time (a constraint of the database).

pub mod json;

use aide::axum::routing::get_with;
use aide::axum::ApiRouter;
use aide::transform::TransformOperation;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use self::json::{Worker, WorkerCreate, WorkerId, WorkerUpdate};
use crate::auth::{scope, Authorized};
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath};
use crate::openapi::refer_response;
use crate::state::AppState;
use crate::store::departments::find_department;
use crate::store::workers as store;

pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/departments/{id}/workers",
            get_with(list, list_docs).post_with(create, create_docs),
        )
        .api_route(
            "/departments/{id}/workers/{workerId}",
            get_with(retrieve, retrieve_docs)
                .patch_with(update, update_docs)
                .delete_with(deactivate, deactivate_docs),
        )
}

/// The department's workers, active or not, in creation order, as a bare array.
async fn list(
    auth: Authorized<scope::DepartmentsRead>,
    State(state): State<AppState>,
    ApiPath(department_id): ApiPath<i64>,
) -> ApiResult<Json<Vec<Worker>>> {
    let department = find_department(&state.pool, auth.tenant, department_id).await?;
    let workers = store::list(&state.pool, auth.tenant, department.id).await?;
    Ok(Json(workers.into_iter().map(Worker::new).collect()))
}

fn list_docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "NotFound");
    op.id("listWorkers")
        .summary("Staff of a department")
        .description("Every worker of the department, active or not, by id, as a bare JSON array. 404 DEPARTMENT_NOT_FOUND for a department of another organization or mode.")
        .tag("workers")
        .response_with::<200, Json<Vec<Worker>>, _>(|r| {
            r.description("The department's workers, by id.")
                .example(vec![Worker::example()])
        })
}

/// One worker of the department.
async fn retrieve(
    auth: Authorized<scope::DepartmentsRead>,
    State(state): State<AppState>,
    ApiPath((department_id, worker_id)): ApiPath<(i64, WorkerId)>,
) -> ApiResult<Json<Worker>> {
    let department = find_department(&state.pool, auth.tenant, department_id).await?;
    let worker = store::find_worker(&state.pool, auth.tenant, department.id, worker_id.0).await?;
    Ok(Json(Worker::new(worker)))
}

fn retrieve_docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "NotFound");
    op.id("getWorker")
        .summary("Get a staff member")
        .description(
            "404 WORKER_NOT_FOUND for a worker of another department, organization or mode.",
        )
        .tag("workers")
        .response_with::<200, Json<Worker>, _>(|r| r.description("The worker."))
}

/// Creates a worker in the department (active unless `isActive: false`).
async fn create(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiPath(department_id): ApiPath<i64>,
    ApiJson(body): ApiJson<WorkerCreate>,
) -> ApiResult<(StatusCode, Json<Worker>)> {
    let new = body.parse()?;
    let department = find_department(&state.pool, auth.tenant, department_id).await?;
    let worker = store::create(
        &state.pool,
        auth.tenant,
        department.id,
        &new.name,
        new.is_active,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(Worker::new(worker))))
}

fn create_docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "NotFound");
    op.id("createWorker")
        .summary("Add a staff member")
        .tag("workers")
        .response_with::<201, Json<Worker>, _>(|r| {
            r.description("Created, in the department.")
                .example(Worker::example())
        })
}

/// Renames, deactivates or reactivates a worker. Its appointments stay as they are.
async fn update(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiPath((department_id, worker_id)): ApiPath<(i64, WorkerId)>,
    ApiJson(body): ApiJson<WorkerUpdate>,
) -> ApiResult<Json<Worker>> {
    let changes = body.parse()?;
    let department = find_department(&state.pool, auth.tenant, department_id).await?;
    let worker = store::change(
        &state.pool,
        auth.tenant,
        department.id,
        worker_id.0,
        changes.name.as_deref(),
        changes.is_active,
    )
    .await?;
    Ok(Json(Worker::new(worker)))
}

fn update_docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "NotFound");
    op.id("updateWorker")
        .summary("Rename, deactivate or reactivate a staff member")
        .description("Its appointments never change.")
        .tag("workers")
        .response_with::<200, Json<Worker>, _>(|r| r.description("The updated worker."))
}

/// Deactivates a worker: still listed (`isActive: false`), its appointments stay, it takes no new
/// booking (422 `WORKER_INACTIVE`) until reactivated with PATCH.
async fn deactivate(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiPath((department_id, worker_id)): ApiPath<(i64, WorkerId)>,
) -> ApiResult<Json<Worker>> {
    let department = find_department(&state.pool, auth.tenant, department_id).await?;
    let worker = store::change(
        &state.pool,
        auth.tenant,
        department.id,
        worker_id.0,
        None,
        Some(false),
    )
    .await?;
    Ok(Json(Worker::new(worker)))
}

fn deactivate_docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "NotFound");
    op.id("deactivateWorker")
        .summary("Deactivate a staff member")
        .description("The worker stays listed with `isActive: false` and keeps its appointments; new bookings naming it answer 422 WORKER_INACTIVE. `PATCH {\"isActive\": true}` reactivates it.")
        .tag("workers")
        .response_with::<200, Json<Worker>, _>(|r| r.description("The worker, now `isActive: false`."))
}
