//! Signatures of webhook bodies, the same scheme for outgoing alerts and incoming hooks
//! (SPEC §6): `X-Sensei-Timestamp: <unix seconds>` and
//! `X-Sensei-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`.
//!
//! Each header has exactly one accepted form, so that a signed delivery has exactly one
//! text: the timestamp is ASCII decimal digits without sign, whitespace or leading zero
//! (what `i64::to_string` writes for the instant), and the signature is `sha256=` followed
//! by 64 lower-case hex digits (what [`sign`] writes). Anything else is refused before the
//! MAC is checked, rather than read leniently: a lenient reader accepts many texts for one
//! MAC, and each of them looks new to a replay check that compares text.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;

pub const TIMESTAMP_HEADER: &str = "X-Sensei-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Sensei-Signature";

/// What the signature header starts with: the MAC's algorithm.
pub const SCHEME: &str = "sha256=";

/// Bytes in an HMAC-SHA256.
const MAC_LEN: usize = 32;

/// Why a header is not in its one accepted form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error(
        "{TIMESTAMP_HEADER} must be unix seconds in ASCII decimal digits, without sign, spaces or leading zeros (like 1700000000), not `{0}`"
    )]
    Timestamp(String),
    #[error(
        "{SIGNATURE_HEADER} must be `sha256=` followed by 64 lower-case hex digits (the HMAC-SHA256 of \"<timestamp>.<raw body>\"); {0}"
    )]
    Signature(SignatureFault),
}

/// What is wrong with a signature header's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureFault {
    #[error("it does not start with `sha256=`")]
    Scheme,
    #[error("it has {0} characters after `sha256=`")]
    Length(usize),
    /// `position` counts characters after `sha256=` from 1.
    #[error("character {position} after `sha256=`, `{found}`, is not a lower-case hex digit")]
    Digit { found: char, position: usize },
}

/// A delivery's timestamp: unix seconds in the one accepted form. Its text is what was signed.
pub fn parse_timestamp(text: &str) -> Result<i64, FormError> {
    let bad = || FormError::Timestamp(text.to_owned());
    let canonical = text.bytes().all(|b| b.is_ascii_digit()) && !text.starts_with('0');
    if !canonical {
        return Err(bad());
    }
    // All digits and no leading zero: only a number too large for i64 fails here.
    text.parse().map_err(|_| bad())
}

/// A signature header's MAC, decoded from its one accepted form.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; MAC_LEN]);

impl Signature {
    /// Reads `sha256=` and 64 lower-case hex digits; anything else says what is wrong.
    pub fn parse(text: &str) -> Result<Signature, FormError> {
        let fault = |f| Err(FormError::Signature(f));
        let Some(hex) = text.strip_prefix(SCHEME) else {
            return fault(SignatureFault::Scheme);
        };
        if let Some((found, position)) = hex
            .chars()
            .zip(1..)
            .find(|(c, _)| !matches!(c, '0'..='9' | 'a'..='f'))
        {
            return fault(SignatureFault::Digit { found, position });
        }
        if hex.len() != 2 * MAC_LEN {
            return fault(SignatureFault::Length(hex.len()));
        }
        let mut mac = [0u8; MAC_LEN];
        match base16ct::lower::decode(hex, &mut mac) {
            Ok(decoded) if decoded.len() == MAC_LEN => Ok(Signature(mac)),
            // The checks above leave nothing for the decoder to refuse.
            _ => fault(SignatureFault::Length(hex.len())),
        }
    }

    /// The MAC: what a replay check compares, so that no other text of it is new.
    pub fn mac(&self) -> &[u8] {
        &self.0
    }

    /// Whether this signs `timestamp` (the header's text) and `body` with `key`; the
    /// comparison takes the same time wherever the first difference is.
    pub fn verifies(&self, key: &[u8], timestamp: &str, body: &[u8]) -> bool {
        mac(key, timestamp, body).verify_slice(&self.0).is_ok()
    }
}

/// The header's value, `sha256=<hex>`.
impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}", base16ct::lower::encode_string(&self.0))
    }
}

/// Not the MAC itself: it is as good as the signed request until it expires.
impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature(..)")
    }
}

fn mac(key: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header's value for `timestamp` (the timestamp header's text, exactly as
/// sent) and `body`: `sha256=<hex>`.
pub fn sign(key: &[u8], timestamp: &str, body: &[u8]) -> String {
    let digest = mac(key, timestamp, body).finalize().into_bytes();
    format!("{SCHEME}{}", base16ct::lower::encode_string(&digest))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // The value `openssl dgst -sha256 -hmac key` gives for `1700000000.{"a":1}`.
    const SIG: &str = "sha256=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03";

    fn verify(key: &[u8], timestamp: &str, body: &[u8], signature: &str) -> bool {
        Signature::parse(signature).is_ok_and(|s| s.verifies(key, timestamp, body))
    }

    #[test]
    fn signs_timestamp_dot_body_and_verifies() {
        let sig = sign(b"key", "1700000000", br#"{"a":1}"#);
        assert_eq!(sig, SIG);
        assert_eq!(Signature::parse(SIG).unwrap().to_string(), SIG);
        assert!(verify(b"key", "1700000000", br#"{"a":1}"#, &sig));
        assert!(!verify(b"key", "1700000001", br#"{"a":1}"#, &sig));
        assert!(!verify(b"other", "1700000000", br#"{"a":1}"#, &sig));
        assert!(!verify(b"key", "1700000000", br#"{"a":2}"#, &sig));
    }

    #[test]
    fn a_signature_has_one_text() {
        let fault = |text: &str| match Signature::parse(text) {
            Err(FormError::Signature(f)) => f,
            other => panic!("{text}: {other:?}"),
        };
        let hex = &SIG[SCHEME.len()..];
        assert_eq!(fault(&SIG.to_uppercase()), SignatureFault::Scheme);
        assert_eq!(fault(hex), SignatureFault::Scheme);
        assert_eq!(
            fault(&format!("sha256={}", hex.to_uppercase())),
            SignatureFault::Digit {
                found: 'A',
                position: 1
            }
        );
        // `u8::from_str_radix` reads `+3` as 0x03: a sign is not a digit.
        let signed = format!("sha256=a4+8{}", &hex[4..]);
        assert_eq!(
            fault(&signed),
            SignatureFault::Digit {
                found: '+',
                position: 3
            }
        );
        assert_eq!(fault(&SIG[..SIG.len() - 1]), SignatureFault::Length(63));
        assert_eq!(fault(&format!("{SIG}0")), SignatureFault::Length(65));
        assert_eq!(fault("sha256="), SignatureFault::Length(0));
        assert_eq!(
            fault(&format!(" {SIG}")),
            SignatureFault::Scheme,
            "no whitespace"
        );
        assert!(matches!(
            fault(&format!("{SIG} ")),
            SignatureFault::Digit { found: ' ', .. }
        ));
        assert!(matches!(
            fault("sha256=é"),
            SignatureFault::Digit { found: 'é', .. }
        ));
    }

    #[test]
    fn a_timestamp_has_one_text() {
        assert_eq!(parse_timestamp("1700000000"), Ok(1_700_000_000));
        assert_eq!(parse_timestamp("9223372036854775807"), Ok(i64::MAX));
        for bad in [
            "",
            "0",
            "01700000000",
            "+1700000000",
            "-1700000000",
            " 1700000000",
            "1700000000 ",
            "1.7e9",
            "9223372036854775808",
            "１７",
        ] {
            assert_eq!(
                parse_timestamp(bad),
                Err(FormError::Timestamp(bad.to_owned())),
                "{bad:?}"
            );
        }
    }
}
