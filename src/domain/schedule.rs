//! Opening hours, closures and the slots they offer. Pure: the one place where availability and
//! booking both ask "is this a slot, and can it be booked now?", so the two never disagree.

use std::collections::BTreeMap;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::datetime::{is_supported_date, is_supported_instant};

pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Minutes since local midnight, 0..=1440 ("24:00" closes a day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockTime(u16);

impl ClockTime {
    pub fn parse(text: &str) -> Option<Self> {
        let (hours, minutes) = text.split_once(':')?;
        if hours.len() != 2 || minutes.len() != 2 {
            return None;
        }
        let hours: u16 = hours.parse().ok()?;
        let minutes: u16 = minutes.parse().ok()?;
        let total = hours * 60 + minutes;
        (minutes < 60 && total <= 1440).then_some(Self(total))
    }

    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl std::fmt::Display for ClockTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// One opening range of a day, as written in the contract: `{"start": "08:00", "end": "12:00"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeText {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpeningRange {
    pub start: ClockTime,
    pub end: ClockTime,
}

/// Weekly opening hours, Monday first. A day without ranges is closed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpeningHours {
    days: [Vec<OpeningRange>; 7],
}

impl OpeningHours {
    /// Validates the contract's map of weekday → ranges; errors name the bad day.
    pub fn parse(map: &BTreeMap<String, Vec<RangeText>>) -> Result<Self, String> {
        let mut hours = Self::default();
        for (day, ranges) in map {
            let index = WEEKDAYS
                .iter()
                .position(|name| name == day)
                .ok_or_else(|| format!("{day:?} is not a weekday (monday..sunday)"))?;
            let mut parsed = ranges
                .iter()
                .map(|range| {
                    let start = ClockTime::parse(&range.start);
                    let end = ClockTime::parse(&range.end);
                    match (start, end) {
                        (Some(start), Some(end)) if start < end => Ok(OpeningRange { start, end }),
                        (Some(_), Some(_)) => Err(format!("{day}: start must be before end")),
                        _ => Err(format!(
                            "{day}: times must be HH:MM between 00:00 and 24:00"
                        )),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            parsed.sort_by_key(|range| range.start);
            if parsed.windows(2).any(|pair| pair[1].start < pair[0].end) {
                return Err(format!("{day}: ranges overlap"));
            }
            hours.days[index] = parsed;
        }
        Ok(hours)
    }

    pub fn on(&self, weekday: Weekday) -> &[OpeningRange] {
        &self.days[weekday.num_days_from_monday() as usize]
    }

    /// The contract's form, every weekday present.
    pub fn to_map(&self) -> BTreeMap<String, Vec<RangeText>> {
        WEEKDAYS
            .iter()
            .zip(&self.days)
            .map(|(day, ranges)| {
                let ranges = ranges
                    .iter()
                    .map(|range| RangeText {
                        start: range.start.to_string(),
                        end: range.end.to_string(),
                    })
                    .collect();
                ((*day).to_owned(), ranges)
            })
            .collect()
    }
}

/// Days on which a department is closed, both ends inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Closure {
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A slot of the grid: its wall-clock start and its real instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub local: NaiveDateTime,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// Why a slot of the grid cannot be booked right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unbookable {
    Past,
    TooSoon,
    TooFarAhead,
}

/// Why a requested start is not a slot at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotOffered {
    Closed,
    Misaligned,
    Unbookable(Unbookable),
}

/// Everything about a department that decides its slots.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub timezone: Tz,
    pub slot_minutes: u16,
    pub opening_hours: OpeningHours,
    pub closures: Vec<Closure>,
    pub min_notice_minutes: i64,
    pub max_advance_days: i64,
}

/// The instant of a wall-clock time: `None` in a DST gap, the earlier one in a DST fold.
pub fn resolve_local(timezone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match timezone.from_local_datetime(&local) {
        LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, second) => Some(first.min(second).with_timezone(&Utc)),
        LocalResult::None => None,
    }
}

impl Schedule {
    pub fn is_closed_on(&self, date: NaiveDate) -> bool {
        self.closures
            .iter()
            .any(|closure| closure.start_date <= date && date <= closure.end_date)
    }

