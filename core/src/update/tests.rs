use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use super::*;
use crate::request::UpdateParams;

struct Memory {
    hosts: HashMap<Hostname, HostView>,
    known: HashMap<(Hostname, RecordType), IpAddr>,
    lookups: usize,
}

impl UpdateContext for Memory {
    type Error = Infallible;
    fn host(&mut self, name: &Hostname) -> Result<Option<HostView>, Infallible> {
        self.lookups += 1;
        Ok(self.hosts.get(name).cloned())
    }
    fn pending_address(
        &mut self,
        host: &Hostname,
        t: RecordType,
    ) -> Result<Option<IpAddr>, Infallible> {
        Ok(self.known.get(&(host.clone(), t)).copied())
    }
}

fn h(s: &str) -> Hostname {
    Hostname::parse(s).unwrap()
}

fn memory() -> Memory {
    let zone = h("dyn.example.com");
    let mut hosts = HashMap::new();
    for (name, types, iid) in [
        (
            "home.dyn.example.com",
            vec![RecordType::A, RecordType::AAAA],
            None,
        ),
        ("v4.dyn.example.com", vec![RecordType::A], None),
        ("v6.dyn.example.com", vec![RecordType::AAAA], None),
        (
            "nas.dyn.example.com",
            vec![RecordType::A, RecordType::AAAA],
            Some("::1:2:3:4".parse().unwrap()),
        ),
        ("other.dyn.example.com", vec![RecordType::A], None),
    ] {
        hosts.insert(
            h(name),
            HostView {
                name: h(name),
                zone: zone.clone(),
                types,
                ipv6_interface_id: iid,
                live: Default::default(),
            },
        );
    }
    Memory {
        hosts,
        known: HashMap::new(),
        lookups: 0,
    }
}

fn settings() -> HandlerSettings {
    HandlerSettings {
        format: crate::view::VIEW_FORMAT,
        zones: vec![h("dyn.example.com")],
        proxy_secret_sha256: None,
        trusted_proxies: vec![],
        user_named_hosts: false,
        realm: "dyndns".into(),
        heartbeat_max_age: Duration::from_secs(300),
        heard_resolution: Duration::from_secs(600),
        acme: Default::default(),
        silent_after: Duration::from_secs(2 * 86_400),
    }
}

fn grants() -> Vec<Grant> {
    [
        "home.dyn.example.com",
        "v4.dyn.example.com",
        "v6.dyn.example.com",
        "nas.dyn.example.com",
    ]
    .iter()
    .map(|g| Grant::parse(g).unwrap())
    .collect()
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn run(query: &str, mem: &mut Memory) -> (Vec<String>, Vec<PlannedWrite>) {
    let plan = plan(query, mem);
    (
        plan.outcomes.iter().map(|o| o.answer.to_string()).collect(),
        plan.writes,
    )
}

fn plan(query: &str, mem: &mut Memory) -> UpdatePlan {
    let params = UpdateParams::parse(query).unwrap();
    let addrs = params
        .addresses(Some("203.0.113.9".parse().unwrap()))
        .unwrap();
    let g = grants();
    plan_update(
        Requester {
            name: "alice",
            grants: &g,
        },
        &settings(),
        &params.hostnames,
        &addrs,
        now(),
        mem,
    )
    .unwrap()
}

#[test]
fn good_then_nochg() {
    let mut mem = memory();
    let (lines, writes) = run("hostname=v4.dyn.example.com&myip=198.51.100.7", &mut mem);
    assert_eq!(lines, vec!["good 198.51.100.7"]);
    assert_eq!(writes.len(), 1);
    mem.known.insert(
        (h("v4.dyn.example.com"), RecordType::A),
        "198.51.100.7".parse().unwrap(),
    );
    let (lines, writes) = run("hostname=v4.dyn.example.com&myip=198.51.100.7", &mut mem);
    assert_eq!(lines, vec!["nochg 198.51.100.7"]);
    assert!(writes.is_empty());
}

#[test]
fn dual_stack_partly_changed_is_good_and_writes_only_the_change() {
    let mut mem = memory();
    mem.known.insert(
        (h("home.dyn.example.com"), RecordType::A),
        "198.51.100.7".parse().unwrap(),
    );
    let (lines, writes) = run(
        "hostname=home.dyn.example.com&myip=198.51.100.7,2001:db8::7",
        &mut mem,
    );
    assert_eq!(lines, vec!["good 198.51.100.7,2001:db8::7"]);
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].record_type, RecordType::AAAA);
}

