//! ACME DNS-01 challenge values and who may set them.
//!
//! The TXT value of a DNS-01 challenge is the base64url encoding, without
//! padding, of a SHA-256 digest (RFC 8555 section 8.4): exactly 43
//! characters of `A-Z a-z 0-9 - _`, whose last character carries only four
//! bits. Nothing else is accepted, so a value is always safe as a Plesk
//! argument, in a zone file and in a log line.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::authorization::{Grant, may_update};
use crate::hostname::Hostname;

/// Length of a challenge value: base64url of 32 bytes, without padding.
pub const CHALLENGE_VALUE_LEN: usize = 43;
/// Length of a [`ValueTag`] in hex digits.
pub const VALUE_TAG_LEN: usize = 16;

/// Why a string is not a DNS-01 challenge value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChallengeValueError {
    /// Nothing was given.
    #[error("the TXT value is empty")]
    Empty,
    /// A character outside printable ASCII (control, space, non-ASCII).
    #[error("the TXT value has a non-printable or non-ASCII character at position {0}")]
    NotPrintable(usize),
    /// Printable, but not base64url.
    #[error(
        "the TXT value has {0:?}, which is not a base64url character (A-Z, a-z, 0-9, '-', '_')"
    )]
    NotBase64Url(char),
    /// Not 43 characters long.
    #[error("the TXT value is {0} characters long; an ACME challenge value has exactly 43")]
    Length(usize),
    /// 43 base64url characters that do not encode a 32-byte digest.
    #[error("the TXT value is not the base64url encoding of a SHA-256 digest")]
    NotDigest,
}

/// A validated ACME DNS-01 challenge value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChallengeValue(String);

impl ChallengeValue {
    /// Checks `input`: printable ASCII, base64url, 43 characters, a 32-byte digest.
    pub fn parse(input: &str) -> Result<ChallengeValue, ChallengeValueError> {
        if input.is_empty() {
            return Err(ChallengeValueError::Empty);
        }
        if let Some((position, _)) = input.char_indices().find(|(_, c)| !c.is_ascii_graphic()) {
            return Err(ChallengeValueError::NotPrintable(position));
        }
        if let Some(c) = input
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(ChallengeValueError::NotBase64Url(c));
        }
        if input.len() != CHALLENGE_VALUE_LEN {
            return Err(ChallengeValueError::Length(input.len()));
        }
        // The standard engine rejects non-zero trailing bits: one digest has
        // exactly one encoding.
        match URL_SAFE_NO_PAD.decode(input) {
            Ok(bytes) if bytes.len() == 32 => Ok(ChallengeValue(input.to_string())),
            _ => Err(ChallengeValueError::NotDigest),
        }
    }

    /// The value for an ACME key authorization (`token.thumbprint`): its
    /// SHA-256 digest, base64url encoded (RFC 8555 section 8.4), as lego's
    /// `httpreq` RAW mode leaves to the server.
    pub fn from_key_authorization(key_authorization: &str) -> ChallengeValue {
        ChallengeValue(URL_SAFE_NO_PAD.encode(Sha256::digest(key_authorization.as_bytes())))
    }

    /// The value as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The short fingerprint that names this value's queue entry.
    pub fn tag(&self) -> ValueTag {
        let digest = Sha256::digest(self.0.as_bytes());
        ValueTag(hex::encode(&digest[..VALUE_TAG_LEN / 2]))
    }
}

impl fmt::Display for ChallengeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ChallengeValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ChallengeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        ChallengeValue::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// The first 16 hex digits (lower case) of the SHA-256 of a challenge value:
/// names one value's queue entry, so that entries for different values of one
/// name never replace each other, and a cleanup replaces its own present.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ValueTag(String);

impl ValueTag {
    /// Parses exactly 16 lower-case hex digits.
    pub fn parse(input: &str) -> Option<ValueTag> {
        (input.len() == VALUE_TAG_LEN
            && input
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| ValueTag(input.to_string()))
    }

