//! The crash journal: before the first `--del` of a change the applier
//! records what it is about to delete and what it will add; the note is
//! removed once the `--add` is done. After a crash between the two, the note
//! is the proof that this applier removed the record, which is the only case
//! in which it may add a record that is not in the zone.
//!
//! The journal lives in the private directory, out of the web side's reach:
//! a forged note would let it create names.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fs;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result};
use dyndns_core::queue::EntryName;
use dyndns_core::{Hostname, RecordType};
use serde::{Deserialize, Serialize};

use crate::fsutil::{atomic_write, read_json_files, read_optional, remove_durably};
use crate::layout::is_not_found;

/// One change in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalNote {
    /// The host.
    pub host: Hostname,
    /// A or AAAA.
    #[serde(rename = "type")]
    pub record_type: RecordType,
    /// Its zone.
    pub zone: Hostname,
    /// The values being deleted.
    pub deleting: Vec<String>,
    /// The address to add.
    pub target: IpAddr,
    /// When the change began.
    #[serde(with = "humantime_serde")]
    pub started: SystemTime,
}

/// The journal directory. Only the applier holding the instance lock
/// writes it, so the names of the notes present are listed once and kept
/// in memory: checking and closing the journal for each of 10,000 entries
/// then costs no file operation when there is no note.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
    present: RefCell<Option<BTreeSet<PathBuf>>>,
}

impl Journal {
    /// The journal kept in `dir`.
    pub fn new(dir: PathBuf) -> Journal {
        Journal {
            dir,
            present: RefCell::new(None),
        }
    }

    /// True when a note may exist at `path` (listing the directory once).
    fn may_exist(&self, path: &PathBuf) -> Result<bool> {
        if let Some(present) = self.present.borrow().as_ref() {
            return Ok(present.contains(path));
        }
        let mut present = BTreeSet::new();
        match fs::read_dir(&self.dir) {
            Ok(dir) => {
                for entry in dir {
                    present.insert(entry?.path());
                }
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
        let found = present.contains(path);
        *self.present.borrow_mut() = Some(present);
        Ok(found)
    }

    fn path(&self, host: &Hostname, t: RecordType) -> PathBuf {
        self.dir.join(EntryName::pending(host, t))
    }

    /// Records a change about to start (durably).
    pub fn begin(&self, note: &JournalNote) -> Result<()> {
        let bytes = serde_json::to_vec(note)?;
        let path = self.path(&note.host, note.record_type);
        atomic_write(&path, &bytes, 0o600).with_context(|| {
            format!("writing the journal for {}/{}", note.host, note.record_type)
        })?;
        if let Some(present) = self.present.borrow_mut().as_mut() {
            present.insert(path);
        }
        Ok(())
    }

    /// The note for `host`/`t`, if a change was interrupted.
    pub fn get(&self, host: &Hostname, t: RecordType) -> Result<Option<JournalNote>> {
        let path = self.path(host, t);
        if !self.may_exist(&path)? {
            return Ok(None);
        }
        match read_optional(&path, 64 * 1024)? {
            None => Ok(None),
            Some(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        }
    }

    /// Removes the note once the change is complete.
    pub fn finish(&self, host: &Hostname, t: RecordType) -> Result<()> {
        let path = self.path(host, t);
        if !self.may_exist(&path)? {
            return Ok(());
        }
        if let Some(present) = self.present.borrow_mut().as_mut() {
            present.remove(&path);
        }
        Ok(remove_durably(&self.dir, &path)?)
    }

    /// Every note present (interrupted changes); unreadable notes are
    /// skipped.
    pub fn all(&self) -> Result<Vec<JournalNote>> {
        let mut out: Vec<JournalNote> = read_json_files(&self.dir, 64 * 1024)?
            .into_iter()
            .filter_map(|(_, note)| note.ok())
            .collect();
        out.sort_by(|a, b| (&a.host, a.record_type).cmp(&(&b.host, b.record_type)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_get_finish() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path().to_path_buf());
        let host = Hostname::parse("home.dyn.example.com").unwrap();
        let note = JournalNote {
            host: host.clone(),
            record_type: RecordType::A,
            zone: Hostname::parse("dyn.example.com").unwrap(),
            deleting: vec!["198.51.100.1".into()],
            target: "198.51.100.2".parse().unwrap(),
            started: SystemTime::UNIX_EPOCH,
        };
        assert_eq!(j.get(&host, RecordType::A).unwrap(), None);
        j.begin(&note).unwrap();
        assert_eq!(j.get(&host, RecordType::A).unwrap(), Some(note.clone()));
        assert_eq!(j.all().unwrap(), vec![note]);
        j.finish(&host, RecordType::A).unwrap();
        j.finish(&host, RecordType::A).unwrap();
        assert!(j.all().unwrap().is_empty());
        // what a kill in the middle of a write leaves is cleared away
        let leftover = dir.path().join(".home.dyn.example.com_A.json.12-3.tmp");
        fs::write(&leftover, b"{\"host\"").unwrap();
        assert!(j.all().unwrap().is_empty());
        assert!(!leftover.exists());
    }
}
