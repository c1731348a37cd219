//! The shapes of `/appointments` on the wire, in their fields' order. The schemas of
//! openapi.json (`Appointment`, `Status`, `AppointmentCreate`, `AppointmentUpdate`,
//! `AppointmentCancel`, `AppointmentPage`) are derived from these types; the event copy of an
//! appointment (`data` of `appointment.*`) is built from the same `Appointment`.

use std::borrow::Cow;

use aide::generate::GenContext;
use aide::openapi::{
    Operation, Parameter, ParameterData, ParameterSchemaOrContent, QueryStyle, ReferenceOr,
    SchemaObject,
};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::appointment::{positive_id, AppointmentEdit, NewAppointment, RequestedStart};
use crate::domain::contact::{optional, Email, ExternalUserId, Metadata, Notes, PersonName, Phone};
use crate::domain::datetime::{format_instant, format_local, format_timestamp};
use crate::domain::status::Status;
use crate::domain::text::{self, TextError};
use crate::error::{check_fields, ApiError, ApiResult, ErrorCode, FieldError};
use crate::events::{
    appointment_event_schema, Envelope, APPOINTMENT_CANCELLED, APPOINTMENT_CREATED,
    APPOINTMENT_NO_SHOW, APPOINTMENT_UPDATED, APPOINTMENT_VALIDATED,
};
use crate::extract::{date_param, QueryParameters};
use crate::openapi::{refer_parameter, Json};
use crate::routes::pagination::{Listed, Page, PageQuery, PageRequest};
use crate::store::appointments::{AppointmentRow, Filters, Sort};

/// The department an appointment is in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(inline)]
pub struct DepartmentRef {
    pub id: i64,
    pub name: String,
}

/// An appointment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(example = Appointment::example())]
pub struct Appointment {
    pub id: i64,
    pub department_id: i64,
    pub department: DepartmentRef,
    /// The staff member serving the appointment (one appointment at a time), or null when none was named.
    #[schemars(required, extend("type" = ["integer", "null"]))]
    pub worker_id: Option<i64>,
    /// Local start in the department's zone, YYYY-MM-DDTHH:MM:SS (no offset).
    #[schemars(
        extend("pattern" = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$"),
        example = &"2026-02-15T10:00:00"
    )]
    pub date_time: String,
    /// Local end in the department's zone, YYYY-MM-DDTHH:MM:SS (no offset).
    #[schemars(
        extend("pattern" = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$"),
        example = &"2026-02-15T10:15:00"
    )]
    pub end_date_time: String,
    /// IANA zone of `dateTime` and `endDateTime`.
    pub timezone: String,
    /// Start instant, RFC 3339 UTC
    #[schemars(extend("format" = "date-time"))]
    pub starts_at: String,
    /// End instant, RFC 3339 UTC
    #[schemars(extend("format" = "date-time"))]
    pub ends_at: String,
    pub status: Status,
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    #[schemars(required, extend("type" = ["string", "null"]), length(max = 200))]
    pub external_user_id: Option<String>,
    #[schemars(required, extend("type" = ["string", "null"]), extend("pattern" = r"^\+[1-9][0-9]{7,14}$"))]
    pub phone: Option<String>,
    #[schemars(required, extend("type" = ["string", "null"]), extend("format" = "email"))]
    pub email: Option<String>,
    #[schemars(required, extend("type" = ["string", "null"]), length(max = 2000))]
    pub notes: Option<String>,
    #[schemars(schema_with = "metadata_schema")]
    pub metadata: Map<String, Value>,
    /// Address of the appointment's check-in QR code (SVG): `GET /api/v1/appointments/{id}/qr.svg?token=…`, reachable without an API key through the appointment's own check-in token.
    #[schemars(extend("format" = "uri"))]
    pub qr_code: String,
    /// Credits the booking consumed (1).
    pub credits_consumed: i32,
    pub livemode: bool,
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    #[schemars(extend("format" = "date-time"))]
    pub updated_at: String,
    #[schemars(required, extend("type" = ["string", "null"]), extend("format" = "date-time"))]
    pub cancelled_at: Option<String>,
    /// Id (`key_…`) of the API key that cancelled the appointment.
    #[schemars(required, extend("type" = ["string", "null"]))]
    pub cancelled_by: Option<String>,
    #[schemars(required, extend("type" = ["string", "null"]), length(max = 500))]
    pub cancel_reason: Option<String>,
}

/// The link the appointment hands out as `qrCode`.
pub fn qr_code_address(public_url: &str, id: i64, token: &str) -> String {
    format!("{public_url}/api/v1/appointments/{id}/qr.svg?token={token}")
}

