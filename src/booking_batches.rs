//! Bookings of one department that arrive together are written together: one call, one
//! transaction and one commit flush for all of them (`store::appointments::write_together`).
//!
//! Every booking of a department waits on the department's row lock and on its organization's
//! credit account, both held until its transaction's commit is flushed: written one at a time,
//! a department takes at most one booking per commit flush, whatever the number of
//! connections. Here a booking of a department that nothing is being written for is written at
//! once, alone, in its own statement, as before. Those arriving while it is written wait for
//! it, then go together in the next call (up to [`MOST_TOGETHER`]), and so on while any wait.
//! Nothing ever waits for company.
//!
//! Each booking keeps its own outcome: it is the same statement in a subtransaction of its
//! own, so a refused one leaves the others as they are. When the call itself fails (the link
//! to the database, a statement bound), every booking of it gets that failure, as a lone
//! booking would; none of them is written again, since the call may have committed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::booking_memo::BookingMemo;
use crate::error::{is_transient, ApiError, ApiResult};
use crate::kept_connection::KeptConnection;
use crate::metrics;
use crate::store::appointments::{self as store, AppointmentRow, Remembered};

/// The most bookings written in one call: each is a subtransaction, and Postgres tracks up to
/// 64 of a transaction's subtransactions in shared memory before other sessions have to look
/// them up on disk.
pub const MOST_TOGETHER: usize = 32;

/// A department: its organization, mode and id.
type Department = (i64, bool, i64);

type Answer = ApiResult<Option<AppointmentRow>>;

/// The bookings waiting, by department, for the one being written in this process: a
/// department is in the map while something is written for it.
type Waiting = HashMap<Department, Vec<(Remembered, oneshot::Sender<Answer>)>>;

pub struct BookingBatches {
    /// Where each write takes its connection, and leaves it after a completed write.
    connection: Arc<KeptConnection>,
    memo: Arc<BookingMemo>,
    waiting: Mutex<Waiting>,
}

impl BookingBatches {
    pub fn new(pool: PgPool, memo: Arc<BookingMemo>) -> Self {
        Self {
            connection: Arc::new(KeptConnection::new(pool)),
            memo,
            waiting: Mutex::default(),
        }
    }

    fn waiting(&self) -> MutexGuard<'_, Waiting> {
        // Every change under the lock is one map or vector operation: a panic elsewhere
        // cannot leave it half-written.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `booking`, alone or with the others of its department that arrive meanwhile: the
    /// appointment, or `None` when it must be decided again on a fresh read (see
    /// `store::appointments::settle`), or the refusal.
    pub async fn write(self: &Arc<Self>, booking: Remembered) -> Answer {
        let department = booking.department();
        let (reply, answer) = oneshot::channel();
        let alone = {
            let mut waiting = self.waiting();
            match waiting.get_mut(&department) {
                Some(queue) => {
                    queue.push((booking, reply));
                    metrics::bookings_waiting(1.0);
                    None
                }
                None => {
                    waiting.insert(department, Vec::new());
                    Some(booking)
                }
            }
        };
        if let Some(booking) = alone {
            // Whatever becomes of this request, those who queued meanwhile are handed to a
            // writer (see `HandOver`).
            let _hand_over = HandOver {
                batches: self,
                department,
            };
            let mut connection = self.connection.take().await?;
            let written = store::write_alone(&mut connection, &self.memo, booking).await;
            self.connection.keep(connection, &written);
            return written;
        }
        answer.await.map_err(|_| {
            ApiError::internal(anyhow::anyhow!(
                "the writer of a booking ended without an answer"
            ))
        })?
    }

    /// Writes the department's waiting bookings, in calls of up to [`MOST_TOGETHER`], until
    /// none waits; the department then has nothing written for it until its next booking.
    async fn write_waiting(self: Arc<Self>, department: Department) {
        loop {
            let batch = {
                let mut waiting = self.waiting();
                let Some(queue) = waiting.get_mut(&department) else {
                    return;
                };
                if queue.is_empty() {
                    waiting.remove(&department);
                    return;
                }
                let take = queue.len().min(MOST_TOGETHER);
                metrics::bookings_waiting(-(take as f64));
                queue.drain(..take).collect::<Vec<_>>()
            };
            // Should this task end in a panic, the bookings still waiting get an error and
            // the department is freed (see `HandOver`); the batch's own replies are dropped,
            // an error to each of them too.
            let hand_over = HandOver {
                batches: &self,
                department,
            };
            self.write_batch(batch).await;
            // Written: the loop itself takes the next ones, or frees the department.
            std::mem::forget(hand_over);
        }
    }

    async fn write_batch(&self, batch: Vec<(Remembered, oneshot::Sender<Answer>)>) {
        let (bookings, replies): (Vec<Remembered>, Vec<_>) = batch.into_iter().unzip();
        metrics::bookings_written_together(bookings.len() as u64);
        let written = match self.connection.take().await {
            Ok(mut connection) => {
                let written = store::write_together(&mut connection, &bookings).await;
                self.connection.keep(connection, &written);
                written
            }
            Err(error) => Err(error),
        };
        match written {
            Ok(outcomes) => {
                for ((booking, outcome), reply) in bookings.into_iter().zip(outcomes).zip(replies) {
                    // A requester that went away no longer listens; its booking stands.
                    let _ = reply.send(store::settle(&self.memo, booking, outcome));
                }
            }
            Err(error) => {
                tracing::warn!(%error, bookings = replies.len(), "bookings written together failed");
                let failure = Failure::of(&error);
                for reply in replies {
                    let _ = reply.send(Err(failure.error()));
                }
            }
        }
    }
}

/// Hands a department's waiting bookings over when the one written before them is done, or
/// was abandoned (its request went away, or a panic): to a new writer task if any wait, else
/// the department is freed. So no booking waits for a writer that is gone.
struct HandOver<'a> {
    batches: &'a Arc<BookingBatches>,
    department: Department,
}

impl Drop for HandOver<'_> {
    fn drop(&mut self) {
        let mut waiting = self.batches.waiting();
        let empty = waiting.get(&self.department).is_none_or(Vec::is_empty);
        if empty {
            waiting.remove(&self.department);
        } else if std::thread::panicking() {
            // Their replies are dropped unanswered: each requester gets an internal error.
            let dropped = waiting
                .remove(&self.department)
                .map_or(0, |queue| queue.len());
            metrics::bookings_waiting(-(dropped as f64));
        } else {
            drop(waiting);
            tokio::spawn(self.batches.clone().write_waiting(self.department));
        }
    }
}

/// The failure of a call that wrote bookings together, answered to each of them as a lone
/// booking's failure would be.
struct Failure {
    transient: bool,
    message: String,
}

impl Failure {
    fn of(error: &sqlx::Error) -> Self {
        Self {
            transient: is_transient(error),
            message: error.to_string(),
        }
    }

    fn error(&self) -> ApiError {
        let cause = anyhow::anyhow!("bookings written together failed: {}", self.message);
        if self.transient {
            ApiError::unavailable(cause)
        } else {
            ApiError::internal(cause)
        }
    }
}
