//! Validation and normalisation of the host names clients ask us to update.
//!
//! A [`Hostname`] is always lower case, without a trailing dot, made only of
//! LDH labels (letters, digits, hyphens), so it is safe to use as a file name
//! and as a Plesk argument. The one exception is an ACME DNS-01 challenge
//! name: `_acme-challenge.` in front of a valid host name (only there, only
//! once; no other underscore label is accepted).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// Longest name we accept, in characters, without the trailing dot (RFC 1035).
pub const MAX_NAME_LEN: usize = 253;
/// Longest label (RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;
/// The label in front of a host name where ACME DNS-01 looks for its TXT
/// records (RFC 8555 section 8.4).
pub const ACME_CHALLENGE_LABEL: &str = "_acme-challenge";

/// Why a string is not a fully qualified host name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HostnameError {
    /// Nothing was given.
    #[error("host name is empty")]
    Empty,
    /// The name is longer than 253 characters.
    #[error("host name is {0} characters long, the limit is 253")]
    TooLong(usize),
    /// Only one label, e.g. `localhost`.
    #[error("host name {0:?} is not fully qualified (it needs at least two labels)")]
    NotQualified(String),
    /// Two dots in a row, or a leading dot.
    #[error("host name {0:?} has an empty label")]
    EmptyLabel(String),
    /// A label is longer than 63 characters.
    #[error("label {label:?} of host name {name:?} is longer than 63 characters")]
    LabelTooLong {
        /// The whole name.
        name: String,
        /// The offending label.
        label: String,
    },
    /// A character outside letters, digits and hyphens.
    #[error(
        "host name {name:?} contains the character {ch:?}; only letters, digits, '-' and '.' are allowed"
    )]
    BadCharacter {
        /// The whole name (escaped when shown).
        name: String,
        /// The offending character.
        ch: char,
    },
    /// A label starts or ends with a hyphen.
    #[error("label {label:?} of host name {name:?} starts or ends with '-'")]
    HyphenAtEdge {
        /// The whole name.
        name: String,
        /// The offending label.
        label: String,
    },
    /// The top-level label is all digits (the name looks like an IPv4 address).
    #[error("host name {0:?} ends in an all-numeric label")]
    NumericTld(String),
    /// A label starting with `xn--` that is not a plausible punycode label.
    #[error("label {label:?} of host name {name:?} is not valid punycode")]
    BadPunycode {
        /// The whole name.
        name: String,
        /// The offending label.
        label: String,
    },
}

/// A validated, normalised, fully qualified host name (`home.dyn.example.com`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hostname(String);

impl Hostname {
    /// Validates `input` and normalises it: ASCII lower case, one trailing dot
    /// removed. Internationalised names must be sent in punycode (`xn--...`).
    /// `_acme-challenge.<host>` is accepted when `<host>` is a valid name.
    pub fn parse(input: &str) -> Result<Self, HostnameError> {
        let prefix_len = ACME_CHALLENGE_LABEL.len() + 1;
        // Compared as bytes: a match is ASCII, so `prefix_len` is a char boundary.
        let is_challenge = input.as_bytes().get(..prefix_len).is_some_and(|p| {
            p[..prefix_len - 1].eq_ignore_ascii_case(ACME_CHALLENGE_LABEL.as_bytes())
                && p[prefix_len - 1] == b'.'
        });
        if is_challenge {
            let target = Hostname::parse_plain(&input[prefix_len..])?;
            return target
                .acme_challenge_name()
                .ok_or_else(|| HostnameError::TooLong(target.0.len() + prefix_len));
        }
        Hostname::parse_plain(input)
    }