impl Appointment {
    /// The contract's appointment; `qrCode` is built on `public_url`.
    pub fn new(row: &AppointmentRow, public_url: &str) -> Self {
        let timezone = row.timezone.parse().unwrap_or(chrono_tz::UTC);
        Self {
            id: row.id,
            department_id: row.department_id,
            department: DepartmentRef {
                id: row.department_id,
                name: row.department_name.clone(),
            },
            worker_id: row.worker_id,
            date_time: row.local_starts_at.format("%Y-%m-%dT%H:%M:%S").to_string(),
            end_date_time: format_local(row.ends_at, timezone),
            timezone: row.timezone.clone(),
            starts_at: format_instant(row.starts_at),
            ends_at: format_instant(row.ends_at),
            status: row.status,
            name: row.name.clone(),
            external_user_id: row.external_user_id.clone(),
            phone: row.phone.clone(),
            email: row.email.clone(),
            notes: row.notes.clone(),
            metadata: row.metadata.0.clone(),
            qr_code: qr_code_address(public_url, row.id, &row.check_in_token),
            credits_consumed: row.credits_consumed,
            livemode: row.livemode,
            created_at: format_timestamp(row.created_at),
            updated_at: format_timestamp(row.updated_at),
            cancelled_at: row.cancelled_at.map(format_timestamp),
            cancelled_by: row.cancelled_by.clone(),
            cancel_reason: row.cancel_reason.clone(),
        }
    }

    /// The contract's example appointment.
    pub fn example() -> Self {
        Self {
            id: 12345,
            department_id: 5,
            department: DepartmentRef {
                id: 5,
                name: "Passport Service".to_owned(),
            },
            worker_id: None,
            date_time: "2026-02-15T10:00:00".to_owned(),
            end_date_time: "2026-02-15T10:15:00".to_owned(),
            timezone: "Africa/Conakry".to_owned(),
            starts_at: "2026-02-15T10:00:00Z".to_owned(),
            ends_at: "2026-02-15T10:15:00Z".to_owned(),
            status: Status::Confirmed,
            name: "Jean Dupont".to_owned(),
            external_user_id: Some("u-42".to_owned()),
            phone: Some("+224621234567".to_owned()),
            email: Some("jean@example.gn".to_owned()),
            notes: Some("First visit".to_owned()),
            metadata: [("channel".to_owned(), Value::from("web"))]
                .into_iter()
                .collect(),
            qr_code: "http://localhost:8080/api/v1/appointments/12345/qr.svg?token=Q3x9a1b2c3d4e5f6g7h8i9j0k1l2m3n4".to_owned(),
            credits_consumed: 1,
            livemode: false,
            created_at: "2026-01-21T14:30:00.123Z".to_owned(),
            updated_at: "2026-01-21T14:30:00.123Z".to_owned(),
            cancelled_at: None,
            cancelled_by: None,
            cancel_reason: None,
        }
    }

    /// The example, cancelled by a key before its start.
    pub fn cancelled_example() -> Self {
        Self {
            status: Status::Cancelled,
            updated_at: "2026-01-22T09:00:00.456Z".to_owned(),
            cancelled_at: Some("2026-01-22T09:00:00.456Z".to_owned()),
            cancelled_by: Some("key_Ab12Cd34Ef56Gh78Ij90Kl12".to_owned()),
            cancel_reason: Some("Cannot come".to_owned()),
            ..Self::example()
        }
    }
}

/// Free string pairs, as the contract describes them (request members add `null`).
fn metadata_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "Free string pairs: at most 50 keys of 1 to 40 characters, string values of at most 500 characters.",
        "maxProperties": 50,
        "propertyNames": {"minLength": 1, "maxLength": 40},
        "additionalProperties": {"type": "string", "maxLength": 500},
    })
}

fn nullable_metadata_schema(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = metadata_schema(generator);
    schema.insert("type".to_owned(), Value::from(vec!["object", "null"]));
    schema
}

/// `Status` keeps the contract's name and description (the event schemas refer to it).
impl JsonSchema for Status {
    fn schema_name() -> Cow<'static, str> {
        "Status".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "Appointment status. CONFIRMED → CANCELLED | COMPLETED | NO_SHOW; nothing leaves the last three.",
            "enum": ["CONFIRMED", "CANCELLED", "COMPLETED", "NO_SHOW"],
        })
    }
}

/// The `data` of an `appointment.*` event: the appointment after the change, and for an
/// update what changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppointmentEvent {
    pub object: EventAppointment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<AppointmentChanges>,
}

