//! The shapes of `/api-keys` on the wire, in their fields' order. The schemas of openapi.json
//! (`ApiKey`, `ApiKeyCreated`, `ApiKeyList`, `ApiKeyCreate`, `Scope`) are derived from these
//! types.

use aide::generate::GenContext;
use aide::openapi::Operation;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::datetime::{format_timestamp, parse_instant, DateTimeError, SUPPORTED_RANGE};
use crate::domain::keys::Scope;
use crate::error::{check_fields, required_text, ApiResult, ErrorCode, FieldError};
use crate::extract::PathParameters;
use crate::openapi::refer_parameter;
use crate::store::api_keys::{Issued, Key};

/// The mode a key acts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
// Written in place, as the contract always did, rather than as a component of its own.
#[schemars(inline)]
pub enum Mode {
    Test,
    Live,
}

impl Mode {
    pub fn of(livemode: bool) -> Self {
        if livemode {
            Self::Live
        } else {
            Self::Test
        }
    }
}

/// An API key, without its secret.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    #[schemars(pattern("^key_"), example = &"key_Ab12Cd34Ef56Gh78Ij90Kl12")]
    pub id: String,
    pub name: String,
    /// First 12 characters of the key, e.g. `mk_test_AbCd`.
    pub prefix: String,
    pub mode: Mode,
    pub scopes: Vec<Scope>,
    pub livemode: bool,
    // Always written (null when unset): required, of a nullable type.
    #[schemars(required, extend("type" = ["string", "null"], "format" = "date-time"))]
    pub expires_at: Option<String>,
    #[schemars(required, extend("type" = ["string", "null"], "format" = "date-time"))]
    pub revoked_at: Option<String>,
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
}

impl ApiKey {
    pub fn new(key: Key) -> Self {
        Self {
            id: key.id,
            name: key.name,
            prefix: key.prefix,
            mode: Mode::of(key.livemode),
            scopes: key.scopes,
            livemode: key.livemode,
            expires_at: key.expires_at.map(format_timestamp),
            revoked_at: key.revoked_at.map(format_timestamp),
            created_at: format_timestamp(key.created_at),
        }
    }
}

/// A new API key; `key` (the clear key) is shown in this response only.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ApiKeyCreated {
    #[serde(flatten)]
    pub api_key: ApiKey,
    #[schemars(pattern("^mk_(test|live)_[A-Za-z0-9]{32,128}$"))]
    pub key: String,
}

impl ApiKeyCreated {
    pub fn new(issued: Issued) -> Self {
        Self {
            api_key: ApiKey::new(issued.key),
            key: issued.clear,
        }
    }
}

/// Every key of the organization in the caller's mode.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ApiKeyList {
    pub data: Vec<ApiKey>,
}

/// A key to create, as sent.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(example = ApiKeyCreate::example())]
pub struct ApiKeyCreate {
    // Optional in Rust so that a missing field is named in the 400 (the schema says required).
    /// 1 to 100 characters after trimming.
    #[schemars(with = "String", length(min = 1, max = 100))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    // Text, not `Scope`, so that every unknown scope is named in the 400 by its index.
    /// Duplicates are dropped.
    #[schemars(with = "Vec<Scope>", length(min = 1))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// RFC 3339, in the future (else 400 INVALID_DATE_TIME).
    #[schemars(extend("type" = ["string", "null"], "format" = "date-time"))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// A valid key request.
pub struct NewKey {
    pub name: String,
    /// At least one, each once.
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl ApiKeyCreate {
    /// The key to issue, or a 400 naming every bad field; `now` decides what is in the future.
    pub fn parse(self, now: DateTime<Utc>) -> ApiResult<NewKey> {
        let mut errors = Vec::new();
        let name = required_text(&mut errors, "name", self.name.as_deref(), 100);
        let mut scopes = Vec::new();
        match &self.scopes {
            None => errors.push(FieldError::missing("scopes")),
            Some(list) if list.is_empty() => errors.push(FieldError::invalid(
                "scopes",
                "must name at least one scope",
            )),
            Some(list) => {
                for (index, text) in list.iter().enumerate() {
                    match Scope::parse(text) {
                        Some(scope) if !scopes.contains(&scope) => scopes.push(scope),
                        Some(_) => {}
                        None => errors.push(FieldError::invalid(
                            &format!("scopes[{index}]"),
                            format!("unknown scope {text:?}"),
                        )),
                    }
                }
            }
        }
        let expires_at = match self.expires_at.as_deref().map(parse_instant) {
            None => None,
            Some(Ok(at)) if at > now => Some(at),
            Some(result) => {
                let message = match result {
                    Ok(_) => "must be in the future",
                    Err(DateTimeError::OutOfRange) => SUPPORTED_RANGE,
                    Err(_) => "must be an RFC 3339 date-time",
                };
                errors.push(FieldError::new(
                    "expiresAt",
                    ErrorCode::InvalidDateTime,
                    message,
                ));
                None
            }
        };
        check_fields(errors)?;
        Ok(NewKey {
            name,
            scopes,
            expires_at,
        })
    }

    fn example() -> Self {
        Self {
            name: Some("Front desk".to_owned()),
            scopes: Some(vec![
                Scope::AppointmentsRead.as_str().to_owned(),
                Scope::AppointmentsCreate.as_str().to_owned(),
            ]),
            expires_at: Some("2027-01-01T00:00:00Z".to_owned()),
        }
    }
}

/// The id of a key (`key_…`) in a path; any text, so that an unknown one is a 404.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct ApiKeyId(pub String);

/// The shared `ApiKeyId` parameter.
impl PathParameters for ApiKeyId {
    fn document(_: &mut GenContext, operation: &mut Operation) {
        refer_parameter(operation, "ApiKeyId");
    }
}
