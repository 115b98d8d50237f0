//! ACME DNS-01 challenge values, set through three protocols that share one
//! set of rules: dyndns2 (`/nic/update?hostname=_acme-challenge.H&txt=V`),
//! the `httpreq` convention of lego and others (`POST <path>/present` and
//! `<path>/cleanup`) and acme-dns (`POST <path>/update`), `<path>` being
//! `acme.httpreq_path`.
//!
//! The rules: challenges must be enabled; the name must be
//! `_acme-challenge.<host>` of a configured host the user may update; the
//! value must be an ACME digest ([`ChallengeValue`]); the name may hold at
//! most `acme.max_values` values, counting those in the zone (as the
//! applier last published them) and the pending requests in the queue. A
//! `present` is written durably and then answered once the applier has
//! published the value as in the zone (the ACME client asks for validation
//! right after), or after `acme.present_wait` anyway, still queued. The
//! applier checks everything again.

use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use dyndns_core::Hostname;
use dyndns_core::answer::Code;
use dyndns_core::basic_auth::parse_basic_auth;
use dyndns_core::challenge::{ChallengeValue, may_set_challenge};
use dyndns_core::credential::Credential;
use dyndns_core::queue::{ENTRY_FORMAT, EntryKind, EntryName, TxtEntry, TxtOperation, TxtType};
use dyndns_core::request::UpdateParams;
use dyndns_core::view::{HandlerSettings, HostView, UserView};
use dyndns_core::zone_plan::apply_txt_requests;
use serde::Deserialize;
use tracing::{error, info, warn};

use crate::endpoint::{
    Reply, RequestParts, auth_failure, challenge as basic_challenge, client_of, show_client,
};
use crate::storage::{Storage, StorageError};

/// How often a waiting `present` looks at the published view.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// What to do at an `_acme-challenge` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Add a value.
    Present(ChallengeValue),
    /// Remove a value.
    Cleanup(ChallengeValue),
    /// Remove every value of the name.
    Clear,
}

/// What a present does when the name already holds `max_values` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WhenFull {
    /// Refuse it (dyndns2, httpreq: the client cleans up after itself).
    Refuse,
    /// Remove the oldest value first (acme-dns, whose clients never clean up).
    DropOldest,
}

/// Why a challenge request is refused.
#[derive(Debug)]
pub enum Refusal {
    /// `acme.enabled` is off.
    Disabled,
    /// The name is not `_acme-challenge.<host>`.
    NotChallengeName(Hostname),
    /// The user may not set this name, or its host is not configured.
    NotPermitted(Hostname),
    /// The name holds the most values allowed.
    TooMany {
        /// The name.
        name: Hostname,
        /// `acme.max_values`.
        max: usize,
    },
    /// A file could not be read or written.
    Storage(StorageError),
}

impl From<StorageError> for Refusal {
    fn from(e: StorageError) -> Self {
        Refusal::Storage(e)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Disabled => f.write_str("ACME challenges are not enabled on this server"),
            Refusal::NotChallengeName(name) => {
                write!(f, "{name} is not an _acme-challenge name")
            }
            Refusal::NotPermitted(name) => write!(f, "you may not set TXT records at {name}"),
            Refusal::TooMany { name, max } => write!(
                f,
                "{name} already holds {max} values, the most allowed; clean one up first"
            ),
            Refusal::Storage(e) => write!(f, "{e}"),
        }
    }
}

/// What became of an accepted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// A present whose value the zone holds (the applier has taken the
    /// request and published the value).
    Live,
    /// A present queued durably but not in the zone within `present_wait`.
    Queued,
    /// A cleanup or clear, queued durably.
    Written,
    /// A cleanup of a value the name does not hold: nothing to do.
    NothingToDo,
}

/// An authenticated user's challenge request.
struct Requester<'a> {
    storage: &'a Storage,
    user: &'a UserView,
    client: Option<IpAddr>,
}

