//! Where every file of the applier lives, and making sure the directories
//! exist and are what they claim to be (never a symlink planted by the web
//! side), with the right owners and modes: the state directory (the
//! handler's view, the host records, the heartbeat) is readable by root and
//! the handler's group only, never by other local users.

use std::io;
use std::path::PathBuf;

use anyhow::{Context, Result};
use dyndns_core::config::Paths;
use dyndns_core::{queue, state, view};

use rustix::fs::{Mode, OFlags};

use crate::fsutil::{Access, ensure_dir, set_group};

/// Mode of the state directory and the directories in it.
pub const STATE_DIR_MODE: u32 = 0o750;
/// Mode of the files in the state directory.
pub const STATE_FILE_MODE: u32 = 0o640;

/// All paths the applier uses.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The queue directory.
    pub queue: PathBuf,
    /// `queue/tmp`: the handler's temporary files.
    pub tmp: PathBuf,
    /// `queue/new`: pending entries.
    pub new: PathBuf,
    /// `queue/cur`: claimed entries.
    pub cur: PathBuf,
    /// `queue/failed`: rejected entries and reasons.
    pub failed: PathBuf,
    /// The state directory (read by the handler).
    pub state: PathBuf,
    /// `state/view`: the handler's view of the config.
    pub view: PathBuf,
    /// `state/hosts`: one record per host (addresses, history, last heard).
    pub host_records: PathBuf,
    /// `state/applied`: the applied state of version 0.1 (migrated, then removed).
    pub legacy_applied: PathBuf,
    /// `state/heartbeat.json`.
    pub heartbeat: PathBuf,
    /// The private directory (root only).
    pub private: PathBuf,
    /// `private/applier.lock`: single-instance lock.
    pub lock: PathBuf,
    /// `private/journal`: records deleted but not yet re-added.
    pub journal: PathBuf,
    /// `private/challenges`: the ACME challenge values the applier created, and when.
    pub challenges: PathBuf,
    /// `private/retry.json`: the retry schedule.
    pub retry: PathBuf,
    /// `private/view.sha256`: digest of the last published view.
    pub view_digest: PathBuf,
}

impl Layout {
    /// Derives every path from the configured directories.
    pub fn new(paths: &Paths) -> Layout {
        Layout {
            queue: paths.queue.clone(),
            tmp: paths.queue.join(queue::TMP_DIR),
            new: paths.queue.join(queue::NEW_DIR),
            cur: paths.queue.join(queue::CUR_DIR),
            failed: paths.queue.join(queue::FAILED_DIR),
            state: paths.state.clone(),
            view: paths.state.join(view::VIEW_DIR),
            host_records: paths.state.join(state::HOSTS_STATE_DIR),
            legacy_applied: paths.state.join("applied"),
            heartbeat: paths.state.join(state::HEARTBEAT_FILE),
            private: paths.private.clone(),
            lock: paths.private.join("applier.lock"),
            journal: paths.private.join("journal"),
            challenges: paths.private.join("challenges"),
            retry: paths.private.join("retry.json"),
            view_digest: paths.private.join("view.sha256"),
        }
    }

    /// Creates missing directories. `tmp/` and `new/` must be writable by
    /// the handler's user: create them yourself with that owner (see the
    /// README); created here they belong to whoever runs the applier.
    pub fn ensure(&self) -> Result<()> {
        for (dir, mode) in [
            (&self.private, 0o700),
            (&self.journal, 0o700),
            (&self.challenges, 0o700),
            (&self.queue, 0o755),
            (&self.tmp, 0o770),
            (&self.new, 0o770),
            (&self.cur, 0o700),
            (&self.failed, 0o700),
            (&self.state, STATE_DIR_MODE),
            (&self.host_records, STATE_DIR_MODE),
        ] {
            ensure_dir(dir, mode).with_context(|| format!("preparing {}", dir.display()))?;
        }
        self.check_ownership()?;
        self.restrict_state()?;
        Ok(())
    }

    /// The group the handler runs as: the group of `queue/new`, the one
    /// directory it must be able to write. The state it reads is given this
    /// group and no access for others.
    pub fn handler_gid(&self) -> Option<u32> {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(&self.new).ok().map(|m| m.gid())
    }

    /// How the applier writes files the handler reads.
    pub fn state_access(&self) -> Access {
        Access {
            mode: STATE_FILE_MODE,
            gid: self.handler_gid(),
        }
    }

    /// Gives the state directory and the directories in it the handler's
    /// group and mode 0750 (also for installs of 0.1, which made them 0755),
    /// so other local users cannot read user names, grants, credential
    /// hashes or addresses. Files are written 0640 with that group.
    fn restrict_state(&self) -> Result<()> {
        let gid = self.handler_gid();
        let view_dirs = [
            self.view.clone(),
            self.view.join(view::USERS_DIR),
            self.view.join(view::HOSTS_DIR),
        ];
        for dir in [&self.state, &self.host_records]
            .into_iter()
            .chain(view_dirs.iter())
        {
            let fd = match rustix::fs::open(
                dir,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => {
                    return Err(io::Error::from(e))
                        .with_context(|| format!("opening {}", dir.display()));
                }
            };
            set_group(&fd, gid).with_context(|| {
                format!(
                    "giving {} the handler's group (that of {})",
                    dir.display(),
                    self.new.display()
                )
            })?;
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(STATE_DIR_MODE))
                .map_err(io::Error::from)
                .with_context(|| format!("chmod {}", dir.display()))?;
        }
        Ok(())
    }

    /// Advice about the directories the handler writes: when they belong to
    /// root, the handler (an unprivileged user) cannot write them.
    pub fn warnings(&self) -> Vec<String> {
        use std::os::unix::fs::MetadataExt;
        let mut out = Vec::new();
        if !rustix::process::geteuid().is_root() {
            return out;
        }
        for dir in [&self.tmp, &self.new] {
            if let Ok(meta) = std::fs::symlink_metadata(dir)
                && meta.uid() == 0
                && meta.mode() & 0o002 == 0
            {
                out.push(format!(
                    "{} belongs to root: the handler cannot write updates there unless it runs as root. Fix with: chown dyndns:dyndns {}",
                    dir.display(),
                    dir.display()
                ));
            }
        }
        out
    }

    /// Running as root, the directories the web side must not control have
    /// to belong to root.
    fn check_ownership(&self) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        if !rustix::process::geteuid().is_root() {
            return Ok(());
        }
        for dir in [
            &self.queue,
            &self.cur,
            &self.failed,
            &self.private,
            &self.journal,
            &self.state,
        ] {
            let meta = std::fs::symlink_metadata(dir)
                .with_context(|| format!("checking {}", dir.display()))?;
            if meta.uid() != 0 {
                anyhow::bail!(
                    "{} belongs to uid {}, not root; the web side could tamper with it. Fix with: chown root: {}",
                    dir.display(),
                    meta.uid(),
                    dir.display()
                );
            }
            if meta.mode() & 0o022 != 0 {
                anyhow::bail!(
                    "{} is writable by group or others; fix with: chmod go-w {}",
                    dir.display(),
                    dir.display()
                );
            }
        }
        Ok(())
    }
}

/// Tells whether an I/O error means "does not exist".
pub fn is_not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}
