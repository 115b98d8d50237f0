//! Parsing of a dyndns2 update request (query string or form body) into
//! [`UpdateParams`], and turning its address fields into [`RequestedAddresses`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::Ipv6Net;
use percent_encoding::percent_decode;
use thiserror::Error;

use crate::address::{AddressError, parse_lan_prefix, parse_publishable};

/// Most hosts one request may name (the classic dyndns2 limit).
pub const MAX_HOSTS_PER_REQUEST: usize = 20;
/// Most `key=value` pairs we look at in one query or body.
pub const MAX_PARAMETERS: usize = 64;

/// Why a query string could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// A value decodes to bytes that are not UTF-8.
    #[error("parameter {0:?} is not valid UTF-8 after percent-decoding")]
    InvalidUtf8(String),
    /// More `&`-separated pairs than we are willing to look at.
    #[error("more than {MAX_PARAMETERS} parameters")]
    TooManyParameters,
}

/// The fields of an update request that matter to us. Legacy fields
/// (`wildcard`, `mx`, `backmx`, `offline`, `system`) and unknown ones are
/// accepted and ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateParams {
    /// The host names, in request order, empty items dropped, not yet validated.
    pub hostnames: Vec<String>,
    /// `myip`: one IPv4 and/or one IPv6, comma separated.
    pub myip: Option<String>,
    /// `myipv6` (Dynu/INWX style).
    pub myipv6: Option<String>,
    /// `ipv4` (original Plesk script).
    pub ipv4: Option<String>,
    /// `ipv6` (original Plesk script).
    pub ipv6: Option<String>,
    /// `ip6lanprefix`: the router's LAN prefix (FRITZ!Box `<ip6lanprefix>`).
    pub ip6lanprefix: Option<String>,
    /// `use_source=true`: take the address the request came from.
    pub use_source: bool,
    /// `txt`: an ACME challenge value for an `_acme-challenge` host name
    /// (empty: remove the name's values). Not yet validated.
    pub txt: Option<String>,
}

impl UpdateParams {
    /// Parses a query string (without the leading `?`). The first occurrence
    /// of each parameter wins; `hostname` is preferred over the legacy `host`.
    pub fn parse(query: &str) -> Result<Self, RequestError> {
        let mut params = UpdateParams::default();
        params.merge(query)?;
        Ok(params)
    }

    /// Adds the parameters of another query-shaped string (a form body) for
    /// fields not set yet.
    pub fn merge(&mut self, query: &str) -> Result<(), RequestError> {
        let mut hostname: Option<String> = None;
        let mut host: Option<String> = None;
        for (count, pair) in query.split('&').filter(|p| !p.is_empty()).enumerate() {
            if count >= MAX_PARAMETERS {
                return Err(RequestError::TooManyParameters);
            }
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(raw_key)?;
            let slot = match key.as_str() {
                "hostname" => &mut hostname,
                "host" => &mut host,
                "myip" => &mut self.myip,
                "myipv6" => &mut self.myipv6,
                "ipv4" => &mut self.ipv4,
                "ipv6" => &mut self.ipv6,
                "ip6lanprefix" => &mut self.ip6lanprefix,
                "txt" => &mut self.txt,
                "use_source" => {
                    let value = decode(raw_value)?;
                    self.use_source |= matches!(
                        value.to_ascii_lowercase().as_str(),
                        "true" | "1" | "yes" | "on"
                    );
                    continue;
                }
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(decode(raw_value)?);
            }
        }
        if self.hostnames.is_empty()
            && let Some(list) = hostname.or(host)
        {
            self.hostnames = split_list(&list).map(str::to_string).collect();
        }
        Ok(())
    }

    /// True when the request names an address in any way (including an
    /// empty `myip=` or `use_source`): a TXT request must not.
    pub fn mentions_address(&self) -> bool {
        self.use_source
            || [
                &self.myip,
                &self.myipv6,
                &self.ipv4,
                &self.ipv6,
                &self.ip6lanprefix,
            ]
            .iter()
            .any(|f| f.as_deref().is_some_and(|v| !v.trim().is_empty()))
    }

    /// True when the request names an address itself (as opposed to leaving
    /// it to the client address).
    pub fn has_explicit_address(&self) -> bool {
        [&self.myip, &self.myipv6, &self.ipv4, &self.ipv6]
            .iter()
            .any(|f| f.as_deref().is_some_and(|v| split_list(v).next().is_some()))
    }

