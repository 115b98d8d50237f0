//! Writing the files the handler reads: applied state per host and type
//! (for `nochg`) and the heartbeat (for `/health`). Both are advisory and
//! written without a disk flush: after a crash the next batch confirms the
//! zone again and rewrites them.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use dyndns_core::state::{AppliedRecord, Heartbeat};
use dyndns_core::{Hostname, RecordType};

use crate::fsutil::{atomic_write_unsynced, read_optional};
use crate::layout::Layout;

/// Records that `host`/`t` now has `address` in DNS.
pub fn write_applied(
    layout: &Layout,
    host: &Hostname,
    t: RecordType,
    address: IpAddr,
    at: SystemTime,
) -> Result<()> {
    let record = AppliedRecord {
        host: host.clone(),
        record_type: t,
        address,
        applied_at: at,
    };
    let path = layout.applied.join(AppliedRecord::file_name(host, t));
    atomic_write_unsynced(&path, &serde_json::to_vec(&record)?, 0o644)
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads the applied record for `host`/`t`.
pub fn read_applied(layout: &Layout, host: &Hostname, t: RecordType) -> Option<AppliedRecord> {
    let path = layout.applied.join(AppliedRecord::file_name(host, t));
    read_optional(&path, 4096)
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
    atomic_write_unsynced(&layout.heartbeat, &serde_json::to_vec(&hb)?, 0o644)
        .with_context(|| format!("writing {}", layout.heartbeat.display()))
}

/// Reads the heartbeat, if any.
pub fn read_heartbeat(layout: &Layout) -> Option<Heartbeat> {
    read_optional(&layout.heartbeat, 4096)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok())
}
