//! `GET /status` (HTML) and `GET /status.json`: the hosts a user may update
//! (every host for an admin) with their current and pending addresses, last
//! change, last heard, a badge when the client has gone silent, the bounded
//! change history and a timeline of the last 30 days drawn as inline SVG.
//!
//! Same Basic authentication as `/nic/update`, but every refusal is a 401
//! with the challenge, so a browser asks again instead of showing a
//! `badauth` page; failures are logged in the line fail2ban matches. The
//! page is rendered here, in one piece, with no script, no external asset
//! and a Content-Security-Policy that allows neither; every value is
//! escaped for the context it lands in. Cost: the user's view file, one
//! listing of `queue/new/`, and one host record per shown host (plus the
//! host's view file when the user's file does not list it inline, and the
//! listing of `view/hosts/` for an admin).

use std::collections::BTreeSet;
use std::fmt::Write;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use base64::Engine;
use dyndns_core::authorization::may_update;
use dyndns_core::basic_auth::parse_basic_auth;
use dyndns_core::credential::Credential;
use dyndns_core::status::{
    HostSources, HostStatus, StatusReport, TIMELINE_WINDOW, TimelineRow, Viewer, rough_duration,
};
use dyndns_core::view::{HostView, UserView};
use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};

use crate::endpoint::{
    Reply, RequestParts, auth_failure, challenge, client_of, server_fault, show_client,
};
use crate::storage::{Storage, StorageError};

/// Answers `GET /status` (`json` false) or `GET /status.json`.
pub fn respond(req: &RequestParts, storage: &Storage, json: bool) -> Reply {
    let user = match authenticate(req, storage) {
        Ok(user) => user,
        Err(reply) => return *reply,
    };
    let now = SystemTime::now();
    let report = match gather(storage, &user, now) {
        Ok(r) => r,
        Err(e) => return server_fault("cannot read the status", &e),
    };
    debug!(user = %user.name, hosts = report.hosts.len(), "status page");
    if json {
        let body = serde_json::to_string(&report).unwrap_or_else(|_| "{}".into());
        Reply {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("cache-control".into(), "no-store".into()),
                ("x-content-type-options".into(), "nosniff".into()),
            ],
            body: body + "\n",
        }
    } else {
        Reply {
            status: 200,
            headers: vec![
                ("content-type".into(), "text/html; charset=utf-8".into()),
                ("cache-control".into(), "no-store".into()),
                ("x-content-type-options".into(), "nosniff".into()),
                ("referrer-policy".into(), "no-referrer".into()),
                ("x-frame-options".into(), "DENY".into()),
                ("content-security-policy".into(), content_security_policy()),
            ],
            body: render_html(&report),
        }
    }
}

/// The user behind the request's credentials, or the 401 (or 500) to send.
fn authenticate(req: &RequestParts, storage: &Storage) -> Result<UserView, Box<Reply>> {
    let unauthorized = |realm_settings: &dyndns_core::view::HandlerSettings| {
        Box::new(
            Reply::text(401, "authentication required")
                .with_header("www-authenticate", challenge(realm_settings)),
        )
    };
    let credentials = req.header("authorization").map(parse_basic_auth);
    let Some(Ok(credentials)) = credentials else {
        let settings = storage
            .settings()
            .map_err(|e| Box::new(server_fault("cannot read the handler settings", &e)))?;
        let client = client_of(req, &settings);
        match credentials {
            Some(Err(e)) => auth_failure(client, "", &e.to_string()),
            _ => {
                info!(client = %show_client(client), "status page without credentials; asking for them")
            }
        }
        return Err(unauthorized(&settings));
    };
    let lookup = storage
        .user(&credentials.user)
        .map_err(|e| Box::new(server_fault("cannot read the user", &e)))?;
    let stored = Credential::parse(&lookup.user.credential).unwrap_or_else(|_| Credential::dummy());
    // Verified for unknown users too (against the decoy): the same work either way.
    let secret_ok = stored.verify(&credentials.secret);
    if !(secret_ok && lookup.known) {
        let client = client_of(req, &lookup.user.settings);
        auth_failure(client, &credentials.user, "unknown user or wrong secret");
        return Err(unauthorized(&lookup.user.settings));
    }
    Ok(lookup.user)
}

