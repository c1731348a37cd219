//! The delivery worker: claims due deliveries from the outbox, posts them, logs each attempt and
//! schedules the next one. Any number of server processes can run it side by side.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::future::join_all;
use rand::Rng;
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::{watch, Notify, Semaphore};

use super::circuit::CircuitRule;
use super::rules::{self, Verdict};
use super::sender::{Outcome, Secrets, Sender};
use crate::config::Settings;
use crate::metrics;
use crate::store::deliveries::{self, AttemptRecord, Claim, Shares};

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

/// How many attempts may be in flight at once.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// In this process, all endpoints together.
    total: usize,
    /// To one endpoint, over every process.
    endpoint: i64,
    /// To the endpoints of one organization's mode (counted at each claim).
    organization: i64,
}

/// The channel on which committed deliveries wake the workers (see the migration's trigger).
const WAKE_CHANNEL: &str = "moncreneau_deliveries";

#[derive(Clone)]
pub struct Worker {
    pool: PgPool,
    sender: Sender,
    schedule: Vec<Duration>,
    lease: Duration,
    limits: Limits,
    circuit: CircuitRule,
    poll: Duration,
}

impl Worker {
    pub fn new(pool: PgPool, sender: Sender, settings: &Settings) -> Self {
        Self {
            pool,
            sender,
            schedule: settings.webhook_retry_schedule.clone(),
            lease: settings.webhook_timeout + LEASE_MARGIN,
            limits: Limits {
                total: usize::try_from(settings.webhook_concurrency).unwrap_or(usize::MAX),
                endpoint: i64::from(settings.webhook_endpoint_concurrency),
                organization: i64::from(settings.webhook_organization_concurrency),
            },
            circuit: settings.webhook_circuit(),
            poll: settings.webhook_poll_interval,
        }
    }

