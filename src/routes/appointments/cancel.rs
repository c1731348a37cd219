//! `DELETE /appointments/{id}`: cancels, refunding the credit when cancelled before the start.

use aide::transform::TransformOperation;
use axum::extract::State;
use axum::Json;
use chrono::Utc;

use super::invalid_transition;
use super::json::{Appointment, AppointmentCancel, AppointmentEvent};
use crate::auth::{scope, Authorized};
use crate::domain::appointment::cancellation_refunds;
use crate::domain::status::Status;
use crate::error::ApiResult;
use crate::extract::{ApiPath, OptionalJson};
use crate::metrics;
use crate::openapi::refer_response;
use crate::state::AppState;
use crate::store::appointments as store;

/// Cancels an appointment. Cancelling it again answers it again, refunding nothing.
pub async fn cancel(
    auth: Authorized<scope::AppointmentsCancel>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    OptionalJson(body): OptionalJson<AppointmentCancel>,
) -> ApiResult<Json<Appointment>> {
    let reason = body.unwrap_or_default().reason()?;
    let public_url = &state.settings.public_url;
    let mut tx = state.pool.begin().await?;
    let appointment = store::lock(&mut tx, auth.tenant, id).await?;
    let current = appointment.status;
    if current == Status::Cancelled {
        return Ok(Json(Appointment::new(&appointment, public_url)));
    }
    if !current.can_become(Status::Cancelled) {
        return Err(invalid_transition(current, Status::Cancelled));
    }
    let refund = cancellation_refunds(Utc::now(), appointment.starts_at);
    let cancelled = store::cancel(
        &mut tx,
        auth.tenant,
        id,
        &auth.key_id,
        reason.as_deref(),
        refund,
        |row| {
            let mut event = AppointmentEvent::of(Appointment::new(row, public_url));
            event.object.credits_refunded = Some(i32::from(refund));
            event.to_data()
        },
    )
    .await?;
    tx.commit().await?;
    metrics::appointment_cancelled();
    Ok(Json(Appointment::new(&cancelled, public_url)))
}

pub fn docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "NotFound");
    refer_response(op.inner_mut(), 409, "Conflict");
    op.id("cancelAppointment")
        .summary("Cancel an appointment")
        .description("The credit is refunded when cancelled before `startsAt`. `cancelledBy` is set to the id of the calling API key. A COMPLETED or NO_SHOW appointment cannot be cancelled (409 INVALID_STATUS_TRANSITION). The body is optional; a non-empty body with a non-JSON Content-Type answers 415.")
        .tag("appointments")
        .response_with::<200, Json<Appointment>, _>(|r| {
            r.description("The appointment, CANCELLED. Cancelling an already cancelled appointment answers it again and refunds nothing.")
                .example(Appointment::cancelled_example())
        })
}
