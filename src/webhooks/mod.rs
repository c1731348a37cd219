//! Webhook delivery: signing (pure), the receiver-address guard, one signed POST, and the worker
//! that drains the outbox.

pub mod circuit;
pub mod guard;
pub mod rules;
pub mod sender;
pub mod signing;
pub mod worker;

pub use rules::previous_secret_in_force;

/// Every event type a webhook can subscribe to (`*` subscribes to all).
pub const EVENT_TYPES: [&str; 8] = [
    "appointment.created",
    "appointment.updated",
    "appointment.cancelled",
    "appointment.validated",
    "appointment.no_show",
    "credits.low",
    "credits.depleted",
    "webhook.test",
];
