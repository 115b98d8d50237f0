//! The configuration file (TOML): zones, hosts, users, paths, and the
//! options of the handler, the applier and the notifications. Parsing is
//! strict (unknown keys are errors) and validation reports every problem it
//! finds, each naming the offending entry and value.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use thiserror::Error;

use crate::address::is_valid_interface_id;
use crate::authorization::{Grant, host_named_by_user};
use crate::credential::{Credential, CredentialError};
use crate::hostname::{Hostname, HostnameError};
use crate::record_type::RecordType;
use crate::untrusted_text::is_unsafe_char;

/// Where the applier looks for the config when none is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/dyndns/dyndns.toml";

/// Longest duration any option may have. The applier adds durations to the
/// current time (deadlines, the next retry) and writes the next retry as an
/// RFC 3339 time, which ends with the year 9999: far larger values would make
/// it panic or fail, and nothing useful needs more than a year.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// A config file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// Not valid TOML, a wrong value type, or an unknown key.
    #[error("{0}")]
    Syntax(String),
    /// Parsed, but the content is inconsistent.
    #[error("{} problem(s) in the config:\n{}", .0.len(), ProblemList(.0))]
    Invalid(Vec<ConfigProblem>),
}

struct ProblemList<'a>(&'a [ConfigProblem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// One inconsistency found while validating a config.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigProblem {
    /// `zones` is empty.
    #[error("zones: at least one zone must be allowed")]
    NoZones,
    /// A zone is not a valid name.
    #[error("zones[{index}]: {error}")]
    BadZone {
        /// Position in the list.
        index: usize,
        /// What is wrong.
        error: HostnameError,
    },
    /// The same zone twice.
    #[error("zones: {0} is listed twice")]
    DuplicateZone(String),
    /// A host name is not valid.
    #[error("hosts[{index}].name: {error}")]
    BadHostName {
        /// Position in the list.
        index: usize,
        /// What is wrong.
        error: HostnameError,
    },
    /// A host outside every allowed zone.
    #[error("hosts[{index}]: {host} is not inside any allowed zone ({zones})")]
    HostOutsideZones {
        /// Position in the list.
        index: usize,
        /// The host.
        host: String,
        /// The allowed zones, comma separated.
        zones: String,
    },
    /// The same host twice.
    #[error("hosts[{index}]: {host} is already defined")]
    DuplicateHost {
        /// Position of the second definition.
        index: usize,
        /// The host.
        host: String,
    },
    /// `types = []`.
    #[error("hosts[{index}] ({host}): types must name A, AAAA or both")]
    NoTypes {
        /// Position in the list.
        index: usize,
        /// The host.
        host: String,
    },
    /// A record type other than A/AAAA.
    #[error(
        "hosts[{index}] ({host}): record type {value:?} is not supported; use \"A\" or \"AAAA\""
    )]
    BadType {
        /// Position in the list.
        index: usize,
        /// The host.
        host: String,
        /// The value given.
        value: String,
    },
    /// The IPv6 interface identifier is not usable.
    #[error(
        "hosts[{index}] ({host}): ipv6_interface_id {value:?} must be an IPv6 address with only the lower 64 bits set, e.g. \"::1:2:3:4\""
    )]
    BadInterfaceId {
        /// Position in the list.
        index: usize,
        /// The host.
        host: String,
        /// The value given.
        value: String,
    },
    /// An interface identifier on a host without AAAA.
    #[error(
        "hosts[{index}] ({host}): ipv6_interface_id is set but the host has no AAAA record type"
    )]
    InterfaceIdWithoutAaaa {
        /// Position in the list.
        index: usize,
        /// The host.
        host: String,
    },
    /// A user name that Basic authentication cannot carry.
    #[error("users[{index}].name {value:?}: {reason}")]
    BadUserName {
        /// Position in the list.
        index: usize,
        /// The name given (escaped when shown).
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The same user twice.
    #[error("users[{index}]: user {user:?} is already defined")]
    DuplicateUser {
        /// Position of the second definition.
        index: usize,
        /// The user.
        user: String,
    },
    /// The credential cannot be parsed.
    #[error("users[{index}] ({user}): {error}")]
    BadCredential {
        /// Position in the list.
        index: usize,
        /// The user.
        user: String,
        /// What is wrong.
        error: CredentialError,
    },
    /// A `hosts` entry of a user is not a name or pattern.
    #[error("users[{index}] ({user}): host {value:?}: {error}")]
    BadGrant {
        /// Position in the list.
        index: usize,
        /// The user.
        user: String,
        /// The value given.
        value: String,
        /// What is wrong.
        error: HostnameError,
    },
    /// An exact grant for a host that is not configured.
    #[error("users[{index}] ({user}): host {host} is not defined in [[hosts]]")]
    GrantForUnknownHost {
        /// Position in the list.
        index: usize,
        /// The user.
        user: String,
        /// The host.
        host: String,
    },
    /// A pattern outside every allowed zone.
    #[error("users[{index}] ({user}): pattern {pattern} lies outside every allowed zone")]
    PatternOutsideZones {
        /// Position in the list.
        index: usize,
        /// The user.
        user: String,
        /// The pattern.
        pattern: String,
    },
    /// A user (not an admin) who could update nothing.
    #[error("users[{index}] ({user}): no hosts granted (add hosts = [...]{hint})")]
    UserWithoutHosts {
        /// Position in the list.
        index: usize,
        /// The user.
        user: String,
        /// Extra advice.
        hint: &'static str,
    },
    /// A trusted proxy that is not an address or network.
    #[error(
        "handler.trusted_proxies: {0:?} is not an IP address or network (e.g. \"127.0.0.1\" or \"10.0.0.0/8\")"
    )]
    BadTrustedProxy(String),
    /// A proxy secret that is too short or cannot be written into nginx's config.
    #[error("handler.proxy_secret: {0}")]
    BadProxySecret(&'static str),
    /// A change limit the history cannot count.
    #[error(
        "applier.host_change_limit {0} is larger than {HISTORY_PER_TYPE}, the changes a host's history keeps"
    )]
    ChangeLimitTooHigh(u32),
    /// The realm would break the `WWW-Authenticate` header.
    #[error("handler.realm {0:?} must be 1 to 64 printable characters without '\"' or '\\\\'")]
    BadRealm(String),
    /// A duration that must be positive is zero.
    #[error("{0} must be longer than zero")]
    ZeroDuration(&'static str),
    /// A host would turn "silent" between two of its client's recorded
    /// `nochg`s.
    #[error(
        "handler.silent_after ({}) is shorter than handler.heard_resolution ({}): a client that re-sends its address is only recorded as heard that often",
        humantime::format_duration(*silent_after),
        humantime::format_duration(*heard_resolution)
    )]
    SilentBeforeHeard {
        /// handler.silent_after
        silent_after: Duration,
        /// handler.heard_resolution
        heard_resolution: Duration,
    },
    /// A duration longer than [`MAX_DURATION`].
    #[error("{0} must be at most 365 days")]
    DurationTooLong(&'static str),
    /// `retry_initial` is longer than `retry_max`.
    #[error("applier.retry_initial ({initial:?}) is longer than applier.retry_max ({max:?})")]
    RetryOrder {
        /// retry_initial
        initial: Duration,
        /// retry_max
        max: Duration,
    },
    /// Two data directories overlap (a security problem: the web side may
    /// write the queue, so nothing root relies on may live inside it).
    #[error(
        "paths.{inner} ({inner_path}) must not be inside or equal to paths.{outer} ({outer_path})"
    )]
    NestedPaths {
        /// Name of the inner path.
        inner: &'static str,
        /// Its value.
        inner_path: String,
        /// Name of the outer path.
        outer: &'static str,
        /// Its value.
        outer_path: String,
    },
    /// A path that must be set is empty.
    #[error("{0} must not be empty")]
    EmptyPath(&'static str),
    /// An email notification with nobody to send to.
    #[error("notify.email.to: at least one recipient is needed")]
    NoRecipients,
    /// An email address that is obviously not one.
    #[error("notify.email.{field}: {value:?} is not an email address")]
    BadEmail {
        /// `from` or `to`.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// Login name without password or the other way round.
    #[error("notify.email: username and password must be given together")]
    HalfLogin,
    /// A webhook URL that is not http(s).
    #[error("notify.webhook.url {0:?} must start with http:// or https://")]
    BadWebhookUrl(String),
    /// The SMTP server name is empty or has spaces.
    #[error("notify.email.server {0:?} is not a host name or address")]
    BadSmtpServer(String),
    /// An `_acme-challenge` name where a zone, host or grant is expected.
    #[error(
        "{field}: {value} is an ACME challenge name; name the host itself (its _acme-challenge TXT records come with it)"
    )]
    ChallengeName {
        /// Where it was found (`zones[0]`, `hosts[1].name`, `users[2].hosts`).
        field: String,
        /// The name.
        value: String,
    },
    /// `acme.max_values` out of range.
    #[error("acme.max_values must be between 1 and {MAX_ACME_VALUES}, not {0}")]
    AcmeMaxValues(usize),
    /// `acme.httpreq_path` is not a usable path.
    #[error(
        "acme.httpreq_path {0:?} must start with '/', not end with '/', use only letters, digits, '-', '_', '.' and '/', and not be /nic, /health, /update or /status"
    )]
    BadHttpreqPath(String),
    /// `acme.present_wait` longer than [`MAX_PRESENT_WAIT`].
    #[error(
        "acme.present_wait is {0:?}; at most {MAX_PRESENT_WAIT:?} (and under the proxy's read timeout)"
    )]
    PresentWait(Duration),
}