impl Requester<'_> {
    fn settings(&self) -> &HandlerSettings {
        &self.user.settings
    }

    /// The host view of `host` (inline in the user's file, or its own file).
    fn host(&self, host: &Hostname) -> Result<Option<HostView>, StorageError> {
        match self.user.inline_host(host) {
            Some(found) => Ok(found.cloned()),
            None => self.storage.host(host),
        }
    }

    /// Checks and carries out `op` at `name`.
    fn set(&self, name: &Hostname, op: Operation, when_full: WhenFull) -> Result<Done, Refusal> {
        let acme = &self.settings().acme;
        if !acme.enabled {
            return Err(Refusal::Disabled);
        }
        let Some(target) = name.acme_challenge_target() else {
            return Err(Refusal::NotChallengeName(name.clone()));
        };
        let permitted = may_set_challenge(
            &self.user.name,
            &self.user.grants,
            name,
            self.settings().user_named_hosts,
        );
        let host = if permitted { self.host(&target)? } else { None };
        let Some(host) = host else {
            return Err(Refusal::NotPermitted(name.clone()));
        };
        let live = &host.live.challenges;
        let pending = self.storage.pending_txt(name)?;
        let now = SystemTime::now();
        match op {
            Operation::Present(value) => {
                let mut values = live.clone();
                apply_txt_requests(
                    name,
                    &mut values,
                    pending.iter().map(|e| &e.txt),
                    acme.max_values,
                );
                if !values.contains(&value.to_string()) && values.len() >= acme.max_values {
                    let oldest = values
                        .iter()
                        .find_map(|v| ChallengeValue::parse(v).ok())
                        .filter(|_| when_full == WhenFull::DropOldest);
                    let Some(oldest) = oldest else {
                        return Err(Refusal::TooMany {
                            name: name.clone(),
                            max: acme.max_values,
                        });
                    };
                    // Applied before the present: requests apply in time order.
                    let earlier = now.checked_sub(Duration::from_millis(1)).unwrap_or(now);
                    self.write(name, TxtOperation::Cleanup { value: oldest }, earlier)?;
                }
                // Written even when the zone holds the value already: a
                // cleanup of it may be in the applier's hands right now,
                // which the handler cannot see.
                let present = TxtOperation::Present {
                    value: value.clone(),
                };
                let entry = EntryName::pending(name, present.kind());
                self.write(name, present, now)?;
                Ok(self.wait_live(&target, &value, &entry, acme.present_wait))
            }
            Operation::Cleanup(value) => {
                let tag = EntryKind::Txt(value.tag());
                let known = live.iter().any(|v| v == value.as_str())
                    || pending.iter().any(|e| e.txt.kind() == tag);
                if !known {
                    return Ok(Done::NothingToDo);
                }
                self.write(name, TxtOperation::Cleanup { value }, now)?;
                Ok(Done::Written)
            }
            Operation::Clear => {
                self.write(name, TxtOperation::Clear {}, now)?;
                Ok(Done::Written)
            }
        }
    }

    /// Writes one TXT entry durably.
    fn write(
        &self,
        name: &Hostname,
        txt: TxtOperation,
        requested_at: SystemTime,
    ) -> Result<(), StorageError> {
        let entry = TxtEntry {
            format: ENTRY_FORMAT,
            host: name.clone(),
            record_type: TxtType::TXT,
            txt,
            requested_at,
            user: self.user.name.clone(),
            client: self.client,
        };
        self.storage.write_txt_entry(&entry)?;
        info!(
            user = %self.user.name,
            client = %show_client(self.client),
            name = %name,
            "challenge {} queued",
            entry.txt
        );
        Ok(())
    }

    /// Waits until the applier has taken the pending entry `entry` and the
    /// view shows `value` at `host`'s challenge name, at most `limit`. (The
    /// applier publishes a name's values before it removes the entries it
    /// applied, and one batch runs at a time: once the entry has left
    /// `new/`, the view reflects every earlier request.) Blocks this request
    /// only: the runtime serves others meanwhile.
    fn wait_live(
        &self,
        host: &Hostname,
        value: &ChallengeValue,
        entry: &str,
        limit: Duration,
    ) -> Done {
        let started = Instant::now();
        loop {
            let elapsed = started.elapsed();
            if elapsed >= limit {
                warn!(
                    user = %self.user.name,
                    host = %host,
                    "challenge value {value} is not in the zone after {}s; answering anyway, it stays queued",
                    limit.as_secs()
                );
                return Done::Queued;
            }
            std::thread::sleep(POLL_INTERVAL.min(limit - elapsed));
            if self.storage.is_pending(entry) {
                continue;
            }
            match self.storage.host(host) {
                Ok(Some(view)) if view.live.challenges.iter().any(|v| v == value.as_str()) => {
                    info!(
                        user = %self.user.name,
                        host = %host,
                        ms = started.elapsed().as_millis() as u64,
                        "challenge value {value} is in the zone"
                    );
                    return Done::Live;
                }
                Ok(_) => {}
                Err(e) => warn!("reading the view while waiting for a challenge value: {e}"),
            }
        }
    }
}

