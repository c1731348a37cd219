//! The circuit of an endpoint: after enough consecutive failures it rests, and then sends one
//! probe at a time until an attempt succeeds. Pure, so the rule is tested without a receiver.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The longest an endpoint rests between two probes, unless the first rest is longer already.
const LONGEST_REST: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitRule {
    /// Consecutive failures that open the circuit.
    pub failures: u32,
    /// The first rest; each failed probe doubles it.
    pub probe: Duration,
}

/// What `GET /webhooks/{id}` says of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Deliveries go out as they fall due.
    Closed,
    /// Resting: nothing goes out before `circuit_open_until`.
    Open,
    /// Rested: the next attempt is a probe, alone; its success closes the circuit.
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "CLOSED",
            CircuitState::Open => "OPEN",
            CircuitState::HalfOpen => "HALF_OPEN",
        }
    }
}

impl CircuitRule {
    /// How long the endpoint rests after a failure that brought its count to `consecutive`;
    /// `None` while the circuit stays closed.
    pub fn rest_after(&self, consecutive: u32) -> Option<Duration> {
        let probes_failed = consecutive.checked_sub(self.failures)?;
        let factor = 1u32 << probes_failed.min(16);
        let longest = LONGEST_REST.max(self.probe);
        Some(
            self.probe
                .checked_mul(factor)
                .unwrap_or(longest)
                .min(longest),
        )
    }

    /// Whether an endpoint with `consecutive` failures sends one probe at a time.
    pub fn probing(&self, consecutive: u32) -> bool {
        consecutive >= self.failures
    }

    pub fn state(
        &self,
        consecutive: u32,
        open_until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> CircuitState {
        if !self.probing(consecutive) {
            CircuitState::Closed
        } else if open_until.is_some_and(|until| until > now) {
            CircuitState::Open
        } else {
            CircuitState::HalfOpen
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: CircuitRule = CircuitRule {
        failures: 5,
        probe: Duration::from_secs(5),
    };

    #[test]
    fn the_circuit_opens_at_the_threshold_and_each_failed_probe_doubles_the_rest() {
        assert_eq!(RULE.rest_after(4), None);
        assert_eq!(RULE.rest_after(5), Some(Duration::from_secs(5)));
        assert_eq!(RULE.rest_after(6), Some(Duration::from_secs(10)));
        assert_eq!(RULE.rest_after(8), Some(Duration::from_secs(40)));
    }

    #[test]
    fn the_rest_is_capped_at_ten_minutes_even_after_endless_failures() {
        assert_eq!(RULE.rest_after(12), Some(LONGEST_REST));
        assert_eq!(RULE.rest_after(u32::MAX), Some(LONGEST_REST));
        let slow = CircuitRule {
            failures: 1,
            probe: Duration::from_secs(3600),
        };
        assert_eq!(
            slow.rest_after(9),
            Some(Duration::from_secs(3600)),
            "a first rest longer than the cap is kept"
        );
    }

    #[test]
    fn the_state_reads_the_count_and_the_rest() {
        let now = Utc::now();
        let later = now + chrono::Duration::seconds(3);
        assert_eq!(RULE.state(4, Some(later), now), CircuitState::Closed);
        assert_eq!(RULE.state(5, Some(later), now), CircuitState::Open);
        assert_eq!(RULE.state(5, Some(now), now), CircuitState::HalfOpen);
        assert_eq!(RULE.state(7, None, now), CircuitState::HalfOpen);
    }
}
