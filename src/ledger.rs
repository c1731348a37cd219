//! The credit ledger. Balances change only by inserting ledger lines (a trigger applies them to
//! the account, whose CHECK refuses a negative balance), so the balance is always the ledger's
//! sum; the unique indexes allow one consumption and one refund per appointment. The rules of
//! a movement (its refusal, the events it announces) are here; its SQL is the credits store's.

use sqlx::PgConnection;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::events::{self, CreditsEventObject, Envelope, ObjectData};
use crate::store::credits::{self as store, Line};

/// A credit account is the tenant's: one per organization and mode.
pub type Account = crate::tenant::Tenant;

/// 402 `INSUFFICIENT_CREDITS`: the account's balance would go below zero.
pub fn insufficient_credits() -> ApiError {
    ApiError::new(
        ErrorCode::InsufficientCredits,
        "Your organization has 0 credits remaining",
    )
    .with_detail("availableCredits", 0)
}

/// An event a spend may announce, written only if the spend leaves the balance at `after`.
#[derive(Debug, Clone, PartialEq)]
pub struct Announcement {
    pub after: i64,
    pub event: Envelope<ObjectData<CreditsEventObject>>,
}

/// The events a spend of one credit from an account whose low-balance threshold is `threshold`
/// may announce (see [`balance_events`]), each with the balance it takes to announce it: the
/// booking statement writes those whose balance it left, in its own transaction, so that the
/// balance is not read back first.
pub fn spend_announcements(account: Account, threshold: i64) -> Vec<Announcement> {
    let mut afters = vec![0];
    if threshold > 0 {
        afters.push(threshold);
    }
    afters
        .into_iter()
        .flat_map(|after| {
            balance_events(after.saturating_add(1), after, threshold)
                .into_iter()
                .map(move |kind| Announcement {
                    after,
                    event: Envelope::new(
                        kind,
                        account.livemode,
                        None,
                        ObjectData {
                            object: CreditsEventObject {
                                available_credits: after,
                                low_balance_threshold: threshold,
                                livemode: account.livemode,
                            },
                        },
                    ),
                })
        })
        .collect()
}

/// The events a change of balance from `before` to `after` announces: `credits.low` when it
/// crosses the threshold downwards (from above it to at or below it), then `credits.depleted`
/// when it reaches 0 from above.
pub fn balance_events(before: i64, after: i64, threshold: i64) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    if before > threshold && after <= threshold {
        kinds.push(events::CREDITS_LOW);
    }
    if before > 0 && after == 0 {
        kinds.push(events::CREDITS_DEPLETED);
    }
    kinds
}

/// Gives back the credit of a cancelled appointment; at most once per appointment.
pub async fn refund(
    connection: &mut PgConnection,
    account: Account,
    appointment_id: i64,
) -> ApiResult<i64> {
    Ok(store::append(connection, account, Line::Refund { appointment_id }).await?)
}

/// Adds credits to an account; returns the new balance.
pub async fn grant(
    connection: &mut PgConnection,
    account: Account,
    amount: i64,
    reason: &str,
) -> ApiResult<i64> {
    Ok(store::append(connection, account, Line::Grant { amount, reason }).await?)
}

/// Opens the account of an organization's mode, with an initial grant when `initial > 0`.
pub async fn open(
    connection: &mut PgConnection,
    account: Account,
    initial: i64,
    reason: &str,
) -> ApiResult<()> {
    store::open_account(connection, account).await?;
    if initial > 0 {
        grant(connection, account, initial, reason).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossing_the_threshold_downwards_is_announced_once() {
        assert_eq!(balance_events(11, 10, 10), [events::CREDITS_LOW]);
        assert_eq!(
            balance_events(10, 9, 10),
            Vec::<&str>::new(),
            "already below"
        );
        assert_eq!(
            balance_events(12, 11, 10),
            Vec::<&str>::new(),
            "still above"
        );
    }

    #[test]
    fn reaching_zero_is_depleted_and_may_also_be_low() {
        assert_eq!(balance_events(2, 1, 0), Vec::<&str>::new());
        assert_eq!(
            balance_events(1, 0, 0),
            [events::CREDITS_LOW, events::CREDITS_DEPLETED]
        );
        assert_eq!(balance_events(1, 0, 5), [events::CREDITS_DEPLETED]);
    }

    /// Whatever the balance a spend leaves, the announcements written for it are exactly the
    /// events [`balance_events`] gives for that spend, each telling that balance.
    #[test]
    fn a_spend_announces_what_its_crossing_does() {
        let account = Account {
            organization_id: 1,
            livemode: true,
        };
        for threshold in -1..6 {
            let announcements = spend_announcements(account, threshold);
            for after in 0..12 {
                let written: Vec<_> = announcements
                    .iter()
                    .filter(|announcement| announcement.after == after)
                    .collect();
                let kinds: Vec<&str> = written.iter().map(|a| a.event.kind.as_str()).collect();
                assert_eq!(kinds, balance_events(after + 1, after, threshold));
                for announcement in written {
                    let object = &announcement.event.data.object;
                    assert_eq!(object.available_credits, after);
                    assert_eq!(object.low_balance_threshold, threshold);
                    assert!(announcement.event.livemode && announcement.event.sequence.is_none());
                }
            }
        }
    }

    #[test]
    fn the_credits_event_object_keeps_the_contract_names() {
        let object = CreditsEventObject {
            available_credits: 3,
            low_balance_threshold: 5,
            livemode: true,
        };
        let text = serde_json::to_string(&ObjectData { object }).unwrap();
        assert_eq!(
            text,
            r#"{"object":{"availableCredits":3,"lowBalanceThreshold":5,"livemode":true}}"#
        );
    }
}
