//! `/api-keys` (ext): an organization's keys in the mode of the calling key, `api:admin` only.

pub mod json;

use aide::axum::routing::{delete_with, get_with};
use aide::axum::ApiRouter;
use aide::transform::{TransformOperation, TransformResponse};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;

use self::json::{ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyId, ApiKeyList};
use crate::auth::{scope, Authorized};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{ApiJson, ApiPath};
use crate::openapi::{link, refer_response};
use crate::state::AppState;
use crate::store::api_keys as store;

pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/api-keys",
            get_with(list, list_docs).post_with(create, create_docs),
        )
        .api_route("/api-keys/{id}", delete_with(revoke, revoke_docs))
}

/// Every key of the organization in this mode, newest first; never the clear keys.
async fn list(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
) -> ApiResult<Json<ApiKeyList>> {
    let keys = store::list(&state.pool, auth.tenant).await?;
    Ok(Json(ApiKeyList {
        data: keys.into_iter().map(ApiKey::new).collect(),
    }))
}

fn list_docs(op: TransformOperation) -> TransformOperation {
    op.id("listApiKeys")
        .summary("List API keys")
        .tag("api-keys")
        .response_with::<200, Json<ApiKeyList>, _>(|r| {
            r.description(
                "Every key of the organization in the caller's mode, newest first, without secrets.",
            )
        })
}

/// Creates a key in the caller's mode; the clear key is in this response only.
async fn create(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ApiKeyCreate>,
) -> ApiResult<(StatusCode, Json<ApiKeyCreated>)> {
    let new = body.parse(Utc::now())?;
    let mut connection = state.pool.acquire().await?;
    let issued = store::issue(
        &mut connection,
        auth.tenant,
        &new.name,
        &new.scopes,
        new.expires_at,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(ApiKeyCreated::new(issued))))
}

fn create_docs(op: TransformOperation) -> TransformOperation {
    op.id("createApiKey")
        .summary("Create an API key")
        .tag("api-keys")
        .response_with::<201, Json<ApiKeyCreated>, _>(|r| {
            link_to_revoke(
                r.description("Created in the mode of the calling key; `key` is shown only here."),
            )
        })
}

/// The created key's id leads to its revocation.
fn link_to_revoke(
    mut response: TransformResponse<ApiKeyCreated>,
) -> TransformResponse<ApiKeyCreated> {
    response.inner().links.insert(
        "RevokeApiKey".to_owned(),
        link("revokeApiKey", &[("id", "$response.body#/id")], None),
    );
    response
}

/// Revokes a key at once; revoking twice answers the same revoked key.
async fn revoke(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ApiKeyId>,
) -> ApiResult<Json<ApiKey>> {
    let key = store::revoke(&state.pool, auth.tenant, &id.0)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::NotFound, "API key"))?;
    Ok(Json(ApiKey::new(key)))
}

fn revoke_docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "NotFound");
    op.id("revokeApiKey")
        .summary("Revoke an API key")
        .description("Revokes at once: the key answers 401 EXPIRED_API_KEY from then on. 404 NOT_FOUND for a key of another organization or mode.")
        .tag("api-keys")
        .response_with::<200, Json<ApiKey>, _>(|r| {
            r.description("The revoked key (revoking again answers the same key).")
        })
}
