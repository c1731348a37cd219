//! What this process's bookings last read of each department, and appointment ids allocated
//! ahead, so that a booking of a department read before goes straight to its one statement.
//!
//! Nothing here is trusted: the booking statement writes only if the department row is still
//! the version remembered (its `xmin`), the staff member named still active and the account's
//! threshold unchanged, so a change made by any process is seen by the next booking, which
//! then reads the department again; and a booking refused on what is remembered is decided
//! again on a fresh read before the refusal is answered (see `store::appointments::book`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use crate::store::departments::Department;
use crate::tenant::Tenant;

/// How many departments are remembered, at most: past that, all are forgotten at once (the
/// next booking of each reads it again). A department is well under 4 KiB, so the memo stays
/// under a few MiB.
const DEPARTMENTS: usize = 1024;

/// How many appointment ids a read allocates ahead for the bookings that skip theirs. An id
/// allocated and not used (when the process ends) is a gap in the sequence, as the id of a
/// refused booking already is.
pub const IDS_AHEAD: i64 = 32;

/// A department as bookings decide on it, and what their statement checks is still so.
#[derive(Debug, sqlx::FromRow)]
pub struct Known {
    #[sqlx(flatten)]
    pub department: Department,
    /// The row version (`xmin`) the department was read at.
    pub version: String,
    /// The low-balance threshold of the department's credit account when it was read, which
    /// decides the events a spend announces.
    pub low_balance_threshold: i64,
}

#[derive(Default)]
pub struct BookingMemo {
    inner: Mutex<Memo>,
}

#[derive(Default)]
struct Memo {
    departments: HashMap<(i64, bool, i64), Arc<Known>>,
    ids: VecDeque<i64>,
}

impl BookingMemo {
    fn memo(&self) -> std::sync::MutexGuard<'_, Memo> {
        // Every change below is one map or queue operation: a panic elsewhere cannot leave
        // the memo half-written, so a poisoned lock is still a sound one.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The department `id` of `tenant` as last read, with an id for the appointment; `None`
    /// when the department was not read yet or no id is left.
    pub fn recall(&self, tenant: Tenant, id: i64) -> Option<(Arc<Known>, i64)> {
        let mut memo = self.memo();
        let known = memo
            .departments
            .get(&(tenant.organization_id, tenant.livemode, id))?
            .clone();
        let appointment_id = memo.ids.pop_front()?;
        Some((known, appointment_id))
    }

    /// Remembers `known`, read just now, and the ids allocated with it.
    pub fn learn(&self, known: Arc<Known>, ids: impl IntoIterator<Item = i64>) {
        let department = &known.department;
        let key = (
            department.organization_id,
            department.livemode,
            department.id,
        );
        let mut memo = self.memo();
        if memo.departments.len() >= DEPARTMENTS && !memo.departments.contains_key(&key) {
            memo.departments.clear();
        }
        memo.departments.insert(key, known);
        memo.ids.extend(ids);
    }

    /// Forgets the department `id` of `tenant`, found changed.
    pub fn forget(&self, tenant: Tenant, id: i64) {
        self.memo()
            .departments
            .remove(&(tenant.organization_id, tenant.livemode, id));
    }

    /// Whether ids are left for more bookings without a read.
    pub fn ids_left(&self) -> usize {
        self.memo().ids.len()
    }
}
