//! The queue record format and file naming shared by handler and applier.
//!
//! Layout of the queue directory (Maildir discipline):
//! - `tmp/`: the handler writes an entry here first;
//! - `new/`: pending entries named `<host>_<KIND>.json`, renamed in from
//!   `tmp/` so a newer entry of the same name atomically replaces an older one;
//! - `cur/`: entries the applier has claimed (`<host>_<KIND>.<claim>.json`);
//! - `failed/`: rejected items under names the applier makes, each with a
//!   note (see [`crate::failed`]).
//!
//! KIND ([`EntryKind`]) says what the entry does and bounds the queue by
//! naming:
//! - `A`, `AAAA`: set the host's address record ([`QueueEntry`]); one per
//!   host and type, the newest wins;
//! - `TXT-<tag>`: present or clean up one ACME challenge value at an
//!   `_acme-challenge` name ([`TxtEntry`]); `<tag>` fingerprints the value
//!   ([`ValueTag`]), so the values of one name never replace each other
//!   while a cleanup replaces its own value's pending present;
//! - `TXTCLEAR`: remove every value of an `_acme-challenge` name;
//! - `HEARD`: the host's client was heard from (a `nochg`), for the status
//!   page's "last heard" ([`HeardEntry`]); one per host, written without a
//!   disk flush and at most once per `handler.heard_resolution`.
//!
//! The applier applies the TXT entries of one name in `requested_at` order on
//! top of the values the zone holds.
//!
//! The handler (web side) can write `tmp/` and `new/`, so the applier treats
//! every byte and every name here as untrusted.

use std::fmt;
use std::net::IpAddr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::address::{AddressError, check_publishable};
use crate::challenge::{ChallengeValue, ValueTag};
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
    /// A TXT entry for a name that is not an `_acme-challenge` name.
    #[error("TXT entries are only for _acme-challenge names, not {0}")]
    NotChallengeName(String),
    /// A TXT entry whose operation does not fit its file name.
    #[error("{operation} does not belong in an entry named {name}")]
    OperationMismatch {
        /// What the content asks for.
        operation: String,
        /// What the name says.
        name: String,
    },
}

/// Why a file name in the queue is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// Not valid UTF-8.
    #[error("file name is not UTF-8")]
    NotUtf8,
    /// Does not follow `<host>_<KIND>[.<claim>].json`.
    #[error("file name {0:?} does not look like <host>_<KIND>.json")]
    Pattern(String),
}

/// `host/TYPE`: the key that names one record everywhere (retry schedule,
/// logs, messages).
pub fn record_key(host: &Hostname, record_type: RecordType) -> String {
    format!("{host}/{record_type}")
}

/// What a queue entry does, as its file name says (`<host>_<KIND>.json`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryKind {
    /// `A` or `AAAA`: set the host's address ([`QueueEntry`]).
    Address(RecordType),
    /// `TXT-<tag>`: present or clean up the challenge value with this tag ([`TxtEntry`]).
    Txt(ValueTag),
    /// `TXTCLEAR`: remove every challenge value of the name ([`TxtEntry`]).
    TxtClear,
    /// `HEARD`: the host's client was heard from ([`HeardEntry`]).
    Heard,
}

/// The prefix of a [`EntryKind::Txt`] kind.
const TXT_KIND_PREFIX: &str = "TXT-";
/// The [`EntryKind::TxtClear`] kind.
const TXT_CLEAR_KIND: &str = "TXTCLEAR";
/// The [`EntryKind::Heard`] kind.
const HEARD_KIND: &str = "HEARD";

impl EntryKind {
    /// Parses the KIND part of a name.
    pub fn parse(s: &str) -> Option<EntryKind> {
        match s {
            "A" => Some(EntryKind::Address(RecordType::A)),
            "AAAA" => Some(EntryKind::Address(RecordType::AAAA)),
            TXT_CLEAR_KIND => Some(EntryKind::TxtClear),
            HEARD_KIND => Some(EntryKind::Heard),
            _ => ValueTag::parse(s.strip_prefix(TXT_KIND_PREFIX)?).map(EntryKind::Txt),
        }
    }

