//! `PATCH /appointments/{id}` (ext): atomic reschedule, change of staff member and contact changes
//! of a confirmed appointment. The new slot (and worker) is taken and the old one freed in one
//! transaction, or nothing changes.

use aide::transform::TransformOperation;
use axum::extract::State;
use axum::Json;

use super::json::{change, Appointment, AppointmentChanges, AppointmentEvent, AppointmentUpdate};
use super::no_longer_modifiable;
use crate::auth::{scope, Authorized};
use crate::domain::appointment::AppointmentEdit;
use crate::domain::datetime::format_local;
use crate::domain::status::Status;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath};
use crate::openapi::refer_response;
use crate::state::AppState;
use crate::store::appointments::{self as store, Placement};
use crate::store::departments::lock_department;

/// Applies the given fields; an `appointment.updated` event lists each change `{from, to}`.
pub async fn reschedule(
    auth: Authorized<scope::AppointmentsCreate>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<AppointmentUpdate>,
) -> ApiResult<Json<Appointment>> {
    let edit = AppointmentEdit::try_from(body)?;
    let public_url = &state.settings.public_url;
    let mut tx = state.pool.begin().await?;
    let current = store::lock(&mut tx, auth.tenant, id).await?;
    if current.status != Status::Confirmed {
        return Err(no_longer_modifiable(current.status));
    }
    let mut next = Placement::of(&current);
    let mut changes = AppointmentChanges::default();

    // The new slot is checked against the department's capacity and the worker's other
    // appointments by the database, in the UPDATE, under the department's lock taken here.
    let new_worker = edit.worker_id.filter(|id| Some(*id) != current.worker_id);
    if edit.date_time.is_some() || new_worker.is_some() {
        let department = lock_department(&mut tx, auth.tenant, current.department_id).await?;
        let mut moved = false;
        if let Some(text) = &edit.date_time {
            let starts_at = store::start_at(&department, text)?;
            if starts_at != current.starts_at {
                let slot = store::offered_slot(&department, starts_at)?;
                changes.date_time = change(
                    format_local(current.starts_at, department.tz()?),
                    slot.local.format("%Y-%m-%dT%H:%M:%S").to_string(),
                );
                next.starts_at = slot.starts_at;
                next.ends_at = slot.ends_at;
                next.local_starts_at = slot.local;
                next.timezone = department.timezone.clone();
                moved = true;
            }
        }
        // A move is a new booking of the worker's time, checked as one (required when the
        // department requires it, active, of this department); an appointment that stays put
        // keeps its worker unchecked, even one deactivated since.
        if moved || new_worker.is_some() {
            next.worker_id =
                store::checked_worker(&mut tx, &department, new_worker.or(current.worker_id))
                    .await?;
            changes.worker_id = change(current.worker_id, next.worker_id);
        }
    }
    if let Some(name) = edit.name {
        next.name = name.into_inner();
    }
    changes.name = change(current.name.clone(), next.name.clone());
    if let Some(phone) = edit.phone {
        next.phone = Some(phone.into_inner());
    }
    changes.phone = change(current.phone.clone(), next.phone.clone());
    if let Some(email) = edit.email {
        next.email = Some(email.into_inner());
    }
    changes.email = change(current.email.clone(), next.email.clone());
    if let Some(notes) = edit.notes {
        next.notes = Some(notes.into_inner());
    }
    changes.notes = change(current.notes.clone(), next.notes.clone());
    if let Some(metadata) = edit.metadata {
        next.metadata = metadata.into_inner();
    }
    changes.metadata = change(current.metadata.0.clone(), next.metadata.clone());

    if changes.is_empty() {
        return Ok(Json(Appointment::new(&current, public_url)));
    }
    let updated = store::update(&mut tx, auth.tenant, id, &next, |row| {
        let mut event = AppointmentEvent::of(Appointment::new(row, public_url));
        event.changes = Some(changes);
        event.to_data()
    })
    .await?;
    tx.commit().await?;
    Ok(Json(Appointment::new(&updated, public_url)))
}

pub fn docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "NotFound");
    refer_response(op.inner_mut(), 409, "Conflict");
    refer_response(op.inner_mut(), 422, "UnprocessableEntity");
    op.id("updateAppointment")
        .summary("Reschedule or edit an appointment")
        .description("Only a CONFIRMED appointment can be changed (else 409 INVALID_STATUS_TRANSITION). A new `dateTime` is checked like a booking (409 SLOT_NOT_AVAILABLE / DUPLICATE_APPOINTMENT, 422 SLOT_NOT_OFFERED / DEPARTMENT_INACTIVE); the new slot is taken and the old one freed in one transaction, or nothing changes. A new `workerId` (alone or with `dateTime`) is checked like a booking's (404 WORKER_NOT_FOUND, 422 WORKER_INACTIVE, 409 SLOT_NOT_AVAILABLE when that worker is busy); a move keeps the worker and must find it free. No credit moves.")
        .tag("appointments")
        .response_with::<200, Json<Appointment>, _>(|r| {
            r.description("The appointment after the change (unchanged when nothing differs).")
        })
}
