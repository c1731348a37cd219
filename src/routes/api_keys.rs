//! `/api-keys` (ext): an organization's keys in the mode of the calling key, `api:admin` only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::PgConnection;

use crate::auth::{scope, Authorized};
use crate::domain::datetime::{format_timestamp, parse_instant, DateTimeError, SUPPORTED_RANGE};
use crate::domain::keys::{generate_key, hash_key, random_id, Scope};
use crate::error::{check_fields, required_text, ApiError, ApiResult, ErrorCode, FieldError};
use crate::extract::{ApiJson, ApiPath};
use crate::ledger::Account;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api-keys", get(list).post(create))
        .route("/api-keys/{id}", delete(revoke))
}

/// Stores a new key (its hash only) and returns its id and the clear key.
pub async fn insert_key(
    connection: &mut PgConnection,
    account: Account,
    name: &str,
    scopes: &[Scope],
    expires_at: Option<DateTime<Utc>>,
) -> Result<(String, String), sqlx::Error> {
    let id = random_id("key");
    let key = generate_key(account.livemode);
    let scopes: Vec<&str> = scopes.iter().map(|scope| scope.as_str()).collect();
    sqlx::query(
        "INSERT INTO api_keys (id, organization_id, livemode, name, key_hash, key_prefix, scopes, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(account.organization_id)
    .bind(account.livemode)
    .bind(name)
    .bind(hash_key(&key))
    .bind(&key[..12])
    .bind(&scopes)
    .bind(expires_at)
    .execute(connection)
    .await?;
    Ok((id, key))
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

impl KeyRow {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "prefix": self.key_prefix,
            "mode": if self.livemode { "live" } else { "test" },
            "scopes": self.scopes,
            "livemode": self.livemode,
            "expiresAt": self.expires_at.map(format_timestamp),
            "revokedAt": self.revoked_at.map(format_timestamp),
            "createdAt": format_timestamp(self.created_at),
        })
    }
}

const KEY_COLUMNS: &str =
    "id, name, livemode, key_prefix, scopes, expires_at, revoked_at, created_at";

/// Every key of the organization in this mode, newest first; never the clear keys.
async fn list(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
) -> ApiResult<Json<Value>> {
    let rows: Vec<KeyRow> = sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE organization_id = $1 AND livemode = $2 ORDER BY created_at DESC, id"
    ))
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(
        json!({"data": rows.iter().map(KeyRow::to_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateKey {
    name: Option<String>,
    scopes: Option<Vec<String>>,
    expires_at: Option<String>,
}

/// Creates a key in the caller's mode; the clear key is in this response only.
async fn create(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut errors = Vec::new();
    let name = required_text(&mut errors, "name", body.name.as_deref(), 100);
    let mut scopes = Vec::new();
    match &body.scopes {
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
    let expires_at = match body.expires_at.as_deref().map(parse_instant) {
        None => None,
        Some(Ok(at)) if at > Utc::now() => Some(at),
        Some(Ok(_)) => {
            errors.push(FieldError::new(
                "expiresAt",
                ErrorCode::InvalidDateTime,
                "must be in the future",
            ));
            None
        }
        Some(Err(DateTimeError::OutOfRange)) => {
            errors.push(FieldError::new(
                "expiresAt",
                ErrorCode::InvalidDateTime,
                SUPPORTED_RANGE,
            ));
            None
        }
        Some(Err(_)) => {
            errors.push(FieldError::new(
                "expiresAt",
                ErrorCode::InvalidDateTime,
                "must be an RFC 3339 date-time",
            ));
            None
        }
    };
    check_fields(errors)?;
    let account = Account {
        organization_id: auth.tenant.organization_id,
        livemode: auth.tenant.livemode,
    };
    let mut connection = state.pool.acquire().await?;
    let (id, key) = insert_key(&mut connection, account, &name, &scopes, expires_at).await?;
    let row: KeyRow = sqlx::query_as(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"))
        .bind(&id)
        .fetch_one(&mut *connection)
        .await?;
    let mut body = row.to_json();
    body["key"] = json!(key);
    Ok((StatusCode::CREATED, Json(body)))
}

/// Revokes a key at once; revoking twice answers the same revoked key.
async fn revoke(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let row: Option<KeyRow> = sqlx::query_as(&format!(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())
          WHERE id = $1 AND organization_id = $2 AND livemode = $3
          RETURNING {KEY_COLUMNS}"
    ))
    .bind(&id)
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode)
    .fetch_optional(&state.pool)
    .await?;
    let row = row.ok_or_else(|| ApiError::not_found(ErrorCode::NotFound, "API key"))?;
    Ok(Json(row.to_json()))
}
