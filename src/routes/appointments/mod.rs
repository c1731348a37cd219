//! `/appointments`: book, read, list, reschedule, cancel, validate, no-show, check-in.

mod cancel;
mod check_in;
mod create;
pub mod json;
mod list;
mod reschedule;
mod status;

use aide::axum::routing::{get_with, post_with};
use aide::axum::ApiRouter;
use aide::transform::TransformOperation;
use axum::extract::State;
use axum::Json;

use self::json::Appointment;
use crate::auth::{scope, Authorized};
use crate::domain::status::Status;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::ApiPath;
use crate::openapi::refer_response;
use crate::state::AppState;
use crate::store::appointments as store;

/// The operations of a caller's appointments, described in code.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/appointments",
            post_with(create::create, create::docs).get_with(list::list, list::docs),
        )
        .api_route(
            "/appointments/{id}",
            get_with(retrieve, retrieve_docs)
                .patch_with(reschedule::reschedule, reschedule::docs)
                .delete_with(cancel::cancel, cancel::docs),
        )
        .api_route(
            "/appointments/{id}/validate",
            post_with(status::validate, status::validate_docs),
        )
        .api_route(
            "/appointments/{id}/no-show",
            post_with(status::no_show, status::no_show_docs),
        )
        .merge(check_in::router())
}

/// One appointment of the caller's organization and mode.
async fn retrieve(
    auth: Authorized<scope::AppointmentsRead>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Appointment>> {
    let appointment = store::find(&state.pool, auth.tenant, id).await?;
    Ok(Json(Appointment::new(
        &appointment,
        &state.settings.public_url,
    )))
}

fn retrieve_docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "NotFound");
    op.id("getAppointment")
        .summary("Get an appointment")
        .tag("appointments")
        .response_with::<200, Json<Appointment>, _>(|r| r.description("The appointment."))
}

/// 409 `INVALID_STATUS_TRANSITION` naming the current status.
fn invalid_transition(current: Status, next: Status) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidStatusTransition,
        format!(
            "A {} appointment cannot become {}",
            current.as_str(),
            next.as_str()
        ),
    )
    .with_detail("currentStatus", current.as_str())
}

/// 409 `INVALID_STATUS_TRANSITION` for a change to an appointment that is no longer confirmed.
fn no_longer_modifiable(current: Status) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidStatusTransition,
        format!(
            "A {} appointment can no longer be changed",
            current.as_str()
        ),
    )
    .with_detail("currentStatus", current.as_str())
}