/// Longest `acme.present_wait`: a request held longer than this is held
/// longer than any proxy waits.
pub const MAX_PRESENT_WAIT: Duration = Duration::from_secs(120);

/// Most TXT values one challenge name may hold at once.
pub const MAX_ACME_VALUES: usize = 16;

/// The data directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The queue: written by the handler (`tmp/`, `new/`), consumed by the applier.
    pub queue: PathBuf,
    /// Written by the applier, read by the handler: the handler's view of the
    /// config, the applied state, the heartbeat.
    pub state: PathBuf,
    /// The applier's own files (lock, crash journal, retry schedule). Root only.
    pub private: PathBuf,
}

/// Options of the HTTP handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerOptions {
    /// The secret the proxy (Plesk's nginx) sends in [`PROXY_SECRET_HEADER`];
    /// forwarded client addresses are believed only from requests carrying
    /// it. Only its SHA-256 reaches the handler's view.
    pub proxy_secret: Option<String>,
    /// When not empty, forwarded headers are believed only from these peers
    /// (in addition to the secret). Empty: any peer that knows the secret.
    pub trusted_proxies: Vec<IpNet>,
    /// Enables the `home@dyn.example.com` may update `home.dyn.example.com` convention.
    pub user_named_hosts: bool,
    /// Realm of the Basic challenge.
    pub realm: String,
    /// `/health` answers 503 when the applier's heartbeat is older.
    pub heartbeat_max_age: Duration,
    /// How often at most the handler records that a host's client was
    /// heard from when nothing changed (`nochg`).
    pub heard_resolution: Duration,
    /// The status page marks a host "silent" when its client has not been
    /// heard from for longer than this.
    pub silent_after: Duration,
}

