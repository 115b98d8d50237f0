//! Reading a zone listing (`plesk bin dns --info <zone>`): the A/AAAA records
//! the applier updates and the TXT records it manages at `_acme-challenge`
//! names. The output is parsed defensively: lines it does not understand
//! (status lines, other record types, garbage) are skipped, names are
//! compared in lower case without the trailing dot.

use std::net::IpAddr;

use crate::record_type::RecordType;

/// An address record as found in a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRecord {
    /// Owner name, lower case, without trailing dot.
    pub name: String,
    /// A or AAAA.
    pub record_type: RecordType,
    /// The value exactly as the backend shows it (used verbatim to delete it).
    pub value: String,
    /// The value parsed.
    pub address: IpAddr,
}

/// A TXT record as found in a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtRecord {
    /// Owner name, lower case, without trailing dot.
    pub name: String,
    /// The text: the rest of the line after the type, with one pair of
    /// surrounding double quotes removed if present.
    pub value: String,
}

/// What a zone listing holds, as far as the applier cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneListing {
    /// A and AAAA records.
    pub addresses: Vec<ZoneRecord>,
    /// TXT records.
    pub txt: Vec<TxtRecord>,
}

impl ZoneListing {
    /// The A or AAAA records of `name`.
    pub fn addresses_of<'a>(
        &'a self,
        name: &'a str,
        record_type: RecordType,
    ) -> impl Iterator<Item = &'a ZoneRecord> + 'a {
        self.addresses
            .iter()
            .filter(move |r| r.record_type == record_type && r.name == name)
    }

    /// The TXT values of `name`, in listing order.
    pub fn txt_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.txt
            .iter()
            .filter(move |r| r.name == name)
            .map(|r| r.value.as_str())
    }
}

/// Reads the A/AAAA records out of `plesk bin dns --info` output.
pub fn parse_info(output: &str) -> Vec<ZoneRecord> {
    parse_listing(output).addresses
}

/// Reads the A/AAAA and TXT records out of `plesk bin dns --info` output.
pub fn parse_listing(output: &str) -> ZoneListing {
    let mut listing = ZoneListing::default();
    for line in output.lines() {
        let mut fields = line.split_whitespace();
        let (Some(owner), Some(rtype)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !owner.ends_with('.') {
            continue;
        }
        let name = owner.trim_end_matches('.').to_ascii_lowercase();
        if rtype.eq_ignore_ascii_case("TXT") {
            // The value may hold spaces: everything after the type field.
            let Some(rest) = after_fields(line, 2) else {
                continue;
            };
            let value = rest
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(rest);
            listing.txt.push(TxtRecord {
                name,
                value: value.to_string(),
            });
            continue;
        }
        let (Some(value), None) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some(record_type) = RecordType::parse(rtype) else {
            continue;
        };
        let Ok(address) = value.parse::<IpAddr>() else {
            continue;
        };
        if RecordType::of(&address) != record_type {
            continue;
        }
        listing.addresses.push(ZoneRecord {
            name,
            record_type,
            value: value.to_string(),
            address,
        });
    }
    listing
}

/// The non-empty rest of `line` after its first `n` whitespace-separated
/// fields, trimmed.
fn after_fields(line: &str, n: usize) -> Option<&str> {
    let mut rest = line.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace)?;
        rest = rest[end..].trim_start();
    }
    let rest = rest.trim_end();
    (!rest.is_empty()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_info_output_defensively() {
        let out = "\
example.com. NS ns.example.com.
example.com. A 192.0.2.42
Home.Dyn.Example.com. A 198.51.100.7
home.dyn.example.com. AAAA 2001:DB8::7
example.com. MX 10 mail.example.com.
www.example.com. CNAME example.com.
example.com. TXT v=spf1 +a +mx -all
weird.example.com. A not-an-ip
mixed.example.com. A 2001:db8::1
nodot A 192.0.2.1

SUCCESS: Getting information for Domain 'example.com' complete.
";
        let r = parse_info(out);
        assert_eq!(r.len(), 3, "{r:#?}");
        assert_eq!(r[1].name, "home.dyn.example.com");
        assert_eq!(r[1].record_type, RecordType::A);
        assert_eq!(
            r[2].value, "2001:DB8::7",
            "the value is kept verbatim for --del"
        );
        assert_eq!(r[2].address, "2001:db8::7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn parses_txt_records() {
        let out = "\
example.com. TXT v=spf1 +a +mx -all
_ACME-Challenge.Home.dyn.example.com. TXT LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0
_acme-challenge.home.dyn.example.com.  txt   \"Xbb0bRlwQXOH5Ow0GQ_S6FVsKJ8jG1U0eKzy2c3zTfA\"  
quoted.example.com. TXT \"a \\\"b\\\" c\"
empty.example.com. TXT
nodot TXT value
SUCCESS: Getting information for Domain 'example.com' complete.
";
        let l = parse_listing(out);
        assert!(l.addresses.is_empty());
        let values: Vec<(&str, &str)> = l
            .txt
            .iter()
            .map(|t| (t.name.as_str(), t.value.as_str()))
            .collect();
        assert_eq!(
            values,
            vec![
                ("example.com", "v=spf1 +a +mx -all"),
                (
                    "_acme-challenge.home.dyn.example.com",
                    "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
                ),
                (
                    "_acme-challenge.home.dyn.example.com",
                    "Xbb0bRlwQXOH5Ow0GQ_S6FVsKJ8jG1U0eKzy2c3zTfA"
                ),
                ("quoted.example.com", "a \\\"b\\\" c"),
            ]
        );
        assert_eq!(l.txt_of("_acme-challenge.home.dyn.example.com").count(), 2);
    }
}
