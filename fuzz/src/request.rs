//! An update request the way the handler takes it apart: the query string
//! into [`UpdateParams::parse`], a form body into [`UpdateParams::merge`],
//! the client address from the peer and forwarded headers, the address
//! fields into [`UpdateParams::addresses`] with and without that client
//! address, and the host names through [`plan_update`] against a small
//! fixed set of configured hosts.
//!
//! Input: `query` NUL `body` NUL peer address NUL `X-Forwarded-For` NUL
//! proxy secret header. The body must be UTF-8 (the handler refuses it
//! otherwise); the forwarded address counts only with the right secret
//! ([`PROXY_SECRET`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use dyndns_core::address::check_publishable;
use dyndns_core::answer::Code;
use dyndns_core::answer::{HostAnswer, render_body};
use dyndns_core::authorization::Grant;
use dyndns_core::client_address::{client_address, parse_peer, proxy_proven};
use dyndns_core::request::{MAX_HOSTS_PER_REQUEST, RequestedAddresses, UpdateParams};
use dyndns_core::update::{Requester, UpdateContext, plan_update};
use dyndns_core::view::{AcmeSettings, HandlerSettings, HostLive, HostView, VIEW_FORMAT};
use dyndns_core::{Hostname, RecordType};
use ipnet::IpNet;

/// The proxy secret the fixed settings expect (its SHA-256 is in them).
pub const PROXY_SECRET: &str = "fuzz-proxy-secret-0123456789";
const PROXY_SECRET_SHA256: &str =
    "ba4e93c7f3cda7996e962e455bb0aca95a5c0656bca2b3c0bbb31a67ea58c25c";

/// Parses the request and plans the update; whatever the request, only
/// publishable addresses of the right family reach the queue, for
/// configured hosts inside the allowed zone.
pub fn check(data: &[u8]) {
    let parts = crate::parts(data, 5);
    let Some(query) = crate::text(&parts, 0) else {
        return;
    };
    let Ok(mut params) = UpdateParams::parse(query) else {
        return;
    };
    if let Some(body) = crate::text(&parts, 1)
        && params.merge(body).is_err()
    {
        return;
    }
    for name in &params.hostnames {
        assert!(!name.is_empty() && !name.starts_with(' ') && !name.ends_with(' '));
    }
    let world = World::new();
    let peer = crate::text(&parts, 2).and_then(parse_peer);
    let trusted = &world.settings.trusted_proxies;
    let secret_ok = parts
        .get(4)
        .is_some_and(|s| world.settings.proxy_secret_matches(s));
    assert_eq!(secret_ok, parts.get(4) == Some(&PROXY_SECRET.as_bytes()));
    let proven = proxy_proven(secret_ok, peer, trusted);
    let client = client_address(peer, proven, crate::text(&parts, 3), None, trusted);
    if !proven {
        assert_eq!(client, peer, "unproven forwarded headers were believed");
    }
    let without_client = params.addresses(None);
    if let Ok(addresses) = &without_client {
        assert_sound(addresses);
        assert!(!addresses.from_client);
        if addresses.v4.is_some() || addresses.v6.is_some() {
            assert!(params.has_explicit_address());
        }
    }
    let Ok(addresses) = params.addresses(client) else {
        return;
    };
    assert_sound(&addresses);
    if let Some(client) = client
        && !params.use_source
        && without_client.is_ok_and(|a| a.v4.is_none() && a.v6.is_none())
    {
        assert!(addresses.from_client, "{client} should have been used");
    }
    if params.hostnames.len() > MAX_HOSTS_PER_REQUEST {
        return;
    }
    world.plan(&params.hostnames, &addresses);
}

/// Addresses the request parser accepted must be publishable, and a LAN
/// prefix must leave room for an interface identifier.
fn assert_sound(addresses: &RequestedAddresses) {
    if let Some(v4) = addresses.v4 {
        assert_eq!(check_publishable(IpAddr::V4(v4)), Ok(()));
    }
    if let Some(v6) = addresses.v6 {
        assert_eq!(check_publishable(IpAddr::V6(v6)), Ok(()));
        assert_eq!(IpAddr::V6(v6), IpAddr::V6(v6).to_canonical());
    }
    if let Some(prefix) = addresses.lan_prefix {
        assert!(prefix.prefix_len() <= 64);
        assert_eq!(prefix, prefix.trunc());
    }
}

/// The configured side: one zone, a few hosts, one user.
struct World {
    settings: HandlerSettings,
    hosts: HashMap<Hostname, HostView>,
    grants: Vec<Grant>,
}

