//! Routing and the dyndns2 conversation: `/nic/update` (and `/update`),
//! `/health`, `/status` (see [`crate::status_page`]), the ACME challenge
//! endpoints (see [`crate::challenges`]), and a protocol answer for
//! everything else. Works on plain [`RequestParts`] so it does not depend on
//! the runtime's types.

use std::net::IpAddr;
use std::time::SystemTime;

use dyndns_core::answer::{Code, HostAnswer, render_body};
use dyndns_core::basic_auth::{BasicAuthError, parse_basic_auth};
use dyndns_core::client_address::{client_address, parse_peer, proxy_proven};
use dyndns_core::config::PROXY_SECRET_HEADER;
use dyndns_core::credential::Credential;
use dyndns_core::queue::{ENTRY_FORMAT, HeardEntry, HeardType, QueueEntry};
use dyndns_core::request::{MAX_HOSTS_PER_REQUEST, UpdateParams};
use dyndns_core::update::{Requester, plan_update};
use dyndns_core::view::HandlerSettings;
use tracing::{debug, error, info, warn};

use crate::challenges;
use crate::status_page;
use crate::storage::{FileContext, Storage};

/// A request as read from the runtime.
#[derive(Debug, Clone, Default)]
pub struct RequestParts {
    /// The method, upper case.
    pub method: String,
    /// Path and query (`/nic/update?hostname=...`).
    pub target: String,
    /// Header names and raw values.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body (POST only), at most [`crate::MAX_BODY_BYTES`].
    pub body: Vec<u8>,
}

impl RequestParts {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Every value of the header `name`, in the order received.
    pub fn header_values<'a>(
        &'a self,
        name: &'a str,
    ) -> impl DoubleEndedIterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// The answer to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Reply {
    /// A plain-text reply holding one line.
    pub fn text(status: u16, line: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: format!("{line}\n"),
        }
    }

    pub(crate) fn with_header(mut self, name: &str, value: String) -> Reply {
        self.headers.push((name.into(), value));
        self
    }
}

/// Answers one request.
pub fn respond(req: &RequestParts, storage: &Storage) -> Reply {
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    match path {
        "/nic/update" | "/nic/update/" | "/update" | "/update/" => match req.method.as_str() {
            "GET" | "POST" => update(req, query, storage),
            other => {
                warn!(method = %other.escape_debug(), "update refused: method not allowed");
                Reply::text(405, "badagent").with_header("allow", "GET, POST".into())
            }
        },
        "/status" | "/status.json" => match req.method.as_str() {
            "GET" => status_page::respond(req, storage, path == "/status.json"),
            _ => Reply::text(405, "method not allowed").with_header("allow", "GET".into()),
        },
        "/health" | "/health/" => match req.method.as_str() {
            "GET" | "HEAD" => health(storage),
            _ => Reply::text(405, "method not allowed").with_header("allow", "GET".into()),
        },
        _ => challenges::respond(req, path, storage)
            .unwrap_or_else(|| Reply::text(404, "not found: the update URL is /nic/update")),
    }
}

fn health(storage: &Storage) -> Reply {
    let report = storage.health(SystemTime::now());
    let status = if report.problems.is_empty() { 200 } else { 503 };
    let body = serde_json::to_string(&report).unwrap_or_else(|_| "{}".into());
    Reply {
        status,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("cache-control".into(), "no-store".into()),
        ],
        body: body + "\n",
    }
}

/// The environment variable naming the request header in which the runtime
/// passes the peer address. Spin appends `spin-client-addr` after the
/// headers the client sent, so there the last value is the real peer; the
/// Spin manifests set this to `spin-client-addr`. Unset (as under
/// `wasmtime serve`, which passes no peer address and lets a client send a
/// `spin-client-addr` of its choosing), the handler believes no peer header.
pub const PEER_HEADER_ENV: &str = "DYNDNS_PEER_HEADER";

