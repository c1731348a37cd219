//! `POST /appointments`: a place at the slot's instants and one credit, taken in one transaction
//! with the event.

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sqlx::types::Json as SqlJson;
use sqlx::{Connection, PgConnection};

use super::{booking_conflict, reload};
use crate::auth::{scope, ApiKeyAuth, Authorized};
use crate::domain::contact::{is_e164, is_email};
use crate::domain::datetime::{parse_request_date_time, DateTimeError, SUPPORTED_RANGE};
use crate::domain::keys::random_token;
use crate::domain::schedule::{NotOffered, Slot};
use crate::domain::text::{self, TextError};
use crate::error::{check_fields, ApiError, ApiResult, ErrorCode, FieldError};
use crate::events;
use crate::extract::{ApiJson, BODY_LIMIT};
use crate::idempotency::{self, request_hash, Claim, IdempotencyKey};
use crate::ledger;
use crate::metrics;
use crate::state::AppState;
use crate::store::departments::{lock_department, Department};
use crate::store::workers::bookable_worker;

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAppointment {
    department_id: Option<i64>,
    date_time: Option<String>,
    name: Option<String>,
    external_user_id: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    notes: Option<String>,
    metadata: Option<Map<String, Value>>,
    /// Left out of the serialized form when absent, so that the request fingerprint of an
    /// `Idempotency-Key` stored before workers existed still matches the same body.
    #[serde(skip_serializing_if = "Option::is_none")]
    worker_id: Option<i64>,
}

/// The person-facing fields shared by create and PATCH, each checked on its own.
pub(super) struct Contact;

impl Contact {
    pub fn name(value: &str, errors: &mut Vec<FieldError>) -> String {
        match text::required(value, 200) {
            Ok(name) => name,
            Err(TextError::Blank) => {
                errors.push(FieldError::new(
                    "name",
                    ErrorCode::MissingRequiredField,
                    "must not be blank",
                ));
                String::new()
            }
            Err(TextError::TooLong) => {
                errors.push(FieldError::invalid(
                    "name",
                    "must be at most 200 characters",
                ));
                String::new()
            }
        }
    }

    pub fn phone(value: &str, errors: &mut Vec<FieldError>) {
        if !is_e164(value) {
            errors.push(FieldError::new(
                "phone",
                ErrorCode::InvalidPhoneNumber,
                "must be in E.164 form, e.g. +224621234567",
            ));
        }
    }

    pub fn email(value: &str, errors: &mut Vec<FieldError>) {
        if !is_email(value) {
            errors.push(FieldError::new(
                "email",
                ErrorCode::InvalidEmail,
                "must be an e-mail address",
            ));
        }
    }

    pub fn notes(value: &str, errors: &mut Vec<FieldError>) {
        if value.chars().count() > 2000 {
            errors.push(FieldError::invalid(
                "notes",
                "must be at most 2000 characters",
            ));
        }
    }

    pub fn external_user_id(value: &str, errors: &mut Vec<FieldError>) {
        if value.is_empty() || value.chars().count() > 200 {
            errors.push(FieldError::invalid(
                "externalUserId",
                "must be 1 to 200 characters",
            ));
        }
    }

    /// Checks each optional field that is present.
    pub fn optional(
        phone: Option<&str>,
        email: Option<&str>,
        notes: Option<&str>,
        metadata: Option<&Map<String, Value>>,
        errors: &mut Vec<FieldError>,
    ) {
        if let Some(phone) = phone {
            Self::phone(phone, errors);
        }
        if let Some(email) = email {
            Self::email(email, errors);
        }
        if let Some(notes) = notes {
            Self::notes(notes, errors);
        }
        if let Some(metadata) = metadata {
            Self::metadata(metadata, errors);
        }
    }

    /// At most 50 keys of 1..=40 characters, each with a string value of at most 500.
    pub fn metadata(value: &Map<String, Value>, errors: &mut Vec<FieldError>) {
        if value.len() > 50 {
            errors.push(FieldError::invalid("metadata", "at most 50 keys"));
        }
        for (key, item) in value {
            let ok = (1..=40).contains(&key.chars().count())
                && item
                    .as_str()
                    .is_some_and(|text| text.chars().count() <= 500);
            if !ok {
                errors.push(FieldError::invalid(
                    &format!("metadata.{key}"),
                    "keys are 1 to 40 characters, values strings of at most 500",
                ));
            }
        }
    }
}

