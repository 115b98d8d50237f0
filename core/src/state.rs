//! Files the applier writes for the handler to read: the applied state per
//! host and type (for `nochg`) and the heartbeat (for `/health`).

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::hostname::Hostname;
use crate::record_type::RecordType;

/// Directory under the state dir with one [`AppliedRecord`] per host and type.
pub const APPLIED_DIR: &str = "applied";
/// The heartbeat file under the state dir.
pub const HEARTBEAT_FILE: &str = "heartbeat.json";
/// Largest state file the handler reads.
pub const MAX_STATE_BYTES: u64 = 4096;

/// What the applier last put into DNS for one host and type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliedRecord {
    /// The host.
    pub host: Hostname,
    /// A or AAAA.
    #[serde(rename = "type")]
    pub record_type: RecordType,
    /// The address now in the zone.
    pub address: IpAddr,
    /// When it was applied (or confirmed).
    #[serde(with = "humantime_serde")]
    pub applied_at: SystemTime,
}

impl AppliedRecord {
    /// The file name under [`APPLIED_DIR`]: the same per-record name as a
    /// pending queue entry.
    pub fn file_name(host: &Hostname, record_type: RecordType) -> String {
        crate::queue::EntryName::pending(host, record_type)
    }
}

/// Written by the applier on every loop, so that `/health` can tell whether
/// it is alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Process id of the applier.
    pub pid: u32,
    /// When it was written.
    #[serde(with = "humantime_serde")]
    pub at: SystemTime,
    /// The applier's polling interval.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// True when the applier runs with `--dry-run`.
    pub dry_run: bool,
    /// The applier's version.
    pub version: String,
}

impl Heartbeat {
    /// How old the heartbeat is at `now` (zero if it is from the future).
    pub fn age(&self, now: SystemTime) -> Duration {
        now.duration_since(self.at).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_age() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let hb = Heartbeat {
            pid: 1,
            at,
            interval: Duration::from_secs(2),
            dry_run: false,
            version: "x".into(),
        };
        assert_eq!(hb.age(at + Duration::from_secs(7)), Duration::from_secs(7));
        assert_eq!(hb.age(at - Duration::from_secs(7)), Duration::ZERO);
        let json = serde_json::to_string(&hb).unwrap();
        assert_eq!(serde_json::from_str::<Heartbeat>(&json).unwrap(), hb);
    }

    #[test]
    fn applied_file_name() {
        let h = Hostname::parse("a.example.com").unwrap();
        assert_eq!(
            AppliedRecord::file_name(&h, RecordType::AAAA),
            "a.example.com_AAAA.json"
        );
    }
}
