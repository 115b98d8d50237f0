//! The handler's view of the config: small files that the applier derives
//! from the config and the applied state and writes under the state
//! directory, readable by root and the handler's group only.
//!
//! Spin may start a fresh instance for every request, so the handler cannot
//! keep a parsed config in memory, and every file operation it makes costs a
//! round trip through the runtime. So a request reads one file: the user's.
//! It holds the settings, the credential hash, the grants and, for every host
//! the user may update, what the handler needs to answer (zone, record
//! types, the address the applier last applied, whether the host is rate
//! limited, when its client was last heard). Its size depends on that user's
//! hosts only, never on the size of the config; a user with more than
//! [`MAX_INLINE_HOSTS`] hosts (say an admin with a `*.` grant over a big
//! zone) gets a file without them, and the handler reads one small file per
//! requested host instead. The handler never sees anything but credential
//! hashes and the SHA-256 of the proxy secret.
//!
//! Layout under `<state>/view/`: `settings.json` (for requests without
//! credentials), `users/<sha256(user)>.json`, `users/decoy.json` (read for
//! unknown users, so an unknown name costs what a known one does),
//! `hosts/<host>.json`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::authorization::{Grant, host_named_by_user};
use crate::config::{AcmeOptions, Config, UserConfig};
use crate::credential::Credential;
use crate::hostname::Hostname;
use crate::record_type::RecordType;

/// The view directory under the state directory.
pub const VIEW_DIR: &str = "view";
/// Settings file inside the view.
pub const SETTINGS_FILE: &str = "settings.json";
/// Per-user files inside the view.
pub const USERS_DIR: &str = "users";
/// The file read for a user name that is not configured (inside
/// [`USERS_DIR`]; never a hex digest, so it cannot collide with a user).
pub const DECOY_USER_FILE: &str = "decoy.json";
/// Per-host files inside the view.
pub const HOSTS_DIR: &str = "hosts";
/// Largest view file the handler reads.
pub const MAX_VIEW_FILE_BYTES: u64 = 256 * 1024;
/// Version of the view layout; the handler refuses other versions.
pub const VIEW_FORMAT: u32 = 2;
/// Users with more hosts than this get a user file without them; the
/// handler then reads `hosts/<host>.json` per requested host.
pub const MAX_INLINE_HOSTS: usize = 64;

/// Request-independent settings the handler needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerSettings {
    /// [`VIEW_FORMAT`].
    pub format: u32,
    /// Allowed zones (checked again for every host).
    pub zones: Vec<Hostname>,
    /// SHA-256 (hex) of the secret the proxy sends; forwarded client
    /// addresses are believed only from requests that carry the secret.
    pub proxy_secret_sha256: Option<String>,
    /// When not empty, forwarded headers are also required to come from one
    /// of these peers.
    pub trusted_proxies: Vec<IpNet>,
    /// The `user@zone` convention.
    pub user_named_hosts: bool,
    /// Realm of the Basic challenge.
    pub realm: String,
    /// `/health` turns 503 when the heartbeat is older than this.
    #[serde(with = "humantime_serde")]
    pub heartbeat_max_age: Duration,
    /// A `nochg` records "heard" when the published time is older than this.
    #[serde(with = "humantime_serde")]
    pub heard_resolution: Duration,
    /// ACME DNS-01 challenge endpoints (off in views published before them).
    #[serde(default)]
    pub acme: AcmeSettings,
    /// The status page marks a host silent when its client has not been
    /// heard from for longer than this.
    #[serde(default = "default_silent_after", with = "humantime_serde")]
    pub silent_after: Duration,
}

/// What the handler needs of the `[acme]` config table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeSettings {
    /// Whether users may set challenge values at all.
    pub enabled: bool,
    /// Most values one `_acme-challenge` name may hold at once.
    pub max_values: usize,
    /// Base path of the `httpreq` and acme-dns endpoints.
    pub httpreq_path: String,
    /// Longest a `present` waits for its value to be in the zone.
    #[serde(with = "humantime_serde")]
    pub present_wait: Duration,
}

