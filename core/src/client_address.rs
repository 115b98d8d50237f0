//! Working out the address a request came from: the peer address the
//! runtime reports (Spin's `spin-client-addr` header), or, only when that
//! peer is a trusted proxy, the address the proxy forwarded.

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

/// The client address. `forwarded_for` is the `X-Forwarded-For` header,
/// `real_ip` the `X-Real-IP` header; both are only believed when `peer` is a
/// trusted proxy. In `X-Forwarded-For` the rightmost address that is not
/// itself a trusted proxy is the client (everything left of it could have
/// been sent by the client). An unreadable element stops the walk there.
pub fn client_address(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    real_ip: Option<&str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer?;
    if !is_trusted(peer, trusted) {
        return Some(peer);
    }
    if let Some(list) = forwarded_for.filter(|l| !l.trim().is_empty()) {
        let mut candidate = peer;
        for item in list.rsplit(',') {
            match parse_peer(item) {
                Some(ip) => {
                    candidate = ip;
                    if !is_trusted(ip, trusted) {
                        break;
                    }
                }
                None => break,
            }
        }
        return Some(candidate);
    }
    if let Some(ip) = real_ip.and_then(parse_peer) {
        return Some(ip);
    }
    Some(peer)
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
    fn untrusted_peer_is_the_client() {
        let c = client_address(
            Some(ip("203.0.113.5")),
            Some("198.51.100.1"),
            Some("198.51.100.2"),
            &nets(),
        );
        assert_eq!(c, Some(ip("203.0.113.5")));
    }

    #[test]
    fn trusted_proxy_forwards() {
        let t = nets();
        assert_eq!(
            client_address(Some(ip("127.0.0.1")), Some("198.51.100.1"), None, &t),
            Some(ip("198.51.100.1"))
        );
        // client-supplied junk on the left is ignored; the rightmost untrusted wins
        assert_eq!(
            client_address(
                Some(ip("127.0.0.1")),
                Some("6.6.6.6, 198.51.100.1, 10.1.1.1"),
                None,
                &t
            ),
            Some(ip("198.51.100.1"))
        );
        // all trusted: the leftmost
        assert_eq!(
            client_address(Some(ip("127.0.0.1")), Some("10.0.0.2,10.0.0.3"), None, &t),
            Some(ip("10.0.0.2"))
        );
        // garbage stops the walk at the last good element
        assert_eq!(
            client_address(
                Some(ip("127.0.0.1")),
                Some("198.51.100.1, bogus, 10.0.0.9"),
                None,
                &t
            ),
            Some(ip("10.0.0.9"))
        );
        // X-Real-IP when no X-Forwarded-For
        assert_eq!(
            client_address(Some(ip("::1")), None, Some("2001:db8::77"), &t),
            Some(ip("2001:db8::77"))
        );
        // nothing forwarded: the proxy itself
        assert_eq!(
            client_address(Some(ip("127.0.0.1")), None, None, &t),
            Some(ip("127.0.0.1"))
        );
        assert_eq!(
            client_address(Some(ip("127.0.0.1")), Some(" "), Some("nonsense"), &t),
            Some(ip("127.0.0.1"))
        );
    }

    #[test]
    fn no_peer_no_client() {
        assert_eq!(
            client_address(None, Some("198.51.100.1"), None, &nets()),
            None
        );
    }
}
