//! `POST /appointments`: a place at the slot's instants and one credit, taken in one transaction
//! with the events.

use aide::openapi::ReferenceOr;
use aide::transform::{TransformOperation, TransformResponse};
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sqlx::{Connection, PgConnection};

use super::json::{Appointment, AppointmentCreate, AppointmentEvent};
use crate::auth::{scope, ApiKeyAuth, KnownKey};
use crate::domain::appointment::NewAppointment;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, BODY_LIMIT};
use crate::idempotency::{self, request_hash, Claim, IdempotencyKey};
use crate::metrics;
use crate::openapi::{link, refer_response};
use crate::state::AppState;
use crate::store::appointments::{self as store, AppointmentRow, Caller};

/// Books a slot: 201 with the appointment, `CONFIRMED`, one credit consumed.
/// With an `Idempotency-Key`, a repeated request replays the first response instead.
///
/// The key is taken as this process last found it (see `KnownKey`): the booking statement
/// checks it, and every refusal waits for a read of it, so a revoked key is refused at once.
pub async fn create(
    auth: KnownKey<scope::AppointmentsCreate>,
    State(state): State<AppState>,
    key: Result<IdempotencyKey, ApiError>,
    body: Result<ApiJson<AppointmentCreate>, ApiError>,
) -> Response {
    match book_request(&auth, &state, key, body).await {
        Ok(response) => response,
        Err(refusal) => auth.refuse(&state, refusal).await.into_response(),
    }
}

async fn book_request(
    auth: &KnownKey<scope::AppointmentsCreate>,
    state: &AppState,
    key: Result<IdempotencyKey, ApiError>,
    body: Result<ApiJson<AppointmentCreate>, ApiError>,
) -> ApiResult<Response> {
    let IdempotencyKey(key) = key?;
    let ApiJson(body) = body?;
    // What a repeated request with the same key must match: only worked out when there is one.
    let fingerprint = key
        .is_some()
        .then(|| serde_json::to_vec(&body).unwrap_or_default());
    let booking = NewAppointment::try_from(body)?;
    match key {
        None => book_once(auth, state, &booking).await,
        Some(key) => {
            let fingerprint = fingerprint.unwrap_or_default();
            // A key's history keeps its refusals: only a key read by this request writes one.
            auth.confirm(state).await?;
            let hash = request_hash(&[b"POST /api/v1/appointments", &fingerprint]);
            book_with_key(auth, state, &booking, &key, &hash).await
        }
    }
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
    booking: &NewAppointment,
) -> ApiResult<Response> {
    let public_url = &state.settings.public_url;
    let caller = Caller {
        tenant: auth.tenant,
        key_id: &auth.key_id,
    };
    let describe = |row: &AppointmentRow| describe_created(row, public_url);
    // On a department this process read before, written together with the other bookings of
    // that department that arrive meanwhile (see `booking_batches`); else, or when what was
    // read changed since, on a fresh read, in one statement of its own (see `store::book`).
    let remembered = store::remembered(&state.bookings, &caller, booking, &describe);
    let written = match remembered {
        Some(remembered) => state.booking_batches.write(remembered).await?,
        None => None,
    };
    let appointment = match written {
        Some(appointment) => appointment,
        None => {
            let mut connection = state.pool.acquire().await?;
            store::book_afresh(&mut connection, &state.bookings, &caller, booking, describe).await?
        }
    };
    metrics::booking_created();
    Ok(created(created_body(&appointment, public_url)?))
}

/// Books under an `Idempotency-Key`: the booking and its stored response commit together. A
/// refusal (4xx) is part of the key's history, stored and replayed byte for byte; a failure of
/// ours (5xx) commits nothing, so that a retry runs again.
async fn book_with_key(
    auth: &ApiKeyAuth,
    state: &AppState,
    booking: &NewAppointment,
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

/// Books the slot (inside the caller's transaction, if `connection` is in one); answers the
/// JSON bytes of the 201 body.
async fn book(
    connection: &mut PgConnection,
    auth: &ApiKeyAuth,
    state: &AppState,
    booking: &NewAppointment,
) -> ApiResult<Vec<u8>> {
    let public_url = &state.settings.public_url;
    let caller = Caller {
        tenant: auth.tenant,
        key_id: &auth.key_id,
    };
    let appointment = store::book(connection, &state.bookings, &caller, booking, |row| {
        describe_created(row, public_url)
    })
    .await?;
    created_body(&appointment, public_url)
}

/// The `data` of the `appointment.created` event of `row`.
fn describe_created(row: &AppointmentRow, public_url: &str) -> ApiResult<serde_json::Value> {
    let mut event = AppointmentEvent::of(Appointment::new(row, public_url));
    event.object.credits_used = Some(1);
    event.to_data()
}

/// The 201 body of the booked `appointment`.
fn created_body(appointment: &AppointmentRow, public_url: &str) -> ApiResult<Vec<u8>> {
    serde_json::to_vec(&Appointment::new(appointment, public_url)).map_err(ApiError::internal)
}

pub fn docs(mut op: TransformOperation) -> TransformOperation {
    for (code, name) in [
        (402, "PaymentRequired"),
        (404, "NotFound"),
        (409, "Conflict"),
        (422, "UnprocessableEntity"),
    ] {
        refer_response(op.inner_mut(), code, name);
    }
    op.id("createAppointment")
        .summary("Book an appointment")
        .description("404 DEPARTMENT_NOT_FOUND when `departmentId` is not a department of the caller's organization and mode; 404 WORKER_NOT_FOUND when `workerId` is not one of its workers. `workerId` is required when the department's `showAdminsInBooking` is true (400 MISSING_REQUIRED_FIELD). 422 WORKER_INACTIVE for a deactivated worker. 409 SLOT_NOT_AVAILABLE (department full, or the worker already has an overlapping appointment) or DUPLICATE_APPOINTMENT; 422 SLOT_NOT_OFFERED or DEPARTMENT_INACTIVE; 402 at 0 credits. A request that fails changes nothing.")
        .tag("appointments")
        .response_with::<201, Json<Appointment>, _>(|r| {
            links_of_created(
                r.description("Booked: CONFIRMED, one credit consumed in the same transaction.")
                    .example(Appointment::example()),
            )
        })
}

/// What the booked appointment's id leads to (schemathesis chains on these), and the replay
/// header of an `Idempotency-Key`.
fn links_of_created(
    mut response: TransformResponse<Appointment>,
) -> TransformResponse<Appointment> {
    let inner = response.inner();
    inner.headers.insert(
        "Idempotent-Replayed".to_owned(),
        ReferenceOr::ref_("#/components/headers/Idempotent-Replayed"),
    );
    for (name, operation) in [
        ("GetAppointment", "getAppointment"),
        ("UpdateAppointment", "updateAppointment"),
        ("CancelAppointment", "cancelAppointment"),
        ("ValidateAppointment", "validateAppointment"),
        ("MarkAppointmentNoShow", "markAppointmentNoShow"),
    ] {
        inner.links.insert(
            name.to_owned(),
            link(operation, &[("id", "$response.body#/id")], None),
        );
    }
    response
}
