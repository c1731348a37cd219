//! `PATCH /appointments/{id}` (ext): atomic reschedule, change of staff member and contact changes
//! of a confirmed appointment. The new slot (and worker) is taken and the old one freed in one
//! transaction, or nothing changes.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sqlx::types::Json as SqlJson;

use super::cancel::no_longer_modifiable;
use super::create::{checked_worker, offered_slot, positive_id, requested_start, Contact};
use super::{booking_conflict, lock_appointment, reload};
use crate::auth::{scope, Authorized};
use crate::domain::datetime::format_local;
use crate::domain::status::Status;
use crate::error::{check_fields, ApiResult};
use crate::events;
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::store::departments::lock_department;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateAppointment {
    date_time: Option<String>,
    name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    notes: Option<String>,
    metadata: Option<Map<String, Value>>,
    worker_id: Option<i64>,
}

/// Applies the given fields; an `appointment.updated` event lists each change `{from, to}`.
pub async fn reschedule(
    auth: Authorized<scope::AppointmentsCreate>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateAppointment>,
) -> ApiResult<Json<Value>> {
    let mut errors = Vec::new();
    let name = body
        .name
        .as_deref()
        .map(|name| Contact::name(name, &mut errors));
    Contact::optional(
        body.phone.as_deref(),
        body.email.as_deref(),
        body.notes.as_deref(),
        body.metadata.as_ref(),
        &mut errors,
    );
    positive_id("workerId", body.worker_id, &mut errors);
    check_fields(errors)?;

    let mut tx = state.pool.begin().await?;
    let current = lock_appointment(&mut tx, &auth, id).await?;
    let status = current.status()?;
    if status != Status::Confirmed {
        return Err(no_longer_modifiable(status));
    }
    let mut changes = Map::new();
    let mut record = |field: &str, from: Value, to: Value| {
        if from != to {
            changes.insert(field.to_owned(), json!({"from": from, "to": to}));
        }
    };

    // The new slot is checked against the department's capacity and the worker's other
    // appointments by the database, in the UPDATE below, under the department's lock taken here.
    let mut slot = None;
    let new_worker = body.worker_id.filter(|id| Some(*id) != current.worker_id);
    let mut worker_id = current.worker_id;
    if body.date_time.is_some() || new_worker.is_some() {
        let department = lock_department(&mut tx, auth.tenant, current.department_id).await?;
        if let Some(text) = &body.date_time {
            let starts_at = requested_start(text, department.tz()?)?;
            if starts_at != current.starts_at {
                let new_slot = offered_slot(&department, starts_at)?;
                let tz = department.tz()?;
                record(
                    "dateTime",
                    json!(format_local(current.starts_at, tz)),
                    json!(new_slot.local.format("%Y-%m-%dT%H:%M:%S").to_string()),
                );
                slot = Some((new_slot, department.timezone.clone()));
            }
        }
        // A move is a new booking of the worker's time, checked as one (required when the
        // department requires it, active, of this department); an appointment that stays put
        // keeps its worker unchecked, even one deactivated since.
        if slot.is_some() || new_worker.is_some() {
            worker_id =
                checked_worker(&mut tx, &department, new_worker.or(current.worker_id)).await?;
            record("workerId", json!(current.worker_id), json!(worker_id));
        }
    }
    let name = name.unwrap_or_else(|| current.name.clone());
    record("name", json!(current.name), json!(name));
    let phone = body.phone.or_else(|| current.phone.clone());
    record("phone", json!(current.phone), json!(phone));
    let email = body.email.or_else(|| current.email.clone());
    record("email", json!(current.email), json!(email));
    let notes = body.notes.or_else(|| current.notes.clone());
    record("notes", json!(current.notes), json!(notes));
    let metadata = body.metadata.unwrap_or_else(|| current.metadata.0.clone());
    record("metadata", json!(current.metadata.0), json!(metadata));

    if changes.is_empty() {
        return Ok(Json(current.to_json(&state.settings.public_url)));
    }
    let (starts_at, ends_at, local, timezone) = match &slot {
        Some((new_slot, timezone)) => (
            new_slot.starts_at,
            new_slot.ends_at,
            new_slot.local,
            timezone.clone(),
        ),
        None => (
            current.starts_at,
            current.ends_at,
            current.local_starts_at,
            current.timezone.clone(),
        ),
    };
    sqlx::query(
        "UPDATE appointments
            SET starts_at = $2, ends_at = $3, local_starts_at = $4, timezone = $5,
                name = $6, phone = $7, email = $8, notes = $9, metadata = $10, worker_id = $11,
                sequence = sequence + 1, updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(starts_at)
    .bind(ends_at)
    .bind(local)
    .bind(&timezone)
    .bind(&name)
    .bind(&phone)
    .bind(&email)
    .bind(&notes)
    .bind(SqlJson(&metadata))
    .bind(worker_id)
    .execute(&mut *tx)
    .await
    .map_err(booking_conflict)?;
    let updated = reload(&mut tx, id).await?;
    let object = updated.to_json(&state.settings.public_url);
    events::record(
        &mut tx,
        &updated.subject(),
        events::APPOINTMENT_UPDATED,
        json!({"object": object, "changes": changes}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(updated.to_json(&state.settings.public_url)))
}
