//! Who is calling: an organization's API key (`X-API-Key` or `Authorization: Bearer`), or the
//! operator of the server (`Authorization: Bearer $MONCRENEAU_ADMIN_TOKEN`).

use std::marker::PhantomData;
use std::ops::Deref;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use chrono::Utc;
use sha2::{Digest, Sha256};

use crate::access_log;
use crate::domain::keys::{allows, hash_key, key_mode, Scope};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::known_keys::ValidKey;
use crate::ledger::Account;
use crate::openapi::refer_response;
use crate::rate_limit;
use crate::state::AppState;
use crate::store::api_keys;
use crate::tenant::Tenant;

/// A caller authenticated by an organization's API key. Every query it leads to is filtered by
/// `organization_id` and `livemode`, so other tenants and the other mode stay invisible.
#[derive(Debug, Clone)]
pub struct ApiKeyAuth {
    pub key_id: String,
    /// The organization and mode of the key: what every store call is given.
    pub tenant: Tenant,
    pub scopes: Vec<Scope>,
}

impl ApiKeyAuth {
    /// The credit account of the caller's organization and mode.
    pub fn account(&self) -> Account {
        self.tenant
    }

    /// 403 `INSUFFICIENT_SCOPE` unless the key holds `scope` (or `api:admin`).
    pub fn require(&self, scope: Scope) -> ApiResult<()> {
        if allows(&self.scopes, scope) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::InsufficientScope,
                format!("This API key lacks the scope {}", scope.as_str()),
            )
            .with_detail("requiredScope", scope.as_str()))
        }
    }
}

impl From<ValidKey> for ApiKeyAuth {
    fn from(key: ValidKey) -> Self {
        Self {
            key_id: key.id,
            tenant: key.tenant,
            scopes: key.scopes,
        }
    }
}

impl FromRequestParts<AppState> for ApiKeyAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let hash = presented_hash(parts)?;
        let caller = look_up(state, &hash).await?;
        admit(parts, state, &caller).await?;
        Ok(caller)
    }
}

/// The digest of the key the request presents (401 when it presents none, or a malformed one).
fn presented_hash(parts: &Parts) -> ApiResult<Vec<u8>> {
    let key = presented_token(&parts.headers, true)?;
    if key_mode(&key).is_none() {
        return Err(malformed());
    }
    Ok(hash_key(&key))
}

/// The key whose digest is `hash`, read now: 401 unless it exists and is neither revoked nor
/// expired. A valid key is remembered (see `known_keys`), a refused one forgotten.
async fn look_up(state: &AppState, hash: &[u8]) -> ApiResult<ApiKeyAuth> {
    let Some(row) = api_keys::presented(&state.pool, hash).await? else {
        state.keys.forget(hash);
        return Err(ApiError::new(
            ErrorCode::InvalidApiKey,
            "The API key is not valid",
        ));
    };
    if row.revoked_at.is_some() || row.expires_at.is_some_and(|at| at <= Utc::now()) {
        state.keys.forget(hash);
        return Err(api_keys::refused());
    }
    let key = ValidKey {
        id: row.id,
        tenant: Tenant {
            organization_id: row.organization_id,
            livemode: row.livemode,
        },
        scopes: row.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
        expires_at: row.expires_at,
    };
    state.keys.learn(hash, key.clone());
    Ok(ApiKeyAuth::from(key))
}

/// Names the caller in the access log and spends one request of its key's hourly quota (429
/// when none is left).
async fn admit(parts: &Parts, state: &AppState, caller: &ApiKeyAuth) -> ApiResult<()> {
    // Authenticated, even if over its quota below: the access log names the key.
    access_log::identify(&parts.extensions, &caller.key_id);
    let limit = state.settings.rate_limit_per_hour;
    if limit > 0 {
        let quota =
            rate_limit::admit(&state.pool, &state.allowances, &caller.key_id, limit).await?;
        let reset = quota.reset;
        rate_limit::record(quota);
        if quota.exceeded() {
            return Err(ApiError::new(
                ErrorCode::RateLimitExceeded,
                format!("This API key is limited to {limit} requests per hour"),
            )
            .with_detail("limit", limit)
            .with_detail("resetAt", reset));
        }
    }
    Ok(())
}

