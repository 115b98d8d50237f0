//! The DNS record types this service manages.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// An address record type: `A` (IPv4) or `AAAA` (IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RecordType {
    /// IPv4 address record.
    A,
    /// IPv6 address record.
    AAAA,
}

impl RecordType {
    /// Both types, in the order answers list them.
    pub const ALL: [RecordType; 2] = [RecordType::A, RecordType::AAAA];

    /// The record type that holds `addr`.
    pub fn of(addr: &IpAddr) -> RecordType {
        match addr {
            IpAddr::V4(_) => RecordType::A,
            IpAddr::V6(_) => RecordType::AAAA,
        }
    }

    /// The name as used in DNS and in Plesk output (`A`, `AAAA`).
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::AAAA => "AAAA",
        }
    }

    /// The option `plesk bin dns` uses for this type (`-a`, `-aaaa`).
    pub fn plesk_option(self) -> &'static str {
        match self {
            RecordType::A => "-a",
            RecordType::AAAA => "-aaaa",
        }
    }

    /// Parses `A`/`AAAA`, case-insensitively.
    pub fn parse(s: &str) -> Option<RecordType> {
        if s.eq_ignore_ascii_case("A") {
            Some(RecordType::A)
        } else if s.eq_ignore_ascii_case("AAAA") {
            Some(RecordType::AAAA)
        } else {
            None
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_show() {
        assert_eq!(RecordType::parse("a"), Some(RecordType::A));
        assert_eq!(RecordType::parse("AAAA"), Some(RecordType::AAAA));
        assert_eq!(RecordType::parse("MX"), None);
        assert_eq!(RecordType::AAAA.plesk_option(), "-aaaa");
        assert_eq!(RecordType::of(&"::1".parse().unwrap()), RecordType::AAAA);
    }
}
