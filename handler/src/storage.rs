//! The handler's file access: the view and applied state it reads (under the
//! state directory) and the queue it writes. Inside the sandbox these are the
//! directories the runtime mounts; their guest paths come from
//! `DYNDNS_STATE_DIR` (default `/state`) and `DYNDNS_QUEUE_DIR` (default `/queue`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use dyndns_core::queue::{self, EntryName, QueueEntry};
use dyndns_core::state::{self, AppliedRecord, Heartbeat};
use dyndns_core::update::UpdateContext;
use dyndns_core::view::{self, HandlerSettings, HostView, UserView};
use dyndns_core::{Hostname, RecordType};
use thiserror::Error;

/// A file the handler needs could not be read or written.
#[derive(Debug, Error)]
pub enum StorageError {
    /// An I/O error on `path`.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        source: io::Error,
    },
    /// A view or state file that does not parse.
    #[error("{path}: {message}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The view has not been published.
    #[error("{0} is missing: run `dyndns-applier publish` (or start the applier)")]
    NoView(String),
}

fn io_err(path: &Path, source: io::Error) -> StorageError {
    StorageError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reads a whole file of at most `limit` bytes; `None` when it does not exist.
/// Every call is a round trip to the host, so the buffer starts large enough
/// for the small files this reads: open, one read, one read that says EOF.
fn read_limited(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, StorageError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, e)),
    };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut buf = vec![0u8; INITIAL_READ.min(limit.saturating_add(1))];
    let mut filled = 0;
    loop {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                if filled > limit {
                    return Err(StorageError::Corrupt {
                        path: path.display().to_string(),
                        message: format!("larger than {limit} bytes"),
                    });
                }
                if filled == buf.len() {
                    let grown = (buf.len() * 2).min(limit.saturating_add(1));
                    buf.resize(grown, 0);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(path, e)),
        }
    }
    buf.truncate(filled);
    Ok(Some(buf))
}

/// First read size: every view and state file is smaller.
const INITIAL_READ: usize = 16 * 1024;

fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    limit: u64,
) -> Result<Option<T>, StorageError> {
    match read_limited(path, limit)? {
        None => Ok(None),
        Some(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StorageError::Corrupt {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })
        }
    }
}

/// Where the handler's files are.
#[derive(Debug, Clone)]
pub struct Storage {
    /// The state directory (read only for the handler).
    pub state_dir: PathBuf,
    /// The queue directory (`tmp/` and `new/` written by the handler).
    pub queue_dir: PathBuf,
}

/// What `/health` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Health {
    /// `ok` or `unhealthy`.
    pub status: &'static str,
    /// Whether a file could be created in the queue.
    pub queue_writable: bool,
    /// Entries waiting in `new/`, when the directory could be read.
    pub pending: Option<usize>,
    /// Seconds since the applier's last heartbeat, when there is one.
    pub heartbeat_age_seconds: Option<f64>,
    /// The age beyond which the heartbeat counts as stale.
    pub heartbeat_max_age_seconds: Option<u64>,
    /// Whether the applier runs in dry-run mode.
    pub applier_dry_run: Option<bool>,
    /// What is wrong, in words.
    pub problems: Vec<String>,
}