/// The appointment as an event carries it: the contract's object, plus the credit it moved
/// (`creditsUsed` on creation, `creditsRefunded` on cancellation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventAppointment {
    #[serde(flatten)]
    pub appointment: Appointment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits_used: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits_refunded: Option<i32>,
}

impl AppointmentEvent {
    /// The event `data` of `appointment`, with no credit moved and nothing changed.
    pub fn of(appointment: Appointment) -> Self {
        Self {
            object: EventAppointment {
                appointment,
                credits_used: None,
                credits_refunded: None,
            },
            changes: None,
        }
    }

    /// As handed to `events::record`.
    pub fn to_data(&self) -> ApiResult<Value> {
        serde_json::to_value(self).map_err(ApiError::internal)
    }
}

/// One member's change: its value before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change<T> {
    pub from: T,
    pub to: T,
}

/// What an update changed, member by member: only the members whose value differs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppointmentChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_time: Option<Change<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Change<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<Change<Option<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Change<Option<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<Change<Option<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Change<Map<String, Value>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<Change<Option<i64>>>,
}

/// `Some({from, to})` when they differ.
pub fn change<T: PartialEq>(from: T, to: T) -> Option<Change<T>> {
    (from != to).then_some(Change { from, to })
}

impl AppointmentChanges {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// `AppointmentChanges`: its members are those of the type (each `{from, to}`), at least one.
impl JsonSchema for AppointmentChanges {
    fn schema_name() -> Cow<'static, str> {
        "AppointmentChanges".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // Every member changed once, to read the members' names as they are written.
        let every = Self {
            date_time: change(String::new(), "x".to_owned()),
            name: change(String::new(), "x".to_owned()),
            phone: change(None, Some(String::new())),
            email: change(None, Some(String::new())),
            notes: change(None, Some(String::new())),
            metadata: change(Map::new(), Map::from_iter([(String::new(), Value::Null)])),
            worker_id: change(None, Some(1)),
        };
        // Read in the order written (a `Value` would sort them).
        let written = serde_json::to_string(&every).and_then(|text| serde_json::from_str(&text));
        let names: Vec<String> = match written {
            Ok(Json::Object(members)) => members.into_iter().map(|(name, _)| name).collect(),
            _ => Vec::new(),
        };
        let example = AppointmentChanges {
            date_time: change(
                "2026-02-15T10:00:00".to_owned(),
                "2026-02-16T09:30:00".to_owned(),
            ),
            ..Self::default()
        };
        json_schema!({
            "type": "object",
            "description": "What an update changed, member by member: only the members whose value differs, among `dateTime` (local, as in the request), `name`, `phone`, `email`, `notes`, `metadata` and `workerId`. A new `dateTime` also moves `endDateTime`, `startsAt` and `endsAt` of the object, which are not listed.",
            "propertyNames": {"enum": names},
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "required": ["from", "to"],
                "properties": {
                    "from": {"description": "The value before (may be null)."},
                    "to": {"description": "The value after (may be null)."},
                },
                "additionalProperties": false,
            },
            "examples": [example],
        })
    }
}

/// The contract's example event of `kind` about the example appointment, as delivered.
fn appointment_example(
    kind: &str,
    id: &str,
    created: &str,
    sequence: i32,
    data: AppointmentEvent,
) -> Envelope<AppointmentEvent> {
    Envelope {
        id: id.to_owned(),
        kind: kind.to_owned(),
        created: created.to_owned(),
        livemode: false,
        sequence: Some(sequence),
        data,
    }
}

/// `data` of an appointment event whose object is the Appointment extended by `extension`
/// (or the Appointment itself), with `changes` when given.
fn appointment_data(
    generator: &mut SchemaGenerator,
    extension: Option<Value>,
    changes: bool,
) -> Value {
    let appointment: Value = generator.subschema_for::<Appointment>().into();
    let object = match extension {
        Some(extension) => serde_json::json!({"allOf": [appointment, extension]}),
        None => appointment,
    };
    let mut data = serde_json::json!({
        "type": "object",
        "required": ["object"],
        "properties": {"object": object},
    });
    if changes {
        let changes: Value = generator.subschema_for::<AppointmentChanges>().into();
        data["required"] = serde_json::json!(["object", "changes"]);
        data["properties"]["changes"] = changes;
    }
    data
}

/// An `appointment.created` event.
pub struct AppointmentCreatedEvent;