    /// Delivers until `stop` turns true. Each attempt runs on its own, so none waits for a slower
    /// one; a committed delivery wakes the loop at once (NOTIFY), a finished attempt too, and
    /// polling remains for retries falling due and for notices lost while the link was down.
    /// On stop, attempts in flight get their own time to finish.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.limits.total));
        let finished = Arc::new(Notify::new());
        let mut wake = Wake::listen(&self.pool).await;
        loop {
            if *stop.borrow() {
                break;
            }
            let room = slots.available_permits();
            let mut more = false;
            if room > 0 {
                match self.claim(room).await {
                    Ok(claims) => {
                        more = claims.len() == room;
                        for claim in claims {
                            let Ok(slot) = slots.clone().try_acquire_owned() else {
                                break;
                            };
                            let worker = self.clone();
                            let finished = finished.clone();
                            tokio::spawn(async move {
                                if let Err(error) = worker.attempt(claim).await {
                                    tracing::warn!("recording a webhook attempt failed: {error}");
                                }
                                drop(slot);
                                finished.notify_one();
                            });
                        }
                    }
                    Err(error) => tracing::warn!("claiming webhook deliveries failed: {error}"),
                }
            }
            if more {
                continue;
            }
            tokio::select! {
                () = finished.notified() => {}
                () = wake.next() => {}
                () = tokio::time::sleep(self.poll) => {}
                _ = stop.changed() => {}
            }
        }
        // Each attempt ends within its own timeout; one that does not is abandoned to its lease.
        let all = u32::try_from(self.limits.total).unwrap_or(u32::MAX);
        let grace = self.lease.saturating_sub(LEASE_MARGIN) + Duration::from_secs(1);
        let _ = tokio::time::timeout(grace, slots.acquire_many(all)).await;
    }

    /// Claims what is due and attempts it, waiting for every attempt; answers how many were
    /// made. For tests and tools that drain the queue step by step instead of running the loop.
    pub async fn deliver_due(&self) -> Result<usize, sqlx::Error> {
        let claims = self.claim(self.limits.total).await?;
        let count = claims.len();
        for result in join_all(claims.into_iter().map(|claim| self.attempt(claim))).await {
            if let Err(error) = result {
                tracing::warn!("recording a webhook attempt failed: {error}");
            }
        }
        Ok(count)
    }

    async fn claim(&self, room: usize) -> Result<Vec<Claim>, sqlx::Error> {
        deliveries::claim(
            &self.pool,
            &Shares {
                room: i64::try_from(room).unwrap_or(i64::MAX),
                lease: self.lease,
                probe_after: i32::try_from(self.circuit.failures).unwrap_or(i32::MAX),
                endpoint: self.limits.endpoint,
                organization: self.limits.organization,
            },
        )
        .await
    }

    async fn attempt(&self, claim: Claim) -> Result<(), sqlx::Error> {
        if !claim.active {
            // The endpoint was disabled after this delivery was queued: nothing is sent.
            return deliveries::fail_unsent(&self.pool, &claim).await;
        }
        let previous = rules::previous_secret_in_force(
            claim.previous_secret.as_deref(),
            claim.previous_secret_expires_at,
            Utc::now(),
        );
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

    /// Logs the attempt and moves the delivery, the webhook and its circuit on, in one
    /// transaction; a claim that is no longer ours (lease lost) changes nothing.
    async fn record(&self, claim: &Claim, outcome: &Outcome) -> Result<(), sqlx::Error> {
        let attempt = usize::try_from(claim.attempts).unwrap_or(usize::MAX);
        let jitter = rand::rng().random_range(-1.0..=1.0);
        let delay = retry_delay(&self.schedule, attempt, jitter);
        let Some(recording) = deliveries::start_recording(&self.pool, claim).await? else {
            return Ok(());
        };
        let now = Utc::now();
        // A delay past the end of the calendar (a misconfigured schedule) ends the retries.
        let next_attempt = delay
            .and_then(|delay| chrono::Duration::from_std(delay).ok())
            .and_then(|delay| now.checked_add_signed(delay));
        let verdict = rules::verdict(
            outcome.succeeded(),
            outcome.gone(),
            recording.failing_since,
            now,
            next_attempt,
        );
        let (status, next, disable) = match verdict {
            Verdict::Succeeded => ("SUCCEEDED", None, None),
            Verdict::Retry(at) => ("PENDING", Some(at), None),
            Verdict::Failed { disable } => ("FAILED", None, disable),
        };
        let consecutive = u32::try_from(recording.consecutive_failures).unwrap_or(0);
        let (consecutive, open_until) = if outcome.succeeded() {
            (0, None)
        } else {
            let consecutive = consecutive.saturating_add(1);
            let open_until = self
                .circuit
                .rest_after(consecutive)
                .and_then(|rest| chrono::Duration::from_std(rest).ok())
                .and_then(|rest| now.checked_add_signed(rest));
            (consecutive, open_until)
        };
        let waited = claim.probe
            || claim
                .circuit_closed_at
                .is_some_and(|closed| claim.due_at < closed);
        recording
            .finish(&AttemptRecord {
                claim,
                outcome,
                delivery_status: status,
                next_attempt_at: next,
                waited_for: waited.then_some("CIRCUIT_OPEN"),
                disable,
                consecutive_failures: i32::try_from(consecutive).unwrap_or(i32::MAX),
                circuit_open_until: open_until,
                probe_after: i32::try_from(self.circuit.failures).unwrap_or(i32::MAX),
            })
            .await
    }
}

/// Wake-ups from committed deliveries, over a connection of its own (LISTEN holds it); when the
/// link is down it waits a poll interval instead, and it reconnects by itself.
struct Wake {
    listener: Option<PgListener>,
}

impl Wake {
    async fn listen(pool: &PgPool) -> Self {
        // Its own one-connection pool: the listener holds its connection for good, and must not
        // take one of the requests'.
        let own = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with((*pool.connect_options()).clone());
        let listener = match PgListener::connect_with(&own).await {
            Ok(mut listener) => match listener.listen(WAKE_CHANNEL).await {
                Ok(()) => Some(listener),
                Err(error) => {
                    tracing::warn!("listening for deliveries failed, polling only: {error}");
                    None
                }
            },
            Err(error) => {
                tracing::warn!("listening for deliveries failed, polling only: {error}");
                None
            }
        };
        Self { listener }
    }

    /// Resolves at the next notice; never, when there is no listener (polling does the work).
    async fn next(&mut self) {
        match self.listener.as_mut() {
            Some(listener) => {
                if let Err(error) = listener.recv().await {
                    tracing::warn!("waiting for deliveries failed: {error}");
                    // recv reconnects on its next call; meanwhile, no busy loop.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            None => std::future::pending().await,
        }
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