/// The peer address the runtime passed, if the deployment names the header
/// it uses ([`PEER_HEADER_ENV`]).
fn peer_of(req: &RequestParts) -> Option<IpAddr> {
    let header = std::env::var(PEER_HEADER_ENV).ok()?;
    req.header_values(&header)
        .last()
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(parse_peer)
}

/// The client address as far as it can be known: the runtime's peer
/// address, or the address our proxy forwarded when the request proves it
/// came through the proxy (exactly one proxy secret header, matching, and
/// the peer in `trusted_proxies` when that list is set). Several
/// `X-Forwarded-For` lines are one comma list (RFC 9110), in order.
pub(crate) fn client_of(req: &RequestParts, settings: &HandlerSettings) -> Option<IpAddr> {
    let peer = peer_of(req);
    let mut secrets = req.header_values(PROXY_SECRET_HEADER);
    let secret_ok = match (secrets.next(), secrets.next()) {
        (Some(value), None) => {
            let ok = settings.proxy_secret_matches(value);
            if !ok {
                warn!(
                    peer = %show_client(peer),
                    "a request carried a wrong proxy secret; its forwarded addresses are ignored"
                );
            }
            ok
        }
        _ => false,
    };
    let proven = proxy_proven(secret_ok, peer, &settings.trusted_proxies);
    let forwarded: Vec<&str> = req
        .header_values("x-forwarded-for")
        .filter_map(|v| std::str::from_utf8(v).ok())
        .collect();
    let forwarded = (!forwarded.is_empty()).then(|| forwarded.join(","));
    let real_ip = req
        .header_values("x-real-ip")
        .last()
        .and_then(|v| std::str::from_utf8(v).ok());
    client_address(
        peer,
        proven,
        forwarded.as_deref(),
        real_ip,
        &settings.trusted_proxies,
    )
}

pub(crate) fn show_client(client: Option<IpAddr>) -> String {
    client.map_or_else(|| "unknown".to_string(), |c| c.to_string())
}

pub(crate) fn server_fault(what: &str, err: &dyn std::fmt::Display) -> Reply {
    error!("{what}: {err}");
    Reply::text(500, Code::ServerError.as_str())
}

pub(crate) fn challenge(settings: &HandlerSettings) -> String {
    format!("Basic realm=\"{}\", charset=\"UTF-8\"", settings.realm)
}

/// Answers a request whose credentials are missing or unusable; reads the
/// settings only for this (a request with credentials finds them in the
/// user's file).
fn refuse_credentials(
    req: &RequestParts,
    storage: &Storage,
    user: &str,
    problem: Option<BasicAuthError>,
) -> Reply {
    let settings = match storage.settings() {
        Ok(s) => s,
        Err(e) => return server_fault("cannot read the handler settings", &e),
    };
    let client = client_of(req, &settings);
    match problem {
        None => {
            info!(client = %show_client(client), "no credentials sent; asking for them");
            Reply::text(401, Code::BadAuth.as_str())
                .with_header("www-authenticate", challenge(&settings))
        }
        Some(BasicAuthError::NotBasic) => {
            auth_failure(client, user, "not Basic authentication");
            Reply::text(401, Code::BadAuth.as_str())
                .with_header("www-authenticate", challenge(&settings))
        }
        Some(e) => {
            auth_failure(client, user, &e.to_string());
            Reply::text(200, Code::BadAuth.as_str())
        }
    }
}

