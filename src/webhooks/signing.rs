//! Signatures of a delivery, and the exact bytes they cover. Pure, tested on fixed vectors.
//!
//! - `X-Moncreneau-Signature: sha256=<hex>` and `X-Webhook-Signature: <hex>`: HMAC-SHA256 of the
//!   raw body keyed with the whole secret string (`whsec_…` included), as MONCRENEAU does.
//! - `webhook-signature: v1,<base64>` (Standard Webhooks): HMAC-SHA256 of `{id}.{timestamp}.{body}`
//!   keyed with the base64-decoded bytes after `whsec_`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::Serialize;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const SECRET_PREFIX: &str = "whsec_";

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length; the error case cannot occur.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The hex HMAC of MONCRENEAU's headers.
pub fn hex_signature(secret: &str, body: &[u8]) -> String {
    hex::encode(hmac(secret.as_bytes(), &[body]))
}

/// The key bytes of a `whsec_…` secret, if it has the documented form (24 to 64 bytes).
pub fn secret_bytes(secret: &str) -> Option<Vec<u8>> {
    let bytes = STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    (24..=64).contains(&bytes.len()).then_some(bytes)
}

/// One Standard Webhooks signature entry, `v1,<base64>`.
pub fn standard_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = secret_bytes(secret)?;
    let timestamp = timestamp.to_string();
    let mac = hmac(
        &key,
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    );
    Some(format!("v1,{}", STANDARD.encode(mac)))
}

/// A new secret: `whsec_` and the base64 of 32 random bytes.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The body bytes: JSON laid out as Python's `json.dumps` does (`", "` and `": "` separators,
/// every character outside printable ASCII escaped, DEL included), so a receiver that re-serializes the parsed body with the official SDK's
/// helper computes the same bytes, hence the same signature.
pub fn body_bytes(value: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    // Serializing a JSON value into memory cannot fail.
    if value.serialize(&mut serializer).is_err() {
        out.clear();
    }
    out
}

struct PythonFormatter;

/// `", "` before every item but the first of an array or object.
fn separator<W: ?Sized + std::io::Write>(writer: &mut W, first: bool) -> std::io::Result<()> {
    if first {
        Ok(())
    } else {
        writer.write_all(b", ")
    }
}

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        separator(writer, first)
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        separator(writer, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        // serde_json has already escaped quotes, backslashes and C0 controls as Python does;
        // Python's `ensure_ascii` also escapes DEL and everything beyond ASCII.
        for c in fragment.chars() {
            if (' '..='~').contains(&c) {
                writer.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Reference values computed independently with Python's hmac/hashlib.
    #[test]
    fn the_hex_signature_matches_a_fixed_vector() {
        assert_eq!(
            hex_signature(
                "test_secret_key",
                br#"{"id": "evt_123", "type": "appointment.created"}"#
            ),
            "1b2e59cb319c7e19ce2e8df682d945d3d57c8a0a8b05a0a6e0ca42388ead2183"
        );
    }

    // The example of the Standard Webhooks specification.
    #[test]
    fn the_standard_signature_matches_the_specification_example() {
        let signature = standard_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            signature.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn a_different_body_or_secret_changes_the_signature() {
        let base = hex_signature("whsec_a", b"{}");
        assert_ne!(base, hex_signature("whsec_b", b"{}"));
        assert_ne!(base, hex_signature("whsec_a", b"{ }"));
    }

    #[test]
    fn secrets_must_be_whsec_and_24_to_64_bytes() {
        assert!(secret_bytes(&generate_secret()).is_some_and(|key| key.len() == 32));
        assert!(secret_bytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_some());
        assert!(secret_bytes("whsec_c2hvcnQ=").is_none(), "too short");
        assert!(
            secret_bytes("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_none(),
            "no prefix"
        );
        assert!(secret_bytes("whsec_not base64!").is_none());
        assert_ne!(generate_secret(), generate_secret());
    }

    #[test]
    fn bodies_are_laid_out_as_python_json_dumps() {
        // Python: json.dumps({"b": [1, "é", {"x": None}], "a": "☃ 😀\n"}) with keys in this order.
        let value = json!({"a": "\u{2603} \u{1F600}\n", "b": [1, "é", {"x": null}]});
        assert_eq!(
            String::from_utf8(body_bytes(&value)).unwrap(),
            r#"{"a": "\u2603 \ud83d\ude00\n", "b": [1, "\u00e9", {"x": null}]}"#
        );
    }

    #[test]
    fn every_character_python_escapes_is_escaped() {
        // Python: json.dumps({"a": "\x7f\x01\x1f\u2028 é 😀 \"\\ \t\b\f"})
        let value = json!({"a": "\u{7f}\u{1}\u{1f}\u{2028} é \u{1F600} \"\\ \t\u{8}\u{c}"});
        assert_eq!(
            String::from_utf8(body_bytes(&value)).unwrap(),
            r#"{"a": "\u007f\u0001\u001f\u2028 \u00e9 \ud83d\ude00 \"\\ \t\b\f"}"#
        );
    }

    proptest::proptest! {
        #[test]
        fn bodies_are_printable_ascii_and_read_back_unchanged(text in "\\PC*|[\\x00-\\x7f]*") {
            let value = json!({"text": text});
            let bytes = body_bytes(&value);
            proptest::prop_assert!(bytes.iter().all(|byte| (b' '..=b'~').contains(byte)));
            let back: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            proptest::prop_assert_eq!(back, value);
        }
    }
}
