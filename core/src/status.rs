//! The per-host status summary behind the handler's `/status` page and
//! `/status.json`, and behind `dyndns-applier status`: current and pending
//! addresses, last change, last heard, whether the client has gone silent,
//! the bounded change history and the address timeline of the last
//! [`TIMELINE_WINDOW`]. Built from the applier's [`HostRecord`] and the
//! pending queue entries; no I/O.
//!
//! Who sees whom: an admin (and root's terminal) sees the user and client
//! address of every change. Any other viewer sees them on the changes they
//! asked for themselves; a change another user made (two users may hold a
//! grant for the same host) shows neither. The host's addresses are public
//! in DNS anyway; who else holds a grant, and where they connect from, are
//! not.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::config::HISTORY_PER_TYPE;
use crate::hostname::Hostname;
use crate::queue::QueueEntry;
use crate::record_type::RecordType;
use crate::state::{HistoryEntry, HostRecord};

/// How far back the timeline reaches.
pub const TIMELINE_WINDOW: Duration = Duration::from_secs(30 * 86_400);

/// Who is looking at the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer<'a> {
    /// The viewer's user name (empty for root's terminal).
    pub name: &'a str,
    /// True for an admin (and root): sees every host and every requester.
    pub admin: bool,
}

impl Viewer<'_> {
    /// True when this viewer may see who asked for a change by `user`.
    fn sees_requester(&self, user: &str) -> bool {
        self.admin || (!user.is_empty() && user == self.name)
    }
}

/// What one host's status is built from.
#[derive(Debug, Clone, Copy)]
pub struct HostSources<'a> {
    /// The host.
    pub host: &'a Hostname,
    /// Its configured record types.
    pub types: &'a [RecordType],
    /// The applier's record of it, when there is one.
    pub record: Option<&'a HostRecord>,
    /// Valid pending queue entries (entries for other hosts or types are
    /// ignored).
    pub pending: &'a [QueueEntry],
    /// Types with an entry the applier is processing right now.
    pub in_flux: &'a [RecordType],
}

/// The whole status as `/status.json` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusReport {
    /// The viewer's user name.
    pub user: String,
    /// True when the viewer is an admin (and so sees every host).
    pub admin: bool,
    /// When the report was made.
    #[serde(with = "humantime_serde")]
    pub generated_at: SystemTime,
    /// A host is silent when not heard from for longer than this.
    pub silent_after_seconds: u64,
    /// How far back the timelines reach.
    pub timeline_days: u64,
    /// The hosts, by name.
    pub hosts: Vec<HostStatus>,
}

/// One host's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostStatus {
    /// The host name.
    pub host: Hostname,
    /// One entry per configured record type.
    pub records: Vec<RecordStatus>,
    /// When an address of the host last changed.
    #[serde(with = "humantime_serde")]
    pub last_change: Option<SystemTime>,
    /// When its client was last heard from (an update, a `nochg`, or a
    /// pending entry's request time).
    #[serde(with = "humantime_serde")]
    pub last_heard: Option<SystemTime>,
    /// Not heard from for longer than the `silent_after` setting, or never.
    pub silent: bool,
    /// Over its change limit until then (only while in the future).
    #[serde(with = "humantime_serde")]
    pub limited_until: Option<SystemTime>,
    /// Applied changes, newest first; at most [`HISTORY_PER_TYPE`] per type.
    pub history: Vec<ChangeStatus>,
    /// The addresses held over the last [`TIMELINE_WINDOW`], per type.
    pub timeline: Vec<TimelineRow>,
}

/// One record type of a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordStatus {
    /// A or AAAA.
    #[serde(rename = "type")]
    pub record_type: RecordType,
    /// The address in the zone, as the applier last applied or confirmed it.
    pub address: Option<IpAddr>,
    /// When the address was applied, when the history says.
    #[serde(with = "humantime_serde")]
    pub since: Option<SystemTime>,
    /// When the applier last applied or confirmed the address.
    #[serde(with = "humantime_serde")]
    pub confirmed_at: Option<SystemTime>,
    /// A queued address not applied yet.
    pub pending: Option<PendingAddress>,
    /// True while the applier is processing an entry for this type.
    pub applying: bool,
}