impl AppointmentCreatedEvent {
    pub fn example() -> Envelope<AppointmentEvent> {
        let mut data = AppointmentEvent::of(Appointment::example());
        data.object.credits_used = Some(1);
        appointment_example(
            APPOINTMENT_CREATED,
            "evt_Qw3Er5Ty7Ui9Op1As3Df5Gh7",
            "2026-01-21T14:30:00Z",
            1,
            data,
        )
    }
}

impl JsonSchema for AppointmentCreatedEvent {
    fn schema_name() -> Cow<'static, str> {
        "AppointmentCreatedEvent".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let credits = serde_json::json!({
            "type": "object",
            "required": ["creditsUsed"],
            "properties": {"creditsUsed": {"const": 1, "description": "Credits the booking consumed."}},
        });
        appointment_event_schema(
            APPOINTMENT_CREATED,
            "`appointment.created`: an appointment was booked (CONFIRMED). `data.object` is the Appointment plus `creditsUsed`.",
            appointment_data(generator, Some(credits), false),
            &Self::example(),
        )
    }
}

/// An `appointment.updated` event.
pub struct AppointmentUpdatedEvent;

impl AppointmentUpdatedEvent {
    pub fn example() -> Envelope<AppointmentEvent> {
        let before = Appointment::example();
        let after = Appointment {
            date_time: "2026-02-16T09:30:00".to_owned(),
            end_date_time: "2026-02-16T09:45:00".to_owned(),
            starts_at: "2026-02-16T09:30:00Z".to_owned(),
            ends_at: "2026-02-16T09:45:00Z".to_owned(),
            notes: Some("Moved by phone".to_owned()),
            updated_at: "2026-01-21T16:05:12.345Z".to_owned(),
            ..before.clone()
        };
        let changes = AppointmentChanges {
            date_time: change(before.date_time, after.date_time.clone()),
            notes: change(before.notes, after.notes.clone()),
            ..AppointmentChanges::default()
        };
        let mut data = AppointmentEvent::of(after);
        data.changes = Some(changes);
        appointment_example(
            APPOINTMENT_UPDATED,
            "evt_Zx2Cv4Bn6Mm8Kj0Hg2Fd4Sa6",
            "2026-01-21T16:05:12Z",
            2,
            data,
        )
    }
}

impl JsonSchema for AppointmentUpdatedEvent {
    fn schema_name() -> Cow<'static, str> {
        "AppointmentUpdatedEvent".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        appointment_event_schema(
            APPOINTMENT_UPDATED,
            "`appointment.updated`: a CONFIRMED appointment was rescheduled or edited (`PATCH /appointments/{id}` that changed something). `data.object` is the Appointment after the change, `data.changes` what changed.",
            appointment_data(generator, None, true),
            &Self::example(),
        )
    }
}

/// An `appointment.cancelled` event.
pub struct AppointmentCancelledEvent;

impl AppointmentCancelledEvent {
    pub fn example() -> Envelope<AppointmentEvent> {
        let mut data = AppointmentEvent::of(Appointment::cancelled_example());
        data.object.credits_refunded = Some(1);
        appointment_example(
            APPOINTMENT_CANCELLED,
            "evt_Pl1Ok2Ij3Uh4Yg5Tf6Rd7Es8",
            "2026-01-22T09:00:00Z",
            2,
            data,
        )
    }
}

impl JsonSchema for AppointmentCancelledEvent {
    fn schema_name() -> Cow<'static, str> {
        "AppointmentCancelledEvent".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let refund = serde_json::json!({
            "type": "object",
            "required": ["creditsRefunded"],
            "properties": {"creditsRefunded": {
                "type": "integer",
                "enum": [0, 1],
                "description": "1 when cancelled before `startsAt` (the credit came back), else 0.",
            }},
        });
        appointment_event_schema(
            APPOINTMENT_CANCELLED,
            "`appointment.cancelled`: an appointment was cancelled (cancelling it again emits nothing). `data.object` is the Appointment plus `creditsRefunded`.",
            appointment_data(generator, Some(refund), false),
            &Self::example(),
        )
    }
}

/// An `appointment.validated` event.
pub struct AppointmentValidatedEvent;

impl AppointmentValidatedEvent {
    pub fn example() -> Envelope<AppointmentEvent> {
        let appointment = Appointment {
            status: Status::Completed,
            updated_at: "2026-02-15T10:20:00.789Z".to_owned(),
            ..Appointment::example()
        };
        appointment_example(
            APPOINTMENT_VALIDATED,
            "evt_Mn1Bv2Cx3Za4Sd5Fg6Hj7Kl8",
            "2026-02-15T10:20:00Z",
            2,
            AppointmentEvent::of(appointment),
        )
    }
}

