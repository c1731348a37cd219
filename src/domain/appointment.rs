//! An appointment's rules that need no I/O: a booking request made of checked values, the
//! instant its `dateTime` names, and who gets the credit back on cancellation.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::domain::contact::{Email, ExternalUserId, Metadata, Notes, PersonName, Phone};
use crate::domain::datetime::{parse_request_date_time, DateTimeError, SUPPORTED_RANGE};
use crate::error::{ErrorCode, FieldError};

/// A booking request whose every field is valid (the department and worker are still to be
/// found, and the start to be read in the department's zone).
#[derive(Debug, Clone)]
pub struct NewAppointment {
    pub department_id: i64,
    pub worker_id: Option<i64>,
    pub date_time: RequestedStart,
    pub name: PersonName,
    pub external_user_id: Option<ExternalUserId>,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    pub notes: Option<Notes>,
    pub metadata: Metadata,
}

/// The edit of a PATCH whose given fields are all valid; `dateTime` is read once the
/// department's zone is known.
#[derive(Debug, Clone, Default)]
pub struct AppointmentEdit {
    pub date_time: Option<String>,
    pub name: Option<PersonName>,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    pub notes: Option<Notes>,
    pub metadata: Option<Metadata>,
    pub worker_id: Option<i64>,
}

/// A `dateTime` of a well-formed shape within the supported years; its instant depends on the
/// department's zone (see [`start_in`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedStart(String);

const DATE_TIME_FORMS: &str =
    "must be YYYY-MM-DDTHH:MM:SS (department time) or RFC 3339 with an offset";

impl RequestedStart {
    /// The form alone (the zone is not known yet).
    pub fn parse(text: String) -> Result<Self, FieldError> {
        match parse_request_date_time(&text, chrono_tz::UTC) {
            Err(DateTimeError::Malformed) => Err(invalid_date_time(DATE_TIME_FORMS)),
            Err(DateTimeError::OutOfRange) => Err(invalid_date_time(SUPPORTED_RANGE)),
            _ => Ok(Self(text)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The instant `text` names in `timezone`: `INVALID_DATE_TIME` when malformed or inside a DST
/// gap.
pub fn start_in(text: &str, timezone: Tz) -> Result<DateTime<Utc>, FieldError> {
    parse_request_date_time(text, timezone).map_err(|error| match error {
        DateTimeError::Malformed => invalid_date_time(DATE_TIME_FORMS),
        DateTimeError::Nonexistent => invalid_date_time(format!(
            "does not exist in {timezone} (daylight saving gap)"
        )),
        DateTimeError::OutOfRange => invalid_date_time(SUPPORTED_RANGE),
    })
}

fn invalid_date_time(message: impl Into<String>) -> FieldError {
    FieldError::new("dateTime", ErrorCode::InvalidDateTime, message)
}

/// A positive id, else the field's error.
pub fn positive_id(field: &str, value: Option<i64>) -> Result<Option<i64>, FieldError> {
    match value {
        Some(id) if id <= 0 => Err(FieldError::invalid(field, "must be a positive integer")),
        value => Ok(value),
    }
}

/// The refund rule: an appointment cancelled before it starts gives its credit back; once it
/// has started, the credit stays spent.
pub fn cancellation_refunds(cancelled_at: DateTime<Utc>, starts_at: DateTime<Utc>) -> bool {
    cancelled_at < starts_at
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    #[test]
    fn a_cancellation_before_the_start_refunds_the_credit() {
        let starts_at = Utc::now();
        assert!(cancellation_refunds(
            starts_at - Duration::seconds(1),
            starts_at
        ));
        assert!(cancellation_refunds(
            starts_at - Duration::days(30),
            starts_at
        ));
    }

    #[test]
    fn a_cancellation_from_the_start_on_refunds_nothing() {
        let starts_at = Utc::now();
        assert!(!cancellation_refunds(starts_at, starts_at));
        assert!(!cancellation_refunds(
            starts_at + Duration::minutes(5),
            starts_at
        ));
    }

    #[test]
    fn a_malformed_date_time_is_refused_before_the_zone_is_known() {
        let error = RequestedStart::parse("tomorrow".to_owned()).unwrap_err();
        assert_eq!(error.field, "dateTime");
        assert_eq!(error.code, ErrorCode::InvalidDateTime);
        assert!(RequestedStart::parse("2030-01-07T10:00:00".to_owned()).is_ok());
    }

    #[test]
    fn a_local_time_in_a_daylight_saving_gap_does_not_exist() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let error = start_in("2030-03-31T02:30:00", paris).unwrap_err();
        assert!(error.message.contains("daylight saving gap"), "{error:?}");
        assert!(start_in("2030-03-31T03:30:00", paris).is_ok());
    }

    #[test]
    fn ids_must_be_positive() {
        assert_eq!(positive_id("workerId", None).unwrap(), None);
        assert_eq!(positive_id("workerId", Some(3)).unwrap(), Some(3));
        assert_eq!(
            positive_id("workerId", Some(0)).unwrap_err().field,
            "workerId"
        );
    }
}
