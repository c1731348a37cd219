//! The rules of an endpoint's life that are not the circuit's: how long a rotated-out secret
//! keeps signing, and what one attempt's outcome makes of its delivery and endpoint (retried,
//! failed, the endpoint disabled). Pure, so they are tested without a receiver or a database.

use chrono::{DateTime, Duration, Utc};

use super::worker::GIVE_UP_AFTER;

/// How long a rotated-out secret keeps signing alongside the new one.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);

/// Why the server disabled an endpoint that answered 410 Gone.
pub const GONE: &str = "The receiver answered 410 Gone";
/// Why the server disabled an endpoint failing for [`GIVE_UP_AFTER`].
pub const FAILING_TOO_LONG: &str = "No successful delivery for 3 days";

/// The secret rotated out, while it still signs (until `expires_at`, excluded).
pub fn previous_secret_in_force(
    previous: Option<&str>,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<&str> {
    previous.filter(|_| expires_at.is_some_and(|at| at > now))
}

/// What one attempt makes of its delivery and of its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The receiver took it: the delivery is done.
    Succeeded,
    /// Failed; attempted again at the given instant.
    Retry(DateTime<Utc>),
    /// Failed for good; the endpoint is disabled too when a reason is given.
    Failed { disable: Option<&'static str> },
}

/// The verdict on an attempt: a 2xx succeeds; 410 Gone, or failing without a single success for
/// [`GIVE_UP_AFTER`] since `failing_since`, fails the delivery and disables the endpoint;
/// otherwise the delivery is retried at `next_attempt` (`None`: the schedule is spent, or ends
/// past the calendar, and the delivery fails with the endpoint left active).
pub fn verdict(
    succeeded: bool,
    gone: bool,
    failing_since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    next_attempt: Option<DateTime<Utc>>,
) -> Verdict {
    if succeeded {
        Verdict::Succeeded
    } else if gone {
        Verdict::Failed {
            disable: Some(GONE),
        }
    } else if failing_since.is_some_and(|since| now - since >= GIVE_UP_AFTER) {
        Verdict::Failed {
            disable: Some(FAILING_TOO_LONG),
        }
    } else {
        match next_attempt {
            Some(at) => Verdict::Retry(at),
            None => Verdict::Failed { disable: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::hours(hours)
    }

    #[test]
    fn a_rotated_out_secret_signs_until_it_expires() {
        let expires = Some(at(24));
        assert_eq!(
            previous_secret_in_force(Some("old"), expires, at(23)),
            Some("old")
        );
        assert_eq!(previous_secret_in_force(Some("old"), expires, at(24)), None);
        assert_eq!(previous_secret_in_force(Some("old"), None, at(0)), None);
        assert_eq!(previous_secret_in_force(None, expires, at(0)), None);
    }

    #[test]
    fn a_success_wins_over_a_long_failure() {
        assert_eq!(
            verdict(true, false, Some(at(0)), at(1000), None),
            Verdict::Succeeded
        );
    }

    #[test]
    fn gone_disables_the_endpoint_at_once() {
        assert_eq!(
            verdict(false, true, None, at(0), Some(at(1))),
            Verdict::Failed {
                disable: Some(GONE)
            }
        );
    }

    #[test]
    fn three_days_without_success_disable_the_endpoint() {
        let since = Some(at(0));
        assert_eq!(
            verdict(false, false, since, at(72), Some(at(73))),
            Verdict::Failed {
                disable: Some(FAILING_TOO_LONG)
            }
        );
        assert_eq!(
            verdict(false, false, since, at(71), Some(at(72))),
            Verdict::Retry(at(72))
        );
    }

    #[test]
    fn a_spent_schedule_fails_the_delivery_and_keeps_the_endpoint() {
        assert_eq!(
            verdict(false, false, Some(at(0)), at(1), None),
            Verdict::Failed { disable: None }
        );
    }
}