impl JsonSchema for AppointmentValidatedEvent {
    fn schema_name() -> Cow<'static, str> {
        "AppointmentValidatedEvent".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        appointment_event_schema(
            APPOINTMENT_VALIDATED,
            "`appointment.validated`: a CONFIRMED appointment became COMPLETED (`POST /appointments/{id}/validate`). `data.object` is the Appointment.",
            appointment_data(generator, None, false),
            &Self::example(),
        )
    }
}

/// An `appointment.no_show` event.
pub struct AppointmentNoShowEvent;

impl AppointmentNoShowEvent {
    pub fn example() -> Envelope<AppointmentEvent> {
        let appointment = Appointment {
            status: Status::NoShow,
            updated_at: "2026-02-15T11:00:00.012Z".to_owned(),
            ..Appointment::example()
        };
        appointment_example(
            APPOINTMENT_NO_SHOW,
            "evt_Wq9Ea8Sd7Rf6Tg5Yh4Uj3Ik2",
            "2026-02-15T11:00:00Z",
            2,
            AppointmentEvent::of(appointment),
        )
    }
}

impl JsonSchema for AppointmentNoShowEvent {
    fn schema_name() -> Cow<'static, str> {
        "AppointmentNoShowEvent".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        appointment_event_schema(
            APPOINTMENT_NO_SHOW,
            "`appointment.no_show`: a CONFIRMED appointment became NO_SHOW (`POST /appointments/{id}/no-show`). `data.object` is the Appointment.",
            appointment_data(generator, None, false),
            &Self::example(),
        )
    }
}

/// A booking request. Members given as null are absent.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("examples" = [{
    "departmentId": 5,
    "dateTime": "2026-02-15T10:00:00",
    "name": "Jean Dupont",
    "externalUserId": "u-42",
    "phone": "+224621234567",
    "email": "jean@example.gn",
    "notes": "First visit",
    "metadata": {"channel": "web"}
}, {
    "departmentId": 5,
    "dateTime": "2026-02-15T10:00:00",
    "name": "Jean Dupont",
    "workerId": 7
}]))]
pub struct AppointmentCreate {
    // Optional in Rust so that a missing member is named in the 400 (the schema says required).
    #[schemars(with = "i64", range(min = 1))]
    pub department_id: Option<i64>,
    /// The slot start: a local `YYYY-MM-DDTHH:MM:SS` (or `YYYY-MM-DDTHH:MM`) read in the department's time zone, or an RFC 3339 date-time with an offset, which is converted. A local time inside a DST gap is rejected (400 INVALID_DATE_TIME); an ambiguous one (DST fold) takes the earlier instant.
    #[schemars(with = "String", example = &"2026-02-15T10:00:00")]
    pub date_time: Option<String>,
    /// 1 to 200 characters after trimming.
    #[schemars(with = "String", length(min = 1, max = 200))]
    pub name: Option<String>,
    /// Your id of the person; one CONFIRMED appointment per externalUserId and slot.
    #[schemars(length(min = 1, max = 200))]
    pub external_user_id: Option<String>,
    /// E.164, e.g. +224621234567.
    #[schemars(extend("pattern" = r"^\+[1-9][0-9]{7,14}$"))]
    pub phone: Option<String>,
    #[schemars(extend("format" = "email"), length(max = 254))]
    pub email: Option<String>,
    #[schemars(length(max = 2000))]
    pub notes: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "nullable_metadata_schema")]
    pub metadata: Option<Map<String, Value>>,
    /// The staff member who serves the appointment (a worker of `GET /departments/{id}/workers`). Required when the department's `showAdminsInBooking` is true (else 400 MISSING_REQUIRED_FIELD on `workerId`); optional otherwise. Unknown, of another department, organization or mode: 404 WORKER_NOT_FOUND; deactivated: 422 WORKER_INACTIVE. The appointment takes one of the department's places as any other, and the worker may not hold two overlapping appointments that are not CANCELLED (else 409 SLOT_NOT_AVAILABLE, `details.reason` WORKER_BUSY).
    // Left out of the serialized form when absent, so that the request fingerprint of an
    // `Idempotency-Key` stored before workers existed still matches the same body.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub worker_id: Option<i64>,
}

impl TryFrom<AppointmentCreate> for NewAppointment {
    type Error = ApiError;

