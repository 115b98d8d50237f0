//! The queue record format and file naming shared by handler and applier.
//!
//! Layout of the queue directory (Maildir discipline):
//! - `tmp/`: the handler writes an entry here first;
//! - `new/`: pending entries, one per host and type (`<host>_<TYPE>.json`),
//!   renamed in from `tmp/` so a newer update atomically replaces an older one;
//! - `cur/`: entries the applier has claimed (`<host>_<TYPE>.<claim>.json`);
//! - `failed/`: rejected items under names the applier makes, each with a
//!   note (see [`crate::failed`]).
//!
//! The handler (web side) can write `tmp/` and `new/`, so the applier treats
//! every byte and every name here as untrusted.

use std::net::IpAddr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::address::{AddressError, check_publishable};
use crate::config::user_name_problem;
use crate::hostname::Hostname;
use crate::record_type::RecordType;
use crate::untrusted_text::escape;

/// Where the handler writes entries before renaming them into `new/`.
pub const TMP_DIR: &str = "tmp";
/// Pending entries.
pub const NEW_DIR: &str = "new";
/// Entries claimed by the applier.
pub const CUR_DIR: &str = "cur";
/// Rejected entries and their reasons.
pub const FAILED_DIR: &str = "failed";
/// Largest entry file the applier reads.
pub const MAX_ENTRY_BYTES: u64 = 4096;
/// The current entry format version.
pub const ENTRY_FORMAT: u32 = 1;
/// Longest claim id the applier accepts in a name.
const MAX_CLAIM_LEN: usize = 40;

/// One queued update: set `host`'s `record_type` record to `address`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueEntry {
    /// Format version ([`ENTRY_FORMAT`]).
    pub format: u32,
    /// The host to update.
    pub host: Hostname,
    /// A or AAAA.
    #[serde(rename = "type")]
    pub record_type: RecordType,
    /// The wanted address.
    pub address: IpAddr,
    /// When the handler accepted the update.
    #[serde(with = "humantime_serde")]
    pub requested_at: SystemTime,
    /// Who asked (for logs and notifications).
    pub user: String,
    /// Where the request came from, when known.
    pub client: Option<IpAddr>,
}

/// Why an entry file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EntryError {
    /// Larger than [`MAX_ENTRY_BYTES`].
    #[error("entry is {0} bytes, the limit is {MAX_ENTRY_BYTES}")]
    TooLarge(u64),
    /// Not UTF-8.
    #[error("entry is not UTF-8 text")]
    NotUtf8,
    /// Not valid JSON of the expected shape.
    #[error("entry is not a valid queue record: {0}")]
    Schema(String),
    /// A format version we do not know.
    #[error("entry format {0} is not supported (expected {ENTRY_FORMAT})")]
    Format(u32),
    /// The content disagrees with the file name.
    #[error("entry is for {content} but its file name says {name}")]
    NameMismatch {
        /// What the content says (`host/TYPE`).
        content: String,
        /// What the name says.
        name: String,
    },
    /// The address does not fit the record type.
    #[error("address {address} does not fit a {record_type} record")]
    WrongFamily {
        /// The address.
        address: IpAddr,
        /// The record type.
        record_type: RecordType,
    },
    /// The address must not be published.
    #[error("{0}")]
    Address(#[from] AddressError),
    /// The user is not a valid user name (see [`user_name_problem`]).
    #[error("entry's user \"{user}\" is not a valid user name: it {reason}")]
    BadUser {
        /// The user, escaped.
        user: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Why a file name in the queue is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// Not valid UTF-8.
    #[error("file name is not UTF-8")]
    NotUtf8,
    /// Does not follow `<host>_<TYPE>[.<claim>].json`.
    #[error("file name {0:?} does not look like <host>_<TYPE>.json")]
    Pattern(String),
}

/// `host/TYPE`: the key that names one record everywhere (retry schedule,
/// logs, messages).
pub fn record_key(host: &Hostname, record_type: RecordType) -> String {
    format!("{host}/{record_type}")
}

/// A parsed queue file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntryName {
    /// The host the name is for.
    pub host: Hostname,
    /// The record type the name is for.
    pub record_type: RecordType,
    /// The claim id, for entries in `cur/`.
    pub claim: Option<String>,
}

