//! The appointments of a tenant: booked, read, listed, moved, cancelled and concluded. The
//! booking itself (department lock, insert, credit, event) is the one function [`book`], so that
//! the busiest write of the service is found, and tuned, in one place.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SubsecRound, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::types::Json as SqlJson;
use sqlx::{
    Connection, Decode, Encode, PgConnection, PgExecutor, PgPool, Postgres, QueryBuilder, Type,
};

use crate::booking_memo::{BookingMemo, Known, IDS_AHEAD};
use crate::domain::appointment::{start_in, NewAppointment};
use crate::domain::keys::random_token;
use crate::domain::schedule::{NotOffered, Slot};
use crate::domain::status::Status;
use crate::error::{violated_constraint, ApiError, ApiResult, ErrorCode, FieldError};
use crate::events::{self, CreditsEventObject, Envelope, ObjectData, Subject};
use crate::ledger;
use crate::store::api_keys;
use crate::store::departments::{department_columns, department_not_found, Department};
use crate::store::workers::{self, bookable_worker};
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
fn booking_conflict(constraint: &str) -> Option<ApiError> {
    Some(match constraint {
        "appointments_within_capacity" => ApiError::new(
            ErrorCode::SlotNotAvailable,
            "That slot is full: the department already serves its capacity at some instant of it",
        )
        .with_detail("reason", "DEPARTMENT_FULL"),
        "appointments_worker_one_at_a_time" => ApiError::new(
            ErrorCode::SlotNotAvailable,
            "That staff member already has an appointment overlapping that slot",
        )
        .with_detail("reason", "WORKER_BUSY"),
        "appointments_duplicate_key" => ApiError::new(
            ErrorCode::DuplicateAppointment,
            "This user already has an appointment in that slot",
        ),
        _ => return None,
    })
}

/// The 409 of a change that violated a booking constraint (see [`booking_conflict`]), or the
/// error as it is.
fn conflict(error: sqlx::Error) -> ApiError {
    match violated_constraint(&error).and_then(booking_conflict) {
        Some(conflict) => conflict,
        None => error.into(),
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
        None => unnamed_worker(department),
    }
}

/// A booking (or move) in `department` that names no staff member: 400
/// `MISSING_REQUIRED_FIELD` on `workerId` when the department's `showAdminsInBooking` is on.
fn unnamed_worker(department: &Department) -> ApiResult<Option<i64>> {
    if department.show_admins_in_booking {
        return Err(ApiError::validation(vec![FieldError::missing_because(
            "workerId",
            "this department's bookings each name a staff member (showAdminsInBooking)",
        )]));
    }
    Ok(None)
}

/// How many times a booking reads its department without a lock before it takes the lock (see
/// [`book`]): a department changed between the read and the write of two bookings in a row is
/// rare, and the third decision, made under the lock, cannot be overtaken.
const OPTIMISTIC_READS: usize = 2;

/// Below this many ids left in the memo, a read allocates [`IDS_AHEAD`] more.
const IDS_LOW: usize = 8;

/// Books `booking`, and records `appointment.created` with the `data` that `describe` makes of
/// it, with the credit it spends and the balance events that spend announces, all in one
/// statement: one transaction of its own, or part of the caller's when `connection` is in one.
///
/// The department is taken as this process's last booking of it read it (`booking_memo`), or
/// read now without a lock, together with the appointment's id, the named staff member's state
/// and the account's low-balance threshold; the slot and the worker are checked on that; then one statement inserts the appointment (the department's capacity, a trigger,
/// and the worker's one-at-a-time rule, an exclusion constraint, decide it there), spends the
/// credit and writes the events. The statement goes on only if the department row is still the
/// version the booking was decided on (its `xmin`, compared under the row lock the capacity
/// trigger takes anyway), the staff member still active and the threshold unchanged; else it
/// writes nothing and the booking is decided again on what is current. So the rows that every
/// booking of a department (and of an organization) waits for are held for that one statement
/// and its commit, not for the whole conversation: that wait, not the round trips before it, is
/// what bounds the bookings per second.
pub async fn book(
    connection: &mut PgConnection,
    memo: &BookingMemo,
    caller: &Caller<'_>,
    booking: &NewAppointment,
    describe: impl Fn(&AppointmentRow) -> ApiResult<Value>,
) -> ApiResult<AppointmentRow> {
    // First on what this process read of the department before, if it did: only a booking
    // that goes through is decided on that; a refusal is decided again on a fresh read.
    if let Some(remembered) = remembered(memo, caller, booking, &describe) {
        // A refusal of the statement is the database's, on the department as it is now.
        if let Some(appointment) = write_alone(connection, memo, remembered).await? {
            return Ok(appointment);
        }
    }
    book_afresh(connection, memo, caller, booking, describe).await
}

