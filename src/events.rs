//! The transactional outbox: every state change writes its event here, in its own transaction,
//! so an event exists exactly when its change committed.

use chrono::Utc;
use serde_json::{json, Value};
use sqlx::PgConnection;

use crate::domain::datetime::format_instant;
use crate::domain::keys::random_id;

pub const APPOINTMENT_CREATED: &str = "appointment.created";
pub const APPOINTMENT_UPDATED: &str = "appointment.updated";
pub const APPOINTMENT_CANCELLED: &str = "appointment.cancelled";
pub const APPOINTMENT_VALIDATED: &str = "appointment.validated";
pub const APPOINTMENT_NO_SHOW: &str = "appointment.no_show";
pub const CREDITS_LOW: &str = "credits.low";
pub const CREDITS_DEPLETED: &str = "credits.depleted";

/// What an event is about: an organization's mode and, for appointment events, the appointment
/// with its sequence number at this change.
pub struct Subject {
    pub organization_id: i64,
    pub livemode: bool,
    pub appointment: Option<(i64, i32)>,
}

/// An event before it is written: its id and the whole body receivers get.
pub struct Draft {
    pub id: String,
    pub payload: Value,
}

/// The event `event_type` about `subject`; `data` is the body's `data` member
/// (`{"object": …, "changes": …}`).
pub fn draft(subject: &Subject, event_type: &str, data: Value) -> Draft {
    let id = random_id("evt");
    let mut payload = json!({
        "id": id,
        "type": event_type,
        "created": format_instant(Utc::now()),
        "livemode": subject.livemode,
        "data": data,
    });
    if let (Some((_, sequence)), Some(object)) = (subject.appointment, payload.as_object_mut()) {
        object.insert("sequence".into(), json!(sequence));
    }
    Draft { id, payload }
}

/// Writes one event; the database writes one pending delivery for each active webhook of the
/// organization's mode that subscribes to its type (trigger `events_fan_out`).
pub async fn record(
    connection: &mut PgConnection,
    subject: &Subject,
    event_type: &str,
    data: Value,
) -> Result<String, sqlx::Error> {
    let Draft { id, payload } = draft(subject, event_type, data);
    sqlx::query(
        "INSERT INTO events (id, organization_id, livemode, type, appointment_id, sequence, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(subject.organization_id)
    .bind(subject.livemode)
    .bind(event_type)
    .bind(subject.appointment.map(|(id, _)| id))
    .bind(subject.appointment.map(|(_, sequence)| sequence))
    .bind(&payload)
    .execute(&mut *connection)
    .await?;
    Ok(id)
}
