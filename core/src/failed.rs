//! The `failed/` area of the queue: rejected items and why.
//!
//! The applier names everything there itself: a rejected item (file,
//! directory, symlink, FIFO, moved as it was) becomes `<id>.item`, and its
//! note `<id>.reason`, where `<id>` is `<milliseconds since 1970, 13
//! digits>-<pid>-<sequence>`. A name the web side chose never survives the
//! move, so nothing it plants can pose as one of the applier's own files;
//! the original name is kept, escaped, inside the note. Sorting ids by name
//! sorts them by age, so the area can be trimmed without looking at each
//! file.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// Suffix of a rejected item in `failed/`.
pub const ITEM_SUFFIX: &str = ".item";
/// Suffix of the note beside it.
pub const NOTE_SUFFIX: &str = ".reason";
/// The current note format version.
pub const NOTE_FORMAT: u32 = 1;
/// Largest note the applier reads back.
pub const MAX_NOTE_BYTES: u64 = 64 * 1024;
/// Longest reason kept in a note, in characters.
pub const MAX_REASON_CHARS: usize = 4096;
/// Most items kept in `failed/`; the oldest beyond are removed.
pub const MAX_ITEMS: usize = 1000;
/// Items older than this are removed.
pub const MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The applier-made name of one rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FailedId {
    /// When it was rejected, in milliseconds since 1970.
    pub millis: u64,
    /// The applier's process id.
    pub pid: u32,
    /// A counter within that process.
    pub seq: u64,
}

/// What a name in `failed/` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedName {
    /// `<id>.item`.
    Item(FailedId),
    /// `<id>.reason`.
    Note(FailedId),
    /// Anything else: not made by this applier (an older version's
    /// leftovers, or planted).
    Foreign,
}

impl FailedId {
    /// An id for a rejection at `at` by process `pid`, the `seq`th of it.
    pub fn new(at: SystemTime, pid: u32, seq: u64) -> FailedId {
        let millis = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        FailedId {
            millis: u64::try_from(millis).unwrap_or(u64::MAX),
            pid,
            seq,
        }
    }

    /// When it was rejected.
    pub fn rejected_at(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.millis)
    }

    /// The item's file name.
    pub fn item_name(&self) -> String {
        format!("{self}{ITEM_SUFFIX}")
    }

    /// The note's file name.
    pub fn note_name(&self) -> String {
        format!("{self}{NOTE_SUFFIX}")
    }

    fn parse(id: &str) -> Option<FailedId> {
        let mut parts = id.split('-');
        let (millis, pid, seq) = (parts.next()?, parts.next()?, parts.next()?);
        let digits =
            |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit());
        if parts.next().is_some()
            || millis.len() != 13
            || !digits(pid)
            || !digits(seq)
            || !digits(millis)
        {
            return None;
        }
        Some(FailedId {
            millis: millis.parse().ok()?,
            pid: pid.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl fmt::Display for FailedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:013}-{}-{}", self.millis, self.pid, self.seq)
    }
}

impl FailedName {
    /// Classifies a file name found in `failed/`.
    pub fn parse(name: &str) -> FailedName {
        if let Some(id) = name.strip_suffix(ITEM_SUFFIX).and_then(FailedId::parse) {
            FailedName::Item(id)
        } else if let Some(id) = name.strip_suffix(NOTE_SUFFIX).and_then(FailedId::parse) {
            FailedName::Note(id)
        } else {
            FailedName::Foreign
        }
    }
}

/// The note beside a rejected item (`<id>.reason`, JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedNote {
    /// Format version ([`NOTE_FORMAT`]).
    pub format: u32,
    /// Where the item was found (`new/<name>` or `cur/<name>`), escaped.
    pub item: String,
    /// Why it was rejected.
    pub reason: String,
    /// When.
    #[serde(with = "humantime_serde")]
    pub rejected_at: SystemTime,
}

impl FailedNote {
    /// A note; the reason is cut to [`MAX_REASON_CHARS`].
    pub fn new(item: String, reason: &str, rejected_at: SystemTime) -> FailedNote {
        FailedNote {
            format: NOTE_FORMAT,
            item,
            reason: reason.chars().take(MAX_REASON_CHARS).collect(),
            rejected_at,
        }
    }

    /// The note as written.
    pub fn to_json(&self) -> String {
        // Serialising plain data into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a note back; `None` when it is not one.
    pub fn parse(bytes: &[u8]) -> Option<FailedNote> {
        serde_json::from_slice::<FailedNote>(bytes)
            .ok()
            .filter(|n| n.format == NOTE_FORMAT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_items_and_notes_and_sort_by_age() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let id = FailedId::new(at, 4242, 7);
        assert_eq!(id.item_name(), "1700000000123-4242-7.item");
        assert_eq!(id.note_name(), "1700000000123-4242-7.reason");
        assert_eq!(FailedName::parse(&id.item_name()), FailedName::Item(id));
        assert_eq!(FailedName::parse(&id.note_name()), FailedName::Note(id));
        assert_eq!(id.rejected_at(), at);
        let early = FailedId::new(
            SystemTime::UNIX_EPOCH + Duration::from_millis(999_999_999_999),
            1,
            1,
        );
        assert_eq!(early.to_string(), "0999999999999-1-1");
        assert!(early.item_name() < id.item_name() && early < id);
    }

    #[test]
    fn other_names_are_foreign() {
        for name in [
            "a.reason",
            "home.dyn.example.com_A.json",
            "home.dyn.example.com_A.json.reason",
            "old.reason",
            "1700000000123-1-1",
            "1700000000123-1.item",
            "1700000000123-1-1-1.item",
            "170000000012-1-1.item",
            "1700000000123-x-1.reason",
            "1700000000123--1.reason",
            "1700000000123-1-1.item.reason",
            ".item",
        ] {
            assert_eq!(FailedName::parse(name), FailedName::Foreign, "{name}");
        }
    }

    #[test]
    fn notes_round_trip_and_cap_the_reason() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let note = FailedNote::new("new/x\\n".into(), &"r".repeat(10_000), at);
        assert_eq!(note.reason.len(), MAX_REASON_CHARS);
        let json = note.to_json();
        assert!((json.len() as u64) < MAX_NOTE_BYTES);
        assert_eq!(FailedNote::parse(json.as_bytes()), Some(note));
        assert_eq!(FailedNote::parse(b"item: x\nreason: y\n"), None);
        assert_eq!(
            FailedNote::parse(json.replace("\"format\":1", "\"format\":2").as_bytes()),
            None
        );
    }
}