/// The request header Plesk's nginx sets to `handler.proxy_secret`.
pub const PROXY_SECRET_HEADER: &str = "x-dyndns-proxy-secret";
/// Shortest accepted `handler.proxy_secret`.
pub const MIN_PROXY_SECRET_LEN: usize = 24;
/// Most changes a host's history keeps per record type, and so the highest
/// `applier.host_change_limit`.
pub const HISTORY_PER_TYPE: usize = 50;

/// Options of the applier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplierOptions {
    /// The `plesk` executable.
    pub plesk: PathBuf,
    /// Time between two looks at the queue.
    pub interval: Duration,
    /// Longest a single Plesk call may take before it is killed.
    pub plesk_timeout: Duration,
    /// First retry delay after a transient failure.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Prometheus textfile to write, if any.
    pub metrics_file: Option<PathBuf>,
    /// Most address changes applied per host within `host_change_window`;
    /// more are kept queued and the handler answers `abuse`. 0: no limit.
    pub host_change_limit: u32,
    /// The window of `host_change_limit`.
    pub host_change_window: Duration,
}

/// ACME DNS-01 challenges: TXT records at `_acme-challenge.<host>` for the
/// hosts a user may update.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeOptions {
    /// Whether the service sets challenge records at all (the applier
    /// rejects TXT entries while this is off, but still removes the values
    /// it created once they expire).
    #[serde(default)]
    pub enabled: bool,
    /// Most values one name may hold at once (an apex and a wildcard
    /// certificate in one order need two).
    #[serde(default = "default_max_values")]
    pub max_values: usize,
    /// How long a value the applier created may stay before it removes it,
    /// cleaned up or not.
    #[serde(default = "default_acme_lifetime", with = "humantime_serde")]
    pub lifetime: Duration,
    /// Base path of the `httpreq` endpoints (`<path>/present`,
    /// `<path>/cleanup`) and of the acme-dns one (`<path>/update`).
    #[serde(default = "default_httpreq_path")]
    pub httpreq_path: String,
    /// Longest a `present` waits for its value to be in the zone before it
    /// answers anyway (the value stays queued). Keep it under the proxy's
    /// read timeout (30 s in the shipped nginx directives).
    #[serde(default = "default_present_wait", with = "humantime_serde")]
    pub present_wait: Duration,
}

impl Default for AcmeOptions {
    fn default() -> Self {
        AcmeOptions {
            enabled: false,
            max_values: default_max_values(),
            lifetime: default_acme_lifetime(),
            httpreq_path: default_httpreq_path(),
            present_wait: default_present_wait(),
        }
    }
}

fn default_max_values() -> usize {
    4
}
fn default_acme_lifetime() -> Duration {
    Duration::from_secs(3600)
}
fn default_httpreq_path() -> String {
    "/acme".into()
}
fn default_present_wait() -> Duration {
    Duration::from_secs(25)
}

/// A dynamic host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// Its name.
    pub name: Hostname,
    /// The allowed zone it belongs to (the longest one containing it).
    pub zone: Hostname,
    /// Which record types may be updated.
    pub types: Vec<RecordType>,
    /// Interface identifier for `ip6lanprefix` updates.
    pub ipv6_interface_id: Option<Ipv6Addr>,
}

