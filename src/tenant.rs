//! The tenant a request acts for. Every row of a tenant's data carries both halves, and every
//! query of a store is filtered by both, so other organizations and the other mode stay
//! invisible.

/// An organization in one mode (test or live), as established by its API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tenant {
    pub organization_id: i64,
    pub livemode: bool,
}
