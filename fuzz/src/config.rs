//! The config file (TOML) into [`Config::parse`], the loader the applier
//! runs on start, on SIGHUP and for `check-config`.

use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use dyndns_core::RecordType;
use dyndns_core::address::is_valid_interface_id;
use dyndns_core::authorization::{Grant, may_update};
use dyndns_core::basic_auth::{encode_basic_auth, parse_basic_auth};
use dyndns_core::config::Config;
use dyndns_core::credential::Credential;
use dyndns_core::view::{HostLive, View};

/// Parses `data` as a config file; an accepted config must keep the promises
/// its validation makes, and its view must reach the handler unchanged.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::parse(text, Some(Path::new("/etc/dyndns"))) else {
        return;
    };
    assert!(!config.zones.is_empty());
    for (i, zone) in config.zones.iter().enumerate() {
        assert!(!config.zones[..i].contains(zone), "zone {zone} twice");
    }
    for (name, host) in &config.hosts {
        assert_eq!(name, &host.name);
        assert_eq!(config.zone_of(name), Some(&host.zone), "{name}");
        assert!(!host.types.is_empty(), "{name}");
        if let Some(iid) = host.ipv6_interface_id {
            assert!(is_valid_interface_id(iid), "{name}");
            assert!(host.types.contains(&RecordType::AAAA), "{name}");
        }
    }
    let a = &config.applier;
    assert!(a.retry_initial <= a.retry_max);
    let n = &config.notify;
    let durations = [
        ("applier.interval", Some(a.interval)),
        ("applier.plesk_timeout", Some(a.plesk_timeout)),
        ("applier.retry_initial", Some(a.retry_initial)),
        ("applier.retry_max", Some(a.retry_max)),
        (
            "handler.heartbeat_max_age",
            Some(config.handler.heartbeat_max_age),
        ),
        (
            "handler.heard_resolution",
            Some(config.handler.heard_resolution),
        ),
        ("handler.silent_after", Some(config.handler.silent_after)),
        ("applier.host_change_window", Some(a.host_change_window)),
        ("acme.lifetime", Some(config.acme.lifetime)),
        ("notify.retry_delay", Some(n.retry_delay)),
        ("notify.email.timeout", n.email.as_ref().map(|e| e.timeout)),
        (
            "notify.webhook.timeout",
            n.webhook.as_ref().map(|w| w.timeout),
        ),
    ];
    for (name, d) in durations {
        if let Some(d) = d {
            assert_schedulable(name, d);
        }
    }
    for d in [a.interval, a.plesk_timeout, a.retry_initial, a.retry_max] {
        assert!(!d.is_zero());
    }
    let realm = &config.handler.realm;
    assert!(
        !realm.is_empty() && !realm.contains(|c: char| c.is_control() || c == '"' || c == '\\'),
        "realm {realm:?} would break the WWW-Authenticate header"
    );
    for (i, user) in config.users.iter().enumerate() {
        assert!(
            !config.users[..i].iter().any(|u| u.name == user.name),
            "user {:?} twice",
            user.name
        );
        let header = encode_basic_auth(&user.name, "secret");
        let sent = parse_basic_auth(header.as_bytes()).map(|c| c.user);
        assert_eq!(
            sent.as_ref(),
            Ok(&user.name),
            "a configured user name must survive Basic authentication"
        );
        assert_eq!(
            Credential::parse(&user.credential.to_string()).as_ref(),
            Ok(&user.credential)
        );
        for grant in &user.grants {
            match grant {
                Grant::Exact(host) => assert!(config.hosts.contains_key(host), "{host}"),
                Grant::Below(base) => {
                    assert!(config.zones.iter().any(|z| base.is_in_zone(z)), "{base}")
                }
            }
        }
    }
    let view = View::from_config(&config, &|_| HostLive::default());
    if let Some(secret) = &config.handler.proxy_secret {
        assert!(
            view.settings.proxy_secret_matches(secret.as_bytes()),
            "the configured proxy secret does not match its published hash"
        );
        assert!(!view.settings.proxy_secret_matches(b""));
    }
    assert_reads_back(&serde_json::to_vec_pretty(&view.settings), &view.settings);
    assert_reads_back(&serde_json::to_vec(&view.decoy), &view.decoy);
    for ((_, user), configured) in view.users.iter().zip(&config.users) {
        assert_reads_back(&serde_json::to_vec(user), user);
        assert_eq!(user.name, configured.name);
        let Some(inline) = &user.hosts else {
            continue;
        };
        let user_named = config.handler.user_named_hosts;
        for name in config.hosts.keys() {
            let listed = inline.iter().any(|h| &h.name == name);
            assert_eq!(
                listed,
                may_update(&user.name, &user.grants, name, user_named),
                "user {:?}'s view and the authorization disagree about {name}",
                user.name
            );
        }
    }
    for (_, host) in &view.hosts {
        assert_reads_back(&serde_json::to_vec(host), host);
    }
}

/// What the applier writes must be what the handler reads.
fn assert_reads_back<T>(json: &serde_json::Result<Vec<u8>>, value: &T)
where
    T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = json.as_deref().unwrap_or_default();
    assert_eq!(
        serde_json::from_slice::<T>(json).ok().as_ref(),
        Some(value),
        "the view does not read back: {}",
        String::from_utf8_lossy(json)
    );
}

/// The applier adds configured durations to the current time (its sleep
/// deadline, a call's deadline, the next retry) and writes the next retry as
/// an RFC 3339 timestamp: both must work for every accepted value.
fn assert_schedulable(name: &str, d: Duration) {
    assert!(
        Instant::now().checked_add(d).is_some(),
        "{name} = {d:?}: now + {name} overflows"
    );
    let later = SystemTime::now().checked_add(d);
    let Some(later) = later else {
        panic!("{name} = {d:?}: now + {name} overflows");
    };
    let mut text = String::new();
    assert!(
        write!(text, "{}", humantime::format_rfc3339(later)).is_ok(),
        "{name} = {d:?}: now + {name} cannot be written as an RFC 3339 time"
    );
}
