//! `Idempotency-Key` of `POST /appointments`: the same key with the same body within 24 h replays
//! the first response byte for byte (`Idempotent-Replayed: true`); with another body it is a 422;
//! while the first request still runs it is a 409. Keys are scoped per organization and mode.
//! A first request that did not commit (a server error, a cut link, a killed process) leaves
//! the key free: its retry runs anew.

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::error::{ApiError, ApiResult, ErrorCode, FieldError};
use crate::ledger::Account;
use crate::store::idempotency as store;

/// The optional `Idempotency-Key` header: 1 to 255 visible ASCII characters.
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(Self(None));
        };
        let key = value.to_str().unwrap_or_default();
        if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::validation(vec![FieldError::new(
                "Idempotency-Key",
                ErrorCode::InvalidRequest,
                "must be 1 to 255 visible ASCII characters",
            )]));
        }
        Ok(Self(Some(key.to_owned())))
    }
}

/// In the spec: the contract's shared `Idempotency-Key` header parameter.
impl aide::OperationInput for IdempotencyKey {
    fn operation_input(
        _: &mut aide::generate::GenContext,
        operation: &mut aide::openapi::Operation,
    ) {
        crate::openapi::refer_parameter(operation, "Idempotency-Key");
    }
}

/// A fingerprint of the request a key was first used with.
pub fn request_hash(parts: &[&[u8]]) -> Vec<u8> {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    hash.finalize().to_vec()
}

/// What a key allows: run the request (holding the key), or replay the stored response.
pub enum Claim {
    Fresh(Held),
    Replay(Response),
}

/// A key held by the request being served: the transaction that holds the key's lock, in which
/// the request does its work and, at the end, stores its response.
pub struct Held {
    transaction: Transaction<'static, Postgres>,
    account: Account,
    key: String,
    hash: Vec<u8>,
}

/// Begins the transaction of a keyed request: takes the key (409 while another request holds
/// it), then replays the stored response of a first request that committed, or refuses a key
/// used with another request (422).
///
/// The key is a transaction-level advisory lock: it is held exactly as long as the transaction
/// that does the work, and freed by Postgres when that transaction ends in any way (commit,
/// rollback, a cut link, a server-side timeout). The stored response is written in the same
/// transaction as the booking, so a key has a response exactly when its booking committed: a
/// retry after a lost answer replays it, a retry after anything that did not commit books anew.
pub async fn begin(pool: &PgPool, account: Account, key: &str, hash: &[u8]) -> ApiResult<Claim> {
    let mut transaction = pool.begin().await?;
    if !store::try_lock(&mut transaction, account, key).await? {
        return Err(ApiError::new(
            ErrorCode::IdempotencyConflict,
            "A request with this Idempotency-Key is still being processed",
        ));
    }
    // A statement of its own, so its snapshot is taken after the lock: it sees the outcome of a
    // holder that committed just before.
    match store::find(&mut transaction, account, key).await? {
        Some(stored) if stored.current && stored.request_hash != hash => Err(ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "This Idempotency-Key was used with another request",
        )),
        Some(stored) if stored.current => Ok(Claim::Replay(replay(
            stored.response_status,
            stored.response_body,
        ))),
        expired => {
            if expired.is_some() {
                store::delete(&mut transaction, account, key).await?;
            }
            Ok(Claim::Fresh(Held {
                transaction,
                account,
                key: key.to_owned(),
                hash: hash.to_vec(),
            }))
        }
    }
}

fn replay(status: i32, body: Vec<u8>) -> Response {
    let status = u16::try_from(status)
        .ok()
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

impl Held {
    /// The transaction the request works in (it holds the key).
    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.transaction
    }

    /// Stores the response with the work done in this transaction, and commits both.
    pub async fn complete(mut self, status: StatusCode, body: &[u8]) -> Result<(), sqlx::Error> {
        store::insert(
            &mut self.transaction,
            self.account,
            &self.key,
            &self.hash,
            i32::from(status.as_u16()),
            body,
        )
        .await?;
        self.transaction.commit().await
    }
}

#[cfg(test)]
mod tests {
    use super::request_hash;

    #[test]
    fn the_fingerprint_separates_its_parts() {
        assert_ne!(request_hash(&[b"ab", b"c"]), request_hash(&[b"a", b"bc"]));
        assert_eq!(request_hash(&[b"x"]), request_hash(&[b"x"]));
    }
}
