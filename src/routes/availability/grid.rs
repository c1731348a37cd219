//! The slot grid of a local day, computed once and kept with each slot's JSON already written.
//!
//! A day's slots (`Schedule::slots_on`) are a pure function of the time zone, the slot length
//! and that weekday's opening ranges (a closure empties the day, and is checked per request);
//! so are the first five members of each slot's JSON object. [`Grids`] keeps them, keyed by
//! that content itself, not by a department id or version: a department whose hours change
//! looks up another key at once, on every server, and departments with the same hours share
//! their days. A request then only works out the load, the bookability and `remaining` of each
//! slot, and copies bytes.
//!
//! Held by the availability route, one per router built (so per server instance, never a
//! global): another process keeps its own, and since the key is the content, neither can
//! serve the other's stale grid.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;

use super::json::{AvailabilitySlot, Instant, LocalDateTime, LocalTime};
use crate::domain::schedule::{OpeningRange, Schedule, Slot};

/// The most bytes of days kept (rendered text, slots and keys, with an allowance per entry for
/// the map): 4 MiB, about 24,000 slots of the benchmark's shape (173 bytes each, all counted),
/// i.e. two and a half years of a weekday 08:00–17:00 department on a 15-minute grid. Past it
/// the whole cache is dropped and refilled as requests come (a simple bound: no entry outlives
/// it, and in-flight requests hold at most the days of their own range, 92 at most).
pub const MAX_BYTES: usize = 4 << 20;

/// The map's own cost per day kept, beside what the day holds: the key, the `Arc` and the
/// table's slot, rounded up.
const ENTRY_BYTES: usize = 128;

/// What decides the slots of one local date besides its closures.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DayKey {
    timezone: Tz,
    slot_minutes: u16,
    ranges: Box<[OpeningRange]>,
    date: NaiveDate,
}

/// One slot of a kept day: its instants (for the load and bookability) and where its JSON
/// prefix ends in [`Day::text`].
#[derive(Debug, Clone, Copy)]
pub struct GridSlot {
    pub slot: Slot,
    /// End of this slot's prefix in `Day::text` (it starts where the previous one ends).
    end: u32,
}

/// The slots of one local day, each with its JSON prefix:
/// `{"time":"08:00","dateTime":"…","startsAt":"…","endsAt":"…","available":`.
#[derive(Debug)]
pub struct Day {
    pub date: NaiveDate,
    /// `{"date":"2026-03-27","slots":[`, as serde writes `AvailabilityDay` up to its first slot.
    pub open: Box<[u8]>,
    pub slots: Box<[GridSlot]>,
    text: Box<[u8]>,
}

/// What a slot's object ends with when written with `available: false, remaining: 0`: cut off,
/// it leaves the prefix that every answer shares.
const PLACEHOLDER_END: &[u8] = b"false,\"remaining\":0}";

/// `{"date":…,"slots":[` ends with this (serde writes the members in field order).
const DAY_OPEN: &[u8] = b"\"slots\":[";

impl Day {
    /// The JSON prefix of slot `index` (empty past the end).
    pub fn prefix(&self, index: usize) -> &[u8] {
        let start = index
            .checked_sub(1)
            .and_then(|previous| self.slots.get(previous))
            .map_or(0, |slot| slot.end as usize);
        let end = self
            .slots
            .get(index)
            .map_or(start, |slot| slot.end as usize);
        self.text.get(start..end).unwrap_or_default()
    }

    /// The longest prefix of the day, for sizing a buffer.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// Renders `slots` of `date` as serde writes them.
    fn render(date: NaiveDate, slots: &[Slot]) -> Result<Self, serde_json::Error> {
        let mut text = Vec::with_capacity(slots.len() * 128);
        let mut grid = Vec::with_capacity(slots.len());
        for slot in slots {
            put_prefix(&mut text, slot)?;
            let end = u32::try_from(text.len()).map_err(serde::ser::Error::custom)?;
            grid.push(GridSlot { slot: *slot, end });
        }
        Ok(Self {
            date,
            open: day_open(date)?.into_boxed_slice(),
            slots: grid.into_boxed_slice(),
            text: text.into_boxed_slice(),
        })
    }

