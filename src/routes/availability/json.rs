//! The shapes of `GET /departments/{id}/availability` on the wire, in the contract's field
//! order. The schemas of openapi.json (`Availability`, `AvailabilityDay`, `AvailabilitySlot`,
//! `LocalDateTime`) and the operation's query parameters are derived from these types.
//!
//! A 92-day range of short slots is thousands of slots of four date-times each: they are
//! written digit by digit into stack buffers while the response is serialized, never
//! formatted into `String`s first.

use std::borrow::Cow;

use aide::generate::GenContext;
use aide::openapi::{Operation, ParameterSchemaOrContent, ReferenceOr};
use aide::operation::{parameters_from_schema, ParamLocation};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike, Utc};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::datetime::format_instant;
use crate::error::{check_fields, ApiError, ApiResult, ErrorCode, FieldError};
use crate::extract::{date_param, QueryParameters};

/// The query of the operation, as sent (parsed by the handler, so that every bad field is
/// named in one 400).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
// Only its fields are written in the spec, as query parameters.
#[schemars(inline)]
pub struct AvailabilityQuery {
    // Optional in Rust so that a missing date is named in the 400 (the spec says required).
    /// First local date (inclusive). Missing: 400 MISSING_REQUIRED_FIELD; malformed: 400 INVALID_REQUEST.
    #[schemars(with = "String", extend("format" = "date"))]
    pub start_date: Option<String>,
    /// Last local date (inclusive); not before startDate, the range covering at most 92 days.
    #[schemars(with = "String", extend("format" = "date"))]
    pub end_date: Option<String>,
    /// false (default): only bookable slots, and only days having one. true: every slot of the grid, with `available: false` where full, past, too soon or too far ahead.
    #[schemars(with = "Option<bool>", extend("type" = "boolean", "default" = false))]
    pub include_unavailable: Option<bool>,
    /// A staff member of the department: list the slots POST /appointments accepts with this `workerId`. Not a positive integer: 400 INVALID_REQUEST; not a worker of the department: 404 WORKER_NOT_FOUND.
    #[schemars(with = "Option<i64>", range(min = 1), extend("type" = "integer"))]
    pub worker_id: Option<i64>,
}

/// The longest range one request may ask for, both ends included.
const MAX_DAYS: i64 = 92;

/// A valid query.
pub struct AvailabilityRequest {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub include_unavailable: bool,
    pub worker_id: Option<i64>,
}

fn parse_date(field: &str, value: Option<&str>, errors: &mut Vec<FieldError>) -> Option<NaiveDate> {
    let Some(text) = value else {
        errors.push(FieldError::missing(field));
        return None;
    };
    date_param(field, text)
        .map_err(|error| errors.push(error))
        .ok()
}

impl AvailabilityQuery {
    /// The range and options, or a 400 naming every bad field.
    pub fn parse(self) -> ApiResult<AvailabilityRequest> {
        let mut errors = Vec::new();
        let start = parse_date("startDate", self.start_date.as_deref(), &mut errors);
        let end = parse_date("endDate", self.end_date.as_deref(), &mut errors);
        if let (Some(start), Some(end)) = (start, end) {
            if end < start {
                errors.push(FieldError::new(
                    "endDate",
                    ErrorCode::InvalidRequest,
                    "must not be before startDate",
                ));
            } else if (end - start).num_days() + 1 > MAX_DAYS {
                errors.push(FieldError::new(
                    "endDate",
                    ErrorCode::InvalidRequest,
                    "the range may cover at most 92 days",
                ));
            }
        }
        if self.worker_id.is_some_and(|id| id <= 0) {
            errors.push(FieldError::new(
                "workerId",
                ErrorCode::InvalidRequest,
                "must be a positive integer",
            ));
        }
        check_fields(errors)?;
        let (Some(start), Some(end)) = (start, end) else {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "startDate and endDate are required",
            ));
        };
        Ok(AvailabilityRequest {
            start,
            end,
            include_unavailable: self.include_unavailable.unwrap_or(false),
            worker_id: self.worker_id,
        })
    }
}

/// The query parameters in the order a reader expects them (the schema sorts them by name).
const PARAMETERS: [&str; 4] = ["startDate", "endDate", "includeUnavailable", "workerId"];

/// Its fields as query parameters, in order, the dates with an example each; each description
/// is the parameter's, not repeated in its schema.
impl QueryParameters for AvailabilityQuery {
    fn document(context: &mut GenContext, operation: &mut Operation) {
        let schema = context.schema.subschema_for::<Self>();
        let mut parameters = parameters_from_schema(context, schema, ParamLocation::Query);
        parameters.sort_by_key(|parameter| {
            PARAMETERS
                .iter()
                .position(|name| *name == parameter.parameter_data_ref().name)
        });
        for mut parameter in parameters {
            let data = parameter.parameter_data_mut();
            data.example = match data.name.as_str() {
                "startDate" => Some("2026-02-01".into()),
                "endDate" => Some("2026-02-28".into()),
                _ => None,
            };
            if let ParameterSchemaOrContent::Schema(schema) = &mut data.format {
                schema.json_schema.remove("description");
            }
            operation.parameters.push(ReferenceOr::Item(parameter));
        }
    }
}

