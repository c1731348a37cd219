//! `/appointments`: book, read, list, reschedule, cancel, validate, no-show, check-in.

mod cancel;
mod check_in;
mod create;
mod list;
mod reschedule;
mod status;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Map, Value};
use sqlx::types::Json as SqlJson;
use sqlx::PgConnection;

use crate::auth::{scope, ApiKeyAuth, Authorized};
use crate::domain::datetime::{format_instant, format_local, format_timestamp};
use crate::domain::status::Status;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::events::Subject;
use crate::extract::ApiPath;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/appointments", post(create::create).get(list::list))
        .route(
            "/appointments/{id}",
            get(retrieve)
                .delete(cancel::cancel)
                .patch(reschedule::reschedule),
        )
        .route("/appointments/{id}/validate", post(status::validate))
        .route("/appointments/{id}/no-show", post(status::no_show))
        .route("/appointments/{id}/qr.svg", get(check_in::qr_code))
        .route("/appointments/{id}/check-in", get(check_in::check_in))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AppointmentRow {
    pub id: i64,
    pub organization_id: i64,
    pub livemode: bool,
    pub department_id: i64,
    pub department_name: String,
    /// The staff member serving it, if one was named.
    pub worker_id: Option<i64>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub local_starts_at: NaiveDateTime,
    pub timezone: String,
    pub status: String,
    pub name: String,
    pub external_user_id: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub notes: Option<String>,
    pub metadata: SqlJson<Map<String, Value>>,
    pub check_in_token: String,
    pub credits_consumed: i32,
    pub sequence: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancelled_by: Option<String>,
    pub cancel_reason: Option<String>,
}

pub const SELECT_APPOINTMENT: &str = "
    SELECT a.id, a.organization_id, a.livemode, a.department_id, d.name AS department_name,
           a.worker_id, a.starts_at, a.ends_at, a.local_starts_at, a.timezone, a.status, a.name,
           a.external_user_id, a.phone, a.email, a.notes, a.metadata, a.check_in_token,
           a.credits_consumed, a.sequence, a.created_at, a.updated_at,
           a.cancelled_at, a.cancelled_by, a.cancel_reason
      FROM appointments a JOIN departments d ON d.id = a.department_id";

impl AppointmentRow {
    pub fn status(&self) -> ApiResult<Status> {
        Status::parse(&self.status).ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("unknown stored status {:?}", self.status))
        })
    }

    pub fn subject(&self) -> Subject {
        Subject {
            organization_id: self.organization_id,
            livemode: self.livemode,
            appointment: Some((self.id, self.sequence)),
        }
    }

    /// The contract's appointment object; `qrCode` is built on `public_url`.
    pub fn to_json(&self, public_url: &str) -> Value {
        let timezone = self.timezone.parse().unwrap_or(chrono_tz::UTC);
        json!({
            "id": self.id,
            "departmentId": self.department_id,
            "department": {"id": self.department_id, "name": self.department_name},
            "workerId": self.worker_id,
            "dateTime": self.local_starts_at.format("%Y-%m-%dT%H:%M:%S").to_string(),
            "endDateTime": format_local(self.ends_at, timezone),
            "timezone": self.timezone,
            "startsAt": format_instant(self.starts_at),
            "endsAt": format_instant(self.ends_at),
            "status": self.status,
            "name": self.name,
            "externalUserId": self.external_user_id,
            "phone": self.phone,
            "email": self.email,
            "notes": self.notes,
            "metadata": self.metadata.0,
            "qrCode": check_in::qr_code_address(public_url, self.id, &self.check_in_token),
            "creditsConsumed": self.credits_consumed,
            "livemode": self.livemode,
            "createdAt": format_timestamp(self.created_at),
            "updatedAt": format_timestamp(self.updated_at),
            "cancelledAt": self.cancelled_at.map(format_timestamp),
            "cancelledBy": self.cancelled_by,
            "cancelReason": self.cancel_reason,
        })
    }
}

fn not_found() -> ApiError {
    ApiError::not_found(ErrorCode::AppointmentNotFound, "Appointment")
}

/// The caller's appointment `id`, locked for the rest of the transaction.
pub async fn lock_appointment(
    connection: &mut PgConnection,
    auth: &ApiKeyAuth,
    id: i64,
) -> ApiResult<AppointmentRow> {
    sqlx::query_as(&format!(
        "{SELECT_APPOINTMENT} WHERE a.id = $1 AND a.organization_id = $2 AND a.livemode = $3 FOR UPDATE OF a"
    ))
    .bind(id)
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode)
    .fetch_optional(connection)
    .await?
    .ok_or_else(not_found)
}

/// Re-reads an appointment inside the transaction that changed it.
pub async fn reload(connection: &mut PgConnection, id: i64) -> ApiResult<AppointmentRow> {
    Ok(
        sqlx::query_as(&format!("{SELECT_APPOINTMENT} WHERE a.id = $1"))
            .bind(id)
            .fetch_one(connection)
            .await?,
    )
}

/// One appointment of the caller's organization and mode.
async fn retrieve(
    auth: Authorized<scope::AppointmentsRead>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let row: AppointmentRow = sqlx::query_as(&format!(
        "{SELECT_APPOINTMENT} WHERE a.id = $1 AND a.organization_id = $2 AND a.livemode = $3"
    ))
    .bind(id)
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(not_found)?;
    Ok(Json(row.to_json(&state.settings.public_url)))
}

/// Maps the violation of a booking constraint to its 409: the department at capacity, the
/// staff member busy, or the same person twice in a slot.
pub fn booking_conflict(error: sqlx::Error) -> ApiError {
    match crate::error::violated_constraint(&error) {
        Some("appointments_within_capacity") => slot_full(),
        Some("appointments_worker_one_at_a_time") => ApiError::new(
            ErrorCode::SlotNotAvailable,
            "That staff member already has an appointment overlapping that slot",
        )
        .with_detail("reason", "WORKER_BUSY"),
        Some("appointments_duplicate_key") => ApiError::new(
            ErrorCode::DuplicateAppointment,
            "This user already has an appointment in that slot",
        ),
        _ => error.into(),
    }
}

pub fn slot_full() -> ApiError {
    ApiError::new(
        ErrorCode::SlotNotAvailable,
        "That slot is full: the department already serves its capacity at some instant of it",
    )
    .with_detail("reason", "DEPARTMENT_FULL")
}