    /// Every slot of a local date, in time order. Starts that do not exist (DST gap) are skipped;
    /// repeated ones (DST fold) are offered once, at their earlier instant.
    pub fn slots_on(&self, date: NaiveDate) -> Vec<Slot> {
        if self.is_closed_on(date) {
            return Vec::new();
        }
        let step = self.slot_minutes;
        let mut slots = Vec::new();
        for range in self.opening_hours.on(date.weekday()) {
            let mut start = range.start.minutes();
            while start + step <= range.end.minutes() {
                if let Some(slot) = self.slot_from(date, start) {
                    slots.push(slot);
                }
                start += step;
            }
        }
        slots
    }

    /// The slot starting `minute` minutes after local midnight of `date`: none in a DST gap,
    /// and none whose instants fall outside the supported dates (the arithmetic is checked, so
    /// the ends of chrono's range cannot panic).
    fn slot_from(&self, date: NaiveDate, minute: u16) -> Option<Slot> {
        let local = date
            .and_time(NaiveTime::MIN)
            .checked_add_signed(Duration::minutes(i64::from(minute)))?;
        let starts_at = resolve_local(self.timezone, local)?;
        let ends_at =
            starts_at.checked_add_signed(Duration::minutes(i64::from(self.slot_minutes)))?;
        (is_supported_date(local.date())
            && is_supported_instant(starts_at)
            && is_supported_instant(ends_at))
        .then_some(Slot {
            local,
            starts_at,
            ends_at,
        })
    }

    /// The slot that starts at `starts_at`, if the grid has one.
    /// A start outside the opening ranges is `Closed`; inside one but off the grid, `Misaligned`.
    pub fn slot_at(&self, starts_at: DateTime<Utc>) -> Result<Slot, NotOffered> {
        let local = starts_at.with_timezone(&self.timezone).naive_local();
        if let Some(slot) = self
            .slots_on(local.date())
            .into_iter()
            .find(|slot| slot.starts_at == starts_at)
        {
            return Ok(slot);
        }
        let minute = (local.time() - NaiveTime::MIN).num_minutes();
        let open = !self.is_closed_on(local.date())
            && self
                .opening_hours
                .on(local.date().weekday())
                .iter()
                .any(|range| {
                    i64::from(range.start.minutes()) <= minute
                        && minute < i64::from(range.end.minutes())
                });
        Err(if open {
            NotOffered::Misaligned
        } else {
            NotOffered::Closed
        })
    }

    /// Whether a slot of the grid can be booked at `now`.
    pub fn bookability(&self, slot: &Slot, now: DateTime<Utc>) -> Result<(), Unbookable> {
        self.bookable_at(now).check(slot)
    }

    /// The bookability rules at `now`, worked out once for any number of slots (the local date
    /// of `now` is a time-zone conversion, the notice and horizon are checked arithmetic).
    pub fn bookable_at(&self, now: DateTime<Utc>) -> Bookable {
        // `now`'s local date, as `now.with_timezone(..).date_naive()` has it, checked.
        let offset = self
            .timezone
            .offset_from_utc_datetime(&now.naive_utc())
            .fix();
        let horizon = match now.naive_utc().checked_add_offset(offset) {
            Some(local) => local
                .date()
                .checked_add_signed(Duration::days(self.max_advance_days)),
            // At an end of chrono's calendar, where no local date can be written: before it
            // begins, no slot is within the horizon; past its end, every slot is past.
            None if now.year() < 1 => Some(NaiveDate::MIN),
            None => Some(NaiveDate::MAX),
        };
        Bookable {
            now,
            notice_ends: now.checked_add_signed(Duration::minutes(self.min_notice_minutes)),
            horizon,
        }
    }

    /// The slot a booking for `starts_at` would take, if it can be booked at `now`.
    pub fn offered_slot(
        &self,
        starts_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Slot, NotOffered> {
        let slot = self.slot_at(starts_at)?;
        self.bookability(&slot, now)
            .map_err(NotOffered::Unbookable)?;
        Ok(slot)
    }
}

/// What decides, at one instant, whether a slot of the grid can be booked: what
/// [`Schedule::bookability`] applies, worked out once by [`Schedule::bookable_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bookable {
    now: DateTime<Utc>,
    /// The earliest start the minimum notice allows; `None` past the end of the calendar.
    notice_ends: Option<DateTime<Utc>>,
    /// The last local date the booking horizon reaches; `None` past the end of the calendar.
    horizon: Option<NaiveDate>,
}

