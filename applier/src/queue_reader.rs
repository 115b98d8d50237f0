//! Reading the queue as untrusted input. Pending entries are claimed by a
//! rename from `new/` into `cur/` (root's directory) before they are read;
//! anything that is not a regular, singly linked, small file with a valid
//! name and content is moved to `failed/` under a name the applier makes,
//! with a note (see [`crate::failed_area`]). Symlinks are moved as links:
//! their targets are never opened, moved or deleted.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use dyndns_core::authorization::may_update;
use dyndns_core::challenge::may_set_challenge;
use dyndns_core::config::Config;
use dyndns_core::queue::{self, Entry, EntryKind, EntryName, HeardEntry, QueueEntry, TxtEntry};
use dyndns_core::untrusted_text::{escape, escape_bytes};
use rustix::fs::{CWD, RenameFlags};
use tracing::{debug, error, warn};
use walkdir::WalkDir;

pub use crate::failed_area::move_to_failed;
use crate::fsutil::{kind_of, read_untrusted};
use crate::layout::Layout;

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A valid entry, claimed (or, in dry-run, just read).
#[derive(Debug, Clone)]
pub struct ValidEntry {
    /// Where the file is now.
    pub path: PathBuf,
    /// Its parsed name.
    pub name: EntryName,
    /// Its content.
    pub entry: Entry,
    /// True when it was claimed from `new/` in this batch (a fresh request).
    pub fresh: bool,
}

/// What a look at the queue found.
#[derive(Debug, Default)]
pub struct Collected {
    /// Usable entries (several per host and type are possible).
    pub entries: Vec<ValidEntry>,
    /// Rejected items: (what, why).
    pub rejected: Vec<(String, String)>,
}

/// Reads and claims queue entries.
pub struct QueueReader<'a> {
    layout: &'a Layout,
    config: &'a Config,
}