/// Checks a user name and secret; `Err` holds the reply for a failure (after
/// the fail2ban log line).
fn authenticate(
    req: &RequestParts,
    storage: &Storage,
    name: &str,
    secret: &str,
    refused: impl FnOnce(&HandlerSettings) -> Reply,
) -> Result<(UserView, Option<IpAddr>), Reply> {
    let lookup = storage
        .user(name)
        .map_err(|e| server_error("cannot read the user", &e))?;
    let client = client_of(req, &lookup.user.settings);
    let stored = Credential::parse(&lookup.user.credential).unwrap_or_else(|_| Credential::dummy());
    // Verified for unknown users too (against the decoy): the same work either way.
    let secret_ok = stored.verify(secret);
    if !(secret_ok && lookup.known) {
        auth_failure(client, name, "unknown user or wrong secret");
        return Err(refused(&lookup.user.settings));
    }
    Ok((lookup.user, client))
}

fn server_error(what: &str, err: &dyn std::fmt::Display) -> Reply {
    error!("{what}: {err}");
    Reply::text(500, "server error")
}

// ---------------------------------------------------------------- dyndns2

/// Answers a dyndns2 update carrying `txt` for an authenticated user: one
/// `_acme-challenge` host name, no address; a value adds it, an empty `txt`
/// removes every value of the name. Answers: `good`; `nohost` for a name
/// the user may not set (or challenges off); `notfqdn`, `numhost` for a
/// missing or extra host name; `badagent` for an address beside `txt` or a
/// value that is not an ACME digest; `numhost` when the name holds
/// `acme.max_values` values already.
pub fn dyndns2(
    storage: &Storage,
    user: &UserView,
    client: Option<IpAddr>,
    params: &UpdateParams,
    txt: &str,
) -> Reply {
    let refuse = |code: Code, reason: &str| {
        warn!(user = %user.name, client = %show_client(client), reason = %reason.escape_debug(), "challenge refused: {}", code.as_str());
        Reply::text(200, code.as_str())
    };
    if params.mentions_address() {
        return refuse(Code::BadAgent, "txt= cannot be combined with an address");
    }
    let name = match params.hostnames.as_slice() {
        [] => return refuse(Code::NotFqdn, "no hostname given"),
        [one] => one,
        _ => return refuse(Code::NumHost, "txt= takes exactly one hostname"),
    };
    let Ok(name) = Hostname::parse(name) else {
        return refuse(Code::NotFqdn, "the hostname is not a valid name");
    };
    let op = if txt.is_empty() {
        Operation::Clear
    } else {
        match ChallengeValue::parse(txt) {
            Ok(v) => Operation::Present(v),
            Err(e) => return refuse(Code::BadAgent, &e.to_string()),
        }
    };
    let requester = Requester {
        storage,
        user,
        client,
    };
    match requester.set(&name, op, WhenFull::Refuse) {
        Ok(_) => Reply::text(200, "good"),
        Err(Refusal::Storage(e)) => {
            error!("challenge request failed: {e}");
            Reply::text(500, Code::ServerError.as_str())
        }
        Err(r @ Refusal::TooMany { .. }) => refuse(Code::NumHost, &r.to_string()),
        Err(r) => refuse(Code::NoHost, &r.to_string()),
    }
}

// ------------------------------------------------- httpreq and acme-dns

/// Which protocol a path under `acme.httpreq_path` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// `httpreq` `present`.
    Present,
    /// `httpreq` `cleanup`.
    Cleanup,
    /// acme-dns `update`.
    AcmeDnsUpdate,
}

/// Answers `path` when it is one of the challenge endpoints
/// (`<acme.httpreq_path>/present`, `/cleanup`, `/update` while challenges
/// are enabled); `None` for every other path.
pub fn respond(req: &RequestParts, path: &str, storage: &Storage) -> Option<Reply> {
    let (base, last) = path.rsplit_once('/')?;
    let endpoint = match last {
        "present" => Endpoint::Present,
        "cleanup" => Endpoint::Cleanup,
        "update" => Endpoint::AcmeDnsUpdate,
        _ => return None,
    };
    if base.is_empty() {
        return None;
    }
    // Only paths of this shape pay for reading the settings.
    let settings = match storage.settings() {
        Ok(s) => s,
        Err(e) => return Some(server_error("cannot read the handler settings", &e)),
    };
    if !settings.acme.enabled || base != settings.acme.httpreq_path {
        return None;
    }
    if req.method != "POST" {
        let mut reply = Reply::text(405, "method not allowed: POST");
        reply.headers.push(("allow".into(), "POST".into()));
        return Some(reply);
    }
    Some(match endpoint {
        Endpoint::Present => httpreq(req, storage, &settings, true),
        Endpoint::Cleanup => httpreq(req, storage, &settings, false),
        Endpoint::AcmeDnsUpdate => acme_dns(req, storage),
    })
}

