//! The delivery queue of the webhooks (the outbox the worker drains): claimed with a lease,
//! each attempt logged and the delivery, its endpoint and the endpoint's circuit moved on in one
//! transaction. Deliveries are written by the database itself when an event is (see
//! `store::events`); this module is the worker's side.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgPool, Postgres, Transaction};

use crate::webhooks::sender::Outcome;

/// A delivery claimed for one attempt, with what the attempt needs.
#[derive(sqlx::FromRow)]
pub struct Claim {
    pub id: String,
    pub attempts: i32,
    pub due_at: DateTime<Utc>,
    pub probe: bool,
    pub circuit_closed_at: Option<DateTime<Utc>>,
    pub url: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub active: bool,
    pub payload: Value,
    /// Seconds from the event's write to this claim (the database's clock for both).
    pub lag_seconds: f64,
}

/// Claims due deliveries, at most `$1`, each endpoint's in creation order, leaving out endpoints
/// whose circuit rests and never going past an endpoint's or an organization's share of attempts
/// in flight. The endpoints' rows are locked (skipping those another process is claiming), so
/// the per-endpoint share holds over every process.
const CLAIM: &str = "
    WITH endpoints AS (
        -- One probe per endpoint into its queue (the partial index by endpoint), so a claim
        -- costs the number of endpoints, not the length of a dead endpoint's backlog.
        SELECT w.id, w.organization_id, w.livemode, w.consecutive_failures >= $3 AS probing
          FROM webhooks w
         WHERE (w.circuit_open_until IS NULL OR w.circuit_open_until <= now())
           AND EXISTS (SELECT 1 FROM webhook_deliveries d
                        WHERE d.webhook_id = w.id AND d.status = 'PENDING' AND d.next_attempt_at <= now()
                          AND (d.locked_until IS NULL OR d.locked_until < now()))
         FOR UPDATE OF w SKIP LOCKED
    ), room AS (
        SELECT e.id, e.probing, LEAST(
                   CASE WHEN e.probing THEN 1 ELSE $4 END
                   - (SELECT count(*) FROM webhook_deliveries f
                       WHERE f.webhook_id = e.id AND f.status = 'PENDING'
                         AND f.locked_until IS NOT NULL AND f.locked_until >= now()),
                   $5 - (SELECT count(*) FROM webhook_deliveries f JOIN webhooks fw ON fw.id = f.webhook_id
                          WHERE fw.organization_id = e.organization_id AND fw.livemode = e.livemode
                            AND f.status = 'PENDING' AND f.locked_until IS NOT NULL
                            AND f.locked_until >= now())
               ) AS room
          FROM endpoints e
    ), picked AS (
        SELECT p.id, p.next_attempt_at AS due_at, r.probing
          FROM room r
         CROSS JOIN LATERAL (
             SELECT d.id, d.next_attempt_at FROM webhook_deliveries d
              WHERE d.webhook_id = r.id AND d.status = 'PENDING' AND d.next_attempt_at <= now()
                AND (d.locked_until IS NULL OR d.locked_until < now())
              ORDER BY d.created_at, d.id
              LIMIT GREATEST(r.room, 0)
              FOR UPDATE OF d SKIP LOCKED
         ) p
         LIMIT $1
    ), claimed AS (
        UPDATE webhook_deliveries d
           SET locked_until = now() + make_interval(secs => $2), attempts = d.attempts + 1,
               updated_at = now()
          FROM picked WHERE d.id = picked.id
        RETURNING d.id, d.attempts, d.webhook_id, d.event_id, picked.due_at, picked.probing
    )
    SELECT c.id, c.attempts, c.due_at, c.probing AS probe, w.circuit_closed_at, w.url, w.secret,
           w.previous_secret,
           w.previous_secret_expires_at, w.active, e.payload,
           extract(epoch FROM now() - e.created_at)::float8 AS lag_seconds
      FROM claimed c
      JOIN webhooks w ON w.id = c.webhook_id
      JOIN events e ON e.id = c.event_id";

/// How much one claim may take: `room` deliveries in all, each leased for `lease`; an endpoint
/// with `probe_after` consecutive failures gets a single probe; at most `endpoint` attempts in
/// flight per endpoint and `organization` per organization and mode, over every process.
pub struct Shares {
    pub room: i64,
    pub lease: Duration,
    pub probe_after: i32,
    pub endpoint: i64,
    pub organization: i64,
}

