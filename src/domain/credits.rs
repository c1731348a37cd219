//! A grant of credits: the one body of both grant routes (test credits granted by a tenant,
//! live ones by the operator), and its rules.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{check_fields, required_text, ApiResult, FieldError};

/// The largest grant, test or live.
pub const MAX_GRANT: i64 = 1_000_000;

/// A grant of credits, as sent (test grants here, live ones by the operator).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = CreditGrant::example())]
pub struct CreditGrant {
    // Optional in Rust so that a missing field is named in the 400 (the schema says required).
    #[schemars(with = "i64", range(min = 1, max = 1_000_000))]
    pub amount: Option<i64>,
    /// 1 to 500 characters after trimming.
    #[schemars(with = "String", length(min = 1, max = 500))]
    pub reason: Option<String>,
}

/// A valid grant.
pub struct Grant {
    pub amount: i64,
    pub reason: String,
}

impl CreditGrant {
    /// The grant, or a 400 naming every bad field.
    pub fn parse(self) -> ApiResult<Grant> {
        let mut errors = Vec::new();
        match self.amount {
            None => errors.push(FieldError::missing("amount")),
            Some(amount) if !(1..=MAX_GRANT).contains(&amount) => errors.push(FieldError::invalid(
                "amount",
                "must be between 1 and 1000000",
            )),
            Some(_) => {}
        }
        let reason = required_text(&mut errors, "reason", self.reason.as_deref(), 500);
        check_fields(errors)?;
        Ok(Grant {
            amount: self.amount.unwrap_or_default(),
            reason,
        })
    }

    fn example() -> Self {
        Self {
            amount: Some(50),
            reason: Some("Sandbox refill".to_owned()),
        }
    }
}