/// The JSON body of an `httpreq` request: `{"fqdn", "value"}`, or lego's
/// `HTTPREQ_MODE=RAW` shape `{"domain", "token", "keyAuth"}`.
#[derive(Debug, Deserialize)]
struct HttpreqBody {
    fqdn: Option<String>,
    value: Option<String>,
    domain: Option<String>,
    /// lego's RAW mode also sends `token`, which the value does not need
    /// (unknown fields are ignored).
    #[serde(rename = "keyAuth")]
    key_auth: Option<String>,
}

/// Reads the name and value of an `httpreq` body.
fn httpreq_target(body: &[u8]) -> Result<(Hostname, ChallengeValue), String> {
    const SHAPE: &str = "expected JSON {\"fqdn\": \"_acme-challenge.<host>.\", \"value\": \"<digest>\"} or lego's RAW {\"domain\", \"token\", \"keyAuth\"}";
    let body: HttpreqBody = serde_json::from_slice(body).map_err(|e| format!("{SHAPE}: {e}"))?;
    let (name, value) = match body {
        HttpreqBody {
            fqdn: Some(fqdn),
            value: Some(value),
            ..
        } => {
            let value = ChallengeValue::parse(&value).map_err(|e| e.to_string())?;
            (fqdn, value)
        }
        HttpreqBody {
            domain: Some(domain),
            key_auth: Some(key_auth),
            ..
        } => {
            let host = domain.strip_prefix("*.").unwrap_or(&domain);
            (
                format!("_acme-challenge.{host}"),
                ChallengeValue::from_key_authorization(&key_auth),
            )
        }
        _ => return Err(SHAPE.into()),
    };
    let name = Hostname::parse(name.strip_suffix('.').unwrap_or(&name))
        .map_err(|e| format!("{}: {e}", name.escape_debug()))?;
    Ok((name, value))
}

/// `POST <path>/present` and `<path>/cleanup` with Basic authentication.
/// 200 (present: the value is in the zone), 202 (present: queued, not yet
/// in the zone after `present_wait`), 400 (body or value), 401
/// (credentials), 403 (a name the user may not set), 409 (the name holds
/// `max_values` values), 500.
fn httpreq(
    req: &RequestParts,
    storage: &Storage,
    settings: &HandlerSettings,
    present: bool,
) -> Reply {
    let unauthorized = |settings: &HandlerSettings| {
        let mut reply = Reply::text(401, "unauthorized");
        reply
            .headers
            .push(("www-authenticate".into(), basic_challenge(settings)));
        reply
    };
    let Some(header) = req.header("authorization") else {
        info!(client = %show_client(client_of(req, settings)), "no credentials sent; asking for them");
        return unauthorized(settings);
    };
    let credentials = match parse_basic_auth(header) {
        Ok(c) => c,
        Err(e) => {
            auth_failure(client_of(req, settings), "", &e.to_string());
            return unauthorized(settings);
        }
    };
    let (user, client) = match authenticate(
        req,
        storage,
        &credentials.user,
        &credentials.secret,
        unauthorized,
    ) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let (name, value) = match httpreq_target(&req.body) {
        Ok(t) => t,
        Err(reason) => {
            warn!(user = %user.name, client = %show_client(client), reason = %reason.escape_debug(), "challenge refused: bad request");
            return Reply::text(400, &format!("bad request: {reason}"));
        }
    };
    let requester = Requester {
        storage,
        user: &user,
        client,
    };
    let op = if present {
        Operation::Present(value.clone())
    } else {
        Operation::Cleanup(value.clone())
    };
    match requester.set(&name, op, WhenFull::Refuse) {
        Ok(Done::Live) => Reply::text(200, &format!("ok: {name} holds {value}")),
        Ok(Done::Queued) => Reply::text(
            202,
            &format!(
                "accepted: {value} is queued for {name} but not in the zone after {}s",
                user.settings.acme.present_wait.as_secs()
            ),
        ),
        Ok(Done::Written) => Reply::text(
            200,
            &format!("ok: {value} is queued for removal from {name}"),
        ),
        Ok(Done::NothingToDo) => Reply::text(200, &format!("ok: {name} does not hold {value}")),
        Err(Refusal::Storage(e)) => server_error("challenge request failed", &e),
        Err(r) => {
            let status = match r {
                Refusal::TooMany { .. } => 409,
                _ => 403,
            };
            warn!(user = %user.name, client = %show_client(client), reason = %r, "challenge refused: {status}");
            Reply::text(status, &format!("refused: {r}"))
        }
    }
}