impl Bookable {
    /// Whether `slot` can be booked.
    pub fn check(&self, slot: &Slot) -> Result<(), Unbookable> {
        if slot.starts_at <= self.now {
            return Err(Unbookable::Past);
        }
        // Past the end of the calendar, the notice and the horizon reach every slot.
        if self
            .notice_ends
            .is_none_or(|notice_ends| slot.starts_at < notice_ends)
        {
            return Err(Unbookable::TooSoon);
        }
        if self
            .horizon
            .is_some_and(|horizon| slot.local.date() > horizon)
        {
            return Err(Unbookable::TooFarAhead);
        }
        Ok(())
    }
}

impl NotOffered {
    pub fn explain(self) -> &'static str {
        match self {
            NotOffered::Closed => "The department is closed on that day",
            NotOffered::Misaligned => "No slot of the department starts at that time",
            NotOffered::Unbookable(Unbookable::Past) => "That slot is in the past",
            NotOffered::Unbookable(Unbookable::TooSoon) => {
                "That slot is sooner than the department's minimum notice"
            }
            NotOffered::Unbookable(Unbookable::TooFarAhead) => {
                "That slot is beyond the department's booking horizon"
            }
        }
    }

    pub fn reason_code(self) -> &'static str {
        match self {
            NotOffered::Closed => "CLOSED",
            NotOffered::Misaligned => "MISALIGNED",
            NotOffered::Unbookable(Unbookable::Past) => "PAST",
            NotOffered::Unbookable(Unbookable::TooSoon) => "TOO_SOON",
            NotOffered::Unbookable(Unbookable::TooFarAhead) => "TOO_FAR_AHEAD",
        }
    }
}

