//! Rate limits per API key: `MONCRENEAU_RATE_LIMIT_PER_HOUR` requests in each clock hour, counted
//! in Postgres so that every server process shares one count. A process reserves requests of a
//! key's window in blocks (one row update per block, not per request) and admits from its block;
//! a block is at most an eighth of what remains (at most 100), so near the limit every request is
//! reserved on its own. Nothing is ever admitted past the limit. What it may under-admit: a
//! block a process reserved and did not use is lost to the other processes until the window
//! ends, so a key served by N processes may be refused at most N × 125 requests short of its
//! limit (each process's unused block of at most 100, an eighth of what remained when it was
//! reserved, plus fewer than 25 left of the block before), for the rest of that clock hour.
//! A process reserves its next block ahead, when fewer than 25 requests are left, while requests
//! go on spending the rest; one reservation per key is under way at a time (requests that find
//! the block spent wait for it rather than each taking the counter's row lock), and a process
//! that knows the window's row skips creating it: most requests cost no statement, a reservation
//! one (two for a key's first in the window). The key extractor (see
//! `auth`) asks [`admit`]; this middleware puts the quota on the response: `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining`, `X-RateLimit-Reset` (Unix seconds), and `Retry-After` on a 429.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use chrono::Utc;
use sqlx::PgPool;

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

/// The largest block a process reserves at once.
const LARGEST_BLOCK: i64 = 100;

/// What this process holds of each key's current window.
#[derive(Debug, Default)]
pub struct Allowances {
    blocks: Mutex<HashMap<String, Block>>,
    /// One reservation at a time per key: when a block runs out under load, the requests that
    /// find it empty wait for one reservation instead of each queueing on the counter's row lock.
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Past this many keys, the turns nobody waits on are dropped.
const TURNS_KEPT: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct Block {
    /// Start of the window, Unix seconds.
    window: i64,
    /// The window's count in the database after this process's last reservation.
    reserved: i64,
    /// Requests of this process's blocks not admitted yet.
    left: i64,
    /// Whether a reservation ahead of need is under way.
    refilling: bool,
}

/// Below this many requests left, the next block is reserved ahead, while requests go on
/// spending what is left: they wait for the database only when a block is spent before the next
/// one arrives.
const REFILL_BELOW: i64 = 25;

impl Allowances {
    /// Admits one request from this process's block, if it holds one for `window`; answers the
    /// requests counted so far (what the others reserved included).
    fn take(&self, key_id: &str, window: i64) -> Option<i64> {
        let mut blocks = self
            .blocks
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let block = blocks
            .get_mut(key_id)
            .filter(|block| block.window == window)?;
        if block.left <= 0 {
            return None;
        }
        block.left -= 1;
        Some(block.reserved - block.left)
    }

    /// Whether a reservation ahead should start now (and, if so, marks it under way).
    fn should_refill(&self, key_id: &str, window: i64) -> bool {
        let mut blocks = self
            .blocks
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        match blocks.get_mut(key_id) {
            Some(block)
                if block.window == window && block.left < REFILL_BELOW && !block.refilling =>
            {
                block.refilling = true;
                true
            }
            _ => false,
        }
    }

    /// A reservation ahead ended (kept or failed): the next low block may start another.
    fn refilled(&self, key_id: &str) {
        let mut blocks = self
            .blocks
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(block) = blocks.get_mut(key_id) {
            block.refilling = false;
        }
    }

    /// Whether this process knows the counter row of `key_id`'s `window` exists (it reserved
    /// from it): then a reservation needs no insert first.
    fn has_row(&self, key_id: &str, window: i64) -> bool {
        let blocks = self
            .blocks
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        blocks
            .get(key_id)
            .is_some_and(|block| block.window == window)
    }

    /// The turn to reserve for `key_id`.
    fn turn(&self, key_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self
            .turns
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if turns.len() >= TURNS_KEPT {
            turns.retain(|_, turn| Arc::strong_count(turn) > 1);
        }
        turns.entry(key_id.to_owned()).or_default().clone()
    }

