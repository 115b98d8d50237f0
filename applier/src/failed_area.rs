//! The `failed/` directory: rejected items are moved there under names the
//! applier makes (`<id>.item`, with a JSON note `<id>.reason`, see
//! [`dyndns_core::failed`]), read back for `status` only through the
//! no-follow, non-blocking, size-capped reader, and kept bounded: the
//! newest [`MAX_ITEMS`] items no older than [`MAX_AGE`]. Trimming lists the
//! directory at most every [`PRUNE_EVERY`] (or after [`PRUNE_AFTER_ADDED`]
//! new rejections), never once per batch, and a move never probes for a
//! free name, so a batch costs the same however large `failed/` is.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use dyndns_core::failed::{FailedId, FailedName, FailedNote, MAX_AGE, MAX_ITEMS, MAX_NOTE_BYTES};
use dyndns_core::untrusted_text::escape_bytes;
use rustix::fs::{CWD, RenameFlags};
use tracing::{debug, info, warn};
use walkdir::WalkDir;

use crate::fsutil::{create_new_file, read_untrusted};
use crate::layout::Layout;

/// Trimming happens at least this often while the applier runs.
pub const PRUNE_EVERY: Duration = Duration::from_secs(300);
/// ... and also as soon as this many items were added since the last time.
pub const PRUNE_AFTER_ADDED: u64 = (MAX_ITEMS / 10) as u64;

static SEQ: AtomicU64 = AtomicU64::new(0);

/// `new/<name>` (escaped) for an item found at `path`.
fn origin_of(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let name = path.file_name().map(|n| n.as_bytes()).unwrap_or_default();
    let dir = path
        .parent()
        .and_then(Path::file_name)
        .map(|d| d.as_bytes())
        .unwrap_or_default();
    format!("{}/{}", escape_bytes(dir), escape_bytes(name))
}

/// Moves `path` (file, directory, symlink, FIFO: as it is) into `failed/`
/// as `<id>.item` and writes `<id>.reason` beside it (created exclusively,
/// never through a link). Returns the item's new path.
pub fn move_to_failed(layout: &Layout, path: &Path, reason: &str) -> Result<PathBuf> {
    let now = SystemTime::now();
    let id = FailedId::new(now, std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
    move_as(layout, path, reason, id, now)
}

fn move_as(
    layout: &Layout,
    path: &Path,
    reason: &str,
    id: FailedId,
    now: SystemTime,
) -> Result<PathBuf> {
    let target = layout.failed.join(id.item_name());
    rustix::fs::renameat_with(CWD, path, CWD, &target, RenameFlags::NOREPLACE)
        .with_context(|| format!("moving it to {}", target.display()))?;
    let note = FailedNote::new(origin_of(path), reason, now);
    let note_path = layout.failed.join(id.note_name());
    create_new_file(&note_path, note.to_json().as_bytes(), 0o600)
        .with_context(|| format!("writing {}", note_path.display()))?;
    Ok(target)
}

/// One rejection as `status` shows it.
#[derive(Debug, Clone)]
pub struct FailedListing {
    /// The id, or the (escaped) name of a file the applier did not name.
    pub name: String,
    /// The note, or why there is none to show.
    pub note: Result<FailedNote, String>,
}

/// Everything in `failed/`, oldest first. Notes are read with
/// [`read_untrusted`]; files the applier did not name are listed, not read.
pub fn list_failed(layout: &Layout) -> Vec<FailedListing> {
    let mut ours: BTreeMap<FailedId, Option<PathBuf>> = BTreeMap::new();
    let mut foreign = Vec::new();
    for (path, name) in list_names(&layout.failed) {
        match FailedName::parse(&name) {
            FailedName::Item(id) => {
                ours.entry(id).or_default();
            }
            FailedName::Note(id) => {
                ours.insert(id, Some(path));
            }
            FailedName::Foreign => foreign.push(FailedListing {
                name,
                note: Err("not named by this applier (left by an older version?); not read".into()),
            }),
        }
    }
    let mut out: Vec<FailedListing> = ours
        .into_iter()
        .map(|(id, note_path)| FailedListing {
            name: id.to_string(),
            note: match note_path {
                None => Err("no note".into()),
                Some(p) => read_untrusted(&p, MAX_NOTE_BYTES)
                    .map_err(|e| format!("note {e}"))
                    .and_then(|bytes| {
                        FailedNote::parse(&bytes).ok_or_else(|| "note is not readable".into())
                    }),
            },
        })
        .collect();
    out.extend(foreign);
    out
}

/// The names in `dir` (escaped when not UTF-8), never following a link.
fn list_names(dir: &Path) -> Vec<(PathBuf, String)> {
    use std::os::unix::ffi::OsStrExt;
    WalkDir::new(dir)
        .min_depth(1)
        .max_depth(1)
        .follow_links(false)
        .follow_root_links(false)
        .into_iter()
        .filter_map(|r| match r {
            Ok(e) => Some(e),
            Err(err) => {
                warn!("cannot list {}: {err}", dir.display());
                None
            }
        })
        .map(|e| {
            let name = escape_bytes(e.file_name().as_bytes());
            (e.path().to_path_buf(), name)
        })
        .collect()
}

/// What one trimming did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PruneReport {
    /// Directory entries looked at.
    pub examined: usize,
    /// Items removed (with their notes).
    pub removed: usize,
    /// Items left.
    pub kept: usize,
}

