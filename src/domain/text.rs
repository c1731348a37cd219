//! Free-text fields: the documented maximum length applies to the value as sent (so that what
//! the schema forbids is refused), blankness to its trimmed form, and the trimmed form is kept.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextError {
    Blank,
    TooLong,
}

/// A required text of at most `max` characters, not blank; answers it trimmed.
pub fn required(value: &str, max: usize) -> Result<String, TextError> {
    if value.chars().count() > max {
        return Err(TextError::TooLong);
    }
    let trimmed = value.trim();
    if trimmed.is_empty() {
        Err(TextError::Blank)
    } else {
        Ok(trimmed.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_counts_the_value_as_sent_and_blank_is_refused() {
        assert_eq!(required("  Jean ", 10), Ok("Jean".to_owned()));
        assert_eq!(required("   ", 10), Err(TextError::Blank));
        assert_eq!(
            required(&format!("{}Jean", " ".repeat(8)), 10),
            Err(TextError::TooLong)
        );
        assert_eq!(
            required("ééééé", 5),
            Ok("ééééé".to_owned()),
            "characters, not bytes"
        );
    }
}
