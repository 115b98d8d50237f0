//! Host names and grants as they arrive in requests (after percent-decoding)
//! and in the config: [`Hostname::parse`] (including `_acme-challenge`
//! names), [`Grant::parse`], [`host_named_by_user`], zone membership between
//! two parsed names, and ACME challenge values ([`ChallengeValue::parse`])
//! with the permission to set them ([`may_set_challenge`]).
//!
//! Input: `name` NUL `zone`.

use dyndns_core::Hostname;
use dyndns_core::authorization::{Grant, host_named_by_user, may_update};
use dyndns_core::challenge::{CHALLENGE_VALUE_LEN, ChallengeValue, ValueTag, may_set_challenge};
use dyndns_core::hostname::{MAX_LABEL_LEN, MAX_NAME_LEN};
use dyndns_core::queue::EntryKind;

/// Parses both parts and checks normal form, round trips and the zone
/// arithmetic.
pub fn check(data: &[u8]) {
    let parts = crate::parts(data, 2);
    let Some(name) = crate::text(&parts, 0) else {
        return;
    };
    let host = Hostname::parse(name).ok();
    if let Some(host) = &host {
        assert_normal(host);
        assert_eq!(
            Hostname::parse(host.as_str()).as_ref(),
            Ok(host),
            "a parsed name re-parses to itself"
        );
        assert!(
            name.strip_suffix('.')
                .unwrap_or(name)
                .eq_ignore_ascii_case(host.as_str()),
            "normalising only changes case and drops one trailing dot"
        );
    }
    if let Some(host) = &host {
        match host.acme_challenge_target() {
            Some(target) => {
                assert!(host.is_acme_challenge());
                assert!(!target.is_acme_challenge(), "{host}");
                assert_eq!(target.acme_challenge_name().as_ref(), Some(host));
            }
            None => {
                assert!(!host.is_acme_challenge());
                if let Some(challenge) = host.acme_challenge_name() {
                    assert_eq!(challenge.acme_challenge_target().as_ref(), Some(host));
                    assert_eq!(Hostname::parse(challenge.as_str()).as_ref(), Ok(&challenge));
                }
            }
        }
        let grants = [Grant::Exact(host.clone())];
        let challenge_ok = may_set_challenge("alice", &grants, host, false);
        assert!(
            !challenge_ok,
            "an exact grant for {host} covers no challenge name"
        );
        if let Some(challenge) = host.acme_challenge_name() {
            assert!(may_set_challenge("alice", &grants, &challenge, false));
            assert!(!may_update("alice", &grants, &challenge, false));
        }
    }
    if let Ok(value) = ChallengeValue::parse(name) {
        assert_eq!(value.as_str().len(), CHALLENGE_VALUE_LEN);
        assert_eq!(value.as_str(), name);
        let tag = value.tag();
        assert_eq!(ValueTag::parse(tag.as_str()).as_ref(), Some(&tag));
        assert_eq!(
            EntryKind::parse(&format!("TXT-{tag}")),
            Some(EntryKind::Txt(tag)),
            "a value's tag names its queue entry"
        );
    }
    if let Ok(grant) = Grant::parse(name) {
        assert_normal(grant.base());
        assert_eq!(
            Grant::parse(&grant.to_string()).as_ref(),
            Ok(&grant),
            "a grant re-parses from its display form"
        );
        assert_eq!(
            grant.matches(grant.base()),
            matches!(grant, Grant::Exact(_)),
            "an exact grant covers its name, a pattern does not cover its base"
        );
    }
    if let Some(named) = host_named_by_user(name) {
        assert_normal(&named);
        let (label, domain) = name.split_once('@').unwrap_or_default();
        assert!(!label.contains('.') && !domain.contains('@'));
    }
    let Some(zone_text) = crate::text(&parts, 1) else {
        return;
    };
    let (Some(host), Ok(zone)) = (host, Hostname::parse(zone_text)) else {
        return;
    };
    let label = host.label_in_zone(&zone);
    assert_eq!(label.is_some(), host.is_in_zone(&zone));
    match label {
        Some("") => assert_eq!(host, zone, "only the apex has the empty label"),
        Some(label) => assert_eq!(
            format!("{label}.{zone}"),
            host.as_str(),
            "label + zone gives the name back"
        ),
        None => assert!(!host.as_str().ends_with(&format!(".{zone}")) && host != zone),
    }
    let below = Grant::Below(zone.clone());
    assert_eq!(
        below.matches(&host),
        host != zone && host.is_in_zone(&zone),
        "a pattern covers exactly the names strictly below its base"
    );
    assert_eq!(Grant::Exact(zone.clone()).matches(&host), host == zone);
}

fn assert_normal(host: &Hostname) {
    let s = host.as_str();
    assert!(!s.is_empty() && s.len() <= MAX_NAME_LEN, "{s:?}");
    let plain = s.strip_prefix("_acme-challenge.").unwrap_or(s);
    assert!(
        plain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'),
        "{s:?} is not lower-case LDH: unsafe as a file name or Plesk argument"
    );
    assert!(plain.contains('.'), "{s:?} is not fully qualified");
    for label in plain.split('.') {
        assert!(!label.is_empty() && label.len() <= MAX_LABEL_LEN, "{s:?}");
        assert!(!label.starts_with('-') && !label.ends_with('-'), "{s:?}");
    }
}
