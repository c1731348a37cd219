//! One store per aggregate: the only code that holds its SQL. Each call takes the tenant as
//! one value, so no query can forget half of the `(organization_id, livemode)` filter.

pub mod api_keys;
pub mod appointments;
pub mod availability;
pub mod credits;
pub mod deliveries;
pub mod departments;
pub mod events;
pub mod idempotency;
pub mod organizations;
pub mod webhooks;
pub mod workers;
