//! The credit account of a tenant and its ledger: the lines `crate::ledger` appends (its rules
//! decide when), the account it opens, and what the `/credits` routes read and set.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::error::{ApiError, ApiResult};
use crate::tenant::Tenant;

/// The balance and threshold of one account.
pub struct Balance {
    pub available: i64,
    pub consumed: i64,
    pub refunded: i64,
    pub low_balance_threshold: i64,
}

/// What a ledger line records.
#[derive(Debug, Clone, Copy)]
pub enum Movement {
    Grant,
    Consumption,
    Refund,
}

impl Movement {
    const ALL: [Self; 3] = [Self::Grant, Self::Consumption, Self::Refund];

    /// The line's `type` in the database.
    fn as_str(self) -> &'static str {
        match self {
            Self::Grant => "GRANT",
            Self::Consumption => "CONSUMPTION",
            Self::Refund => "REFUND",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|movement| movement.as_str() == text)
    }
}

/// A line to append to the ledger.
pub enum Line<'a> {
    Grant {
        amount: i64,
        reason: &'a str,
    },
    /// The credit of a cancelled appointment given back.
    Refund {
        appointment_id: i64,
    },
}

/// Appends a line; a trigger applies it to the account and returns the balance after it. The
/// database's own error is returned so that the caller can name a refusal (a second refund of
/// one appointment). A booking's consumption is written by the booking's own statement
/// (`store::appointments::book`).
pub async fn append(
    connection: &mut PgConnection,
    tenant: Tenant,
    line: Line<'_>,
) -> Result<i64, sqlx::Error> {
    let (movement, amount, appointment_id, reason) = match line {
        Line::Grant { amount, reason } => (Movement::Grant, amount, None, Some(reason)),
        Line::Refund { appointment_id } => (
            Movement::Refund,
            1,
            Some(appointment_id),
            Some("Appointment cancelled"),
        ),
    };
    sqlx::query_scalar(
        "INSERT INTO credit_transactions (organization_id, livemode, type, amount, appointment_id, reason)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING balance_after",
    )
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .bind(movement.as_str())
    .bind(amount)
    .bind(appointment_id)
    .bind(reason)
    .fetch_one(connection)
    .await
}

/// Opens the tenant's account, empty.
pub async fn open_account(connection: &mut PgConnection, tenant: Tenant) -> ApiResult<()> {
    sqlx::query("INSERT INTO credit_accounts (organization_id, livemode) VALUES ($1, $2)")
        .bind(tenant.organization_id)
        .bind(tenant.livemode)
        .execute(connection)
        .await?;
    Ok(())
}

/// One line of the ledger.
pub struct Transaction {
    pub id: i64,
    pub movement: Movement,
    pub amount: i64,
    pub balance_after: i64,
    pub appointment_id: Option<i64>,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct TransactionRow {
    id: i64,
    r#type: String,
    amount: i64,
    balance_after: i64,
    appointment_id: Option<i64>,
    reason: Option<String>,
    created_at: DateTime<Utc>,
}

/// The tenant's balance (every tenant has an account from its creation).
pub async fn balance(pool: &PgPool, tenant: Tenant) -> ApiResult<Balance> {
    let (available, consumed, refunded, low_balance_threshold): (i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT balance, consumed, refunded, low_balance_threshold FROM credit_accounts
              WHERE organization_id = $1 AND livemode = $2",
        )
        .bind(tenant.organization_id)
        .bind(tenant.livemode)
        .fetch_one(pool)
        .await?;
    Ok(Balance {
        available,
        consumed,
        refunded,
        low_balance_threshold,
    })
}

/// How many lines the tenant's ledger has.
pub async fn count_transactions(pool: &PgPool, tenant: Tenant) -> ApiResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM credit_transactions WHERE organization_id = $1 AND livemode = $2",
    )
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .fetch_one(pool)
    .await?)
}

/// A page of the tenant's ledger, newest first; `limit_clause` is a checked
/// ` LIMIT n OFFSET m` (see `PageRequest::limit_clause`).
pub async fn transactions(
    pool: &PgPool,
    tenant: Tenant,
    limit_clause: &str,
) -> ApiResult<Vec<Transaction>> {
    let rows: Vec<TransactionRow> = sqlx::query_as(&format!(
        "SELECT id, type, amount, balance_after, appointment_id, reason, created_at
           FROM credit_transactions WHERE organization_id = $1 AND livemode = $2
          ORDER BY id DESC{limit_clause}"
    ))
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            let movement = Movement::parse(&row.r#type).ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("unknown ledger line type {}", row.r#type))
            })?;
            Ok(Transaction {
                id: row.id,
                movement,
                amount: row.amount,
                balance_after: row.balance_after,
                appointment_id: row.appointment_id,
                reason: row.reason,
                created_at: row.created_at,
            })
        })
        .collect()
}

/// Sets the balance under which `credits.low` is sent.
pub async fn set_low_balance_threshold(
    pool: &PgPool,
    tenant: Tenant,
    threshold: i64,
) -> ApiResult<()> {
    sqlx::query(
        "UPDATE credit_accounts SET low_balance_threshold = $3
          WHERE organization_id = $1 AND livemode = $2",
    )
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .bind(threshold)
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Movement;

    #[test]
    fn every_movement_reads_back_from_the_text_it_is_stored_as() {
        for movement in Movement::ALL {
            let read = Movement::parse(movement.as_str()).map(Movement::as_str);
            assert_eq!(read, Some(movement.as_str()));
        }
        assert!(Movement::parse("grant").is_none(), "the text is exact");
    }
}