    /// Works out the addresses to set. `client` is the address the request
    /// came from (when known): it is used when the request names no address,
    /// or when `use_source=true`.
    pub fn addresses(&self, client: Option<IpAddr>) -> Result<RequestedAddresses, AddressError> {
        let mut out = RequestedAddresses::default();
        if let Some(list) = &self.myip {
            for item in split_list(list) {
                out.set(parse_publishable(item)?)?;
            }
        }
        if let Some(value) = self.ipv4.as_deref().filter(|v| !v.trim().is_empty()) {
            match parse_publishable(value.trim())? {
                ip @ IpAddr::V4(_) => out.set_or_same(ip)?,
                IpAddr::V6(_) => return Err(wrong_family(value, "IPv4")),
            }
        }
        for value in [&self.myipv6, &self.ipv6].into_iter().flatten() {
            if value.trim().is_empty() {
                continue;
            }
            match parse_publishable(value.trim())? {
                ip @ IpAddr::V6(_) => out.set_or_same(ip)?,
                IpAddr::V4(_) => return Err(wrong_family(value, "IPv6")),
            }
        }
        if let Some(prefix) = self
            .ip6lanprefix
            .as_deref()
            .filter(|v| !v.trim().is_empty())
        {
            out.lan_prefix = Some(parse_lan_prefix(prefix.trim())?);
        }
        let explicit = out.v4.is_some() || out.v6.is_some();
        if let Some(client) = client
            && (self.use_source || !explicit)
        {
            crate::address::check_publishable(client)?;
            match client {
                IpAddr::V4(v4) => out.v4 = Some(v4),
                IpAddr::V6(v6) => out.v6 = Some(v6),
            }
            out.from_client = true;
        }
        Ok(out)
    }
}

fn wrong_family(value: &str, expected: &'static str) -> AddressError {
    AddressError::WrongFamily {
        value: value.to_string(),
        expected,
    }
}

/// Splits a comma list, trimming spaces and dropping empty items (FRITZ!Box
/// leaves `myip=198.51.100.7,` when it has no IPv6 address).
pub fn split_list(list: &str) -> impl Iterator<Item = &str> {
    list.split(',')
        .map(|s| s.trim_matches(' '))
        .filter(|s| !s.is_empty())
}

/// Form-decodes one key or value: `+` is a space, `%XX` a byte; the result
/// must be UTF-8. Malformed escapes (`%zz`) are kept literally and later
/// fail validation with a clear answer.
fn decode(raw: &str) -> Result<String, RequestError> {
    let spaced = raw.replace('+', " ");
    let bytes: Vec<u8> = percent_decode(spaced.as_bytes()).collect();
    String::from_utf8(bytes).map_err(|_| RequestError::InvalidUtf8(raw.chars().take(64).collect()))
}

/// The addresses an update request asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestedAddresses {
    /// The IPv4 address, if any.
    pub v4: Option<Ipv4Addr>,
    /// The IPv6 address, if any.
    pub v6: Option<Ipv6Addr>,
    /// The router's IPv6 LAN prefix, for hosts with an interface identifier.
    pub lan_prefix: Option<Ipv6Net>,
    /// True when an address came from the client connection.
    pub from_client: bool,
}

impl RequestedAddresses {
    /// True when nothing usable was found.
    pub fn is_empty(&self) -> bool {
        self.v4.is_none() && self.v6.is_none() && self.lan_prefix.is_none()
    }

    fn set(&mut self, ip: IpAddr) -> Result<(), AddressError> {
        match ip {
            IpAddr::V4(v4) if self.v4.is_none() => self.v4 = Some(v4),
            IpAddr::V6(v6) if self.v6.is_none() => self.v6 = Some(v6),
            IpAddr::V4(_) => return Err(AddressError::Duplicate("IPv4")),
            IpAddr::V6(_) => return Err(AddressError::Duplicate("IPv6")),
        }
        Ok(())
    }

