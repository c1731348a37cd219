//! Phone numbers (E.164) and e-mail addresses of the person who books.

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
}