    /// True for the TXT kinds.
    pub fn is_txt(&self) -> bool {
        matches!(self, EntryKind::Txt(_) | EntryKind::TxtClear)
    }
}

impl From<RecordType> for EntryKind {
    fn from(t: RecordType) -> EntryKind {
        EntryKind::Address(t)
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryKind::Address(t) => write!(f, "{t}"),
            EntryKind::Txt(tag) => write!(f, "{TXT_KIND_PREFIX}{tag}"),
            EntryKind::TxtClear => f.write_str(TXT_CLEAR_KIND),
            EntryKind::Heard => f.write_str(HEARD_KIND),
        }
    }
}

/// A parsed queue file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntryName {
    /// The host (or `_acme-challenge` name) the entry is for.
    pub host: Hostname,
    /// What the entry does.
    pub kind: EntryKind,
    /// The claim id, for entries in `cur/`.
    pub claim: Option<String>,
}

impl EntryName {
    /// The name of the pending entry for `host` and `kind` in `new/`.
    pub fn pending(host: &Hostname, kind: impl Into<EntryKind>) -> String {
        format!("{host}_{}.json", kind.into())
    }

    /// The name of a claimed entry in `cur/`.
    pub fn claimed(host: &Hostname, kind: impl Into<EntryKind>, claim: &str) -> String {
        format!("{host}_{}.{claim}.json", kind.into())
    }

    /// Parses a pending or claimed name; anything else is an error.
    pub fn parse(name: &str) -> Result<EntryName, NameError> {
        let bad = || NameError::Pattern(name.chars().take(120).collect());
        let stem = name.strip_suffix(".json").ok_or_else(bad)?;
        // A host has no '_' except in front of an _acme-challenge name, and
        // neither KIND nor claim has one: the last '_' ends the host.
        let (host_str, rest) = stem.rsplit_once('_').ok_or_else(bad)?;
        let (kind_str, claim) = match rest.split_once('.') {
            Some((k, claim)) => (k, Some(claim)),
            None => (rest, None),
        };
        let kind = EntryKind::parse(kind_str).ok_or_else(bad)?;
        // The host must already be in canonical form, so that one host has
        // exactly one pending name.
        let host = Hostname::parse(host_str).map_err(|_| bad())?;
        if host.as_str() != host_str || host.is_acme_challenge() != kind.is_txt() {
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
            kind,
            claim: claim.map(str::to_string),
        })
    }

    /// `host/KIND`, for messages.
    pub fn key(&self) -> String {
        format!("{}/{}", self.host, self.kind)
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
        let entry: QueueEntry = parse_untrusted(bytes)?;
        check_format(entry.format)?;
        if entry.host != name.host || EntryKind::Address(entry.record_type) != name.kind {
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
        check_user(&entry.user)?;
        Ok(entry)
    }
}

/// Every entry kind's format version must be [`ENTRY_FORMAT`].
fn check_format(format: u32) -> Result<(), EntryError> {
    if format == ENTRY_FORMAT {
        Ok(())
    } else {
        Err(EntryError::Format(format))
    }
}

/// Every entry kind names its user as the config would (the text is
/// escaped and cut short in the error: it came from the web side).
fn check_user(user: &str) -> Result<(), EntryError> {
    match user_name_problem(user) {
        None => Ok(()),
        Some(reason) => Err(EntryError::BadUser {
            user: escape(user).chars().take(140).collect(),
            reason,
        }),
    }
}

/// The record type of a [`TxtEntry`]: always `TXT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxtType {
    /// A TXT record.
    #[allow(clippy::upper_case_acronyms)]
    TXT,
}

/// What a [`TxtEntry`] does to its name's values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum TxtOperation {
    /// Add `value` (nothing to do when it is there).
    Present {
        /// The challenge value.
        value: ChallengeValue,
    },
    /// Remove `value` (nothing to do when it is not there).
    Cleanup {
        /// The challenge value.
        value: ChallengeValue,
    },
    /// Remove every value of the name. (A struct variant, so that unknown
    /// fields beside `"op": "clear"` are refused like everywhere else.)
    Clear {},
}