    /// The booking, or one 400 naming every bad member.
    fn try_from(body: AppointmentCreate) -> ApiResult<Self> {
        let mut errors = Vec::new();
        if body.department_id.is_none() {
            errors.push(FieldError::missing("departmentId"));
        }
        let department_id = ok(positive_id("departmentId", body.department_id), &mut errors);
        let worker_id = ok(positive_id("workerId", body.worker_id), &mut errors).flatten();
        let date_time = match body.date_time {
            None => {
                errors.push(FieldError::missing("dateTime"));
                None
            }
            Some(text) => ok(RequestedStart::parse(text), &mut errors),
        };
        let name = match body.name.as_deref() {
            None => {
                errors.push(FieldError::missing("name"));
                None
            }
            Some(name) => ok(PersonName::parse(name), &mut errors),
        };
        let external_user_id = optional(body.external_user_id, ExternalUserId::parse, &mut errors);
        let phone = optional(body.phone, Phone::parse, &mut errors);
        let email = optional(body.email, Email::parse, &mut errors);
        let notes = optional(body.notes, Notes::parse, &mut errors);
        let metadata = Metadata::parse(body.metadata.unwrap_or_default())
            .map_err(|bad| errors.extend(bad))
            .ok();
        check_fields(errors)?;
        match (department_id.flatten(), date_time, name, metadata) {
            (Some(department_id), Some(date_time), Some(name), Some(metadata)) => Ok(Self {
                department_id,
                worker_id,
                date_time,
                name,
                external_user_id,
                phone,
                email,
                notes,
                metadata,
            }),
            _ => Err(ApiError::new(
                ErrorCode::MissingRequiredField,
                "departmentId, dateTime and name are required",
            )),
        }
    }
}

/// The value of a parse, its error added to `errors`.
fn ok<T>(result: Result<T, FieldError>, errors: &mut Vec<FieldError>) -> Option<T> {
    result.map_err(|error| errors.push(error)).ok()
}

/// The members to change; an absent or null member keeps its value. Only a CONFIRMED appointment can be changed. The worker's time is checked like the department's: moving into an interval where the worker is busy is 409 SLOT_NOT_AVAILABLE and changes nothing.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("examples" = [{"dateTime": "2026-02-16T09:30:00", "notes": "Moved by phone"}]))]
pub struct AppointmentUpdate {
    /// New slot start (same forms as on creation): an atomic reschedule; the new slot is taken and the old one freed in one transaction.
    pub date_time: Option<String>,
    #[schemars(length(min = 1, max = 200))]
    pub name: Option<String>,
    #[schemars(extend("pattern" = r"^\+[1-9][0-9]{7,14}$"))]
    pub phone: Option<String>,
    #[schemars(extend("format" = "email"), length(max = 254))]
    pub email: Option<String>,
    #[schemars(length(max = 2000))]
    pub notes: Option<String>,
    /// Replaces the whole metadata object.
    #[serde(default)]
    #[schemars(schema_with = "nullable_metadata_schema")]
    pub metadata: Option<Map<String, Value>>,
    /// Another staff member of the same department (same checks as on creation), alone or with a new `dateTime`. Absent or null keeps the current one (a worker cannot be removed). A move (`dateTime`) keeps the worker, which must be active (else 422 WORKER_INACTIVE) and free (checked against its other appointments); an appointment that does not move keeps its worker even when deactivated since; a move of an appointment without a worker in a department whose `showAdminsInBooking` is true must name one.
    #[schemars(range(min = 1))]
    pub worker_id: Option<i64>,
}

impl TryFrom<AppointmentUpdate> for AppointmentEdit {
    type Error = ApiError;

    /// The edit, or one 400 naming every bad member given. `dateTime` is read later, in the
    /// department's zone.
    fn try_from(body: AppointmentUpdate) -> ApiResult<Self> {
        let mut errors = Vec::new();
        let name = body
            .name
            .and_then(|name| ok(PersonName::parse(&name), &mut errors));
        let phone = optional(body.phone, Phone::parse, &mut errors);
        let email = optional(body.email, Email::parse, &mut errors);
        let notes = optional(body.notes, Notes::parse, &mut errors);
        let metadata = body
            .metadata
            .and_then(|map| Metadata::parse(map).map_err(|bad| errors.extend(bad)).ok());
        let worker_id = ok(positive_id("workerId", body.worker_id), &mut errors).flatten();
        check_fields(errors)?;
        Ok(Self {
            date_time: body.date_time,
            name,
            phone,
            email,
            notes,
            metadata,
            worker_id,
        })
    }
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("examples" = [{"reason": "Cannot come"}]))]
pub struct AppointmentCancel {
    /// Trimmed; blank is stored as null.
    #[schemars(length(max = 500))]
    pub reason: Option<String>,
}

