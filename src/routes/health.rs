//! The operations routes, without API key: `/health` (process alive), `/ready` (database
//! reachable, migrations applied) and `/metrics` (Prometheus text exposition).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::state::AppState;
use crate::{database, metrics};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(scrape))
}

/// Answers while the process serves requests.
async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// 200 when the database answers and every migration is applied, 503 otherwise.
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if database::is_ready(&state.pool).await {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable"})),
        )
    }
}

/// Every metric of this process, in the Prometheus text format.
async fn scrape(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::render(&state.pool, state.settings.webhook_circuit()).await,
    )
}