/// A user allowed to send updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserConfig {
    /// The Basic auth user name.
    pub name: String,
    /// The hashed secret.
    pub credential: Credential,
    /// Hosts and patterns the user may update.
    pub grants: Vec<Grant>,
    /// Sees every host on the status page (not only their own).
    pub admin: bool,
}

/// How to talk to the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// No encryption (port 25 on a trusted network, or loopback).
    Plain,
    /// Plain connection upgraded with STARTTLS (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

impl SmtpSecurity {
    /// The usual port.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::Plain => 25,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
        }
    }
}

/// Email notifications.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server host name or address.
    pub server: String,
    /// Port; the usual one for `security` when absent.
    pub port: Option<u16>,
    /// `plain`, `starttls` or `tls`.
    #[serde(default = "default_security")]
    pub security: SmtpSecurity,
    /// Login name, if the server wants one.
    pub username: Option<String>,
    /// Login password (this file must then be readable by root only).
    pub password: Option<String>,
    /// Sender address.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Extra CA certificate (PEM) to trust, for a server with a private CA.
    pub ca_file: Option<PathBuf>,
    /// Connection and command timeout.
    #[serde(default = "default_notify_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_security() -> SmtpSecurity {
    SmtpSecurity::Starttls
}

/// Webhook notifications (a JSON POST).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST. Chat webhooks carry a token in the URL: keep this file private.
    pub url: String,
    /// Sent as `Authorization: Bearer ...` when set.
    pub bearer_token: Option<String>,
    /// Request timeout.
    #[serde(default = "default_notify_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_notify_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Change notifications, sent by the applier after a change is applied.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// How many times one message is tried before it is given up.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Pause before the first retry; doubled for each further one.
    #[serde(default = "default_retry_delay", with = "humantime_serde")]
    pub retry_delay: Duration,
    /// Email settings.
    pub email: Option<EmailConfig>,
    /// Webhook settings.
    pub webhook: Option<WebhookConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            attempts: default_attempts(),
            retry_delay: default_retry_delay(),
            email: None,
            webhook: None,
        }
    }
}

fn default_attempts() -> u32 {
    3
}