impl Default for AcmeSettings {
    fn default() -> Self {
        AcmeSettings::from(&AcmeOptions::default())
    }
}

impl From<&AcmeOptions> for AcmeSettings {
    fn from(o: &AcmeOptions) -> Self {
        AcmeSettings {
            enabled: o.enabled,
            max_values: o.max_values,
            httpreq_path: o.httpreq_path.clone(),
            present_wait: o.present_wait,
        }
    }
}

/// `silent_after` of a view published before the setting existed.
fn default_silent_after() -> Duration {
    Duration::from_secs(2 * 86_400)
}

impl HandlerSettings {
    /// True when `presented` (the proxy secret header's value) is the
    /// configured secret. Constant time in the secret's content.
    pub fn proxy_secret_matches(&self, presented: &[u8]) -> bool {
        let Some(expected) = self
            .proxy_secret_sha256
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
        else {
            return false;
        };
        let got = Sha256::digest(presented);
        bool::from(got.as_slice().ct_eq(&expected))
    }
}

/// What the applier knows about a host right now, as the handler needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostLive {
    /// The A address in the zone, as last applied or confirmed.
    pub a: Option<IpAddr>,
    /// The AAAA address in the zone, as last applied or confirmed.
    pub aaaa: Option<IpAddr>,
    /// Over the change limit until then: the handler answers `abuse`.
    #[serde(default, with = "humantime_serde")]
    pub limited_until: Option<SystemTime>,
    /// When the host's client was last heard from (any update request).
    #[serde(default, with = "humantime_serde")]
    pub last_heard: Option<SystemTime>,
    /// Record types with an entry being applied right now: their applied
    /// address is about to be replaced, so it is no ground for `nochg`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_flux: Vec<RecordType>,
    /// The TXT values at `_acme-challenge.<host>` after the applier last
    /// changed or listed them, oldest first: what a challenge `present`
    /// waits for and what counts against `acme.max_values`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub challenges: Vec<String>,
}

impl HostLive {
    /// The applied address of `record_type`.
    pub fn applied(&self, record_type: RecordType) -> Option<IpAddr> {
        match record_type {
            RecordType::A => self.a,
            RecordType::AAAA => self.aaaa,
        }
    }

    /// The applied address of `record_type` when it may be taken as the
    /// newest known one (not while an entry for it is being applied).
    pub fn settled(&self, record_type: RecordType) -> Option<IpAddr> {
        if self.in_flux.contains(&record_type) {
            None
        } else {
            self.applied(record_type)
        }
    }

    /// True while the host is over its change limit.
    pub fn is_limited(&self, now: SystemTime) -> bool {
        self.limited_until.is_some_and(|t| t > now)
    }

    /// True when a `nochg` should record that the client was heard: the
    /// published time is unknown or older than `resolution`.
    pub fn heard_is_stale(&self, now: SystemTime, resolution: Duration) -> bool {
        self.last_heard
            .is_none_or(|t| now.duration_since(t).unwrap_or_default() >= resolution)
    }
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
    /// The applier's current knowledge of it.
    #[serde(default)]
    pub live: HostLive,
}

/// One user as the handler sees it: everything a request by this user needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserView {
    /// The user name (checked against the request, to rule out hash collisions).
    pub name: String,
    /// The stored credential (`sha256:salt:hash`).
    pub credential: String,
    /// Sees every host on the status page.
    pub admin: bool,
    /// Hosts and patterns the user may update.
    pub grants: Vec<Grant>,
    /// The handler settings.
    pub settings: HandlerSettings,
    /// Every configured host the user may update, by name order; `None`
    /// when there are more than [`MAX_INLINE_HOSTS`] (then read
    /// `hosts/<host>.json`).
    pub hosts: Option<Vec<HostView>>,
}

