//! The API keys this process found valid: what `auth::KnownKey` presumes without reading the
//! key again, for the routes whose writing statement checks the key itself.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};

use crate::domain::keys::Scope;
use crate::tenant::Tenant;

/// A key found valid: whom it speaks for, what it may do, until when.
#[derive(Debug, Clone)]
pub struct ValidKey {
    pub id: String,
    pub tenant: Tenant,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The keys this process found valid, with their expiry: what `auth::KnownKey` answers without a
/// read. Bounded: past [`KNOWN_KEYS`] keys, all are forgotten at once.
#[derive(Default)]
pub struct KnownKeys {
    keys: Mutex<HashMap<Vec<u8>, ValidKey>>,
}

/// How many keys are remembered, at most (a few hundred bytes each).
const KNOWN_KEYS: usize = 4096;

impl KnownKeys {
    fn keys(&self) -> MutexGuard<'_, HashMap<Vec<u8>, ValidKey>> {
        // Each change is one map operation: a panic elsewhere cannot leave it half-written.
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key whose digest is `hash`, if it was found valid and has not expired since.
    pub fn recall(&self, hash: &[u8]) -> Option<ValidKey> {
        let keys = self.keys();
        let key = keys.get(hash)?;
        let expired = key.expires_at.is_some_and(|at| at <= Utc::now());
        (!expired).then(|| key.clone())
    }

    pub fn learn(&self, hash: &[u8], key: ValidKey) {
        let mut keys = self.keys();
        if keys.len() >= KNOWN_KEYS && !keys.contains_key(hash) {
            keys.clear();
        }
        keys.insert(hash.to_vec(), key);
    }

    pub fn forget(&self, hash: &[u8]) {
        self.keys().remove(hash);
    }
}