    /// [`Hostname::parse`] without the `_acme-challenge` exception.
    fn parse_plain(input: &str) -> Result<Self, HostnameError> {
        let trimmed = input.strip_suffix('.').unwrap_or(input);
        if trimmed.is_empty() {
            return Err(HostnameError::Empty);
        }
        let char_count = trimmed.chars().count();
        if char_count > MAX_NAME_LEN {
            return Err(HostnameError::TooLong(char_count));
        }
        if let Some(ch) = trimmed
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
        {
            return Err(HostnameError::BadCharacter {
                name: trimmed.to_string(),
                ch,
            });
        }
        let name = trimmed.to_ascii_lowercase();
        let labels: Vec<&str> = name.split('.').collect();
        for label in &labels {
            check_label(&name, label)?;
        }
        if labels.len() < 2 {
            return Err(HostnameError::NotQualified(name));
        }
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(HostnameError::NumericTld(name));
        }
        Ok(Hostname(name))
    }

    /// The name as a string slice (lower case, no trailing dot).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for an `_acme-challenge.<host>` name.
    pub fn is_acme_challenge(&self) -> bool {
        self.0.starts_with(ACME_CHALLENGE_LABEL)
    }

    /// The host an `_acme-challenge.<host>` name is for; `None` for any
    /// other name.
    pub fn acme_challenge_target(&self) -> Option<Hostname> {
        let rest = self
            .0
            .strip_prefix(ACME_CHALLENGE_LABEL)?
            .strip_prefix('.')?;
        Some(Hostname(rest.to_string()))
    }

    /// `_acme-challenge.<self>`; `None` when this is already a challenge
    /// name or the result would be longer than a name may be.
    pub fn acme_challenge_name(&self) -> Option<Hostname> {
        let name = format!("{ACME_CHALLENGE_LABEL}.{}", self.0);
        (!self.is_acme_challenge() && name.len() <= MAX_NAME_LEN).then_some(Hostname(name))
    }

    /// True when this name equals `zone` or lies below it.
    pub fn is_in_zone(&self, zone: &Hostname) -> bool {
        self.0 == zone.0
            || (self.0.len() > zone.0.len()
                && self.0.ends_with(zone.0.as_str())
                && self.0.as_bytes()[self.0.len() - zone.0.len() - 1] == b'.')
    }

    /// The part of this name in front of `zone` (`home` for `home.dyn.example.com`
    /// in `dyn.example.com`); the empty string for the zone apex; `None` when
    /// the name is not in the zone.
    pub fn label_in_zone(&self, zone: &Hostname) -> Option<&str> {
        if self.0 == zone.0 {
            Some("")
        } else if self.is_in_zone(zone) {
            Some(&self.0[..self.0.len() - zone.0.len() - 1])
        } else {
            None
        }
    }
}

