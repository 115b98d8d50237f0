//! Publishing the handler's view of the config (see `dyndns_core::view`):
//! all files are written into a fresh directory which then atomically
//! replaces the old view (`renameat2(RENAME_EXCHANGE)`), so the handler
//! always sees one complete version.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use anyhow::{Context, Result};
use dyndns_core::config::Config;
use dyndns_core::view::{self, View};
use rustix::fs::{CWD, RenameFlags};
use sha2::{Digest, Sha256};

use crate::fsutil::{atomic_write, read_optional, sync_dir};
use crate::layout::Layout;

/// The serialised files of a view, in a stable order.
fn render(view: &View) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = vec![(
        view::SETTINGS_FILE.to_string(),
        serde_json::to_vec_pretty(&view.settings)?,
    )];
    for (name, user) in &view.users {
        files.push((
            format!("{}/{name}", view::USERS_DIR),
            serde_json::to_vec(user)?,
        ));
    }
    for (name, host) in &view.hosts {
        files.push((
            format!("{}/{name}", view::HOSTS_DIR),
            serde_json::to_vec(host)?,
        ));
    }
    Ok(files)
}

fn digest(files: &[(String, Vec<u8>)]) -> String {
    let mut h = Sha256::new();
    for (name, bytes) in files {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    hex::encode(h.finalize())
}

/// Writes the view when it differs from the published one. Returns whether
/// anything was written.
pub fn publish(config: &Config, layout: &Layout) -> Result<bool> {
    let files = render(&View::from_config(config))?;
    let digest = digest(&files);
    let current = read_optional(&layout.view_digest, 128)?
        .map(|b| String::from_utf8_lossy(&b).trim().to_string());
    let view_exists = fs::symlink_metadata(layout.view.join(view::SETTINGS_FILE)).is_ok();
    if current.as_deref() == Some(digest.as_str()) && view_exists {
        return Ok(false);
    }
    let staging = layout
        .state
        .join(format!(".view-new-{}", std::process::id()));
    if fs::symlink_metadata(&staging).is_ok() {
        fs::remove_dir_all(&staging).with_context(|| format!("removing {}", staging.display()))?;
    }
    let builder = {
        let mut b = fs::DirBuilder::new();
        b.mode(0o755);
        b
    };
    builder
        .create(&staging)
        .with_context(|| format!("creating {}", staging.display()))?;
    builder.create(staging.join(view::USERS_DIR))?;
    builder.create(staging.join(view::HOSTS_DIR))?;
    for (name, bytes) in &files {
        fs::write(staging.join(name), bytes)
            .with_context(|| format!("writing view file {name}"))?;
    }
    // One syncfs instead of an fsync per file: 20,000 files for 10,000 hosts
    // and users would otherwise take seconds.
    let dir = fs::File::open(&staging)?;
    rustix::fs::syncfs(&dir).with_context(|| format!("flushing {}", staging.display()))?;
    swap_into_place(&staging, &layout.view)?;
    sync_dir(&layout.state)?;
    atomic_write(&layout.view_digest, digest.as_bytes(), 0o600)?;
    Ok(true)
}

/// Puts `staging` where `target` is: exchanged atomically with an existing
/// view (whose old content is then removed), or renamed if there is none.
fn swap_into_place(staging: &Path, target: &Path) -> Result<()> {
    match fs::symlink_metadata(target) {
        Ok(meta) if meta.file_type().is_dir() => {
            rustix::fs::renameat_with(CWD, staging, CWD, target, RenameFlags::EXCHANGE)
                .with_context(|| format!("swapping {} into place", target.display()))?;
            fs::remove_dir_all(staging)
                .with_context(|| format!("removing the old view at {}", staging.display()))?;
        }
        Ok(_) => {
            fs::remove_file(target)?;
            fs::rename(staging, target)?;
        }
        Err(_) => {
            fs::rename(staging, target)
                .with_context(|| format!("moving the view to {}", target.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dyndns_core::config::Config;

    fn config(dir: &Path, hosts: &[&str]) -> Config {
        let mut text = format!(
            "zones = [\"dyn.example.com\"]\n[paths]\nqueue = \"{0}/q\"\nstate = \"{0}/s\"\nprivate = \"{0}/p\"\n",
            dir.display()
        );
        for h in hosts {
            text.push_str(&format!("[[hosts]]\nname = \"{h}\"\n"));
        }
        text.push_str("[[users]]\nname = \"u\"\ncredential = \"sha256:00000000000000000000000000000000:0000000000000000000000000000000000000000000000000000000000000000\"\nhosts = [\"*.dyn.example.com\"]\n");
        Config::parse(&text, None).unwrap()
    }

    #[test]
    fn publishes_and_replaces_completely() {
        let dir = tempfile::tempdir().unwrap();
        let c1 = config(dir.path(), &["a.dyn.example.com", "b.dyn.example.com"]);
        let layout = Layout::new(&c1.paths);
        layout.ensure().unwrap();
        assert!(publish(&c1, &layout).unwrap());
        assert!(layout.view.join("hosts/a.dyn.example.com.json").exists());
        assert!(
            !publish(&c1, &layout).unwrap(),
            "unchanged config: nothing written"
        );
        let c2 = config(dir.path(), &["b.dyn.example.com", "c.dyn.example.com"]);
        assert!(publish(&c2, &layout).unwrap());
        assert!(
            !layout.view.join("hosts/a.dyn.example.com.json").exists(),
            "removed host is gone"
        );
        assert!(layout.view.join("hosts/c.dyn.example.com.json").exists());
        let leftovers: Vec<_> = fs::read_dir(&layout.state)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            leftovers
                .iter()
                .all(|n| !n.to_string_lossy().starts_with(".view")),
            "{leftovers:?}"
        );
        // a deleted view is rewritten even when the digest matches
        fs::remove_dir_all(&layout.view).unwrap();
        assert!(publish(&c2, &layout).unwrap());
    }
}