/// A caller whose key holds the scope `S`, as this process last found the key: not read again
/// when it was found valid before. So whatever the request writes must check, in the statement
/// that writes, that the key is still neither revoked nor expired (`api_keys.id =
/// key_id AND revoked_at IS NULL …`), and every refusal is answered only after
/// [`KnownKey::confirm`]: a key revoked by any process is refused by the next request, as with
/// [`Authorized`], and a refusal never tells a revoked key more than 401.
pub struct KnownKey<S> {
    caller: ApiKeyAuth,
    /// The key's digest while it is not confirmed by a read of this request.
    unconfirmed: Option<Vec<u8>>,
    scope: PhantomData<fn() -> S>,
}

impl<S> Deref for KnownKey<S> {
    type Target = ApiKeyAuth;

    fn deref(&self) -> &ApiKeyAuth {
        &self.caller
    }
}

impl<S> KnownKey<S> {
    /// Reads the key unless this request did: its 401 when it was revoked or expired since.
    pub async fn confirm(&self, state: &AppState) -> ApiResult<()> {
        match &self.unconfirmed {
            Some(hash) => look_up(state, hash).await.map(drop),
            None => Ok(()),
        }
    }

    /// `refusal`, or the key's 401 if it is no longer valid.
    pub async fn refuse(&self, state: &AppState, refusal: ApiError) -> ApiError {
        self.confirm(state).await.err().unwrap_or(refusal)
    }
}

impl<S: RequiredScope + Send> FromRequestParts<AppState> for KnownKey<S> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let hash = presented_hash(parts)?;
        let known = match state.keys.recall(&hash) {
            Some(key) => KnownKey {
                caller: ApiKeyAuth::from(key),
                unconfirmed: Some(hash),
                scope: PhantomData,
            },
            None => KnownKey {
                caller: look_up(state, &hash).await?,
                unconfirmed: None,
                scope: PhantomData,
            },
        };
        let admitted = admit(parts, state, &known.caller)
            .await
            .and_then(|()| S::SCOPE.map_or(Ok(()), |scope| known.caller.require(scope)));
        match admitted {
            Ok(()) => Ok(known),
            Err(refusal) => Err(known.refuse(state, refusal).await),
        }
    }
}

/// In the spec, exactly what [`Authorized`] is.
impl<S: RequiredScope> aide::OperationInput for KnownKey<S> {
    fn operation_input(
        context: &mut aide::generate::GenContext,
        operation: &mut aide::openapi::Operation,
    ) {
        Authorized::<S>::operation_input(context, operation);
    }
}

/// A scope a route requires, as a type, so the check runs while extracting the caller: before
/// any body is read, a caller without the scope learns nothing about its request.
pub trait RequiredScope {
    /// `None`: any valid key of the organization.
    const SCOPE: Option<Scope>;
}

/// Marker types for [`Authorized`], one per scope of the contract.
pub mod scope {
    use super::{RequiredScope, Scope};

    macro_rules! scopes {
        ($($name:ident => $scope:expr),* $(,)?) => {$(
            pub struct $name;
            impl RequiredScope for $name {
                const SCOPE: Option<Scope> = $scope;
            }
        )*};
    }

    scopes! {
        AnyKey => None,
        AppointmentsRead => Some(Scope::AppointmentsRead),
        AppointmentsCreate => Some(Scope::AppointmentsCreate),
        AppointmentsCancel => Some(Scope::AppointmentsCancel),
        DepartmentsRead => Some(Scope::DepartmentsRead),
        AvailabilityCheck => Some(Scope::AvailabilityCheck),
        WebhooksManage => Some(Scope::WebhooksManage),
        ApiAdmin => Some(Scope::ApiAdmin),
    }
}

/// A caller whose key holds the scope `S` (403 `INSUFFICIENT_SCOPE` otherwise).
pub struct Authorized<S> {
    caller: ApiKeyAuth,
    scope: PhantomData<S>,
}

impl<S> Deref for Authorized<S> {
    type Target = ApiKeyAuth;

    fn deref(&self) -> &ApiKeyAuth {
        &self.caller
    }
}

impl<S: RequiredScope + Send> FromRequestParts<AppState> for Authorized<S> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = ApiKeyAuth::from_request_parts(parts, state).await?;
        if let Some(scope) = S::SCOPE {
            caller.require(scope)?;
        }
        Ok(Self {
            caller,
            scope: PhantomData,
        })
    }
}

