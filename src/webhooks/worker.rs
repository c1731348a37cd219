//! The delivery worker: claims due deliveries from the outbox, posts them, logs each attempt and
//! schedules the next one. Any number of server processes can run it side by side.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use rand::Rng;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::watch;

use super::sender::{Outcome, Secrets, Sender};
use crate::config::Settings;
use crate::metrics;

/// A webhook failing without a single success for this long is disabled.
pub const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::days(3);
/// Extra time a claim is held beyond the attempt's own timeout.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// The delay before attempt `attempt + 1` (after `attempt` failures), ±10 % jitter so that
/// receivers coming back are not hit by every retry at once. `None` once the schedule is spent.
pub fn retry_delay(schedule: &[Duration], attempt: usize, jitter: f64) -> Option<Duration> {
    let base = schedule.get(attempt.checked_sub(1)?)?;
    Some(base.mul_f64(1.0 + 0.1 * jitter.clamp(-1.0, 1.0)))
}

#[derive(Clone)]
pub struct Worker {
    pool: PgPool,
    sender: Sender,
    schedule: Vec<Duration>,
    lease: Duration,
    batch: i64,
    poll: Duration,
}

#[derive(sqlx::FromRow)]
struct Claim {
    id: String,
    attempts: i32,
    url: String,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_expires_at: Option<DateTime<Utc>>,
    active: bool,
    payload: Value,
    /// Seconds from the event's write to this claim (the database's clock for both).
    lag_seconds: f64,
}

impl Worker {
    pub fn new(pool: PgPool, sender: Sender, settings: &Settings) -> Self {
        Self {
            pool,
            sender,
            schedule: settings.webhook_retry_schedule.clone(),
            lease: settings.webhook_timeout + LEASE_MARGIN,
            batch: i64::from(settings.webhook_concurrency),
            poll: settings.webhook_poll_interval,
        }
    }

