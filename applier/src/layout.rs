//! Where every file of the applier lives, and making sure the directories
//! exist and are what they claim to be (never a symlink planted by the web
//! side).

use std::io;
use std::path::PathBuf;

use anyhow::{Context, Result};
use dyndns_core::config::Paths;
use dyndns_core::{queue, state, view};

use crate::fsutil::ensure_dir;

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
    /// `state/applied`: applied state per host and type.
    pub applied: PathBuf,
    /// `state/heartbeat.json`.
    pub heartbeat: PathBuf,
    /// The private directory (root only).
    pub private: PathBuf,
    /// `private/applier.lock`: single-instance lock.
    pub lock: PathBuf,
    /// `private/journal`: records deleted but not yet re-added.
    pub journal: PathBuf,
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
            applied: paths.state.join(state::APPLIED_DIR),
            heartbeat: paths.state.join(state::HEARTBEAT_FILE),
            private: paths.private.clone(),
            lock: paths.private.join("applier.lock"),
            journal: paths.private.join("journal"),
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
            (&self.queue, 0o755),
            (&self.tmp, 0o770),
            (&self.new, 0o770),
            (&self.cur, 0o700),
            (&self.failed, 0o700),
            (&self.state, 0o755),
            (&self.applied, 0o755),
        ] {
            ensure_dir(dir, mode).with_context(|| format!("preparing {}", dir.display()))?;
        }
        self.check_ownership()?;
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