/// Books on a fresh read of the department (see [`book`]): what a booking does when this
/// process remembers nothing of its department, or what it remembered was no longer so.
pub async fn book_afresh(
    connection: &mut PgConnection,
    memo: &BookingMemo,
    caller: &Caller<'_>,
    booking: &NewAppointment,
    describe: impl Fn(&AppointmentRow) -> ApiResult<Value>,
) -> ApiResult<AppointmentRow> {
    let tenant = caller.tenant;
    for _ in 0..OPTIMISTIC_READS {
        let seen = read_for_booking(connection, memo, tenant, booking, Reading::Optimistic).await?;
        if let Some(appointment) = attempt(connection, caller, booking, &describe, &seen).await? {
            return Ok(appointment);
        }
    }
    // The department kept changing: decided under its lock, held until the write commits.
    let mut locked = connection.begin().await?;
    let seen = read_for_booking(&mut locked, memo, tenant, booking, Reading::Locked).await?;
    let Some(appointment) = attempt(&mut locked, caller, booking, &describe, &seen).await? else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "a booking decided under its department's lock found the department changed"
        )));
    };
    locked.commit().await?;
    Ok(appointment)
}

/// A booking decided on what this process remembers of its department (see `BookingMemo`),
/// ready to be written on its own ([`book`]) or with others of the same department
/// ([`write_together`]).
pub struct Remembered {
    seen: Seen,
    decided: Decided,
    key_id: String,
}

impl Remembered {
    /// The tenant and department the booking is for: bookings written together share them.
    pub fn department(&self) -> (i64, bool, i64) {
        let department = &self.seen.known.department;
        (
            department.organization_id,
            department.livemode,
            department.id,
        )
    }
}

/// `booking` decided on what `memo` remembers of its department, if it remembers it and the
/// booking goes through on it; otherwise `None` (and a department it remembered is forgotten,
/// so that the booking is decided again on a fresh read).
pub fn remembered(
    memo: &BookingMemo,
    caller: &Caller<'_>,
    booking: &NewAppointment,
    describe: &impl Fn(&AppointmentRow) -> ApiResult<Value>,
) -> Option<Remembered> {
    let (known, appointment_id) = memo.recall(caller.tenant, booking.department_id)?;
    let seen = Seen {
        known,
        appointment_id,
        // Checked by the statement, which writes nothing if the worker is not one of the
        // department's active ones.
        worker_active: booking.worker_id.map(|_| true),
    };
    match decide(caller.tenant, booking, describe, &seen) {
        Ok(decided) => Some(Remembered {
            seen,
            decided,
            key_id: caller.key_id.to_owned(),
        }),
        Err(_) => {
            memo.forget(caller.tenant, booking.department_id);
            None
        }
    }
}

/// One decision of a booking on `seen` and its write (see [`book`]): `None` when what it was
/// decided on changed before the write, which then wrote nothing.
async fn attempt(
    connection: &mut PgConnection,
    caller: &Caller<'_>,
    booking: &NewAppointment,
    describe: &impl Fn(&AppointmentRow) -> ApiResult<Value>,
    seen: &Seen,
) -> ApiResult<Option<AppointmentRow>> {
    let decided = decide(caller.tenant, booking, describe, seen)?;
    write(connection, caller.key_id, seen, decided).await
}

/// A booking decided on: the appointment, its event, the balance events its spend may announce.
struct Decided {
    appointment: AppointmentRow,
    event: Envelope<Value>,
    announcements: Vec<ledger::Announcement>,
}

