//! The shapes of `/departments` on the wire, in their fields' order. The schemas of
//! openapi.json (`Department`, `OrganizationRef`, `DepartmentCreate`, `DepartmentUpdate`,
//! `OpeningHours`, `TimeRange`, `Closure`) are derived from these types.

use std::borrow::Cow;

use chrono_tz::Tz;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::domain::datetime::{format_timestamp, is_supported_date};
use crate::domain::schedule::{Closure, OpeningHours, RangeText};
use crate::domain::text;
use crate::error::{check_fields, ApiResult, FieldError};
use crate::store::departments::{Department as Stored, Fields, HoursMap};

/// The organization a department belongs to.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrganizationRef {
    pub id: i64,
    pub name: String,
}

/// Weekly opening hours keyed by lower-case weekday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WeeklyHours(pub HoursMap);

/// A department, with its schedule.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(example = Department::example())]
pub struct Department {
    pub id: i64,
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    // Always written (null when unset): required, of a nullable type.
    #[schemars(required, length(max = 2000), extend("type" = ["string", "null"]))]
    pub description: Option<String>,
    pub organization: OrganizationRef,
    /// IANA time zone
    #[schemars(example = &"Africa/Conakry")]
    pub timezone: String,
    /// Minutes per slot. Changing it keeps the appointments already booked at their instants; new slots never overlap them beyond the capacity.
    #[schemars(range(min = 5, max = 1440))]
    pub slot_duration: i32,
    /// How many people the department serves at once (desks): at every instant, its appointments that are not cancelled never outnumber it. Lowering it keeps the appointments already booked.
    #[schemars(range(min = 1, max = 1000))]
    pub capacity: i32,
    /// An inactive department stays readable but takes no booking.
    pub is_active: bool,
    pub opening_hours: WeeklyHours,
    pub closures: Vec<Closure>,
    #[schemars(range(min = 0, max = 525_600))]
    pub min_notice_minutes: i32,
    #[schemars(range(min = 1, max = 730))]
    pub max_advance_days: i32,
    /// MONCRENEAU's name. When true, every booking (and every move of one) names a staff member: `workerId` is required in POST /appointments (else 400 MISSING_REQUIRED_FIELD on `workerId`), and availability without `workerId` lists the slots where at least one active worker is free. Turning it on changes no existing appointment.
    pub show_admins_in_booking: bool,
    pub livemode: bool,
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    #[schemars(extend("format" = "date-time"))]
    pub updated_at: String,
}

impl Department {
    pub fn new(department: Stored) -> Self {
        // Stored hours were checked when written; all seven days are listed, ranges sorted.
        let opening_hours = OpeningHours::parse(&department.opening_hours)
            .map(|hours| hours.to_map())
            .unwrap_or_else(|_| department.opening_hours.0.clone());
        Self {
            id: department.id,
            name: department.name,
            description: department.description,
            organization: OrganizationRef {
                id: department.organization_id,
                name: department.organization_name,
            },
            timezone: department.timezone,
            slot_duration: department.slot_duration,
            capacity: department.capacity,
            is_active: department.is_active,
            opening_hours: WeeklyHours(opening_hours),
            closures: department.closures.0,
            min_notice_minutes: department.min_notice_minutes,
            max_advance_days: department.max_advance_days,
            show_admins_in_booking: department.show_admins_in_booking,
            livemode: department.livemode,
            created_at: format_timestamp(department.created_at),
            updated_at: format_timestamp(department.updated_at),
        }
    }

