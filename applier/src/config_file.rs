//! Loading the config file from disk (the parsing and validation live in
//! `dyndns_core::config`).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use dyndns_core::config::Config;

/// Largest config file we read (10,000 hosts and users fit easily).
const MAX_CONFIG_BYTES: u64 = 64 * 1024 * 1024;

/// A loaded config and what identifies the file version it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The validated config.
    pub config: Config,
    /// The file it came from.
    pub path: PathBuf,
    /// Modification time and size at load time, to notice edits.
    pub stamp: FileStamp,
}

/// Modification time, size and inode of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    ino: u64,
}

/// The current stamp of `path`.
pub fn stamp(path: &Path) -> Result<FileStamp> {
    let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(FileStamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        ino: meta.ino(),
    })
}

/// Reads and validates the config at `path`. Relative paths inside it are
/// taken relative to the file's directory.
pub fn load(path: &Path) -> Result<LoadedConfig> {
    let before = stamp(path)?;
    if before.len > MAX_CONFIG_BYTES {
        bail!(
            "{} is larger than {} bytes",
            path.display(),
            MAX_CONFIG_BYTES
        );
    }
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let base = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let config = Config::parse(&text, base.as_deref())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(LoadedConfig {
        config,
        path: path.to_path_buf(),
        stamp: before,
    })
}

/// Warnings about how the file is kept (secrets readable by others).
pub fn permission_warnings(loaded: &LoadedConfig) -> Vec<String> {
    let mut out = Vec::new();
    let has_secrets = loaded
        .config
        .notify
        .email
        .as_ref()
        .is_some_and(|e| e.password.is_some())
        || loaded.config.notify.webhook.is_some();
    if let Ok(meta) = fs::metadata(&loaded.path)
        && has_secrets
        && meta.mode() & 0o077 != 0
    {
        out.push(format!(
            "{} holds notification secrets but is readable by group or others (mode {:o}); run: chmod 600 {}",
            loaded.path.display(),
            meta.mode() & 0o777,
            loaded.path.display()
        ));
    }
    out
}