    /// Delivers until `stop` turns true; sleeps `poll` whenever nothing is due.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let busy = match self.deliver_due().await {
                Ok(count) => count > 0,
                Err(error) => {
                    tracing::warn!("webhook delivery pass failed: {error}");
                    false
                }
            };
            if *stop.borrow() {
                return;
            }
            if !busy {
                tokio::select! {
                    _ = tokio::time::sleep(self.poll) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }

    /// One pass: claims up to a batch of due deliveries and attempts them concurrently.
    /// Returns how many were attempted.
    pub async fn deliver_due(&self) -> Result<usize, sqlx::Error> {
        let claims: Vec<Claim> = sqlx::query_as(
            "WITH due AS (
                 SELECT id FROM webhook_deliveries
                  WHERE status = 'PENDING' AND next_attempt_at <= now()
                    AND (locked_until IS NULL OR locked_until < now())
                  ORDER BY next_attempt_at
                  LIMIT $1
                  FOR UPDATE SKIP LOCKED
             ), claimed AS (
                 UPDATE webhook_deliveries d
                    SET locked_until = now() + make_interval(secs => $2), attempts = d.attempts + 1,
                        updated_at = now()
                   FROM due WHERE d.id = due.id
                 RETURNING d.id, d.attempts, d.webhook_id, d.event_id
             )
             SELECT c.id, c.attempts, w.url, w.secret, w.previous_secret, w.previous_secret_expires_at,
                    w.active, e.payload,
                    extract(epoch FROM now() - e.created_at)::float8 AS lag_seconds
               FROM claimed c
               JOIN webhooks w ON w.id = c.webhook_id
               JOIN events e ON e.id = c.event_id",
        )
        .bind(self.batch)
        .bind(self.lease.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        let count = claims.len();
        for result in join_all(claims.into_iter().map(|claim| self.attempt(claim))).await {
            if let Err(error) = result {
                tracing::warn!("recording a webhook attempt failed: {error}");
            }
        }
        Ok(count)
    }

    async fn attempt(&self, claim: Claim) -> Result<(), sqlx::Error> {
        if !claim.active {
            // The endpoint was disabled after this delivery was queued: nothing is sent.
            sqlx::query(
                "UPDATE webhook_deliveries SET status = 'FAILED', next_attempt_at = NULL, locked_until = NULL,
                        updated_at = now()
                  WHERE id = $1 AND attempts = $2",
            )
            .bind(&claim.id)
            .bind(claim.attempts)
            .execute(&self.pool)
            .await?;
            return Ok(());
        }
        let previous = claim.previous_secret.as_deref().filter(|_| {
            claim
                .previous_secret_expires_at
                .is_some_and(|at| at > Utc::now())
        });
        let secrets = Secrets {
            current: &claim.secret,
            previous,
        };
        if claim.attempts == 1 {
            metrics::webhook_first_attempt_lag(claim.lag_seconds);
        }
        let outcome = self.sender.send(&claim.url, &claim.payload, &secrets).await;
        metrics::webhook_attempt(outcome.succeeded(), outcome.gone());
        self.record(&claim, &outcome).await
    }

    /// Logs the attempt and moves the delivery (and, when it must, the webhook) on, in one
    /// transaction; a claim that is no longer ours (lease lost) changes nothing.
    async fn record(&self, claim: &Claim, outcome: &Outcome) -> Result<(), sqlx::Error> {
        let attempt = usize::try_from(claim.attempts).unwrap_or(usize::MAX);
        let jitter = rand::rng().random_range(-1.0..=1.0);
        let delay = retry_delay(&self.schedule, attempt, jitter);
        let mut tx = self.pool.begin().await?;
        let webhook: Option<(String, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT w.id, w.failing_since FROM webhooks w JOIN webhook_deliveries d ON d.webhook_id = w.id
              WHERE d.id = $1 AND d.attempts = $2 AND d.status = 'PENDING'
              FOR UPDATE OF w",
        )
        .bind(&claim.id)
        .bind(claim.attempts)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((webhook_id, failing_since)) = webhook else {
            return Ok(());
        };
        let now = Utc::now();
        let failing_too_long = failing_since.is_some_and(|since| now - since >= GIVE_UP_AFTER);
        let (status, next, disable) = if outcome.succeeded() {
            ("SUCCEEDED", None, None)
        } else if outcome.gone() {
            ("FAILED", None, Some("The receiver answered 410 Gone"))
        } else if failing_too_long {
            ("FAILED", None, Some("No successful delivery for 3 days"))
        } else {
            // A delay past the end of the calendar (a misconfigured schedule) ends the retries.
            let next_attempt = delay
                .and_then(|delay| chrono::Duration::from_std(delay).ok())
                .and_then(|delay| now.checked_add_signed(delay));
            match next_attempt {
                Some(at) => ("PENDING", Some(at), None),
                None => ("FAILED", None, None),
            }
        };
        sqlx::query(
            "INSERT INTO webhook_attempts (delivery_id, attempt, status_code, duration_ms, error, next_attempt_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&claim.id)
        .bind(claim.attempts)
        .bind(outcome.status.map(i32::from))
        .bind(i32::try_from(outcome.duration.as_millis()).unwrap_or(i32::MAX))
        .bind(&outcome.error)
        .bind(next)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $2, next_attempt_at = $3, locked_until = NULL, updated_at = now()
              WHERE id = $1",
        )
        .bind(&claim.id)
        .bind(status)
        .bind(next)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE webhooks
                SET failing_since = CASE WHEN $2 THEN NULL ELSE COALESCE(failing_since, now()) END,
                    active = active AND $3::text IS NULL,
                    disabled_reason = COALESCE($3, disabled_reason),
                    updated_at = now()
              WHERE id = $1",
        )
        .bind(&webhook_id)
        .bind(outcome.succeeded())
        .bind(disable)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_followed_with_ten_percent_jitter_then_spent() {
        let schedule = [Duration::from_secs(5), Duration::from_secs(60)];
        assert_eq!(retry_delay(&schedule, 1, 0.0), Some(Duration::from_secs(5)));
        assert_eq!(
            retry_delay(&schedule, 1, 1.0),
            Some(Duration::from_millis(5500))
        );
        assert_eq!(
            retry_delay(&schedule, 2, -1.0),
            Some(Duration::from_secs(54))
        );
        assert_eq!(retry_delay(&schedule, 3, 0.0), None);
        assert_eq!(retry_delay(&schedule, 0, 0.0), None);
    }
}
