//! Files the applier writes and the handler reads besides the view: one
//! record per host (its addresses, its change history, when its client was
//! last heard, whether it is rate limited) and the heartbeat (for
//! `/health`). The view's per-host `live` state is derived from the host
//! records, so the two never disagree for long.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::config::HISTORY_PER_TYPE;
use crate::hostname::Hostname;
use crate::record_type::RecordType;
use crate::view::HostLive;

/// Directory under the state dir with one [`HostRecord`] per host.
pub const HOSTS_STATE_DIR: &str = "hosts";
/// The heartbeat file under the state dir.
pub const HEARTBEAT_FILE: &str = "heartbeat.json";
/// Largest heartbeat file the handler reads.
pub const MAX_STATE_BYTES: u64 = 4096;
/// Largest host record read (50 changes per type, each a few hundred bytes).
pub const MAX_HOST_RECORD_BYTES: u64 = 128 * 1024;
/// Version of the host record format.
pub const HOST_RECORD_FORMAT: u32 = 1;

/// An address in the zone and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurrentAddress {
    /// The address.
    pub address: IpAddr,
    /// Since when the zone holds it (applied, or first confirmed).
    #[serde(with = "humantime_serde")]
    pub confirmed_at: SystemTime,
}

/// One applied change of a host's address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    /// A or AAAA.
    #[serde(rename = "type")]
    pub record_type: RecordType,
    /// The addresses removed (empty when the record was restored).
    pub old: Vec<IpAddr>,
    /// The new address.
    pub new: IpAddr,
    /// When it was applied.
    #[serde(with = "humantime_serde")]
    pub applied_at: SystemTime,
    /// Who asked (empty for a crash repair).
    pub user: String,
    /// Where the request came from, when known.
    pub client: Option<IpAddr>,
}

/// Everything the applier knows about one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRecord {
    /// [`HOST_RECORD_FORMAT`].
    pub format: u32,
    /// The host.
    pub host: Hostname,
    /// The A address in the zone.
    pub a: Option<CurrentAddress>,
    /// The AAAA address in the zone.
    pub aaaa: Option<CurrentAddress>,
    /// When the host's client was last heard from.
    #[serde(default, with = "humantime_serde")]
    pub last_heard: Option<SystemTime>,
    /// Over the change limit until then.
    #[serde(default, with = "humantime_serde")]
    pub limited_until: Option<SystemTime>,
    /// Applied changes, oldest first; at most [`HISTORY_PER_TYPE`] per type.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    /// The TXT values at `_acme-challenge.<host>` as the applier last left
    /// them, oldest first (see [`HostLive::challenges`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub challenges: Vec<String>,
}

impl HostRecord {
    /// An empty record for `host`.
    pub fn new(host: Hostname) -> HostRecord {
        HostRecord {
            format: HOST_RECORD_FORMAT,
            host,
            a: None,
            aaaa: None,
            last_heard: None,
            limited_until: None,
            history: Vec::new(),
            challenges: Vec::new(),
        }
    }

    /// The file name under [`HOSTS_STATE_DIR`].
    pub fn file_name(host: &Hostname) -> String {
        format!("{host}.json")
    }

    /// The current address of `record_type`.
    pub fn current(&self, record_type: RecordType) -> Option<&CurrentAddress> {
        match record_type {
            RecordType::A => self.a.as_ref(),
            RecordType::AAAA => self.aaaa.as_ref(),
        }
    }

    /// Records that `address` is in the zone for `record_type` (applied or
    /// confirmed) at `at`. Confirming the address already recorded keeps
    /// its time: `confirmed_at` says since when the zone holds it.
    pub fn confirm(&mut self, record_type: RecordType, address: IpAddr, at: SystemTime) {
        let slot = match record_type {
            RecordType::A => &mut self.a,
            RecordType::AAAA => &mut self.aaaa,
        };
        if slot.as_ref().is_some_and(|c| c.address == address) {
            return;
        }
        *slot = Some(CurrentAddress {
            address,
            confirmed_at: at,
        });
    }

    /// Adds a change to the history, dropping the oldest of its type beyond
    /// [`HISTORY_PER_TYPE`].
    pub fn push_history(&mut self, entry: HistoryEntry) {
        let record_type = entry.record_type;
        self.history.push(entry);
        let of_type = self
            .history
            .iter()
            .filter(|e| e.record_type == record_type)
            .count();
        if of_type > HISTORY_PER_TYPE {
            let mut excess = of_type - HISTORY_PER_TYPE;
            self.history.retain(|e| {
                if excess > 0 && e.record_type == record_type {
                    excess -= 1;
                    false
                } else {
                    true
                }
            });
        }
    }

