//! Parsing and checking of the addresses clients send, and the IPv6
//! "LAN prefix + interface identifier" combination used behind routers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::Ipv6Net;
use thiserror::Error;

/// Why a value is not an address we will put into DNS.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddressError {
    /// Not an IPv4 or IPv6 address at all.
    #[error("{0:?} is not an IP address")]
    Invalid(String),
    /// IPv4 with a leading zero in an octet (`010.1.1.1`): octal or decimal?
    #[error("{0:?} has an octet with a leading zero, which is ambiguous")]
    LeadingZero(String),
    /// IPv6 with a zone id (`fe80::1%eth0`): meaningless in DNS.
    #[error("{0:?} carries a zone id, which has no meaning in DNS")]
    ZoneId(String),
    /// An address that must never be published (loopback, multicast, ...).
    #[error("{addr} is a {kind} address and cannot be published in DNS")]
    NotPublishable {
        /// The address.
        addr: IpAddr,
        /// What kind of address it is.
        kind: &'static str,
    },
    /// An IPv6 address that embeds an IPv4 address (NAT64, 6to4, Teredo,
    /// the IPv4-mapped and -compatible forms) which must not be published.
    #[error(
        "{addr} is {form} embedding {embedded}, a {kind} address, and cannot be published in DNS"
    )]
    EmbeddedIpv4 {
        /// The address.
        addr: Ipv6Addr,
        /// Which embedding it is.
        form: &'static str,
        /// The IPv4 address inside.
        embedded: Ipv4Addr,
        /// What kind of address that is.
        kind: &'static str,
    },
    /// An IPv6 value where IPv4 is required or the other way round.
    #[error("{value:?} is not an {expected} address")]
    WrongFamily {
        /// The value given.
        value: String,
        /// `IPv4` or `IPv6`.
        expected: &'static str,
    },
    /// More than one IPv4 (or IPv6) address in one list.
    #[error("more than one {0} address given")]
    Duplicate(&'static str),
    /// Not an IPv6 prefix.
    #[error("{0:?} is not an IPv6 prefix such as 2001:db8:1:2::/64")]
    InvalidPrefix(String),
    /// The prefix is longer than /64, leaving no room for an interface identifier.
    #[error("prefix {0} is longer than /64; an interface identifier needs the lower 64 bits")]
    PrefixTooLong(String),
}

/// Parses one address as a client sends it. Accepts `[v6]` brackets; maps
/// IPv4-mapped IPv6 (`::ffff:192.0.2.1`) to IPv4; rejects zone ids and
/// IPv4 octets with leading zeros. Does not judge whether it is publishable.
pub fn parse_ip(value: &str) -> Result<IpAddr, AddressError> {
    let inner = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    if inner.contains('%') {
        return Err(AddressError::ZoneId(value.to_string()));
    }
    match inner.parse::<IpAddr>() {
        Ok(ip) => Ok(ip.to_canonical()),
        Err(_) => {
            let looks_v4 = !inner.is_empty()
                && inner.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && inner.split('.').count() == 4;
            if looks_v4
                && inner
                    .split('.')
                    .any(|octet| octet.len() > 1 && octet.starts_with('0'))
            {
                Err(AddressError::LeadingZero(value.to_string()))
            } else {
                Err(AddressError::Invalid(value.to_string()))
            }
        }
    }
}

/// Parses an address and checks that it may be published (see [`check_publishable`]).
pub fn parse_publishable(value: &str) -> Result<IpAddr, AddressError> {
    let ip = parse_ip(value)?;
    check_publishable(ip)?;
    Ok(ip)
}

/// Rejects addresses that make no sense in a public or private DNS record:
/// unspecified, loopback, multicast, broadcast, link-local, and IPv4's
/// "this network" 0.0.0.0/8. Private and documentation ranges are allowed
/// (people do run DynDNS for LAN addresses and tests use 192.0.2.0/24).
///
/// IPv6 forms that carry an IPv4 address are judged by what they carry, so
/// a compromised web side cannot smuggle `127.0.0.1` into an AAAA record:
/// - `::/8` (apart from the NAT64 prefixes below) is never published: it
///   holds no unicast addresses, only the IPv4-compatible (`::127.0.0.1`),
///   IPv4-mapped (`::ffff:127.0.0.1`) and IPv4-translated
///   (`::ffff:0:127.0.0.1`) forms, which are not addresses on the wire (an
///   IPv4 address belongs in an A record);
/// - NAT64's well-known prefix `64:ff9b::/96` only with a global IPv4
///   address inside (RFC 6052 forbids the others);
/// - the local-use NAT64 prefix `64:ff9b:1::/48` (RFC 8215) never: where
///   its IPv4 address sits depends on the operator's prefix length, so it
///   cannot be checked;
/// - 6to4 (`2002::/16`) and Teredo (`2001::/32`, server and client) only
///   when the IPv4 addresses inside would be published on their own.
pub fn check_publishable(ip: IpAddr) -> Result<(), AddressError> {
    let kind = match ip {
        IpAddr::V4(v4) => ipv4_kind(v4),
        IpAddr::V6(v6) => {
            check_embedded_ipv4(v6)?;
            ipv6_kind(v6)
        }
    };
    match kind {
        Some(kind) => Err(AddressError::NotPublishable { addr: ip, kind }),
        None => Ok(()),
    }
}

