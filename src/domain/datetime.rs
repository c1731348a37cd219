//! Date-times of requests: a local `YYYY-MM-DDTHH:MM:SS` read in the department's zone, or an
//! RFC 3339 instant with an offset.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;

use super::schedule::resolve_local;

/// The first and last years every route accepts and answers: the years RFC 3339 can write
/// (four digits), minus year 0, which not every client's calendar has.
pub const FIRST_YEAR: i32 = 1;
pub const LAST_YEAR: i32 = 9999;

/// Why the supported range is refused, for error messages.
pub const SUPPORTED_RANGE: &str = "must be between the years 0001 and 9999";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateTimeError {
    /// Not a date-time in either accepted form.
    Malformed,
    /// A local time that the zone skips (DST gap).
    Nonexistent,
    /// A well-formed date-time outside the years 0001–9999, locally or in UTC.
    OutOfRange,
}

pub fn is_supported_date(date: NaiveDate) -> bool {
    (FIRST_YEAR..=LAST_YEAR).contains(&date.year())
}

pub fn is_supported_instant(at: DateTime<Utc>) -> bool {
    is_supported_date(at.date_naive())
}

/// Whether `text` starts with a four-digit year and a dash. chrono's `%Y` and `FromStr` also
/// read signed and longer years (`+262142-…`), which no route accepts.
fn has_plain_year(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() > 4 && bytes[..4].iter().all(u8::is_ascii_digit) && bytes[4] == b'-'
}

/// A date `YYYY-MM-DD` (as query parameters and closures write it) in the supported range.
pub fn parse_date(text: &str) -> Result<NaiveDate, DateTimeError> {
    if !has_plain_year(text) || text.len() != 10 {
        return Err(DateTimeError::Malformed);
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| DateTimeError::Malformed)?;
    if is_supported_date(date) {
        Ok(date)
    } else {
        Err(DateTimeError::OutOfRange)
    }
}

/// An RFC 3339 instant whose UTC form is in the supported range (`9999-12-31T23:59:59-01:00`
/// is not: in UTC it is in year 10000).
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, DateTimeError> {
    if !has_plain_year(text) {
        return Err(DateTimeError::Malformed);
    }
    let instant = DateTime::parse_from_rfc3339(text)
        .map_err(|_| DateTimeError::Malformed)?
        .with_timezone(&Utc);
    if is_supported_instant(instant) {
        Ok(instant)
    } else {
        Err(DateTimeError::OutOfRange)
    }
}

/// The instant a request means by `text`, in the department's zone `timezone`.
pub fn parse_request_date_time(text: &str, timezone: Tz) -> Result<DateTime<Utc>, DateTimeError> {
    if !has_plain_year(text) {
        return Err(DateTimeError::Malformed);
    }
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        let instant = instant.with_timezone(&Utc);
        return if is_supported_instant(instant) {
            Ok(instant)
        } else {
            Err(DateTimeError::OutOfRange)
        };
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
        .map_err(|_| DateTimeError::Malformed)?;
    if !is_supported_date(local.date()) {
        return Err(DateTimeError::OutOfRange);
    }
    let instant = resolve_local(timezone, local).ok_or(DateTimeError::Nonexistent)?;
    if is_supported_instant(instant) {
        Ok(instant)
    } else {
        Err(DateTimeError::OutOfRange)
    }
}

/// The contract's local form, `YYYY-MM-DDTHH:MM:SS`.
pub fn format_local(at: DateTime<Utc>, timezone: Tz) -> String {
    at.with_timezone(&timezone)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// RFC 3339 in UTC with a `Z`, to the second.
pub fn format_instant(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// When a record was written: RFC 3339 in UTC, to the millisecond.
pub fn format_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Paris;

    #[test]
    fn a_local_time_is_read_in_the_department_zone() {
        let at = parse_request_date_time("2027-01-15T10:00:00", Paris).unwrap();
        assert_eq!(format_instant(at), "2027-01-15T09:00:00Z");
    }

    #[test]
    fn an_offset_is_converted() {
        let at = parse_request_date_time("2027-01-15T10:00:00+02:00", Paris).unwrap();
        assert_eq!(format_instant(at), "2027-01-15T08:00:00Z");
        let at = parse_request_date_time("2027-01-15T10:00:00Z", Paris).unwrap();
        assert_eq!(format_local(at, Paris), "2027-01-15T11:00:00");
    }

    #[test]
    fn a_time_in_the_dst_gap_is_rejected_and_a_folded_one_takes_the_earlier_instant() {
        assert_eq!(
            parse_request_date_time("2027-03-28T02:30:00", Paris),
            Err(DateTimeError::Nonexistent)
        );
        let at = parse_request_date_time("2027-10-31T02:30:00", Paris).unwrap();
        assert_eq!(format_instant(at), "2027-10-31T00:30:00Z");
    }

    #[test]
    fn dates_outside_the_years_0001_to_9999_are_out_of_range() {
        use DateTimeError::*;
        let cases = [
            ("0000-12-31T10:00:00", OutOfRange, "year 0"),
            ("9999-12-31T23:59:59-23:59", OutOfRange, "year 10000 in UTC"),
            ("0001-01-01T00:30:00+01:00", OutOfRange, "year 0 in UTC"),
            ("+262142-12-31T10:00:00", Malformed, "a signed year"),
            ("-4800-01-01T10:00:00", Malformed, "a negative year"),
            ("10000-01-01T10:00:00", Malformed, "a five-digit year"),
        ];
        for (text, expected, why) in cases {
            assert_eq!(parse_request_date_time(text, Paris), Err(expected), "{why}");
        }
        assert_eq!(parse_date("-4800-01-01"), Err(Malformed));
        assert_eq!(parse_date("+262142-12-31"), Err(Malformed));
        assert_eq!(parse_date("0000-01-01"), Err(OutOfRange));
        assert!(parse_date("9999-12-31").is_ok());
        assert_eq!(parse_instant("9999-12-31T23:59:59-23:59"), Err(OutOfRange));
        assert!(parse_instant("9999-12-31T23:59:59Z").is_ok());
    }

    proptest::proptest! {
        #[test]
        fn no_string_makes_a_parser_panic(text in "\\PC{0,40}", year in "[+-]?[0-9]{1,7}") {
            let _ = parse_request_date_time(&text, Paris);
            let _ = parse_date(&text);
            let _ = parse_instant(&text);
            let shaped = format!("{year}-12-31T23:59:59-23:59");
            let _ = parse_request_date_time(&shaped, chrono_tz::Pacific::Kiritimati);
            let _ = parse_instant(&shaped);
        }

        #[test]
        fn an_accepted_instant_formats_as_rfc_3339(text in "[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](Z|[+-][01][0-9]:[0-5][0-9])") {
            if let Ok(at) = parse_instant(&text) {
                let shown = format_instant(at);
                proptest::prop_assert!(DateTime::parse_from_rfc3339(&shown).is_ok(), "{}", shown);
                proptest::prop_assert_eq!(shown.len(), 20);
            }
        }
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in [
            "tomorrow",
            "2027-13-01T10:00:00",
            "2027-01-15 10:00:00",
            "2027-01-15",
        ] {
            assert_eq!(
                parse_request_date_time(bad, Paris),
                Err(DateTimeError::Malformed),
                "{bad}"
            );
        }
    }
}
