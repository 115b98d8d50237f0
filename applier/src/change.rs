//! What a batch reports about each address it changed: the `Change` that
//! notifications, logs and metrics consume. Batch produces it, notify reads
//! it; neither imports the other.

use std::net::IpAddr;
use std::time::SystemTime;

use dyndns_core::{Hostname, RecordType};

/// An address change that was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The host.
    pub host: Hostname,
    /// A or AAAA.
    pub record_type: RecordType,
    /// The zone.
    pub zone: Hostname,
    /// Addresses removed (empty when the record was restored after a crash).
    pub old: Vec<IpAddr>,
    /// The address now in the zone.
    pub new: IpAddr,
    /// Who asked (empty for a crash repair).
    pub user: String,
    /// Where the request came from.
    pub client: Option<IpAddr>,
    /// When the request was accepted.
    pub requested_at: Option<SystemTime>,
    /// When it was applied.
    pub applied_at: SystemTime,
}

/// `a,b` for a list of addresses, `(none)` for an empty one.
pub fn address_list(addresses: &[IpAddr]) -> String {
    if addresses.is_empty() {
        "(none)".to_string()
    } else {
        addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}