fn ipv4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.octets()[0] == 0 {
        Some("\"this network\" (0.0.0.0/8)")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_link_local() {
        Some("link-local")
    } else {
        None
    }
}

fn ipv6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.segments()[..3] == [0x64, 0xff9b, 1] {
        Some("local-use NAT64 (64:ff9b:1::/48), whose embedded IPv4 address cannot be located,")
    } else if ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64's well-known prefix: judged by the IPv4 address inside.
        None
    } else if ip.segments()[0] >> 8 == 0 {
        Some("reserved ::/8 (IPv4-compatible, -mapped or -translated)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_unicast_link_local() {
        Some("link-local")
    } else {
        None
    }
}

/// What kind of special-purpose address an IPv4 address is, `None` for a
/// global one: the unpublishable kinds above, and the other ranges of
/// RFC 6890 (private, shared, documentation, benchmarking, protocol
/// assignments, 6to4 relay, reserved).
fn non_global_ipv4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    if let Some(kind) = ipv4_kind(ip) {
        return Some(kind);
    }
    let [a, b, c, _] = ip.octets();
    if ip.is_private() {
        Some("private")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (100.64.0.0/10)")
    } else if ip.is_documentation() {
        Some("documentation")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("benchmarking (198.18.0.0/15)")
    } else if a == 192 && b == 0 && c == 0 {
        Some("IETF protocol assignment (192.0.0.0/24)")
    } else if a == 192 && b == 88 && c == 99 {
        Some("6to4 relay anycast (192.88.99.0/24)")
    } else if a >= 240 {
        Some("reserved (240.0.0.0/4)")
    } else {
        None
    }
}

/// Rejects an IPv6 address whose embedded IPv4 address is refused (see
/// [`check_publishable`]).
fn check_embedded_ipv4(ip: Ipv6Addr) -> Result<(), AddressError> {
    let bits = u128::from(ip);
    let s = ip.segments();
    let low32 = Ipv4Addr::from(bits as u32);
    let refuse = |form, embedded, kind| {
        Err(AddressError::EmbeddedIpv4 {
            addr: ip,
            form,
            embedded,
            kind,
        })
    };
    if s[..5] == [0; 5]
        && (s[5] == 0 || s[5] == 0xffff)
        && !ip.is_unspecified()
        && !ip.is_loopback()
    {
        let form = if s[5] == 0 {
            "IPv4-compatible (::/96)"
        } else {
            "IPv4-mapped (::ffff:0:0/96)"
        };
        if let Some(kind) = ipv4_kind(low32) {
            return refuse(form, low32, kind);
        }
    } else if s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0 {
        if let Some(kind) = ipv4_kind(low32) {
            return refuse("IPv4-translated (::ffff:0:0:0/96)", low32, kind);
        }
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // RFC 6052: the well-known prefix only carries global addresses.
        if let Some(kind) = non_global_ipv4_kind(low32) {
            return refuse("NAT64 (64:ff9b::/96)", low32, kind);
        }
    } else if s[0] == 0x2002 {
        let embedded = Ipv4Addr::from((bits >> 80) as u32);
        if let Some(kind) = ipv4_kind(embedded) {
            return refuse("6to4 (2002::/16)", embedded, kind);
        }
    } else if s[..2] == [0x2001, 0] {
        let server = Ipv4Addr::from((bits >> 64) as u32);
        let client = Ipv4Addr::from(!(bits as u32));
        for embedded in [client, server] {
            if let Some(kind) = ipv4_kind(embedded) {
                return refuse("Teredo (2001::/32)", embedded, kind);
            }
        }
    }
    Ok(())
}

/// Parses an IPv6 LAN prefix as routers send it (`2001:db8:1:2::/64`). Host
/// bits are cleared; a bare address is taken as a /64. The prefix must be at
/// most /64 long.
pub fn parse_lan_prefix(value: &str) -> Result<Ipv6Net, AddressError> {
    let net = if value.contains('/') {
        value
            .parse::<Ipv6Net>()
            .map_err(|_| AddressError::InvalidPrefix(value.to_string()))?
    } else {
        let addr = value
            .parse::<Ipv6Addr>()
            .map_err(|_| AddressError::InvalidPrefix(value.to_string()))?;
        Ipv6Net::new(addr, 64).map_err(|_| AddressError::InvalidPrefix(value.to_string()))?
    };
    if net.prefix_len() > 64 {
        return Err(AddressError::PrefixTooLong(value.to_string()));
    }
    Ok(net.trunc())
}

