//! The API keys of a tenant, as listed, issued and revoked by `/api-keys` and issued by the
//! operator's organization creation (the per-request key lookup lives in `crate::auth`).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::domain::keys::{generate_key, hash_key, random_id, Scope};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::tenant::Tenant;

/// A stored key; its clear text is never stored.
pub struct Key {
    pub id: String,
    pub name: String,
    pub livemode: bool,
    /// The first 12 characters of the clear key.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A key just issued: what is stored, and the clear key, which exists only in this value.
pub struct Issued {
    pub key: Key,
    pub clear: String,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    name: String,
    livemode: bool,
    key_prefix: String,
    scopes: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<KeyRow> for Key {
    fn from(row: KeyRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            livemode: row.livemode,
            prefix: row.key_prefix,
            // Only known scopes are ever written; one the code no longer knows grants nothing
            // (as in `crate::auth`), so it is not shown either.
            scopes: row.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            created_at: row.created_at,
        }
    }
}

const KEY_COLUMNS: &str =
    "id, name, livemode, key_prefix, scopes, expires_at, revoked_at, created_at";

/// Every key of the tenant, newest first.
pub async fn list(pool: &PgPool, tenant: Tenant) -> ApiResult<Vec<Key>> {
    let rows: Vec<KeyRow> = sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE organization_id = $1 AND livemode = $2
          ORDER BY created_at DESC, id"
    ))
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Key::from).collect())
}

/// Issues a key of the tenant's mode, storing its hash only. On a connection so that the
/// operator's organization creation can issue keys inside its transaction.
pub async fn issue(
    connection: &mut PgConnection,
    tenant: Tenant,
    name: &str,
    scopes: &[Scope],
    expires_at: Option<DateTime<Utc>>,
) -> ApiResult<Issued> {
    let id = random_id("key");
    let clear = generate_key(tenant.livemode);
    let scopes: Vec<&str> = scopes.iter().map(|scope| scope.as_str()).collect();
    let row: KeyRow = sqlx::query_as(&format!(
        "INSERT INTO api_keys
                (id, organization_id, livemode, name, key_hash, key_prefix, scopes, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING {KEY_COLUMNS}"
    ))
    .bind(&id)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .bind(name)
    .bind(hash_key(&clear))
    .bind(&clear[..12])
    .bind(&scopes)
    .bind(expires_at)
    .fetch_one(connection)
    .await?;
    Ok(Issued {
        key: row.into(),
        clear,
    })
}

/// Revokes the tenant's key `id` (at once; a revoked key keeps its first revocation time).
/// `None` when the tenant has no such key.
pub async fn revoke(pool: &PgPool, tenant: Tenant, id: &str) -> ApiResult<Option<Key>> {
    let row: Option<KeyRow> = sqlx::query_as(&format!(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())
          WHERE id = $1 AND organization_id = $2 AND livemode = $3
          RETURNING {KEY_COLUMNS}"
    ))
    .bind(id)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Key::from))
}

/// A key as presented on a request: whom it speaks for, what it may do, whether it still may.
#[derive(Debug, sqlx::FromRow)]
pub struct PresentedKey {
    pub id: String,
    pub organization_id: i64,
    pub livemode: bool,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// 401 `EXPIRED_API_KEY`: the key was revoked, or its expiry passed.
pub fn refused() -> ApiError {
    ApiError::new(
        ErrorCode::ExpiredApiKey,
        "The API key has expired or was revoked",
    )
}

/// The key whose hash is `key_hash`, whatever its organization (the key is what names it).
/// Read on every request, so that a revoked key is refused at once by every process.
pub async fn presented(pool: &PgPool, key_hash: &[u8]) -> ApiResult<Option<PresentedKey>> {
    let mut connection = crate::database::acquire(pool).await?;
    Ok(sqlx::query_as(
        "SELECT id, organization_id, livemode, scopes, expires_at, revoked_at
           FROM api_keys WHERE key_hash = $1",
    )
    .bind(key_hash)
    .fetch_optional(&mut *connection)
    .await?)
}
