//! `/health` (process alive) and `/ready` (database reachable, migrations applied).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::database;
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
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
