//! `POST /appointments/{id}/validate` and `/no-show` (`api:admin`): how a confirmed visit ended.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::cancel::invalid_transition;
use super::{lock_appointment, reload};
use crate::auth::{scope, ApiKeyAuth, Authorized};
use crate::domain::status::Status;
use crate::error::ApiResult;
use crate::events;
use crate::extract::ApiPath;
use crate::state::AppState;

/// Presence confirmed: `CONFIRMED` → `COMPLETED`. No credit moves.
pub async fn validate(
    auth: Authorized<scope::ApiAdmin>,
    state: State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    conclude(
        &auth,
        state,
        id,
        Status::Completed,
        events::APPOINTMENT_VALIDATED,
    )
    .await
}

/// The person did not come: `CONFIRMED` → `NO_SHOW`. No credit moves.
pub async fn no_show(
    auth: Authorized<scope::ApiAdmin>,
    state: State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    conclude(
        &auth,
        state,
        id,
        Status::NoShow,
        events::APPOINTMENT_NO_SHOW,
    )
    .await
}

async fn conclude(
    auth: &ApiKeyAuth,
    State(state): State<AppState>,
    id: i64,
    next: Status,
    event_type: &str,
) -> ApiResult<Json<Value>> {
    let mut tx = state.pool.begin().await?;
    let appointment = lock_appointment(&mut tx, auth, id).await?;
    let current = appointment.status()?;
    if !current.can_become(next) {
        return Err(invalid_transition(current, next));
    }
    sqlx::query("UPDATE appointments SET status = $2, sequence = sequence + 1, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(next.as_str())
        .execute(&mut *tx)
        .await?;
    let concluded = reload(&mut tx, id).await?;
    let object = concluded.to_json(&state.settings.public_url);
    events::record(
        &mut tx,
        &concluded.subject(),
        event_type,
        json!({"object": object}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(concluded.to_json(&state.settings.public_url)))
}
