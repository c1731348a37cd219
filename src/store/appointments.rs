//! The appointments of a tenant: booked, read, listed, moved, cancelled and concluded. The
//! booking itself (department lock, insert, credit, event) is the one function [`book`], so that
//! the busiest write of the service is found, and tuned, in one place.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::types::Json as SqlJson;
use sqlx::{Decode, Encode, PgConnection, PgExecutor, PgPool, Postgres, QueryBuilder, Type};

use crate::domain::appointment::{start_in, NewAppointment};
use crate::domain::keys::random_token;
use crate::domain::schedule::{NotOffered, Slot};
use crate::domain::status::Status;
use crate::error::{violated_constraint, ApiError, ApiResult, ErrorCode, FieldError};
use crate::events::{self, Subject};
use crate::ledger;
use crate::store::departments::{lock_department, Department};
use crate::store::workers::bookable_worker;
use crate::tenant::Tenant;

/// One appointment as stored, with the name of its department.
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
    pub status: Status,
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

impl AppointmentRow {
    /// What an event about this appointment is about, at its current sequence number.
    pub fn subject(&self) -> Subject {
        Subject {
            organization_id: self.organization_id,
            livemode: self.livemode,
            appointment: Some((self.id, self.sequence)),
        }
    }
}

// The `status` column is TEXT constrained to the four words of `Status`.
impl Type<Postgres> for Status {
    fn type_info() -> PgTypeInfo {
        <&str as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <&str as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for Status {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <&str as Encode<Postgres>>::encode(self.as_str(), buf)
    }
}

impl<'r> Decode<'r, Postgres> for Status {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Postgres>>::decode(value)?;
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| format!("unknown stored status {text:?}").into())
    }
}

const SELECT_APPOINTMENT: &str = "
    SELECT a.id, a.organization_id, a.livemode, a.department_id, d.name AS department_name,
           a.worker_id, a.starts_at, a.ends_at, a.local_starts_at, a.timezone, a.status, a.name,
           a.external_user_id, a.phone, a.email, a.notes, a.metadata, a.check_in_token,
           a.credits_consumed, a.sequence, a.created_at, a.updated_at,
           a.cancelled_at, a.cancelled_by, a.cancel_reason
      FROM appointments a JOIN departments d ON d.id = a.department_id";

/// 404 `APPOINTMENT_NOT_FOUND`.
pub fn not_found() -> ApiError {
    ApiError::not_found(ErrorCode::AppointmentNotFound, "Appointment")
}

/// The tenant's appointment `id`, or 404.
pub async fn find<'e>(
    executor: impl PgExecutor<'e>,
    tenant: Tenant,
    id: i64,
) -> ApiResult<AppointmentRow> {
    select(executor, tenant, id, "").await
}

/// The tenant's appointment `id`, locked for the rest of the transaction, or 404.
pub async fn lock(
    connection: &mut PgConnection,
    tenant: Tenant,
    id: i64,
) -> ApiResult<AppointmentRow> {
    select(connection, tenant, id, " FOR UPDATE OF a").await
}

async fn select<'e>(
    executor: impl PgExecutor<'e>,
    tenant: Tenant,
    id: i64,
    locking: &str,
) -> ApiResult<AppointmentRow> {
    sqlx::query_as(&format!(
        "{SELECT_APPOINTMENT} WHERE a.id = $1 AND a.organization_id = $2 AND a.livemode = $3{locking}"
    ))
    .bind(id)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .fetch_optional(executor)
    .await?
    .ok_or_else(not_found)
}

/// Re-reads an appointment inside the transaction that changed it.
async fn reload(
    connection: &mut PgConnection,
    tenant: Tenant,
    id: i64,
) -> ApiResult<AppointmentRow> {
    select(connection, tenant, id, "").await
}

