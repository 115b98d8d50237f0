//! Who may update which host: exact grants, suffix patterns such as
//! `*.home.dyn.example.com`, and the original script's convention where user
//! `home@dyn.example.com` may update `home.dyn.example.com`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hostname::{Hostname, HostnameError};

/// One entry of a user's `hosts` list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Grant {
    /// Exactly this host.
    Exact(Hostname),
    /// Any host strictly below this name (`*.home.dyn.example.com`); not the
    /// name itself.
    Below(Hostname),
}

impl Grant {
    /// Parses `name` or `*.name`.
    pub fn parse(value: &str) -> Result<Grant, HostnameError> {
        match value.strip_prefix("*.") {
            Some(rest) => Ok(Grant::Below(Hostname::parse(rest)?)),
            None => Ok(Grant::Exact(Hostname::parse(value)?)),
        }
    }

    /// True when this grant covers `host`.
    pub fn matches(&self, host: &Hostname) -> bool {
        match self {
            Grant::Exact(name) => name == host,
            Grant::Below(base) => host != base && host.is_in_zone(base),
        }
    }

    /// The name the grant is built on (the host, or the pattern's base).
    pub fn base(&self) -> &Hostname {
        match self {
            Grant::Exact(name) | Grant::Below(name) => name,
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grant::Exact(name) => write!(f, "{name}"),
            Grant::Below(base) => write!(f, "*.{base}"),
        }
    }
}

impl Serialize for Grant {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Grant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Grant::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// The host a user name designates under the `user@zone` convention
/// (`home@dyn.example.com` -> `home.dyn.example.com`), if it has that shape.
pub fn host_named_by_user(user: &str) -> Option<Hostname> {
    let (label, domain) = user.split_once('@')?;
    if label.is_empty() || label.contains('.') || domain.contains('@') {
        return None;
    }
    Hostname::parse(&format!("{label}.{domain}")).ok()
}

/// Decides whether `user` with `grants` may update `host`. `user_named_hosts`
/// enables the `user@zone` convention. Whether the host is configured and in
/// an allowed zone is checked separately.
pub fn may_update(user: &str, grants: &[Grant], host: &Hostname, user_named_hosts: bool) -> bool {
    grants.iter().any(|g| g.matches(host))
        || (user_named_hosts && host_named_by_user(user).as_ref() == Some(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Hostname {
        Hostname::parse(s).unwrap()
    }

    #[test]
    fn exact_and_pattern_grants() {
        let grants = vec![
            Grant::parse("home.dyn.example.com").unwrap(),
            Grant::parse("*.office.dyn.example.com").unwrap(),
        ];
        assert!(may_update(
            "alice",
            &grants,
            &h("home.dyn.example.com"),
            false
        ));
        assert!(may_update(
            "alice",
            &grants,
            &h("HOME.dyn.example.com."),
            false
        ));
        assert!(may_update(
            "alice",
            &grants,
            &h("pc1.office.dyn.example.com"),
            false
        ));
        assert!(may_update(
            "alice",
            &grants,
            &h("a.b.office.dyn.example.com"),
            false
        ));
        assert!(
            !may_update("alice", &grants, &h("office.dyn.example.com"), false),
            "a pattern does not cover its base"
        );
        assert!(!may_update(
            "alice",
            &grants,
            &h("xoffice.dyn.example.com"),
            false
        ));
        assert!(
            !may_update("alice", &grants, &h("sub.home.dyn.example.com"), false),
            "an exact grant covers nothing below"
        );
        assert!(!may_update(
            "alice",
            &grants,
            &h("nas.dyn.example.com"),
            false
        ));
    }

    #[test]
    fn grant_parsing() {
        assert_eq!(
            Grant::parse("*.a.example.com").unwrap().to_string(),
            "*.a.example.com"
        );
        assert!(Grant::parse("*a.example.com").is_err());
        assert!(Grant::parse("a.*.example.com").is_err());
        assert!(Grant::parse("*").is_err());
    }

    #[test]
    fn user_named_hosts_convention() {
        assert_eq!(
            host_named_by_user("home@dyn.example.com"),
            Some(h("home.dyn.example.com"))
        );
        assert_eq!(host_named_by_user("alice"), None);
        assert_eq!(host_named_by_user("a.b@dyn.example.com"), None);
        assert_eq!(host_named_by_user("@dyn.example.com"), None);
        assert_eq!(host_named_by_user("a@b@dyn.example.com"), None);
        let host = h("home.dyn.example.com");
        assert!(may_update("home@dyn.example.com", &[], &host, true));
        assert!(
            !may_update("home@dyn.example.com", &[], &host, false),
            "only when enabled"
        );
        assert!(!may_update("nas@dyn.example.com", &[], &host, true));
    }
}