/// For tests: Europe/Paris, open `start`-`end` every day, `step`-minute slots, no notice, two
/// years ahead.
#[cfg(test)]
pub(crate) fn paris_every_day(start: &str, end: &str, step: u16) -> Schedule {
    let ranges = vec![RangeText {
        start: start.into(),
        end: end.into(),
    }];
    let map = WEEKDAYS
        .iter()
        .map(|day| ((*day).to_owned(), ranges.clone()))
        .collect();
    Schedule {
        timezone: chrono_tz::Europe::Paris,
        slot_minutes: step,
        opening_hours: OpeningHours::parse(&map).unwrap(),
        closures: vec![],
        min_notice_minutes: 0,
        max_advance_days: 730,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris_night_shift(step: u16) -> Schedule {
        paris_every_day("00:00", "06:00", step)
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn spring_forward_skips_the_missing_hour_without_phantoms() {
        let slots = paris_night_shift(60).slots_on(date("2027-03-28"));
        let locals: Vec<String> = slots
            .iter()
            .map(|s| s.local.format("%H:%M").to_string())
            .collect();
        assert_eq!(locals, ["00:00", "01:00", "03:00", "04:00", "05:00"]);
        let instants: Vec<_> = slots.iter().map(|s| s.starts_at).collect();
        assert_eq!(
            instants,
            [
                utc("2027-03-27T23:00:00Z"),
                utc("2027-03-28T00:00:00Z"),
                utc("2027-03-28T01:00:00Z"),
                utc("2027-03-28T02:00:00Z"),
                utc("2027-03-28T03:00:00Z"),
            ]
        );
    }

    #[test]
    fn fall_back_offers_the_repeated_hour_once_at_its_earlier_instant() {
        let slots = paris_night_shift(60).slots_on(date("2027-10-31"));
        let pairs: Vec<(String, DateTime<Utc>)> = slots
            .iter()
            .map(|s| (s.local.format("%H:%M").to_string(), s.starts_at))
            .collect();
        assert_eq!(
            pairs,
            [
                ("00:00".to_owned(), utc("2027-10-30T22:00:00Z")),
                ("01:00".to_owned(), utc("2027-10-30T23:00:00Z")),
                ("02:00".to_owned(), utc("2027-10-31T00:00:00Z")),
                ("03:00".to_owned(), utc("2027-10-31T02:00:00Z")),
                ("04:00".to_owned(), utc("2027-10-31T03:00:00Z")),
                ("05:00".to_owned(), utc("2027-10-31T04:00:00Z")),
            ]
        );
    }

    #[test]
    fn a_slot_lasts_its_duration_in_real_time_across_the_gap() {
        let slots = paris_night_shift(60).slots_on(date("2027-03-28"));
        let one_am = slots[1];
        assert_eq!(one_am.ends_at - one_am.starts_at, Duration::minutes(60));
    }

    #[test]
    fn the_second_occurrence_of_a_folded_time_is_not_a_slot() {
        let schedule = paris_night_shift(60);
        assert_eq!(
            schedule.slot_at(utc("2027-10-31T01:00:00Z")),
            Err(NotOffered::Misaligned)
        );
        assert!(schedule.slot_at(utc("2027-10-31T00:00:00Z")).is_ok());
    }

    #[test]
    fn slots_fill_each_range_and_never_overrun_its_end() {
        let mut map = BTreeMap::new();
        map.insert(
            "monday".to_owned(),
            vec![
                RangeText {
                    start: "08:00".into(),
                    end: "09:00".into(),
                },
                RangeText {
                    start: "13:00".into(),
                    end: "13:50".into(),
                },
            ],
        );
        let schedule = Schedule {
            timezone: chrono_tz::Africa::Conakry,
            slot_minutes: 20,
            opening_hours: OpeningHours::parse(&map).unwrap(),
            closures: vec![],
            min_notice_minutes: 0,
            max_advance_days: 90,
        };
        let monday = date("2026-11-23");
        let times: Vec<String> = schedule
            .slots_on(monday)
            .iter()
            .map(|s| s.local.format("%H:%M").to_string())
            .collect();
        assert_eq!(times, ["08:00", "08:20", "08:40", "13:00", "13:20"]);
        assert!(schedule.slots_on(monday.succ_opt().unwrap()).is_empty());
    }

    #[test]
    fn a_closure_empties_its_days_inclusively() {
        let mut schedule = paris_night_shift(60);
        schedule.closures.push(Closure {
            start_date: date("2027-01-10"),
            end_date: date("2027-01-11"),
            reason: None,
        });
        assert!(schedule.slots_on(date("2027-01-11")).is_empty());
        assert!(!schedule.slots_on(date("2027-01-12")).is_empty());
        assert_eq!(
            schedule.slot_at(utc("2027-01-10T01:00:00Z")),
            Err(NotOffered::Closed)
        );
    }

    #[test]
    fn bookability_applies_notice_and_horizon() {
        let mut schedule = paris_night_shift(60);
        schedule.min_notice_minutes = 120;
        schedule.max_advance_days = 2;
        let now = utc("2027-01-10T00:30:00Z");
        let slot = |at: &str| schedule.slot_at(utc(at)).unwrap();
        assert_eq!(
            schedule.bookability(&slot("2027-01-10T00:00:00Z"), now),
            Err(Unbookable::Past)
        );
        assert_eq!(
            schedule.bookability(&slot("2027-01-10T02:00:00Z"), now),
            Err(Unbookable::TooSoon)
        );
        assert_eq!(
            schedule.bookability(&slot("2027-01-10T03:00:00Z"), now),
            Ok(())
        );
        assert_eq!(
            schedule.bookability(&slot("2027-01-12T03:00:00Z"), now),
            Ok(())
        );
        assert_eq!(
            schedule.bookability(&slot("2027-01-13T03:00:00Z"), now),
            Err(Unbookable::TooFarAhead)
        );
    }

    #[test]
    fn overlapping_or_inverted_ranges_are_rejected() {
        let parse = |ranges: &[(&str, &str)]| {
            let ranges = ranges
                .iter()
                .map(|(s, e)| RangeText {
                    start: (*s).into(),
                    end: (*e).into(),
                })
                .collect();
            OpeningHours::parse(&BTreeMap::from([("monday".to_owned(), ranges)]))
        };
        assert!(parse(&[("08:00", "12:00"), ("11:00", "13:00")]).is_err());
        assert!(parse(&[("12:00", "08:00")]).is_err());
        assert!(parse(&[("8:00", "12:00")]).is_err());
        assert!(parse(&[("08:00", "24:00")]).is_ok());
        assert!(parse(&[("08:00", "24:30")]).is_err());
        assert!(OpeningHours::parse(&BTreeMap::from([("funday".to_owned(), vec![])])).is_err());
    }

    /// A schedule open all day every day in `timezone`, with `step`-minute slots.
    fn always_open(timezone: Tz, step: u16) -> Schedule {
        let day = vec![RangeText {
            start: "00:00".into(),
            end: "24:00".into(),
        }];
        let map = WEEKDAYS
            .iter()
            .map(|name| ((*name).to_owned(), day.clone()))
            .collect();
        Schedule {
            timezone,
            slot_minutes: step,
            opening_hours: OpeningHours::parse(&map).unwrap(),
            closures: Vec::new(),
            min_notice_minutes: 525_600,
            max_advance_days: 730,
        }
    }

    /// `bookability` as it was written before its rules were worked out once per instant.
    fn bookability_per_slot(
        schedule: &Schedule,
        slot: &Slot,
        now: DateTime<Utc>,
    ) -> Result<(), Unbookable> {
        if slot.starts_at <= now {
            return Err(Unbookable::Past);
        }
        let notice_ends = now.checked_add_signed(Duration::minutes(schedule.min_notice_minutes));
        if notice_ends.is_none_or(|notice_ends| slot.starts_at < notice_ends) {
            return Err(Unbookable::TooSoon);
        }
        let today = now.with_timezone(&schedule.timezone).date_naive();
        let horizon = today.checked_add_signed(Duration::days(schedule.max_advance_days));
        if horizon.is_some_and(|horizon| slot.local.date() > horizon) {
            return Err(Unbookable::TooFarAhead);
        }
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn bookability_worked_out_once_judges_every_slot_as_before(
            zone in 0..chrono_tz::TZ_VARIANTS.len(),
            minutes in -3_000_i64..3_000,
            notice in 0_i64..3_000,
            advance in 0_i64..4,
            step in 5_u16..=240,
        ) {
            let mut schedule = always_open(chrono_tz::TZ_VARIANTS[zone], step);
            schedule.min_notice_minutes = notice;
            schedule.max_advance_days = advance;
            let now = utc("2026-03-29T00:30:00Z") + Duration::minutes(minutes);
            let bookable = schedule.bookable_at(now);
            for day in date("2026-03-27").iter_days().take(6) {
                for slot in schedule.slots_on(day) {
                    proptest::prop_assert_eq!(
                        bookable.check(&slot),
                        bookability_per_slot(&schedule, &slot, now)
                    );
                }
            }
        }

        #[test]
        fn any_date_and_zone_give_slots_or_nothing_never_a_panic(
            day in proptest::prop_oneof![
                NaiveDate::MIN.num_days_from_ce()..=NaiveDate::MAX.num_days_from_ce(),
                // Around the supported years, and at their edges.
                -2_i32..=3_652_062,
                3_652_055_i32..=3_652_062,
                -2_i32..=2,
            ],
            zone in 0..chrono_tz::TZ_VARIANTS.len(),
            step in 5_u16..=1440,
        ) {
            let Some(date) = NaiveDate::from_num_days_from_ce_opt(day) else {
                return Ok(());
            };
            let schedule = always_open(chrono_tz::TZ_VARIANTS[zone], step);
            let slots = schedule.slots_on(date);
            let now = Utc::now();
            for slot in &slots {
                proptest::prop_assert!(crate::domain::datetime::is_supported_instant(slot.starts_at));
                proptest::prop_assert!(slot.starts_at < slot.ends_at);
                let _ = schedule.bookability(slot, now);
            }
            if let Some(first) = slots.first() {
                proptest::prop_assert_eq!(schedule.slot_at(first.starts_at), Ok(*first));
            }
            let instant = date.and_time(NaiveTime::MIN).and_utc();
            let _ = schedule.slot_at(instant);
            let _ = schedule.offered_slot(instant, now);
            let _ = schedule.bookability(&Slot { local: instant.naive_utc(), starts_at: instant, ends_at: instant }, DateTime::<Utc>::MAX_UTC);
            let _ = schedule.bookability(&Slot { local: instant.naive_utc(), starts_at: instant, ends_at: instant }, DateTime::<Utc>::MIN_UTC);
        }
    }
}