/// A group of files in `failed/` that go together: an item and its note,
/// or one file the applier did not name.
struct Group {
    /// Rejection time in milliseconds since 1970 (from the id, or the
    /// modification time of a foreign file).
    millis: u64,
    paths: Vec<(PathBuf, bool)>,
}

/// Removes from `dir` every item older than `max_age`, then the oldest
/// beyond `max_items`. Looks at each directory entry once; only files the
/// applier did not name are examined further (their modification time,
/// without following links).
pub fn prune(dir: &Path, now: SystemTime, max_items: usize, max_age: Duration) -> PruneReport {
    let mut report = PruneReport::default();
    let now_ms = millis_since_epoch(now);
    let mut groups: BTreeMap<(u64, String), Group> = BTreeMap::new();
    for entry in WalkDir::new(dir)
        .min_depth(1)
        .max_depth(1)
        .follow_links(false)
        .follow_root_links(false)
        .into_iter()
    {
        let entry = match entry {
            Ok(e) => e,
            Err(err) => {
                warn!("cannot list {}: {err}", dir.display());
                continue;
            }
        };
        report.examined += 1;
        let path = entry.path().to_path_buf();
        let is_dir = entry.file_type().is_dir();
        let name = entry.file_name().to_str().map(FailedName::parse);
        let (millis, key) = match name {
            Some(FailedName::Item(id)) | Some(FailedName::Note(id)) => (id.millis, id.to_string()),
            _ => {
                // The web side chose this file's times: one in the future
                // counts as now, so it still ages out.
                let millis = fs::symlink_metadata(&path)
                    .and_then(|m| m.modified())
                    .map_or(0, millis_since_epoch)
                    .min(now_ms);
                (millis, format!("foreign/{}", path.display()))
            }
        };
        groups
            .entry((millis, key))
            .or_insert_with(|| Group {
                millis,
                paths: Vec::new(),
            })
            .paths
            .push((path, is_dir));
    }
    let cutoff = now.checked_sub(max_age).map_or(0, millis_since_epoch);
    let total = groups.len();
    let mut left = total;
    // BTreeMap order: oldest first.
    for group in groups.values() {
        if group.millis >= cutoff && left <= max_items {
            break;
        }
        for (path, is_dir) in &group.paths {
            let result = if *is_dir {
                fs::remove_dir_all(path)
            } else {
                fs::remove_file(path)
            };
            if let Err(e) = result {
                warn!("cannot remove {}: {e}", path.display());
            }
        }
        left -= 1;
        report.removed += 1;
    }
    report.kept = left;
    report
}