/// The JSON body of an acme-dns update.
#[derive(Debug, Deserialize)]
struct AcmeDnsBody {
    subdomain: String,
    txt: String,
}

fn json_reply(status: u16, value: serde_json::Value) -> Reply {
    Reply {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: value.to_string() + "\n",
    }
}

fn acme_dns_error(status: u16, error: &str) -> Reply {
    json_reply(status, serde_json::json!({ "error": error }))
}

/// acme-dns's `POST /update` under `acme.httpreq_path`: `X-Api-User` (the
/// user name), `X-Api-Key` (the secret), JSON `{"subdomain", "txt"}` where
/// `subdomain` is the host or its `_acme-challenge` name. acme-dns keeps the
/// newest values and has no cleanup: a full name loses its oldest value,
/// and values go away after `acme.lifetime`. Answers as acme-dns does:
/// 200 `{"txt": value}`; 401 `{"error": "forbidden"}`; 400 `bad_subdomain`,
/// `bad_txt` or `malformed_json_payload`.
fn acme_dns(req: &RequestParts, storage: &Storage) -> Reply {
    let forbidden = |_: &HandlerSettings| acme_dns_error(401, "forbidden");
    let header = |name: &str| {
        req.header(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
    };
    let (Some(name), Some(secret)) = (header("x-api-user"), header("x-api-key")) else {
        info!("acme-dns update without X-Api-User and X-Api-Key");
        return acme_dns_error(401, "forbidden");
    };
    let (user, client) = match authenticate(req, storage, name, secret, forbidden) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let refuse = |status: u16, error: &str, reason: &str| {
        warn!(user = %user.name, client = %show_client(client), reason = %reason.escape_debug(), "acme-dns update refused: {error}");
        acme_dns_error(status, error)
    };
    let body: AcmeDnsBody = match serde_json::from_slice(&req.body) {
        Ok(b) => b,
        Err(e) => return refuse(400, "malformed_json_payload", &e.to_string()),
    };
    let subdomain = body.subdomain.strip_suffix('.').unwrap_or(&body.subdomain);
    let Ok(host) = Hostname::parse(subdomain) else {
        return refuse(400, "bad_subdomain", subdomain);
    };
    let name = if host.is_acme_challenge() {
        Some(host)
    } else {
        host.acme_challenge_name()
    };
    let Some(name) = name else {
        return refuse(400, "bad_subdomain", subdomain);
    };
    let value = match ChallengeValue::parse(&body.txt) {
        Ok(v) => v,
        Err(e) => return refuse(400, "bad_txt", &e.to_string()),
    };
    let requester = Requester {
        storage,
        user: &user,
        client,
    };
    match requester.set(
        &name,
        Operation::Present(value.clone()),
        WhenFull::DropOldest,
    ) {
        Ok(_) => json_reply(200, serde_json::json!({ "txt": value.as_str() })),
        Err(Refusal::Storage(e)) => server_error("acme-dns update failed", &e),
        Err(r @ Refusal::TooMany { .. }) => refuse(409, "too_many_values", &r.to_string()),
        Err(r) => refuse(401, "forbidden", &r.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";

    #[test]
    fn httpreq_bodies() {
        let (name, value) = httpreq_target(
            format!(r#"{{"fqdn":"_acme-challenge.home.dyn.example.com.","value":"{V}"}}"#)
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(name.as_str(), "_acme-challenge.home.dyn.example.com");
        assert_eq!(value.as_str(), V);
        let (name, value) = httpreq_target(
            br#"{"domain":"*.home.dyn.example.com","token":"t","keyAuth":"t.thumb"}"#,
        )
        .unwrap();
        assert_eq!(name.as_str(), "_acme-challenge.home.dyn.example.com");
        assert_eq!(value, ChallengeValue::from_key_authorization("t.thumb"));
        for bad in [
            &b"not json"[..],
            br#"{"fqdn":"_acme-challenge.home.dyn.example.com."}"#,
            br#"{"fqdn":"_acme-challenge.home.dyn.example.com.","value":"short"}"#,
            br#"{"fqdn":"bad name.","value":"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"}"#,
            br#"{"domain":"home.dyn.example.com"}"#,
            br#"[]"#,
        ] {
            assert!(
                httpreq_target(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