/// Decides `booking` on `seen`: the slot it takes and the staff member it names, or why not.
fn decide(
    tenant: Tenant,
    booking: &NewAppointment,
    describe: &impl Fn(&AppointmentRow) -> ApiResult<Value>,
    seen: &Seen,
) -> ApiResult<Decided> {
    let department = &seen.known.department;
    let starts_at = start_at(department, booking.date_time.as_str())?;
    let worker_id = match booking.worker_id {
        Some(id) => Some(workers::bookable(id, seen.worker_active)?),
        None => unnamed_worker(department)?,
    };
    let slot = offered_slot(department, starts_at)?;
    // The columns keep microseconds: the answer shows what a later read shows.
    let at = Utc::now().trunc_subsecs(6);
    let appointment = AppointmentRow {
        id: seen.appointment_id,
        organization_id: tenant.organization_id,
        livemode: tenant.livemode,
        department_id: department.id,
        department_name: department.name.clone(),
        worker_id,
        starts_at: slot.starts_at,
        ends_at: slot.ends_at,
        local_starts_at: slot.local,
        timezone: department.timezone.clone(),
        status: Status::Confirmed,
        name: booking.name.as_str().to_owned(),
        external_user_id: booking
            .external_user_id
            .as_ref()
            .map(|id| id.as_str().to_owned()),
        phone: booking
            .phone
            .as_ref()
            .map(|phone| phone.as_str().to_owned()),
        email: booking
            .email
            .as_ref()
            .map(|email| email.as_str().to_owned()),
        notes: booking
            .notes
            .as_ref()
            .map(|notes| notes.as_str().to_owned()),
        metadata: SqlJson(booking.metadata.as_map().clone()),
        check_in_token: random_token(32),
        credits_consumed: 1,
        sequence: 1,
        created_at: at,
        updated_at: at,
        cancelled_at: None,
        cancelled_by: None,
        cancel_reason: None,
    };
    let event = Envelope::new(
        events::APPOINTMENT_CREATED,
        tenant.livemode,
        Some(appointment.sequence),
        describe(&appointment)?,
    );
    let announcements = ledger::spend_announcements(tenant, seen.known.low_balance_threshold);
    Ok(Decided {
        appointment,
        event,
        announcements,
    })
}

/// Writes what was decided on `seen` (see [`write_booking`]): the appointment, or `None` when
/// `seen` is no longer so and nothing was written; 401 when the key `key_id` is no longer valid.
async fn write(
    connection: &mut PgConnection,
    key_id: &str,
    seen: &Seen,
    decided: Decided,
) -> ApiResult<Option<AppointmentRow>> {
    let Decided {
        appointment,
        event,
        announcements,
    } = decided;
    let written = write_booking(
        connection,
        seen,
        &appointment,
        &event,
        &announcements,
        key_id,
    )
    .await
    .map_err(booking_refusal)?;
    match written {
        Written::Booked => Ok(Some(appointment)),
        Written::Stale => Ok(None),
        Written::KeyRefused => Err(api_keys::refused()),
    }
}

/// The error of a booking the database refused: no credit left, or a conflict (see
/// [`booking_conflict`]).
fn booking_refusal(error: sqlx::Error) -> ApiError {
    match violated_constraint(&error).and_then(refusal_for) {
        Some(refusal) => refusal,
        None => error.into(),
    }
}

/// The answer to a booking the database refused on `constraint`, if that is one a booking
/// may violate: no credit left, or a conflict (see [`booking_conflict`]).
fn refusal_for(constraint: &str) -> Option<ApiError> {
    match constraint {
        "credit_balance_not_negative" => Some(ledger::insufficient_credits()),
        _ => booking_conflict(constraint),
    }
}

/// Who books: the tenant, and the key whose validity the booking statement checks (the
/// request may not have read it, see `auth::KnownKey`).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub tenant: Tenant,
    pub key_id: &'a str,
}

/// What a booking is decided on: its department as read (now or by an earlier booking of this
/// process), and the id the appointment will have (sequence numbers are never reused, written
/// or not).
struct Seen {
    known: Arc<Known>,
    appointment_id: i64,
    /// Whether the staff member named is active: `None` when none was named or it is not one
    /// of the department's.
    worker_active: Option<bool>,
}

impl Seen {
    /// Forgets the department in `memo`: it was found changed.
    fn forget(&self, memo: &BookingMemo) {
        let department = &self.known.department;
        memo.forget(department.tenant(), department.id);
    }
}

/// A department as a read for a booking returns it, with what the write needs from the same
/// round trip.
#[derive(sqlx::FromRow)]
struct Read {
    #[sqlx(flatten)]
    known: Known,
    /// The id of this booking's appointment, then those allocated ahead for the memo.
    appointment_ids: Vec<i64>,
    worker_active: Option<bool>,
}