impl TxtOperation {
    /// The entry kind whose file may hold this operation.
    pub fn kind(&self) -> EntryKind {
        match self {
            TxtOperation::Present { value } | TxtOperation::Cleanup { value } => {
                EntryKind::Txt(value.tag())
            }
            TxtOperation::Clear {} => EntryKind::TxtClear,
        }
    }
}

impl fmt::Display for TxtOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxtOperation::Present { value } => write!(f, "present {value}"),
            TxtOperation::Cleanup { value } => write!(f, "cleanup {value}"),
            TxtOperation::Clear {} => f.write_str("clear"),
        }
    }
}

/// One queued ACME challenge change at an `_acme-challenge` name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxtEntry {
    /// Format version ([`ENTRY_FORMAT`]).
    pub format: u32,
    /// The `_acme-challenge.<host>` name.
    pub host: Hostname,
    /// Always `TXT`.
    #[serde(rename = "type")]
    pub record_type: TxtType,
    /// What to do.
    pub txt: TxtOperation,
    /// When the handler accepted the request.
    #[serde(with = "humantime_serde")]
    pub requested_at: SystemTime,
    /// Who asked.
    pub user: String,
    /// Where the request came from, when known.
    pub client: Option<IpAddr>,
}

impl TxtEntry {
    /// Serialises the entry as the handler writes it.
    pub fn to_json(&self) -> String {
        // Serialising plain data into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The pending file name of this entry.
    pub fn pending_name(&self) -> String {
        EntryName::pending(&self.host, self.txt.kind())
    }

    /// Parses untrusted bytes read from the queue and checks them against
    /// the file name they were found under.
    pub fn from_untrusted(bytes: &[u8], name: &EntryName) -> Result<TxtEntry, EntryError> {
        let entry: TxtEntry = parse_untrusted(bytes)?;
        check_format(entry.format)?;
        if !entry.host.is_acme_challenge() {
            return Err(EntryError::NotChallengeName(entry.host.to_string()));
        }
        if entry.host != name.host {
            return Err(EntryError::NameMismatch {
                content: format!("{}/TXT", entry.host),
                name: name.key(),
            });
        }
        if entry.txt.kind() != name.kind {
            return Err(EntryError::OperationMismatch {
                operation: entry.txt.to_string(),
                name: name.key(),
            });
        }
        check_user(&entry.user)?;
        Ok(entry)
    }
}

/// The record type of a [`HeardEntry`]: always `HEARD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeardType {
    /// The only value.
    #[serde(rename = "HEARD")]
    Heard,
}

/// "The client of `host` was heard from at `requested_at`": written by the
/// handler for a `nochg` when the host's published last-heard time is older
/// than `handler.heard_resolution`. Advisory: written without a disk flush,
/// replaced by a newer one, never a Plesk change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeardEntry {
    /// Format version ([`ENTRY_FORMAT`]).
    pub format: u32,
    /// The host.
    pub host: Hostname,
    /// Always `HEARD`.
    #[serde(rename = "type")]
    pub kind: HeardType,
    /// When the handler answered.
    #[serde(with = "humantime_serde")]
    pub requested_at: SystemTime,
    /// Who asked.
    pub user: String,
    /// Where the request came from, when known.
    pub client: Option<IpAddr>,
}

impl HeardEntry {
    /// Serialises the entry as the handler writes it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses untrusted bytes and checks them against their file name.
    pub fn from_untrusted(bytes: &[u8], name: &EntryName) -> Result<HeardEntry, EntryError> {
        let entry: HeardEntry = parse_untrusted(bytes)?;
        check_format(entry.format)?;
        if entry.host != name.host || name.kind != EntryKind::Heard {
            return Err(EntryError::NameMismatch {
                content: format!("{}/{HEARD_KIND}", entry.host),
                name: name.key(),
            });
        }
        check_user(&entry.user)?;
        Ok(entry)
    }
}