/// The status of every host `user` may see.
fn gather(
    storage: &Storage,
    user: &UserView,
    now: SystemTime,
) -> Result<StatusReport, StorageError> {
    let settings = &user.settings;
    let hosts: Vec<HostView> = match (&user.hosts, user.admin) {
        (Some(inline), false) => inline.clone(),
        _ => {
            let mut hosts = Vec::new();
            for name in storage.configured_hosts()? {
                let visible = user.admin
                    || may_update(&user.name, &user.grants, &name, settings.user_named_hosts);
                if !visible {
                    continue;
                }
                let inline = user.inline_host(&name).flatten().cloned();
                let view = match inline {
                    Some(v) => Some(v),
                    None => storage.host(&name)?,
                };
                hosts.extend(view);
            }
            hosts
        }
    };
    let names: BTreeSet<&dyndns_core::Hostname> = hosts.iter().map(|h| &h.name).collect();
    let pending = storage.pending_entries(&names).unwrap_or_else(|e| {
        warn!("status page: cannot list pending entries: {e}");
        Vec::new()
    });
    let viewer = Viewer {
        name: &user.name,
        admin: user.admin,
    };
    let statuses: Vec<HostStatus> = hosts
        .iter()
        .map(|h| {
            let record = storage.host_record(&h.name).unwrap_or_else(|e| {
                warn!("status page: {e}");
                None
            });
            HostStatus::build(
                HostSources {
                    host: &h.name,
                    types: &h.types,
                    record: record.as_ref(),
                    pending: &pending,
                    in_flux: &h.live.in_flux,
                },
                viewer,
                now,
                settings.silent_after,
            )
        })
        .collect();
    Ok(StatusReport::new(
        viewer,
        now,
        settings.silent_after,
        statuses,
    ))
}

/// Escapes text for HTML (and SVG inside HTML): element content and
/// double- or single-quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page's only style sheet (an inline `<style>` element, allowed by
/// its hash in the [`content_security_policy`]).
const STYLE: &str = ":root{color-scheme:light dark;--muted:#6e7781;--line:#d0d7de}\
body{font:16px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;margin:0 auto;max-width:52rem;padding:.75rem}\
h1{font-size:1.35rem;margin:0 0 .2rem}\
header p{margin:0;color:var(--muted)}\
.host{border:1px solid var(--line);border-radius:8px;padding:.6rem .8rem;margin:.9rem 0}\
.host h2{font-size:1.05rem;margin:0 0 .4rem;overflow-wrap:anywhere}\
.badge{display:inline-block;font-size:.78rem;font-weight:600;padding:.05rem .5rem;border-radius:1rem;margin-left:.3rem;vertical-align:middle}\
.badge.silent{background:#fff1e5;color:#8a4600;border:1px solid #f0b37e}\
.badge.limited{background:#ffebe9;color:#a40e26;border:1px solid #ff8182}\
table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:.15rem .6rem .15rem 0;vertical-align:top}\
.records,.records tbody{display:block}\
.records tr{display:flex;flex-wrap:wrap;column-gap:.6rem;align-items:baseline;padding:.1rem 0}\
.records th{flex:0 0 3rem;padding:0}.records td{padding:0}\
.addr{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;overflow-wrap:anywhere}\
.pending td{color:#9a6700}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .8rem;margin:.4rem 0}\
dt{color:var(--muted)}dd{margin:0}\
svg{display:block;width:100%;height:auto;margin:.4rem 0}\
summary{cursor:pointer;color:var(--muted)}\
.scroll{overflow-x:auto}\
.history{font-size:.85rem}.history td,.history th{border-top:1px solid var(--line);white-space:nowrap}\
.muted{color:var(--muted)}";

