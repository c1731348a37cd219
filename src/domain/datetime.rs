//! Date-times of requests: a local `YYYY-MM-DDTHH:MM:SS` read in the department's zone, or an
//! RFC 3339 instant with an offset.

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;

use super::schedule::resolve_local;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateTimeError {
    /// Not a date-time in either accepted form.
    Malformed,
    /// A local time that the zone skips (DST gap).
    Nonexistent,
}

/// The instant a request means by `text`, in the department's zone `timezone`.
pub fn parse_request_date_time(text: &str, timezone: Tz) -> Result<DateTime<Utc>, DateTimeError> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant.with_timezone(&Utc));
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
        .map_err(|_| DateTimeError::Malformed)?;
    resolve_local(timezone, local).ok_or(DateTimeError::Nonexistent)
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