impl Storage {
    /// Directories from the environment (`DYNDNS_STATE_DIR`, `DYNDNS_QUEUE_DIR`).
    pub fn from_env() -> Storage {
        Storage {
            state_dir: std::env::var_os("DYNDNS_STATE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/state")),
            queue_dir: std::env::var_os("DYNDNS_QUEUE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/queue")),
        }
    }

    fn view_path(&self) -> PathBuf {
        self.state_dir.join(view::VIEW_DIR)
    }

    /// The handler settings from the published view.
    pub fn settings(&self) -> Result<HandlerSettings, StorageError> {
        let path = self.view_path().join(view::SETTINGS_FILE);
        let settings: HandlerSettings = read_json(&path, view::MAX_VIEW_FILE_BYTES)?
            .ok_or_else(|| StorageError::NoView(path.display().to_string()))?;
        if settings.format != view::VIEW_FORMAT {
            return Err(StorageError::Corrupt {
                path: path.display().to_string(),
                message: format!(
                    "view format {} is not {}; republish with this version's applier",
                    settings.format,
                    view::VIEW_FORMAT
                ),
            });
        }
        Ok(settings)
    }

    /// The user `name`, if configured.
    pub fn user(&self, name: &str) -> Result<Option<UserView>, StorageError> {
        let path = self
            .view_path()
            .join(view::USERS_DIR)
            .join(view::user_file_name(name));
        let user: Option<UserView> = read_json(&path, view::MAX_VIEW_FILE_BYTES)?;
        Ok(user.filter(|u| u.name == name))
    }

    /// The host `name`, if configured.
    pub fn host(&self, name: &Hostname) -> Result<Option<HostView>, StorageError> {
        let path = self
            .view_path()
            .join(view::HOSTS_DIR)
            .join(view::host_file_name(name));
        read_json(&path, view::MAX_VIEW_FILE_BYTES)
    }

    /// The newest known address: the pending entry's, else the applied one.
    /// An unreadable pending entry counts as absent (the applier will
    /// reject it; a new one replaces it).
    pub fn known_address(
        &self,
        host: &Hostname,
        record_type: RecordType,
    ) -> Result<Option<IpAddr>, StorageError> {
        let pending_name = EntryName::pending(host, record_type);
        let pending = self.queue_dir.join(queue::NEW_DIR).join(&pending_name);
        if let Ok(Some(bytes)) = read_limited(&pending, queue::MAX_ENTRY_BYTES)
            && let Ok(name) = EntryName::parse(&pending_name)
            && let Ok(entry) = QueueEntry::from_untrusted(&bytes, &name)
        {
            return Ok(Some(entry.address));
        }
        let applied = self
            .state_dir
            .join(state::APPLIED_DIR)
            .join(AppliedRecord::file_name(host, record_type));
        let record: Option<AppliedRecord> = read_json(&applied, state::MAX_STATE_BYTES)?;
        Ok(record
            .filter(|r| &r.host == host && r.record_type == record_type)
            .map(|r| r.address))
    }

    /// Writes `entry` atomically and durably: temporary file in `tmp/`,
    /// flushed, renamed over the pending entry for the same host and type in
    /// `new/`, directory flushed. Returns once it is on disk.
    pub fn write_entry(&self, entry: &QueueEntry) -> Result<(), StorageError> {
        let name = EntryName::pending(&entry.host, entry.record_type);
        let tmp = self
            .queue_dir
            .join(queue::TMP_DIR)
            .join(format!("{name}.{}.tmp", random_suffix()));
        let target = self.queue_dir.join(queue::NEW_DIR).join(&name);
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| io_err(&tmp, e))?;
            file.write_all(entry.to_json().as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| io_err(&tmp, e))?;
            drop(file);
            fs::rename(&tmp, &target).map_err(|e| io_err(&target, e))?;
            sync_dir(&self.queue_dir.join(queue::NEW_DIR))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Checks the queue, the view and the heartbeat.
    pub fn health(&self, now: SystemTime) -> Health {
        let mut problems = Vec::new();
        let queue_writable = match self.probe_queue() {
            Ok(()) => true,
            Err(e) => {
                problems.push(format!("queue not writable: {e}"));
                false
            }
        };
        let pending = match fs::read_dir(self.queue_dir.join(queue::NEW_DIR)) {
            Ok(dir) => Some(
                dir.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                    .count(),
            ),
            Err(e) => {
                problems.push(format!("cannot list pending entries: {e}"));
                None
            }
        };
        let max_age = match self.settings() {
            Ok(s) => Some(s.heartbeat_max_age),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        };
        let heartbeat_path = self.state_dir.join(state::HEARTBEAT_FILE);
        let heartbeat: Option<Heartbeat> = match read_json(&heartbeat_path, state::MAX_STATE_BYTES)
        {
            Ok(Some(hb)) => Some(hb),
            Ok(None) => {
                problems
                    .push("the applier has not written a heartbeat yet (is it running?)".into());
                None
            }
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        };
        let age = heartbeat.as_ref().map(|hb| hb.age(now));
        if let (Some(age), Some(max)) = (age, max_age)
            && age > max
        {
            problems.push(format!(
                "the applier's heartbeat is {}s old (limit {}s)",
                age.as_secs(),
                max.as_secs()
            ));
        }
        Health {
            status: if problems.is_empty() {
                "ok"
            } else {
                "unhealthy"
            },
            queue_writable,
            pending,
            heartbeat_age_seconds: age.map(|a| (a.as_millis() as f64) / 1000.0),
            heartbeat_max_age_seconds: max_age.map(|m| m.as_secs()),
            applier_dry_run: heartbeat.map(|hb| hb.dry_run),
            problems,
        }
    }

    fn probe_queue(&self) -> Result<(), StorageError> {
        let probe = self
            .queue_dir
            .join(queue::TMP_DIR)
            .join(format!(".health.{}.tmp", random_suffix()));
        let result = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
            .and_then(|mut f| f.write_all(b"ok"))
            .map_err(|e| io_err(&probe, e));
        let _ = fs::remove_file(&probe);
        result
    }
}