/// Appointment `id` of any tenant: a check-in is proven by the appointment's token, not by a
/// key, so the caller compares the token before showing anything.
pub async fn for_check_in(pool: &PgPool, id: i64) -> ApiResult<Option<AppointmentRow>> {
    Ok(
        sqlx::query_as(&format!("{SELECT_APPOINTMENT} WHERE a.id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// The filters of a listing, ANDed; dates are local to each appointment's department, both
/// ends included.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub status: Option<Status>,
    pub department_id: Option<i64>,
    pub worker_id: Option<i64>,
    pub external_user_id: Option<String>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
}

/// The orders of a listing; ties are broken by id in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    StartAscending,
    StartDescending,
    CreatedAscending,
    CreatedDescending,
}

impl Sort {
    fn clause(self) -> &'static str {
        match self {
            Sort::StartAscending => "a.starts_at ASC, a.id ASC",
            Sort::StartDescending => "a.starts_at DESC, a.id DESC",
            Sort::CreatedAscending => "a.created_at ASC, a.id ASC",
            Sort::CreatedDescending => "a.created_at DESC, a.id DESC",
        }
    }
}

fn push_filters(builder: &mut QueryBuilder<'_, Postgres>, tenant: Tenant, filters: &Filters) {
    builder
        .push(" WHERE a.organization_id = ")
        .push_bind(tenant.organization_id)
        .push(" AND a.livemode = ")
        .push_bind(tenant.livemode);
    if let Some(status) = filters.status {
        builder.push(" AND a.status = ").push_bind(status);
    }
    if let Some(id) = filters.department_id {
        builder.push(" AND a.department_id = ").push_bind(id);
    }
    if let Some(id) = filters.worker_id {
        builder.push(" AND a.worker_id = ").push_bind(id);
    }
    if let Some(id) = &filters.external_user_id {
        builder
            .push(" AND a.external_user_id = ")
            .push_bind(id.clone());
    }
    if let Some(start) = filters.start_date {
        builder
            .push(" AND a.local_starts_at >= ")
            .push_bind(start.and_hms_opt(0, 0, 0));
    }
    if let Some(end) = filters.end_date {
        builder
            .push(" AND a.local_starts_at < ")
            .push_bind(end.succ_opt().and_then(|next| next.and_hms_opt(0, 0, 0)));
    }
}

/// How many of the tenant's appointments pass `filters`.
pub async fn count(pool: &PgPool, tenant: Tenant, filters: &Filters) -> ApiResult<i64> {
    let mut count = QueryBuilder::new("SELECT count(*) FROM appointments a");
    push_filters(&mut count, tenant, filters);
    Ok(count.build_query_scalar().fetch_one(pool).await?)
}

/// One page of the tenant's appointments passing `filters`; `limit` is the page's
/// `LIMIT … OFFSET …` clause.
pub async fn page(
    pool: &PgPool,
    tenant: Tenant,
    filters: &Filters,
    sort: Sort,
    limit: &str,
) -> ApiResult<Vec<AppointmentRow>> {
    let mut select = QueryBuilder::new(SELECT_APPOINTMENT);
    push_filters(&mut select, tenant, filters);
    select.push(" ORDER BY ").push(sort.clause()).push(limit);
    Ok(select.build_query_as().fetch_all(pool).await?)
}

/// Maps the violation of a booking constraint to its 409: the department at capacity, the
/// staff member busy, or the same person twice in a slot.
fn booking_conflict(error: sqlx::Error) -> ApiError {
    match violated_constraint(&error) {
        Some("appointments_within_capacity") => ApiError::new(
            ErrorCode::SlotNotAvailable,
            "That slot is full: the department already serves its capacity at some instant of it",
        )
        .with_detail("reason", "DEPARTMENT_FULL"),
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

/// The instant `text` names in the department's zone (400 `INVALID_DATE_TIME` when it names
/// none).
pub fn start_at(department: &Department, text: &str) -> ApiResult<DateTime<Utc>> {
    start_in(text, department.tz()?).map_err(|error| ApiError::validation(vec![error]))
}

/// The slot a booking of `department` at `starts_at` takes now, or why not.
pub fn offered_slot(department: &Department, starts_at: DateTime<Utc>) -> ApiResult<Slot> {
    if !department.is_active {
        return Err(ApiError::new(
            ErrorCode::DepartmentInactive,
            "This department takes no bookings",
        ));
    }
    department
        .schedule()?
        .offered_slot(starts_at, Utc::now())
        .map_err(|reason: NotOffered| {
            ApiError::new(ErrorCode::SlotNotOffered, reason.explain())
                .with_detail("reason", reason.reason_code())
        })
}

/// The staff member a booking (or a move) in `department` names, checked: required when the
/// department's `showAdminsInBooking` is on (400 `MISSING_REQUIRED_FIELD` on `workerId`), else
/// optional; a named one must be an active worker of that department (see [`bookable_worker`]).
pub async fn checked_worker(
    connection: &mut PgConnection,
    department: &Department,
    worker_id: Option<i64>,
) -> ApiResult<Option<i64>> {
    match worker_id {
        Some(id) => bookable_worker(connection, department.tenant(), department.id, id)
            .await
            .map(Some),
        None if department.show_admins_in_booking => {
            Err(ApiError::validation(vec![FieldError::missing_because(
                "workerId",
                "this department's bookings each name a staff member (showAdminsInBooking)",
            )]))
        }
        None => Ok(None),
    }
}

/// Books `booking` inside the caller's transaction: locks the department, checks the slot and
/// the worker, inserts the appointment (the department's capacity, a trigger, and the worker's
/// one-at-a-time rule, an exclusion constraint, are both decided by that INSERT), spends one
/// credit and records `appointment.created` with the `data` that `describe` makes of it.
pub async fn book(
    connection: &mut PgConnection,
    tenant: Tenant,
    booking: &NewAppointment,
    describe: impl FnOnce(&AppointmentRow) -> ApiResult<Value>,
) -> ApiResult<AppointmentRow> {
    let department = lock_department(&mut *connection, tenant, booking.department_id).await?;
    let starts_at = start_at(&department, booking.date_time.as_str())?;
    let worker_id = checked_worker(&mut *connection, &department, booking.worker_id).await?;
    let slot = offered_slot(&department, starts_at)?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO appointments (organization_id, livemode, department_id, worker_id, starts_at, ends_at,
                                   local_starts_at, timezone, name, external_user_id, phone, email, notes,
                                   metadata, check_in_token)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         RETURNING id",
    )
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .bind(department.id)
    .bind(worker_id)
    .bind(slot.starts_at)
    .bind(slot.ends_at)
    .bind(slot.local)
    .bind(&department.timezone)
    .bind(booking.name.as_str())
    .bind(booking.external_user_id.as_ref().map(|id| id.as_str()))
    .bind(booking.phone.as_ref().map(|phone| phone.as_str()))
    .bind(booking.email.as_ref().map(|email| email.as_str()))
    .bind(booking.notes.as_ref().map(|notes| notes.as_str()))
    .bind(SqlJson(booking.metadata.as_map()))
    .bind(random_token(32))
    .fetch_one(&mut *connection)
    .await
    .map_err(booking_conflict)?;

    ledger::consume(&mut *connection, tenant, id).await?;
    let appointment = reload(&mut *connection, tenant, id).await?;
    let data = describe(&appointment)?;
    events::record(
        &mut *connection,
        &appointment.subject(),
        events::APPOINTMENT_CREATED,
        data,
    )
    .await?;
    Ok(appointment)
}

/// Every column a PATCH may change, as they are to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub local_starts_at: NaiveDateTime,
    pub timezone: String,
    pub worker_id: Option<i64>,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub notes: Option<String>,
    pub metadata: Map<String, Value>,
}

impl Placement {
    /// The columns of `appointment` as they are.
    pub fn of(appointment: &AppointmentRow) -> Self {
        Self {
            starts_at: appointment.starts_at,
            ends_at: appointment.ends_at,
            local_starts_at: appointment.local_starts_at,
            timezone: appointment.timezone.clone(),
            worker_id: appointment.worker_id,
            name: appointment.name.clone(),
            phone: appointment.phone.clone(),
            email: appointment.email.clone(),
            notes: appointment.notes.clone(),
            metadata: appointment.metadata.0.clone(),
        }
    }
}

/// Writes `placement` over appointment `id` (locked by the caller), with the next sequence
/// number; the new slot and worker are checked by the database (409 when taken). Records the
/// event whose `data` `describe` makes of the updated appointment.
pub async fn update(
    connection: &mut PgConnection,
    tenant: Tenant,
    id: i64,
    placement: &Placement,
    describe: impl FnOnce(&AppointmentRow) -> ApiResult<Value>,
) -> ApiResult<AppointmentRow> {
    sqlx::query(
        "UPDATE appointments
            SET starts_at = $2, ends_at = $3, local_starts_at = $4, timezone = $5,
                name = $6, phone = $7, email = $8, notes = $9, metadata = $10, worker_id = $11,
                sequence = sequence + 1, updated_at = now()
          WHERE id = $1 AND organization_id = $12 AND livemode = $13",
    )
    .bind(id)
    .bind(placement.starts_at)
    .bind(placement.ends_at)
    .bind(placement.local_starts_at)
    .bind(&placement.timezone)
    .bind(&placement.name)
    .bind(&placement.phone)
    .bind(&placement.email)
    .bind(&placement.notes)
    .bind(SqlJson(&placement.metadata))
    .bind(placement.worker_id)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .execute(&mut *connection)
    .await
    .map_err(booking_conflict)?;
    recorded(
        connection,
        tenant,
        id,
        events::APPOINTMENT_UPDATED,
        describe,
    )
    .await
}

/// Cancels appointment `id` (locked by the caller) on behalf of the API key `key_id`, refunding
/// its credit when `refund` says so; records `appointment.cancelled`.
pub async fn cancel(
    connection: &mut PgConnection,
    tenant: Tenant,
    id: i64,
    key_id: &str,
    reason: Option<&str>,
    refund: bool,
    describe: impl FnOnce(&AppointmentRow) -> ApiResult<Value>,
) -> ApiResult<AppointmentRow> {
    sqlx::query(
        "UPDATE appointments
            SET status = 'CANCELLED', cancelled_at = now(), cancelled_by = $2, cancel_reason = $3,
                sequence = sequence + 1, updated_at = now()
          WHERE id = $1 AND organization_id = $4 AND livemode = $5",
    )
    .bind(id)
    .bind(key_id)
    .bind(reason)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .execute(&mut *connection)
    .await?;
    if refund {
        ledger::refund(&mut *connection, tenant, id).await?;
    }
    recorded(
        connection,
        tenant,
        id,
        events::APPOINTMENT_CANCELLED,
        describe,
    )
    .await
}

/// Sets how a visit ended (`next`) on appointment `id` (locked by the caller); records
/// `event_type`.
pub async fn conclude(
    connection: &mut PgConnection,
    tenant: Tenant,
    id: i64,
    next: Status,
    event_type: &str,
    describe: impl FnOnce(&AppointmentRow) -> ApiResult<Value>,
) -> ApiResult<AppointmentRow> {
    sqlx::query(
        "UPDATE appointments SET status = $2, sequence = sequence + 1, updated_at = now()
          WHERE id = $1 AND organization_id = $3 AND livemode = $4",
    )
    .bind(id)
    .bind(next)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .execute(&mut *connection)
    .await?;
    recorded(connection, tenant, id, event_type, describe).await
}

/// The appointment `id` as just changed, with its event recorded.
async fn recorded(
    connection: &mut PgConnection,
    tenant: Tenant,
    id: i64,
    event_type: &str,
    describe: impl FnOnce(&AppointmentRow) -> ApiResult<Value>,
) -> ApiResult<AppointmentRow> {
    let appointment = reload(&mut *connection, tenant, id).await?;
    let data = describe(&appointment)?;
    events::record(connection, &appointment.subject(), event_type, data).await?;
    Ok(appointment)
}
