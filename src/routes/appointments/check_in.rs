//! Check-in by QR code, without an API key: `GET /appointments/{id}/qr.svg?token=…` draws the
//! appointment's check-in address, and `GET /appointments/{id}/check-in?token=…` (that address)
//! shows the ticket. The token is the appointment's own random check-in token, compared in
//! constant time; any mismatch is the same 404 as an unknown appointment.

use aide::axum::routing::get_with;
use aide::axum::ApiRouter;
use aide::generate::GenContext;
use aide::openapi::{
    MediaType, Operation, ReferenceOr, Response as ResponseDoc, SchemaObject, StatusCode,
};
use aide::transform::TransformOperation;
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
use crate::extract::{ApiPath, ApiQuery, QueryParameters};
use crate::openapi::{refer_parameter, refer_response, without_credentials};
use crate::state::AppState;
use crate::store::appointments::{self as store, not_found, AppointmentRow};

/// The check-in routes, reached without an API key (the appointment's token is the proof).
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route("/appointments/{id}/qr.svg", get_with(qr_code, qr_code_docs))
        .api_route(
            "/appointments/{id}/check-in",
            get_with(check_in, check_in_docs),
        )
}

/// The query of both routes: the appointment's check-in token.
#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// The shared `CheckInToken` parameter.
impl QueryParameters for TokenQuery {
    fn document(_: &mut GenContext, operation: &mut Operation) {
        refer_parameter(operation, "CheckInToken");
    }
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

fn qr_code_docs(mut op: TransformOperation) -> TransformOperation {
    without_credentials(op.inner_mut());
    refer_response(op.inner_mut(), 404, "NotFound");
    // An SVG image, which no JSON type describes.
    let image = ResponseDoc {
        description: "The QR code.".to_owned(),
        content: [(
            "image/svg+xml".to_owned(),
            MediaType {
                schema: Some(SchemaObject {
                    json_schema: schemars::json_schema!({"type": "string"}),
                    external_docs: None,
                    example: None,
                }),
                ..Default::default()
            },
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    op.inner_mut()
        .responses
        .get_or_insert_with(Default::default)
        .responses
        .insert(StatusCode::Code(200), ReferenceOr::Item(image));
    op.id("getAppointmentQrCode")
        .summary("Check-in QR code")
        .description("No API key: the appointment's check-in token is the proof. A QR code (SVG) whose text is the appointment's check-in address, `{MONCRENEAU_PUBLIC_URL}/api/v1/appointments/{id}/check-in?token=…`, for a phone camera at the desk. The link is the appointment's `qrCode`.")
        .tag("appointments")
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

fn check_in_docs(mut op: TransformOperation) -> TransformOperation {
    without_credentials(op.inner_mut());
    refer_response(op.inner_mut(), 404, "NotFound");
    op.id("getAppointmentCheckIn")
        .summary("Check-in address (what the QR code opens)")
        .description("No API key: the appointment's check-in token is the proof. Read-only: shows the visit (department, time, status, name) so the desk can recognise it; staff record the presence with `POST /appointments/{id}/validate`.")
        .tag("appointments")
        .response_with::<200, Json<CheckInTicket>, _>(|r| r.description("The ticket."))
}