/// A queued address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingAddress {
    /// The address asked for.
    pub address: IpAddr,
    /// When the request was accepted.
    #[serde(with = "humantime_serde")]
    pub requested_at: SystemTime,
}

/// One applied change as a viewer may see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeStatus {
    /// A or AAAA.
    #[serde(rename = "type")]
    pub record_type: RecordType,
    /// The addresses removed.
    pub old: Vec<IpAddr>,
    /// The address set.
    pub new: IpAddr,
    /// When it was applied.
    #[serde(with = "humantime_serde")]
    pub applied_at: SystemTime,
    /// Who asked, when the viewer may know (see the module comment).
    pub user: Option<String>,
    /// Where the request came from, when known and the viewer may know.
    pub client: Option<IpAddr>,
    /// True when the applier restored the record after a crash (nobody asked).
    pub repair: bool,
}

/// The addresses one record type held over the timeline window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineRow {
    /// A or AAAA.
    #[serde(rename = "type")]
    pub record_type: RecordType,
    /// Consecutive intervals, oldest first, covering the window up to now
    /// (or from the first known change); each boundary is a change.
    pub segments: Vec<TimelineSegment>,
}

/// An interval during which a record held one address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineSegment {
    /// Start.
    #[serde(with = "humantime_serde")]
    pub from: SystemTime,
    /// End.
    #[serde(with = "humantime_serde")]
    pub to: SystemTime,
    /// The address, when known.
    pub address: Option<IpAddr>,
}

impl StatusReport {
    /// A report of `hosts` for `viewer`.
    pub fn new(
        viewer: Viewer<'_>,
        now: SystemTime,
        silent_after: Duration,
        mut hosts: Vec<HostStatus>,
    ) -> StatusReport {
        hosts.sort_by(|a, b| a.host.cmp(&b.host));
        StatusReport {
            user: viewer.name.to_string(),
            admin: viewer.admin,
            generated_at: now,
            silent_after_seconds: silent_after.as_secs(),
            timeline_days: TIMELINE_WINDOW.as_secs() / 86_400,
            hosts,
        }
    }

    /// The hosts that are silent.
    pub fn silent_hosts(&self) -> impl Iterator<Item = &HostStatus> {
        self.hosts.iter().filter(|h| h.silent)
    }
}

impl HostStatus {
    /// Builds the status of one host as `viewer` may see it at `now`.
    pub fn build(
        sources: HostSources<'_>,
        viewer: Viewer<'_>,
        now: SystemTime,
        silent_after: Duration,
    ) -> HostStatus {
        let record = sources.record.filter(|r| &r.host == sources.host);
        let history = bounded_history(record);
        let pending_of = |t: RecordType| {
            sources
                .pending
                .iter()
                .filter(|e| &e.host == sources.host && e.record_type == t)
                .max_by_key(|e| e.requested_at)
        };
        let records: Vec<RecordStatus> = sources
            .types
            .iter()
            .map(|&t| {
                let current = record.and_then(|r| r.current(t));
                let address = current.map(|c| c.address);
                RecordStatus {
                    record_type: t,
                    address,
                    since: address.and_then(|a| {
                        history
                            .iter()
                            .find(|e| e.record_type == t && e.new == a)
                            .map(|e| e.applied_at)
                    }),
                    confirmed_at: current.map(|c| c.confirmed_at),
                    pending: pending_of(t).map(|e| PendingAddress {
                        address: e.address,
                        requested_at: e.requested_at,
                    }),
                    applying: sources.in_flux.contains(&t),
                }
            })
            .collect();
        // A pending entry is a request the applier has not folded in yet;
        // its time comes from the web side, so never later than now.
        let last_heard = record
            .and_then(|r| r.last_heard)
            .into_iter()
            .chain(
                records
                    .iter()
                    .filter_map(|r| r.pending.as_ref())
                    .map(|p| p.requested_at.min(now)),
            )
            .max();
        let silent =
            last_heard.is_none_or(|t| now.duration_since(t).unwrap_or_default() > silent_after);
        let timeline = sources
            .types
            .iter()
            .map(|&t| TimelineRow {
                record_type: t,
                segments: timeline(
                    &history,
                    t,
                    record.and_then(|r| r.current(t)).map(|c| c.address),
                    now,
                    TIMELINE_WINDOW,
                ),
            })
            .collect();
        HostStatus {
            host: sources.host.clone(),
            records,
            last_change: history.iter().map(|e| e.applied_at).max(),
            last_heard,
            silent,
            limited_until: record.and_then(|r| r.limited_until).filter(|t| *t > now),
            history: history
                .iter()
                .map(|e| ChangeStatus {
                    record_type: e.record_type,
                    old: e.old.clone(),
                    new: e.new,
                    applied_at: e.applied_at,
                    user: viewer
                        .sees_requester(&e.user)
                        .then(|| e.user.clone())
                        .filter(|u| !u.is_empty()),
                    client: e.client.filter(|_| viewer.sees_requester(&e.user)),
                    repair: e.user.is_empty(),
                })
                .collect(),
            timeline,
        }
    }
}