    /// The tag as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ValueTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Decides whether `user` with `grants` may set TXT records at `name`: only
/// an `_acme-challenge.<host>` name, and only when the user may update
/// `<host>` (an exact grant, a `*.` grant covering it, or the `user@zone`
/// convention). Whether `<host>` is configured is checked separately.
pub fn may_set_challenge(
    user: &str,
    grants: &[Grant],
    name: &Hostname,
    user_named_hosts: bool,
) -> bool {
    name.acme_challenge_target()
        .is_some_and(|host| may_update(user, grants, &host, user_named_hosts))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real key authorization digest: base64url(sha256("token.thumbprint")).
    fn real_value() -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(b"evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"))
    }

    #[test]
    fn accepts_digests_only() {
        let good = real_value();
        assert_eq!(good.len(), 43);
        assert_eq!(ChallengeValue::parse(&good).unwrap().as_str(), good);
        use ChallengeValueError::*;
        let mut trailing = good.clone();
        // 'B' sets a low bit in the last character: not a canonical encoding
        trailing.replace_range(42.., "B");
        let cases: Vec<(String, ChallengeValueError)> = vec![
            (String::new(), Empty),
            (format!("{} ", &good[..42]), NotPrintable(42)),
            (format!("{}\u{7f}", &good[..42]), NotPrintable(42)),
            (format!("\n{}", &good[..42]), NotPrintable(0)),
            (format!("{}é", &good[..41]), NotPrintable(41)),
            (format!("{}=", &good[..42]), NotBase64Url('=')),
            (format!("{}+", &good[..42]), NotBase64Url('+')),
            (format!("\"{}", &good[..42]), NotBase64Url('"')),
            (good[..42].to_string(), Length(42)),
            (format!("{good}A"), Length(44)),
            ("a".repeat(300), Length(300)),
            (trailing, NotDigest),
        ];
        for (input, want) in cases {
            assert_eq!(ChallengeValue::parse(&input), Err(want), "{input:?}");
        }
    }

    #[test]
    fn key_authorizations_become_values() {
        let ka = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";
        let v = ChallengeValue::from_key_authorization(ka);
        assert_eq!(v.as_str(), real_value());
        assert_eq!(ChallengeValue::parse(v.as_str()), Ok(v));
    }

    #[test]
    fn tags_are_stable_and_strict() {
        let v = ChallengeValue::parse(&real_value()).unwrap();
        let tag = v.tag();
        assert_eq!(tag.as_str().len(), 16);
        assert_eq!(ValueTag::parse(tag.as_str()), Some(tag.clone()));
        let hex = hex::encode(Sha256::digest(real_value().as_bytes()));
        assert_eq!(tag.as_str(), &hex[..16]);
        for bad in [
            "",
            "0123456789abcde",
            "0123456789abcdef0",
            "0123456789ABCDEF",
            "0123456789abcdeg",
        ] {
            assert_eq!(ValueTag::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn challenge_names_follow_host_grants() {
        let h = |s: &str| Hostname::parse(s).unwrap();
        let grants = vec![
            Grant::parse("home.dyn.example.com").unwrap(),
            Grant::parse("*.office.dyn.example.com").unwrap(),
        ];
        let may = |name: &str| may_set_challenge("alice", &grants, &h(name), false);
        assert!(may("_acme-challenge.home.dyn.example.com"));
        assert!(may("_acme-challenge.pc1.office.dyn.example.com"));
        assert!(!may("home.dyn.example.com"), "not a challenge name");
        assert!(
            !may("_acme-challenge.office.dyn.example.com"),
            "a pattern does not cover its base"
        );
        assert!(!may("_acme-challenge.nas.dyn.example.com"));
        assert!(!may("_acme-challenge.sub.home.dyn.example.com"));
        assert!(may_set_challenge(
            "home@dyn.example.com",
            &[],
            &h("_acme-challenge.home.dyn.example.com"),
            true
        ));
    }
}