#[test]
fn types_not_configured_are_skipped() {
    let mut mem = memory();
    let (lines, writes) = run(
        "hostname=v4.dyn.example.com&myip=198.51.100.7,2001:db8::7",
        &mut mem,
    );
    assert_eq!(lines, vec!["good 198.51.100.7"]);
    assert_eq!(writes.len(), 1);
    let (lines, writes) = run("hostname=v6.dyn.example.com&myip=198.51.100.7", &mut mem);
    assert_eq!(lines, vec!["nohost"]);
    assert!(writes.is_empty());
}

#[test]
fn several_hosts_line_by_line() {
    let mut mem = memory();
    let (lines, writes) = run(
        "hostname=home.dyn.example.com,bad_name,other.dyn.example.com,unknown.dyn.example.com,v4.dyn.example.com&myip=198.51.100.7",
        &mut mem,
    );
    assert_eq!(
        lines,
        vec![
            "good 198.51.100.7",
            "notfqdn",
            "nohost",
            "nohost",
            "good 198.51.100.7"
        ]
    );
    assert_eq!(writes.len(), 2);
}

#[test]
fn repeated_host_is_answered_twice_and_written_once() {
    let mut mem = memory();
    let (lines, writes) = run(
        "hostname=v4.dyn.example.com,V4.dyn.example.com.&myip=198.51.100.7",
        &mut mem,
    );
    assert_eq!(lines, vec!["good 198.51.100.7", "good 198.51.100.7"]);
    assert_eq!(writes.len(), 1);
}

#[test]
fn lan_prefix_with_interface_id() {
    let mut mem = memory();
    let (lines, writes) = run(
        "hostname=nas.dyn.example.com,home.dyn.example.com&myip=198.51.100.7,2001:db8::1&ip6lanprefix=2001:db8:1:2::/64",
        &mut mem,
    );
    // nas has an interface id: prefix + id; home has none: the router's own address
    assert_eq!(
        lines,
        vec![
            "good 198.51.100.7,2001:db8:1:2:1:2:3:4",
            "good 198.51.100.7,2001:db8::1"
        ]
    );
    assert_eq!(writes.len(), 4);
    // a link-local prefix makes an unpublishable address
    let (lines, _) = run(
        "hostname=nas.dyn.example.com&ip6lanprefix=fe80::/64&myip=198.51.100.7",
        &mut mem,
    );
    assert_eq!(lines, vec!["badagent"]);
}

#[test]
fn client_address_is_used_without_myip() {
    let mut mem = memory();
    let (lines, writes) = run("hostname=v4.dyn.example.com", &mut mem);
    assert_eq!(lines, vec!["good 203.0.113.9"]);
    assert_eq!(writes[0].address, "203.0.113.9".parse::<IpAddr>().unwrap());
}

#[test]
fn user_named_hosts_and_foreign_zone() {
    let mut mem = memory();
    let mut s = settings();
    s.user_named_hosts = true;
    let params = UpdateParams::parse("hostname=other.dyn.example.com&myip=198.51.100.1").unwrap();
    let addrs = params.addresses(None).unwrap();
    let plan = plan_update(
        Requester {
            name: "other@dyn.example.com",
            grants: &[],
        },
        &s,
        &params.hostnames,
        &addrs,
        now(),
        &mut mem,
    )
    .unwrap();
    assert_eq!(plan.outcomes[0].answer.to_string(), "good 198.51.100.1");
    // the same host view outside the allowed zones is refused
    s.zones = vec![h("elsewhere.example.com")];
    let plan = plan_update(
        Requester {
            name: "other@dyn.example.com",
            grants: &[],
        },
        &s,
        &params.hostnames,
        &addrs,
        now(),
        &mut mem,
    )
    .unwrap();
    assert_eq!(plan.outcomes[0].answer.to_string(), "nohost");
    assert!(plan.writes.is_empty());
}

#[test]
fn refusals_carry_a_reason_for_the_log() {
    let mut mem = memory();
    let params = UpdateParams::parse("hostname=other.dyn.example.com&myip=198.51.100.1").unwrap();
    let addrs = params.addresses(None).unwrap();
    let g = grants();
    let plan = plan_update(
        Requester {
            name: "alice",
            grants: &g,
        },
        &settings(),
        &params.hostnames,
        &addrs,
        now(),
        &mut mem,
    )
    .unwrap();
    assert_eq!(
        plan.outcomes[0].reason.as_deref(),
        Some("user may not update other.dyn.example.com")
    );
}

#[test]
fn invalid_names_cost_no_lookup() {
    let mut mem = memory();
    let _ = run("hostname=a_b.example.com,x..y&myip=198.51.100.1", &mut mem);
    assert_eq!(mem.lookups, 0);
}

