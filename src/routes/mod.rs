//! One router per feature of the contract, merged under `/api/v1`.

pub mod admin;
pub mod api_keys;
pub mod appointments;
pub mod availability;
pub mod credits;
pub mod departments;
pub mod docs;
pub mod events;
pub mod health;
pub mod pagination;
pub mod webhooks;
pub mod workers;

use aide::axum::ApiRouter;
use axum::Router;

use crate::state::AppState;

/// The features whose operations are described in code: the spec's generated part
/// (see `crate::openapi`). Paths are relative to `/api/v1`.
pub fn documented() -> ApiRouter<AppState> {
    ApiRouter::new()
        .merge(admin::router())
        .merge(api_keys::router())
        .merge(appointments::router())
        .merge(availability::router())
        .merge(credits::router())
        .merge(departments::router())
        .merge(events::router())
        .merge(webhooks::router())
        .merge(workers::router())
}

pub fn router() -> Router<AppState> {
    let api = Router::new()
        .merge(Router::from(documented()))
        .merge(docs::router())
        .merge(health::router());
    Router::new()
        .nest("/api/v1", api)
        .merge(health::router())
        .merge(docs::router())
}