fn default_retry_delay() -> Duration {
    Duration::from_secs(5)
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Zones the applier may touch.
    pub zones: Vec<Hostname>,
    /// Data directories.
    pub paths: Paths,
    /// Handler options.
    pub handler: HandlerOptions,
    /// Applier options.
    pub applier: ApplierOptions,
    /// Dynamic hosts by name.
    pub hosts: BTreeMap<Hostname, HostConfig>,
    /// Users, in file order.
    pub users: Vec<UserConfig>,
    /// Notifications.
    pub notify: NotifyConfig,
    /// ACME DNS-01 challenge records.
    pub acme: AcmeOptions,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    zones: Vec<String>,
    #[serde(default)]
    paths: RawPaths,
    #[serde(default)]
    handler: RawHandler,
    #[serde(default)]
    applier: RawApplier,
    #[serde(default)]
    hosts: Vec<RawHost>,
    #[serde(default)]
    users: Vec<RawUser>,
    #[serde(default)]
    notify: NotifyConfig,
    #[serde(default)]
    acme: AcmeOptions,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPaths {
    #[serde(default = "default_queue")]
    queue: PathBuf,
    #[serde(default = "default_state")]
    state: PathBuf,
    #[serde(default = "default_private")]
    private: PathBuf,
}

impl Default for RawPaths {
    fn default() -> Self {
        RawPaths {
            queue: default_queue(),
            state: default_state(),
            private: default_private(),
        }
    }
}

fn default_queue() -> PathBuf {
    PathBuf::from("/var/lib/dyndns/queue")
}
fn default_state() -> PathBuf {
    PathBuf::from("/var/lib/dyndns/state")
}
fn default_private() -> PathBuf {
    PathBuf::from("/var/lib/dyndns/private")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHandler {
    #[serde(default)]
    proxy_secret: Option<String>,
    #[serde(default)]
    trusted_proxies: Vec<String>,
    #[serde(default)]
    user_named_hosts: bool,
    #[serde(default = "default_realm")]
    realm: String,
    #[serde(default = "default_heartbeat_max_age", with = "humantime_serde")]
    heartbeat_max_age: Duration,
    #[serde(default = "default_heard_resolution", with = "humantime_serde")]
    heard_resolution: Duration,
    #[serde(default = "default_silent_after", with = "humantime_serde")]
    silent_after: Duration,
}

impl Default for RawHandler {
    fn default() -> Self {
        RawHandler {
            proxy_secret: None,
            trusted_proxies: Vec::new(),
            user_named_hosts: false,
            realm: default_realm(),
            heartbeat_max_age: default_heartbeat_max_age(),
            heard_resolution: default_heard_resolution(),
            silent_after: default_silent_after(),
        }
    }
}

fn default_heard_resolution() -> Duration {
    Duration::from_secs(600)
}
fn default_silent_after() -> Duration {
    Duration::from_secs(2 * 86_400)
}
fn default_realm() -> String {
    "dyndns".into()
}
fn default_heartbeat_max_age() -> Duration {
    Duration::from_secs(300)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApplier {
    #[serde(default = "default_plesk")]
    plesk: PathBuf,
    #[serde(default = "default_interval", with = "humantime_serde")]
    interval: Duration,
    #[serde(default = "default_plesk_timeout", with = "humantime_serde")]
    plesk_timeout: Duration,
    #[serde(default = "default_retry_initial", with = "humantime_serde")]
    retry_initial: Duration,
    #[serde(default = "default_retry_max", with = "humantime_serde")]
    retry_max: Duration,
    #[serde(default)]
    metrics_file: Option<PathBuf>,
    #[serde(default = "default_host_change_limit")]
    host_change_limit: u32,
    #[serde(default = "default_host_change_window", with = "humantime_serde")]
    host_change_window: Duration,
}

fn default_host_change_limit() -> u32 {
    30
}
fn default_host_change_window() -> Duration {
    Duration::from_secs(3600)
}

impl Default for RawApplier {
    fn default() -> Self {
        RawApplier {
            plesk: default_plesk(),
            interval: default_interval(),
            plesk_timeout: default_plesk_timeout(),
            retry_initial: default_retry_initial(),
            retry_max: default_retry_max(),
            metrics_file: None,
            host_change_limit: default_host_change_limit(),
            host_change_window: default_host_change_window(),
        }
    }
}

fn default_plesk() -> PathBuf {
    PathBuf::from("/usr/sbin/plesk")
}
fn default_interval() -> Duration {
    Duration::from_secs(2)
}
fn default_plesk_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_retry_initial() -> Duration {
    Duration::from_secs(10)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(600)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: String,
    #[serde(default = "default_types")]
    types: Vec<String>,
    ipv6_interface_id: Option<String>,
}

fn default_types() -> Vec<String> {
    vec!["A".into(), "AAAA".into()]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: String,
    credential: String,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    admin: bool,
}

impl Config {
    /// Parses and validates a config. Relative paths are taken relative to
    /// `base_dir` (the directory of the config file) when given.
    pub fn parse(text: &str, base_dir: Option<&Path>) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let mut problems = Vec::new();
        let config = validate(raw, base_dir, &mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// The configured host `name`, if any.
    pub fn host(&self, name: &Hostname) -> Option<&HostConfig> {
        self.hosts.get(name)
    }

    /// True when `zone` is on the allow list.
    pub fn zone_allowed(&self, zone: &Hostname) -> bool {
        self.zones.contains(zone)
    }

    /// The longest allowed zone that contains `name`.
    pub fn zone_of(&self, name: &Hostname) -> Option<&Hostname> {
        zone_of(&self.zones, name)
    }

    /// Settings that are valid but probably not what the admin wants.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.handler.proxy_secret.is_none() && !self.handler.trusted_proxies.is_empty() {
            out.push(
                "handler.trusted_proxies is set but handler.proxy_secret is not: forwarded client addresses (X-Forwarded-For, X-Real-IP) are ignored, because every local user can reach the handler from a loopback address too. Set handler.proxy_secret and have nginx send it (see the README)"
                    .to_string(),
            );
        }
        out
    }

    /// The configured host whose `_acme-challenge` name `name` is.
    pub fn challenge_host(&self, name: &Hostname) -> Option<&HostConfig> {
        self.hosts.get(&name.acme_challenge_target()?)
    }

    /// The user called `name`.
    pub fn user(&self, name: &str) -> Option<&UserConfig> {
        self.users.iter().find(|u| u.name == name)
    }
}

fn challenge_problem(field: String, name: &Hostname) -> Option<ConfigProblem> {
    name.is_acme_challenge()
        .then(|| ConfigProblem::ChallengeName {
            field,
            value: name.to_string(),
        })
}

fn httpreq_path_ok(path: &str) -> bool {
    path.starts_with('/')
        && path.len() > 1
        && path.len() <= 100
        && !path.ends_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        && path[1..]
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
        && !["/nic", "/health", "/update", "/status"]
            .iter()
            .any(|taken| path == *taken || path.starts_with(&format!("{taken}/")))
}

fn zone_of<'a>(zones: &'a [Hostname], name: &Hostname) -> Option<&'a Hostname> {
    zones
        .iter()
        .filter(|z| name.is_in_zone(z))
        .max_by_key(|z| z.as_str().len())
}

fn resolve(path: PathBuf, base_dir: Option<&Path>) -> PathBuf {
    match base_dir {
        Some(base) if path.is_relative() => base.join(path),
        _ => path,
    }
}

/// Lexical containment check (`a/b` is inside `a`), after dropping `.` parts.
fn path_inside(inner: &Path, outer: &Path) -> bool {
    fn clean(p: &Path) -> Vec<std::path::Component<'_>> {
        p.components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect()
    }
    let (i, o) = (clean(inner), clean(outer));
    i.len() >= o.len() && i[..o.len()] == o[..]
}

