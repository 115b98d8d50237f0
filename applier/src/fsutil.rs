//! Careful file operations the applier relies on: atomic durable writes,
//! directory flushing, and opening files without following symlinks.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{Mode, OFlags};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Flushes a directory so renames in it survive a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` atomically and durably (temporary file in the
/// same directory, flushed, renamed into place, directory flushed).
pub fn atomic_write(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_replace(path, bytes, mode, None, true)
}

/// Who may read a file the applier writes: its mode and, when set, the
/// group it is given (the handler's group, for the state it reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Permission bits.
    pub mode: u32,
    /// Group to give the file; `None` keeps the process's.
    pub gid: Option<u32>,
}

/// Writes `bytes` to `path` atomically but without flushing, giving the
/// file `access` before it becomes visible under its name: readers never
/// see a partial file, a crash may lose the write. For advisory files (the
/// applied state, the heartbeat, the view) whose loss costs nothing but a
/// repeated check, and which would otherwise cost two disk flushes each.
pub fn atomic_write_unsynced_as(path: &Path, bytes: &[u8], access: Access) -> io::Result<()> {
    write_replace(path, bytes, access.mode, access.gid, false)
}

/// Gives an open file or directory the group `gid` (root keeps the owner).
/// Without the right to do so (not root, not a member) the error says so.
pub fn set_group(fd: impl rustix::fd::AsFd, gid: Option<u32>) -> io::Result<()> {
    let Some(gid) = gid else { return Ok(()) };
    let current = rustix::fs::fstat(&fd)?;
    if current.st_gid == gid {
        return Ok(());
    }
    rustix::fs::fchown(&fd, None, Some(rustix::fs::Gid::from_raw(gid))).map_err(io::Error::from)
}

fn write_replace(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    gid: Option<u32>,
    durable: bool,
) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no directory"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&tmp)?;
        file.write_all(bytes)?;
        set_group(&file, gid)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        if durable {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&tmp, path)?;
        if durable {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `path` with `bytes`, failing if anything (a file, a planted
/// symlink) already has that name: `O_CREAT|O_EXCL|O_NOFOLLOW`, so root
/// never writes through a link or into someone else's file.
pub fn create_new_file(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags((OFlags::NOFOLLOW | OFlags::CLOEXEC).bits() as i32)
        .open(path)?;
    file.write_all(bytes)
}

/// Replaces the file `name` in the directory `dir`, which may belong to
/// another user (node_exporter's textfile directory): the directory is
/// opened without following a symlink in its last component and refused
/// when others may write to it without the sticky bit (they could swap the
/// file); the temporary file is created relative to that directory with
/// `O_EXCL|O_NOFOLLOW` and renamed over `name` there, which replaces a
/// planted link instead of writing through it. Not flushed (see
/// [`atomic_write_unsynced_as`]).
pub fn replace_in_dir(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir_fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => io::Error::other(format!(
            "{} is a symbolic link or not a directory; refusing to write there",
            dir.display()
        )),
        e => io::Error::from(e),
    })?;
    let stat = rustix::fs::fstat(&dir_fd)?;
    let perm = stat.st_mode & 0o7777;
    if perm & 0o002 != 0 && perm & 0o1000 == 0 {
        return Err(io::Error::other(format!(
            "{} is writable by others without the sticky bit (anyone could replace the file); fix with: chmod o-w {}",
            dir.display(),
            dir.display()
        )));
    }
    let tmp = format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let result = (|| {
        let fd = rustix::fs::openat(
            &dir_fd,
            &tmp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )?;
        let mut file = File::from(fd);
        file.write_all(bytes)?;
        rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))?;
        drop(file);
        rustix::fs::renameat(&dir_fd, &tmp, &dir_fd, name)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = rustix::fs::unlinkat(&dir_fd, &tmp, rustix::fs::AtFlags::empty());
    }
    result
}