impl AppointmentCancel {
    /// The reason to store: blank is none; the limit counts the value as sent.
    pub fn reason(self) -> ApiResult<Option<String>> {
        match self.reason.map(|reason| text::required(&reason, 500)) {
            Some(Err(TextError::TooLong)) => Err(ApiError::validation(vec![FieldError::invalid(
                "reason",
                "must be at most 500 characters",
            )])),
            Some(Ok(reason)) => Ok(Some(reason)),
            Some(Err(TextError::Blank)) | None => Ok(None),
        }
    }
}

/// A page of appointments.
pub type AppointmentPage = Page<Appointment>;

impl Listed for Appointment {
    const PAGE_DESCRIPTION: &'static str = "A page of appointments.";
}

/// What the check-in address shows: enough to recognise the visit, no contact details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckInTicket {
    pub id: i64,
    pub department_id: i64,
    pub department: DepartmentRef,
    /// Local start in the department's zone, YYYY-MM-DDTHH:MM:SS (no offset).
    #[schemars(
        extend("pattern" = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$"),
        example = &"2026-02-15T10:00:00"
    )]
    pub date_time: String,
    /// Local end in the department's zone, YYYY-MM-DDTHH:MM:SS (no offset).
    #[schemars(
        extend("pattern" = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$"),
        example = &"2026-02-15T10:15:00"
    )]
    pub end_date_time: String,
    /// IANA zone of `dateTime` and `endDateTime`.
    pub timezone: String,
    /// Start instant, RFC 3339 UTC
    #[schemars(extend("format" = "date-time"))]
    pub starts_at: String,
    /// End instant, RFC 3339 UTC
    #[schemars(extend("format" = "date-time"))]
    pub ends_at: String,
    pub status: Status,
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
}

impl From<Appointment> for CheckInTicket {
    fn from(appointment: Appointment) -> Self {
        Self {
            id: appointment.id,
            department_id: appointment.department_id,
            department: appointment.department,
            date_time: appointment.date_time,
            end_date_time: appointment.end_date_time,
            timezone: appointment.timezone,
            starts_at: appointment.starts_at,
            ends_at: appointment.ends_at,
            status: appointment.status,
            name: appointment.name,
        }
    }
}

/// The query of `GET /appointments`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    pub page: Option<i64>,
    pub size: Option<i64>,
    pub status: Option<String>,
    pub department_id: Option<i64>,
    pub worker_id: Option<i64>,
    pub external_user_id: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub sort: Option<String>,
}

/// A checked `GET /appointments` query.
pub struct Listing {
    pub page: PageRequest,
    pub filters: Filters,
    pub sort: Sort,
}

fn bad(field: &str, message: &str) -> FieldError {
    FieldError::new(field, ErrorCode::InvalidRequest, message)
}

