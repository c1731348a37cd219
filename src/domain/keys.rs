//! API keys, their scopes, and the random ids the API hands out.

use rand::distr::{Alphanumeric, SampleString};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Random characters after `mk_test_` / `mk_live_` in a generated key.
const KEY_SECRET_LEN: usize = 40;

/// An API key scope. `api:admin` implies every other scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Scope {
    #[serde(rename = "appointments:read")]
    AppointmentsRead,
    #[serde(rename = "appointments:create")]
    AppointmentsCreate,
    #[serde(rename = "appointments:cancel")]
    AppointmentsCancel,
    #[serde(rename = "departments:read")]
    DepartmentsRead,
    #[serde(rename = "availability:check")]
    AvailabilityCheck,
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
    #[serde(rename = "api:admin")]
    ApiAdmin,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::AppointmentsRead,
        Scope::AppointmentsCreate,
        Scope::AppointmentsCancel,
        Scope::DepartmentsRead,
        Scope::AvailabilityCheck,
        Scope::WebhooksManage,
        Scope::ApiAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::AppointmentsRead => "appointments:read",
            Scope::AppointmentsCreate => "appointments:create",
            Scope::AppointmentsCancel => "appointments:cancel",
            Scope::DepartmentsRead => "departments:read",
            Scope::AvailabilityCheck => "availability:check",
            Scope::WebhooksManage => "webhooks:manage",
            Scope::ApiAdmin => "api:admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == text)
    }
}

/// Whether `granted` allows `required`: `api:admin` implies every scope.
pub fn allows(granted: &[Scope], required: Scope) -> bool {
    granted.contains(&Scope::ApiAdmin) || granted.contains(&required)
}

/// The mode a well-formed key belongs to (`Some(true)` for live), `None` when malformed.
pub fn key_mode(key: &str) -> Option<bool> {
    let (livemode, secret) = if let Some(rest) = key.strip_prefix("mk_live_") {
        (true, rest)
    } else if let Some(rest) = key.strip_prefix("mk_test_") {
        (false, rest)
    } else {
        return None;
    };
    (secret.len() >= 32 && secret.len() <= 128 && secret.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(livemode)
}

/// A new clear key of the given mode.
pub fn generate_key(livemode: bool) -> String {
    let mode = if livemode { "live" } else { "test" };
    format!("mk_{mode}_{}", random_token(KEY_SECRET_LEN))
}

/// What is stored of a key.
pub fn hash_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// An opaque id such as `key_…` or `evt_…`.
pub fn random_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_token(24))
}

pub fn random_token(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_in_their_mode() {
        assert_eq!(key_mode(&generate_key(true)), Some(true));
        assert_eq!(key_mode(&generate_key(false)), Some(false));
        assert_ne!(generate_key(false), generate_key(false));
    }

    #[test]
    fn malformed_keys_have_no_mode() {
        for bad in [
            "",
            "mk_test_short",
            "sk_test_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "mk_prod_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "mk_test_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!",
        ] {
            assert_eq!(key_mode(bad), None, "{bad}");
        }
    }

    #[test]
    fn admin_implies_every_scope() {
        assert!(allows(&[Scope::ApiAdmin], Scope::WebhooksManage));
        assert!(allows(&[Scope::AppointmentsRead], Scope::AppointmentsRead));
        assert!(!allows(
            &[Scope::AppointmentsRead],
            Scope::AppointmentsCreate
        ));
    }

    #[test]
    fn scopes_round_trip_through_their_names() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
        assert_eq!(Scope::parse("appointments:delete"), None);
    }
}