/// Checks that an interface identifier (as configured for a host) only uses
/// the lower 64 bits and is not zero.
pub fn is_valid_interface_id(iid: Ipv6Addr) -> bool {
    let bits = u128::from(iid);
    bits != 0 && bits >> 64 == 0
}

/// Combines a LAN prefix with a host's interface identifier: the prefix's
/// network bits, the identifier's host bits.
pub fn combine_prefix(prefix: Ipv6Net, interface_id: Ipv6Addr) -> Ipv6Addr {
    let mask = u128::from(prefix.netmask());
    let bits = (u128::from(prefix.network()) & mask) | (u128::from(interface_id) & !mask);
    Ipv6Addr::from(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_addresses() {
        assert_eq!(
            parse_ip("198.51.100.7").unwrap(),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            parse_ip("2001:DB8::7").unwrap(),
            "2001:db8::7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            parse_ip("[2001:db8::7]").unwrap(),
            "2001:db8::7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn ipv4_mapped_becomes_ipv4() {
        assert_eq!(
            parse_ip("::ffff:198.51.100.7").unwrap(),
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7))
        );
        assert_eq!(
            parse_ip("::ffff:c633:6407").unwrap(),
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7))
        );
    }

    #[test]
    fn rejects_zone_ids_and_leading_zeros() {
        assert_eq!(
            parse_ip("fe80::1%eth0"),
            Err(AddressError::ZoneId("fe80::1%eth0".into()))
        );
        assert_eq!(
            parse_ip("2001:db8::1%25"),
            Err(AddressError::ZoneId("2001:db8::1%25".into()))
        );
        assert_eq!(
            parse_ip("010.1.1.1"),
            Err(AddressError::LeadingZero("010.1.1.1".into()))
        );
        assert_eq!(
            parse_ip("198.051.100.7"),
            Err(AddressError::LeadingZero("198.051.100.7".into()))
        );
        assert!(parse_ip("0.0.0.0").is_ok());
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "1.2.3.4 ",
            " 1.2.3.4",
            "abc",
            "1.2.3.4/24",
            "::g",
            "12345::",
            "0x7f.0.0.1",
            "1.2.3.4\n",
        ] {
            assert!(
                matches!(parse_ip(bad), Err(AddressError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn publishability() {
        for bad in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "169.254.1.1",
            "::",
            "::1",
            "ff02::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(
                matches!(
                    parse_publishable(bad),
                    Err(AddressError::NotPublishable { .. })
                ),
                "{bad:?}"
            );
        }
        for good in [
            "198.51.100.7",
            "10.0.0.1",
            "192.168.178.20",
            "2001:db8::7",
            "fd00::1",
            "::ffff:198.51.100.7",
        ] {
            assert!(parse_publishable(good).is_ok(), "{good:?}");
        }
    }

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse().unwrap())
    }

    #[test]
    fn ipv6_forms_embedding_ipv4_are_judged_by_what_they_carry() {
        // Raw addresses, as a compromised web side could queue them (no
        // parsing, no canonical form first).
        for (bad, embedded) in [
            ("::ffff:127.0.0.1", Some("127.0.0.1")),
            ("::ffff:0.0.0.0", Some("0.0.0.0")),
            ("::ffff:169.254.1.1", Some("169.254.1.1")),
            ("::127.0.0.1", Some("127.0.0.1")),
            ("::7f00:1", Some("127.0.0.1")),
            ("::224.0.0.1", Some("224.0.0.1")),
            ("::ffff:0:127.0.0.1", Some("127.0.0.1")),
            ("64:ff9b::7f00:1", Some("127.0.0.1")),
            ("64:ff9b::10.0.0.1", Some("10.0.0.1")),
            ("64:ff9b::192.168.1.1", Some("192.168.1.1")),
            ("64:ff9b::100.64.0.1", Some("100.64.0.1")),
            ("64:ff9b::192.0.2.1", Some("192.0.2.1")),
            ("64:ff9b::172.16.0.1", Some("172.16.0.1")),
            ("64:ff9b::198.18.0.1", Some("198.18.0.1")),
            ("64:ff9b::192.0.0.8", Some("192.0.0.8")),
            ("64:ff9b::192.88.99.1", Some("192.88.99.1")),
            ("64:ff9b::240.0.0.1", Some("240.0.0.1")),
            ("64:ff9b::255.255.255.255", Some("255.255.255.255")),
            ("2002:7f00:1::1", Some("127.0.0.1")),
            ("2002:a9fe:101::1", Some("169.254.1.1")),
            ("2002:e000:1::1", Some("224.0.0.1")),
            // Teredo: server 65.54.227.120, client 127.0.0.1 (stored inverted)
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", Some("127.0.0.1")),
            // Teredo: server 127.0.0.1
            ("2001:0:7f00:1:8000:63bf:3fff:fdd2", Some("127.0.0.1")),
            // the rest of ::/8 and the local-use NAT64 prefix: never
            ("::ffff:198.51.100.7", None),
            ("::198.51.100.7", None),
            ("::ffff:0:198.51.100.7", None),
            ("::1:2:3:4", None),
            ("ff::1", None),
            ("64:ff9b:1::7f00:1", None),
            ("64:ff9b:1:7f00:1::", None),
            ("64:ff9b:1::8.8.8.8", None),
        ] {
            let err = check_publishable(v6(bad)).expect_err(bad);
            match embedded {
                Some(inner) => assert!(
                    matches!(&err, AddressError::EmbeddedIpv4 { embedded, .. } if embedded.to_string() == inner),
                    "{bad}: {err}"
                ),
                None => assert!(
                    matches!(err, AddressError::NotPublishable { .. }),
                    "{bad}: {err}"
                ),
            }
        }
        for good in [
            "64:ff9b::8.8.8.8",
            "64:ff9b::c633:6501",
            "64:ff9b::172.32.0.1",
            "64:ff9b::100.128.0.1",
            "2002:c000:221::1",
            "2002:c0a8:101::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::7f00:1",
            "2001:470::7f00:1",
        ] {
            assert_eq!(check_publishable(v6(good)), Ok(()), "{good}");
        }
        let msg = check_publishable(v6("64:ff9b::10.1.2.3"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("10.1.2.3, a private address"), "{msg}");
        let msg = check_publishable(v6("::ffff:127.0.0.1"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "::ffff:127.0.0.1 is IPv4-mapped (::ffff:0:0/96) embedding 127.0.0.1, a loopback address, and cannot be published in DNS"
        );
    }

    #[test]
    fn clients_sending_embedding_forms_are_refused_too() {
        for bad in [
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "[::7f00:1]",
            "2002:7f00:1::",
        ] {
            assert!(parse_publishable(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_publishable("::ffff:198.51.100.7"),
            Ok(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7))),
            "a mapped address from a client is its IPv4 address"
        );
    }

    #[test]
    fn lan_prefixes() {
        let p = parse_lan_prefix("2001:db8:1:2::/64").unwrap();
        assert_eq!(p.to_string(), "2001:db8:1:2::/64");
        let p = parse_lan_prefix("2001:db8:1:2::99/64").unwrap();
        assert_eq!(p.to_string(), "2001:db8:1:2::/64", "host bits are cleared");
        let p = parse_lan_prefix("2001:db8:1:2::").unwrap();
        assert_eq!(p.prefix_len(), 64);
        let p = parse_lan_prefix("2001:db8:1:ff00::/56").unwrap();
        assert_eq!(p.to_string(), "2001:db8:1:ff00::/56");
        assert!(matches!(
            parse_lan_prefix("2001:db8::/80"),
            Err(AddressError::PrefixTooLong(_))
        ));
        assert!(matches!(
            parse_lan_prefix("198.51.100.0/24"),
            Err(AddressError::InvalidPrefix(_))
        ));
        assert!(matches!(
            parse_lan_prefix("2001:db8::/129"),
            Err(AddressError::InvalidPrefix(_))
        ));
        assert!(matches!(
            parse_lan_prefix("garbage"),
            Err(AddressError::InvalidPrefix(_))
        ));
    }

    #[test]
    fn prefix_plus_interface_id() {
        let iid: Ipv6Addr = "::1:2:3:4".parse().unwrap();
        assert!(is_valid_interface_id(iid));
        assert!(!is_valid_interface_id("::".parse().unwrap()));
        assert!(!is_valid_interface_id("2001::1".parse().unwrap()));
        let p64 = parse_lan_prefix("2001:db8:1:2::/64").unwrap();
        assert_eq!(combine_prefix(p64, iid).to_string(), "2001:db8:1:2:1:2:3:4");
        // a /56 keeps the identifier's subnet bits below the prefix
        let p56 = parse_lan_prefix("2001:db8:1:ff00::/56").unwrap();
        let iid_with_subnet: Ipv6Addr = "::1:2:3:4".parse().unwrap();
        assert_eq!(
            combine_prefix(p56, iid_with_subnet).to_string(),
            "2001:db8:1:ff00:1:2:3:4"
        );
    }
}
