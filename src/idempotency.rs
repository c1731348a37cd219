//! `Idempotency-Key` of `POST /appointments`: the same key with the same body within 24 h replays
//! the first response byte for byte (`Idempotent-Replayed: true`); with another body it is a 422;
//! while the first request still runs it is a 409. Keys are scoped per organization and mode.

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use crate::error::{ApiError, ApiResult, ErrorCode, FieldError};
use crate::ledger::Account;

/// How long a first request may hold its key before another may take over (it died).
const CLAIM_SECONDS: f64 = 60.0;

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

/// A key held by the request being served.
pub struct Held {
    account: Account,
    key: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    request_hash: Vec<u8>,
    state: String,
    response_status: Option<i32>,
    response_body: Option<Vec<u8>>,
}

/// Takes the key for this request, or says why not.
pub async fn claim(pool: &PgPool, account: Account, key: &str, hash: &[u8]) -> ApiResult<Claim> {
    // A new key, an expired one (24 h) or one whose first request died is (re)taken at once.
    let taken: Option<i32> = sqlx::query_scalar(
        "INSERT INTO idempotency_keys (organization_id, livemode, key, request_hash, state, locked_until)
         VALUES ($1, $2, $3, $4, 'IN_FLIGHT', now() + make_interval(secs => $5))
         ON CONFLICT (organization_id, livemode, key) DO UPDATE
            SET request_hash = EXCLUDED.request_hash, state = 'IN_FLIGHT', locked_until = EXCLUDED.locked_until,
                response_status = NULL, response_body = NULL, created_at = now()
          WHERE idempotency_keys.created_at < now() - interval '24 hours'
             OR (idempotency_keys.state = 'IN_FLIGHT' AND idempotency_keys.locked_until < now())
         RETURNING 1",
    )
    .bind(account.organization_id)
    .bind(account.livemode)
    .bind(key)
    .bind(hash)
    .bind(CLAIM_SECONDS)
    .fetch_optional(pool)
    .await?;
    let held = Held {
        account,
        key: key.to_owned(),
    };
    if taken.is_some() {
        return Ok(Claim::Fresh(held));
    }
    let row: Row = sqlx::query_as(
        "SELECT request_hash, state, response_status, response_body FROM idempotency_keys
          WHERE organization_id = $1 AND livemode = $2 AND key = $3",
    )
    .bind(account.organization_id)
    .bind(account.livemode)
    .bind(key)
    .fetch_one(pool)
    .await?;
    if row.request_hash != hash {
        return Err(ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "This Idempotency-Key was used with another request",
        ));
    }
    match (row.state.as_str(), row.response_status, row.response_body) {
        ("DONE", Some(status), Some(body)) => Ok(Claim::Replay(replay(status, body))),
        _ => Err(ApiError::new(
            ErrorCode::IdempotencyConflict,
            "A request with this Idempotency-Key is still being processed",
        )),
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
    /// Stores the response, on `connection` (inside the transaction of the change it reports, so
    /// that a committed change always has its response to replay).
    pub async fn complete(
        &self,
        connection: &mut PgConnection,
        status: StatusCode,
        body: &[u8],
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE idempotency_keys SET state = 'DONE', locked_until = NULL, response_status = $4, response_body = $5
              WHERE organization_id = $1 AND livemode = $2 AND key = $3",
        )
        .bind(self.account.organization_id)
        .bind(self.account.livemode)
        .bind(&self.key)
        .bind(i32::from(status.as_u16()))
        .bind(body)
        .execute(connection)
        .await
        .map(|_| ())
    }

    /// Gives the key up (after a server-side failure: a retry should run again).
    pub async fn release(&self, pool: &PgPool) {
        let _ = sqlx::query("DELETE FROM idempotency_keys WHERE organization_id = $1 AND livemode = $2 AND key = $3")
            .bind(self.account.organization_id)
            .bind(self.account.livemode)
            .bind(&self.key)
            .execute(pool)
            .await;
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