fn millis_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The applier's view of `failed/` across batches: how many items it holds
/// and when it was last trimmed.
#[derive(Debug)]
pub struct FailedArea {
    dir: PathBuf,
    items: Option<u64>,
    added_since_prune: u64,
    last_prune: Option<Instant>,
}

impl FailedArea {
    /// The area of `layout`, not looked at yet.
    pub fn new(layout: &Layout) -> FailedArea {
        FailedArea {
            dir: layout.failed.clone(),
            items: None,
            added_since_prune: 0,
            last_prune: None,
        }
    }

    /// Trims the area if it is due: never trimmed by this process, the last
    /// time [`PRUNE_EVERY`] ago, or [`PRUNE_AFTER_ADDED`] items added since.
    pub fn prune_if_due(&mut self) -> Option<PruneReport> {
        let due = self.last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY)
            || self.added_since_prune >= PRUNE_AFTER_ADDED;
        if !due {
            return None;
        }
        let report = prune(&self.dir, SystemTime::now(), MAX_ITEMS, MAX_AGE);
        if report.removed > 0 {
            info!(
                removed = report.removed,
                kept = report.kept,
                "trimmed failed/ (at most {MAX_ITEMS} items, none older than {})",
                humantime::format_duration(MAX_AGE)
            );
        } else {
            debug!(
                examined = report.examined,
                kept = report.kept,
                "failed/ within bounds"
            );
        }
        self.items = Some(report.kept as u64);
        self.added_since_prune = 0;
        self.last_prune = Some(Instant::now());
        Some(report)
    }

    /// Counts items a batch moved in.
    pub fn added(&mut self, n: usize) {
        self.added_since_prune += n as u64;
        if let Some(items) = &mut self.items {
            *items += n as u64;
        }
    }

    /// How many items it holds, once it has been looked at.
    pub fn items(&self) -> Option<u64> {
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dyndns_core::config::Paths;
    use std::os::unix::fs::symlink;

    fn layout(dir: &Path) -> Layout {
        let layout = Layout::new(&Paths {
            queue: dir.join("queue"),
            state: dir.join("state"),
            private: dir.join("private"),
        });
        layout.ensure().unwrap();
        layout
    }

    #[test]
    fn moved_items_get_applier_names_and_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let layout = layout(dir.path());
        let planted = layout.new.join("x\u{1b}[2J.reason");
        symlink("/etc/shadow", &planted).unwrap();
        let target = move_to_failed(&layout, &planted, "bad name\nINFO forged").unwrap();
        let name = target.file_name().unwrap().to_str().unwrap();
        let FailedName::Item(id) = FailedName::parse(name) else {
            panic!("{name} is not an applier name");
        };
        assert!(
            fs::symlink_metadata(&target)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let listing = list_failed(&layout);
        assert_eq!(listing.len(), 1);
        assert_eq!(listing[0].name, id.to_string());
        let note = listing[0].note.as_ref().unwrap();
        assert_eq!(note.item, "new/x\\u{1b}[2J.reason");
        assert_eq!(
            note.reason, "bad name\nINFO forged",
            "kept as is, escaped when shown"
        );
        // a second move of the same name does not collide or probe
        symlink("/etc/shadow", &planted).unwrap();
        let second = move_to_failed(&layout, &planted, "again").unwrap();
        assert_ne!(second, target);
        assert_eq!(fs::read_dir(&layout.failed).unwrap().count(), 4);
    }

    #[test]
    fn a_note_is_never_written_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let layout = layout(dir.path());
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        // A link planted at the note's name (as a race could) is refused.
        let now = SystemTime::now();
        let id = FailedId::new(now, 77, 1);
        symlink(&victim, layout.failed.join(id.note_name())).unwrap();
        fs::write(layout.new.join("bad"), b"x").unwrap();
        let err = move_as(&layout, &layout.new.join("bad"), "reason", id, now).unwrap_err();
        assert!(format!("{err:#}").contains("File exists"), "{err:#}");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn status_reads_nothing_it_did_not_name() {
        let dir = tempfile::tempdir().unwrap();
        let layout = layout(dir.path());
        let secret = dir.path().join("secret");
        fs::write(&secret, "reason: TOPSECRET\n").unwrap();
        symlink(&secret, layout.failed.join("old.reason")).unwrap();
        symlink("/dev/zero", layout.failed.join("zero.reason")).unwrap();
        rustix::fs::mknodat(
            CWD,
            layout.failed.join("fifo.reason"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        // even a note under an applier name is read with the careful reader
        let id = FailedId::new(SystemTime::now(), 1, 1);
        symlink(&secret, layout.failed.join(id.note_name())).unwrap();
        let listing = list_failed(&layout);
        assert_eq!(listing.len(), 4);
        for l in &listing {
            let text = format!("{l:?}");
            assert!(!text.contains("TOPSECRET"), "{text}");
        }
        let ours = listing.iter().find(|l| l.name == id.to_string()).unwrap();
        assert!(
            ours.note.as_ref().unwrap_err().contains("symbolic link"),
            "{ours:?}"
        );
    }

    fn fill(dir: &Path, ids: impl IntoIterator<Item = FailedId>) {
        for id in ids {
            fs::write(dir.join(id.item_name()), b"{}").unwrap();
            fs::write(dir.join(id.note_name()), b"{}").unwrap();
        }
    }

    #[test]
    fn prune_keeps_the_newest_within_age() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let id = |age_s: u64, seq| FailedId::new(now - Duration::from_secs(age_s), 1, seq);
        fill(dir.path(), (0..20).map(|n| id(100 + n, n)));
        fill(dir.path(), [id(40 * 86400, 100)]);
        // a directory item and a foreign file, both old
        let old_dir = id(50 * 86400, 101);
        fs::create_dir(dir.path().join(old_dir.item_name())).unwrap();
        fs::write(dir.path().join(old_dir.item_name()).join("inner"), b"x").unwrap();
        let foreign = dir.path().join("legacy_A.json");
        fs::write(&foreign, b"x").unwrap();
        let old = rustix::fs::Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        };
        rustix::fs::utimensat(
            CWD,
            &foreign,
            &rustix::fs::Timestamps {
                last_access: old,
                last_modification: old,
            },
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
        // a foreign file dated in the future counts as now: the newest
        let future = dir.path().join("future_A.json");
        fs::write(&future, b"x").unwrap();
        let later = rustix::fs::Timespec {
            tv_sec: 4_000_000_000,
            tv_nsec: 0,
        };
        rustix::fs::utimensat(
            CWD,
            &future,
            &rustix::fs::Timestamps {
                last_access: later,
                last_modification: later,
            },
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
        let report = prune(dir.path(), now, 15, Duration::from_secs(30 * 86400));
        assert_eq!(report.examined, 20 * 2 + 2 + 1 + 1 + 1);
        assert_eq!(report.removed, 3 + 6);
        assert_eq!(report.kept, 15);
        assert!(future.exists());
        fs::remove_file(&future).unwrap();
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut expected: Vec<String> = (0..14)
            .flat_map(|n| [id(100 + n, n).item_name(), id(100 + n, n).note_name()])
            .collect();
        expected.sort();
        assert_eq!(left, expected);
    }

    #[test]
    fn the_area_is_trimmed_rarely_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let layout = layout(dir.path());
        let mut area = FailedArea::new(&layout);
        assert_eq!(area.items(), None);
        fill(
            &layout.failed,
            (0..3).map(|n| FailedId::new(SystemTime::now(), 1, n)),
        );
        assert_eq!(area.prune_if_due().map(|r| r.kept), Some(3));
        assert_eq!(area.items(), Some(3));
        area.added(2);
        assert_eq!(area.items(), Some(5));
        assert!(area.prune_if_due().is_none(), "not due again so soon");
        area.added(PRUNE_AFTER_ADDED as usize);
        assert!(area.prune_if_due().is_some(), "due after many additions");
        assert_eq!(area.items(), Some(3), "recounted");
    }
}
