use super::*;
use crate::queue::ENTRY_FORMAT;
use crate::state::CurrentAddress;

const DAY: u64 = 86_400;

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn host() -> Hostname {
    Hostname::parse("home.dyn.example.com").unwrap()
}

fn change(at: u64, old: &[&str], new: &str, user: &str) -> HistoryEntry {
    let new = ip(new);
    HistoryEntry {
        record_type: RecordType::of(&new),
        old: old.iter().map(|o| ip(o)).collect(),
        new,
        applied_at: t(at),
        user: user.into(),
        client: Some(ip("203.0.113.9")),
    }
}

fn entry(address: &str, at: u64) -> QueueEntry {
    let address = ip(address);
    QueueEntry {
        format: ENTRY_FORMAT,
        host: host(),
        record_type: RecordType::of(&address),
        address,
        requested_at: t(at),
        user: "alice".into(),
        client: None,
    }
}

const NOW: u64 = 100 * DAY;
const ADMIN: Viewer<'static> = Viewer {
    name: "root",
    admin: true,
};
const ALICE: Viewer<'static> = Viewer {
    name: "alice",
    admin: false,
};

fn build(record: Option<&HostRecord>, pending: &[QueueEntry], viewer: Viewer<'_>) -> HostStatus {
    let h = host();
    HostStatus::build(
        HostSources {
            host: &h,
            types: &RecordType::ALL,
            record,
            pending,
            in_flux: &[RecordType::AAAA],
        },
        viewer,
        t(NOW),
        Duration::from_secs(2 * DAY),
    )
}

fn record() -> HostRecord {
    let mut r = HostRecord::new(host());
    r.push_history(change(NOW - 40 * DAY, &[], "192.0.2.1", "alice"));
    r.push_history(change(
        NOW - 10 * DAY,
        &["192.0.2.1"],
        "198.51.100.2",
        "bob",
    ));
    r.push_history(change(
        NOW - DAY,
        &["198.51.100.2"],
        "198.51.100.3",
        "alice",
    ));
    r.a = Some(CurrentAddress {
        address: ip("198.51.100.3"),
        confirmed_at: t(NOW - 60),
    });
    r.last_heard = Some(t(NOW - 3 * DAY));
    r
}

#[test]
fn a_host_with_history_addresses_and_pending_entries() {
    let r = record();
    let s = build(Some(&r), &[entry("2001:db8::5", NOW - 30)], ADMIN);
    assert_eq!(s.records.len(), 2);
    let a = &s.records[0];
    assert_eq!(a.address, Some(ip("198.51.100.3")));
    assert_eq!(a.since, Some(t(NOW - DAY)), "when the history set it");
    assert_eq!(a.confirmed_at, Some(t(NOW - 60)));
    assert_eq!(a.pending, None);
    assert!(!a.applying);
    let aaaa = &s.records[1];
    assert_eq!(aaaa.address, None);
    assert_eq!(aaaa.pending.as_ref().unwrap().address, ip("2001:db8::5"));
    assert!(aaaa.applying);
    assert_eq!(s.last_change, Some(t(NOW - DAY)));
    assert_eq!(
        s.last_heard,
        Some(t(NOW - 30)),
        "the pending entry is newer than the record's last_heard"
    );
    assert!(!s.silent);
    assert_eq!(s.history.len(), 3);
    assert_eq!(s.history[0].applied_at, t(NOW - DAY), "newest first");
    assert_eq!(
        s.history[1].user.as_deref(),
        Some("bob"),
        "the admin sees all"
    );
}

#[test]
fn silent_when_not_heard_for_longer_than_the_setting_or_never() {
    let r = record();
    let s = build(Some(&r), &[], ADMIN);
    assert_eq!(s.last_heard, Some(t(NOW - 3 * DAY)));
    assert!(s.silent, "3 days > 2 days");
    let never = build(None, &[], ADMIN);
    assert_eq!(never.last_heard, None);
    assert!(never.silent);
    assert!(never.history.is_empty() && never.last_change.is_none());
    assert_eq!(never.records[0].address, None);
    // a pending entry from the future (the web side's clock) counts as now
    let s = build(Some(&r), &[entry("198.51.100.9", NOW + 10 * DAY)], ADMIN);
    assert_eq!(s.last_heard, Some(t(NOW)));
}

#[test]
fn other_users_names_and_clients_are_hidden_from_non_admins() {
    let mut r = record();
    r.push_history(HistoryEntry {
        user: String::new(),
        client: None,
        ..change(NOW - 100, &[], "198.51.100.3", "")
    });
    let s = build(Some(&r), &[], ALICE);
    let by: Vec<(Option<&str>, Option<IpAddr>, bool)> = s
        .history
        .iter()
        .map(|c| (c.user.as_deref(), c.client, c.repair))
        .collect();
    assert_eq!(
        by,
        vec![
            (None, None, true),
            (Some("alice"), Some(ip("203.0.113.9")), false),
            (None, None, false),
            (Some("alice"), Some(ip("203.0.113.9")), false),
        ]
    );
    let json = serde_json::to_string(&s).unwrap();
    assert!(!json.contains("bob"), "{json}");
}

