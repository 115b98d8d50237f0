//! The handler's view of the config: small per-user and per-host files that
//! the applier derives from the config and writes under the state directory.
//!
//! Spin may start a fresh instance for every request, so the handler cannot
//! keep a parsed config in memory. Reading one user file and one file per
//! requested host keeps its cost the same for 10 or 10,000 configured hosts,
//! and the handler never sees anything but credential hashes (no SMTP
//! password, no webhook token).
//!
//! Layout under `<state>/view/`: `settings.json`, `users/<sha256(user)>.json`,
//! `hosts/<host>.json`.

use std::net::Ipv6Addr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::authorization::Grant;
use crate::config::Config;
use crate::hostname::Hostname;
use crate::record_type::RecordType;

/// The view directory under the state directory.
pub const VIEW_DIR: &str = "view";
/// Settings file inside the view.
pub const SETTINGS_FILE: &str = "settings.json";
/// Per-user files inside the view.
pub const USERS_DIR: &str = "users";
/// Per-host files inside the view.
pub const HOSTS_DIR: &str = "hosts";
/// Largest view file the handler reads.
pub const MAX_VIEW_FILE_BYTES: u64 = 256 * 1024;
/// Version of the view layout; the handler refuses other versions.
pub const VIEW_FORMAT: u32 = 1;

/// Request-independent settings the handler needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerSettings {
    /// [`VIEW_FORMAT`].
    pub format: u32,
    /// Allowed zones (checked again for every host).
    pub zones: Vec<Hostname>,
    /// Peers whose forwarded-for headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The `user@zone` convention.
    pub user_named_hosts: bool,
    /// Realm of the Basic challenge.
    pub realm: String,
    /// `/health` turns 503 when the heartbeat is older than this.
    #[serde(with = "humantime_serde")]
    pub heartbeat_max_age: Duration,
}

/// One user as the handler sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserView {
    /// The user name (checked against the request, to rule out hash collisions).
    pub name: String,
    /// The stored credential (`sha256:salt:hash`).
    pub credential: String,
    /// Hosts and patterns the user may update.
    pub grants: Vec<Grant>,
}

/// One host as the handler sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostView {
    /// The host name.
    pub name: Hostname,
    /// Its zone.
    pub zone: Hostname,
    /// Which record types may be updated.
    pub types: Vec<RecordType>,
    /// Interface identifier for `ip6lanprefix` updates.
    pub ipv6_interface_id: Option<Ipv6Addr>,
}

/// The file name for a user: the SHA-256 of the name, so any user name makes
/// a safe, fixed-length file name.
pub fn user_file_name(user: &str) -> String {
    format!("{}.json", hex::encode(Sha256::digest(user.as_bytes())))
}

/// The file name for a host.
pub fn host_file_name(host: &Hostname) -> String {
    format!("{host}.json")
}

/// Everything the view directory holds, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// `settings.json`.
    pub settings: HandlerSettings,
    /// `users/<file>` and its content.
    pub users: Vec<(String, UserView)>,
    /// `hosts/<file>` and its content.
    pub hosts: Vec<(String, HostView)>,
}

impl View {
    /// Derives the view from a validated config.
    pub fn from_config(config: &Config) -> View {
        View {
            settings: HandlerSettings {
                format: VIEW_FORMAT,
                zones: config.zones.clone(),
                trusted_proxies: config.handler.trusted_proxies.clone(),
                user_named_hosts: config.handler.user_named_hosts,
                realm: config.handler.realm.clone(),
                heartbeat_max_age: config.handler.heartbeat_max_age,
            },
            users: config
                .users
                .iter()
                .map(|u| {
                    (
                        user_file_name(&u.name),
                        UserView {
                            name: u.name.clone(),
                            credential: u.credential.to_string(),
                            grants: u.grants.clone(),
                        },
                    )
                })
                .collect(),
            hosts: config
                .hosts
                .values()
                .map(|h| {
                    (
                        host_file_name(&h.name),
                        HostView {
                            name: h.name.clone(),
                            zone: h.zone.clone(),
                            types: h.types.clone(),
                            ipv6_interface_id: h.ipv6_interface_id,
                        },
                    )
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_from_config() {
        let text = r#"
zones = ["dyn.example.com"]
[[hosts]]
name = "home.dyn.example.com"
ipv6_interface_id = "::1"
[[users]]
name = "alice"
credential = "sha256:00112233445566778899aabbccddeeff:0000000000000000000000000000000000000000000000000000000000000000"
hosts = ["home.dyn.example.com"]
"#;
        let config = Config::parse(text, None).unwrap();
        let view = View::from_config(&config);
        assert_eq!(view.users.len(), 1);
        assert_eq!(view.users[0].0, user_file_name("alice"));
        assert_eq!(view.users[0].0.len(), 64 + 5);
        assert_eq!(view.hosts[0].0, "home.dyn.example.com.json");
        assert_eq!(view.hosts[0].1.zone.as_str(), "dyn.example.com");
        let json = serde_json::to_string(&view.settings).unwrap();
        assert_eq!(
            serde_json::from_str::<HandlerSettings>(&json).unwrap(),
            view.settings
        );
        let json = serde_json::to_string(&view.users[0].1).unwrap();
        assert!(
            json.contains("\"grants\":[\"home.dyn.example.com\"]"),
            "{json}"
        );
    }

    #[test]
    fn user_file_names_are_safe_for_any_name() {
        for name in ["../../etc/passwd", "a/b", "é", ""] {
            let f = user_file_name(name);
            assert!(
                f.bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b'.' || b.is_ascii_lowercase())
            );
            assert!(!f.contains('/'));
        }
        assert_ne!(user_file_name("a"), user_file_name("A"));
    }
}