/// How a booking reads its department.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Without a lock: the write checks that nothing changed since.
    Optimistic,
    /// Locked until the transaction ends, for a booking whose department kept changing under
    /// its optimistic reads: it cannot change any more, so the write goes through.
    Locked,
}

/// Reads the tenant's department `department_id` (404 when it has none such) and allocates the
/// id of the appointment about to be booked, in one round trip; remembers them in `memo`, with
/// ids allocated ahead when its own run low.
async fn read_for_booking(
    connection: &mut PgConnection,
    memo: &BookingMemo,
    tenant: Tenant,
    booking: &NewAppointment,
    reading: Reading,
) -> ApiResult<Seen> {
    let lock = match reading {
        Reading::Optimistic => "",
        Reading::Locked => " FOR NO KEY UPDATE OF d",
    };
    let ahead = if memo.ids_left() < IDS_LOW {
        IDS_AHEAD
    } else {
        0
    };
    // The version is read from the row the lock (if any) was taken on: the newest one.
    let select = concat!(
        "SELECT ",
        department_columns!(),
        ", d.xmin::text AS version, c.low_balance_threshold,
           ARRAY(SELECT nextval(pg_get_serial_sequence('appointments', 'id'))
                   FROM generate_series(0, $5)) AS appointment_ids,
           (SELECT w.is_active FROM workers w
             WHERE w.id = $4 AND w.department_id = d.id) AS worker_active
      FROM departments d JOIN organizations o ON o.id = d.organization_id
      JOIN credit_accounts c ON c.organization_id = d.organization_id AND c.livemode = d.livemode
     WHERE d.id = $1 AND d.organization_id = $2 AND d.livemode = $3"
    );
    let read: Read = sqlx::query_as(&format!("{select}{lock}"))
        .bind(booking.department_id)
        .bind(tenant.organization_id)
        .bind(tenant.livemode)
        .bind(booking.worker_id)
        .bind(ahead)
        .fetch_optional(connection)
        .await?
        .ok_or_else(department_not_found)?;
    let mut ids = read.appointment_ids.into_iter();
    let appointment_id = ids.next().ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!(
            "a booking's read allocated no appointment id"
        ))
    })?;
    let known = Arc::new(read.known);
    memo.learn(known.clone(), ids);
    Ok(Seen {
        known,
        appointment_id,
        worker_active: read.worker_active,
    })
}

