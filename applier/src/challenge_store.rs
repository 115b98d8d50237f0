//! The ACME challenge values the applier created, and when: one small file
//! per value in the private directory, written before the value is added to
//! the zone and removed once it is gone from the zone. It is what lets the
//! applier remove values that were never cleaned up (after
//! `acme.lifetime`) while leaving alone TXT records it did not create.
//!
//! The directory is root's: the web side cannot make the applier delete a
//! record by forging a file here.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result};
use dyndns_core::Hostname;
use dyndns_core::challenge::ChallengeValue;
use dyndns_core::queue::{EntryKind, EntryName};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::fsutil::{atomic_write, read_json_files, remove_durably};

/// One value the applier created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatedRecord {
    /// The `_acme-challenge` name.
    pub name: Hostname,
    /// Its zone.
    pub zone: Hostname,
    /// The value.
    pub value: ChallengeValue,
    /// When the applier added it (or a request presented it again).
    #[serde(with = "humantime_serde")]
    pub created_at: SystemTime,
}

/// The store directory.
#[derive(Debug, Clone)]
pub struct ChallengeStore {
    dir: PathBuf,
}

impl ChallengeStore {
    /// The store kept in `dir`.
    pub fn new(dir: PathBuf) -> ChallengeStore {
        ChallengeStore { dir }
    }

    fn path(&self, name: &Hostname, value: &ChallengeValue) -> PathBuf {
        self.dir
            .join(EntryName::pending(name, EntryKind::Txt(value.tag())))
    }

    /// Records (durably) that the applier created `record`.
    pub fn record(&self, record: &CreatedRecord) -> Result<()> {
        let bytes = serde_json::to_vec(record)?;
        atomic_write(&self.path(&record.name, &record.value), &bytes, 0o600)
            .with_context(|| format!("recording the challenge value of {}", record.name))
    }

    /// Forgets a value (it is gone from the zone).
    pub fn forget(&self, name: &Hostname, value: &ChallengeValue) -> Result<()> {
        Ok(remove_durably(&self.dir, &self.path(name, value))?)
    }

    /// Every value recorded. Unreadable files are logged and skipped.
    pub fn all(&self) -> Result<Vec<CreatedRecord>> {
        let mut out = Vec::new();
        for (path, parsed) in read_json_files::<CreatedRecord>(&self.dir, 4096)? {
            match parsed {
                Ok(record) => out.push(record),
                Err(e) => warn!("ignoring {}: {e}", path.display()),
            }
        }
        out.sort_by(|a, b| (&a.zone, &a.name, &a.value).cmp(&(&b.zone, &b.name, &b.value)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_list_forget() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChallengeStore::new(dir.path().to_path_buf());
        let record = CreatedRecord {
            name: Hostname::parse("_acme-challenge.home.dyn.example.com").unwrap(),
            zone: Hostname::parse("dyn.example.com").unwrap(),
            value: ChallengeValue::parse("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0").unwrap(),
            created_at: SystemTime::UNIX_EPOCH,
        };
        assert!(store.all().unwrap().is_empty());
        store.record(&record).unwrap();
        store.record(&record).unwrap();
        assert_eq!(store.all().unwrap(), vec![record.clone()]);
        std::fs::write(dir.path().join("junk.json"), b"{").unwrap();
        assert_eq!(
            store.all().unwrap(),
            vec![record.clone()],
            "junk is skipped"
        );
        store.forget(&record.name, &record.value).unwrap();
        store.forget(&record.name, &record.value).unwrap();
        assert!(store.all().unwrap().is_empty());
    }
}
