//! Check-in by QR code, without an API key: `GET /appointments/{id}/qr.svg?token=…` draws the
//! appointment's check-in address, and `GET /appointments/{id}/check-in?token=…` (that address)
//! shows the ticket. The token is the appointment's own random check-in token, compared in
//! constant time; any mismatch is the same 404 as an unknown appointment.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::json::{Appointment, CheckInTicket};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;
use crate::store::appointments::{self as store, not_found, AppointmentRow};

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// The address the QR code holds: what a phone camera opens.
pub fn check_in_address(public_url: &str, id: i64, token: &str) -> String {
    format!("{public_url}/api/v1/appointments/{id}/check-in?token={token}")
}

/// The appointment `id` if `token` is its check-in token; 404 otherwise, whatever was wrong.
async fn ticket(state: &AppState, id: i64, token: Option<&str>) -> ApiResult<AppointmentRow> {
    let token = token.ok_or_else(not_found)?;
    let ticket = store::for_check_in(&state.pool, id)
        .await?
        .ok_or_else(not_found)?;
    // Constant time, so the answer's timing tells nothing of how much of a guess was right.
    if bool::from(ticket.check_in_token.as_bytes().ct_eq(token.as_bytes())) {
        Ok(ticket)
    } else {
        Err(not_found())
    }
}

/// The appointment's QR code (SVG) of its check-in address; no API key, the token is the proof.
pub async fn qr_code(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<TokenQuery>,
) -> ApiResult<Response> {
    let ticket = ticket(&state, id, query.token.as_deref()).await?;
    let address = check_in_address(
        &state.settings.public_url,
        ticket.id,
        &ticket.check_in_token,
    );
    let code =
        QrCode::with_error_correction_level(address.as_bytes(), EcLevel::M).map_err(|error| {
            ApiError::internal(anyhow::anyhow!("check-in address not encodable: {error}"))
        })?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build();
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            // The token is in the address: shared caches must not keep it.
            (header::CACHE_CONTROL, "private, max-age=300"),
            // An image, never a document that could run anything.
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        image,
    )
        .into_response())
}

/// The check-in address: the ticket a QR code opens, read-only; no API key, the token is the
/// proof. Staff record the visit with `POST /appointments/{id}/validate`.
pub async fn check_in(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<TokenQuery>,
) -> ApiResult<Json<CheckInTicket>> {
    let ticket = ticket(&state, id, query.token.as_deref()).await?;
    let appointment = Appointment::new(&ticket, &state.settings.public_url);
    Ok(Json(CheckInTicket::from(appointment)))
}
