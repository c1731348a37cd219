//! Appointment statuses and the moves between them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Confirmed,
    Cancelled,
    Completed,
    NoShow,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Confirmed,
        Status::Cancelled,
        Status::Completed,
        Status::NoShow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Confirmed => "CONFIRMED",
            Status::Cancelled => "CANCELLED",
            Status::Completed => "COMPLETED",
            Status::NoShow => "NO_SHOW",
        }
    }

    /// Any letter case, as the list filter accepts (`cancelled`, `No_Show`).
    pub fn parse(text: &str) -> Option<Self> {
        let upper = text.trim().to_ascii_uppercase();
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == upper)
    }

    /// A list filter: any letter case, and `SCHEDULED`, the official SDK's word for `CONFIRMED`.
    pub fn from_filter(text: &str) -> Option<Self> {
        if text.trim().eq_ignore_ascii_case("SCHEDULED") {
            return Some(Status::Confirmed);
        }
        Self::parse(text)
    }

    /// `CONFIRMED` moves to any of the three others; nothing leaves those.
    pub fn can_become(self, next: Status) -> bool {
        self == Status::Confirmed && next != Status::Confirmed
    }
}

#[cfg(test)]
mod tests {
    use super::Status::{self, *};

    #[test]
    fn only_a_confirmed_appointment_can_change_status() {
        for next in [Cancelled, Completed, NoShow] {
            assert!(Confirmed.can_become(next));
        }
        for from in [Cancelled, Completed, NoShow] {
            for next in Status::ALL {
                assert!(!from.can_become(next), "{from:?} -> {next:?}");
            }
        }
        assert!(!Confirmed.can_become(Confirmed));
    }

    #[test]
    fn status_filters_accept_any_letter_case() {
        assert_eq!(Status::parse("cancelled"), Some(Cancelled));
        assert_eq!(Status::parse("No_Show"), Some(NoShow));
        assert_eq!(Status::parse("pending"), None);
    }

    #[test]
    fn a_filter_reads_scheduled_as_confirmed() {
        assert_eq!(Status::from_filter("SCHEDULED"), Some(Confirmed));
        assert_eq!(Status::from_filter("scheduled"), Some(Confirmed));
        assert_eq!(Status::from_filter("no_show"), Some(NoShow));
        assert_eq!(
            Status::parse("SCHEDULED"),
            None,
            "stored statuses keep their own words"
        );
        assert_eq!(Status::from_filter("pending"), None);
    }
}