/// The instant `text` names in the department's zone: 400 `INVALID_DATE_TIME` when malformed
/// or inside a DST gap.
pub(super) fn requested_start(text: &str, timezone: Tz) -> ApiResult<DateTime<Utc>> {
    parse_request_date_time(text, timezone).map_err(|error| {
        let message = match error {
            DateTimeError::Malformed => {
                "must be YYYY-MM-DDTHH:MM:SS (department time) or RFC 3339 with an offset"
                    .to_owned()
            }
            DateTimeError::Nonexistent => {
                format!("does not exist in {timezone} (daylight saving gap)")
            }
            DateTimeError::OutOfRange => SUPPORTED_RANGE.to_owned(),
        };
        ApiError::validation(vec![FieldError::new(
            "dateTime",
            ErrorCode::InvalidDateTime,
            message,
        )])
    })
}

/// The slot a booking of `department` at `starts_at` takes now, or why not.
pub(super) fn offered_slot(department: &Department, starts_at: DateTime<Utc>) -> ApiResult<Slot> {
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
pub(super) async fn checked_worker(
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

/// A positive id, else the field's 400.
pub(super) fn positive_id(field: &str, value: Option<i64>, errors: &mut Vec<FieldError>) {
    if value.is_some_and(|id| id <= 0) {
        errors.push(FieldError::invalid(field, "must be a positive integer"));
    }
}

/// A booking request whose fields are all valid.
struct NewBooking {
    department_id: i64,
    worker_id: Option<i64>,
    date_time: String,
    name: String,
    external_user_id: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    notes: Option<String>,
    metadata: Map<String, Value>,
}

impl NewBooking {
    /// Checks every field, naming each bad one in a single 400.
    fn parse(body: CreateAppointment) -> ApiResult<Self> {
        let mut errors = Vec::new();
        if body.department_id.is_none() {
            errors.push(FieldError::missing("departmentId"));
        }
        positive_id("departmentId", body.department_id, &mut errors);
        positive_id("workerId", body.worker_id, &mut errors);
        match body.date_time.as_deref() {
            None => errors.push(FieldError::missing("dateTime")),
            // The zone is not known yet; the form can already be checked.
            Some(text) => match parse_request_date_time(text, chrono_tz::UTC) {
                Err(DateTimeError::Malformed) => errors.push(FieldError::new(
                    "dateTime",
                    ErrorCode::InvalidDateTime,
                    "must be YYYY-MM-DDTHH:MM:SS (department time) or RFC 3339 with an offset",
                )),
                Err(DateTimeError::OutOfRange) => errors.push(FieldError::new(
                    "dateTime",
                    ErrorCode::InvalidDateTime,
                    SUPPORTED_RANGE,
                )),
                _ => {}
            },
        }
        let name = match body.name.as_deref() {
            None => {
                errors.push(FieldError::missing("name"));
                String::new()
            }
            Some(name) => Contact::name(name, &mut errors),
        };
        if let Some(id) = &body.external_user_id {
            Contact::external_user_id(id, &mut errors);
        }
        let metadata = body.metadata.unwrap_or_default();
        Contact::optional(
            body.phone.as_deref(),
            body.email.as_deref(),
            body.notes.as_deref(),
            Some(&metadata),
            &mut errors,
        );
        check_fields(errors)?;
        let (Some(department_id), Some(date_time)) = (body.department_id, body.date_time) else {
            return Err(ApiError::new(
                ErrorCode::MissingRequiredField,
                "departmentId and dateTime are required",
            ));
        };
        Ok(Self {
            department_id,
            worker_id: body.worker_id,
            date_time,
            name,
            external_user_id: body.external_user_id,
            phone: body.phone,
            email: body.email,
            notes: body.notes,
            metadata,
        })
    }
}

/// Books a slot: 201 with the appointment, `CONFIRMED`, one credit consumed.
/// With an `Idempotency-Key`, a repeated request replays the first response instead.
pub async fn create(
    auth: Authorized<scope::AppointmentsCreate>,
    State(state): State<AppState>,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<CreateAppointment>,
) -> Response {
    let fingerprint = serde_json::to_vec(&body).unwrap_or_default();
    let booking = match NewBooking::parse(body) {
        Ok(booking) => booking,
        Err(error) => return error.into_response(),
    };
    let result = match key {
        None => book_once(&auth, &state, &booking).await,
        Some(key) => {
            let hash = request_hash(&[b"POST /api/v1/appointments", &fingerprint]);
            book_with_key(&auth, &state, &booking, &key, &hash).await
        }
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

fn created(bytes: Vec<u8>) -> Response {
    (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response()
}

async fn book_once(
    auth: &ApiKeyAuth,
    state: &AppState,
    booking: &NewBooking,
) -> ApiResult<Response> {
    let mut tx = state.pool.begin().await?;
    let bytes = book(&mut tx, auth, state, booking).await?;
    tx.commit().await?;
    metrics::booking_created();
    Ok(created(bytes))
}

/// Books under an `Idempotency-Key`: the booking and its stored response commit together. A
/// refusal (4xx) is part of the key's history, stored and replayed byte for byte; a failure of
/// ours (5xx) commits nothing, so that a retry runs again.
async fn book_with_key(
    auth: &ApiKeyAuth,
    state: &AppState,
    booking: &NewBooking,
    key: &str,
    hash: &[u8],
) -> ApiResult<Response> {
    let account = auth.account();
    let mut held = match idempotency::begin(&state.pool, account, key, hash).await? {
        Claim::Replay(response) => return Ok(response),
        Claim::Fresh(held) => held,
    };
    // A savepoint, so that a refused booking leaves nothing but its stored refusal.
    let mut attempt = held.connection().begin().await?;
    match book(&mut attempt, auth, state, booking).await {
        Ok(bytes) => {
            attempt.commit().await?;
            held.complete(StatusCode::CREATED, &bytes).await?;
            metrics::booking_created();
            Ok(created(bytes))
        }
        Err(error) if error.code().status().is_server_error() => Err(error),
        Err(error) => {
            attempt.rollback().await?;
            let (parts, body) = error.into_response().into_parts();
            let bytes = axum::body::to_bytes(body, BODY_LIMIT)
                .await
                .map_err(ApiError::internal)?;
            held.complete(parts.status, &bytes).await?;
            Ok(Response::from_parts(parts, Body::from(bytes)))
        }
    }
}

/// Books the slot inside the caller's transaction; answers the JSON bytes of the 201 body.
async fn book(
    connection: &mut PgConnection,
    auth: &ApiKeyAuth,
    state: &AppState,
    booking: &NewBooking,
) -> ApiResult<Vec<u8>> {
    let department = lock_department(&mut *connection, auth.tenant, booking.department_id).await?;
    let starts_at = requested_start(&booking.date_time, department.tz()?)?;
    let worker_id = checked_worker(&mut *connection, &department, booking.worker_id).await?;
    let slot = offered_slot(&department, starts_at)?;
    // The department's capacity (a trigger) and the worker's one-at-a-time rule (an exclusion
    // constraint) are both decided by this INSERT.
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO appointments (organization_id, livemode, department_id, worker_id, starts_at, ends_at,
                                   local_starts_at, timezone, name, external_user_id, phone, email, notes,
                                   metadata, check_in_token)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         RETURNING id",
    )
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode)
    .bind(department.id)
    .bind(worker_id)
    .bind(slot.starts_at)
    .bind(slot.ends_at)
    .bind(slot.local)
    .bind(&department.timezone)
    .bind(&booking.name)
    .bind(&booking.external_user_id)
    .bind(&booking.phone)
    .bind(&booking.email)
    .bind(&booking.notes)
    .bind(SqlJson(&booking.metadata))
    .bind(random_token(32))
    .fetch_one(&mut *connection)
    .await
    .map_err(booking_conflict)?;

    let account = auth.account();
    ledger::consume(&mut *connection, account, id).await?;
    let appointment = reload(&mut *connection, id).await?;
    let mut object = appointment.to_json(&state.settings.public_url);
    object["creditsUsed"] = json!(1);
    events::record(
        &mut *connection,
        &appointment.subject(),
        events::APPOINTMENT_CREATED,
        json!({"object": object}),
    )
    .await?;
    serde_json::to_vec(&appointment.to_json(&state.settings.public_url)).map_err(ApiError::internal)
}