    /// Keeps a new reservation of `granted` requests, which brought the window to `reserved`;
    /// blocks of past windows go.
    fn keep(&self, key_id: &str, window: i64, reserved: i64, granted: i64) {
        let mut blocks = self
            .blocks
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        blocks.retain(|_, block| block.window >= window);
        let left = blocks
            .get(key_id)
            .filter(|block| block.window == window)
            .map_or(0, |block| block.left);
        blocks.insert(
            key_id.to_owned(),
            Block {
                window,
                reserved,
                left: left + granted,
                refilling: false,
            },
        );
    }
}

/// The window that `now` (Unix seconds) falls in: its clock hour.
fn window_of(now: i64) -> i64 {
    now - now.rem_euclid(3600)
}

/// Counts one request of `key_id` against `limit` per hour: from this process's block when it
/// holds one, else by reserving a new block in the shared count (one statement). The answer is
/// `exceeded` once the window has nothing left to reserve.
pub async fn admit(
    pool: &PgPool,
    allowances: &Arc<Allowances>,
    key_id: &str,
    limit: u32,
) -> Result<Quota, sqlx::Error> {
    let now = Utc::now().timestamp();
    let window = window_of(now);
    let reset = window + 3600;
    let limit_count = i64::from(limit);
    if let Some(used) = allowances.take(key_id, window) {
        if allowances.should_refill(key_id, window) {
            let (pool, allowances, key_id) = (pool.clone(), allowances.clone(), key_id.to_owned());
            tokio::spawn(async move {
                let turn = allowances.turn(&key_id);
                let _turn = turn.lock().await;
                if let Err(error) = reserve(&pool, &allowances, &key_id, window, limit_count).await
                {
                    tracing::warn!("reserving rate-limit quota ahead failed: {error}");
                }
                allowances.refilled(&key_id);
            });
        }
        return Ok(Quota { limit, used, reset });
    }
    let turn = allowances.turn(key_id);
    let _turn = turn.lock().await;
    // The request that had the turn before (or a reservation ahead) may have brought a block.
    if let Some(used) = allowances.take(key_id, window) {
        return Ok(Quota { limit, used, reset });
    }
    if reserve(pool, allowances, key_id, window, limit_count).await? <= 0 {
        return Ok(Quota {
            limit,
            used: limit_count.saturating_add(1),
            reset,
        });
    }
    let used = allowances
        .take(key_id, window)
        .unwrap_or(limit_count.saturating_add(1));
    Ok(Quota { limit, used, reset })
}

/// Reserves a block of `key_id`'s `window` in the shared count and keeps it; answers how many
/// requests it granted (none once the window is spent). The caller holds the key's turn.
async fn reserve(
    pool: &PgPool,
    allowances: &Allowances,
    key_id: &str,
    window: i64,
    limit: i64,
) -> Result<i64, sqlx::Error> {
    if !allowances.has_row(key_id, window) {
        insert_window(pool, key_id, window).await?;
    }
    // The grant is a function of the count found under the row lock: an eighth of what
    // remains, at least one while anything remains, at most LARGEST_BLOCK; none once spent.
    let (reserved, granted): (i64, i64) = sqlx::query_as(RESERVE)
        .bind(key_id)
        .bind(window)
        .bind(limit)
        .bind(LARGEST_BLOCK)
        .fetch_one(pool)
        .await?;
    // Kept even when nothing was granted: the row exists, the next reservation skips the insert.
    allowances.keep(key_id, window, reserved, granted.max(0));
    Ok(granted)
}

/// Creates the counter row of `key_id`'s `window`, unless another request or process did.
async fn insert_window(pool: &PgPool, key_id: &str, window: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO rate_limit_windows (key_id, window_start, requests)
         VALUES ($1, to_timestamp($2), 0)
         ON CONFLICT (key_id, window_start) DO NOTHING",
    )
    .bind(key_id)
    .bind(window)
    .execute(pool)
    .await?;
    Ok(())
}

/// Reserves a block of the window's requests: `$1` key, `$2` window, `$3` limit, `$4` largest
/// block; answers the count after it and the block granted.
const RESERVE: &str = "
    UPDATE rate_limit_windows w
       SET requests = w.requests + g.granted
      FROM (SELECT key_id, window_start,
                   CASE WHEN requests >= $3 THEN 0
                        ELSE LEAST($4, GREATEST(1, ($3 - requests) / 8)) END AS granted
              FROM rate_limit_windows
             WHERE key_id = $1 AND window_start = to_timestamp($2)
               FOR UPDATE) g
     WHERE w.key_id = g.key_id AND w.window_start = g.window_start
    RETURNING w.requests::bigint, g.granted::bigint";

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
    use super::{window_of, Allowances, Quota};

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

    #[test]
    fn a_block_is_spent_one_request_at_a_time_then_runs_out() {
        let allowances = Allowances::default();
        assert_eq!(allowances.take("key_a", 3600), None, "nothing reserved yet");
        // Another process reserved 10 before; this one reserved 5: the count is at 15.
        allowances.keep("key_a", 3600, 15, 5);
        let used: Vec<_> = (0..6).map(|_| allowances.take("key_a", 3600)).collect();
        assert_eq!(
            used,
            [Some(11), Some(12), Some(13), Some(14), Some(15), None]
        );
        assert_eq!(allowances.take("key_b", 3600), None, "blocks are per key");
    }

    #[test]
    fn a_new_window_drops_what_was_left_of_the_last() {
        let allowances = Allowances::default();
        allowances.keep("key_a", 0, 5, 5);
        assert_eq!(
            allowances.take("key_a", 3600),
            None,
            "last hour's block is not this hour's"
        );
        allowances.keep("key_a", 3600, 2, 2);
        assert_eq!(allowances.take("key_a", 3600), Some(1));
        assert_eq!(allowances.take("key_a", 3600), Some(2));
        assert_eq!(allowances.take("key_a", 3600), None);
        assert_eq!(window_of(7199), 3600);
        assert_eq!(window_of(7200), 7200);
    }
}
