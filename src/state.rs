//! What every handler and extractor shares. In a module of its own, below `auth`, `routes` and
//! `startup`, so that none of them depends on another through it.

use std::sync::Arc;

use sqlx::PgPool;

use crate::booking_batches::BookingBatches;
use crate::booking_memo::BookingMemo;
use crate::config::Settings;
use crate::known_keys::KnownKeys;
use crate::rate_limit::Allowances;
use crate::webhooks::sender::Sender;

/// The state of the router: the pool, the settings, the webhook client, the rate-limit blocks.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    /// The webhook HTTP client (guarded, no redirects), shared with the delivery worker.
    pub sender: Sender,
    /// The blocks of rate-limit quota this process reserved.
    pub allowances: Arc<Allowances>,
    /// What this process's bookings read of their departments, and ids allocated ahead.
    pub bookings: Arc<BookingMemo>,
    /// The bookings of each department waiting to be written together.
    pub booking_batches: Arc<BookingBatches>,
    /// The API keys this process found valid.
    pub keys: Arc<KnownKeys>,
}

impl AppState {
    /// The state of a server process starting on `pool`, remembering nothing yet.
    pub fn new(pool: PgPool, settings: Settings, sender: Sender) -> Self {
        let bookings = Arc::new(BookingMemo::default());
        Self {
            booking_batches: Arc::new(BookingBatches::new(pool.clone(), bookings.clone())),
            pool,
            settings: Arc::new(settings),
            sender,
            allowances: Arc::default(),
            bookings,
            keys: Arc::default(),
        }
    }
}
