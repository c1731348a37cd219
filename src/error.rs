//! The one error type of the API: a stable code from the contract, its HTTP status, a message,
//! optional details and, for validation failures, the list of every bad field.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{metrics, request_id};

/// Every error code of the contract. The status of each is fixed here, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InvalidRequest,
    MissingRequiredField,
    InvalidFieldValue,
    InvalidDateTime,
    InvalidPhoneNumber,
    InvalidEmail,
    MissingApiKey,
    InvalidTokenFormat,
    InvalidApiKey,
    ExpiredApiKey,
    InsufficientCredits,
    InsufficientScope,
    LiveModeForbidden,
    AppointmentNotFound,
    DepartmentNotFound,
    WorkerNotFound,
    WebhookNotFound,
    NotFound,
    MethodNotAllowed,
    SlotNotAvailable,
    DuplicateAppointment,
    InvalidStatusTransition,
    PayloadTooLarge,
    UnsupportedMediaType,
    SlotNotOffered,
    DepartmentInactive,
    WorkerInactive,
    IdempotencyConflict,
    IdempotencyKeyReused,
    RateLimitExceeded,
    InternalError,
    ServiceUnavailable,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            InvalidRequest | MissingRequiredField | InvalidFieldValue | InvalidDateTime
            | InvalidPhoneNumber | InvalidEmail => StatusCode::BAD_REQUEST,
            MissingApiKey | InvalidTokenFormat | InvalidApiKey | ExpiredApiKey => {
                StatusCode::UNAUTHORIZED
            }
            InsufficientCredits => StatusCode::PAYMENT_REQUIRED,
            InsufficientScope | LiveModeForbidden => StatusCode::FORBIDDEN,
            AppointmentNotFound | DepartmentNotFound | WorkerNotFound | WebhookNotFound
            | NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            SlotNotAvailable
            | DuplicateAppointment
            | InvalidStatusTransition
            | IdempotencyConflict => StatusCode::CONFLICT,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            SlotNotOffered | DepartmentInactive | WorkerInactive | IdempotencyKeyReused => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            RateLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// One bad field of a request body or query.
#[derive(Debug, Clone, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: ErrorCode,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }

    pub fn missing(field: &str) -> Self {
        Self::new(field, ErrorCode::MissingRequiredField, "is required")
    }

    /// A field required in this case, saying why.
    pub fn missing_because(field: &str, why: &str) -> Self {
        Self::new(
            field,
            ErrorCode::MissingRequiredField,
            format!("is required: {why}"),
        )
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(field, ErrorCode::InvalidFieldValue, message)
    }
}

#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    details: Map<String, Value>,
    errors: Vec<FieldError>,
    /// What really went wrong behind a 5xx; logged, never sent.
    cause: Option<anyhow::Error>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Map::new(),
            errors: Vec::new(),
            cause: None,
        }
    }

    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// A 400 naming every bad field; the top-level code is the first field's.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let code = errors
            .first()
            .map_or(ErrorCode::InvalidRequest, |error| error.code);
        let message = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        // The bad fields' names also in `details`, where the official SDK's error object
        // looks (it reads `error`, not the top-level list).
        let fields: Vec<Value> = errors
            .iter()
            .map(|error| Value::String(error.field.clone()))
            .collect();
        Self {
            errors,
            ..Self::new(code, message).with_detail("fields", fields)
        }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::new(ErrorCode::InternalError, "An internal error occurred")
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn not_found(code: ErrorCode, what: &str) -> Self {
        Self::new(code, format!("{what} not found"))
    }
}

/// A required text field of a body: a missing, blank or too long value adds its error (and
/// answers an empty string); a valid one is answered trimmed.
pub fn required_text(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<&str>,
    max: usize,
) -> String {
    match value.map(|value| crate::domain::text::required(value, max)) {
        None => errors.push(FieldError::missing(field)),
        Some(Ok(text)) => return text,
        Some(Err(_)) => errors.push(FieldError::invalid(
            field,
            format!("must be 1 to {max} characters, not blank"),
        )),
    }
    String::new()
}

/// Turns an empty list of field errors into `Ok`, any other into one 400.
pub fn check_fields(errors: Vec<FieldError>) -> ApiResult<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

impl ApiError {
    /// 503 `SERVICE_UNAVAILABLE`: the database is out of reach or busy past a bound; retrying
    /// later is safe.
    pub fn unavailable(cause: impl Into<anyhow::Error>) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::new(
                ErrorCode::ServiceUnavailable,
                "The service is temporarily unavailable, retry later",
            )
        }
    }
}

/// Whether a database error says "not now" rather than "wrong": the link is gone, or a bound of
/// ours ended the wait (a lock held elsewhere, a statement or an idle transaction too long), or
/// the server is shutting down or resolving a deadlock. Nothing of the request was committed.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57: operator intervention (statement timeout, admin
            // shutdown); 55P03: lock not available; 40001/40P01: serialization, deadlock;
            // 25P03: idle in transaction timeout; 53: insufficient resources.
            code.starts_with("08")
                || code.starts_with("57")
                || code.starts_with("53")
                || matches!(&*code, "55P03" | "40001" | "40P01" | "25P03")
        }),
        _ => false,
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if is_transient(&error) {
            Self::unavailable(error)
        } else {
            Self::internal(error)
        }
    }
}

/// The name of the constraint behind a database error, if any.
pub fn violated_constraint(error: &sqlx::Error) -> Option<&str> {
    match error {
        sqlx::Error::Database(db) => db.constraint(),
        _ => None,
    }
}

/// The body of every error response, members in the contract's order.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorObject<'a>,
    /// Only for validation failures: every bad field at once.
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorObject<'a> {
    code: ErrorCode,
    message: &'a str,
    details: &'a Map<String, Value>,
    request_id: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        metrics::error_response(self.code);
        let request_id = request_id::current();
        if let Some(cause) = &self.cause {
            tracing::error!(request_id = %request_id, code = ?self.code, "request failed: {cause:#}");
        }
        let body = ErrorBody {
            error: ErrorObject {
                code: self.code,
                message: &self.message,
                details: &self.details,
                request_id,
            },
            errors: &self.errors,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// In the spec, the errors of each operation are listed by its extractors and docs (as
/// references to `components/responses`), not derived from this type.
impl aide::OperationOutput for ApiError {
    type Inner = Self;
}
