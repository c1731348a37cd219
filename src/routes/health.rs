//! The operations routes, without API key: `/health` (process alive), `/ready` (database
//! reachable, migrations applied) and `/metrics` (Prometheus text exposition).
//!
//! Their operations stay written in `openapi/base.json`: they are served both at the root and
//! under `/api/v1` (the generated part only knows `/api/v1`), they carry no key, no rate-limit
//! headers and none of the 500/503 answers the generated operations share, and `/metrics`
//! answers text, not JSON.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::state::AppState;
use crate::{database, metrics};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(scrape))
}

/// The answer of `/health` (the contract's `Health`): `ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
}

/// The answer of `/ready` (the contract's `Readiness`): `ready` or `unavailable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    pub status: String,
}

/// Answers while the process serves requests.
async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// 200 when the database answers and every migration is applied, 503 otherwise.
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let (code, status) = if database::is_ready(&state.pool).await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (
        code,
        Json(Readiness {
            status: status.to_owned(),
        }),
    )
}

/// Every metric of this process, in the Prometheus text format.
async fn scrape(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::render(&state.pool, state.settings.webhook_circuit()).await,
    )
}