fn validate(raw: RawConfig, base_dir: Option<&Path>, problems: &mut Vec<ConfigProblem>) -> Config {
    // zones
    let mut zones: Vec<Hostname> = Vec::new();
    if raw.zones.is_empty() {
        problems.push(ConfigProblem::NoZones);
    }
    for (index, z) in raw.zones.iter().enumerate() {
        match Hostname::parse(z) {
            Ok(zone) if zone.is_acme_challenge() => {
                problems.extend(challenge_problem(format!("zones[{index}]"), &zone))
            }
            Ok(zone) if zones.contains(&zone) => {
                problems.push(ConfigProblem::DuplicateZone(zone.to_string()))
            }
            Ok(zone) => zones.push(zone),
            Err(error) => problems.push(ConfigProblem::BadZone { index, error }),
        }
    }
    let zone_list = zones
        .iter()
        .map(Hostname::as_str)
        .collect::<Vec<_>>()
        .join(", ");

    // paths
    let paths = Paths {
        queue: resolve(raw.paths.queue, base_dir),
        state: resolve(raw.paths.state, base_dir),
        private: resolve(raw.paths.private, base_dir),
    };
    let named = [
        ("queue", &paths.queue),
        ("state", &paths.state),
        ("private", &paths.private),
    ];
    for (name, path) in named {
        if path.as_os_str().is_empty() {
            problems.push(ConfigProblem::EmptyPath(match name {
                "queue" => "paths.queue",
                "state" => "paths.state",
                _ => "paths.private",
            }));
        }
    }
    for (i, (inner, inner_path)) in named.iter().enumerate() {
        for (o, (outer, outer_path)) in named.iter().enumerate() {
            // equal paths are reported once
            let reported_already = o > i && inner_path == outer_path;
            if i != o
                && !reported_already
                && !inner_path.as_os_str().is_empty()
                && !outer_path.as_os_str().is_empty()
                && path_inside(inner_path, outer_path)
            {
                problems.push(ConfigProblem::NestedPaths {
                    inner,
                    inner_path: inner_path.display().to_string(),
                    outer,
                    outer_path: outer_path.display().to_string(),
                });
            }
        }
    }

    // handler
    let mut trusted_proxies = Vec::new();
    for value in &raw.handler.trusted_proxies {
        let parsed = value
            .parse::<IpNet>()
            .or_else(|_| value.parse::<IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => trusted_proxies.push(net.trunc()),
            Err(_) => problems.push(ConfigProblem::BadTrustedProxy(value.clone())),
        }
    }
    let realm = raw.handler.realm;
    if realm.is_empty()
        || realm.chars().count() > 64
        || realm
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        problems.push(ConfigProblem::BadRealm(realm.clone()));
    }
    if raw.handler.heartbeat_max_age.is_zero() {
        problems.push(ConfigProblem::ZeroDuration("handler.heartbeat_max_age"));
    }
    if raw.handler.heard_resolution.is_zero() {
        problems.push(ConfigProblem::ZeroDuration("handler.heard_resolution"));
    }
    if raw.handler.silent_after.is_zero() {
        problems.push(ConfigProblem::ZeroDuration("handler.silent_after"));
    } else if raw.handler.silent_after < raw.handler.heard_resolution {
        problems.push(ConfigProblem::SilentBeforeHeard {
            silent_after: raw.handler.silent_after,
            heard_resolution: raw.handler.heard_resolution,
        });
    }
    if let Some(secret) = &raw.handler.proxy_secret
        && let Some(reason) = proxy_secret_problem(secret)
    {
        problems.push(ConfigProblem::BadProxySecret(reason));
    }
    let handler = HandlerOptions {
        proxy_secret: raw.handler.proxy_secret,
        trusted_proxies,
        user_named_hosts: raw.handler.user_named_hosts,
        realm,
        heartbeat_max_age: raw.handler.heartbeat_max_age,
        heard_resolution: raw.handler.heard_resolution,
        silent_after: raw.handler.silent_after,
    };

    // applier
    let a = raw.applier;
    for (name, d) in [
        ("applier.interval", a.interval),
        ("applier.plesk_timeout", a.plesk_timeout),
        ("applier.retry_initial", a.retry_initial),
        ("applier.retry_max", a.retry_max),
        ("applier.host_change_window", a.host_change_window),
    ] {
        if d.is_zero() {
            problems.push(ConfigProblem::ZeroDuration(name));
        }
    }
    if a.retry_initial > a.retry_max {
        problems.push(ConfigProblem::RetryOrder {
            initial: a.retry_initial,
            max: a.retry_max,
        });
    }
    if a.host_change_limit as usize > HISTORY_PER_TYPE {
        problems.push(ConfigProblem::ChangeLimitTooHigh(a.host_change_limit));
    }
    if a.plesk.as_os_str().is_empty() {
        problems.push(ConfigProblem::EmptyPath("applier.plesk"));
    }
    let applier = ApplierOptions {
        plesk: resolve(a.plesk, base_dir),
        interval: a.interval,
        plesk_timeout: a.plesk_timeout,
        retry_initial: a.retry_initial,
        retry_max: a.retry_max,
        metrics_file: a.metrics_file.map(|p| resolve(p, base_dir)),
        host_change_limit: a.host_change_limit,
        host_change_window: a.host_change_window,
    };

    // hosts
    let mut hosts = BTreeMap::new();
    for (index, h) in raw.hosts.into_iter().enumerate() {
        let name = match Hostname::parse(&h.name) {
            Ok(name) => name,
            Err(error) => {
                problems.push(ConfigProblem::BadHostName { index, error });
                continue;
            }
        };
        let host = name.to_string();
        if let Some(p) = challenge_problem(format!("hosts[{index}].name"), &name) {
            problems.push(p);
            continue;
        }
        let Some(zone) = zone_of(&zones, &name).cloned() else {
            problems.push(ConfigProblem::HostOutsideZones {
                index,
                host,
                zones: zone_list.clone(),
            });
            continue;
        };
        if hosts.contains_key(&name) {
            problems.push(ConfigProblem::DuplicateHost { index, host });
            continue;
        }
        let mut types = BTreeSet::new();
        for value in &h.types {
            match RecordType::parse(value) {
                Some(t) => {
                    types.insert(t);
                }
                None => problems.push(ConfigProblem::BadType {
                    index,
                    host: host.clone(),
                    value: value.clone(),
                }),
            }
        }
        if h.types.is_empty() {
            problems.push(ConfigProblem::NoTypes {
                index,
                host: host.clone(),
            });
        }
        let ipv6_interface_id = match &h.ipv6_interface_id {
            None => None,
            Some(value) => match value.parse::<Ipv6Addr>() {
                Ok(iid) if is_valid_interface_id(iid) => {
                    if !types.contains(&RecordType::AAAA) {
                        problems.push(ConfigProblem::InterfaceIdWithoutAaaa {
                            index,
                            host: host.clone(),
                        });
                    }
                    Some(iid)
                }
                _ => {
                    problems.push(ConfigProblem::BadInterfaceId {
                        index,
                        host: host.clone(),
                        value: value.clone(),
                    });
                    None
                }
            },
        };
        hosts.insert(
            name.clone(),
            HostConfig {
                name,
                zone,
                types: types.into_iter().collect(),
                ipv6_interface_id,
            },
        );
    }

    // users
    let mut users: Vec<UserConfig> = Vec::new();
    for (index, u) in raw.users.into_iter().enumerate() {
        if let Some(reason) = user_name_problem(&u.name) {
            problems.push(ConfigProblem::BadUserName {
                index,
                value: u.name.clone(),
                reason,
            });
            continue;
        }
        if users.iter().any(|other| other.name == u.name) {
            problems.push(ConfigProblem::DuplicateUser {
                index,
                user: u.name.clone(),
            });
            continue;
        }
        let credential = match Credential::parse(&u.credential) {
            Ok(c) => c,
            Err(error) => {
                problems.push(ConfigProblem::BadCredential {
                    index,
                    user: u.name.clone(),
                    error,
                });
                Credential::dummy()
            }
        };
        let mut grants = Vec::new();
        for value in &u.hosts {
            if let Ok(grant) = Grant::parse(value)
                && let Some(p) = challenge_problem(format!("users[{index}].hosts"), grant.base())
            {
                problems.push(p);
                continue;
            }
            match Grant::parse(value) {
                Ok(grant @ Grant::Exact(_)) => {
                    if !hosts.contains_key(grant.base()) {
                        problems.push(ConfigProblem::GrantForUnknownHost {
                            index,
                            user: u.name.clone(),
                            host: grant.base().to_string(),
                        });
                    }
                    grants.push(grant);
                }
                Ok(grant @ Grant::Below(_)) => {
                    let inside = zones.iter().any(|z| grant.base().is_in_zone(z));
                    if !inside {
                        problems.push(ConfigProblem::PatternOutsideZones {
                            index,
                            user: u.name.clone(),
                            pattern: grant.to_string(),
                        });
                    }
                    grants.push(grant);
                }
                Err(error) => problems.push(ConfigProblem::BadGrant {
                    index,
                    user: u.name.clone(),
                    value: value.clone(),
                    error,
                }),
            }
        }
        let named_host = host_named_by_user(&u.name);
        let covered_by_name = handler.user_named_hosts && named_host.is_some();
        // An admin may hold no grant: an account for the status page only.
        if u.hosts.is_empty() && !covered_by_name && !u.admin {
            let hint = if named_host.is_some() {
                ", or set handler.user_named_hosts = true"
            } else {
                ""
            };
            problems.push(ConfigProblem::UserWithoutHosts {
                index,
                user: u.name.clone(),
                hint,
            });
        }
        users.push(UserConfig {
            name: u.name,
            credential,
            grants,
            admin: u.admin,
        });
    }

    // notifications
    if let Some(email) = &raw.notify.email {
        if email.server.is_empty() || email.server.contains(char::is_whitespace) {
            problems.push(ConfigProblem::BadSmtpServer(email.server.clone()));
        }
        if email.to.is_empty() {
            problems.push(ConfigProblem::NoRecipients);
        }
        if !plausible_email(&email.from) {
            problems.push(ConfigProblem::BadEmail {
                field: "from",
                value: email.from.clone(),
            });
        }
        for to in &email.to {
            if !plausible_email(to) {
                problems.push(ConfigProblem::BadEmail {
                    field: "to",
                    value: to.clone(),
                });
            }
        }
        if email.username.is_some() != email.password.is_some() {
            problems.push(ConfigProblem::HalfLogin);
        }
        if email.timeout.is_zero() {
            problems.push(ConfigProblem::ZeroDuration("notify.email.timeout"));
        }
    }
    if let Some(webhook) = &raw.notify.webhook {
        let lower = webhook.url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://"))
            || webhook.url.len() < 10
        {
            problems.push(ConfigProblem::BadWebhookUrl(webhook.url.clone()));
        }
        if webhook.timeout.is_zero() {
            problems.push(ConfigProblem::ZeroDuration("notify.webhook.timeout"));
        }
    }
    // ACME challenges
    let acme = raw.acme;
    if acme.max_values == 0 || acme.max_values > MAX_ACME_VALUES {
        problems.push(ConfigProblem::AcmeMaxValues(acme.max_values));
    }
    if acme.lifetime.is_zero() {
        problems.push(ConfigProblem::ZeroDuration("acme.lifetime"));
    }
    if !httpreq_path_ok(&acme.httpreq_path) {
        problems.push(ConfigProblem::BadHttpreqPath(acme.httpreq_path.clone()));
    }
    if acme.present_wait > MAX_PRESENT_WAIT {
        problems.push(ConfigProblem::PresentWait(acme.present_wait));
    }

    let durations = [
        ("handler.heartbeat_max_age", Some(handler.heartbeat_max_age)),
        ("handler.heard_resolution", Some(handler.heard_resolution)),
        ("handler.silent_after", Some(handler.silent_after)),
        ("applier.interval", Some(applier.interval)),
        ("applier.plesk_timeout", Some(applier.plesk_timeout)),
        ("applier.retry_initial", Some(applier.retry_initial)),
        ("applier.retry_max", Some(applier.retry_max)),
        (
            "applier.host_change_window",
            Some(applier.host_change_window),
        ),
        ("acme.lifetime", Some(acme.lifetime)),
        ("notify.retry_delay", Some(raw.notify.retry_delay)),
        (
            "notify.email.timeout",
            raw.notify.email.as_ref().map(|e| e.timeout),
        ),
        (
            "notify.webhook.timeout",
            raw.notify.webhook.as_ref().map(|w| w.timeout),
        ),
    ];
    for (name, d) in durations {
        if d.is_some_and(|d| d > MAX_DURATION) {
            problems.push(ConfigProblem::DurationTooLong(name));
        }
    }

    Config {
        zones,
        paths,
        handler,
        applier,
        hosts,
        users,
        notify: raw.notify,
        acme,
    }
}