    fn set_or_same(&mut self, ip: IpAddr) -> Result<(), AddressError> {
        let same = match ip {
            IpAddr::V4(v4) => self.v4 == Some(v4),
            IpAddr::V6(v6) => self.v6 == Some(v6),
        };
        if same { Ok(()) } else { self.set(ip) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_classic_request() {
        let p = UpdateParams::parse(
            "hostname=home.dyn.example.com,nas.dyn.example.com&myip=198.51.100.7&wildcard=NOCHG&mx=NOCHG&backmx=NOCHG&system=dyndns&offline=NO",
        )
        .unwrap();
        assert_eq!(
            p.hostnames,
            vec!["home.dyn.example.com", "nas.dyn.example.com"]
        );
        assert_eq!(p.myip.as_deref(), Some("198.51.100.7"));
        assert!(!p.use_source);
    }

    #[test]
    fn txt_values() {
        let p = UpdateParams::parse(
            "hostname=_acme-challenge.home.dyn.example.com&txt=LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0",
        )
        .unwrap();
        assert_eq!(
            p.txt.as_deref(),
            Some("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0")
        );
        assert!(!p.mentions_address());
        let p = UpdateParams::parse("hostname=x&txt=").unwrap();
        assert_eq!(p.txt.as_deref(), Some(""), "empty: clear");
        assert_eq!(UpdateParams::parse("hostname=x").unwrap().txt, None);
        let p = UpdateParams::parse("hostname=x&txt=a%20b&txt=c").unwrap();
        assert_eq!(p.txt.as_deref(), Some("a b"), "decoded, first wins");
        for with_address in [
            "myip=198.51.100.1",
            "use_source=1",
            "ipv6=2001:db8::1",
            "ip6lanprefix=2001:db8::/64",
        ] {
            let p = UpdateParams::parse(&format!("hostname=x&txt=v&{with_address}")).unwrap();
            assert!(p.mentions_address(), "{with_address}");
        }
        assert!(
            !UpdateParams::parse("hostname=x&txt=v&myip=")
                .unwrap()
                .mentions_address()
        );
    }

    #[test]
    fn legacy_host_and_first_value_wins() {
        let p = UpdateParams::parse("host=a.example.com&myip=1.1.1.1&myip=2.2.2.2").unwrap();
        assert_eq!(p.hostnames, vec!["a.example.com"]);
        assert_eq!(p.myip.as_deref(), Some("1.1.1.1"));
        let p = UpdateParams::parse("host=a.example.com&hostname=b.example.com").unwrap();
        assert_eq!(
            p.hostnames,
            vec!["b.example.com"],
            "hostname is preferred over host"
        );
    }

    #[test]
    fn percent_and_plus_decoding() {
        let p = UpdateParams::parse(
            "hostname=home%2Edyn.example.com%2C+nas.example.com&myip=%32001:db8::1",
        )
        .unwrap();
        assert_eq!(p.hostnames, vec!["home.dyn.example.com", "nas.example.com"]);
        assert_eq!(p.myip.as_deref(), Some("2001:db8::1"));
        // malformed escapes stay literal
        let p = UpdateParams::parse("hostname=a%zz.example.com").unwrap();
        assert_eq!(p.hostnames, vec!["a%zz.example.com"]);
        // CR/LF survive decoding and are left to validation
        let p = UpdateParams::parse("hostname=a%0d%0ab.example.com").unwrap();
        assert_eq!(p.hostnames, vec!["a\r\nb.example.com"]);
    }

    #[test]
    fn rejects_invalid_utf8_and_too_many_parameters() {
        assert!(matches!(
            UpdateParams::parse("hostname=%ff%fe"),
            Err(RequestError::InvalidUtf8(_))
        ));
        let many = "x=1&".repeat(MAX_PARAMETERS + 1);
        assert_eq!(
            UpdateParams::parse(&many),
            Err(RequestError::TooManyParameters)
        );
        // invalid UTF-8 in an ignored field's value does not matter
        assert!(UpdateParams::parse("hostname=a.example.com&foo=%ff").is_ok());
    }

    #[test]
    fn empty_items_are_dropped() {
        let p = UpdateParams::parse(&format!("hostname={}", ",".repeat(5000))).unwrap();
        assert!(p.hostnames.is_empty());
        let p = UpdateParams::parse("hostname=a.example.com,,b.example.com,").unwrap();
        assert_eq!(p.hostnames.len(), 2);
    }

    #[test]
    fn use_source_flag() {
        assert!(
            UpdateParams::parse("hostname=a.b.c&use_source=true")
                .unwrap()
                .use_source
        );
        assert!(
            UpdateParams::parse("hostname=a.b.c&use_source=1")
                .unwrap()
                .use_source
        );
        assert!(
            !UpdateParams::parse("hostname=a.b.c&use_source=false")
                .unwrap()
                .use_source
        );
    }

    #[test]
    fn form_body_merges_without_overriding() {
        let mut p = UpdateParams::parse("hostname=a.example.com").unwrap();
        p.merge("hostname=b.example.com&myip=198.51.100.1").unwrap();
        assert_eq!(p.hostnames, vec!["a.example.com"]);
        assert_eq!(p.myip.as_deref(), Some("198.51.100.1"));
    }

    #[test]
    fn dual_stack_myip() {
        let p =
            UpdateParams::parse("hostname=h.example.com&myip=198.51.100.7,2001:db8::7").unwrap();
        let a = p.addresses(Some(ip("203.0.113.1"))).unwrap();
        assert_eq!(a.v4, Some("198.51.100.7".parse().unwrap()));
        assert_eq!(a.v6, Some("2001:db8::7".parse().unwrap()));
        assert!(
            !a.from_client,
            "explicit addresses win over the client address"
        );
    }

    #[test]
    fn fritzbox_without_ipv6_leaves_trailing_comma() {
        let p = UpdateParams::parse("hostname=h.example.com&myip=198.51.100.7,").unwrap();
        let a = p.addresses(None).unwrap();
        assert_eq!(a.v4, Some("198.51.100.7".parse().unwrap()));
        assert_eq!(a.v6, None);
    }

    #[test]
    fn address_errors() {
        let cases = [
            ("myip=1.1.1.1,2.2.2.2", AddressError::Duplicate("IPv4")),
            (
                "myip=2001:db8::1,2001:db8::2",
                AddressError::Duplicate("IPv6"),
            ),
            ("myip=1.1.1.1&ipv4=2.2.2.2", AddressError::Duplicate("IPv4")),
            (
                "ipv4=2001:db8::1",
                AddressError::WrongFamily {
                    value: "2001:db8::1".into(),
                    expected: "IPv4",
                },
            ),
            (
                "myipv6=198.51.100.1",
                AddressError::WrongFamily {
                    value: "198.51.100.1".into(),
                    expected: "IPv6",
                },
            ),
            ("myip=<ipaddr>", AddressError::Invalid("<ipaddr>".into())),
            (
                "myip=fe80::1%25eth0",
                AddressError::ZoneId("fe80::1%eth0".into()),
            ),
        ];
        for (query, expected) in cases {
            let p = UpdateParams::parse(&format!("hostname=h.example.com&{query}")).unwrap();
            assert_eq!(p.addresses(None), Err(expected), "{query}");
        }
        let p = UpdateParams::parse("hostname=h.example.com&myip=127.0.0.1").unwrap();
        assert!(matches!(
            p.addresses(None),
            Err(AddressError::NotPublishable { .. })
        ));
    }

    #[test]
    fn same_address_twice_is_fine() {
        let p = UpdateParams::parse("hostname=h.example.com&myip=1.1.1.1&ipv4=1.1.1.1").unwrap();
        assert_eq!(
            p.addresses(None).unwrap().v4,
            Some("1.1.1.1".parse().unwrap())
        );
    }

    #[test]
    fn legacy_ipv4_ipv6_fields() {
        let p =
            UpdateParams::parse("host=h.example.com&ipv4=198.51.100.1&ipv6=2001:db8::1").unwrap();
        let a = p.addresses(None).unwrap();
        assert_eq!(a.v4, Some("198.51.100.1".parse().unwrap()));
        assert_eq!(a.v6, Some("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn client_address_fallback_and_use_source() {
        let p = UpdateParams::parse("hostname=h.example.com").unwrap();
        let a = p.addresses(Some(ip("203.0.113.9"))).unwrap();
        assert_eq!(a.v4, Some("203.0.113.9".parse().unwrap()));
        assert!(a.from_client);
        let a = p.addresses(Some(ip("2001:db8::9"))).unwrap();
        assert_eq!(a.v6, Some("2001:db8::9".parse().unwrap()));
        assert_eq!(a.v4, None);
        // no address and no client address: nothing
        assert!(p.addresses(None).unwrap().is_empty());
        // use_source overrides myip of the same family
        let p = UpdateParams::parse(
            "hostname=h.example.com&myip=198.51.100.1,2001:db8::1&use_source=true",
        )
        .unwrap();
        let a = p.addresses(Some(ip("203.0.113.9"))).unwrap();
        assert_eq!(a.v4, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(a.v6, Some("2001:db8::1".parse().unwrap()));
        // a client address on loopback is not publishable
        let p = UpdateParams::parse("hostname=h.example.com").unwrap();
        assert!(p.addresses(Some(ip("127.0.0.1"))).is_err());
    }

    #[test]
    fn lan_prefix_field() {
        let p = UpdateParams::parse(
            "hostname=h.example.com&myip=198.51.100.1&ip6lanprefix=2001:db8:1:2::/64",
        )
        .unwrap();
        let a = p.addresses(None).unwrap();
        assert_eq!(a.lan_prefix.unwrap().to_string(), "2001:db8:1:2::/64");
        let p = UpdateParams::parse("hostname=h.example.com&ip6lanprefix=2001:db8::/96").unwrap();
        assert!(matches!(
            p.addresses(None),
            Err(AddressError::PrefixTooLong(_))
        ));
    }
}
