//! `DELETE /appointments/{id}`: cancels, refunding the credit when cancelled before the start.

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{lock_appointment, reload};
use crate::auth::{scope, Authorized};
use crate::domain::status::Status;
use crate::domain::text::{self, TextError};
use crate::error::{ApiError, ApiResult, ErrorCode, FieldError};
use crate::events;
use crate::extract::{ApiPath, OptionalJson};
use crate::ledger;
use crate::metrics;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    reason: Option<String>,
}

/// 409 `INVALID_STATUS_TRANSITION` naming the current status.
pub(super) fn invalid_transition(current: Status, next: Status) -> ApiError {
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
pub(super) fn no_longer_modifiable(current: Status) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidStatusTransition,
        format!(
            "A {} appointment can no longer be changed",
            current.as_str()
        ),
    )
    .with_detail("currentStatus", current.as_str())
}

/// Cancels an appointment. Cancelling it again answers it again, refunding nothing.
pub async fn cancel(
    auth: Authorized<scope::AppointmentsCancel>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    OptionalJson(body): OptionalJson<CancelBody>,
) -> ApiResult<Json<Value>> {
    // An optional reason: blank is no reason; the limit counts the value as sent.
    let reason = match body
        .and_then(|body| body.reason)
        .map(|r| text::required(&r, 500))
    {
        Some(Err(TextError::TooLong)) => {
            return Err(ApiError::validation(vec![FieldError::invalid(
                "reason",
                "must be at most 500 characters",
            )]))
        }
        Some(Ok(reason)) => Some(reason),
        Some(Err(TextError::Blank)) | None => None,
    };
    let mut tx = state.pool.begin().await?;
    let appointment = lock_appointment(&mut tx, &auth, id).await?;
    let current = appointment.status()?;
    if current == Status::Cancelled {
        return Ok(Json(appointment.to_json(&state.settings.public_url)));
    }
    if !current.can_become(Status::Cancelled) {
        return Err(invalid_transition(current, Status::Cancelled));
    }
    sqlx::query(
        "UPDATE appointments
            SET status = 'CANCELLED', cancelled_at = now(), cancelled_by = $2, cancel_reason = $3,
                sequence = sequence + 1, updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(&auth.key_id)
    .bind(&reason)
    .execute(&mut *tx)
    .await?;
    let refunded = if Utc::now() < appointment.starts_at {
        let account = auth.account();
        ledger::refund(&mut tx, account, id).await?;
        1
    } else {
        0
    };
    let cancelled = reload(&mut tx, id).await?;
    let mut object = cancelled.to_json(&state.settings.public_url);
    object["creditsRefunded"] = json!(refunded);
    events::record(
        &mut tx,
        &cancelled.subject(),
        events::APPOINTMENT_CANCELLED,
        json!({"object": object}),
    )
    .await?;
    tx.commit().await?;
    metrics::appointment_cancelled();
    Ok(Json(cancelled.to_json(&state.settings.public_url)))
}
