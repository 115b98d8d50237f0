//! The single-instance lock: an exclusive `flock` on `private/applier.lock`,
//! held for the life of the process, so a cron-started run and the service
//! never work on the queue at the same time. The kernel releases it when the
//! process dies, however it dies.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};

/// A held lock; released on drop.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

/// Tries to take the lock. `Ok(None)` when another process holds it.
pub fn try_lock(path: &Path) -> Result<Option<InstanceLock>> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            let _ = file.set_len(0);
            let _ = writeln!(file, "{}", std::process::id());
            Ok(Some(InstanceLock { _file: file }))
        }
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// True when another process holds the lock. Never creates or writes the
/// lock file (for read-only commands such as `status`).
pub fn is_held(path: &Path) -> bool {
    match File::open(path) {
        Ok(file) => matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

/// The pid written by the holder, for messages.
pub fn holder(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l");
        let first = try_lock(&p).unwrap().expect("first lock");
        assert!(try_lock(&p).unwrap().is_none());
        assert!(is_held(&p));
        assert_eq!(holder(&p), Some(std::process::id()));
        drop(first);
        assert!(!is_held(&p));
        assert!(try_lock(&p).unwrap().is_some());
        assert!(!is_held(&dir.path().join("missing")));
    }
}