#[test]
fn the_applied_address_counts_when_nothing_is_pending() {
    let mut mem = memory();
    let addr: IpAddr = "198.51.100.7".parse().unwrap();
    mem.hosts.get_mut(&h("v4.dyn.example.com")).unwrap().live.a = Some(addr);
    let (lines, writes) = run("hostname=v4.dyn.example.com&myip=198.51.100.7", &mut mem);
    assert_eq!(lines, vec!["nochg 198.51.100.7"]);
    assert!(writes.is_empty());
    // a pending entry for another address is newer than the applied one
    mem.known.insert(
        (h("v4.dyn.example.com"), RecordType::A),
        "198.51.100.99".parse().unwrap(),
    );
    let (lines, writes) = run("hostname=v4.dyn.example.com&myip=198.51.100.7", &mut mem);
    assert_eq!(lines, vec!["good 198.51.100.7"]);
    assert_eq!(writes.len(), 1);
}

#[test]
fn a_rate_limited_host_answers_abuse_and_still_queues() {
    let mut mem = memory();
    let until = now() + Duration::from_secs(900);
    mem.hosts
        .get_mut(&h("v4.dyn.example.com"))
        .unwrap()
        .live
        .limited_until = Some(until);
    let p = plan(
        "hostname=v4.dyn.example.com,v6.dyn.example.com&myip=198.51.100.7,2001:db8::7",
        &mut mem,
    );
    let lines: Vec<String> = p.outcomes.iter().map(|o| o.answer.to_string()).collect();
    assert_eq!(lines, vec!["abuse", "good 2001:db8::7"]);
    assert_eq!(
        p.writes.len(),
        2,
        "the limited host's newest address is kept"
    );
    assert_eq!(
        p.limited,
        vec![RateLimited {
            host: h("v4.dyn.example.com"),
            until
        }]
    );
    assert!(
        p.outcomes[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("change limit")
    );
    // the same address as the applied one is still nochg while limited
    mem.hosts.get_mut(&h("v4.dyn.example.com")).unwrap().live.a =
        Some("198.51.100.8".parse().unwrap());
    let (lines, _) = run("hostname=v4.dyn.example.com&myip=198.51.100.8", &mut mem);
    assert_eq!(lines, vec!["nochg 198.51.100.8"]);
    // and going back to it while another address is pending is no change of
    // the zone: good (the pending entry is replaced), not abuse
    mem.known.insert(
        (h("v4.dyn.example.com"), RecordType::A),
        "198.51.100.99".parse().unwrap(),
    );
    let (lines, writes) = run("hostname=v4.dyn.example.com&myip=198.51.100.8", &mut mem);
    assert_eq!(lines, vec!["good 198.51.100.8"]);
    assert_eq!(writes.len(), 1);
    mem.known.clear();
    // and once the limit is over, good again
    mem.hosts
        .get_mut(&h("v4.dyn.example.com"))
        .unwrap()
        .live
        .limited_until = Some(now());
    let (lines, _) = run("hostname=v4.dyn.example.com&myip=198.51.100.9", &mut mem);
    assert_eq!(lines, vec!["good 198.51.100.9"]);
}

#[test]
fn nochg_asks_to_record_heard_only_when_stale() {
    let mut mem = memory();
    let host = h("v4.dyn.example.com");
    mem.hosts.get_mut(&host).unwrap().live.a = Some("198.51.100.7".parse().unwrap());
    let p = plan("hostname=v4.dyn.example.com&myip=198.51.100.7", &mut mem);
    assert_eq!(p.heard, vec![host.clone()], "never heard: record it");
    mem.hosts.get_mut(&host).unwrap().live.last_heard = Some(now() - Duration::from_secs(60));
    let p = plan("hostname=v4.dyn.example.com&myip=198.51.100.7", &mut mem);
    assert!(p.heard.is_empty(), "heard a minute ago: nothing to write");
    mem.hosts.get_mut(&host).unwrap().live.last_heard = Some(now() - Duration::from_secs(601));
    let p = plan("hostname=v4.dyn.example.com&myip=198.51.100.7", &mut mem);
    assert_eq!(p.heard, vec![host]);
    // a good answer writes an entry, which says "heard" by itself
    let p = plan("hostname=v4.dyn.example.com&myip=198.51.100.8", &mut mem);
    assert!(p.heard.is_empty());
}

#[test]
fn an_address_in_flux_is_no_ground_for_nochg() {
    let mut mem = memory();
    let host = h("v4.dyn.example.com");
    let live = &mut mem.hosts.get_mut(&host).unwrap().live;
    live.a = Some("198.51.100.7".parse().unwrap());
    live.in_flux = vec![RecordType::A];
    let (lines, writes) = run("hostname=v4.dyn.example.com&myip=198.51.100.7", &mut mem);
    assert_eq!(
        lines,
        vec!["good 198.51.100.7"],
        "queued, the applier decides"
    );
    assert_eq!(writes.len(), 1);
}