/// The slots of a department per local day.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(example = Availability::example())]
pub struct Availability {
    pub department_id: i64,
    pub timezone: String,
    #[schemars(with = "String", extend("format" = "date"))]
    pub start_date: NaiveDate,
    #[schemars(with = "String", extend("format" = "date"))]
    pub end_date: NaiveDate,
    /// Days in order; a day with no listed slot is left out. Empty for an inactive department. Empty for a deactivated worker.
    pub availability: Vec<AvailabilityDay>,
    /// The `workerId` asked for, or null.
    pub worker_id: Option<i64>,
}

impl Availability {
    fn example() -> Self {
        let local = NaiveDate::from_ymd_opt(2026, 2, 2)
            .and_then(|day| day.and_hms_opt(8, 0, 0))
            .unwrap_or_default();
        let starts_at = local.and_utc();
        Self {
            department_id: 5,
            timezone: "Africa/Conakry".to_owned(),
            start_date: NaiveDate::from_ymd_opt(2026, 2, 1).unwrap_or_default(),
            end_date: NaiveDate::from_ymd_opt(2026, 2, 28).unwrap_or_default(),
            availability: vec![AvailabilityDay {
                date: local.date(),
                slots: vec![AvailabilitySlot {
                    time: LocalTime(local),
                    date_time: LocalDateTime(local),
                    starts_at: Instant(starts_at),
                    ends_at: Instant(starts_at + chrono::Duration::minutes(15)),
                    available: true,
                    remaining: 3,
                }],
            }],
            worker_id: None,
        }
    }
}

/// The listed slots of one local day.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AvailabilityDay {
    #[schemars(with = "String", extend("format" = "date"))]
    pub date: NaiveDate,
    #[schemars(length(min = 1))]
    pub slots: Vec<AvailabilitySlot>,
}

/// One slot of the grid.
// Read back by its own `Deserialize` (below): `time` is read as the time of `dateTime`.
#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilitySlot {
    pub time: LocalTime,
    pub date_time: LocalDateTime,
    /// Start instant, UTC
    pub starts_at: Instant,
    /// End instant, UTC
    pub ends_at: Instant,
    /// Whether `POST /appointments` accepts this slot now.
    pub available: bool,
    /// Places left in the slot: capacity minus the highest number of non-cancelled appointments occupying any instant of it, whatever grid they were booked on (never below 0). For a staff member (`workerId`), at most 1: 1 when the worker is free over the slot and a place is left, else 0. Without `workerId` when the department requires one, at most the number of active workers free over the slot.
    #[schemars(range(min = 0))]
    pub remaining: i64,
}

/// The local start of a slot, written `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime(pub NaiveDateTime);

/// A wall-clock date-time, written `YYYY-MM-DDTHH:MM:SS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalDateTime(pub NaiveDateTime);

/// An instant, written `YYYY-MM-DDTHH:MM:SSZ` (as `format_instant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for LocalDateTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S")
            .map(Self)
            .map_err(|_| D::Error::custom(format!("{text:?} is not YYYY-MM-DDTHH:MM:SS")))
    }
}

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|at| Self(at.with_timezone(&Utc)))
            .map_err(|_| D::Error::custom(format!("{text:?} is not an RFC 3339 instant")))
    }
}

/// A slot as written: `time` alone carries no date, so it is read as the time of `dateTime`,
/// which it must match.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SlotText {
    time: String,
    date_time: LocalDateTime,
    starts_at: Instant,
    ends_at: Instant,
    available: bool,
    remaining: i64,
}

impl<'de> Deserialize<'de> for AvailabilitySlot {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let slot = SlotText::deserialize(deserializer)?;
        let time = LocalTime(slot.date_time.0);
        let written = serde_json::to_value(time).map_err(D::Error::custom)?;
        if written != slot.time.as_str() {
            return Err(D::Error::custom(format!(
                "time {:?} is not the time of dateTime {}",
                slot.time, slot.date_time.0
            )));
        }
        Ok(Self {
            time,
            date_time: slot.date_time,
            starts_at: slot.starts_at,
            ends_at: slot.ends_at,
            available: slot.available,
            remaining: slot.remaining,
        })
    }
}

