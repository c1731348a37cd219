//! `POST /appointments/{id}/validate` and `/no-show` (`api:admin`): how a confirmed visit ended.

use aide::transform::TransformOperation;
use axum::extract::State;
use axum::Json;

use super::invalid_transition;
use super::json::{Appointment, AppointmentEvent};
use crate::auth::{scope, Authorized};
use crate::domain::status::Status;
use crate::error::ApiResult;
use crate::events;
use crate::extract::ApiPath;
use crate::openapi::refer_response;
use crate::state::AppState;
use crate::store::appointments as store;
use crate::tenant::Tenant;

/// Presence confirmed: `CONFIRMED` → `COMPLETED`. No credit moves.
pub async fn validate(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Appointment>> {
    conclude(
        auth.tenant,
        &state,
        id,
        Status::Completed,
        events::APPOINTMENT_VALIDATED,
    )
    .await
}

pub fn validate_docs(op: TransformOperation) -> TransformOperation {
    docs(op)
        .id("validateAppointment")
        .summary("Mark an appointment completed")
        .description("CONFIRMED → COMPLETED; any other current status answers 409 INVALID_STATUS_TRANSITION. No credit moves. No request body.")
        .response_with::<200, Json<Appointment>, _>(|r| r.description("The appointment, now COMPLETED."))
}

/// The person did not come: `CONFIRMED` → `NO_SHOW`. No credit moves.
pub async fn no_show(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Appointment>> {
    conclude(
        auth.tenant,
        &state,
        id,
        Status::NoShow,
        events::APPOINTMENT_NO_SHOW,
    )
    .await
}

pub fn no_show_docs(op: TransformOperation) -> TransformOperation {
    docs(op)
        .id("markAppointmentNoShow")
        .summary("Mark an appointment as no-show")
        .description("CONFIRMED → NO_SHOW; any other current status answers 409 INVALID_STATUS_TRANSITION. No credit moves. No request body.")
        .response_with::<200, Json<Appointment>, _>(|r| r.description("The appointment, now NO_SHOW."))
}

fn docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "NotFound");
    refer_response(op.inner_mut(), 409, "Conflict");
    op.tag("appointments")
}

async fn conclude(
    tenant: Tenant,
    state: &AppState,
    id: i64,
    next: Status,
    event_type: &str,
) -> ApiResult<Json<Appointment>> {
    let public_url = &state.settings.public_url;
    let mut tx = state.pool.begin().await?;
    let appointment = store::lock(&mut tx, tenant, id).await?;
    if !appointment.status.can_become(next) {
        return Err(invalid_transition(appointment.status, next));
    }
    let concluded = store::conclude(&mut tx, tenant, id, next, event_type, |row| {
        AppointmentEvent::of(Appointment::new(row, public_url)).to_data()
    })
    .await?;
    tx.commit().await?;
    Ok(Json(Appointment::new(&concluded, public_url)))
}