/// No scripts, no frames, no external anything: only the inline style
/// sheet, by its hash, even if a value escaped its escaping.
pub fn content_security_policy() -> String {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// Colours of the addresses in a timeline row, in order of appearance.
const PALETTE: [&str; 8] = [
    "#2f81f7", "#d4a72c", "#2da44e", "#cf222e", "#8250df", "#1b7c83", "#bf3989", "#7d8590",
];

fn time_attr(t: SystemTime) -> String {
    humantime::format_rfc3339(t).to_string()
}

fn utc(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replacen('T', " ", 1)
        .replace('Z', " UTC")
}

/// `<time>` showing how long ago `t` was, the exact time as its title.
fn ago(t: SystemTime, now: SystemTime) -> String {
    let text = match now.duration_since(t) {
        Ok(d) => format!("{} ago", rough_duration(d)),
        Err(e) => format!("in {}", rough_duration(e.duration())),
    };
    format!(
        "<time datetime=\"{}\" title=\"{}\">{}</time>",
        escape_html(&time_attr(t)),
        escape_html(&utc(t)),
        escape_html(&text)
    )
}

/// The whole HTML page.
pub fn render_html(report: &StatusReport) -> String {
    let now = report.generated_at;
    let mut s = String::with_capacity(4096 + report.hosts.len() * 4096);
    let silent = report.silent_hosts().count();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><title>dyndns status</title><style>{STYLE}</style></head>\n<body>\
<header><h1>Dynamic hosts</h1><p>Signed in as <b class=\"user\">{}</b>{} &middot; \
<span class=\"count\">{}</span> host{} &middot; <span class=\"silent-count\">{silent}</span> silent &middot; {}</p></header>\n<main>\n",
        escape_html(&report.user),
        if report.admin {
            " (admin: every host)"
        } else {
            ""
        },
        report.hosts.len(),
        if report.hosts.len() == 1 { "" } else { "s" },
        format_args!(
            "<time class=\"generated\" datetime=\"{}\">{}</time>",
            escape_html(&time_attr(now)),
            escape_html(&utc(now))
        ),
    );
    if report.hosts.is_empty() {
        s.push_str("<p class=\"muted\">No hosts.</p>\n");
    }
    let silent_after = Duration::from_secs(report.silent_after_seconds);
    for host in &report.hosts {
        render_host(&mut s, host, now, silent_after);
    }
    let _ = write!(
        s,
        "</main>\n<footer><p class=\"muted\">A host is marked silent when its client has not been heard from for {}. \
<a href=\"status.json\">JSON</a></p></footer>\n</body></html>\n",
        escape_html(&rough_duration(silent_after))
    );
    s
}

