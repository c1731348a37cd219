//! Rate limits per API key: `MONCRENEAU_RATE_LIMIT_PER_HOUR` requests in each clock hour, counted
//! in Postgres so that every server process shares one count. The count is taken while the key is
//! looked up (see `auth`); this middleware puts the quota on the response:
//! `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (Unix seconds), and
//! `Retry-After` on a 429.

use std::cell::Cell;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use chrono::Utc;

/// Where a key stands in its current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    /// Requests counted in this window, this one included.
    pub used: i64,
    /// When the window ends, in Unix seconds.
    pub reset: i64,
}

impl Quota {
    pub fn exceeded(&self) -> bool {
        self.used > i64::from(self.limit)
    }

    pub fn remaining(&self) -> i64 {
        i64::from(self.limit).saturating_sub(self.used).max(0)
    }

    /// Seconds until the window ends, at least 1.
    pub fn retry_after(&self, now: i64) -> i64 {
        self.reset.saturating_sub(now).max(1)
    }
}

tokio::task_local! {
    static QUOTA: Cell<Option<Quota>>;
}

/// Records the quota of the request being served (called by the key extractor).
pub fn record(quota: Quota) {
    let _ = QUOTA.try_with(|cell| cell.set(Some(quota)));
}

/// Middleware: serves the request, then adds the quota headers when a key was counted.
pub async fn layer(request: Request, next: Next) -> Response {
    QUOTA
        .scope(Cell::new(None), async move {
            let mut response = next.run(request).await;
            if let Some(quota) = QUOTA.with(Cell::get) {
                let limited = response.status() == StatusCode::TOO_MANY_REQUESTS;
                let headers = response.headers_mut();
                let mut set = |name: &'static str, value: i64| {
                    headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
                };
                set("x-ratelimit-limit", i64::from(quota.limit));
                set("x-ratelimit-remaining", quota.remaining());
                set("x-ratelimit-reset", quota.reset);
                if limited {
                    set("retry-after", quota.retry_after(Utc::now().timestamp()));
                }
            }
            response
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::Quota;

    #[test]
    fn the_quota_counts_down_and_is_exceeded_past_the_limit() {
        let quota = |used| Quota {
            limit: 3,
            used,
            reset: 1_000,
        };
        assert_eq!((quota(1).remaining(), quota(1).exceeded()), (2, false));
        assert_eq!((quota(3).remaining(), quota(3).exceeded()), (0, false));
        assert_eq!((quota(4).remaining(), quota(4).exceeded()), (0, true));
        assert_eq!(quota(4).retry_after(400), 600);
        assert_eq!(quota(4).retry_after(1_000), 1, "never 0");
    }
}
