//! The transactional outbox: every state change writes its event here, in its own transaction,
//! so an event exists exactly when its change committed.

use std::borrow::Cow;

use chrono::Utc;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::PgConnection;

use crate::domain::datetime::format_instant;
use crate::domain::keys::random_id;
use crate::store::events as store;
use crate::tenant::Tenant;

pub const APPOINTMENT_CREATED: &str = "appointment.created";
pub const APPOINTMENT_UPDATED: &str = "appointment.updated";
pub const APPOINTMENT_CANCELLED: &str = "appointment.cancelled";
pub const APPOINTMENT_VALIDATED: &str = "appointment.validated";
pub const APPOINTMENT_NO_SHOW: &str = "appointment.no_show";
pub const CREDITS_LOW: &str = "credits.low";
pub const CREDITS_DEPLETED: &str = "credits.depleted";
pub const WEBHOOK_TEST: &str = "webhook.test";

/// What an event is about: an organization's mode and, for appointment events, the appointment
/// with its sequence number at this change.
pub struct Subject {
    pub organization_id: i64,
    pub livemode: bool,
    pub appointment: Option<(i64, i32)>,
}

/// An event as delivered: the envelope every type shares around its `data` (`{"object": …}`,
/// with `changes` for `appointment.updated`). Fields in their order on the wire where the
/// envelope itself is written (a `webhook.test`); a stored event is read back from its JSONB
/// column, which keeps no order (see `crate::store::events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// `evt_…`: receivers deduplicate on it.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// When the event happened, to the second (`…Z`).
    pub created: String,
    pub livemode: bool,
    /// For appointment events: the appointment's change counter, to order its events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<i32>,
    pub data: T,
}

impl<T> Envelope<T> {
    /// A new event of type `kind`, happening now, with a fresh id.
    pub fn new(kind: &str, livemode: bool, sequence: Option<i32>, data: T) -> Self {
        Self {
            id: random_id("evt"),
            kind: kind.to_owned(),
            created: format_instant(Utc::now()),
            livemode,
            sequence,
            data,
        }
    }
}

/// Writes one event; `data` is the body's `data` member (`{"object": …, "changes": …}`). The
/// database writes one pending delivery for each active webhook of the organization's mode that
/// subscribes to its type (trigger `events_fan_out`).
pub async fn record(
    connection: &mut PgConnection,
    subject: &Subject,
    event_type: &str,
    data: Value,
) -> Result<String, sqlx::Error> {
    record_typed(connection, subject, event_type, &data).await
}

/// [`record`] with a typed `data`.
pub async fn record_typed<T: Serialize>(
    connection: &mut PgConnection,
    subject: &Subject,
    event_type: &str,
    data: &T,
) -> Result<String, sqlx::Error> {
    let tenant = Tenant {
        organization_id: subject.organization_id,
        livemode: subject.livemode,
    };
    let sequence = subject.appointment.map(|(_, sequence)| sequence);
    let event = Envelope::new(event_type, subject.livemode, sequence, data);
    let appointment = subject.appointment.map(|(id, _)| id);
    store::insert(connection, tenant, appointment, &event).await?;
    Ok(event.id)
}

/// The `data` of the events about one object: `{"object": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(inline)]
pub struct ObjectData<T> {
    pub object: T,
}

/// The `data.object` of `credits.low` and `credits.depleted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreditsEventObject {
    /// The balance after the booking that triggered the event.
    #[schemars(range(min = 0))]
    pub available_credits: i64,
    #[schemars(range(min = 0))]
    pub low_balance_threshold: i64,
    pub livemode: bool,
}

/// The schema of one event type, as the contract writes each: the shared `Event` narrowed to
/// its `type` and `data`, without `sequence` (events that are not about an appointment).
pub fn narrowed_schema<D: JsonSchema + Serialize>(
    generator: &mut SchemaGenerator,
    kind: &str,
    description: &str,
    example: &Envelope<D>,
) -> Schema {
    let data: Value = generator.subschema_for::<D>().into();
    event_type_schema(kind, description, data, None, example)
}

/// The schema of an appointment event type: `Event` narrowed to its `type` and `data` (given
/// whole, as each type extends the appointment differently), with its `sequence` required.
pub fn appointment_event_schema<D: Serialize>(
    kind: &str,
    description: &str,
    data: Value,
    example: &Envelope<D>,
) -> Schema {
    let sequence = json!({"type": "integer", "minimum": 1});
    event_type_schema(kind, description, data, Some(sequence), example)
}