    /// The contract's example department.
    pub fn example() -> Self {
        let range = |start: &str, end: &str| RangeText {
            start: start.to_owned(),
            end: end.to_owned(),
        };
        let morning = || vec![range("08:00", "12:00")];
        let hours: HoursMap = [
            ("friday", morning()),
            (
                "monday",
                vec![range("08:00", "12:00"), range("13:00", "16:30")],
            ),
            ("saturday", Vec::new()),
            ("sunday", Vec::new()),
            ("thursday", morning()),
            ("tuesday", Vec::new()),
            ("wednesday", morning()),
        ]
        .into_iter()
        .map(|(day, ranges)| (day.to_owned(), ranges))
        .collect();
        let closures = chrono::NaiveDate::from_ymd_opt(2026, 12, 24)
            .zip(chrono::NaiveDate::from_ymd_opt(2026, 12, 26))
            .map(|(start_date, end_date)| Closure {
                start_date,
                end_date,
                reason: Some("Holidays".to_owned()),
            });
        Self {
            id: 5,
            name: "Passport Service".to_owned(),
            description: Some("Passport issuance".to_owned()),
            organization: OrganizationRef {
                id: 1,
                name: "Ministry of Interior".to_owned(),
            },
            timezone: "Africa/Conakry".to_owned(),
            slot_duration: 15,
            capacity: 3,
            is_active: true,
            opening_hours: WeeklyHours(hours),
            closures: closures.into_iter().collect(),
            min_notice_minutes: 60,
            max_advance_days: 90,
            show_admins_in_booking: false,
            livemode: false,
            created_at: "2026-01-10T08:00:00.000Z".to_owned(),
            updated_at: "2026-01-10T08:00:00.000Z".to_owned(),
        }
    }
}

/// A new department. Optional members given as null take their default.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("examples" = [{
    "name": "Passport Service",
    "description": "Passport issuance",
    "timezone": "Africa/Conakry",
    "slotDuration": 15,
    "capacity": 3,
    "openingHours": {"monday": [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "16:30"}]},
    "closures": [{"startDate": "2026-12-24", "endDate": "2026-12-26", "reason": "Holidays"}],
    "minNoticeMinutes": 60,
    "maxAdvanceDays": 90
}]))]
pub struct DepartmentCreate {
    // Optional in Rust so that a missing field is named in the 400 (the schema says required).
    /// 1 to 200 characters after trimming.
    #[schemars(with = "String", length(min = 1, max = 200))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A blank description is stored as null.
    #[schemars(length(max = 2000))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// IANA time zone name, e.g. Africa/Conakry.
    #[schemars(with = "String")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Minutes; default 15.
    #[schemars(range(min = 5, max = 1440))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot_duration: Option<i64>,
    /// Default 1.
    #[schemars(range(min = 1, max = 1000))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<i64>,
    /// Default true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    /// Default: closed every day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opening_hours: Option<WeeklyHours>,
    /// Default []. Replaces the whole list.
    #[schemars(length(max = 500))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closures: Option<Vec<Closure>>,
    /// Default 0.
    #[schemars(range(min = 0, max = 525_600))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_notice_minutes: Option<i64>,
    /// Default 90.
    #[schemars(range(min = 1, max = 730))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_advance_days: Option<i64>,
    /// Default false. MONCRENEAU's name. When true, every booking (and every move of one) names a staff member: `workerId` is required in POST /appointments (else 400 MISSING_REQUIRED_FIELD on `workerId`), and availability without `workerId` lists the slots where at least one active worker is free. Turning it on changes no existing appointment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub show_admins_in_booking: Option<bool>,
}

impl DepartmentCreate {
    /// Every column of the new department, or a 400 naming every bad field.
    pub fn parse(self) -> ApiResult<Fields> {
        let mut missing = Vec::new();
        if self.name.is_none() {
            missing.push(FieldError::missing("name"));
        }
        if self.timezone.is_none() {
            missing.push(FieldError::missing("timezone"));
        }
        check_fields(missing)?;
        let changes = DepartmentUpdate {
            name: self.name,
            description: self.description,
            timezone: self.timezone,
            slot_duration: self.slot_duration,
            capacity: self.capacity,
            is_active: self.is_active,
            opening_hours: self.opening_hours,
            closures: self.closures,
            min_notice_minutes: self.min_notice_minutes,
            max_advance_days: self.max_advance_days,
            show_admins_in_booking: self.show_admins_in_booking,
        };
        changes.apply(defaults())
    }
}

