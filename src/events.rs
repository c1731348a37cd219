//! The transactional outbox: every state change writes its event here, in its own transaction,
//! so an event exists exactly when its change committed.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
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

/// Writes one event, and one pending delivery for each active webhook of the organization's mode
/// that subscribes to its type; `data` is the body's `data` member (`{"object": …, "changes": …}`).
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
    store::insert(&mut *connection, tenant, appointment, &event).await?;
    store::queue_deliveries(connection, tenant, &event.id, event_type).await?;
    Ok(event.id)
}
