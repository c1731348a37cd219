//! Extractors that answer bad input in the contract's error format instead of axum's plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode, FieldError};

/// A JSON body: 415 without a JSON content type, 413 past the body limit, 400 naming the field
/// for malformed JSON, unknown fields and wrong types.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "Expected a body with Content-Type: application/json",
            ));
        }
        let bytes = read_body(request, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// An optional JSON body (e.g. the reason of a cancellation): no body at all is `None`.
pub struct OptionalJson<T>(pub Option<T>);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(request.headers());
        let has_type = request.headers().contains_key(header::CONTENT_TYPE);
        let bytes = read_body(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        if !json && has_type {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "Expected a body with Content-Type: application/json",
            ));
        }
        parse_json(&bytes).map(|value| OptionalJson(Some(value)))
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    "The request body exceeds 64 KiB",
                )
            } else {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    "The request body could not be read",
                )
            }
        })
}

/// Parses JSON, naming the field behind any type error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let field = error.path().to_string();
        let inner = error.into_inner();
        json_error(field, &inner)
    })?;
    deserializer.end().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            "Malformed JSON: trailing characters",
        )
    })?;
    Ok(value)
}

fn json_error(field: String, error: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    // serde_json's message ends with " at line L column C": not useful to an API client.
    let message = error.to_string();
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(head, _)| head)
        .to_owned();
    let field = if field == "." { String::new() } else { field };
    match error.classify() {
        // The path already ends with the unknown key.
        Category::Data if message.starts_with("unknown field") => {
            ApiError::validation(vec![FieldError::new(
                field,
                ErrorCode::InvalidRequest,
                message,
            )])
        }
        Category::Data => ApiError::validation(vec![FieldError::invalid(&field, message)]),
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            ErrorCode::InvalidRequest,
            format!("Malformed JSON: {message}"),
        ),
    }
}

/// Query parameters, 400 `INVALID_REQUEST` when they do not parse.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| {
                let text = rejection.body_text();
                let text = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                ApiError::new(ErrorCode::InvalidRequest, format!("Invalid query: {text}"))
            })
    }
}

/// Path parameters; a malformed id is a 400, not axum's plain-text answer.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|rejection| {
                let text = rejection.body_text();
                let text = text
                    .strip_prefix("Invalid URL: ")
                    .unwrap_or(&text)
                    .to_owned();
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("Invalid path parameter: {text}"),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        count: Option<i64>,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: Option<String>,
    }

    #[test]
    fn a_wrong_type_names_its_field() {
        let error = parse_json::<Body>(br#"{"count": "x"}"#).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidFieldValue);
        assert!(
            format!("{error:?}").contains("field: \"count\""),
            "{error:?}"
        );
    }

    #[test]
    fn an_unknown_nested_field_is_an_invalid_request_naming_its_path() {
        let error = parse_json::<Body>(br#"{"inner": {"nmae": "x"}}"#).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidRequest);
        assert!(format!("{error:?}").contains("inner.nmae"), "{error:?}");
    }

    #[test]
    fn trailing_garbage_is_malformed_json() {
        let error = parse_json::<Body>(br#"{"count": 1} x"#).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidRequest);
    }
}