fn event_type_schema<D: Serialize>(
    kind: &str,
    description: &str,
    data: Value,
    sequence: Option<Value>,
    example: &Envelope<D>,
) -> Schema {
    let example = serde_json::to_value(example).unwrap_or_default();
    let (required, sequence) = match sequence {
        Some(sequence) => (json!(["type", "sequence", "data"]), sequence),
        None => (json!(["type", "data"]), Value::Bool(false)),
    };
    json_schema!({
        "description": description,
        "allOf": [
            {"$ref": "#/components/schemas/Event"},
            {
                "type": "object",
                "required": required,
                "properties": {"type": {"const": kind}, "sequence": sequence, "data": data},
            },
        ],
        "examples": [example],
    })
}

/// The schema `Event`: the envelope every type shares, its `data` left open (each type's own
/// schema narrows it). `example` is an event as delivered.
pub fn envelope_schema<D: Serialize>(example: &Envelope<D>) -> Schema {
    let example = serde_json::to_value(example).unwrap_or_default();
    json_schema!({
        "type": "object",
        "description": "An event, exactly as delivered to webhooks and listed by `/events`. The body of each type is detailed under `webhooks` (AppointmentCreatedEvent, AppointmentUpdatedEvent, AppointmentCancelledEvent, AppointmentValidatedEvent, AppointmentNoShowEvent, CreditsLowEvent, CreditsDepletedEvent, WebhookTestEvent).",
        "required": ["id", "type", "created", "livemode", "data"],
        "properties": {
            "id": {
                "type": "string",
                "pattern": "^evt_[A-Za-z0-9]{24}$",
                "description": "Unique per event, and the same on every delivery attempt of it (also sent as `webhook-id`): deduplicate on it.",
                "examples": ["evt_Qw3Er5Ty7Ui9Op1As3Df5Gh7"],
            },
            "type": {"$ref": "#/components/schemas/EventType"},
            "created": {
                "type": "string",
                "format": "date-time",
                "description": "When the change happened, RFC 3339 UTC to the second (`YYYY-MM-DDTHH:MM:SSZ`).",
                "examples": ["2026-01-21T14:30:00Z"],
            },
            "livemode": {"type": "boolean"},
            "sequence": {
                "type": "integer",
                "minimum": 1,
                "description": "Appointment events only: the appointment's change counter (1 at booking, +1 at each change). Deliveries may arrive out of order or more than once: ignore an event whose sequence is not above the last one processed for that appointment.",
            },
            "data": {
                "type": "object",
                "description": "`object` is the subject of the event; `changes` is present on `appointment.updated` only.",
                "required": ["object"],
                "properties": {
                    "object": {
                        "type": "object",
                        "description": "The subject after the change: the Appointment (plus `creditsUsed` on `appointment.created`, `creditsRefunded` on `appointment.cancelled`), a CreditsEventObject or a WebhookTestObject.",
                    },
                    "changes": {"$ref": "#/components/schemas/AppointmentChanges"},
                },
            },
        },
        "examples": [example],
    })
}

/// A `credits.low` event.
pub struct CreditsLowEvent;

impl JsonSchema for CreditsLowEvent {
    fn schema_name() -> Cow<'static, str> {
        "CreditsLowEvent".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let example = credits_example(
            "evt_Lo4Wb7Al8An9Ce0Th1Re2Sh3",
            CREDITS_LOW,
            "2026-01-21T14:30:00Z",
            5,
        );
        narrowed_schema(
            generator,
            CREDITS_LOW,
            "`credits.low`: a booking brought the balance of a mode from above `lowBalanceThreshold` to it or below. No `sequence`.",
            &example,
        )
    }
}

/// A `credits.depleted` event.
pub struct CreditsDepletedEvent;

impl JsonSchema for CreditsDepletedEvent {
    fn schema_name() -> Cow<'static, str> {
        "CreditsDepletedEvent".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let example = credits_example(
            "evt_De9Pl8Et7Ed6Cr5Ed4It3Ss2",
            CREDITS_DEPLETED,
            "2026-01-23T11:12:13Z",
            0,
        );
        narrowed_schema(
            generator,
            CREDITS_DEPLETED,
            "`credits.depleted`: a booking brought the balance of a mode to 0 (the same booking may also emit `credits.low`). No `sequence`.",
            &example,
        )
    }
}

/// The contract's example of a credits event of a live balance, threshold 5.
fn credits_example(
    id: &str,
    kind: &str,
    created: &str,
    available: i64,
) -> Envelope<ObjectData<CreditsEventObject>> {
    Envelope {
        id: id.to_owned(),
        kind: kind.to_owned(),
        created: created.to_owned(),
        livemode: true,
        sequence: None,
        data: ObjectData {
            object: CreditsEventObject {
                available_credits: available,
                low_balance_threshold: 5,
                livemode: true,
            },
        },
    }
}
