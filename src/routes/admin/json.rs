//! The shapes of the operator API on the wire, in their fields' order. The schemas of
//! openapi.json (`Organization`, `OrganizationList`, `OrganizationCreate`, `OrganizationCreated`,
//! `LiveCreditGrantResult`) are derived from these types.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::credits::MAX_GRANT;
use crate::domain::datetime::format_timestamp;
use crate::domain::keys::Scope;
use crate::error::{check_fields, required_text, ApiResult, FieldError};
use crate::store::organizations::Organization as Stored;

/// An organization with both balances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: i64,
    pub name: String,
    /// Test-mode balance
    #[schemars(range(min = 0))]
    pub test_credits: i64,
    /// Live-mode balance
    #[schemars(range(min = 0))]
    pub live_credits: i64,
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
}

impl Organization {
    pub fn new(organization: Stored) -> Self {
        Self {
            id: organization.id,
            name: organization.name,
            test_credits: organization.test_credits,
            live_credits: organization.live_credits,
            created_at: format_timestamp(organization.created_at),
        }
    }
}

/// Every organization, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrganizationList {
    pub data: Vec<Organization>,
}

/// A new organization.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("examples" = [{"name": "Clinic", "liveCredits": 100}]))]
pub struct OrganizationCreate {
    // Optional in Rust so that a missing member is named in the 400 (the schema says required).
    /// 1 to 200 characters after trimming.
    #[schemars(with = "String", length(min = 1, max = 200))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Initial live credits; default 0.
    #[schemars(range(min = 0, max = 1_000_000))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_credits: Option<i64>,
}

impl OrganizationCreate {
    /// The trimmed name and the initial live credits, or a 400 naming every bad member.
    pub fn parse(self) -> ApiResult<(String, i64)> {
        let mut errors = Vec::new();
        let name = required_text(&mut errors, "name", self.name.as_deref(), 200);
        let live_credits = self.live_credits.unwrap_or(0);
        if !(0..=MAX_GRANT).contains(&live_credits) {
            errors.push(FieldError::invalid(
                "liveCredits",
                "must be between 0 and 1000000",
            ));
        }
        check_fields(errors)?;
        Ok((name, live_credits))
    }
}

/// One of the two keys a new organization gets, in clear (shown only here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(inline)]
pub struct AdminKey {
    #[schemars(extend("pattern" = "^key_"))]
    pub id: String,
    #[schemars(extend("pattern" = "^mk_(test|live)_[A-Za-z0-9]{32,128}$"))]
    pub key: String,
    #[schemars(extend("enum" = ["test", "live"]))]
    pub mode: String,
    pub scopes: Vec<Scope>,
}

/// A new organization with its two clear keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationCreated {
    pub id: i64,
    pub name: String,
    /// Always 100.
    pub test_credits: i64,
    #[schemars(range(min = 0))]
    pub live_credits: i64,
    /// One `api:admin` key per mode (test first); the clear keys are shown only here.
    #[schemars(length(min = 2, max = 2))]
    pub api_keys: Vec<AdminKey>,
}

impl OrganizationCreated {
    /// The contract's example.
    pub fn example() -> Self {
        let key = |id: &str, key: &str, mode: &str| AdminKey {
            id: id.to_owned(),
            key: key.to_owned(),
            mode: mode.to_owned(),
            scopes: vec![Scope::ApiAdmin],
        };
        Self {
            id: 1,
            name: "Clinic".to_owned(),
            test_credits: 100,
            live_credits: 100,
            api_keys: vec![
                key(
                    "key_Ab12Cd34Ef56Gh78Ij90Kl12",
                    "mk_test_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                    "test",
                ),
                key(
                    "key_Zy98Xw76Vu54Ts32Rq10Po98",
                    "mk_live_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                    "live",
                ),
            ],
        }
    }
}

/// The new live balance of an organization after a grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveCreditGrantResult {
    pub organization_id: i64,
    /// The new live balance.
    #[schemars(range(min = 0))]
    pub available_credits: i64,
    #[schemars(extend("const" = true))]
    pub livemode: bool,
}