fn render_host(s: &mut String, host: &HostStatus, now: SystemTime, silent_after: Duration) {
    let name = escape_html(host.host.as_str());
    let _ = write!(
        s,
        "<section class=\"host\" id=\"host-{name}\" data-host=\"{name}\" data-silent=\"{}\">\n<h2><span class=\"name\">{name}</span>",
        host.silent
    );
    if host.silent {
        let text = match host.last_heard {
            Some(t) => format!(
                "silent for {}",
                rough_duration(now.duration_since(t).unwrap_or_default())
            ),
            None => "never heard".to_string(),
        };
        let _ = write!(
            s,
            "<span class=\"badge silent\" title=\"not heard from for longer than {}\">{}</span>",
            escape_html(&rough_duration(silent_after)),
            escape_html(&text)
        );
    }
    if host.limited_until.is_some() {
        s.push_str("<span class=\"badge limited\">rate limited</span>");
    }
    s.push_str("</h2>\n<table class=\"records\"><tbody>\n");
    for r in &host.records {
        let t = r.record_type.as_str();
        let _ = write!(
            s,
            "<tr class=\"current\" data-type=\"{t}\"><th scope=\"row\">{t}</th>"
        );
        match r.address {
            Some(a) => {
                let _ = write!(
                    s,
                    "<td class=\"addr\">{}</td><td>",
                    escape_html(&a.to_string())
                );
                match (r.since, r.confirmed_at) {
                    (Some(since), _) => {
                        let _ = write!(s, "since {}", ago(since, now));
                    }
                    (None, Some(c)) => {
                        let _ = write!(s, "confirmed {}", ago(c, now));
                    }
                    (None, None) => {}
                }
                if r.applying {
                    s.push_str(" <span class=\"muted\">(being applied)</span>");
                }
                s.push_str("</td></tr>\n");
            }
            None => s.push_str(
                "<td class=\"addr muted\">none</td><td class=\"muted\">nothing applied yet</td></tr>\n",
            ),
        }
        if let Some(p) = &r.pending {
            let _ = writeln!(
                s,
                "<tr class=\"pending\" data-type=\"{t}\"><th scope=\"row\"></th><td class=\"addr\">{}</td><td>queued {}</td></tr>",
                escape_html(&p.address.to_string()),
                ago(p.requested_at, now)
            );
        }
    }
    s.push_str("</tbody></table>\n<dl>");
    let when = |t: Option<SystemTime>, never: &str| match t {
        Some(t) => ago(t, now),
        None => format!("<span class=\"muted\">{never}</span>"),
    };
    let _ = write!(
        s,
        "<dt>Last change</dt><dd class=\"last-change\">{}</dd><dt>Last heard</dt><dd class=\"last-heard\">{}</dd>",
        when(host.last_change, "none recorded"),
        when(host.last_heard, "never")
    );
    if let Some(until) = host.limited_until {
        let _ = write!(
            s,
            "<dt>Rate limit</dt><dd class=\"limited-until\">changes wait until {}</dd>",
            ago(until, now)
        );
    }
    s.push_str("</dl>\n");
    render_timeline(s, host, now);
    let _ = write!(
        s,
        "<details><summary>History: <span class=\"history-count\">{}</span> change{}</summary>",
        host.history.len(),
        if host.history.len() == 1 { "" } else { "s" }
    );
    if !host.history.is_empty() {
        s.push_str("<div class=\"scroll\"><table class=\"history\"><thead><tr><th>Applied</th><th>Type</th><th>Old</th><th>New</th><th>By</th><th>Client</th></tr></thead><tbody>\n");
        for c in &host.history {
            let old: Vec<String> = c.old.iter().map(IpAddr::to_string).collect();
            let by = match (&c.user, c.repair) {
                (Some(u), _) => escape_html(u),
                (None, true) => "<span class=\"muted\">repair after a crash</span>".into(),
                (None, false) => "<span class=\"muted\">another user</span>".into(),
            };
            let _ = writeln!(
                s,
                "<tr data-type=\"{}\"><td>{}</td><td>{}</td><td class=\"addr old\">{}</td><td class=\"addr new\">{}</td><td class=\"user\">{by}</td><td class=\"addr client\">{}</td></tr>",
                c.record_type.as_str(),
                ago(c.applied_at, now),
                c.record_type.as_str(),
                escape_html(&old.join(", ")),
                escape_html(&c.new.to_string()),
                escape_html(&c.client.map(|a| a.to_string()).unwrap_or_default()),
            );
        }
        s.push_str("</tbody></table></div>");
    }
    s.push_str("</details>\n</section>\n");
}

/// Geometry of the timeline picture, in SVG user units: whole numbers (a
/// unit is 1/10 of a CSS pixel at the natural width), so no float
/// formatting code is linked into the component.
const SVG_WIDTH: u64 = 3200;
const BAR_X: u64 = 340;
const BAR_WIDTH: u64 = SVG_WIDTH - BAR_X - 40;
const ROW_HEIGHT: u64 = 180;
const BAR_HEIGHT: u64 = 110;
const TOP: u64 = 20;