/// The values of a new department's members that are not given.
fn defaults() -> Fields {
    Fields {
        name: String::new(),
        description: None,
        timezone: String::new(),
        slot_duration: 15,
        capacity: 1,
        is_active: true,
        opening_hours: HoursMap::new(),
        closures: Vec::new(),
        min_notice_minutes: 0,
        max_advance_days: 90,
        show_admins_in_booking: false,
    }
}

/// The members to change; an absent or null member keeps its value (so `description` can only be cleared with an empty string). Existing appointments keep their slot.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("examples" = [{"capacity": 4, "closures": []}]))]
pub struct DepartmentUpdate {
    /// 1 to 200 characters after trimming.
    #[schemars(length(min = 1, max = 200))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A blank description is stored as null.
    #[schemars(length(max = 2000))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// IANA time zone name, e.g. Africa/Conakry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Minutes; default 15.
    #[schemars(range(min = 5, max = 1440))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot_duration: Option<i64>,
    /// Default 1.
    #[schemars(range(min = 1, max = 1000))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<i64>,
    /// Default true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    /// Default: closed every day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opening_hours: Option<WeeklyHours>,
    /// Default []. Replaces the whole list.
    #[schemars(length(max = 500))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closures: Option<Vec<Closure>>,
    /// Default 0.
    #[schemars(range(min = 0, max = 525_600))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_notice_minutes: Option<i64>,
    /// Default 90.
    #[schemars(range(min = 1, max = 730))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_advance_days: Option<i64>,
    /// MONCRENEAU's name. When true, every booking (and every move of one) names a staff member: `workerId` is required in POST /appointments (else 400 MISSING_REQUIRED_FIELD on `workerId`), and availability without `workerId` lists the slots where at least one active worker is free. Turning it on changes no existing appointment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub show_admins_in_booking: Option<bool>,
}

impl DepartmentUpdate {
    /// These changes applied over `fields`, or a 400 naming every bad field.
    pub fn apply(self, mut fields: Fields) -> ApiResult<Fields> {
        let mut errors = Vec::new();
        if let Some(name) = self.name {
            match text::required(&name, 200) {
                Ok(name) => fields.name = name,
                Err(_) => errors.push(FieldError::invalid(
                    "name",
                    "must be 1 to 200 characters, not blank",
                )),
            }
        }
        if let Some(description) = self.description {
            if description.chars().count() <= 2000 {
                fields.description = Some(description).filter(|d| !d.trim().is_empty());
            } else {
                errors.push(FieldError::invalid(
                    "description",
                    "must be at most 2000 characters",
                ));
            }
        }
        if let Some(timezone) = self.timezone {
            if timezone.parse::<Tz>().is_ok() {
                fields.timezone = timezone;
            } else {
                errors.push(FieldError::invalid(
                    "timezone",
                    "must be an IANA time zone such as Africa/Conakry",
                ));
            }
        }
        let mut bounded = |field: &str,
                           value: Option<i64>,
                           range: std::ops::RangeInclusive<i64>,
                           target: &mut i32| {
            if let Some(value) = value {
                match i32::try_from(value) {
                    Ok(fits) if range.contains(&value) => *target = fits,
                    _ => errors.push(FieldError::invalid(
                        field,
                        format!("must be between {} and {}", range.start(), range.end()),
                    )),
                }
            }
        };
        bounded(
            "slotDuration",
            self.slot_duration,
            5..=1440,
            &mut fields.slot_duration,
        );
        bounded("capacity", self.capacity, 1..=1000, &mut fields.capacity);
        bounded(
            "minNoticeMinutes",
            self.min_notice_minutes,
            0..=525_600,
            &mut fields.min_notice_minutes,
        );
        bounded(
            "maxAdvanceDays",
            self.max_advance_days,
            1..=730,
            &mut fields.max_advance_days,
        );
        if let Some(active) = self.is_active {
            fields.is_active = active;
        }
        if let Some(required) = self.show_admins_in_booking {
            fields.show_admins_in_booking = required;
        }
        if let Some(WeeklyHours(hours)) = self.opening_hours {
            match OpeningHours::parse(&hours) {
                Ok(parsed) => fields.opening_hours = parsed.to_map(),
                Err(message) => errors.push(FieldError::invalid("openingHours", message)),
            }
        }
        if let Some(closures) = self.closures {
            let bad = closures.iter().position(|c| {
                c.start_date > c.end_date
                    || !is_supported_date(c.start_date)
                    || !is_supported_date(c.end_date)
                    || c.reason.as_ref().is_some_and(|r| r.chars().count() > 200)
            });
            match bad {
                _ if closures.len() > 500 => {
                    errors.push(FieldError::invalid("closures", "at most 500 closures"))
                }
                Some(index) => errors.push(FieldError::invalid(
                    &format!("closures[{index}]"),
                    "dates YYYY-MM-DD between the years 0001 and 9999, startDate not after endDate; reason at most 200 characters",
                )),
                None => fields.closures = closures,
            }
        }
        check_fields(errors)?;
        Ok(fields)
    }
}