impl EntryName {
    /// The name of the pending entry for `host`/`record_type` in `new/`.
    pub fn pending(host: &Hostname, record_type: RecordType) -> String {
        format!("{host}_{record_type}.json")
    }

    /// The name of a claimed entry in `cur/`.
    pub fn claimed(host: &Hostname, record_type: RecordType, claim: &str) -> String {
        format!("{host}_{record_type}.{claim}.json")
    }

    /// Parses a pending or claimed name; anything else is an error.
    pub fn parse(name: &str) -> Result<EntryName, NameError> {
        let bad = || NameError::Pattern(name.chars().take(120).collect());
        let stem = name.strip_suffix(".json").ok_or_else(bad)?;
        let (host, rest) = stem.split_once('_').ok_or_else(bad)?;
        let (type_str, claim) = match rest.split_once('.') {
            Some((t, claim)) => (t, Some(claim)),
            None => (rest, None),
        };
        let record_type = match type_str {
            "A" => RecordType::A,
            "AAAA" => RecordType::AAAA,
            _ => return Err(bad()),
        };
        // The host must already be in canonical form, so that one host has
        // exactly one pending name.
        let host = Hostname::parse(host).map_err(|_| bad())?;
        if host.as_str() != stem.split_once('_').map(|(h, _)| h).unwrap_or_default() {
            return Err(bad());
        }
        if let Some(claim) = claim
            && (claim.is_empty()
                || claim.len() > MAX_CLAIM_LEN
                || !claim
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            return Err(bad());
        }
        Ok(EntryName {
            host,
            record_type,
            claim: claim.map(str::to_string),
        })
    }

    /// `host/TYPE`, for messages.
    pub fn key(&self) -> String {
        record_key(&self.host, self.record_type)
    }
}

