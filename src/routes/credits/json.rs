//! The shapes of `/credits` on the wire, in their fields' order. The schemas of openapi.json
//! (`Credits`, `CreditTransaction`, `CreditTransactionPage`, `CreditSettings`) are derived
//! from these types; `CreditGrant`, shared with the operator's grant, is in `domain::credits`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::datetime::format_timestamp;
use crate::error::{check_fields, ApiError, ApiResult, FieldError};
use crate::routes::pagination::{Listed, Page};
use crate::store::credits::{Balance, Movement, Transaction};

/// The credit balance of the caller's organization in the caller's mode.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
pub type CreditTransactionPage = Page<CreditTransaction>;

impl Listed for CreditTransaction {
    const PAGE_DESCRIPTION: &'static str = "A page of the ledger, newest first.";
}

/// The settings of the credit account, as sent.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreditSettings {
    #[schemars(with = "i64", range(min = 0, max = 1_000_000))]
    #[serde(skip_serializing_if = "Option::is_none")]
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
