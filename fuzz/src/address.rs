//! Address values as clients send them (`myip`, `ipv4`, `myipv6`,
//! `ip6lanprefix` after decoding) and the client-address headers: into
//! [`parse_ip`], [`parse_publishable`], [`parse_lan_prefix`],
//! [`parse_peer`] and [`client_address`].
//!
//! Input: `value` NUL `X-Forwarded-For` NUL `X-Real-IP`. The value also
//! serves as the peer address (when it is not one, the peer is a trusted
//! proxy); the request counts as coming through the proxy (right secret)
//! when it has forwarded headers at all.

use std::net::{IpAddr, Ipv6Addr};

use dyndns_core::address::{
    check_publishable, combine_prefix, is_valid_interface_id, parse_ip, parse_lan_prefix,
    parse_publishable,
};
use dyndns_core::client_address::{client_address, parse_peer, proxy_proven};
use ipnet::IpNet;

/// The proxies the client-address check trusts.
const TRUSTED: [&str; 3] = ["127.0.0.0/8", "::1/128", "10.0.0.0/8"];

/// Parses the value every way and checks the results agree with each other.
pub fn check(data: &[u8]) {
    let parts = crate::parts(data, 3);
    let Some(value) = crate::text(&parts, 0) else {
        return;
    };
    let ip = parse_ip(value);
    if let Ok(ip) = ip {
        assert_canonical(ip);
        assert_eq!(parse_ip(&ip.to_string()), Ok(ip), "display form re-parses");
    }
    match (&ip, parse_publishable(value)) {
        (Ok(ip), Ok(p)) => {
            assert_eq!(ip, &p);
            assert_eq!(check_publishable(p), Ok(()));
        }
        (Ok(ip), Err(e)) => assert_eq!(check_publishable(*ip), Err(e)),
        (Err(e), Err(again)) => assert_eq!(e, &again),
        (Err(e), Ok(p)) => panic!("{value:?} is publishable ({p}) but not an address ({e})"),
    }
    if let Ok(prefix) = parse_lan_prefix(value) {
        assert!(prefix.prefix_len() <= 64, "{prefix}");
        assert_eq!(prefix, prefix.trunc(), "host bits are cleared");
        let iid: Ipv6Addr = "::1:2:3:4".parse().unwrap_or(Ipv6Addr::LOCALHOST);
        assert!(is_valid_interface_id(iid));
        let combined = combine_prefix(prefix, iid);
        assert!(prefix.contains(&combined), "{prefix} + {iid} = {combined}");
    }
    let peer = parse_peer(value);
    if let Some(peer) = peer {
        assert_canonical(peer);
    }
    let trusted: Vec<IpNet> = TRUSTED.iter().filter_map(|n| n.parse().ok()).collect();
    assert_eq!(trusted.len(), TRUSTED.len());
    let peer = peer.unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let forwarded = crate::text(&parts, 1);
    let real_ip = crate::text(&parts, 2);
    let proven = proxy_proven(parts.len() > 1, Some(peer), &trusted);
    assert_eq!(
        proven,
        parts.len() > 1 && trusted.iter().any(|n| n.contains(&peer))
    );
    let Some(client) = client_address(Some(peer), proven, forwarded, real_ip, &trusted) else {
        panic!("a known peer always gives a client address");
    };
    assert_canonical(client);
    if client != peer {
        assert!(proven, "forwarded headers believed without proof");
        assert!(
            came_from(client, forwarded, real_ip),
            "{client} came from nowhere"
        );
    }
    assert_eq!(
        client_address(None, false, forwarded, real_ip, &trusted),
        None
    );
    if let Some(client) = client_address(None, true, forwarded, real_ip, &trusted) {
        assert!(
            came_from(client, forwarded, real_ip),
            "{client} came from nowhere"
        );
    }
}

/// True when `client` is one of the forwarded addresses.
fn came_from(client: IpAddr, forwarded: Option<&str>, real_ip: Option<&str>) -> bool {
    forwarded.is_some_and(|list| list.split(',').any(|item| parse_peer(item) == Some(client)))
        || real_ip.and_then(parse_peer) == Some(client)
}

fn assert_canonical(ip: IpAddr) {
    assert_eq!(ip, ip.to_canonical(), "IPv4-mapped IPv6 must become IPv4");
}
