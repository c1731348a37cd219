//! The application: its router, middleware stack, listener and shutdown.

use std::time::Duration;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{middleware, Router};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::config::Settings;
use crate::error::{ApiError, ErrorCode};
use crate::extract::BODY_LIMIT;
use crate::state::AppState;
use crate::webhooks::sender::Sender;
use crate::webhooks::worker::Worker;
use crate::{access_log, database, metrics, rate_limit, request_id, routes, serve};

pub struct Application {
    port: u16,
    listener: TcpListener,
    router: Router,
    pool: PgPool,
    worker: Worker,
    run_worker: bool,
    limits: serve::Limits,
}

impl Application {
    /// Connects to (and migrates) the database, then binds the listener (port 0: any free one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = database::connect_and_migrate(&settings).await?;
        let listener = TcpListener::bind(&settings.addr)
            .await
            .with_context(|| format!("cannot listen on {}", settings.addr))?;
        let port = listener.local_addr()?.port();
        let sender = Sender::new(&settings)?;
        let worker = Worker::new(pool.clone(), sender.clone(), &settings);
        let limits = serve::Limits {
            header_read_timeout: settings.header_read_timeout,
            max_connections: settings.max_client_connections,
            shutdown_grace: settings.request_timeout,
        };
        install_panic_hook();
        let run_worker = settings.webhook_worker;
        metrics::install();
        let state = AppState::new(pool.clone(), settings, sender);
        Ok(Self {
            port,
            listener,
            router: router(state),
            pool,
            worker,
            run_worker,
            limits,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Serves and delivers webhooks until SIGTERM or Ctrl-C, then lets requests in flight
    /// finish and stops the worker between two attempts.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        tracing::info!(address = %self.listener.local_addr()?, "listening");
        let (stop, stopped) = watch::channel(false);
        let worker = self
            .run_worker
            .then(|| tokio::spawn(self.worker.run(stopped)));
        serve::serve(self.listener, self.router, self.limits, shutdown_signal()).await;
        let _ = stop.send(true);
        if let Some(worker) = worker {
            let _ = worker.await;
        }
        Ok(())
    }
}

pub fn router(state: AppState) -> Router {
    with_middleware(routes::router(), state)
}

/// The middleware every route is served through, from the outside in: the request id, rate
/// limits, the access log and request metrics, the trace span, panics turned into 500s, the
/// request timeout, the body limit, and the contract's 404 and 405.
pub fn with_middleware(routes: Router<AppState>, state: AppState) -> Router {
    Router::new()
        .merge(routes)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            state.settings.request_timeout,
            request_timeout,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let id = request
                    .headers()
                    .get(&request_id::HEADER)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default();
                tracing::info_span!("request", method = %request.method(), uri = %request.uri().path(), request_id = %id)
            }),
        )
        .layer(CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn(access_log::layer))
        .layer(middleware::from_fn(rate_limit::layer))
        .layer(middleware::from_fn(request_id::layer))
        .with_state(state)
}

/// Answers 503 `SERVICE_UNAVAILABLE` in the error envelope when a request outlives its bound
/// (dropping it cancels its work: a transaction it had not committed is rolled back).
async fn request_timeout(State(bound): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(bound, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::unavailable(anyhow::anyhow!(
            "the request took longer than {} ms",
            bound.as_millis()
        ))
        .into_response(),
    }
}

/// A panic in a request answers 500 `INTERNAL_ERROR` in the envelope (the panic hook has logged
/// its cause with the request id), and the connection stays usable.
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::new(ErrorCode::InternalError, "An internal error occurred").into_response()
}

/// Logs a panic inside a request once, as an error with its request id and place; any other
/// panic (start-up, a test's assertion) goes to the hook that was there before.
fn install_panic_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let request_id = request_id::current();
            if request_id.is_empty() {
                return previous(info);
            }
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let place = info
                .location()
                .map(|at| format!("{}:{}", at.file(), at.line()))
                .unwrap_or_default();
            tracing::error!(request_id = %request_id, place = %place, "request panicked: {message}");
        }));
    });
}

async fn not_found() -> impl IntoResponse {
    ApiError::new(ErrorCode::NotFound, "No such route")
}

async fn method_not_allowed() -> impl IntoResponse {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "This method is not allowed on this route",
    )
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