fn date(
    field: &str,
    value: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<chrono::NaiveDate> {
    date_param(field, value?)
        .map_err(|error| errors.push(error))
        .ok()
}

impl ListQuery {
    /// The page, filters and order, or one 400 naming every bad parameter.
    pub fn parse(self) -> ApiResult<Listing> {
        let mut errors = Vec::new();
        let page = PageQuery {
            page: self.page,
            size: self.size,
        }
        .check(&mut errors);
        let status = self.status.as_deref().and_then(|text| {
            let parsed = Status::from_filter(text);
            if parsed.is_none() {
                errors.push(bad(
                    "status",
                    "must be one of CONFIRMED (or SCHEDULED), CANCELLED, COMPLETED, NO_SHOW",
                ));
            }
            parsed
        });
        let sort = match self.sort.as_deref().unwrap_or("dateTime") {
            "dateTime" => Some(Sort::StartAscending),
            "-dateTime" => Some(Sort::StartDescending),
            "createdAt" => Some(Sort::CreatedAscending),
            "-createdAt" => Some(Sort::CreatedDescending),
            _ => {
                errors.push(bad(
                    "sort",
                    "must be one of dateTime, -dateTime, createdAt, -createdAt",
                ));
                None
            }
        };
        let filters = Filters {
            status,
            department_id: self.department_id,
            worker_id: self.worker_id,
            external_user_id: self.external_user_id,
            start_date: date("startDate", self.start_date.as_deref(), &mut errors),
            end_date: date("endDate", self.end_date.as_deref(), &mut errors),
        };
        if let (Some(start), Some(end)) = (filters.start_date, filters.end_date) {
            if end < start {
                errors.push(bad("endDate", "must not be before startDate"));
            }
        }
        check_fields(errors)?;
        Ok(Listing {
            page,
            filters,
            sort: sort.unwrap_or(Sort::StartAscending),
        })
    }
}

/// The shared `page` and `size`, then the filters and the order.
impl QueryParameters for ListQuery {
    fn document(_: &mut GenContext, operation: &mut Operation) {
        refer_parameter(operation, "Page");
        refer_parameter(operation, "Size");
        let int64 = || json_schema!({"type": "integer", "format": "int64"});
        let date = || json_schema!({"type": "string", "format": "date"});
        let parameters = [
            (
                "status",
                Some("CONFIRMED (or SCHEDULED, the official SDK's word for it), CANCELLED, COMPLETED or NO_SHOW, in any letter case (`no_show` works); responses always say CONFIRMED. Anything else: 400 INVALID_REQUEST."),
                json_schema!({"type": "string"}),
                Some("confirmed"),
            ),
            ("departmentId", None, int64(), None),
            (
                "workerId",
                Some("(ext) Only the appointments of this staff member."),
                int64(),
                None,
            ),
            ("externalUserId", None, json_schema!({"type": "string"}), None),
            (
                "startDate",
                Some("Local date (in each appointment's department zone) the start is on or after."),
                date(),
                None,
            ),
            (
                "endDate",
                Some("Local date the start is on or before (inclusive)."),
                date(),
                None,
            ),
            (
                "sort",
                Some("`dateTime` (default, ascending start), `-dateTime`, `createdAt`, `-createdAt`."),
                json_schema!({
                    "type": "string",
                    "enum": ["dateTime", "-dateTime", "createdAt", "-createdAt"],
                    "default": "dateTime",
                }),
                None,
            ),
        ];
        for (name, description, schema, example) in parameters {
            operation
                .parameters
                .push(ReferenceOr::Item(Parameter::Query {
                    parameter_data: ParameterData {
                        name: name.to_owned(),
                        description: description.map(str::to_owned),
                        required: false,
                        deprecated: None,
                        format: ParameterSchemaOrContent::Schema(SchemaObject {
                            json_schema: schema,
                            external_docs: None,
                            example: None,
                        }),
                        example: example.map(Value::from),
                        examples: Default::default(),
                        explode: None,
                        extensions: Default::default(),
                    },
                    allow_reserved: false,
                    style: QueryStyle::Form,
                    allow_empty_value: None,
                }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn booking() -> AppointmentCreate {
        AppointmentCreate {
            department_id: Some(5),
            date_time: Some("2030-01-07T10:00:00".to_owned()),
            name: Some(" Jean ".to_owned()),
            external_user_id: None,
            phone: None,
            email: None,
            notes: None,
            metadata: None,
            worker_id: None,
        }
    }

    #[test]
    fn a_valid_booking_becomes_domain_values() {
        let new = NewAppointment::try_from(booking()).unwrap();
        assert_eq!(new.department_id, 5);
        assert_eq!(new.name.as_str(), "Jean");
        assert_eq!(new.metadata, Metadata::default());
    }

    #[test]
    fn every_bad_member_is_named_in_one_error() {
        let body = AppointmentCreate {
            department_id: None,
            date_time: Some("soon".to_owned()),
            name: Some("  ".to_owned()),
            phone: Some("0621".to_owned()),
            email: Some("jean".to_owned()),
            worker_id: Some(0),
            ..booking()
        };
        let error = NewAppointment::try_from(body).unwrap_err();
        let response = axum::response::IntoResponse::into_response(error);
        assert_eq!(response.status(), axum::http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn the_fingerprint_of_a_booking_without_worker_leaves_it_out() {
        let text = serde_json::to_string(&booking()).unwrap();
        assert_eq!(
            text,
            r#"{"departmentId":5,"dateTime":"2030-01-07T10:00:00","name":" Jean ","externalUserId":null,"phone":null,"email":null,"notes":null,"metadata":null}"#
        );
    }

    #[test]
    fn the_event_copy_adds_the_credit_to_the_object() {
        let mut event = AppointmentEvent::of(Appointment::example());
        event.object.credits_used = Some(1);
        let data = event.to_data().unwrap();
        assert_eq!(data["object"]["creditsUsed"], 1);
        assert_eq!(data["object"]["id"], 12345);
        assert!(data.get("changes").is_none());
        let back: AppointmentEvent = serde_json::from_value(data).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn changes_list_only_what_differs() {
        let changes = AppointmentChanges {
            name: change("A".to_owned(), "B".to_owned()),
            phone: change(None, None),
            ..AppointmentChanges::default()
        };
        assert_eq!(
            serde_json::to_string(&changes).unwrap(),
            r#"{"name":{"from":"A","to":"B"}}"#
        );
        assert!(AppointmentChanges::default().is_empty());
    }
}