fn claim_id() -> String {
    let ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    format!(
        "{ms}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Which queue directory an item was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// `new/`: names without a claim id.
    Pending,
    /// `cur/`: names with a claim id.
    Claimed,
}

/// Checks an item's type and name without opening it.
fn check_name(
    file_name: Option<&str>,
    file_type: &fs::FileType,
    place: Place,
) -> Result<EntryName, String> {
    if !file_type.is_file() {
        return Err(format!("is a {}, not a regular file", kind_of(file_type)));
    }
    let name_str = file_name.ok_or_else(|| "file name is not UTF-8".to_string())?;
    let name = EntryName::parse(name_str).map_err(|e| e.to_string())?;
    match (place, name.claim.is_some()) {
        (Place::Pending, true) => Err("a claimed entry's name is not allowed in new/".into()),
        (Place::Claimed, false) => Err("unclaimed name in cur/".into()),
        _ => Ok(name),
    }
}

impl<'a> QueueReader<'a> {
    /// A reader for `layout`, checking entries against `config`.
    pub fn new(layout: &'a Layout, config: &'a Config) -> QueueReader<'a> {
        QueueReader { layout, config }
    }

    /// Claims every pending entry and reads every claimed one. Bad items are
    /// moved to `failed/`.
    pub fn collect(&self) -> Result<Collected> {
        let mut out = Collected::default();
        let mut claimed_now: HashSet<PathBuf> = HashSet::new();
        // 1. claim from new/
        for (path, name) in self.names(&self.layout.new, Place::Pending, &mut out) {
            let shown = display_name(&path);
            let target = self.layout.cur.join(EntryName::claimed(
                &name.host,
                name.kind.clone(),
                &claim_id(),
            ));
            match rustix::fs::renameat_with(CWD, &path, CWD, &target, RenameFlags::NOREPLACE) {
                Ok(()) => {
                    debug!("claimed {shown}");
                    claimed_now.insert(target);
                }
                // Vanished (replaced by a newer rename) or unreadable: next batch.
                Err(e) => debug!("could not claim {shown}: {e}"),
            }
        }
        // 2. read everything in cur/
        for (path, name) in self.names(&self.layout.cur, Place::Claimed, &mut out) {
            match self.read_entry(&path, &name) {
                Ok(entry) => {
                    let fresh = claimed_now.contains(&path);
                    out.entries.push(ValidEntry {
                        path,
                        name,
                        entry,
                        fresh,
                    });
                }
                Err(reason) => {
                    let shown = display_name(&path);
                    self.reject(&path, &mut out, &shown, reason);
                }
            }
        }
        Ok(out)
    }

    /// The items of `dir` whose type and name are right for `place`; the
    /// others are moved to `failed/`.
    fn names(&self, dir: &Path, place: Place, out: &mut Collected) -> Vec<(PathBuf, EntryName)> {
        let mut good = Vec::new();
        for item in list_dir(dir) {
            match item {
                Ok((path, file_name, file_type)) => {
                    match check_name(file_name.as_deref(), &file_type, place) {
                        Ok(name) => good.push((path, name)),
                        Err(reason) => {
                            let shown = display_name(&path);
                            self.reject(&path, out, &shown, reason);
                        }
                    }
                }
                Err(e) => error!("cannot list {}: {e}", dir.display()),
            }
        }
        good
    }

    /// Reads without moving anything (for `--dry-run` and `status`):
    /// pending entries in `new/` and claimed ones in `cur/`.
    pub fn peek(&self) -> Collected {
        let mut out = Collected::default();
        for (dir, place) in [
            (&self.layout.cur, Place::Claimed),
            (&self.layout.new, Place::Pending),
        ] {
            for (path, file_name, file_type) in list_dir(dir).flatten() {
                let shown = display_name(&path);
                let name = match check_name(file_name.as_deref(), &file_type, place) {
                    Ok(n) => n,
                    Err(reason) => {
                        out.rejected.push((shown, reason));
                        continue;
                    }
                };
                match self.read_entry(&path, &name) {
                    Ok(entry) => out.entries.push(ValidEntry {
                        path,
                        name,
                        entry,
                        fresh: place == Place::Pending,
                    }),
                    Err(reason) => out.rejected.push((shown, reason)),
                }
            }
        }
        out
    }

    /// Reads and validates one entry file.
    fn read_entry(&self, path: &Path, name: &EntryName) -> Result<Entry, String> {
        let bytes = read_untrusted(path, queue::MAX_ENTRY_BYTES).map_err(|e| e.to_string())?;
        let entry = Entry::from_untrusted(&bytes, name).map_err(|e| e.to_string())?;
        match &entry {
            Entry::Address(e) => check_against_config(self.config, e)?,
            Entry::Txt(e) => check_challenge_against_config(self.config, e)?,
            Entry::Heard(e) => check_heard_against_config(self.config, e)?,
        }
        Ok(entry)
    }

    /// Moves a bad item to `failed/` with a reason file beside it.
    fn reject(&self, path: &Path, out: &mut Collected, shown: &str, reason: String) {
        warn!(item = %shown, reason = %escape(&reason), "rejected queue item");
        if let Err(e) = move_to_failed(self.layout, path, &reason) {
            error!(item = %shown, "could not move the rejected item to failed/: {e}");
        }
        out.rejected.push((shown.to_string(), reason));
    }
}

/// Checks a well-formed entry against the config: the host is configured,
/// its zone is allowed, the record type is enabled for it.
pub fn check_against_config(config: &Config, entry: &QueueEntry) -> Result<(), String> {
    let Some(zone) = config.zone_of(&entry.host) else {
        let allowed: Vec<&str> = config.zones.iter().map(|z| z.as_str()).collect();
        return Err(format!(
            "{} is not in an allowed zone (allowed: {})",
            entry.host,
            allowed.join(", ")
        ));
    };
    let Some(host) = config.host(&entry.host) else {
        return Err(format!("{} is not a configured host", entry.host));
    };
    if &host.zone != zone || !config.zone_allowed(&host.zone) {
        return Err(format!(
            "zone {} of {} is not allowed",
            host.zone, entry.host
        ));
    }
    if !host.types.contains(&entry.record_type) {
        return Err(format!(
            "{} records are not enabled for {}",
            entry.record_type, entry.host
        ));
    }
    Ok(())
}