/// Claims what is due (see [`CLAIM`]), leasing each delivery and counting its attempt.
pub async fn claim(pool: &PgPool, shares: &Shares) -> Result<Vec<Claim>, sqlx::Error> {
    sqlx::query_as(CLAIM)
        .bind(shares.room)
        .bind(shares.lease.as_secs_f64())
        .bind(shares.probe_after)
        .bind(shares.endpoint)
        .bind(shares.organization)
        .fetch_all(pool)
        .await
}

/// Fails a claimed delivery without sending it (its endpoint was disabled since it was queued).
pub async fn fail_unsent(pool: &PgPool, claim: &Claim) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_deliveries SET status = 'FAILED', next_attempt_at = NULL, locked_until = NULL,
                updated_at = now()
          WHERE id = $1 AND attempts = $2",
    )
    .bind(&claim.id)
    .bind(claim.attempts)
    .execute(pool)
    .await?;
    Ok(())
}

/// The endpoint of a claimed delivery, locked while its attempt is recorded.
pub struct Recording {
    tx: Transaction<'static, Postgres>,
    webhook_id: String,
    pub failing_since: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
}

/// Locks the endpoint of `claim` to record its attempt; `None` when the claim is no longer ours
/// (its lease was lost and the delivery claimed again, or settled).
pub async fn start_recording(
    pool: &PgPool,
    claim: &Claim,
) -> Result<Option<Recording>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let webhook: Option<(String, Option<DateTime<Utc>>, i32)> = sqlx::query_as(
        "SELECT w.id, w.failing_since, w.consecutive_failures
           FROM webhooks w JOIN webhook_deliveries d ON d.webhook_id = w.id
          WHERE d.id = $1 AND d.attempts = $2 AND d.status = 'PENDING'
          FOR UPDATE OF w",
    )
    .bind(&claim.id)
    .bind(claim.attempts)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(webhook.map(
        |(webhook_id, failing_since, consecutive_failures)| Recording {
            tx,
            webhook_id,
            failing_since,
            consecutive_failures,
        },
    ))
}

/// What an attempt made of its delivery and endpoint, as the worker decided it.
pub struct AttemptRecord<'a> {
    pub claim: &'a Claim,
    pub outcome: &'a Outcome,
    /// `SUCCEEDED`, `PENDING` (retried at `next_attempt_at`) or `FAILED`.
    pub delivery_status: &'a str,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// `CIRCUIT_OPEN` when the circuit held the attempt back.
    pub waited_for: Option<&'a str>,
    /// Why the endpoint is disabled now, if it is.
    pub disable: Option<&'a str>,
    pub consecutive_failures: i32,
    pub circuit_open_until: Option<DateTime<Utc>>,
    /// The failures after which a circuit opens: a success past them closes it.
    pub probe_after: i32,
}

impl Recording {
    /// Logs the attempt, moves the delivery and the endpoint on, and commits.
    pub async fn finish(mut self, record: &AttemptRecord<'_>) -> Result<(), sqlx::Error> {
        let claim = record.claim;
        let outcome = record.outcome;
        sqlx::query(
            "INSERT INTO webhook_attempts (delivery_id, attempt, status_code, duration_ms, error, next_attempt_at,
                                           due_at, waited_for)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&claim.id)
        .bind(claim.attempts)
        .bind(outcome.status.map(i32::from))
        .bind(i32::try_from(outcome.duration.as_millis()).unwrap_or(i32::MAX))
        .bind(&outcome.error)
        .bind(record.next_attempt_at)
        .bind(claim.due_at)
        .bind(record.waited_for)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $2, next_attempt_at = $3, locked_until = NULL, updated_at = now()
              WHERE id = $1",
        )
        .bind(&claim.id)
        .bind(record.delivery_status)
        .bind(record.next_attempt_at)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "UPDATE webhooks
                SET failing_since = CASE WHEN $2 THEN NULL ELSE COALESCE(failing_since, now()) END,
                    active = active AND $3::text IS NULL,
                    disabled_reason = COALESCE($3, disabled_reason),
                    circuit_closed_at = CASE WHEN $2 AND consecutive_failures >= $6 THEN now()
                                             ELSE circuit_closed_at END,
                    consecutive_failures = $4,
                    circuit_open_until = $5,
                    updated_at = now()
              WHERE id = $1",
        )
        .bind(&self.webhook_id)
        .bind(outcome.succeeded())
        .bind(record.disable)
        .bind(record.consecutive_failures)
        .bind(record.circuit_open_until)
        .bind(record.probe_after)
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await
    }
}