/// Any queue entry, as its name's kind says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An address update.
    Address(QueueEntry),
    /// An ACME challenge change.
    Txt(TxtEntry),
    /// A client heard from.
    Heard(HeardEntry),
}

impl Entry {
    /// Parses untrusted bytes of the kind `name` says.
    pub fn from_untrusted(bytes: &[u8], name: &EntryName) -> Result<Entry, EntryError> {
        match name.kind {
            EntryKind::Address(_) => QueueEntry::from_untrusted(bytes, name).map(Entry::Address),
            EntryKind::Txt(_) | EntryKind::TxtClear => {
                TxtEntry::from_untrusted(bytes, name).map(Entry::Txt)
            }
            EntryKind::Heard => HeardEntry::from_untrusted(bytes, name).map(Entry::Heard),
        }
    }

    /// The host or challenge name.
    pub fn host(&self) -> &Hostname {
        match self {
            Entry::Address(e) => &e.host,
            Entry::Txt(e) => &e.host,
            Entry::Heard(e) => &e.host,
        }
    }

    /// When the handler accepted it.
    pub fn requested_at(&self) -> SystemTime {
        match self {
            Entry::Address(e) => e.requested_at,
            Entry::Txt(e) => e.requested_at,
            Entry::Heard(e) => e.requested_at,
        }
    }

    /// Who asked.
    pub fn user(&self) -> &str {
        match self {
            Entry::Address(e) => &e.user,
            Entry::Txt(e) => &e.user,
            Entry::Heard(e) => &e.user,
        }
    }

    /// Where the request came from.
    pub fn client(&self) -> Option<IpAddr> {
        match self {
            Entry::Address(e) => e.client,
            Entry::Txt(e) => e.client,
            Entry::Heard(e) => e.client,
        }
    }
}

