//! Extractors that answer bad input in the contract's error format instead of axum's plain text.

use aide::generate::GenContext;
use aide::openapi::{Operation, ReferenceOr};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::domain::datetime::{parse_date, DateTimeError, SUPPORTED_RANGE};
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::json_objects::ObjectsOnly;
use crate::openapi::{refer_parameter, refer_response};

/// Request bodies larger than this are refused with 413 (the router's body limit; the
/// extractors' message says the same number).
pub const BODY_LIMIT: usize = 64 * 1024;

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

/// In the spec: the body's schema (required), and the refusals of this extractor.
impl<T: JsonSchema> aide::OperationInput for ApiJson<T> {
    fn operation_input(context: &mut GenContext, operation: &mut Operation) {
        axum::Json::<T>::operation_input(context, operation);
        refer_response(operation, 400, "BadRequest");
        refer_response(operation, 413, "PayloadTooLarge");
        refer_response(operation, 415, "UnsupportedMediaType");
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

/// In the spec: the body of a JSON request, not required, with the refusals of [`ApiJson`].
impl<T: JsonSchema> aide::OperationInput for OptionalJson<T> {
    fn operation_input(context: &mut GenContext, operation: &mut Operation) {
        ApiJson::<T>::operation_input(context, operation);
        if let Some(ReferenceOr::Item(body)) = &mut operation.request_body {
            body.required = false;
        }
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

/// Parses JSON, naming the field behind any type error. Strings holding a NUL character are
/// refused here, once for every route: no text column can store one.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|error| json_error(String::new(), &error))?;
    // A key given twice has two meanings (the last one wins here, the first one in a proxy that
    // checked it): refused, at any depth.
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    if let Err(error) = serde_path_to_error::deserialize::<_, UniqueKeys>(&mut reader) {
        // The error's text is the repeated key (see `UniqueKeysVisitor`), its path the object's.
        let parent = error.path().to_string();
        let text = error.into_inner().to_string();
        let key = text
            .rsplit_once(" at line ")
            .map_or(text.as_str(), |(key, _)| key);
        let field = match parent.as_str() {
            "" | "." => key.to_owned(),
            parent => format!("{parent}.{key}"),
        };
        return Err(ApiError::validation(vec![FieldError::new(
            field,
            ErrorCode::InvalidRequest,
            "appears more than once: each key may appear once",
        )]));
    }
    if let Some(field) = nul_field(&value, "") {
        return Err(ApiError::validation(vec![FieldError::invalid(
            &field,
            "must not contain NUL characters",
        )]));
    }
    serde_path_to_error::deserialize(ObjectsOnly(&value)).map_err(|error| {
        let field = error.path().to_string();
        let inner = error.into_inner();
        json_error(field, &inner)
    })
}

/// Any JSON value, read only to check that no object names a key twice.
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<UniqueKeys, A::Error> {
        while items.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(key));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }
}

/// The path of the first string (or key) holding a NUL character.
fn nul_field(value: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(text) if text.contains('\0') => Some(path.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| nul_field(item, &format!("{path}[{index}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let here = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                Some(here)
            } else {
                nul_field(item, &here)
            }
        }),
        _ => None,
    }
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

/// Whether a raw URL part carries a NUL character (`%00`), which no text column can store.
fn encodes_nul(raw: &str) -> bool {
    raw.contains("%00")
}

fn nul_in_url() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRequest,
        "The URL must not contain NUL characters (%00)",
    )
}

/// Query parameters, 400 `INVALID_REQUEST` when they do not parse.
pub struct ApiQuery<T>(pub T);

/// How a query type is written in the spec (parameters of its own, or shared components).
pub trait QueryParameters {
    fn document(context: &mut GenContext, operation: &mut Operation);
}

impl<T: QueryParameters> aide::OperationInput for ApiQuery<T> {
    fn operation_input(context: &mut GenContext, operation: &mut Operation) {
        T::document(context, operation);
        refer_response(operation, 400, "BadRequest");
    }
}

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.uri.query().is_some_and(encodes_nul) {
            return Err(nul_in_url());
        }
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

/// How a path parameter type is written in the spec: the contract's shared parameter
/// components (`components/parameters`), so every id reads the same everywhere.
pub trait PathParameters {
    fn document(context: &mut GenContext, operation: &mut Operation);
}

/// An integer id (`{id}`): the shared `IntegerId` parameter.
impl PathParameters for i64 {
    fn document(_: &mut GenContext, operation: &mut Operation) {
        refer_parameter(operation, "IntegerId");
    }
}

/// Two parameters (`{id}` then a second one), in their order in the path.
impl<A: PathParameters, B: PathParameters> PathParameters for (A, B) {
    fn document(context: &mut GenContext, operation: &mut Operation) {
        A::document(context, operation);
        B::document(context, operation);
    }
}

impl<T: PathParameters> aide::OperationInput for ApiPath<T> {
    fn operation_input(context: &mut GenContext, operation: &mut Operation) {
        T::document(context, operation);
        refer_response(operation, 400, "BadRequest");
    }
}

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if encodes_nul(parts.uri.path()) {
            return Err(nul_in_url());
        }
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

/// A date query parameter `YYYY-MM-DD`, years 0001–9999; the error names `field`.
pub fn date_param(field: &str, text: &str) -> Result<NaiveDate, FieldError> {
    parse_date(text).map_err(|error| {
        let message = match error {
            DateTimeError::OutOfRange => SUPPORTED_RANGE,
            _ => "must be a date YYYY-MM-DD",
        };
        FieldError::new(field, ErrorCode::InvalidRequest, message)
    })
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
    fn a_nul_character_anywhere_in_a_body_names_its_field() {
        let error = parse_json::<Body>(br#"{"inner": {"name": "a\u0000b"}}"#).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidFieldValue);
        assert!(format!("{error:?}").contains("inner.name"), "{error:?}");
        assert!(encodes_nul("/x/%00") && !encodes_nul("/x/%200"));
    }

    #[test]
    fn trailing_garbage_is_malformed_json() {
        let error = parse_json::<Body>(br#"{"count": 1} x"#).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidRequest);
    }
}
