//! One connection of the pool kept between the writes of bookings, so that the next one skips
//! the pool's release check.
//!
//! A connection given back to sqlx's pool is checked before it is pooled again: one more round
//! trip (a `Sync`), whose answer wakes both this process and the database process, after every
//! statement (see `database::pool`). A booking written alone makes one statement, so that check
//! doubled its round trips. The writer of a booking instead keeps the connection after a write
//! that completed (its last statement answered, nothing owed), and the next write takes it
//! back at once.
//!
//! The kept connection is trusted as long as the pool trusts one it released
//! ([`TRUSTED_IDLE`]): older, it goes back to the pool, which checks it. So at most one
//! connection of the pool is held out of it, for at most about twice that bound when no
//! booking comes (a task gives it back). A write that failed, or was abandoned midway, does not
//! keep its connection: it goes back to the pool as any other, whose checks settle it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::time::Instant;

use crate::database::{self, TRUSTED_IDLE};

pub struct KeptConnection {
    pool: PgPool,
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    /// The connection, and when the write that left it completed.
    kept: Option<(PoolConnection<Postgres>, Instant)>,
    /// Whether a task is due to give back a connection kept past [`TRUSTED_IDLE`].
    returning: bool,
}

impl KeptConnection {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            slot: Mutex::default(),
        }
    }

    fn slot(&self) -> MutexGuard<'_, Slot> {
        // Every change under the lock is one assignment: a panic elsewhere cannot leave it
        // half-written.
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The kept connection if it is still trusted, else one of the pool.
    pub async fn take(&self) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        let kept = self.slot().kept.take();
        match kept {
            Some((connection, since)) if since.elapsed() <= TRUSTED_IDLE => Ok(connection),
            // Given back to the pool (dropped), which checks it.
            _ => database::acquire(&self.pool).await,
        }
    }

    /// Keeps `connection` for the next write when the write it served succeeded (`written`):
    /// its last statement completed and nothing is owed. Otherwise, or when one is kept
    /// already, `connection` goes back to the pool.
    pub fn keep<T, E>(
        self: &Arc<Self>,
        connection: PoolConnection<Postgres>,
        written: &Result<T, E>,
    ) {
        if written.is_err() {
            return;
        }
        let mut slot = self.slot();
        if slot.kept.is_some() {
            return;
        }
        slot.kept = Some((connection, Instant::now()));
        if !slot.returning {
            slot.returning = true;
            tokio::spawn(self.clone().give_back_when_stale());
        }
    }

    /// Gives the kept connection back to the pool once it is no longer trusted, checking every
    /// [`TRUSTED_IDLE`]; ends when nothing is kept (a write holds it: its `keep` starts a new
    /// task if needed).
    async fn give_back_when_stale(self: Arc<Self>) {
        loop {
            tokio::time::sleep(TRUSTED_IDLE).await;
            let stale = {
                let mut slot = self.slot();
                match &slot.kept {
                    Some((_, since)) if since.elapsed() <= TRUSTED_IDLE => continue,
                    _ => {
                        slot.returning = false;
                        slot.kept.take()
                    }
                }
            };
            // Dropped outside the lock: the pool checks it on a task of its own.
            drop(stale);
            return;
        }
    }
}