/// Flushes a directory so that a rename in it is durable. Hosts that cannot
/// open directories as files make this a no-op; the file itself was flushed.
fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    match File::open(dir) {
        Ok(d) => match d.sync_all() {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Unsupported
                        | io::ErrorKind::InvalidInput
                        | io::ErrorKind::PermissionDenied
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(io_err(dir, e)),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(io_err(dir, e)),
        Err(_) => Ok(()),
    }
}

/// Sixteen hex digits from the host's random source (time-based if that fails).
fn random_suffix() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = (nanos as u64).to_le_bytes();
    }
    hex::encode(bytes)
}

/// [`UpdateContext`] backed by the files.
pub struct FileContext<'a>(pub &'a Storage);

impl UpdateContext for FileContext<'_> {
    type Error = StorageError;

    fn host(&mut self, name: &Hostname) -> Result<Option<HostView>, StorageError> {
        self.0.host(name)
    }

    fn known_address(
        &mut self,
        host: &Hostname,
        record_type: RecordType,
    ) -> Result<Option<IpAddr>, StorageError> {
        self.0.known_address(host, record_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage {
            state_dir: dir.path().join("state"),
            queue_dir: dir.path().join("queue"),
        };
        for d in [
            s.queue_dir.join("tmp"),
            s.queue_dir.join("new"),
            s.state_dir.join("applied"),
        ] {
            fs::create_dir_all(d).unwrap();
        }
        (dir, s)
    }

    #[test]
    fn read_limited_reads_small_and_large_files_and_enforces_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        assert!(read_limited(&p, 10).unwrap().is_none());
        fs::write(&p, b"hello").unwrap();
        assert_eq!(read_limited(&p, 10).unwrap().unwrap(), b"hello");
        assert_eq!(read_limited(&p, 5).unwrap().unwrap(), b"hello");
        assert!(matches!(
            read_limited(&p, 4),
            Err(StorageError::Corrupt { .. })
        ));
        // larger than the first read buffer
        let big = vec![b'x'; INITIAL_READ * 3 + 7];
        fs::write(&p, &big).unwrap();
        assert_eq!(read_limited(&p, big.len() as u64).unwrap().unwrap(), big);
        assert!(read_limited(&p, big.len() as u64 - 1).is_err());
    }

    #[test]
    fn entries_replace_each_other_and_are_the_newest_known_address() {
        let (_dir, s) = storage();
        let host = Hostname::parse("home.dyn.example.com").unwrap();
        let entry = |addr: &str| QueueEntry {
            format: queue::ENTRY_FORMAT,
            host: host.clone(),
            record_type: RecordType::A,
            address: addr.parse().unwrap(),
            requested_at: SystemTime::now(),
            user: "u".into(),
            client: None,
        };
        assert_eq!(s.known_address(&host, RecordType::A).unwrap(), None);
        // the applied state counts when nothing is pending
        fs::write(
            s.state_dir.join("applied/home.dyn.example.com_A.json"),
            r#"{"host":"home.dyn.example.com","type":"A","address":"192.0.2.1","applied_at":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(
            s.known_address(&host, RecordType::A).unwrap(),
            Some("192.0.2.1".parse().unwrap())
        );
        s.write_entry(&entry("198.51.100.1")).unwrap();
        s.write_entry(&entry("198.51.100.2")).unwrap();
        assert_eq!(fs::read_dir(s.queue_dir.join("new")).unwrap().count(), 1);
        assert_eq!(fs::read_dir(s.queue_dir.join("tmp")).unwrap().count(), 0);
        assert_eq!(
            s.known_address(&host, RecordType::A).unwrap(),
            Some("198.51.100.2".parse().unwrap())
        );
        // a corrupt pending entry does not hide the applied state
        fs::write(
            s.queue_dir.join("new/home.dyn.example.com_A.json"),
            b"garbage",
        )
        .unwrap();
        assert_eq!(
            s.known_address(&host, RecordType::A).unwrap(),
            Some("192.0.2.1".parse().unwrap())
        );
    }

    #[test]
    fn health_lists_every_problem() {
        let (_dir, s) = storage();
        let h = s.health(SystemTime::now());
        assert_eq!(h.status, "unhealthy");
        assert!(h.queue_writable);
        assert!(
            h.problems
                .iter()
                .any(|p| p.contains("dyndns-applier publish")),
            "{:?}",
            h.problems
        );
        assert!(
            h.problems
                .iter()
                .any(|p| p.contains("has not written a heartbeat")),
            "{:?}",
            h.problems
        );
        fs::remove_dir(s.queue_dir.join("tmp")).unwrap();
        let h = s.health(SystemTime::now());
        assert!(!h.queue_writable);
    }
}