    /// Notes that the client was heard at `at` (never moves backwards, never
    /// later than `now`: the time comes from the web side).
    pub fn heard(&mut self, at: SystemTime, now: SystemTime) {
        let at = at.min(now);
        if self.last_heard.is_none_or(|t| t < at) {
            self.last_heard = Some(at);
        }
    }

    /// Changes applied within `window` before `now`.
    pub fn changes_within(&self, window: Duration, now: SystemTime) -> Vec<SystemTime> {
        let since = now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut times: Vec<SystemTime> = self
            .history
            .iter()
            .map(|e| e.applied_at)
            .filter(|t| *t > since)
            .collect();
        times.sort();
        times
    }

    /// When the host may have its next change under a limit of `limit`
    /// changes per `window`: `None` when it may change now (or there is no
    /// limit), else the time the oldest counted change leaves the window.
    pub fn next_change_allowed(
        &self,
        limit: u32,
        window: Duration,
        now: SystemTime,
    ) -> Option<SystemTime> {
        if limit == 0 {
            return None;
        }
        let times = self.changes_within(window, now);
        let limit = limit as usize;
        if times.len() < limit {
            return None;
        }
        // The (len - limit + 1)-th oldest must leave before another fits.
        times.get(times.len() - limit).map(|t| *t + window)
    }

    /// What the handler's view needs of this record.
    pub fn live(&self) -> HostLive {
        HostLive {
            a: self.a.as_ref().map(|c| c.address),
            aaaa: self.aaaa.as_ref().map(|c| c.address),
            limited_until: self.limited_until,
            last_heard: self.last_heard,
            in_flux: Vec::new(),
            challenges: self.challenges.clone(),
        }
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

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn change(record_type: RecordType, at: u64) -> HistoryEntry {
        HistoryEntry {
            record_type,
            old: vec![],
            new: match record_type {
                RecordType::A => "198.51.100.1".parse().unwrap(),
                RecordType::AAAA => "2001:db8::1".parse().unwrap(),
            },
            applied_at: t(at),
            user: "u".into(),
            client: None,
        }
    }

    #[test]
    fn heartbeat_age() {
        let at = t(100);
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
    fn history_is_bounded_per_type() {
        let mut r = HostRecord::new(Hostname::parse("a.example.com").unwrap());
        for i in 0..(HISTORY_PER_TYPE as u64 + 7) {
            r.push_history(change(RecordType::A, 1000 + i));
        }
        r.push_history(change(RecordType::AAAA, 5000));
        assert_eq!(r.history.len(), HISTORY_PER_TYPE + 1);
        assert_eq!(r.history[0].applied_at, t(1007), "the oldest went first");
        assert_eq!(r.history.last().unwrap().record_type, RecordType::AAAA);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<HostRecord>(&json).unwrap(), r);
    }

    #[test]
    fn change_limit() {
        let mut r = HostRecord::new(Hostname::parse("a.example.com").unwrap());
        let window = Duration::from_secs(3600);
        assert_eq!(r.next_change_allowed(2, window, t(10_000)), None);
        r.push_history(change(RecordType::A, 9_000));
        assert_eq!(r.next_change_allowed(2, window, t(10_000)), None);
        r.push_history(change(RecordType::AAAA, 9_500));
        assert_eq!(
            r.next_change_allowed(2, window, t(10_000)),
            Some(t(9_000 + 3600)),
            "both types count; free again when the oldest leaves the window"
        );
        assert_eq!(r.next_change_allowed(2, window, t(12_601)), None);
        assert_eq!(r.next_change_allowed(0, window, t(10_000)), None, "0 = off");
    }

    #[test]
    fn heard_never_goes_back_or_into_the_future() {
        let mut r = HostRecord::new(Hostname::parse("a.example.com").unwrap());
        r.heard(t(50), t(100));
        assert_eq!(r.last_heard, Some(t(50)));
        r.heard(t(40), t(100));
        assert_eq!(r.last_heard, Some(t(50)));
        r.heard(t(500), t(100));
        assert_eq!(r.last_heard, Some(t(100)));
    }

    #[test]
    fn live_view_of_a_record() {
        let mut r = HostRecord::new(Hostname::parse("a.example.com").unwrap());
        r.confirm(RecordType::A, "198.51.100.9".parse().unwrap(), t(5));
        let live = r.live();
        assert_eq!(live.a, Some("198.51.100.9".parse().unwrap()));
        assert_eq!(live.aaaa, None);
    }
}