/// In the spec: the two ways to present a key, the scope (`x-required-scope`), and the refusals
/// of this extractor (401, 403 when a scope is required, 429).
impl<S: RequiredScope> aide::OperationInput for Authorized<S> {
    fn operation_input(
        _: &mut aide::generate::GenContext,
        operation: &mut aide::openapi::Operation,
    ) {
        for scheme in ["apiKeyHeader", "bearerAuth"] {
            operation
                .security
                .push([(scheme.to_owned(), Vec::new())].into_iter().collect());
        }
        refer_response(operation, 401, "Unauthorized");
        if let Some(scope) = S::SCOPE {
            operation
                .extensions
                .insert("x-required-scope".to_owned(), scope.as_str().into());
            refer_response(operation, 403, "Forbidden");
        }
        refer_response(operation, 429, "TooManyRequests");
    }
}

/// The operator of the server. Without `MONCRENEAU_ADMIN_TOKEN` the operator API does not exist.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(expected) = state.settings.admin_token.as_deref() else {
            return Err(ApiError::new(ErrorCode::NotFound, "Not found"));
        };
        let token = presented_token(&parts.headers, false)?;
        // Compare digests so the time taken says nothing about the token.
        if Sha256::digest(token.as_bytes()) == Sha256::digest(expected.as_bytes()) {
            Ok(Operator)
        } else {
            Err(ApiError::new(
                ErrorCode::InvalidApiKey,
                "The operator token is not valid",
            ))
        }
    }
}

fn malformed() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidTokenFormat,
        "Malformed credentials: expected X-API-Key: mk_test_… / mk_live_… or Authorization: Bearer <key>",
    )
}

/// The one value of a credential header. Sent twice with different values, it is refused
/// (401 `INVALID_TOKEN_FORMAT`): which one counts would depend on who reads it (a proxy may have
/// checked the other). Repeated identical values are one value.
fn credential_header(
    headers: &HeaderMap,
    name: impl header::AsHeaderName + Copy,
) -> ApiResult<Option<&HeaderValue>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.any(|other| Some(other) != first) {
        return Err(ApiError::new(
            ErrorCode::InvalidTokenFormat,
            "Conflicting credentials: a credential header was sent twice with different values",
        ));
    }
    Ok(first)
}

/// The token of `Authorization: Bearer …` or, where allowed, `X-API-Key`.
fn presented_token(headers: &HeaderMap, accept_api_key_header: bool) -> ApiResult<String> {
    let authorization = credential_header(headers, &header::AUTHORIZATION)?;
    if accept_api_key_header {
        if let Some(value) = credential_header(headers, "x-api-key")? {
            let key = value.to_str().map_err(|_| malformed())?.trim();
            return if key.is_empty() {
                Err(malformed())
            } else {
                Ok(key.to_owned())
            };
        }
    }
    let Some(value) = authorization else {
        let message = if accept_api_key_header {
            "An API key is required: send X-API-Key or Authorization: Bearer"
        } else {
            "The operator token is required: send Authorization: Bearer"
        };
        return Err(ApiError::new(ErrorCode::MissingApiKey, message));
    };
    let value = value.to_str().map_err(|_| malformed())?.trim();
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(malformed());
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn each_malformed_header_is_an_invalid_token_format() {
        for value in ["Bearer", "Bearer ", "Basic abc", "Token abc", "Bearer a b"] {
            let error = presented_token(&headers(&[("authorization", value)]), true).unwrap_err();
            assert_eq!(error.code(), ErrorCode::InvalidTokenFormat, "{value}");
        }
        let error = presented_token(&headers(&[("x-api-key", " ")]), true).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidTokenFormat);
    }

    #[test]
    fn a_credential_header_sent_twice_with_different_values_is_refused() {
        for name in ["x-api-key", "authorization"] {
            let mut map = HeaderMap::new();
            map.append(name, HeaderValue::from_static("Bearer k1"));
            map.append(name, HeaderValue::from_static("Bearer k2"));
            let error = presented_token(&map, true).unwrap_err();
            assert_eq!(error.code(), ErrorCode::InvalidTokenFormat, "{name}");
            map.remove(name);
            map.append(name, HeaderValue::from_static("Bearer k1"));
            map.append(name, HeaderValue::from_static("Bearer k1"));
            assert!(
                presented_token(&map, true).is_ok(),
                "{name}: same value twice"
            );
        }
    }

    #[test]
    fn no_header_is_a_missing_key() {
        let error = presented_token(&HeaderMap::new(), true).unwrap_err();
        assert_eq!(error.code(), ErrorCode::MissingApiKey);
    }

    #[test]
    fn both_header_styles_carry_the_key() {
        assert_eq!(
            presented_token(&headers(&[("x-api-key", "k1")]), true).unwrap(),
            "k1"
        );
        assert_eq!(
            presented_token(&headers(&[("authorization", "bearer k2")]), true).unwrap(),
            "k2"
        );
    }
}
