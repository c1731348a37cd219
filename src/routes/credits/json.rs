//! The shapes of `/credits` on the wire, in their fields' order. The schemas of openapi.json
//! (`Credits`, `CreditTransaction`, `CreditTransactionPage`, `CreditGrant`, `CreditSettings`)
//! are derived from these types.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::datetime::format_timestamp;
use crate::error::{check_fields, required_text, ApiError, ApiResult, FieldError};
use crate::store::credits::{Balance, Movement, Transaction};

/// The largest grant, test or live.
pub const MAX_GRANT: i64 = 1_000_000;

/// The credit balance of the caller's organization in the caller's mode.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(example = Credits::example())]
pub struct Credits {
    #[schemars(range(min = 0))]
    pub available_credits: i64,
    #[schemars(range(min = 0))]
    pub consumed_credits: i64,
    #[schemars(range(min = 0))]
    pub refunded_credits: i64,
    pub livemode: bool,
    /// `credits.low` is emitted when the balance falls to this value or below.
    #[schemars(range(min = 0))]
    pub low_balance_threshold: i64,
}

impl Credits {
    pub fn new(balance: &Balance, livemode: bool) -> Self {
        Self {
            available_credits: balance.available,
            consumed_credits: balance.consumed,
            refunded_credits: balance.refunded,
            livemode,
            low_balance_threshold: balance.low_balance_threshold,
        }
    }

    fn example() -> Self {
        Self {
            available_credits: 10,
            consumed_credits: 4,
            refunded_credits: 1,
            livemode: true,
            low_balance_threshold: 5,
        }
    }
}

/// What a ledger line records.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransactionType {
    Grant,
    Consumption,
    Refund,
}

impl From<Movement> for TransactionType {
    fn from(movement: Movement) -> Self {
        match movement {
            Movement::Grant => Self::Grant,
            Movement::Consumption => Self::Consumption,
            Movement::Refund => Self::Refund,
        }
    }
}

/// One line of the append-only credit ledger.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(example = CreditTransaction::example())]
pub struct CreditTransaction {
    pub id: i64,
    pub r#type: TransactionType,
    /// Signed change of the balance: GRANT > 0, REFUND +1, CONSUMPTION -1.
    pub amount: i64,
    #[schemars(range(min = 0))]
    pub balance_after: i64,
    /// Set for CONSUMPTION and REFUND.
    // Always written (null when unset): required, of a nullable type.
    #[schemars(required, extend("type" = ["integer", "null"]))]
    pub appointment_id: Option<i64>,
    #[schemars(required, extend("type" = ["string", "null"]))]
    pub reason: Option<String>,
    /// RFC 3339, UTC, milliseconds.
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
}

impl CreditTransaction {
    pub fn new(line: Transaction) -> Self {
        Self {
            id: line.id,
            r#type: line.movement.into(),
            amount: line.amount,
            balance_after: line.balance_after,
            appointment_id: line.appointment_id,
            reason: line.reason,
            created_at: format_timestamp(line.created_at),
        }
    }

    fn example() -> Self {
        Self {
            id: 42,
            r#type: TransactionType::Consumption,
            amount: -1,
            balance_after: 9,
            appointment_id: Some(12345),
            reason: None,
            created_at: "2026-01-21T14:30:00.123Z".to_owned(),
        }
    }
}

/// A page of the ledger, newest first.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreditTransactionPage {
    pub content: Vec<CreditTransaction>,
    /// 0-based page number
    #[schemars(range(min = 0))]
    pub page: i64,
    #[schemars(range(min = 1, max = 100))]
    pub size: i64,
    #[schemars(range(min = 0))]
    pub total_elements: i64,
    #[schemars(range(min = 0))]
    pub total_pages: i64,
    pub last: bool,
}

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

/// The settings of the credit account, as sent.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreditSettings {
    #[schemars(with = "i64", range(min = 0, max = 1_000_000))]
    pub low_balance_threshold: Option<i64>,
}

impl CreditSettings {
    /// The threshold, or a 400 naming the field.
    pub fn parse(self) -> ApiResult<i64> {
        let Some(threshold) = self.low_balance_threshold else {
            return Err(ApiError::validation(vec![FieldError::missing(
                "lowBalanceThreshold",
            )]));
        };
        if !(0..=1_000_000).contains(&threshold) {
            check_fields(vec![FieldError::invalid(
                "lowBalanceThreshold",
                "must be between 0 and 1000000",
            )])?;
        }
        Ok(threshold)
    }
}