/// Checks a well-formed TXT entry against the config, as if the request
/// came in now: challenges are enabled, the name is the `_acme-challenge`
/// name of a configured host in an allowed zone, and the entry's user
/// exists and may update that host. A compromised web side can write any
/// entry; this is what keeps it to the names its users may set.
pub fn check_challenge_against_config(config: &Config, entry: &TxtEntry) -> Result<(), String> {
    if !config.acme.enabled {
        return Err("ACME challenges are disabled (acme.enabled = false)".into());
    }
    let Some(host) = config.challenge_host(&entry.host) else {
        return Err(format!(
            "{} is not the _acme-challenge name of a configured host",
            entry.host
        ));
    };
    if !config.zone_allowed(&host.zone) {
        return Err(format!(
            "zone {} of {} is not allowed",
            host.zone, entry.host
        ));
    }
    let Some(user) = config.user(&entry.user) else {
        return Err(format!("user {:?} is not configured", entry.user));
    };
    if !may_set_challenge(
        &user.name,
        &user.grants,
        &entry.host,
        config.handler.user_named_hosts,
    ) {
        return Err(format!(
            "user {:?} may not set TXT records at {}",
            entry.user, entry.host
        ));
    }
    Ok(())
}

/// Checks a "heard" entry: the host is configured and the entry's user
/// exists and may update it (so a compromised web side cannot make a host
/// look alive on behalf of nobody).
pub fn check_heard_against_config(config: &Config, entry: &HeardEntry) -> Result<(), String> {
    if config.host(&entry.host).is_none() {
        return Err(format!("{} is not a configured host", entry.host));
    }
    let Some(user) = config.user(&entry.user) else {
        return Err(format!("user {:?} is not configured", entry.user));
    };
    if !may_update(
        &user.name,
        &user.grants,
        &entry.host,
        config.handler.user_named_hosts,
    ) {
        return Err(format!(
            "user {:?} may not update {}",
            entry.user, entry.host
        ));
    }
    Ok(())
}

type DirItem = std::io::Result<(PathBuf, Option<String>, fs::FileType)>;

/// The direct children of `dir`, not following symlinks, sorted by name.
fn list_dir(dir: &Path) -> impl Iterator<Item = DirItem> {
    WalkDir::new(dir)
        .min_depth(1)
        .max_depth(1)
        .follow_links(false)
        .follow_root_links(false)
        .sort_by_file_name()
        .into_iter()
        .map(|r| {
            r.map(|e| {
                let name = e.file_name().to_str().map(str::to_string);
                (e.path().to_path_buf(), name, e.file_type())
            })
            .map_err(|e| std::io::Error::other(e.to_string()))
        })
}

/// The item's path for humans, escaped (see [`escape_bytes`]).
pub fn display_name(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    escape_bytes(path.as_os_str().as_bytes())
}

/// The host and record type of every address entry waiting in `new/` or
/// `cur/`, judged by name only (nothing is opened; a bad item is dealt with when
/// the batch reads it).
pub fn pending_keys(layout: &Layout) -> Vec<(dyndns_core::Hostname, dyndns_core::RecordType)> {
    let mut keys: Vec<_> = [&layout.new, &layout.cur]
        .into_iter()
        .flat_map(|dir| list_dir(dir).flatten())
        .filter(|(_, _, ft)| ft.is_file())
        .filter_map(|(_, name, _)| EntryName::parse(name.as_deref()?).ok())
        .filter_map(|n| match n.kind {
            EntryKind::Address(t) => Some((n.host, t)),
            EntryKind::Txt(_) | EntryKind::TxtClear | EntryKind::Heard => None,
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Removes leftovers in `tmp/` older than `max_age` (a handler killed between
/// write and rename). Only unlinks; never follows links or enters directories.
pub fn clean_tmp(layout: &Layout, max_age: Duration) {
    let now = SystemTime::now();
    for (path, _, ft) in list_dir(&layout.tmp).flatten() {
        if ft.is_dir() {
            continue;
        }
        let old = fs::symlink_metadata(&path)
            .and_then(|m| m.modified())
            .map(|m| now.duration_since(m).unwrap_or_default() > max_age)
            .unwrap_or(false);
        if old {
            match fs::remove_file(&path) {
                Ok(()) => debug!("removed stale temporary file {}", display_name(&path)),
                Err(e) => warn!("cannot remove stale {}: {e}", display_name(&path)),
            }
        }
    }
}