/// Why a queue file was not read.
#[derive(Debug, thiserror::Error)]
pub enum UntrustedReadError {
    /// The path is a symlink (never followed).
    #[error("is a symbolic link (not followed)")]
    Symlink,
    /// A directory, FIFO, socket or device.
    #[error("is not a regular file ({0})")]
    NotRegular(&'static str),
    /// Has other hard links (could be a link to a file outside the queue).
    #[error("has {0} hard links; queue entries must have exactly one")]
    HardLinked(u64),
    /// Too large.
    #[error("is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Another I/O error.
    #[error("cannot be read: {0}")]
    Io(#[from] io::Error),
}

/// Describes a file type for messages.
pub fn kind_of(ft: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_symlink() {
        "symbolic link"
    } else if ft.is_dir() {
        "directory"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_file() {
        "regular file"
    } else {
        "unknown type"
    }
}

/// Reads a file that an untrusted party may have placed: never follows a
/// symlink, never blocks on a FIFO, refuses anything but a regular file with
/// one link, and reads at most `limit` bytes.
pub fn read_untrusted(path: &Path, limit: u64) -> Result<Vec<u8>, UntrustedReadError> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(|e| {
        if e == rustix::io::Errno::LOOP {
            UntrustedReadError::Symlink
        } else {
            UntrustedReadError::Io(e.into())
        }
    })?;
    let file = File::from(fd);
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(UntrustedReadError::NotRegular(kind_of(&meta.file_type())));
    }
    use std::os::unix::fs::MetadataExt;
    if meta.nlink() != 1 {
        return Err(UntrustedReadError::HardLinked(meta.nlink()));
    }
    if meta.len() > limit {
        return Err(UntrustedReadError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    let mut buf = Vec::new();
    file.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(UntrustedReadError::TooLarge {
            size: buf.len() as u64,
            limit,
        });
    }
    Ok(buf)
}

/// Reads a small trusted file (our own state); `None` when it does not exist.
pub fn read_optional(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    match File::open(path) {
        Ok(f) => {
            let mut buf = Vec::new();
            f.take(limit).read_to_end(&mut buf)?;
            Ok(Some(buf))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes `path`, a file in `dir`, and syncs `dir`, so the removal
/// survives a crash; a file that is already gone is fine.
pub fn remove_durably(dir: &Path, path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The temporary file of an atomic write (`.<name>.<pid>-<n>.tmp`).
pub fn is_leftover_temporary(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// The `*.json` files of one of our own folders (trusted state), parsed as
/// `T`, each with its path; at most `limit` bytes are read of each. A
/// missing folder has none. Temporary files left by an interrupted atomic
/// write are removed (call only while holding the instance lock, so no
/// writer is alive).
pub fn read_json_files<T: serde::de::DeserializeOwned>(
    dir: &Path,
    limit: u64,
) -> io::Result<Vec<(PathBuf, Result<T, serde_json::Error>)>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_leftover_temporary(&name) {
            let _ = fs::remove_file(entry.path());
            continue;
        }
        if !name.ends_with(".json") {
            continue;
        }
        if let Some(bytes) = read_optional(&entry.path(), limit)? {
            out.push((entry.path(), serde_json::from_slice(&bytes)));
        }
    }
    Ok(out)
}

/// Creates `dir` (and parents) with `mode` if missing; refuses a symlink or
/// a non-directory in its place.
pub fn ensure_dir(dir: &Path, mode: u32) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_dir() => Ok(()),
        Ok(meta) => Err(io::Error::other(format!(
            "{} is a {}, expected a directory; refusing to use it",
            dir.display(),
            kind_of(&meta.file_type())
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                fs::create_dir_all(parent)?;
            }
            match fs::DirBuilder::new().mode(mode).create(dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => ensure_dir(dir, mode),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        atomic_write(&p, b"one", 0o644).unwrap();
        atomic_write(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn untrusted_reads() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, b"hello").unwrap();
        assert_eq!(read_untrusted(&file, 10).unwrap(), b"hello");
        assert!(matches!(
            read_untrusted(&file, 3),
            Err(UntrustedReadError::TooLarge { size: 5, limit: 3 })
        ));
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(matches!(
            read_untrusted(&link, 10),
            Err(UntrustedReadError::Symlink)
        ));
        let hard = dir.path().join("h");
        fs::hard_link(&file, &hard).unwrap();
        assert!(matches!(
            read_untrusted(&hard, 10),
            Err(UntrustedReadError::HardLinked(2))
        ));
        let sub = dir.path().join("d");
        fs::create_dir(&sub).unwrap();
        assert!(matches!(
            read_untrusted(&sub, 10),
            Err(UntrustedReadError::NotRegular("directory"))
        ));
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert!(matches!(
            read_untrusted(&fifo, 10),
            Err(UntrustedReadError::NotRegular("FIFO"))
        ));
    }

    #[test]
    fn new_files_never_follow_or_reuse_a_planted_name() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let planted = dir.path().join("note.reason");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let err = create_new_file(&planted, b"reason", 0o600).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        let dangling = dir.path().join("dangling.reason");
        std::os::unix::fs::symlink(dir.path().join("would-be-created"), &dangling).unwrap();
        assert!(create_new_file(&dangling, b"reason", 0o600).is_err());
        assert!(!dir.path().join("would-be-created").exists());
        let fresh = dir.path().join("fresh.reason");
        create_new_file(&fresh, b"reason", 0o600).unwrap();
        assert_eq!(fs::read(&fresh).unwrap(), b"reason");
        assert_eq!(
            fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(create_new_file(&fresh, b"again", 0o600).is_err());
    }

    #[test]
    fn replace_in_dir_refuses_linked_or_open_directories() {
        let base = tempfile::tempdir().unwrap();
        let real = base.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = replace_in_dir(&link, "m.prom", b"x", 0o644).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(fs::read_dir(&real).unwrap().count(), 0);

        fs::set_permissions(&real, fs::Permissions::from_mode(0o777)).unwrap();
        let err = replace_in_dir(&real, "m.prom", b"x", 0o644).unwrap_err();
        assert!(err.to_string().contains("writable by others"), "{err}");
        fs::set_permissions(&real, fs::Permissions::from_mode(0o1777)).unwrap();
        let victim = base.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, real.join("m.prom")).unwrap();
        replace_in_dir(&real, "m.prom", b"metrics", 0o644).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        let meta = fs::symlink_metadata(real.join("m.prom")).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
        assert_eq!(fs::read(real.join("m.prom")).unwrap(), b"metrics");
        assert_eq!(
            fs::read_dir(&real).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn ensure_dir_refuses_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        ensure_dir(&real, 0o700).unwrap();
        ensure_dir(&real, 0o700).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(
            ensure_dir(&link, 0o700)
                .unwrap_err()
                .to_string()
                .contains("symbolic link")
        );
    }
}