/// Writes `appointment` (whose id `seen` allocated) with its `appointment.created` event, the
/// credit it spends and those of `announcements` whose balance the spend leaves, if the
/// department is still as `seen` (and the staff member still active, and the threshold the
/// announcements were made for unchanged): `false` when not, and nothing was written. Errors
/// are the database's: capacity, staff member busy, duplicate, credit balance (see
/// [`booking_refusal`]).
async fn write_booking(
    connection: &mut PgConnection,
    seen: &Seen,
    row: &AppointmentRow,
    event: &Envelope<Value>,
    announcements: &[ledger::Announcement],
    key_id: &str,
) -> Result<Written, sqlx::Error> {
    let department = &seen.known.department;
    let (announced_at, announced): (Vec<i64>, Vec<_>) = announcements
        .iter()
        .map(|announcement| (announcement.after, SqlJson(&announcement.event)))
        .unzip();
    let announced_ids: Vec<&str> = announcements.iter().map(|a| a.event.id.as_str()).collect();
    let announced_kinds: Vec<&str> = announcements
        .iter()
        .map(|a| a.event.kind.as_str())
        .collect();
    let written: (bool, bool) = sqlx::query_as(
        "WITH k AS (
             SELECT 1 FROM api_keys k
              WHERE k.id = $30 AND k.revoked_at IS NULL
                AND (k.expires_at IS NULL OR k.expires_at > now())
         ), d AS (
             SELECT d.id FROM departments d
              WHERE d.id = $1 AND d.xmin::text = $2
                AND EXISTS (SELECT 1 FROM k)
                AND EXISTS (SELECT 1 FROM credit_accounts c
                             WHERE c.organization_id = $5 AND c.livemode = $6
                               AND c.low_balance_threshold = $25)
                FOR NO KEY UPDATE
         ), w AS (
             SELECT w.id FROM workers w
              WHERE w.id = $3 AND w.department_id = $1 AND w.is_active
                FOR SHARE
         ), a AS (
             INSERT INTO appointments (id, organization_id, livemode, department_id, worker_id,
                                       starts_at, ends_at, local_starts_at, timezone, status, name,
                                       external_user_id, phone, email, notes, metadata,
                                       check_in_token, credits_consumed, sequence, created_at,
                                       updated_at)
             SELECT $4, $5, $6, d.id, $3, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                    $19, $20, $21, $21
               FROM d
              WHERE $3::bigint IS NULL OR EXISTS (SELECT 1 FROM w)
             RETURNING id
         ), l AS (
             INSERT INTO credit_transactions (organization_id, livemode, type, amount, appointment_id)
             SELECT $5, $6, 'CONSUMPTION', -$19::bigint, a.id FROM a
             RETURNING balance_after
         ), e AS (
             INSERT INTO events (id, organization_id, livemode, type, appointment_id, sequence, payload)
             SELECT $22, $5, $6, $23, a.id, $20, $24 FROM a
         ), b AS (
             INSERT INTO events (id, organization_id, livemode, type, payload)
             SELECT n.id, $5, $6, n.kind, n.payload
               FROM l, unnest($26::text[], $27::text[], $28::jsonb[], $29::bigint[])
                       AS n (id, kind, payload, after)
              WHERE n.after = l.balance_after
         )
         SELECT EXISTS (SELECT 1 FROM a), EXISTS (SELECT 1 FROM k)",
    )
    .bind(department.id)
    .bind(&seen.known.version)
    .bind(row.worker_id)
    .bind(seen.appointment_id)
    .bind(department.organization_id)
    .bind(department.livemode)
    .bind(row.starts_at)
    .bind(row.ends_at)
    .bind(row.local_starts_at)
    .bind(&department.timezone)
    .bind(row.status)
    .bind(&row.name)
    .bind(&row.external_user_id)
    .bind(&row.phone)
    .bind(&row.email)
    .bind(&row.notes)
    .bind(&row.metadata)
    .bind(&row.check_in_token)
    .bind(row.credits_consumed)
    .bind(row.sequence)
    .bind(row.created_at)
    .bind(&event.id)
    .bind(&event.kind)
    .bind(SqlJson(event))
    .bind(seen.known.low_balance_threshold)
    .bind(announced_ids)
    .bind(announced_kinds)
    .bind(announced)
    .bind(announced_at)
    .bind(key_id)
    .fetch_one(connection)
    .await?;
    Ok(match written {
        (true, _) => Written::Booked,
        (false, true) => Written::Stale,
        (false, false) => Written::KeyRefused,
    })
}

/// Writes `bookings` (all of one department, see [`Remembered::department`]) in one call and one
/// transaction, each as [`write_booking`] writes a lone one, in a subtransaction of its own
/// (migration `bookings_together`): what each did, or why the database refused it, in their
/// order.
pub async fn write_together(
    connection: &mut PgConnection,
    bookings: &[Remembered],
) -> Result<Vec<Result<Written, Refusal>>, sqlx::Error> {
    let records: Vec<BookingRecord<'_>> = bookings.iter().map(BookingRecord::of).collect();
    let rows: Vec<Outcome> = sqlx::query_as(
        "SELECT outcome, error_code, error_constraint, error_message FROM book_appointments($1)",
    )
    .bind(SqlJson(&records))
    .fetch_all(connection)
    .await?;
    if rows.len() != bookings.len() {
        return Err(sqlx::Error::Protocol(format!(
            "{} bookings written together answered {} outcomes",
            bookings.len(),
            rows.len()
        )));
    }
    Ok(rows
        .into_iter()
        .map(|row| match row.outcome.as_str() {
            "booked" => Ok(Written::Booked),
            "stale" => Ok(Written::Stale),
            "key_refused" => Ok(Written::KeyRefused),
            _ => Err(Refusal {
                code: row.error_code.unwrap_or_default(),
                constraint: row.error_constraint.filter(|name| !name.is_empty()),
                message: row.error_message.unwrap_or_default(),
            }),
        })
        .collect())
}

/// Writes `booking` alone, in one statement of its own (see [`write_booking`]), with the same
/// answer as [`settle`] gives one written together.
pub async fn write_alone(
    connection: &mut PgConnection,
    memo: &BookingMemo,
    booking: Remembered,
) -> ApiResult<Option<AppointmentRow>> {
    let Remembered {
        seen,
        decided,
        key_id,
    } = booking;
    let written = write(connection, &key_id, &seen, decided).await?;
    if written.is_none() {
        seen.forget(memo);
    }
    Ok(written)
}

