//! A queue file as the applier finds it: its name into
//! [`EntryName::parse`], its bytes into [`Entry::from_untrusted`] (which
//! reads the kind the name says: address, TXT or heard). Both are written
//! by the web side, so both are untrusted.
//!
//! Input: `file name` NUL `content`. File names cannot hold NUL; a name
//! that is not UTF-8 is refused by the applier before parsing.

use dyndns_core::RecordType;
use dyndns_core::address::check_publishable;
use dyndns_core::config::user_name_problem;
use dyndns_core::queue::{ENTRY_FORMAT, Entry, EntryKind, EntryName, MAX_ENTRY_BYTES};

/// Parses name and content; an accepted entry must match its name, be
/// usable as it stands, and come back unchanged from the form the handler
/// writes.
pub fn check(data: &[u8]) {
    let parts = crate::parts(data, 2);
    let Some(file_name) = crate::text(&parts, 0) else {
        return;
    };
    let Ok(name) = EntryName::parse(file_name) else {
        return;
    };
    let canonical = match &name.claim {
        None => EntryName::pending(&name.host, name.kind.clone()),
        Some(claim) => EntryName::claimed(&name.host, name.kind.clone(), claim),
    };
    assert_eq!(canonical, file_name, "one entry, one file name");
    assert_eq!(
        name.host.is_acme_challenge(),
        name.kind.is_txt(),
        "TXT entries exactly at _acme-challenge names"
    );
    let Some(bytes) = parts.get(1) else {
        return;
    };
    let Ok(entry) = Entry::from_untrusted(bytes, &name) else {
        return;
    };
    assert_eq!(entry.host(), &name.host);
    assert_eq!(user_name_problem(entry.user()), None);
    let json = match &entry {
        Entry::Address(e) => {
            assert_eq!(e.format, ENTRY_FORMAT);
            assert_eq!(name.kind, EntryKind::Address(e.record_type));
            assert_eq!(RecordType::of(&e.address), e.record_type);
            assert_eq!(check_publishable(e.address), Ok(()));
            e.to_json()
        }
        Entry::Txt(e) => {
            assert_eq!(e.format, ENTRY_FORMAT);
            assert_eq!(e.txt.kind(), name.kind);
            assert!(e.host.acme_challenge_target().is_some());
            if name.claim.is_none() {
                assert_eq!(e.pending_name(), file_name);
            }
            e.to_json()
        }
        Entry::Heard(e) => {
            assert_eq!(e.format, ENTRY_FORMAT);
            assert_eq!(name.kind, EntryKind::Heard);
            e.to_json()
        }
    };
    assert!(!json.is_empty(), "serialising an entry failed");
    if json.len() as u64 <= MAX_ENTRY_BYTES {
        assert_eq!(
            Entry::from_untrusted(json.as_bytes(), &name),
            Ok(entry),
            "the handler's form of an entry reads back differently: {json}"
        );
    }
}
