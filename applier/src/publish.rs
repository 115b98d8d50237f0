//! Publishing the handler's view (see `dyndns_core::view`). A whole view is
//! written into a fresh directory which then atomically replaces the old one
//! (`renameat2(RENAME_EXCHANGE)`), so the handler always sees one complete
//! version; this happens when the config changes. When a host's live state
//! changes (an address applied, a rate limit, a client heard), only that
//! host's file and the files of the users who list it inline are replaced,
//! each atomically. Everything is mode 0640 with the handler's group, in
//! directories of mode 0750.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, Result};
use dyndns_core::config::Config;
use dyndns_core::view::{self, HandlerSettings, HostLive, View};
use dyndns_core::{Hostname, RecordType};
use rustix::fs::{CWD, RenameFlags};
use sha2::{Digest, Sha256};

use crate::fsutil::{
    Access, atomic_write, atomic_write_unsynced_as, read_optional, set_group, sync_dir,
};
use crate::layout::{Layout, STATE_DIR_MODE};
use crate::state_store::HostStates;

/// Record types with an entry being processed: the view marks them "in
/// flux", so the handler cannot answer `nochg` against an address that is
/// about to be replaced.
pub type InFlux = BTreeSet<(Hostname, RecordType)>;

/// The serialised files of a view, in a stable order.
fn render(view: &View) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = vec![
        (
            view::SETTINGS_FILE.to_string(),
            serde_json::to_vec_pretty(&view.settings)?,
        ),
        (
            format!("{}/{}", view::USERS_DIR, view::DECOY_USER_FILE),
            serde_json::to_vec(&view.decoy)?,
        ),
    ];
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

/// The digest of the config part of `config`'s view, which `publish_all`
/// records in `private/view.sha256`: equal to the recorded one when the
/// published view is current.
pub fn view_digest(config: &Config) -> Result<String> {
    Ok(digest(&render(&View::from_config(config, &|_| {
        HostLive::default()
    }))?))
}

/// Publishes views for one config.
pub struct Publisher {
    settings: HandlerSettings,
    /// For each host, the users (index into `config.users`) listing it inline.
    inline_users: BTreeMap<Hostname, Vec<usize>>,
    /// The live state last written for each host, so that republishing a
    /// host whose state did not change writes nothing.
    published: RefCell<HashMap<Hostname, HostLive>>,
}

impl Publisher {
    /// Prepares publishing for `config`.
    pub fn new(config: &Config) -> Publisher {
        Publisher {
            settings: view::handler_settings(config),
            inline_users: view::inline_users_by_host(config),
            published: RefCell::new(HashMap::new()),
        }
    }

    /// The live state of `host` as the handler should see it.
    fn live(states: &HostStates, in_flux: &InFlux, host: &Hostname) -> HostLive {
        let mut live = states.live(host);
        live.in_flux = RecordType::ALL
            .into_iter()
            .filter(|t| in_flux.contains(&(host.clone(), *t)))
            .collect();
        live
    }

    /// Writes the whole view when the config part of it differs from the
    /// published one (or none is published), or always when `force`.
    /// Returns whether it wrote.
    pub fn publish_all(
        &self,
        config: &Config,
        layout: &Layout,
        states: &HostStates,
        in_flux: &InFlux,
        force: bool,
    ) -> Result<bool> {
        // The digest covers what comes from the config only; live state is
        // kept current file by file.
        let config_digest = view_digest(config)?;
        let current = read_optional(&layout.view_digest, 128)?
            .map(|b| String::from_utf8_lossy(&b).trim().to_string());
        let view_exists = fs::symlink_metadata(layout.view.join(view::SETTINGS_FILE)).is_ok();
        if !force && current.as_deref() == Some(config_digest.as_str()) && view_exists {
            return Ok(false);
        }
        let files = render(&View::from_config(config, &|h| {
            Self::live(states, in_flux, h)
        }))?;
        *self.published.borrow_mut() = config
            .hosts
            .keys()
            .map(|h| (h.clone(), Self::live(states, in_flux, h)))
            .collect();
        let access = layout.state_access();
        let staging = layout
            .state
            .join(format!(".view-new-{}", std::process::id()));
        if fs::symlink_metadata(&staging).is_ok() {
            fs::remove_dir_all(&staging)
                .with_context(|| format!("removing {}", staging.display()))?;
        }
        for dir in [
            staging.clone(),
            staging.join(view::USERS_DIR),
            staging.join(view::HOSTS_DIR),
        ] {
            create_dir(&dir, access).with_context(|| format!("creating {}", dir.display()))?;
        }
        for (name, bytes) in &files {
            write_new(&staging.join(name), bytes, access)
                .with_context(|| format!("writing view file {name}"))?;
        }
        // One syncfs instead of an fsync per file: 20,000 files for 10,000
        // hosts and users would otherwise take seconds.
        let dir = fs::File::open(&staging)?;
        rustix::fs::syncfs(&dir).with_context(|| format!("flushing {}", staging.display()))?;
        swap_into_place(&staging, &layout.view)?;
        sync_dir(&layout.state)?;
        atomic_write(&layout.view_digest, config_digest.as_bytes(), 0o600)?;
        Ok(true)
    }

