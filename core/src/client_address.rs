//! Working out the address a request came from: the peer address the
//! runtime reports (Spin's `spin-client-addr` header), or, only when the
//! request proves it came through our proxy (Plesk's nginx adds a secret
//! header, see `handler.proxy_secret`), the address the proxy forwarded.
//!
//! Being a loopback peer proves nothing on a shared hosting server: every
//! local user can connect to 127.0.0.1. So no peer address alone makes
//! forwarded headers believable.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// Parses the peer address as Spin reports it: `ip:port`, `[v6]:port` or a
/// bare address. IPv4-mapped IPv6 becomes IPv4.
pub fn parse_peer(value: &str) -> Option<IpAddr> {
    let value = value.trim();
    let ip = value
        .parse::<SocketAddr>()
        .map(|s| s.ip())
        .or_else(|_| value.parse::<IpAddr>())
        .ok()?;
    Some(ip.to_canonical())
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// The client address. `proxy_proven` says the request carries the proxy
/// secret (and, when `trusted` is not empty, came from one of those peers);
/// only then are `forwarded_for` (`X-Forwarded-For`) and `real_ip`
/// (`X-Real-IP`) believed. In `X-Forwarded-For` the rightmost address that is
/// not itself one of the `trusted` proxies is the client (everything left of
/// it could have been sent by the client). An unreadable element stops the
/// walk there.
pub fn client_address(
    peer: Option<IpAddr>,
    proxy_proven: bool,
    forwarded_for: Option<&str>,
    real_ip: Option<&str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    if !proxy_proven {
        return peer;
    }
    if let Some(list) = forwarded_for.filter(|l| !l.trim().is_empty()) {
        let mut candidate = peer;
        for item in list.rsplit(',') {
            match parse_peer(item) {
                Some(ip) => {
                    candidate = Some(ip);
                    if !is_trusted(ip, trusted) {
                        break;
                    }
                }
                None => break,
            }
        }
        return candidate;
    }
    if let Some(ip) = real_ip.and_then(parse_peer) {
        return Some(ip);
    }
    peer
}

/// True when forwarded headers of this request may be believed: it carries
/// the proxy secret, and, when `trusted` is not empty, `peer` is one of them.
pub fn proxy_proven(secret_matches: bool, peer: Option<IpAddr>, trusted: &[IpNet]) -> bool {
    secret_matches && (trusted.is_empty() || peer.is_some_and(|p| is_trusted(p, trusted)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets() -> Vec<IpNet> {
        vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ]
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn peer_formats() {
        assert_eq!(parse_peer("203.0.113.5:4444"), Some(ip("203.0.113.5")));
        assert_eq!(parse_peer("[2001:db8::5]:4444"), Some(ip("2001:db8::5")));
        assert_eq!(
            parse_peer("[::ffff:203.0.113.5]:1"),
            Some(ip("203.0.113.5"))
        );
        assert_eq!(parse_peer("2001:db8::5"), Some(ip("2001:db8::5")));
        assert_eq!(parse_peer(" 203.0.113.5 "), Some(ip("203.0.113.5")));
        assert_eq!(parse_peer("garbage"), None);
        assert_eq!(parse_peer(""), None);
    }

    #[test]
    fn without_the_proxy_secret_the_peer_is_the_client() {
        // A loopback peer is a local user as much as it is nginx.
        let c = client_address(
            Some(ip("127.0.0.1")),
            false,
            Some("198.51.100.1"),
            Some("198.51.100.2"),
            &nets(),
        );
        assert_eq!(c, Some(ip("127.0.0.1")));
        assert_eq!(
            client_address(None, false, Some("198.51.100.1"), None, &[]),
            None
        );
    }

    #[test]
    fn proof_needs_the_secret_and_a_listed_peer() {
        let t = nets();
        assert!(proxy_proven(true, Some(ip("127.0.0.1")), &t));
        assert!(!proxy_proven(true, Some(ip("203.0.113.5")), &t));
        assert!(!proxy_proven(false, Some(ip("127.0.0.1")), &t));
        assert!(proxy_proven(true, None, &[]), "no list: the secret alone");
        assert!(!proxy_proven(true, None, &t));
    }

    #[test]
    fn a_proven_proxy_forwards() {
        let t = nets();
        let p = Some(ip("127.0.0.1"));
        assert_eq!(
            client_address(p, true, Some("198.51.100.1"), None, &t),
            Some(ip("198.51.100.1"))
        );
        // client-supplied junk on the left is ignored; the rightmost untrusted wins
        assert_eq!(
            client_address(p, true, Some("6.6.6.6, 198.51.100.1, 10.1.1.1"), None, &t),
            Some(ip("198.51.100.1"))
        );
        // all trusted: the leftmost
        assert_eq!(
            client_address(p, true, Some("10.0.0.2,10.0.0.3"), None, &t),
            Some(ip("10.0.0.2"))
        );
        // garbage stops the walk at the last good element
        assert_eq!(
            client_address(p, true, Some("198.51.100.1, bogus, 10.0.0.9"), None, &t),
            Some(ip("10.0.0.9"))
        );
        // X-Real-IP when no X-Forwarded-For
        assert_eq!(
            client_address(Some(ip("::1")), true, None, Some("2001:db8::77"), &t),
            Some(ip("2001:db8::77"))
        );
        // nothing forwarded: the proxy itself
        assert_eq!(client_address(p, true, None, None, &t), p);
        assert_eq!(client_address(p, true, Some(" "), Some("nonsense"), &t), p);
        // no peer address from the runtime: the forwarded one still counts
        assert_eq!(
            client_address(None, true, Some("198.51.100.1"), None, &[]),
            Some(ip("198.51.100.1"))
        );
    }
}
