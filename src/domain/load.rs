//! How many people a department serves at once. Pure: availability asks it for every slot; the
//! database's capacity trigger (`appointments_within_capacity`) applies the same rule to every
//! write, so that what availability lists is what a booking gets.
//!
//! The rule: an appointment that is not cancelled occupies the instants of `[starts_at, ends_at)`.
//! The load at an instant is the number of appointments occupying it; a slot's peak is the
//! highest load at any instant of the slot, and the slot has `capacity − peak` places left.

use chrono::{DateTime, Utc};

/// The load of a department over time: a step function built from appointment intervals.
#[derive(Debug, Clone, Default)]
pub struct Load {
    /// `(instant, load from that instant on)`, in time order, one entry per distinct instant
    /// where the load changes.
    steps: Vec<(DateTime<Utc>, i64)>,
}

impl Load {
    /// The load of these `[start, end)` intervals; empty intervals occupy nothing.
    pub fn new(intervals: impl IntoIterator<Item = (DateTime<Utc>, DateTime<Utc>)>) -> Self {
        Self::counted(intervals.into_iter().map(|(start, end)| (start, end, 1)))
    }

    /// The load of `count` appointments on each `[start, end)` interval.
    pub fn counted(
        intervals: impl IntoIterator<Item = (DateTime<Utc>, DateTime<Utc>, i64)>,
    ) -> Self {
        let mut changes: Vec<(DateTime<Utc>, i64)> = Vec::new();
        for (start, end, count) in intervals {
            if start < end && count > 0 {
                changes.push((start, count));
                changes.push((end, count.saturating_neg()));
            }
        }
        changes.sort_unstable_by_key(|(at, _)| *at);
        let mut steps: Vec<(DateTime<Utc>, i64)> = Vec::with_capacity(changes.len());
        let mut load = 0_i64;
        for (at, change) in changes {
            load = load.saturating_add(change);
            match steps.last_mut() {
                Some((last, value)) if *last == at => *value = load,
                _ => steps.push((at, load)),
            }
        }
        Self { steps }
    }

    /// The load at one instant.
    pub fn at(&self, instant: DateTime<Utc>) -> i64 {
        let after = self.steps.partition_point(|(at, _)| *at <= instant);
        after
            .checked_sub(1)
            .and_then(|index| self.steps.get(index))
            .map_or(0, |(_, load)| *load)
    }

    /// The highest load at any instant of `[start, end)` (0 for an empty interval).
    pub fn peak(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> i64 {
        if start >= end {
            return 0;
        }
        // The load only changes at steps: the peak is at `start` or at a step inside. The load
        // at `start` is that of the last step at or before it (as `at`, one search for both).
        let first_inside = self.steps.partition_point(|(at, _)| *at <= start);
        let at_start = first_inside
            .checked_sub(1)
            .and_then(|index| self.steps.get(index))
            .map_or(0, |(_, load)| *load);
        self.steps
            .get(first_inside..)
            .unwrap_or_default()
            .iter()
            .take_while(|(at, _)| *at < end)
            .map(|(_, load)| *load)
            .fold(at_start, i64::max)
    }

    /// Places left in `[start, end)` for a department serving `capacity` people at once.
    pub fn remaining(&self, capacity: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> i64 {
        capacity.saturating_sub(self.peak(start, end)).max(0)
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
    fn an_interval_occupies_its_start_but_not_its_end() {
        let load = Load::new([(minute(0), minute(30))]);
        assert_eq!(load.at(minute(0)), 1);
        assert_eq!(load.at(minute(29)), 1);
        assert_eq!(load.at(minute(30)), 0);
        assert_eq!(load.peak(minute(30), minute(60)), 0);
        assert_eq!(load.peak(minute(-30), minute(0)), 0);
    }

    #[test]
    fn a_shorter_slot_inside_a_longer_appointment_is_full() {
        // Booked 10:00–10:30 on a 30-minute grid, then the grid became 15 minutes.
        let load = Load::new([(minute(120), minute(150))]);
        assert_eq!(load.remaining(1, minute(135), minute(150)), 0);
        assert_eq!(load.remaining(1, minute(150), minute(165)), 1);
    }

    #[test]
    fn a_shifted_grid_meets_the_old_appointments_at_their_edges() {
        // Two desks, bookings 10:00–10:30 and 10:30–11:00; hours shifted by 5 minutes.
        let load = Load::new([(minute(120), minute(150)), (minute(150), minute(180))]);
        assert_eq!(load.peak(minute(125), minute(155)), 1);
        assert_eq!(load.remaining(2, minute(125), minute(155)), 1);
    }

    #[test]
    fn above_a_lowered_capacity_nothing_is_left_and_nothing_is_negative() {
        let three = [(minute(0), minute(30)); 3];
        assert_eq!(Load::new(three).remaining(2, minute(0), minute(30)), 0);
    }

    #[test]
    fn counted_intervals_weigh_as_many_single_ones() {
        let single = Load::new([(minute(0), minute(30)); 3]);
        let counted = Load::counted([(minute(0), minute(30), 3), (minute(5), minute(10), 0)]);
        assert_eq!(single.peak(minute(0), minute(30)), 3);
        assert_eq!(counted.peak(minute(0), minute(30)), 3);
        assert_eq!(counted.at(minute(30)), 0);
    }

    /// The brute-force definition: the highest count over every minute of the window.
    fn brute_peak(intervals: &[(i64, i64)], start: i64, end: i64) -> i64 {
        (start..end)
            .map(|t| {
                let occupied = intervals.iter().filter(|(s, e)| *s <= t && t < *e).count();
                i64::try_from(occupied).unwrap_or(i64::MAX)
            })
            .max()
            .unwrap_or(0)
    }

    proptest! {
        #[test]
        fn the_peak_is_the_highest_load_at_any_minute_of_the_window(
            intervals in prop::collection::vec((0_i64..200, 1_i64..90), 0..25),
            start in 0_i64..250,
            length in 0_i64..120,
        ) {
            let intervals: Vec<(i64, i64)> =
                intervals.into_iter().map(|(s, d)| (s, s + d)).collect();
            let load = Load::new(intervals.iter().map(|(s, e)| (minute(*s), minute(*e))));
            prop_assert_eq!(
                load.peak(minute(start), minute(start + length)),
                brute_peak(&intervals, start, start + length)
            );
        }
    }
}
