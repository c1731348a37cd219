//! `/departments`: list and read (`departments:read`); create, update and deactivate (`api:admin`).

pub mod json;

use aide::axum::routing::get_with;
use aide::axum::ApiRouter;
use aide::transform::{TransformOperation, TransformResponse};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;

use self::json::{Department, DepartmentCreate, DepartmentUpdate};
use crate::auth::{scope, Authorized};
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath};
use crate::openapi::{link, refer_response};
use crate::state::AppState;
use crate::store::departments::{self as store, Fields};

pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/departments",
            get_with(list, list_docs).post_with(create, create_docs),
        )
        .api_route(
            "/departments/{id}",
            get_with(retrieve, retrieve_docs)
                .patch_with(update, update_docs)
                .delete_with(deactivate, deactivate_docs),
        )
}

/// Every department of the caller's mode, as a bare array (what the SDK expects).
async fn list(
    auth: Authorized<scope::DepartmentsRead>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<Department>>> {
    let departments = store::list(&state.pool, auth.tenant).await?;
    Ok(Json(departments.into_iter().map(Department::new).collect()))
}

fn list_docs(op: TransformOperation) -> TransformOperation {
    op.id("listDepartments")
        .summary("List departments")
        .tag("departments")
        .response_with::<200, Json<Vec<Department>>, _>(|r| {
            r.description("Every department of the caller's mode, by id, as a bare JSON array.")
                .example(vec![Department::example()])
        })
}

/// One department.
async fn retrieve(
    auth: Authorized<scope::DepartmentsRead>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Department>> {
    let department = store::find_department(&state.pool, auth.tenant, id).await?;
    Ok(Json(Department::new(department)))
}

fn retrieve_docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "NotFound");
    op.id("getDepartment")
        .summary("Get a department")
        .tag("departments")
        .response_with::<200, Json<Department>, _>(|r| {
            r.description("The department.")
                .example(Department::example())
        })
}

/// Creates a department in the caller's mode.
async fn create(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<DepartmentCreate>,
) -> ApiResult<(StatusCode, Json<Department>)> {
    let fields = body.parse()?;
    let department = store::create(&state.pool, auth.tenant, &fields).await?;
    Ok((StatusCode::CREATED, Json(Department::new(department))))
}

fn create_docs(op: TransformOperation) -> TransformOperation {
    op.id("createDepartment")
        .summary("Create a department")
        .tag("departments")
        .response_with::<201, Json<Department>, _>(|r| {
            links_of_created(
                r.description("Created in the caller's mode.")
                    .example(Department::example()),
            )
        })
}

/// What the created department's id leads to: itself, its slots, a booking into it.
fn links_of_created(mut response: TransformResponse<Department>) -> TransformResponse<Department> {
    let booking: serde_json::Map<String, Value> = [
        ("departmentId", "$response.body#/id"),
        ("dateTime", "2030-01-07T10:00:00"),
        ("name", "Linked booking"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), Value::from(value)))
    .collect();
    let links = &mut response.inner().links;
    for (name, operation) in [
        ("GetDepartment", "getDepartment"),
        ("UpdateDepartment", "updateDepartment"),
        ("DeactivateDepartment", "deactivateDepartment"),
        ("GetAvailability", "getAvailability"),
    ] {
        links.insert(
            name.to_owned(),
            link(operation, &[("id", "$response.body#/id")], None),
        );
    }
    links.insert(
        "CreateAppointment".to_owned(),
        link("createAppointment", &[], Some(Value::Object(booking))),
    );
    response
}

/// Changes the fields given. Existing appointments keep their instants and workers, whatever
/// changed (turning `showAdminsInBooking` on included); one above a lowered capacity stays valid,
/// and the department takes nobody new at those instants until it is below capacity again.
async fn update(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<DepartmentUpdate>,
) -> ApiResult<Json<Department>> {
    let mut tx = state.pool.begin().await?;
    let current = store::lock_department(&mut tx, auth.tenant, id).await?;
    let fields = body.apply(Fields::of(&current))?;
    let department = store::update(&mut tx, auth.tenant, id, &fields).await?;
    tx.commit().await?;
    Ok(Json(Department::new(department)))
}

fn update_docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "NotFound");
    op.id("updateDepartment")
        .summary("Update a department")
        .description("Changes the fields given. Existing appointments keep their instants whatever changed; one above a lowered capacity stays valid, and the department takes nobody new at those instants until it is below capacity there.")
        .tag("departments")
        .response_with::<200, Json<Department>, _>(|r| r.description("The updated department."))
}

/// Deactivates a department: it stays readable, its appointments stay, it takes no new booking.
async fn deactivate(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Department>> {
    let department = store::deactivate(&state.pool, auth.tenant, id).await?;
    Ok(Json(Department::new(department)))
}

fn deactivate_docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "NotFound");
    op.id("deactivateDepartment")
        .summary("Deactivate a department")
        .tag("departments")
        .response_with::<200, Json<Department>, _>(|r| {
            r.description("The department, now `isActive: false`. It stays readable, its appointments stay, it takes no new booking.")
        })
}