#[test]
fn history_is_bounded_per_type_even_for_a_record_written_by_someone_else() {
    let mut r = HostRecord::new(host());
    for i in 0..(HISTORY_PER_TYPE as u64 + 20) {
        // no push_history: a hand-written record is not trimmed
        r.history.push(change(
            NOW - 1000 + i,
            &[],
            &format!("198.51.100.{}", i % 200 + 1),
            "a",
        ));
    }
    r.history.push(change(NOW - 5, &[], "2001:db8::1", "a"));
    let s = build(Some(&r), &[], ADMIN);
    let of_a = s
        .history
        .iter()
        .filter(|c| c.record_type == RecordType::A)
        .count();
    assert_eq!(of_a, HISTORY_PER_TYPE);
    assert_eq!(s.history.len(), HISTORY_PER_TYPE + 1);
    assert_eq!(s.history[0].record_type, RecordType::AAAA, "newest first");
    assert_eq!(
        s.history.last().unwrap().applied_at,
        t(NOW - 1000 + 20),
        "the oldest 20 are dropped"
    );
}

#[test]
fn a_record_of_another_host_is_ignored() {
    let mut r = record();
    r.host = Hostname::parse("nas.dyn.example.com").unwrap();
    let s = build(Some(&r), &[], ADMIN);
    assert_eq!(s.records[0].address, None);
    assert!(s.history.is_empty());
}

#[test]
fn timeline_covers_the_window_with_one_segment_per_address() {
    let r = record();
    let segs = timeline(
        &r.history,
        RecordType::A,
        Some(ip("198.51.100.3")),
        t(NOW),
        TIMELINE_WINDOW,
    );
    let got: Vec<(SystemTime, SystemTime, Option<IpAddr>)> =
        segs.iter().map(|s| (s.from, s.to, s.address)).collect();
    assert_eq!(
        got,
        vec![
            (t(NOW - 30 * DAY), t(NOW - 10 * DAY), Some(ip("192.0.2.1"))),
            (t(NOW - 10 * DAY), t(NOW - DAY), Some(ip("198.51.100.2"))),
            (t(NOW - DAY), t(NOW), Some(ip("198.51.100.3"))),
        ]
    );
    // before the first known change: what it removed, else unknown
    let only_recent = [change(NOW - DAY, &["192.0.2.7"], "192.0.2.8", "a")];
    let segs = timeline(&only_recent, RecordType::A, None, t(NOW), TIMELINE_WINDOW);
    assert_eq!(segs[0].address, Some(ip("192.0.2.7")));
    let restored = [change(NOW - DAY, &[], "192.0.2.8", "")];
    let segs = timeline(&restored, RecordType::A, None, t(NOW), TIMELINE_WINDOW);
    assert_eq!(segs[0].address, None);
    assert_eq!(segs.len(), 2);
    // no change at all: the current address throughout, or nothing known
    let segs = timeline(
        &[],
        RecordType::A,
        Some(ip("192.0.2.8")),
        t(NOW),
        TIMELINE_WINDOW,
    );
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].from, t(NOW - 30 * DAY));
    assert_eq!(segs[0].address, Some(ip("192.0.2.8")));
    // a change from the future is not drawn
    let future = [change(NOW + DAY, &[], "192.0.2.9", "a")];
    let segs = timeline(&future, RecordType::A, None, t(NOW), TIMELINE_WINDOW);
    assert_eq!(segs.len(), 1);
}

#[test]
fn report_is_sorted_and_round_trips() {
    let r = record();
    let mut other = build(None, &[], ADMIN);
    other.host = Hostname::parse("a.dyn.example.com").unwrap();
    let report = StatusReport::new(
        ADMIN,
        t(NOW),
        Duration::from_secs(2 * DAY),
        vec![build(Some(&r), &[], ADMIN), other],
    );
    assert_eq!(report.hosts[0].host.as_str(), "a.dyn.example.com");
    assert_eq!(report.silent_after_seconds, 2 * DAY);
    assert_eq!(report.timeline_days, 30);
    assert_eq!(report.silent_hosts().count(), 2);
    let json = serde_json::to_string(&report).unwrap();
    assert_eq!(serde_json::from_str::<StatusReport>(&json).unwrap(), report);
}

#[test]
fn rough_durations() {
    for (secs, text) in [
        (0, "0s"),
        (42, "42s"),
        (60, "1m"),
        (61, "1m 1s"),
        (3_600, "1h"),
        (3_660, "1h 1m"),
        (3_601, "1h"),
        (3 * DAY + 4 * 3_600 + 5, "3d 4h"),
        (2 * DAY + 59, "2d"),
    ] {
        assert_eq!(rough_duration(Duration::from_secs(secs)), text, "{secs}");
    }
}
