//! The handler's file access: the view and applied state it reads (under the
//! state directory) and the queue it writes. Inside the sandbox these are the
//! directories the runtime mounts; their guest paths come from
//! `DYNDNS_STATE_DIR` (default `/state`) and `DYNDNS_QUEUE_DIR` (default `/queue`).

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use dyndns_core::queue::{self, EntryKind, EntryName, HeardEntry, QueueEntry, TxtEntry};
use dyndns_core::state::{self, Heartbeat, HostRecord};
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

/// Reads and parses a JSON file of at most `limit` bytes; `None` when it
/// does not exist. Every file operation is a round trip through the runtime
/// (and an expensive one under Spin), so this opens the file and reads it
/// with as few calls as possible: one read fills a buffer larger than every
/// view file, and a short read is taken as the end of the file when what was
/// read parses completely. Only when the JSON is cut short does it read on.
fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    limit: u64,
) -> Result<Option<T>, StorageError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, e)),
    };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let corrupt = |message: String| StorageError::Corrupt {
        path: path.display().to_string(),
        message,
    };
    let mut buf = vec![0u8; INITIAL_READ.min(limit.saturating_add(1))];
    let mut filled = 0;
    let mut at_eof = false;
    loop {
        if filled == buf.len() {
            if filled > limit {
                return Err(corrupt(format!("larger than {limit} bytes")));
            }
            let grown = (buf.len() * 2).min(limit.saturating_add(1));
            buf.resize(grown, 0);
        }
        match file.read(&mut buf[filled..]) {
            Ok(0) => at_eof = true,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(path, e)),
        }
        if filled > limit {
            return Err(corrupt(format!("larger than {limit} bytes")));
        }
        let short_read = filled < buf.len();
        if at_eof || short_read {
            match serde_json::from_slice::<T>(&buf[..filled]) {
                Ok(value) => return Ok(Some(value)),
                // Cut short: a partial read, not the end of the file.
                Err(e) if e.is_eof() && !at_eof => continue,
                Err(e) => return Err(corrupt(e.to_string())),
            }
        }
    }
}

/// First read size: one page, more than a user's view file with a few hosts
/// needs (about 1 KiB). Every page an instance writes to is a fresh
/// copy-on-write fault (each request gets a new instance), so a larger
/// zeroed buffer showed up as three more faults per request; a user file
/// with dozens of inline hosts takes a few more reads instead.
const INITIAL_READ: usize = 4 * 1024;

fn check_format(path: &Path, format: u32) -> Result<(), StorageError> {
    if format == view::VIEW_FORMAT {
        Ok(())
    } else {
        Err(StorageError::Corrupt {
            path: path.display().to_string(),
            message: format!(
                "view format {format} is not {}; republish with this version's applier",
                view::VIEW_FORMAT
            ),
        })
    }
}

/// Whether a queue write must be on disk before the request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// File and directory flushed (updates: `good` promises this).
    Flushed,
    /// Renamed into place, not flushed (advisory markers).
    Advisory,
}

