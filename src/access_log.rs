//! One access-log line per request (target `moncreneau::access`, level info) and the HTTP
//! request metrics, both from one measurement: method, matched route template (never the raw
//! path, which carries ids and whatever a client invents), final status, latency, request id
//! and, when a key authenticated the request, the key's id (never the key).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Extensions;
use axum::middleware::Next;
use axum::response::Response;

use crate::{metrics, request_id};

/// The log target of access lines, so they can be filtered or routed apart.
pub const TARGET: &str = "moncreneau::access";

/// Where the key extractor leaves the id of the key that authenticated the request: the
/// extractor sees only the request's parts, and the log line is written after the response.
#[derive(Clone, Default)]
struct Caller(Arc<OnceLock<String>>);

/// Notes the id of the key that authenticated the request being served (called by the key
/// extractor; nothing happens outside this middleware).
pub fn identify(extensions: &Extensions, key_id: &str) {
    if let Some(caller) = extensions.get::<Caller>() {
        let _ = caller.0.set(key_id.to_owned());
    }
}

/// Middleware, outside the panic and timeout layers so that their 500 and 503 are what it
/// counts and logs.
pub async fn layer(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(metrics::UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_owned();
    let caller = Caller::default();
    request.extensions_mut().insert(caller.clone());
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    metrics::http_request(&method, &route, status, elapsed);
    tracing::info!(
        target: TARGET,
        method = %method,
        route = %route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        request_id = %request_id::current(),
        key_id = caller.0.get().map(String::as_str),
        "request"
    );
    response
}
