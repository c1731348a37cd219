//! How many of a department's staff members are free over an interval. Pure: availability asks it
//! for every slot; the database's exclusion constraint (`appointments_worker_one_at_a_time`)
//! applies the same rule to every write: a worker is free over `[start, end)` when none of its
//! appointments that are not cancelled overlaps it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::load::Load;

/// `[start, end)`.
type Interval = (DateTime<Utc>, DateTime<Utc>);

/// The busy time of a set of workers (the ones a booking may name).
#[derive(Debug, Clone, Default)]
pub struct Staff {
    workers: BTreeSet<i64>,
    /// The load of each of those workers that has an appointment in the range looked at.
    busy: BTreeMap<i64, Load>,
}

impl Staff {
    /// `workers`, busy over `appointments` (`(worker, start, end)`); appointments of other
    /// workers are ignored.
    pub fn new(
        workers: impl IntoIterator<Item = i64>,
        appointments: impl IntoIterator<Item = (i64, DateTime<Utc>, DateTime<Utc>)>,
    ) -> Self {
        let workers: BTreeSet<i64> = workers.into_iter().collect();
        let mut intervals: BTreeMap<i64, Vec<Interval>> = BTreeMap::new();
        for (worker, start, end) in appointments {
            if workers.contains(&worker) {
                intervals.entry(worker).or_default().push((start, end));
            }
        }
        let busy = intervals
            .into_iter()
            .map(|(worker, intervals)| (worker, Load::new(intervals)))
            .collect();
        Self { workers, busy }
    }

    /// How many of the workers have no appointment overlapping `[start, end)`.
    pub fn free(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> i64 {
        let busy = self
            .busy
            .values()
            .filter(|load| load.peak(start, end) > 0)
            .count();
        let free = self.workers.len().saturating_sub(busy);
        i64::try_from(free).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    use super::*;

    fn minute(m: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, 1, 8, 0, 0).unwrap() + Duration::minutes(m)
    }

    #[test]
    fn back_to_back_appointments_leave_the_worker_free_at_the_edges() {
        let staff = Staff::new([7], [(7, minute(30), minute(60))]);
        assert_eq!(staff.free(minute(0), minute(30)), 1);
        assert_eq!(staff.free(minute(60), minute(90)), 1);
        assert_eq!(staff.free(minute(45), minute(75)), 0);
    }

    #[test]
    fn appointments_of_workers_outside_the_set_do_not_count() {
        let staff = Staff::new(
            [1, 2],
            [(3, minute(0), minute(30)), (1, minute(0), minute(30))],
        );
        assert_eq!(staff.free(minute(0), minute(30)), 1);
        assert_eq!(Staff::new([], []).free(minute(0), minute(30)), 0);
    }

    proptest! {
        #[test]
        fn a_worker_is_free_exactly_when_no_appointment_of_it_overlaps(
            appointments in prop::collection::vec((0_i64..4, 0_i64..200, 1_i64..90), 0..20),
            start in 0_i64..250,
            length in 1_i64..120,
        ) {
            let workers = [0_i64, 1, 2];
            let staff = Staff::new(
                workers,
                appointments.iter().map(|(w, s, d)| (*w, minute(*s), minute(s + d))),
            );
            let end = start + length;
            let brute = workers
                .iter()
                .filter(|w| !appointments.iter().any(|(x, s, d)| x == *w && *s < end && s + d > start))
                .count();
            prop_assert_eq!(staff.free(minute(start), minute(end)), i64::try_from(brute).unwrap());
        }
    }
}
