//! The person-facing fields of an appointment, each parsed into a value that can only hold
//! what the contract allows: a name, a phone number (E.164), an e-mail address, notes, the
//! caller's own id of the person, and free metadata. A parse failure is the field's error, so
//! that a request names every bad field at once.

use serde_json::{Map, Value};

use crate::domain::text::{self, TextError};
use crate::error::{ErrorCode, FieldError};

/// `+` then 8 to 15 digits, the first not 0.
pub fn is_e164(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// A pragmatic check: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let labels_ok = domain.split('.').count() >= 2
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    email.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b))
        && labels_ok
}

/// The name of the person booked: 1 to 200 characters as sent, kept trimmed, not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        match text::required(value, 200) {
            Ok(name) => Ok(Self(name)),
            Err(TextError::Blank) => Err(FieldError::new(
                "name",
                ErrorCode::MissingRequiredField,
                "must not be blank",
            )),
            Err(TextError::TooLong) => Err(FieldError::invalid(
                "name",
                "must be at most 200 characters",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A phone number in E.164 form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(value: String) -> Result<Self, FieldError> {
        if is_e164(&value) {
            Ok(Self(value))
        } else {
            Err(FieldError::new(
                "phone",
                ErrorCode::InvalidPhoneNumber,
                "must be in E.164 form, e.g. +224621234567",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// An e-mail address (see [`is_email`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(value: String) -> Result<Self, FieldError> {
        if is_email(&value) {
            Ok(Self(value))
        } else {
            Err(FieldError::new(
                "email",
                ErrorCode::InvalidEmail,
                "must be an e-mail address",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Free notes of at most 2000 characters, kept as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notes(String);

impl Notes {
    pub fn parse(value: String) -> Result<Self, FieldError> {
        if value.chars().count() <= 2000 {
            Ok(Self(value))
        } else {
            Err(FieldError::invalid(
                "notes",
                "must be at most 2000 characters",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// The caller's own id of the person: 1 to 200 characters, kept as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalUserId(String);

impl ExternalUserId {
    pub fn parse(value: String) -> Result<Self, FieldError> {
        if (1..=200).contains(&value.chars().count()) {
            Ok(Self(value))
        } else {
            Err(FieldError::invalid(
                "externalUserId",
                "must be 1 to 200 characters",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Free string pairs: at most 50 keys of 1 to 40 characters, each with a string value of at
/// most 500.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata(Map<String, Value>);

impl Metadata {
    /// The metadata, or one error for too many keys and one per bad pair.
    pub fn parse(value: Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if value.len() > 50 {
            errors.push(FieldError::invalid("metadata", "at most 50 keys"));
        }
        for (key, item) in &value {
            let ok = (1..=40).contains(&key.chars().count())
                && item
                    .as_str()
                    .is_some_and(|text| text.chars().count() <= 500);
            if !ok {
                errors.push(FieldError::invalid(
                    &format!("metadata.{key}"),
                    "keys are 1 to 40 characters, values strings of at most 500",
                ));
            }
        }
        if errors.is_empty() {
            Ok(Self(value))
        } else {
            Err(errors)
        }
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn into_inner(self) -> Map<String, Value> {
        self.0
    }
}

/// Parses an optional field: absent is `None`, a bad value adds its error to `errors`.
pub fn optional<T>(
    value: Option<String>,
    parse: impl FnOnce(String) -> Result<T, FieldError>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    parse(value?).map_err(|error| errors.push(error)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_must_be_e164() {
        for good in ["+224621234567", "+33612345678", "+12025550123"] {
            assert!(is_e164(good), "{good}");
        }
        for bad in [
            "224621234567",
            "+0224621234",
            "+224 621 234",
            "+1234567",
            "+1234567890123456",
            "+",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        for good in ["jean@example.gn", "a.b+tag@sub.example.com"] {
            assert!(is_email(good), "{good}");
        }
        for bad in [
            "jean",
            "@example.gn",
            "jean@",
            "jean@localhost",
            "je an@example.gn",
            "jean@exa_mple.gn",
            "j@@example.gn",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn a_phone_without_plus_is_rejected() {
        let error = Phone::parse("224621234567".to_owned()).unwrap_err();
        assert_eq!(error.field, "phone");
        assert_eq!(error.code, ErrorCode::InvalidPhoneNumber);
        assert!(Phone::parse("+224621234567".to_owned()).is_ok());
    }

    #[test]
    fn a_name_is_trimmed_and_blank_is_missing() {
        assert_eq!(
            PersonName::parse("  Jean ")
                .map(PersonName::into_inner)
                .ok(),
            Some("Jean".to_owned())
        );
        let blank = PersonName::parse("   ").unwrap_err();
        assert_eq!(blank.code, ErrorCode::MissingRequiredField);
        let long = PersonName::parse(&"x".repeat(201)).unwrap_err();
        assert_eq!(long.code, ErrorCode::InvalidFieldValue);
    }

    #[test]
    fn metadata_names_every_bad_pair() {
        let mut value = Map::new();
        value.insert("ok".to_owned(), Value::from("fine"));
        value.insert(String::new(), Value::from("empty key"));
        value.insert("number".to_owned(), Value::from(3));
        let errors = Metadata::parse(value).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["metadata.", "metadata.number"]);
        let many: Map<String, Value> = (0..51)
            .map(|i| (format!("k{i}"), Value::from("v")))
            .collect();
        assert_eq!(Metadata::parse(many).unwrap_err()[0].field, "metadata");
    }

    #[test]
    fn notes_and_external_ids_have_their_limits() {
        assert!(Notes::parse("n".repeat(2000)).is_ok());
        assert_eq!(Notes::parse("n".repeat(2001)).unwrap_err().field, "notes");
        assert!(ExternalUserId::parse(String::new()).is_err());
        assert!(ExternalUserId::parse("u".repeat(201)).is_err());
        assert!(ExternalUserId::parse("u-42".to_owned()).is_ok());
    }
}