impl QueueEntry {
    /// Serialises the entry as the handler writes it.
    pub fn to_json(&self) -> String {
        // Serialising plain data into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses untrusted bytes read from the queue and checks them against
    /// the file name they were found under.
    pub fn from_untrusted(bytes: &[u8], name: &EntryName) -> Result<QueueEntry, EntryError> {
        if bytes.len() as u64 > MAX_ENTRY_BYTES {
            return Err(EntryError::TooLarge(bytes.len() as u64));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| EntryError::NotUtf8)?;
        let entry: QueueEntry =
            serde_json::from_str(text).map_err(|e| EntryError::Schema(e.to_string()))?;
        if entry.format != ENTRY_FORMAT {
            return Err(EntryError::Format(entry.format));
        }
        if entry.host != name.host || entry.record_type != name.record_type {
            return Err(EntryError::NameMismatch {
                content: record_key(&entry.host, entry.record_type),
                name: name.key(),
            });
        }
        if RecordType::of(&entry.address) != entry.record_type {
            return Err(EntryError::WrongFamily {
                address: entry.address,
                record_type: entry.record_type,
            });
        }
        check_publishable(entry.address)?;
        if let Some(reason) = user_name_problem(&entry.user) {
            return Err(EntryError::BadUser {
                user: escape(&entry.user).chars().take(140).collect(),
                reason,
            });
        }
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn h(s: &str) -> Hostname {
        Hostname::parse(s).unwrap()
    }

    fn entry() -> QueueEntry {
        QueueEntry {
            format: ENTRY_FORMAT,
            host: h("home.dyn.example.com"),
            record_type: RecordType::A,
            address: "198.51.100.7".parse().unwrap(),
            requested_at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            user: "alice".into(),
            client: Some("203.0.113.1".parse().unwrap()),
        }
    }

    #[test]
    fn names_round_trip() {
        let host = h("home.dyn.example.com");
        let p = EntryName::pending(&host, RecordType::AAAA);
        assert_eq!(p, "home.dyn.example.com_AAAA.json");
        let parsed = EntryName::parse(&p).unwrap();
        assert_eq!(parsed.host, host);
        assert_eq!(parsed.record_type, RecordType::AAAA);
        assert_eq!(parsed.claim, None);
        let c = EntryName::claimed(&host, RecordType::A, "1700000000123-42");
        assert_eq!(
            EntryName::parse(&c).unwrap().claim.as_deref(),
            Some("1700000000123-42")
        );
    }

    #[test]
    fn hostile_names_are_rejected() {
        for bad in [
            "..",
            "../etc/passwd",
            "home.dyn.example.com_A",
            "home.dyn.example.com_MX.json",
            "HOME.dyn.example.com_A.json",
            "home.dyn.example.com._A.json",
            "home..dyn.example.com_A.json",
            "home.dyn.example.com_A..json",
            "home.dyn.example.com_A.x/y.json",
            "home.dyn.example.com_A.a b.json",
            "a;rm -rf /_A.json",
            "$(reboot).example.com_A.json",
            "_A.json",
            ".json",
            "home.dyn.example.com_a.json",
        ] {
            assert!(EntryName::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long_claim = format!("home.dyn.example.com_A.{}.json", "1".repeat(41));
        assert!(EntryName::parse(&long_claim).is_err());
    }

    #[test]
    fn entry_round_trip() {
        let e = entry();
        let json = e.to_json();
        assert!(json.contains("\"type\":\"A\""), "{json}");
        assert!(json.contains("2023-11-14T22:13:20.123000000Z"), "{json}");
        let name = EntryName::parse("home.dyn.example.com_A.json").unwrap();
        assert_eq!(
            QueueEntry::from_untrusted(json.as_bytes(), &name).unwrap(),
            e
        );
    }

    #[test]
    fn untrusted_entries_are_checked() {
        let name = EntryName::parse("home.dyn.example.com_A.json").unwrap();
        let good = entry().to_json();
        let check = |text: &str| QueueEntry::from_untrusted(text.as_bytes(), &name);
        assert!(matches!(
            QueueEntry::from_untrusted(&vec![b' '; 5000], &name),
            Err(EntryError::TooLarge(5000))
        ));
        assert_eq!(
            QueueEntry::from_untrusted(&[0xff, 0xfe], &name),
            Err(EntryError::NotUtf8)
        );
        assert!(matches!(check("{"), Err(EntryError::Schema(_))));
        assert!(matches!(
            check(&good.replace("\"user\"", "\"extra\":1,\"user\"")),
            Err(EntryError::Schema(_))
        ));
        assert!(matches!(
            check(&good.replace("\"format\":1", "\"format\":2")),
            Err(EntryError::Format(2))
        ));
        assert!(matches!(
            check(&good.replace("home.dyn", "nas.dyn")),
            Err(EntryError::NameMismatch { .. })
        ));
        assert!(matches!(
            check(&good.replace("198.51.100.7", "2001:db8::1")),
            Err(EntryError::WrongFamily { .. })
        ));
        assert!(matches!(
            check(&good.replace("198.51.100.7", "127.0.0.1")),
            Err(EntryError::Address(_))
        ));
        for user in ["", "eve\\u001b[2J", "a b", "x:y", "rtl\\u202e", "a\\nb"] {
            let text = good.replace("\"alice\"", &format!("\"{user}\""));
            assert!(
                matches!(check(&text), Err(EntryError::BadUser { .. })),
                "{user:?}: {:?}",
                check(&text)
            );
        }
        let err = check(&good.replace("\"alice\"", "\"eve\\u001b[2J\"")).unwrap_err();
        assert!(!err.to_string().contains('\u{1b}'), "{err}");
        let shell = good.replace("home.dyn.example.com", "home.dyn.example.com; rm -rf /");
        assert!(matches!(check(&shell), Err(EntryError::Schema(msg)) if msg.contains("';'")));
    }
}
