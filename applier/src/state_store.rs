//! The applier's record of every host (`state/hosts/<host>.json`: current
//! addresses, change history, last heard, rate limit) and the heartbeat.
//! Both live in the state directory, which the handler's group may read and
//! nobody but root may write. They are advisory and written without a disk
//! flush: after a crash the next batch confirms the zone again and rewrites
//! them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use dyndns_core::config::Config;
use dyndns_core::state::{HOST_RECORD_FORMAT, Heartbeat, HostRecord, MAX_HOST_RECORD_BYTES};
use dyndns_core::view::HostLive;
use dyndns_core::{Hostname, RecordType};
use serde::Deserialize;
use tracing::{info, warn};

use crate::fsutil::{atomic_write_unsynced_as, read_optional};
use crate::layout::Layout;
use crate::metrics::HostActivity;

/// Every configured host's record, as loaded at start and kept up to date
/// by the batches. Changed records are written by [`HostStates::save`].
#[derive(Debug, Default)]
pub struct HostStates {
    records: BTreeMap<Hostname, HostRecord>,
    dirty: BTreeSet<Hostname>,
}

impl HostStates {
    /// Loads the records of the configured hosts; a missing or unreadable
    /// record starts empty (the next update or confirmation fills it).
    /// Applied state left by version 0.1 (`state/applied/`) is taken over
    /// once and removed.
    pub fn load(layout: &Layout, config: &Config) -> HostStates {
        let mut states = HostStates::default();
        for host in config.hosts.keys() {
            let path = layout.host_records.join(HostRecord::file_name(host));
            let record = match read_optional(&path, MAX_HOST_RECORD_BYTES) {
                Ok(Some(bytes)) => match serde_json::from_slice::<HostRecord>(&bytes) {
                    Ok(r) if &r.host == host && r.format == HOST_RECORD_FORMAT => Some(r),
                    Ok(_) => {
                        warn!(
                            "{} is not {host}'s record; starting it afresh",
                            path.display()
                        );
                        None
                    }
                    Err(e) => {
                        warn!("{} is unreadable ({e}); starting it afresh", path.display());
                        None
                    }
                },
                Ok(None) => None,
                Err(e) => {
                    warn!("cannot read {}: {e}", path.display());
                    None
                }
            };
            if let Some(r) = record {
                states.records.insert(host.clone(), r);
            }
        }
        states.migrate_legacy(layout, config);
        states
    }

    /// Takes over `state/applied/<host>_<TYPE>.json` of version 0.1.
    fn migrate_legacy(&mut self, layout: &Layout, config: &Config) {
        #[derive(Deserialize)]
        struct Legacy {
            host: Hostname,
            #[serde(rename = "type")]
            record_type: RecordType,
            address: std::net::IpAddr,
            #[serde(with = "humantime_serde")]
            applied_at: SystemTime,
        }
        if std::fs::symlink_metadata(&layout.legacy_applied).is_err() {
            return;
        }
        let mut taken = 0;
        for host in config.hosts.keys() {
            for t in RecordType::ALL {
                let path = layout.legacy_applied.join(format!("{host}_{t}.json"));
                let Ok(Some(bytes)) = read_optional(&path, 4096) else {
                    continue;
                };
                let Ok(old) = serde_json::from_slice::<Legacy>(&bytes) else {
                    continue;
                };
                if &old.host != host || old.record_type != t {
                    continue;
                }
                let record = self.record_mut(host);
                if record.current(t).is_none() {
                    record.confirm(t, old.address, old.applied_at);
                    taken += 1;
                }
            }
        }
        match std::fs::remove_dir_all(&layout.legacy_applied) {
            Ok(()) => info!(
                "took over {taken} applied address(es) from {} and removed it",
                layout.legacy_applied.display()
            ),
            Err(e) => warn!("cannot remove {}: {e}", layout.legacy_applied.display()),
        }
    }

    /// The record of `host`, if there is one.
    pub fn get(&self, host: &Hostname) -> Option<&HostRecord> {
        self.records.get(host)
    }

    /// What the handler's view needs of `host`.
    pub fn live(&self, host: &Hostname) -> HostLive {
        self.records
            .get(host)
            .map(HostRecord::live)
            .unwrap_or_default()
    }

    /// When each configured host was last heard from and last changed
    /// (for the per-host metrics).
    pub fn activity(&self, config: &Config) -> Vec<HostActivity> {
        config
            .hosts
            .keys()
            .map(|host| {
                let record = self.records.get(host);
                HostActivity {
                    host: host.clone(),
                    last_heard: record.and_then(|r| r.last_heard),
                    last_change: record.and_then(|r| r.history.iter().map(|e| e.applied_at).max()),
                }
            })
            .collect()
    }

    /// The record of `host` for changing (created when missing); it is
    /// written by the next [`HostStates::save`].
    pub fn record_mut(&mut self, host: &Hostname) -> &mut HostRecord {
        self.dirty.insert(host.clone());
        self.records
            .entry(host.clone())
            .or_insert_with(|| HostRecord::new(host.clone()))
    }

    /// Applies `change` to the record of `host` (created when missing) and
    /// marks it for writing only when that changed something: a burst of
    /// entries confirming what is known costs no writes.
    pub fn update(&mut self, host: &Hostname, change: impl FnOnce(&mut HostRecord)) {
        let record = self
            .records
            .entry(host.clone())
            .or_insert_with(|| HostRecord::new(host.clone()));
        let before = record.clone();
        change(record);
        if *record != before {
            self.dirty.insert(host.clone());
        }
    }

    /// Writes the changed records and returns their hosts (whose view files
    /// need rewriting).
    pub fn save(&mut self, layout: &Layout) -> Result<Vec<Hostname>> {
        let access = layout.state_access();
        let dirty = std::mem::take(&mut self.dirty);
        for host in &dirty {
            if let Some(record) = self.records.get(host) {
                let path = layout.host_records.join(HostRecord::file_name(host));
                atomic_write_unsynced_as(&path, &serde_json::to_vec(record)?, access)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        Ok(dirty.into_iter().collect())
    }
}

/// Reads the record of `host` as last written (for `status`).
pub fn read_host_record(layout: &Layout, host: &Hostname) -> Option<HostRecord> {
    let path = layout.host_records.join(HostRecord::file_name(host));
    read_optional(&path, MAX_HOST_RECORD_BYTES)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// Writes the heartbeat.
pub fn write_heartbeat(layout: &Layout, interval: Duration, dry_run: bool) -> Result<()> {
    let hb = Heartbeat {
        pid: std::process::id(),
        at: SystemTime::now(),
        interval,
        dry_run,
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    atomic_write_unsynced_as(
        &layout.heartbeat,
        &serde_json::to_vec(&hb)?,
        layout.state_access(),
    )
    .with_context(|| format!("writing {}", layout.heartbeat.display()))
}

/// Reads the heartbeat, if any.
pub fn read_heartbeat(layout: &Layout) -> Option<Heartbeat> {
    read_optional(&layout.heartbeat, 4096)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok())
}
