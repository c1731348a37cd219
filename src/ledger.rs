//! The credit ledger. Balances change only by inserting ledger lines (a trigger applies them to
//! the account, whose CHECK refuses a negative balance), so the balance is always the ledger's
//! sum; the unique indexes allow one consumption and one refund per appointment.

use serde_json::json;
use sqlx::PgConnection;

use crate::error::{violated_constraint, ApiError, ApiResult, ErrorCode};
use crate::events::{self, Subject};

/// A credit account is the tenant's: one per organization and mode.
pub type Account = crate::tenant::Tenant;

enum Line<'a> {
    Grant { amount: i64, reason: &'a str },
    Consumption { appointment_id: i64 },
    Refund { appointment_id: i64 },
}

async fn insert(
    connection: &mut PgConnection,
    account: Account,
    line: Line<'_>,
) -> Result<i64, sqlx::Error> {
    let (kind, amount, appointment_id, reason) = match line {
        Line::Grant { amount, reason } => ("GRANT", amount, None, Some(reason)),
        Line::Consumption { appointment_id } => ("CONSUMPTION", -1, Some(appointment_id), None),
        Line::Refund { appointment_id } => (
            "REFUND",
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
    .bind(account.organization_id)
    .bind(account.livemode)
    .bind(kind)
    .bind(amount)
    .bind(appointment_id)
    .bind(reason)
    .fetch_one(connection)
    .await
}

/// Spends one credit on an appointment: 402 when none is left. Emits `credits.low` when the
/// balance crosses the threshold downwards and `credits.depleted` when it reaches 0.
pub async fn consume(
    connection: &mut PgConnection,
    account: Account,
    appointment_id: i64,
) -> ApiResult<i64> {
    let after = match insert(connection, account, Line::Consumption { appointment_id }).await {
        Ok(after) => after,
        Err(error) if violated_constraint(&error) == Some("credit_balance_not_negative") => {
            return Err(ApiError::new(
                ErrorCode::InsufficientCredits,
                "Your organization has 0 credits remaining",
            )
            .with_detail("availableCredits", 0));
        }
        Err(error) => return Err(error.into()),
    };
    let threshold: i64 = sqlx::query_scalar(
        "SELECT low_balance_threshold FROM credit_accounts WHERE organization_id = $1 AND livemode = $2",
    )
    .bind(account.organization_id)
    .bind(account.livemode)
    .fetch_one(&mut *connection)
    .await?;
    let before = after + 1;
    let subject = Subject {
        organization_id: account.organization_id,
        livemode: account.livemode,
        appointment: None,
    };
    let data = json!({"object": {
        "availableCredits": after, "lowBalanceThreshold": threshold, "livemode": account.livemode,
    }});
    if before > threshold && after <= threshold {
        events::record(connection, &subject, events::CREDITS_LOW, data.clone()).await?;
    }
    if after == 0 {
        events::record(connection, &subject, events::CREDITS_DEPLETED, data).await?;
    }
    Ok(after)
}

/// Gives back the credit of a cancelled appointment; at most once per appointment.
pub async fn refund(
    connection: &mut PgConnection,
    account: Account,
    appointment_id: i64,
) -> ApiResult<i64> {
    Ok(insert(connection, account, Line::Refund { appointment_id }).await?)
}

/// Adds credits to an account; returns the new balance.
pub async fn grant(
    connection: &mut PgConnection,
    account: Account,
    amount: i64,
    reason: &str,
) -> ApiResult<i64> {
    Ok(insert(connection, account, Line::Grant { amount, reason }).await?)
}

/// Opens the account of an organization's mode, with an initial grant when `initial > 0`.
pub async fn open(
    connection: &mut PgConnection,
    account: Account,
    initial: i64,
    reason: &str,
) -> ApiResult<()> {
    sqlx::query("INSERT INTO credit_accounts (organization_id, livemode) VALUES ($1, $2)")
        .bind(account.organization_id)
        .bind(account.livemode)
        .execute(&mut *connection)
        .await?;
    if initial > 0 {
        grant(connection, account, initial, reason).await?;
    }
    Ok(())
}