fn proxy_secret_problem(secret: &str) -> Option<&'static str> {
    if secret.len() < MIN_PROXY_SECRET_LEN {
        Some(
            "must be at least 24 characters (use the secret line of `dyndns-applier new-credential`)",
        )
    } else if !secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.+/=~".contains(&b))
    {
        Some("may only hold letters, digits and - _ . + / = ~ (it is written into nginx's config)")
    } else {
        None
    }
}

/// What is wrong with a user name (`None` when it is fine): the rule for
/// `[[users]] name`, applied again to the `user` of every queue entry.
/// Basic authentication must be able to carry it (no `:`), and it must be
/// safe in logs, mails and on a terminal (no spaces, no control or
/// invisible characters).
pub fn user_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("must not be empty")
    } else if name.chars().count() > 128 {
        Some("is longer than 128 characters")
    } else if name.contains(':') {
        Some("must not contain ':' (HTTP Basic authentication cannot carry it)")
    } else if name.chars().any(|c| c.is_whitespace() || is_unsafe_char(c)) {
        Some("must not contain spaces, control or invisible characters")
    } else {
        None
    }
}

/// `Name <local@domain>` or `local@domain`, roughly; the mailer checks strictly.
fn plausible_email(value: &str) -> bool {
    let addr = match (value.rfind('<'), value.strip_suffix('>')) {
        (Some(start), Some(_)) => &value[start + 1..value.len() - 1],
        _ => value,
    };
    match addr.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !addr.contains(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests;