/// The record's history, newest first, at most [`HISTORY_PER_TYPE`] per
/// type (the applier keeps no more; a record written by someone else may).
fn bounded_history(record: Option<&HostRecord>) -> Vec<HistoryEntry> {
    let mut all: Vec<&HistoryEntry> = record
        .map(|r| r.history.iter().collect())
        .unwrap_or_default();
    // Stable: entries applied at the same instant keep their file order, reversed.
    all.reverse();
    all.sort_by_key(|e| std::cmp::Reverse(e.applied_at));
    let mut kept = Vec::new();
    for t in RecordType::ALL {
        kept.extend(
            all.iter()
                .filter(|e| e.record_type == t)
                .take(HISTORY_PER_TYPE)
                .map(|e| (*e).clone()),
        );
    }
    kept.sort_by_key(|e| std::cmp::Reverse(e.applied_at));
    kept
}

/// The addresses `record_type` held from `window` before `now` until `now`,
/// from the history (any order) and the current address. Before the first
/// change in the window the address is the one the change before the
/// window set, or the one the first change removed, or (no change at all)
/// the current one; `None` when nothing tells.
pub fn timeline(
    history: &[HistoryEntry],
    record_type: RecordType,
    current: Option<IpAddr>,
    now: SystemTime,
    window: Duration,
) -> Vec<TimelineSegment> {
    let start = now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut changes: Vec<&HistoryEntry> = history
        .iter()
        .filter(|e| e.record_type == record_type && e.applied_at <= now)
        .collect();
    changes.sort_by_key(|e| e.applied_at);
    let before = changes.iter().rev().find(|e| e.applied_at <= start);
    let inside: Vec<&&HistoryEntry> = changes.iter().filter(|e| e.applied_at > start).collect();
    let mut address = match (before, inside.first()) {
        (Some(b), _) => Some(b.new),
        (None, Some(first)) => match first.old.as_slice() {
            [only] => Some(*only),
            _ => None,
        },
        (None, None) => current,
    };
    let mut segments = Vec::new();
    let mut from = start;
    for change in inside {
        if change.applied_at > from {
            segments.push(TimelineSegment {
                from,
                to: change.applied_at,
                address,
            });
        }
        address = Some(change.new);
        from = change.applied_at;
    }
    if now > from {
        segments.push(TimelineSegment {
            from,
            to: now,
            address,
        });
    }
    segments
}

/// A duration in its two largest units (`3d 4h`, `5m 12s`, `40s`), for
/// people: exact times are given beside it.
pub fn rough_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let mut parts = Vec::new();
    let mut rest = secs;
    for (size, unit) in units {
        let n = rest / size;
        rest %= size;
        if n > 0 || !parts.is_empty() {
            parts.push(format!("{n}{unit}"));
        }
        if parts.len() == 2 {
            break;
        }
    }
    if parts.last().is_some_and(|p| p.starts_with('0')) {
        parts.pop();
    }
    if parts.is_empty() {
        "0s".to_string()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests;