impl UserView {
    /// The inline entry for `name`, when the file carries the user's hosts.
    /// `Some(None)`: the file carries them and `name` is not among them.
    pub fn inline_host(&self, name: &Hostname) -> Option<Option<&HostView>> {
        self.hosts
            .as_ref()
            .map(|hosts| hosts.iter().find(|h| &h.name == name))
    }
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
    /// `users/decoy.json`.
    pub decoy: UserView,
    /// `hosts/<file>` and its content.
    pub hosts: Vec<(String, HostView)>,
}

/// The handler settings derived from a config.
pub fn handler_settings(config: &Config) -> HandlerSettings {
    HandlerSettings {
        format: VIEW_FORMAT,
        zones: config.zones.clone(),
        proxy_secret_sha256: config
            .handler
            .proxy_secret
            .as_ref()
            .map(|s| hex::encode(Sha256::digest(s.as_bytes()))),
        trusted_proxies: config.handler.trusted_proxies.clone(),
        user_named_hosts: config.handler.user_named_hosts,
        realm: config.handler.realm.clone(),
        heartbeat_max_age: config.handler.heartbeat_max_age,
        heard_resolution: config.handler.heard_resolution,
        acme: AcmeSettings::from(&config.acme),
        silent_after: config.handler.silent_after,
    }
}

/// The configured hosts `user` may update, by name. Exact grants are
/// looked up, only `*.` patterns walk the host list, so the usual
/// configuration (a few exact hosts per user) costs O(log hosts) per grant.
pub fn hosts_of_user<'a>(config: &'a Config, user: &UserConfig) -> Vec<&'a Hostname> {
    let mut out: std::collections::BTreeSet<&'a Hostname> = std::collections::BTreeSet::new();
    for grant in &user.grants {
        match grant {
            Grant::Exact(name) => {
                if let Some((host, _)) = config.hosts.get_key_value(name) {
                    out.insert(host);
                }
            }
            Grant::Below(_) => out.extend(config.hosts.keys().filter(|h| grant.matches(h))),
        }
    }
    if config.handler.user_named_hosts
        && let Some(named) = host_named_by_user(&user.name)
        && let Some((host, _)) = config.hosts.get_key_value(&named)
    {
        out.insert(host);
    }
    out.into_iter().collect()
}

/// The host's view entry with `live` state.
pub fn host_view(config: &Config, host: &Hostname, live: HostLive) -> Option<HostView> {
    let h = config.host(host)?;
    Some(HostView {
        name: h.name.clone(),
        zone: h.zone.clone(),
        types: h.types.clone(),
        ipv6_interface_id: h.ipv6_interface_id,
        live,
    })
}

/// The view file of one user, with the hosts' `live` state.
pub fn user_view(
    config: &Config,
    settings: &HandlerSettings,
    user: &UserConfig,
    live: &dyn Fn(&Hostname) -> HostLive,
) -> UserView {
    let hosts = hosts_of_user(config, user);
    let hosts = (hosts.len() <= MAX_INLINE_HOSTS).then(|| {
        hosts
            .into_iter()
            .filter_map(|h| host_view(config, h, live(h)))
            .collect()
    });
    UserView {
        name: user.name.clone(),
        credential: user.credential.to_string(),
        admin: user.admin,
        grants: user.grants.clone(),
        settings: settings.clone(),
        hosts,
    }
}

/// The decoy read for unknown user names: the shape of a typical user file
/// (settings, a credential that matches nothing, `hosts` host entries and as
/// many grants), so the handler does the same work for a name that does not
/// exist as for a typical one that does.
pub fn decoy_user(settings: &HandlerSettings, hosts: usize) -> UserView {
    let zone = settings
        .zones
        .first()
        .cloned()
        .or_else(|| Hostname::parse("invalid").ok());
    let entries: Vec<HostView> = zone
        .iter()
        .flat_map(|zone| {
            (0..hosts.max(1)).filter_map(move |i| {
                let name = Hostname::parse(&format!("decoy-{i}.{zone}")).ok()?;
                Some(HostView {
                    name,
                    zone: zone.clone(),
                    types: RecordType::ALL.to_vec(),
                    ipv6_interface_id: None,
                    live: HostLive::default(),
                })
            })
        })
        .collect();
    UserView {
        name: String::new(),
        credential: Credential::dummy().to_string(),
        admin: false,
        grants: entries
            .iter()
            .map(|h| Grant::Exact(h.name.clone()))
            .collect(),
        settings: settings.clone(),
        hosts: Some(entries),
    }
}