fn update(req: &RequestParts, query: &str, storage: &Storage) -> Reply {
    // 1. credentials: one file holds the user, the settings and the user's hosts
    let Some(header) = req.header("authorization") else {
        return refuse_credentials(req, storage, "", None);
    };
    let credentials = match parse_basic_auth(header) {
        Ok(c) => c,
        Err(e) => return refuse_credentials(req, storage, "", Some(e)),
    };
    let lookup = match storage.user(&credentials.user) {
        Ok(u) => u,
        Err(e) => return server_fault("cannot read the user", &e),
    };
    let client = client_of(req, &lookup.user.settings);
    let stored = Credential::parse(&lookup.user.credential).unwrap_or_else(|_| Credential::dummy());
    // Verified for unknown users too (against the decoy): the same work either way.
    let secret_ok = stored.verify(&credentials.secret);
    if !(secret_ok && lookup.known) {
        auth_failure(client, &credentials.user, "unknown user or wrong secret");
        return Reply::text(200, Code::BadAuth.as_str());
    }
    let user = lookup.user;
    let settings = &user.settings;

    // 2. parameters
    let mut params = match UpdateParams::parse(query) {
        Ok(p) => p,
        Err(e) => return refuse(&user.name, client, &e.to_string()),
    };
    if req.method == "POST" && is_form(req) {
        let Ok(body) = std::str::from_utf8(&req.body) else {
            return refuse(&user.name, client, "request body is not UTF-8");
        };
        if let Err(e) = params.merge(body) {
            return refuse(&user.name, client, &e.to_string());
        }
    }
    if let Some(txt) = params.txt.as_deref() {
        return challenges::dyndns2(storage, &user, client, &params, txt);
    }
    if params.hostnames.is_empty() {
        info!(user = %user.name, client = %show_client(client), "update refused: no hostname given");
        return Reply::text(200, Code::NotFqdn.as_str());
    }
    if params.hostnames.len() > MAX_HOSTS_PER_REQUEST {
        info!(user = %user.name, client = %show_client(client), hosts = params.hostnames.len(), "update refused: too many hosts");
        return Reply::text(200, Code::NumHost.as_str());
    }
    let addresses = match params.addresses(client) {
        Ok(a) => a,
        Err(e) => return refuse(&user.name, client, &e.to_string()),
    };

    // 3. decide, write, answer
    let now = SystemTime::now();
    let mut ctx = FileContext {
        storage,
        user: &user,
    };
    let requester = Requester {
        name: &user.name,
        grants: &user.grants,
    };
    let plan = match plan_update(
        requester,
        settings,
        &params.hostnames,
        &addresses,
        now,
        &mut ctx,
    ) {
        Ok(p) => p,
        Err(e) => return server_fault("cannot look up hosts", &e),
    };
    if client.is_none()
        && !params.has_explicit_address()
        && plan.outcomes.iter().any(|o| o.missing_address)
    {
        // Only happens when the runtime gives no peer address (Spin always does).
        error!(user = %user.name, "the request names no address and the runtime did not pass the client address (see DYNDNS_PEER_HEADER); send myip=");
        return Reply::text(500, Code::ServerError.as_str());
    }
    for write in &plan.writes {
        let entry = QueueEntry {
            format: ENTRY_FORMAT,
            host: write.host.clone(),
            record_type: write.record_type,
            address: write.address,
            requested_at: now,
            user: user.name.clone(),
            client,
        };
        if let Err(e) = storage.write_entry(&entry) {
            return server_fault("cannot write the queue entry", &e);
        }
    }
    for host in &plan.heard {
        // The view is older than the applier's last fold: a marker that is
        // still queued and younger than the resolution already says it. One
        // stat instead of rewriting it on every request until the applier
        // runs (a rename over an existing file makes ext4 flush it).
        if storage
            .heard_marker_written(host)
            .and_then(|at| now.duration_since(at).ok())
            .is_some_and(|age| age < settings.heard_resolution)
        {
            continue;
        }
        let heard = HeardEntry {
            format: ENTRY_FORMAT,
            host: host.clone(),
            kind: HeardType::Heard,
            requested_at: now,
            user: user.name.clone(),
            client,
        };
        // Advisory: a failure here costs the status page a little freshness,
        // never the answer.
        if let Err(e) = storage.write_heard(&heard) {
            warn!("cannot record that {host} was heard: {e}");
        }
    }
    for limited in &plan.limited {
        rate_limited(client, &user.name, &limited.host, limited.until);
    }
    for outcome in &plan.outcomes {
        let host = outcome.requested.escape_debug();
        match (&outcome.answer, &outcome.reason) {
            (HostAnswer::Good(_), _) => {
                info!(user = %user.name, client = %show_client(client), host = %host, "{}", outcome.answer)
            }
            // The most common request (routers re-send their address): not an
            // event an admin needs, and a log write per request costs.
            (HostAnswer::NoChg(_), _) => {
                debug!(user = %user.name, client = %show_client(client), host = %host, "{}", outcome.answer)
            }
            (HostAnswer::Code(Code::Abuse), _) => {}
            (_, reason) => warn!(
                user = %user.name,
                client = %show_client(client),
                host = %host,
                reason = reason.as_deref().unwrap_or(""),
                "{}",
                outcome.answer
            ),
        }
    }
    Reply {
        status: 200,
        headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
        body: render_body(plan.outcomes.iter().map(|o| &o.answer)),
    }
}