    /// Rewrites the view files that show `hosts`' live state: each host's
    /// file and the files of the users listing it inline (each once).
    pub fn publish_hosts(
        &self,
        config: &Config,
        layout: &Layout,
        states: &HostStates,
        in_flux: &InFlux,
        hosts: &[Hostname],
    ) -> Result<()> {
        let live = |h: &Hostname| Self::live(states, in_flux, h);
        let hosts: Vec<&Hostname> = {
            let published = self.published.borrow();
            hosts
                .iter()
                .filter(|h| published.get(*h) != Some(&live(h)))
                .collect()
        };
        if hosts.is_empty() {
            return Ok(());
        }
        let access = layout.state_access();
        let mut users: BTreeSet<usize> = BTreeSet::new();
        for &host in &hosts {
            if let Some(entry) = view::host_view(config, host, live(host)) {
                let path = layout
                    .view
                    .join(view::HOSTS_DIR)
                    .join(view::host_file_name(host));
                atomic_write_unsynced_as(&path, &serde_json::to_vec(&entry)?, access)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            users.extend(self.inline_users.get(host).into_iter().flatten());
        }
        for index in users {
            let Some(user) = config.users.get(index) else {
                continue;
            };
            let file = view::user_view(config, &self.settings, user, &live);
            let path = layout
                .view
                .join(view::USERS_DIR)
                .join(view::user_file_name(&user.name));
            atomic_write_unsynced_as(&path, &serde_json::to_vec(&file)?, access)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        let mut published = self.published.borrow_mut();
        for host in hosts {
            published.insert(host.clone(), live(host));
        }
        Ok(())
    }
}

fn create_dir(dir: &Path, access: Access) -> std::io::Result<()> {
    fs::DirBuilder::new().mode(STATE_DIR_MODE).create(dir)?;
    let d = fs::File::open(dir)?;
    set_group(&d, access.gid)?;
    Ok(())
}

fn write_new(path: &Path, bytes: &[u8], access: Access) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(access.mode)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)?;
    f.write_all(bytes)?;
    set_group(&f, access.gid)
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
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

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
        let states = HostStates::default();
        let none = InFlux::new();
        assert!(
            Publisher::new(&c1)
                .publish_all(&c1, &layout, &states, &none, false)
                .unwrap()
        );
        assert!(layout.view.join("hosts/a.dyn.example.com.json").exists());
        assert!(layout.view.join("users/decoy.json").exists());
        assert!(
            !Publisher::new(&c1)
                .publish_all(&c1, &layout, &states, &none, false)
                .unwrap(),
            "unchanged config: nothing written"
        );
        let c2 = config(dir.path(), &["b.dyn.example.com", "c.dyn.example.com"]);
        assert!(
            Publisher::new(&c2)
                .publish_all(&c2, &layout, &states, &none, false)
                .unwrap()
        );
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
        assert!(
            Publisher::new(&c2)
                .publish_all(&c2, &layout, &states, &none, false)
                .unwrap()
        );
    }

    #[test]
    fn view_is_readable_by_root_and_the_handler_group_only() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), &["a.dyn.example.com"]);
        let layout = Layout::new(&c.paths);
        layout.ensure().unwrap();
        Publisher::new(&c)
            .publish_all(&c, &layout, &HostStates::default(), &InFlux::new(), false)
            .unwrap();
        let gid = fs::metadata(&layout.new).unwrap().gid();
        for dir in [&layout.state, &layout.view, &layout.view.join("users")] {
            let m = fs::metadata(dir).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o750, "{}", dir.display());
            assert_eq!(m.gid(), gid, "{}", dir.display());
        }
        for f in [
            layout.view.join("settings.json"),
            layout.view.join("users/decoy.json"),
            layout.view.join("hosts/a.dyn.example.com.json"),
        ] {
            let m = fs::metadata(&f).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o640, "{}", f.display());
            assert_eq!(m.gid(), gid, "{}", f.display());
        }
    }

    #[test]
    fn host_changes_rewrite_the_host_and_inline_users() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), &["a.dyn.example.com", "b.dyn.example.com"]);
        let layout = Layout::new(&c.paths);
        layout.ensure().unwrap();
        let mut states = HostStates::default();
        let publisher = Publisher::new(&c);
        let mut in_flux = InFlux::new();
        publisher
            .publish_all(&c, &layout, &states, &in_flux, false)
            .unwrap();
        let a = Hostname::parse("a.dyn.example.com").unwrap();
        let addr = "198.51.100.4".parse().unwrap();
        states
            .record_mut(&a)
            .confirm(RecordType::A, addr, std::time::SystemTime::now());
        let changed = states.save(&layout).unwrap();
        publisher
            .publish_hosts(&c, &layout, &states, &in_flux, &changed)
            .unwrap();
        let user: view::UserView = serde_json::from_slice(
            &fs::read(layout.view.join("users").join(view::user_file_name("u"))).unwrap(),
        )
        .unwrap();
        assert_eq!(user.inline_host(&a).unwrap().unwrap().live.a, Some(addr));
        let host: view::HostView = serde_json::from_slice(
            &fs::read(layout.view.join("hosts/a.dyn.example.com.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(host.live.a, Some(addr));
        // in flux: the address is not published while an entry is processed
        in_flux.insert((a.clone(), RecordType::A));
        publisher
            .publish_hosts(&c, &layout, &states, &in_flux, std::slice::from_ref(&a))
            .unwrap();
        let host: view::HostView = serde_json::from_slice(
            &fs::read(layout.view.join("hosts/a.dyn.example.com.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(host.live.a, Some(addr), "still shown");
        assert_eq!(host.live.in_flux, vec![RecordType::A]);
        assert_eq!(
            host.live.settled(RecordType::A),
            None,
            "but no ground for nochg"
        );
    }
}