impl World {
    fn new() -> World {
        let name = |s: &str| Hostname::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let zone = name("dyn.example.com");
        let mut hosts = HashMap::new();
        let now = World::now();
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        let live = |a: Option<IpAddr>, aaaa: Option<IpAddr>, limited: bool, heard: bool| HostLive {
            a,
            aaaa,
            limited_until: limited.then(|| now + Duration::from_secs(3600)),
            last_heard: heard.then_some(now),
            in_flux: Vec::new(),
            challenges: Vec::new(),
        };
        let both = &[RecordType::A, RecordType::AAAA][..];
        for (host, types, iid, live) in [
            (
                "home.dyn.example.com",
                both,
                None,
                live(ip("198.51.100.7"), None, false, false),
            ),
            (
                "v4.dyn.example.com",
                &[RecordType::A][..],
                None,
                live(ip("198.51.100.7"), None, true, true),
            ),
            (
                "nas.dyn.example.com",
                &[RecordType::AAAA][..],
                Some("::1:2:3:4"),
                live(None, ip("2001:db8::1:2:3:4"), false, true),
            ),
            (
                "a.b.dyn.example.com",
                both,
                None,
                live(None, None, false, false),
            ),
            (
                "other.dyn.example.com",
                &[RecordType::A][..],
                None,
                HostLive::default(),
            ),
        ] {
            hosts.insert(
                name(host),
                HostView {
                    name: name(host),
                    zone: zone.clone(),
                    types: types.to_vec(),
                    ipv6_interface_id: iid.and_then(|i| i.parse().ok()),
                    live,
                },
            );
        }
        let trusted_proxies: Vec<IpNet> = ["127.0.0.0/8", "::1/128"]
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        World {
            settings: HandlerSettings {
                format: VIEW_FORMAT,
                zones: vec![zone],
                proxy_secret_sha256: Some(PROXY_SECRET_SHA256.into()),
                trusted_proxies,
                user_named_hosts: true,
                realm: "dyndns".into(),
                heartbeat_max_age: Duration::from_secs(300),
                heard_resolution: Duration::from_secs(600),
                acme: AcmeSettings::default(),
                silent_after: Duration::from_secs(2 * 86400),
            },
            hosts,
            grants: [
                "home.dyn.example.com",
                "*.b.dyn.example.com",
                "nas.dyn.example.com",
            ]
            .iter()
            .filter_map(|g| Grant::parse(g).ok())
            .collect(),
        }
    }

    /// The fixed "now" of every plan (2023-11-14).
    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn plan(&self, hostnames: &[String], addresses: &RequestedAddresses) {
        let mut ctx = Lookups {
            hosts: &self.hosts,
            pending: HashMap::from([(
                (
                    Hostname::parse("a.b.dyn.example.com").unwrap_or_else(|_| unreachable!()),
                    RecordType::A,
                ),
                IpAddr::from([203, 0, 113, 77]),
            )]),
        };
        let requester = Requester {
            name: "v4@dyn.example.com",
            grants: &self.grants,
        };
        let Ok(plan) = plan_update(
            requester,
            &self.settings,
            hostnames,
            addresses,
            World::now(),
            &mut ctx,
        );
        assert_eq!(plan.outcomes.len(), hostnames.len(), "one answer per host");
        for (outcome, requested) in plan.outcomes.iter().zip(hostnames) {
            assert_eq!(&outcome.requested, requested);
            if let HostAnswer::Good(addrs) | HostAnswer::NoChg(addrs) = &outcome.answer {
                assert!(!addrs.is_empty());
                for a in addrs {
                    assert_eq!(check_publishable(*a), Ok(()), "answered {a}");
                }
            }
            let name = Hostname::parse(requested).ok();
            let written = plan.writes.iter().any(|w| Some(&w.host) == name.as_ref());
            match &outcome.answer {
                HostAnswer::Good(_) => assert!(written, "good without a write: {requested}"),
                HostAnswer::NoChg(_) => assert!(!written, "nochg with a write: {requested}"),
                HostAnswer::Code(Code::Abuse) => assert!(
                    plan.limited.iter().any(|l| Some(&l.host) == name.as_ref()),
                    "abuse without a limit: {requested}"
                ),
                HostAnswer::Code(_) => {}
            }
        }
        for host in &plan.heard {
            let live = self.hosts.get(host).map(|h| &h.live);
            assert!(
                live.is_some_and(|l| l.heard_is_stale(World::now(), Duration::from_secs(600))),
                "{host} heard although not stale"
            );
        }
        for limited in &plan.limited {
            let live = self.hosts.get(&limited.host).map(|h| &h.live);
            assert!(
                live.is_some_and(|l| l.is_limited(World::now())),
                "{limited:?}"
            );
        }
        for write in &plan.writes {
            let host = self.hosts.get(&write.host);
            assert!(host.is_some(), "{} is not configured", write.host);
            let host = host.map(|h| h.types.contains(&write.record_type));
            assert_eq!(host, Some(true), "{}/{}", write.host, write.record_type);
            assert!(write.host.is_in_zone(&self.settings.zones[0]));
            assert!(!write.host.is_acme_challenge(), "{write:?}");
            assert_eq!(RecordType::of(&write.address), write.record_type);
            assert_eq!(check_publishable(write.address), Ok(()), "{write:?}");
            assert!(
                write.host.as_str() != "other.dyn.example.com",
                "a host the user has no grant for was written"
            );
        }
        let body = render_body(plan.outcomes.iter().map(|o| &o.answer));
        assert_eq!(body.lines().count(), hostnames.len(), "{body:?}");
    }
}

/// The planner's lookups, from memory.
struct Lookups<'a> {
    hosts: &'a HashMap<Hostname, HostView>,
    pending: HashMap<(Hostname, RecordType), IpAddr>,
}

impl UpdateContext for Lookups<'_> {
    type Error = Infallible;

    fn host(&mut self, name: &Hostname) -> Result<Option<HostView>, Infallible> {
        Ok(self.hosts.get(name).cloned())
    }

    fn pending_address(
        &mut self,
        host: &Hostname,
        record_type: RecordType,
    ) -> Result<Option<IpAddr>, Infallible> {
        Ok(self.pending.get(&(host.clone(), record_type)).copied())
    }
}