/// Writes `value` as `N` decimal digits, zero-padded, at the start of `out`.
fn put_digits<const N: usize>(out: &mut [u8], mut value: u32) {
    for byte in out[..N].iter_mut().rev() {
        // `value % 10` is below 10: the cast cannot truncate.
        *byte = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// `YYYY-MM-DDTHH:MM:SS` into the first 19 bytes of `out`; `None` when chrono would not write
/// four digits of year (outside 0000–9999) or a leap second (`:60`): those go through chrono.
fn put_date_time(out: &mut [u8], at: NaiveDateTime) -> Option<()> {
    let year = u32::try_from(at.year()).ok().filter(|year| *year <= 9999)?;
    if at.nanosecond() >= 1_000_000_000 {
        return None;
    }
    put_digits::<4>(&mut out[0..], year);
    out[4] = b'-';
    put_digits::<2>(&mut out[5..], at.month());
    out[7] = b'-';
    put_digits::<2>(&mut out[8..], at.day());
    out[10] = b'T';
    put_digits::<2>(&mut out[11..], at.hour());
    out[13] = b':';
    put_digits::<2>(&mut out[14..], at.minute());
    out[16] = b':';
    put_digits::<2>(&mut out[17..], at.second());
    Some(())
}

fn serialize_ascii<S: Serializer>(serializer: S, text: &[u8]) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(std::str::from_utf8(text).map_err(S::Error::custom)?)
}

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = [0u8; 5];
        put_digits::<2>(&mut text[0..], self.0.hour());
        text[2] = b':';
        put_digits::<2>(&mut text[3..], self.0.minute());
        serialize_ascii(serializer, &text)
    }
}

impl Serialize for LocalDateTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = [0u8; 19];
        match put_date_time(&mut text, self.0) {
            Some(()) => serialize_ascii(serializer, &text),
            None => serializer.collect_str(&self.0.format("%Y-%m-%dT%H:%M:%S")),
        }
    }
}

impl Serialize for Instant {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = [0u8; 20];
        match put_date_time(&mut text, self.0.naive_utc()) {
            Some(()) => {
                text[19] = b'Z';
                serialize_ascii(serializer, &text)
            }
            None => serializer.serialize_str(&format_instant(self.0)),
        }
    }
}

impl JsonSchema for LocalTime {
    fn schema_name() -> Cow<'static, str> {
        "LocalTime".into()
    }

    // Written in place, as the contract always did.
    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[0-9]{2}:[0-9]{2}$",
            "description": "Local start HH:MM",
            "examples": ["08:00"],
        })
    }
}

impl JsonSchema for LocalDateTime {
    fn schema_name() -> Cow<'static, str> {
        "LocalDateTime".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A wall-clock date-time `YYYY-MM-DDTHH:MM:SS` without offset, in the department's time zone.",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$",
            "examples": ["2026-02-15T10:00:00"],
        })
    }
}

impl JsonSchema for Instant {
    fn schema_name() -> Cow<'static, str> {
        "Instant".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "date-time"})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<T: Serialize>(value: T) -> String {
        serde_json::to_value(value)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    #[test]
    fn an_availability_reads_back_as_it_was_written() {
        let written = serde_json::to_string(&Availability::example()).unwrap();
        let read: Availability = serde_json::from_str(&written).unwrap();
        assert_eq!(read, Availability::example());
    }

    #[test]
    fn a_slot_whose_time_is_not_that_of_its_date_time_is_refused() {
        let mut slot =
            serde_json::to_value(&Availability::example().availability[0].slots[0]).unwrap();
        slot["time"] = "09:00".into();
        let error = serde_json::from_value::<AvailabilitySlot>(slot).unwrap_err();
        assert!(
            error.to_string().contains("is not the time of dateTime"),
            "{error}"
        );
    }

    #[test]
    fn date_times_are_written_as_chrono_writes_them() {
        let ends = [
            (0, 1, 1, 0, 0, 0),
            (1, 1, 1, 0, 0, 0),
            (2026, 3, 29, 1, 0, 0),
            (2026, 12, 31, 23, 59, 59),
            (9999, 12, 31, 23, 45, 0),
            (10000, 1, 1, 0, 15, 0),
            (-1, 12, 31, 23, 0, 0),
        ];
        for (year, month, day, hour, minute, second) in ends {
            let local = NaiveDate::from_ymd_opt(year, month, day)
                .and_then(|date| date.and_hms_opt(hour, minute, second))
                .unwrap();
            let at = local.and_utc();
            assert_eq!(text(Instant(at)), format_instant(at), "{local}");
            assert_eq!(
                text(LocalDateTime(local)),
                local.format("%Y-%m-%dT%H:%M:%S").to_string()
            );
            assert_eq!(text(LocalTime(local)), local.format("%H:%M").to_string());
        }
    }
}