fn is_form(req: &RequestParts) -> bool {
    match req.header_str("content-type") {
        None => true,
        Some(ct) => ct
            .trim()
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded"),
    }
}

/// The line a host over its change limit gets, one per request; fail2ban's
/// `dyndns-abuse` filter matches it (see `deploy/fail2ban/`).
fn rate_limited(
    client: Option<IpAddr>,
    user: &str,
    host: &dyndns_core::Hostname,
    until: SystemTime,
) {
    warn!(
        "rate limit exceeded client={} user=\"{}\" host=\"{}\" until={}",
        show_client(client),
        user.escape_debug(),
        host,
        humantime::format_rfc3339_seconds(until)
    );
}

/// The one log line fail2ban matches (see `deploy/fail2ban/`).
pub(crate) fn auth_failure(client: Option<IpAddr>, user: &str, reason: &str) {
    warn!(
        "authentication failed client={} user=\"{}\" reason=\"{}\"",
        show_client(client),
        user.escape_debug(),
        reason
    );
}

fn refuse(user: &str, client: Option<IpAddr>, reason: &str) -> Reply {
    warn!(user = %user, client = %show_client(client), reason = %reason.escape_debug(), "update refused: badagent");
    Reply::text(200, Code::BadAgent.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, target: &str) -> RequestParts {
        RequestParts {
            method: method.into(),
            target: target.into(),
            ..Default::default()
        }
    }

    fn storage() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage {
            state_dir: dir.path().join("state"),
            queue_dir: dir.path().join("queue"),
        };
        (dir, s)
    }

    #[test]
    fn routing() {
        let (_dir, s) = storage();
        assert_eq!(respond(&parts("GET", "/"), &s).status, 404);
        assert_eq!(respond(&parts("GET", "/nic/updatex"), &s).status, 404);
        let r = respond(&parts("PUT", "/nic/update?hostname=a.example.com"), &s);
        assert_eq!((r.status, r.body.as_str()), (405, "badagent\n"));
        assert!(r.headers.contains(&("allow".into(), "GET, POST".into())));
        assert_eq!(respond(&parts("POST", "/health"), &s).status, 405);
        // without a published view an update is a server fault, never a panic
        let r = respond(&parts("GET", "/update?hostname=a.example.com"), &s);
        assert_eq!((r.status, r.body.as_str()), (500, "911\n"));
        assert_eq!(respond(&parts("GET", "/health"), &s).status, 503);
        // the status page: GET only, and without a view a server fault too
        assert_eq!(respond(&parts("POST", "/status"), &s).status, 405);
        assert_eq!(respond(&parts("GET", "/status.json"), &s).status, 500);
        assert_eq!(respond(&parts("GET", "/status/x"), &s).status, 404);
    }

    #[test]
    fn header_values_keep_order_and_ignore_case() {
        let mut p = parts("GET", "/");
        p.headers = vec![
            ("Spin-Client-Addr".into(), b"1".to_vec()),
            ("x-other".into(), b"2".to_vec()),
            ("spin-client-addr".into(), b"3".to_vec()),
        ];
        let v: Vec<&[u8]> = p.header_values("spin-client-addr").collect();
        assert_eq!(v, vec![b"1".as_slice(), b"3".as_slice()]);
        assert_eq!(p.header("SPIN-CLIENT-ADDR"), Some(b"1".as_slice()));
    }
}