/// The inline SVG timeline: one bar per record type over the last 30 days,
/// a coloured stretch per address (its title says which and when), a line
/// at each change, and a mark where the client was last heard.
fn render_timeline(s: &mut String, host: &HostStatus, now: SystemTime) {
    let start = now
        .checked_sub(TIMELINE_WINDOW)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let window = TIMELINE_WINDOW.as_secs();
    let x_of = |t: SystemTime| {
        let secs = t.duration_since(start).unwrap_or_default().as_secs();
        BAR_X + BAR_WIDTH * secs.min(window) / window
    };
    let axis_y = TOP + host.timeline.len() as u64 * ROW_HEIGHT;
    let height = axis_y + 120;
    let changes: usize = host
        .timeline
        .iter()
        .map(|r| r.segments.iter().filter(|g| g.from > start).count())
        .sum();
    let _ = write!(
        s,
        "<svg class=\"timeline\" viewBox=\"0 0 {SVG_WIDTH} {height}\" role=\"img\" aria-label=\"Addresses of {} over the last 30 days: {changes} change{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        escape_html(host.host.as_str()),
        if changes == 1 { "" } else { "s" }
    );
    for (i, row) in host.timeline.iter().enumerate() {
        render_timeline_row(s, row, TOP + i as u64 * ROW_HEIGHT, &x_of, start);
    }
    // the axis: 30, 20 and 10 days ago, now
    for (days, anchor) in [(30u64, "start"), (20, "middle"), (10, "middle"), (0, "end")] {
        let t = now
            .checked_sub(Duration::from_secs(days * 86_400))
            .unwrap_or(start);
        let label = if days == 0 {
            "now".to_string()
        } else {
            format!("{days}d ago")
        };
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"80\" text-anchor=\"{anchor}\" fill=\"#6e7781\">{label}</text>",
            x_of(t),
            axis_y + 90
        );
    }
    if let Some(heard) = host.last_heard.filter(|t| *t > start) {
        let _ = write!(
            s,
            "<path class=\"heard\" d=\"M{} {}l-30 40h60z\" fill=\"{}\"><title>last heard {}</title></path>",
            x_of(heard),
            axis_y - 20,
            if host.silent { "#bc4c00" } else { "#2da44e" },
            escape_html(&utc(heard))
        );
    }
    s.push_str("</svg>\n");
}

fn render_timeline_row(
    s: &mut String,
    row: &TimelineRow,
    y: u64,
    x_of: &dyn Fn(SystemTime) -> u64,
    start: SystemTime,
) {
    let t = row.record_type.as_str();
    let _ = write!(
        s,
        "<g class=\"row\" data-type=\"{t}\"><text x=\"0\" y=\"{}\" font-size=\"90\" fill=\"#6e7781\">{t}</text>\
<rect x=\"{BAR_X}\" y=\"{y}\" width=\"{BAR_WIDTH}\" height=\"{BAR_HEIGHT}\" fill=\"#8c959f\" fill-opacity=\"0.15\"/>",
        y + BAR_HEIGHT - 20
    );
    let mut seen: Vec<IpAddr> = Vec::new();
    for seg in &row.segments {
        let x1 = x_of(seg.from);
        let x2 = x_of(seg.to);
        if let Some(address) = seg.address {
            let index = match seen.iter().position(|a| *a == address) {
                Some(i) => i,
                None => {
                    seen.push(address);
                    seen.len() - 1
                }
            };
            let _ = write!(
                s,
                "<rect class=\"segment\" data-address=\"{}\" x=\"{x1}\" y=\"{y}\" width=\"{}\" height=\"{BAR_HEIGHT}\" fill=\"{}\"><title>{}: {} to {}</title></rect>",
                escape_html(&address.to_string()),
                x2.saturating_sub(x1).max(5),
                PALETTE[index % PALETTE.len()],
                escape_html(&address.to_string()),
                escape_html(&utc(seg.from)),
                escape_html(&utc(seg.to))
            );
        }
        if seg.from > start {
            let _ = write!(
                s,
                "<line class=\"change\" x1=\"{x1}\" x2=\"{x1}\" y1=\"{}\" y2=\"{}\" stroke=\"#24292f\" stroke-width=\"10\"/>",
                y.saturating_sub(20),
                y + BAR_HEIGHT + 20
            );
        }
    }
    s.push_str("</g>");
}

#[cfg(test)]
mod tests;