fn check_label(name: &str, label: &str) -> Result<(), HostnameError> {
    if label.is_empty() {
        return Err(HostnameError::EmptyLabel(name.to_string()));
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(HostnameError::LabelTooLong {
            name: name.to_string(),
            label: label.to_string(),
        });
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(HostnameError::HyphenAtEdge {
            name: name.to_string(),
            label: label.to_string(),
        });
    }
    // RFC 5891: "--" in positions 3 and 4 is reserved for A-labels (xn--).
    if label.len() >= 4 && &label[2..4] == "--" {
        let valid_ace = label.starts_with("xn--")
            && label.len() > 4
            && label[4..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid_ace {
            return Err(HostnameError::BadPunycode {
                name: name.to_string(),
                label: label.to_string(),
            });
        }
    }
    Ok(())
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Hostname {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Hostname {
    type Err = HostnameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hostname::parse(s)
    }
}

impl Serialize for Hostname {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Hostname {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Hostname::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        Hostname::parse(s).expect(s).to_string()
    }

    #[test]
    fn accepts_and_normalises() {
        assert_eq!(ok("home.dyn.example.com"), "home.dyn.example.com");
        assert_eq!(ok("home.dyn.example.com."), "home.dyn.example.com");
        assert_eq!(ok("HOME.Dyn.Example.COM"), "home.dyn.example.com");
        assert_eq!(ok("a-1.b2.example.com"), "a-1.b2.example.com");
        assert_eq!(ok("xn--bcher-kva.example.com"), "xn--bcher-kva.example.com");
        assert_eq!(ok("XN--BCHER-KVA.example.com"), "xn--bcher-kva.example.com");
        assert_eq!(ok("1.2.3.example.com"), "1.2.3.example.com");
    }

    #[test]
    fn rejects_malformed_names() {
        use HostnameError::*;
        type Check = fn(&HostnameError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, Empty)),
            (".", |e| matches!(e, Empty)),
            ("localhost", |e| matches!(e, NotQualified(_))),
            ("home..example.com", |e| matches!(e, EmptyLabel(_))),
            (".example.com", |e| matches!(e, EmptyLabel(_))),
            ("home.example.com..", |e| matches!(e, EmptyLabel(_))),
            ("my_host.example.com", |e| {
                matches!(e, BadCharacter { ch: '_', .. })
            }),
            ("home .example.com", |e| {
                matches!(e, BadCharacter { ch: ' ', .. })
            }),
            ("hö.example.com", |e| {
                matches!(e, BadCharacter { ch: 'ö', .. })
            }),
            ("a;rm -rf.example.com", |e| {
                matches!(e, BadCharacter { ch: ';', .. })
            }),
            ("a\r\nb.example.com", |e| {
                matches!(e, BadCharacter { ch: '\r', .. })
            }),
            ("-home.example.com", |e| matches!(e, HyphenAtEdge { .. })),
            ("home-.example.com", |e| matches!(e, HyphenAtEdge { .. })),
            ("1.2.3.4", |e| matches!(e, NumericTld(_))),
            ("ab--c.example.com", |e| matches!(e, BadPunycode { .. })),
            ("xn--.example.com", |e| matches!(e, HyphenAtEdge { .. })),
            ("ab--cd.example.com", |e| matches!(e, BadPunycode { .. })),
            ("*.example.com", |e| {
                matches!(e, BadCharacter { ch: '*', .. })
            }),
            ("home/../etc.example.com", |e| {
                matches!(e, BadCharacter { ch: '/', .. })
            }),
        ];
        for (input, check) in cases {
            let err = Hostname::parse(input).expect_err(input);
            assert!(check(&err), "{input:?} gave {err:?}");
        }
    }

    #[test]
    fn acme_challenge_names_only_in_front() {
        let c = Hostname::parse("_ACME-Challenge.Home.dyn.example.com.").unwrap();
        assert_eq!(c.as_str(), "_acme-challenge.home.dyn.example.com");
        assert!(c.is_acme_challenge());
        assert_eq!(
            c.acme_challenge_target().unwrap().as_str(),
            "home.dyn.example.com"
        );
        let host = Hostname::parse("home.dyn.example.com").unwrap();
        assert!(!host.is_acme_challenge());
        assert_eq!(host.acme_challenge_target(), None);
        assert_eq!(host.acme_challenge_name(), Some(c.clone()));
        assert_eq!(c.acme_challenge_name(), None, "no challenge of a challenge");
        for bad in [
            "_acme-challenge",
            "_acme-challenge.",
            "_acme-challenge.com",
            "_acme-challenge._acme-challenge.home.example.com",
            "home._acme-challenge.example.com",
            "_acme-challengex.home.example.com",
            "_acme_challenge.home.example.com",
            "_dmarc.example.com",
            "_acme-challenge.bad_name.example.com",
            "_acme-challenge..example.com",
            "_acme-challenge.1.2.3.4",
        ] {
            assert!(Hostname::parse(bad).is_err(), "{bad:?} accepted");
        }
        // the prefix counts towards the 253 characters
        let label63 = "a".repeat(63);
        let host253 = format!("{label63}.{label63}.{label63}.{}", "a".repeat(61));
        assert!(Hostname::parse(&host253).is_ok());
        assert!(matches!(
            Hostname::parse(&format!("_acme-challenge.{host253}")),
            Err(HostnameError::TooLong(269))
        ));
        assert_eq!(
            Hostname::parse(&host253).unwrap().acme_challenge_name(),
            None
        );
    }

    #[test]
    fn length_limits() {
        let label63 = "a".repeat(63);
        let label64 = "a".repeat(64);
        assert!(Hostname::parse(&format!("{label63}.example.com")).is_ok());
        assert!(matches!(
            Hostname::parse(&format!("{label64}.example.com")),
            Err(HostnameError::LabelTooLong { .. })
        ));
        // 4 * 63 + 3 dots = 255 > 253
        let long = [label63.as_str(); 4].join(".");
        assert!(matches!(
            Hostname::parse(&long),
            Err(HostnameError::TooLong(255))
        ));
        // exactly 253 characters is fine, and a trailing dot does not count
        let exact = format!("{}.{}.{}.{}", label63, label63, label63, "a".repeat(61));
        assert_eq!(exact.len(), 253);
        assert!(Hostname::parse(&exact).is_ok());
        assert!(Hostname::parse(&format!("{exact}.")).is_ok());
    }

    #[test]
    fn zone_membership_and_labels() {
        let zone = Hostname::parse("dyn.example.com").unwrap();
        let host = Hostname::parse("home.dyn.example.com").unwrap();
        let deep = Hostname::parse("a.b.dyn.example.com").unwrap();
        let other = Hostname::parse("homedyn.example.com").unwrap();
        let lookalike = Hostname::parse("xdyn.example.com").unwrap();
        assert!(host.is_in_zone(&zone));
        assert!(zone.is_in_zone(&zone));
        assert!(!other.is_in_zone(&zone));
        assert!(!lookalike.is_in_zone(&zone));
        assert_eq!(host.label_in_zone(&zone), Some("home"));
        assert_eq!(deep.label_in_zone(&zone), Some("a.b"));
        assert_eq!(zone.label_in_zone(&zone), Some(""));
        assert_eq!(lookalike.label_in_zone(&zone), None);
    }

    #[test]
    fn serde_round_trip_validates() {
        let h: Hostname = serde_json::from_str("\"Home.Example.com.\"").unwrap();
        assert_eq!(h.as_str(), "home.example.com");
        assert!(serde_json::from_str::<Hostname>("\"bad_name.example.com\"").is_err());
    }
}