// The schedule's shapes are domain types (and `HoursMap` a plain map): their schemas are
// written here, where the contract describes them.

/// The weekdays in the contract's order.
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

impl JsonSchema for WeeklyHours {
    fn schema_name() -> Cow<'static, str> {
        "OpeningHours".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let range = generator.subschema_for::<RangeText>();
        let mut properties = serde_json::Map::new();
        for day in WEEKDAYS {
            let mut day_schema = json_schema!({
                "type": "array",
                "description": "Opening ranges of that weekday; empty: closed.",
            });
            day_schema.insert("items".to_owned(), range.clone().into());
            properties.insert(day.to_owned(), day_schema.into());
        }
        let mut schema = json_schema!({
            "type": "object",
            "description": "Weekly opening hours keyed by lower-case weekday. In requests any subset of days may be given (a missing day is closed); responses always list all seven days, ranges sorted by start. Slots of `slotDuration` minutes fill each range from its start and never overrun its end.",
            "additionalProperties": false,
        });
        schema.insert("properties".to_owned(), properties.into());
        schema
    }
}

impl JsonSchema for RangeText {
    fn schema_name() -> Cow<'static, str> {
        "TimeRange".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "description": "One opening range of a day. `start` must be before `end`; ranges of one day must not overlap.",
            "required": ["start", "end"],
            "properties": {
                "start": {
                    "type": "string",
                    "pattern": "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$",
                    "description": "HH:MM, local time",
                    "examples": ["08:00"],
                },
                "end": {
                    "type": "string",
                    "pattern": "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$",
                    "description": "HH:MM, local time, after `start`; `24:00` closes the day",
                    "examples": ["12:00"],
                },
            },
            "additionalProperties": false,
        })
    }
}

impl JsonSchema for Closure {
    fn schema_name() -> Cow<'static, str> {
        "Closure".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "description": "Days (local dates, both ends inclusive) on which the department is closed.",
            "required": ["startDate", "endDate"],
            "properties": {
                "startDate": {"type": "string", "format": "date"},
                "endDate": {
                    "type": "string",
                    "format": "date",
                    "description": "Inclusive; not before `startDate`.",
                },
                "reason": {"type": ["string", "null"], "maxLength": 200},
            },
            "additionalProperties": false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_built_in_rust_writes_only_its_given_members() {
        let changes = DepartmentUpdate {
            capacity: Some(4),
            closures: Some(Vec::new()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&changes).unwrap(),
            serde_json::json!({"capacity": 4, "closures": []})
        );
    }
}