    fn bytes(&self) -> usize {
        self.open.len()
            + self.text.len()
            + self.slots.len() * std::mem::size_of::<GridSlot>()
            + std::mem::size_of::<Self>()
    }
}

/// `{"date":"…","slots":[`: `AvailabilityDay` as serde writes it, cut before its first slot.
pub fn day_open(date: NaiveDate) -> Result<Vec<u8>, serde_json::Error> {
    let mut open = b"{\"date\":".to_vec();
    serde_json::to_writer(&mut open, &date)?;
    open.push(b',');
    open.extend_from_slice(DAY_OPEN);
    Ok(open)
}

/// Appends the prefix of `slot`'s object, up to and with `"available":`, as serde writes
/// `AvailabilitySlot` (written whole, then cut: the same bytes by construction).
pub fn put_prefix(out: &mut Vec<u8>, slot: &Slot) -> Result<(), serde_json::Error> {
    let start = out.len();
    serde_json::to_writer(
        &mut *out,
        &AvailabilitySlot {
            time: LocalTime(slot.local),
            date_time: LocalDateTime(slot.local),
            starts_at: Instant(slot.starts_at),
            ends_at: Instant(slot.ends_at),
            available: false,
            remaining: 0,
        },
    )?;
    if out
        .get(start..)
        .is_some_and(|text| text.ends_with(PLACEHOLDER_END))
    {
        out.truncate(out.len() - PLACEHOLDER_END.len());
        Ok(())
    } else {
        Err(serde::ser::Error::custom(
            "a slot's JSON does not end with its availability",
        ))
    }
}

/// The days kept, per server instance.
#[derive(Debug, Default)]
pub struct Grids {
    kept: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    days: HashMap<DayKey, Arc<Day>>,
    bytes: usize,
}

impl Grids {
    /// The slots of each date of `dates` that `schedule` opens (closed days and days without
    /// a slot left out), in order: kept ones as they are, the others computed and kept.
    pub fn days(
        &self,
        schedule: &Schedule,
        dates: impl Iterator<Item = NaiveDate>,
    ) -> Result<Vec<Arc<Day>>, serde_json::Error> {
        let key = |date: NaiveDate| DayKey {
            timezone: schedule.timezone,
            slot_minutes: schedule.slot_minutes,
            ranges: schedule.opening_hours.on(date.weekday()).into(),
            date,
        };
        // Looked up under one lock; what is missing is computed outside it.
        let mut found: Vec<(DayKey, Option<Arc<Day>>)> = {
            let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
            dates
                .filter(|date| {
                    !schedule.is_closed_on(*date)
                        && !schedule.opening_hours.on(date.weekday()).is_empty()
                })
                .map(|date| {
                    let key = key(date);
                    let day = kept.days.get(&key).cloned();
                    (key, day)
                })
                .collect()
        };
        let mut computed = Vec::new();
        for (key, day) in &mut found {
            if day.is_none() {
                let slots = schedule.slots_on(key.date);
                let rendered = Arc::new(Day::render(key.date, &slots)?);
                computed.push((key.clone(), Arc::clone(&rendered)));
                *day = Some(rendered);
            }
        }
        if !computed.is_empty() {
            let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
            for (key, day) in computed {
                let bytes = day.bytes() + key.ranges.len() * 8 + ENTRY_BYTES;
                if kept.bytes + bytes > MAX_BYTES {
                    kept.days = HashMap::new();
                    kept.bytes = 0;
                }
                if bytes <= MAX_BYTES && kept.days.insert(key, day).is_none() {
                    kept.bytes += bytes;
                }
            }
        }
        Ok(found
            .into_iter()
            .filter_map(|(_, day)| day)
            .filter(|day| !day.slots.is_empty())
            .collect())
    }

    /// How many days are kept, and their bytes as counted against [`MAX_BYTES`].
    #[cfg(test)]
    pub fn kept(&self) -> (usize, usize) {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        (kept.days.len(), kept.bytes)
    }
}

/// The first and last instants the slots of `days` span.
pub fn span(days: &[Arc<Day>]) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let slots = || days.iter().flat_map(|day| day.slots.iter());
    Some((
        slots().map(|slot| slot.slot.starts_at).min()?,
        slots().map(|slot| slot.slot.ends_at).max()?,
    ))
}