/// The median number of inline hosts over the users (the decoy's size).
fn typical_host_count(users: &[(String, UserView)]) -> usize {
    let mut counts: Vec<usize> = users
        .iter()
        .map(|(_, u)| u.hosts.as_ref().map_or(0, Vec::len))
        .collect();
    counts.sort_unstable();
    counts.get(counts.len() / 2).copied().unwrap_or(1)
}

impl View {
    /// Derives the view from a validated config and the hosts' live state.
    pub fn from_config(config: &Config, live: &dyn Fn(&Hostname) -> HostLive) -> View {
        let settings = handler_settings(config);
        let users: Vec<(String, UserView)> = config
            .users
            .iter()
            .map(|u| {
                (
                    user_file_name(&u.name),
                    user_view(config, &settings, u, live),
                )
            })
            .collect();
        View {
            decoy: decoy_user(&settings, typical_host_count(&users)),
            users,
            hosts: config
                .hosts
                .keys()
                .filter_map(|h| host_view(config, h, live(h)).map(|v| (host_file_name(h), v)))
                .collect(),
            settings,
        }
    }
}

/// For each host, the users whose view file lists it inline (they must be
/// rewritten when the host's live state changes).
pub fn inline_users_by_host(config: &Config) -> BTreeMap<Hostname, Vec<usize>> {
    let mut out: BTreeMap<Hostname, Vec<usize>> = BTreeMap::new();
    for (index, user) in config.users.iter().enumerate() {
        let hosts = hosts_of_user(config, user);
        if hosts.len() <= MAX_INLINE_HOSTS {
            for h in hosts {
                out.entry(h.clone()).or_default().push(index);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRED: &str = "sha256:00112233445566778899aabbccddeeff:0000000000000000000000000000000000000000000000000000000000000000";

    fn config(extra_users: &str) -> Config {
        let text = format!(
            r#"
zones = ["dyn.example.com"]
[handler]
proxy_secret = "0123456789abcdefghijklmnopqrstuv"
[[hosts]]
name = "home.dyn.example.com"
ipv6_interface_id = "::1"
[[hosts]]
name = "nas.dyn.example.com"
[[users]]
name = "alice"
credential = "{CRED}"
hosts = ["home.dyn.example.com"]
{extra_users}
"#
        );
        Config::parse(&text, None).unwrap()
    }

    fn no_live(_: &Hostname) -> HostLive {
        HostLive::default()
    }

    #[test]
    fn view_from_config() {
        let config = config("");
        let view = View::from_config(&config, &no_live);
        assert_eq!(view.users.len(), 1);
        assert_eq!(view.users[0].0, user_file_name("alice"));
        assert_eq!(view.users[0].0.len(), 64 + 5);
        let alice = &view.users[0].1;
        let hosts = alice.hosts.as_ref().unwrap();
        assert_eq!(hosts.len(), 1, "only her own host: {hosts:?}");
        assert_eq!(hosts[0].name.as_str(), "home.dyn.example.com");
        assert_eq!(alice.settings, view.settings);
        assert_eq!(view.hosts.len(), 2);
        assert_eq!(view.hosts[0].0, "home.dyn.example.com.json");
        assert_eq!(view.hosts[0].1.zone.as_str(), "dyn.example.com");
        let json = serde_json::to_string(&view.users[0].1).unwrap();
        assert!(!json.contains("0123456789abcdefghijklmnopqrstuv"), "{json}");
        assert_eq!(serde_json::from_str::<UserView>(&json).unwrap(), *alice);
    }

    #[test]
    fn live_state_is_folded_in() {
        let config = config("");
        let addr: IpAddr = "198.51.100.7".parse().unwrap();
        let view = View::from_config(&config, &|h: &Hostname| {
            let mut live = HostLive::default();
            if h.as_str() == "home.dyn.example.com" {
                live.a = Some(addr);
            }
            live
        });
        let alice = &view.users[0].1;
        let home = Hostname::parse("home.dyn.example.com").unwrap();
        let nas = Hostname::parse("nas.dyn.example.com").unwrap();
        assert_eq!(
            alice.inline_host(&home).unwrap().unwrap().live.a,
            Some(addr)
        );
        assert_eq!(alice.inline_host(&nas), Some(None));
    }

    #[test]
    fn big_users_get_no_inline_hosts() {
        let mut text = String::from("zones = [\"dyn.example.com\"]\n");
        for i in 0..=MAX_INLINE_HOSTS {
            text.push_str(&format!("[[hosts]]\nname = \"h{i}.dyn.example.com\"\n"));
        }
        text.push_str(&format!(
            "[[users]]\nname = \"admin\"\ncredential = \"{CRED}\"\nhosts = [\"*.dyn.example.com\"]\n[[users]]\nname = \"one\"\ncredential = \"{CRED}\"\nhosts = [\"h1.dyn.example.com\"]\n"
        ));
        let config = Config::parse(&text, None).unwrap();
        let view = View::from_config(&config, &no_live);
        assert_eq!(view.users[0].1.hosts, None);
        assert_eq!(view.users[1].1.hosts.as_ref().map(Vec::len), Some(1));
        let by_host = inline_users_by_host(&config);
        let h1 = Hostname::parse("h1.dyn.example.com").unwrap();
        assert_eq!(by_host[&h1], vec![1]);
    }

    #[test]
    fn proxy_secret_is_stored_hashed_and_checked() {
        let config = config("");
        let s = handler_settings(&config);
        assert_eq!(s.proxy_secret_sha256.as_ref().map(String::len), Some(64));
        assert!(s.proxy_secret_matches(b"0123456789abcdefghijklmnopqrstuv"));
        assert!(!s.proxy_secret_matches(b"0123456789abcdefghijklmnopqrstuw"));
        assert!(!s.proxy_secret_matches(b""));
        let mut none = s.clone();
        none.proxy_secret_sha256 = None;
        assert!(!none.proxy_secret_matches(b""));
    }

    #[test]
    fn decoy_has_the_shape_of_a_user() {
        let config = config("");
        let view = View::from_config(&config, &no_live);
        let decoy = serde_json::to_string(&view.decoy).unwrap();
        let real = serde_json::to_string(&view.users[0].1).unwrap();
        let ratio = decoy.len() as f64 / real.len() as f64;
        assert!((0.8..1.25).contains(&ratio), "{decoy}\n{real}");
        let cred = Credential::parse(&view.decoy.credential).unwrap();
        assert!(!cred.verify(""));
        assert!(!cred.verify("alice-secret"));
    }

    #[test]
    fn heard_and_limit() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut live = HostLive::default();
        assert!(live.heard_is_stale(now, Duration::from_secs(600)));
        live.last_heard = Some(now - Duration::from_secs(599));
        assert!(!live.heard_is_stale(now, Duration::from_secs(600)));
        live.last_heard = Some(now - Duration::from_secs(600));
        assert!(live.heard_is_stale(now, Duration::from_secs(600)));
        assert!(!live.is_limited(now));
        live.limited_until = Some(now + Duration::from_secs(1));
        assert!(live.is_limited(now));
        assert!(!live.is_limited(now + Duration::from_secs(1)));
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
            assert_ne!(f, DECOY_USER_FILE);
        }
        assert_ne!(user_file_name("a"), user_file_name("A"));
    }
}