/// What the caller of a booking written together is answered (see [`write`] for a lone one):
/// the appointment; `None` when it must be decided again on a fresh read (what it was decided
/// on changed, or the database refused it for a reason a lone booking would report itself),
/// and `memo` then forgets its department; or the refusal.
pub fn settle(
    memo: &BookingMemo,
    booking: Remembered,
    written: Result<Written, Refusal>,
) -> ApiResult<Option<AppointmentRow>> {
    match written {
        Ok(Written::Booked) => return Ok(Some(booking.decided.appointment)),
        Ok(Written::KeyRefused) => return Err(api_keys::refused()),
        Ok(Written::Stale) => {}
        Err(refusal) => {
            if let Some(error) = refusal.constraint.as_deref().and_then(refusal_for) {
                return Err(error);
            }
            tracing::info!(
                code = %refusal.code,
                message = %refusal.message,
                "a booking written together failed; it is booked again on its own"
            );
        }
    }
    booking.seen.forget(memo);
    Ok(None)
}

/// What `book_appointments` answers for one booking.
#[derive(sqlx::FromRow)]
struct Outcome {
    outcome: String,
    error_code: Option<String>,
    error_constraint: Option<String>,
    error_message: Option<String>,
}

/// One booking as `book_appointments` reads it: what [`write_booking`] binds.
#[derive(Serialize)]
struct BookingRecord<'a> {
    department_id: i64,
    version: &'a str,
    worker_id: Option<i64>,
    id: i64,
    organization_id: i64,
    livemode: bool,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    local_starts_at: NaiveDateTime,
    timezone: &'a str,
    status: &'a str,
    name: &'a str,
    external_user_id: Option<&'a str>,
    phone: Option<&'a str>,
    email: Option<&'a str>,
    notes: Option<&'a str>,
    metadata: &'a Map<String, Value>,
    check_in_token: &'a str,
    credits_consumed: i32,
    sequence: i32,
    created_at: DateTime<Utc>,
    event_id: &'a str,
    event_type: &'a str,
    payload: &'a Envelope<Value>,
    low_balance_threshold: i64,
    announcements: Vec<AnnouncementRecord<'a>>,
    key_id: &'a str,
}

#[derive(Serialize)]
struct AnnouncementRecord<'a> {
    id: &'a str,
    kind: &'a str,
    payload: &'a Envelope<ObjectData<CreditsEventObject>>,
    after: i64,
}

impl<'a> BookingRecord<'a> {
    fn of(booking: &'a Remembered) -> Self {
        let (seen, decided) = (&booking.seen, &booking.decided);
        let row = &decided.appointment;
        Self {
            department_id: seen.known.department.id,
            version: &seen.known.version,
            worker_id: row.worker_id,
            id: seen.appointment_id,
            organization_id: row.organization_id,
            livemode: row.livemode,
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            local_starts_at: row.local_starts_at,
            timezone: &row.timezone,
            status: row.status.as_str(),
            name: &row.name,
            external_user_id: row.external_user_id.as_deref(),
            phone: row.phone.as_deref(),
            email: row.email.as_deref(),
            notes: row.notes.as_deref(),
            metadata: &row.metadata.0,
            check_in_token: &row.check_in_token,
            credits_consumed: row.credits_consumed,
            sequence: row.sequence,
            created_at: row.created_at,
            event_id: &decided.event.id,
            event_type: &decided.event.kind,
            payload: &decided.event,
            low_balance_threshold: seen.known.low_balance_threshold,
            announcements: decided
                .announcements
                .iter()
                .map(|announcement| AnnouncementRecord {
                    id: &announcement.event.id,
                    kind: &announcement.event.kind,
                    payload: &announcement.event,
                    after: announcement.after,
                })
                .collect(),
            key_id: &booking.key_id,
        }
    }
}

/// A booking written together that the database refused: nothing of it was written.
#[derive(Debug)]
pub struct Refusal {
    code: String,
    constraint: Option<String>,
    message: String,
}

/// What the booking statement did.
pub enum Written {
    Booked,
    /// The department changed (or the staff member was deactivated, or the threshold changed)
    /// since it was read: nothing was written.
    Stale,
    /// The key the request presented is revoked or expired: nothing was written.
    KeyRefused,
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
    .map_err(conflict)?;
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