/// Size, UTF-8 and JSON shape checks shared by every entry kind.
fn parse_untrusted<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, EntryError> {
    if bytes.len() as u64 > MAX_ENTRY_BYTES {
        return Err(EntryError::TooLarge(bytes.len() as u64));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| EntryError::NotUtf8)?;
    serde_json::from_str(text).map_err(|e| EntryError::Schema(e.to_string()))
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
        assert_eq!(parsed.kind, EntryKind::Address(RecordType::AAAA));
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

    const VALUE: &str = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";
    const OTHER: &str = "Xbb0bRlwQXOH5Ow0GQ_S6FVsKJ8jG1U0eKzy2c3zTfA";

    fn txt(op: TxtOperation) -> TxtEntry {
        TxtEntry {
            format: ENTRY_FORMAT,
            host: h("_acme-challenge.home.dyn.example.com"),
            record_type: TxtType::TXT,
            txt: op,
            requested_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            user: "alice".into(),
            client: None,
        }
    }

    fn value(v: &str) -> ChallengeValue {
        ChallengeValue::parse(v).unwrap()
    }

    #[test]
    fn txt_names_round_trip() {
        let present = txt(TxtOperation::Present {
            value: value(VALUE),
        });
        let name = present.pending_name();
        let tag = value(VALUE).tag();
        assert_eq!(
            name,
            format!("_acme-challenge.home.dyn.example.com_TXT-{tag}.json")
        );
        let parsed = EntryName::parse(&name).unwrap();
        assert_eq!(parsed.kind, EntryKind::Txt(tag.clone()));
        assert_eq!(parsed.host.as_str(), "_acme-challenge.home.dyn.example.com");
        assert_eq!(
            parsed.key(),
            format!("_acme-challenge.home.dyn.example.com/TXT-{tag}")
        );
        let cleanup = txt(TxtOperation::Cleanup {
            value: value(VALUE),
        });
        assert_eq!(
            cleanup.pending_name(),
            name,
            "a cleanup replaces its value's present"
        );
        let other = txt(TxtOperation::Present {
            value: value(OTHER),
        });
        assert_ne!(
            other.pending_name(),
            name,
            "values of one name do not replace each other"
        );
        let clear = txt(TxtOperation::Clear {});
        assert_eq!(
            clear.pending_name(),
            "_acme-challenge.home.dyn.example.com_TXTCLEAR.json"
        );
        let claimed = EntryName::claimed(&present.host, EntryKind::TxtClear, "1-2-3");
        let parsed = EntryName::parse(&claimed).unwrap();
        assert_eq!(
            (parsed.kind, parsed.claim.as_deref()),
            (EntryKind::TxtClear, Some("1-2-3"))
        );
        for bad in [
            format!("home.dyn.example.com_TXT-{tag}.json"),
            "home.dyn.example.com_TXTCLEAR.json".to_string(),
            "_acme-challenge.home.dyn.example.com_A.json".to_string(),
            "_acme-challenge.home.dyn.example.com_TXT.json".to_string(),
            format!(
                "_acme-challenge.home.dyn.example.com_TXT-{}.json",
                tag.as_str().to_uppercase()
            ),
            format!(
                "_acme-challenge.home.dyn.example.com_TXT-{}.json",
                &tag.as_str()[..15]
            ),
            format!("_acme-challenge.home.dyn.example.com_TXT-{}0.json", tag),
            format!("_ACME-challenge.home.dyn.example.com_TXT-{tag}.json"),
            format!("_acme-challenge.home.dyn.example.com_TXT-{tag}_x.json"),
            "_acme-challenge.home.dyn.example.com_HEARD.json".to_string(),
            "_acme-challenge.home.dyn.example.com_txtclear.json".to_string(),
        ] {
            assert!(EntryName::parse(&bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn txt_entry_format_is_stable() {
        let e = txt(TxtOperation::Present {
            value: value(VALUE),
        });
        let json = e.to_json();
        assert_eq!(
            json,
            format!(
                "{{\"format\":1,\"host\":\"_acme-challenge.home.dyn.example.com\",\"type\":\"TXT\",\"txt\":{{\"op\":\"present\",\"value\":\"{VALUE}\"}},\"requested_at\":\"2023-11-14T22:13:20Z\",\"user\":\"alice\",\"client\":null}}"
            )
        );
        let name = EntryName::parse(&e.pending_name()).unwrap();
        assert_eq!(
            Entry::from_untrusted(json.as_bytes(), &name).unwrap(),
            Entry::Txt(e)
        );
        let clear = txt(TxtOperation::Clear {});
        assert!(clear.to_json().contains("\"txt\":{\"op\":\"clear\"}"));
    }

    #[test]
    fn untrusted_txt_entries_are_checked() {
        let present = txt(TxtOperation::Present {
            value: value(VALUE),
        });
        let good = present.to_json();
        let name = EntryName::parse(&present.pending_name()).unwrap();
        let clear_name =
            EntryName::parse("_acme-challenge.home.dyn.example.com_TXTCLEAR.json").unwrap();
        let check = |text: &str, name: &EntryName| Entry::from_untrusted(text.as_bytes(), name);
        assert!(check(&good, &name).is_ok());
        assert!(matches!(
            check(&good.replace("present", "cleanup"), &name),
            Ok(Entry::Txt(TxtEntry {
                txt: TxtOperation::Cleanup { .. },
                ..
            }))
        ));
        // the content names another value than the file name's tag
        assert!(matches!(
            check(&good.replace(VALUE, OTHER), &name),
            Err(EntryError::OperationMismatch { .. })
        ));
        // a clear under a value's name, a present under the clear name
        let clear = txt(TxtOperation::Clear {}).to_json();
        assert!(matches!(
            check(&clear, &name),
            Err(EntryError::OperationMismatch { .. })
        ));
        assert!(matches!(
            check(&good, &clear_name),
            Err(EntryError::OperationMismatch { .. })
        ));
        assert!(check(&clear, &clear_name).is_ok());
        // another challenge name than the file's
        assert!(matches!(
            check(&good.replace("home.dyn", "nas.dyn"), &name),
            Err(EntryError::NameMismatch { .. })
        ));
        // not a challenge name at all (and the name grammar refuses it too)
        let plain = good.replace("_acme-challenge.home", "home");
        assert!(matches!(
            check(&plain, &name),
            Err(EntryError::NotChallengeName(_))
        ));
        for (what, text) in [
            (
                "unknown top-level field",
                good.replace("\"user\"", "\"x\":1,\"user\""),
            ),
            (
                "unknown field in txt",
                good.replace("\"op\":\"present\"", "\"op\":\"present\",\"ttl\":1"),
            ),
            (
                "value on a clear",
                clear.replace(
                    "\"op\":\"clear\"",
                    &format!("\"op\":\"clear\",\"value\":\"{VALUE}\""),
                ),
            ),
            ("unknown op", good.replace("present", "replace")),
            (
                "missing value",
                good.replace(&format!(",\"value\":\"{VALUE}\""), ""),
            ),
            ("bad value", good.replace(VALUE, "not a digest")),
            (
                "value with a quote",
                good.replace(VALUE, &format!("{}\\\"", &VALUE[..42])),
            ),
            ("wrong type", good.replace("\"TXT\"", "\"A\"")),
            (
                "address field",
                good.replace("\"user\"", "\"address\":\"192.0.2.1\",\"user\""),
            ),
        ] {
            assert!(
                matches!(check(&text, &name), Err(EntryError::Schema(_))),
                "{what}: {text}"
            );
        }
        assert!(matches!(
            check(&good.replace("\"format\":1", "\"format\":2"), &name),
            Err(EntryError::Format(2))
        ));
        assert!(matches!(
            check(&good.replace("\"alice\"", "\"a:b\""), &name),
            Err(EntryError::BadUser { .. })
        ));
        assert!(matches!(
            Entry::from_untrusted(&vec![b' '; 5000], &name),
            Err(EntryError::TooLarge(5000))
        ));
        // an address entry under a TXT name, a TXT entry under an address name
        let addr_name = EntryName::parse("home.dyn.example.com_A.json").unwrap();
        assert!(matches!(
            check(&entry().to_json(), &name),
            Err(EntryError::Schema(_))
        ));
        assert!(matches!(
            check(&good, &addr_name),
            Err(EntryError::Schema(_))
        ));
    }

    #[test]
    fn heard_entries() {
        let host = h("home.dyn.example.com");
        let name = EntryName::pending(&host, EntryKind::Heard);
        assert_eq!(name, "home.dyn.example.com_HEARD.json");
        let parsed = EntryName::parse(&name).unwrap();
        assert_eq!(parsed.kind, EntryKind::Heard);
        let entry = HeardEntry {
            format: ENTRY_FORMAT,
            host: host.clone(),
            kind: HeardType::Heard,
            requested_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            user: "alice".into(),
            client: None,
        };
        let json = entry.to_json();
        assert!(json.contains("\"type\":\"HEARD\""), "{json}");
        assert_eq!(
            Entry::from_untrusted(json.as_bytes(), &parsed).unwrap(),
            Entry::Heard(entry.clone())
        );
        // the name says HEARD for another host, or another kind
        let other = EntryName::parse("nas.dyn.example.com_HEARD.json").unwrap();
        assert!(matches!(
            HeardEntry::from_untrusted(json.as_bytes(), &other),
            Err(EntryError::NameMismatch { .. })
        ));
        let a = EntryName::parse("home.dyn.example.com_A.json").unwrap();
        assert!(Entry::from_untrusted(json.as_bytes(), &a).is_err());
        // strict: no address, no unknown keys, a valid user
        let with_address = json.replace("\"user\"", "\"address\":\"198.51.100.1\",\"user\"");
        assert!(matches!(
            HeardEntry::from_untrusted(with_address.as_bytes(), &parsed),
            Err(EntryError::Schema(_))
        ));
        let bad_user = json.replace("\"alice\"", "\"a b\"");
        assert!(matches!(
            HeardEntry::from_untrusted(bad_user.as_bytes(), &parsed),
            Err(EntryError::BadUser { .. })
        ));
        // challenge names carry no HEARD entries
        assert!(EntryName::parse("_acme-challenge.home.dyn.example.com_HEARD.json").is_err());
    }
}