/// A user view file as looked up for a request.
#[derive(Debug, Clone)]
pub struct UserLookup {
    /// The user's file, or the decoy.
    pub user: UserView,
    /// False when the name is not configured (`user` is the decoy).
    pub known: bool,
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
    /// This component's version (the workspace version).
    pub version: &'static str,
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
        check_format(&path, settings.format)?;
        Ok(settings)
    }

    /// The user `name`'s view file. An unknown name gets the decoy file
    /// instead (`known` false): the same work as for a known one (a file of
    /// the same shape read and parsed, a credential verified), so response
    /// times do not tell which names exist.
    pub fn user(&self, name: &str) -> Result<UserLookup, StorageError> {
        let users = self.view_path().join(view::USERS_DIR);
        let path = users.join(view::user_file_name(name));
        let found: Option<UserView> = read_json(&path, view::MAX_VIEW_FILE_BYTES)?;
        if let Some(user) = found.filter(|u| u.name == name) {
            check_format(&path, user.settings.format)?;
            return Ok(UserLookup { user, known: true });
        }
        let decoy_path = users.join(view::DECOY_USER_FILE);
        let decoy: UserView = read_json(&decoy_path, view::MAX_VIEW_FILE_BYTES)?
            .ok_or_else(|| StorageError::NoView(decoy_path.display().to_string()))?;
        check_format(&decoy_path, decoy.settings.format)?;
        Ok(UserLookup {
            user: decoy,
            known: false,
        })
    }

    /// The host `name` from its own view file (for users whose file does not
    /// list their hosts inline).
    pub fn host(&self, name: &Hostname) -> Result<Option<HostView>, StorageError> {
        let path = self
            .view_path()
            .join(view::HOSTS_DIR)
            .join(view::host_file_name(name));
        Ok(read_json::<HostView>(&path, view::MAX_VIEW_FILE_BYTES)?.filter(|h| &h.name == name))
    }

    /// The address of the pending entry for `host`/`record_type`. An
    /// unreadable pending entry counts as absent (the applier will reject
    /// it; a new one replaces it).
    pub fn pending_address(
        &self,
        host: &Hostname,
        record_type: RecordType,
    ) -> Result<Option<IpAddr>, StorageError> {
        Ok(self
            .pending_entry(&EntryName::pending(host, record_type))?
            .map(|entry| entry.address))
    }

    /// The pending entry `new/<pending_name>`, checked like the applier
    /// checks it; `None` when it is absent or unusable.
    fn pending_entry(&self, pending_name: &str) -> Result<Option<QueueEntry>, StorageError> {
        let pending = self.queue_dir.join(queue::NEW_DIR).join(pending_name);
        let mut file = match File::open(&pending) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&pending, e)),
        };
        let mut bytes = Vec::new();
        let limit = queue::MAX_ENTRY_BYTES;
        if (&mut file).take(limit + 1).read_to_end(&mut bytes).is_err() {
            return Ok(None);
        }
        Ok(EntryName::parse(pending_name)
            .ok()
            .and_then(|name| QueueEntry::from_untrusted(&bytes, &name).ok()))
    }

    /// The valid pending entries of `hosts`: one listing of `new/`, then
    /// only the entries of these hosts are read (the status page).
    pub fn pending_entries(
        &self,
        hosts: &BTreeSet<&Hostname>,
    ) -> Result<Vec<QueueEntry>, StorageError> {
        let dir = self.queue_dir.join(queue::NEW_DIR);
        let mut entries = Vec::new();
        for item in fs::read_dir(&dir).map_err(|e| io_err(&dir, e))? {
            let item = item.map_err(|e| io_err(&dir, e))?;
            let Some(name) = item.file_name().to_str().map(str::to_string) else {
                continue;
            };
            // Address entries only: a HEARD marker is folded into the host
            // record within a polling interval, TXT entries are no host's.
            let wanted = EntryName::parse(&name).is_ok_and(|n| {
                n.claim.is_none()
                    && matches!(n.kind, EntryKind::Address(_))
                    && hosts.contains(&n.host)
            });
            if wanted && let Some(entry) = self.pending_entry(&name)? {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    /// Every configured host, from the names of the view's host files.
    pub fn configured_hosts(&self) -> Result<Vec<Hostname>, StorageError> {
        let dir = self.view_path().join(view::HOSTS_DIR);
        let listing = match fs::read_dir(&dir) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StorageError::NoView(dir.display().to_string()));
            }
            Err(e) => return Err(io_err(&dir, e)),
        };
        let mut hosts = Vec::new();
        for item in listing {
            let item = item.map_err(|e| io_err(&dir, e))?;
            let file_name = item.file_name();
            let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            // Only canonical names: one file per host.
            if let Ok(host) = Hostname::parse(name)
                && host.as_str() == name
            {
                hosts.push(host);
            }
        }
        hosts.sort();
        Ok(hosts)
    }

    /// The applier's record of `host` (`state/hosts/<host>.json`): current
    /// addresses, history, last heard. `None` before the applier wrote one.
    pub fn host_record(&self, host: &Hostname) -> Result<Option<HostRecord>, StorageError> {
        let path = self
            .state_dir
            .join(state::HOSTS_STATE_DIR)
            .join(HostRecord::file_name(host));
        Ok(
            read_json::<HostRecord>(&path, state::MAX_HOST_RECORD_BYTES)?
                .filter(|r| &r.host == host && r.format == state::HOST_RECORD_FORMAT),
        )
    }

    /// Writes `entry` atomically and durably: temporary file in `tmp/`,
    /// flushed, renamed over the pending entry for the same host and type in
    /// `new/`, directory flushed. Returns once it is on disk.
    pub fn write_entry(&self, entry: &QueueEntry) -> Result<(), StorageError> {
        let name = EntryName::pending(&entry.host, entry.record_type);
        self.put(&name, entry.to_json().as_bytes(), Durability::Flushed)
    }

    /// Writes a TXT (ACME challenge) entry like [`Storage::write_entry`]:
    /// it replaces the pending entry for the same name and value (or the
    /// pending clear of the name).
    pub fn write_txt_entry(&self, entry: &TxtEntry) -> Result<(), StorageError> {
        self.put(
            &entry.pending_name(),
            entry.to_json().as_bytes(),
            Durability::Flushed,
        )
    }

    /// Writes a "client heard" marker for its host: atomically (a reader
    /// never sees half of it) but without a disk flush, as losing one in a
    /// crash only makes "last heard" a little older.
    pub fn write_heard(&self, entry: &HeardEntry) -> Result<(), StorageError> {
        let name = EntryName::pending(&entry.host, EntryKind::Heard);
        self.put(&name, entry.to_json().as_bytes(), Durability::Advisory)
    }

    /// When the queued "client heard" marker for `host` was written, if one
    /// is waiting for the applier (one stat).
    pub fn heard_marker_written(&self, host: &Hostname) -> Option<SystemTime> {
        let name = EntryName::pending(host, EntryKind::Heard);
        fs::symlink_metadata(self.queue_dir.join(queue::NEW_DIR).join(name))
            .and_then(|m| m.modified())
            .ok()
    }

    /// Puts `bytes` into `new/<name>`: written to a fresh file in `tmp/`,
    /// renamed over whatever `new/<name>` holds.
    fn put(&self, name: &str, bytes: &[u8], durability: Durability) -> Result<(), StorageError> {
        let tmp = self
            .queue_dir
            .join(queue::TMP_DIR)
            .join(format!("{name}.{}.tmp", random_suffix()));
        let target = self.queue_dir.join(queue::NEW_DIR).join(name);
        let flushed = durability == Durability::Flushed;
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| io_err(&tmp, e))?;
            file.write_all(bytes)
                .and_then(|()| if flushed { file.sync_all() } else { Ok(()) })
                .map_err(|e| io_err(&tmp, e))?;
            drop(file);
            fs::rename(&tmp, &target).map_err(|e| io_err(&target, e))?;
            if flushed {
                sync_dir(&self.queue_dir.join(queue::NEW_DIR))?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// True while `new/<name>` exists (one stat).
    pub fn is_pending(&self, name: &str) -> bool {
        fs::symlink_metadata(self.queue_dir.join(queue::NEW_DIR).join(name)).is_ok()
    }

    /// The pending TXT entries of the challenge name `name`, oldest request
    /// first. Lists `new/` (only challenge requests pay for this);
    /// unreadable entries count as absent, as for addresses.
    pub fn pending_txt(&self, name: &Hostname) -> Result<Vec<TxtEntry>, StorageError> {
        let dir = self.queue_dir.join(queue::NEW_DIR);
        let prefix = format!("{name}_TXT");
        let mut entries = Vec::new();
        for item in fs::read_dir(&dir).map_err(|e| io_err(&dir, e))? {
            let item = item.map_err(|e| io_err(&dir, e))?;
            let file_name = item.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            if !file_name.starts_with(&prefix) {
                continue;
            }
            let Ok(parsed) = EntryName::parse(file_name) else {
                continue;
            };
            if &parsed.host != name || parsed.claim.is_some() {
                continue;
            }
            let Ok(file) = File::open(item.path()) else {
                continue;
            };
            let mut bytes = Vec::new();
            if file
                .take(queue::MAX_ENTRY_BYTES + 1)
                .read_to_end(&mut bytes)
                .is_err()
            {
                continue;
            }
            if let Ok(entry) = TxtEntry::from_untrusted(&bytes, &parsed) {
                entries.push(entry);
            }
        }
        entries.sort_by_key(|e| e.requested_at);
        Ok(entries)
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
            version: env!("CARGO_PKG_VERSION"),
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

/// [`UpdateContext`] for one user's request: hosts from the user's view
/// file when it lists them, else from the per-host files; pending entries
/// from the queue.
pub struct FileContext<'a> {
    /// The files.
    pub storage: &'a Storage,
    /// The authenticated user's view.
    pub user: &'a UserView,
}

impl UpdateContext for FileContext<'_> {
    type Error = StorageError;

    fn host(&mut self, name: &Hostname) -> Result<Option<HostView>, StorageError> {
        match self.user.inline_host(name) {
            Some(found) => Ok(found.cloned()),
            None => self.storage.host(name),
        }
    }

    fn pending_address(
        &mut self,
        host: &Hostname,
        record_type: RecordType,
    ) -> Result<Option<IpAddr>, StorageError> {
        self.storage.pending_address(host, record_type)
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
    fn read_json_reads_small_and_large_files_and_enforces_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        assert!(read_json::<String>(&p, 10).unwrap().is_none());
        fs::write(&p, b"\"hello\"").unwrap();
        assert_eq!(read_json::<String>(&p, 10).unwrap().unwrap(), "hello");
        assert_eq!(read_json::<String>(&p, 7).unwrap().unwrap(), "hello");
        assert!(matches!(
            read_json::<String>(&p, 6),
            Err(StorageError::Corrupt { .. })
        ));
        // larger than the first read buffer
        let big = format!("\"{}\"", "x".repeat(INITIAL_READ * 3 + 7));
        fs::write(&p, &big).unwrap();
        assert_eq!(
            read_json::<String>(&p, big.len() as u64)
                .unwrap()
                .unwrap()
                .len(),
            big.len() - 2
        );
        assert!(read_json::<String>(&p, big.len() as u64 - 1).is_err());
        // cut short or garbage: corrupt, never a panic
        fs::write(&p, b"\"unterminated").unwrap();
        assert!(matches!(
            read_json::<String>(&p, 100),
            Err(StorageError::Corrupt { .. })
        ));
        fs::write(&p, b"\"a\" trailing").unwrap();
        assert!(read_json::<String>(&p, 100).is_err());
    }

    #[test]
    fn entries_replace_each_other_and_are_the_pending_address() {
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
        assert_eq!(s.pending_address(&host, RecordType::A).unwrap(), None);
        s.write_entry(&entry("198.51.100.1")).unwrap();
        s.write_entry(&entry("198.51.100.2")).unwrap();
        assert_eq!(fs::read_dir(s.queue_dir.join("new")).unwrap().count(), 1);
        assert_eq!(fs::read_dir(s.queue_dir.join("tmp")).unwrap().count(), 0);
        assert_eq!(
            s.pending_address(&host, RecordType::A).unwrap(),
            Some("198.51.100.2".parse().unwrap())
        );
        // a corrupt or oversized pending entry counts as absent
        fs::write(
            s.queue_dir.join("new/home.dyn.example.com_A.json"),
            b"garbage",
        )
        .unwrap();
        assert_eq!(s.pending_address(&host, RecordType::A).unwrap(), None);
        fs::write(
            s.queue_dir.join("new/home.dyn.example.com_A.json"),
            vec![b' '; 10_000],
        )
        .unwrap();
        assert_eq!(s.pending_address(&host, RecordType::A).unwrap(), None);
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
