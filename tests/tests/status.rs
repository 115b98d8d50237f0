//! The status page (`/status`, `/status.json`) served by the real component
//! over real HTTP, fed by the real applier (against the Plesk emulator) and
//! by hand-written state where a test needs what the applier would refuse;
//! the page is read with an HTML5 parser, as a browser reads it, and once by
//! Debian's Chromium. Also `dyndns-applier status` and the per-host metrics.
//! The page tests run on both runtimes (`NAME::test_case_1_wasmtime`,
//! `NAME::test_case_2_spin`), except those that simulate client addresses
//! with a `spin-client-addr` header, which only `wasmtime serve` believes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use dyndns_core::status::StatusReport;
use dyndns_tests::{Runtime, Server, TestEnv, credential};
use scraper::{ElementRef, Html, Selector};
use serde_json::json;
use test_case::test_case;

const ALICE: (&str, &str) = ("alice", "alice-secret-0123456789abcdef");
const BOB: (&str, &str) = ("bob", "bob-secret-0123456789abcdef012");
const ADMIN: (&str, &str) = ("carol", "carol-secret-0123456789abcdef0");
/// A configured user name that is valid (no space, no ':') and full of HTML.
const MARKUP_USER: (&str, &str) = ("<em>\"o'neil\"&amp;</em>", "markup-secret-0123456789abcdef");
const HOUR: u64 = 3_600;
const DAY: u64 = 86_400;

fn config() -> String {
    format!(
        r#"
zones = ["dyn.example.com"]

[handler]
silent_after = "2d"

[[hosts]]
name = "home.dyn.example.com"

[[hosts]]
name = "nas.dyn.example.com"
types = ["A"]

[[hosts]]
name = "office.dyn.example.com"
types = ["A"]

[[hosts]]
name = "shared.dyn.example.com"
types = ["A"]

[[users]]
name = "alice"
credential = "{}"
hosts = ["home.dyn.example.com", "shared.dyn.example.com"]

[[users]]
name = "bob"
credential = "{}"
hosts = ["nas.dyn.example.com", "shared.dyn.example.com"]

[[users]]
name = "carol"
credential = "{}"
admin = true

[[users]]
name = "<em>\"o'neil\"&amp;</em>"
credential = "{}"
hosts = ["office.dyn.example.com"]
"#,
        credential(ALICE.1),
        credential(BOB.1),
        credential(ADMIN.1),
        credential(MARKUP_USER.1),
    )
}

/// A deployment served by `wasmtime serve`.
fn setup(applier: &str) -> (TestEnv, Server) {
    setup_on(Runtime::Wasmtime, applier).expect("wasmtime serve is always usable")
}

/// A deployment served by `runtime` (`None` when Spin is absent, after a
/// loud line).
fn setup_on(runtime: Runtime, applier: &str) -> Option<(TestEnv, Server)> {
    if !runtime.usable() {
        return None;
    }
    let env = TestEnv::new(
        &config(),
        &format!("retry_initial = \"200ms\"\nretry_max = \"1s\"\n{applier}"),
    );
    env.set_zones(&[(
        "dyn.example.com",
        &[
            ("dyn.example.com.", "NS", "ns1.example.com."),
            ("home.dyn.example.com.", "A", "192.0.2.1"),
            ("home.dyn.example.com.", "AAAA", "2001:db8::1"),
            ("nas.dyn.example.com.", "A", "192.0.2.2"),
            ("office.dyn.example.com.", "A", "192.0.2.3"),
            ("shared.dyn.example.com.", "A", "192.0.2.4"),
        ],
    )]);
    env.publish();
    let server = env.serve_on(runtime);
    Some((env, server))
}

fn run_applier(env: &TestEnv) {
    env.apply_once();
}

fn update(server: &Server, who: (&str, &str), query: &str, client: &str) -> String {
    server
        .get(
            &format!("/nic/update?{query}"),
            Some(who),
            &[("spin-client-addr", &format!("{client}:4000"))],
        )
        .body
}

/// The page and its JSON twin, checked to agree.
fn status(server: &Server, who: (&str, &str)) -> (Html, StatusReport) {
    let page = server.get("/status", Some(who), &[]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let json = server.get("/status.json", Some(who), &[]);
    assert_eq!(json.status, 200, "{}", json.body);
    assert_eq!(json.header("content-type"), Some("application/json"));
    let report: StatusReport = serde_json::from_str(&json.body).expect("status.json");
    let html = Html::parse_document(&page.body);
    assert_html_matches_json(&html, &report);
    (html, report)
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).expect("selector")
}

fn text(el: ElementRef<'_>) -> String {
    el.text().collect::<String>()
}

fn one<'a>(el: ElementRef<'a>, selector: &str) -> ElementRef<'a> {
    let selector_parsed = sel(selector);
    let mut found = el.select(&selector_parsed);
    let first = found.next().unwrap_or_else(|| {
        panic!("no {selector} in {}", el.html());
    });
    assert!(
        found.next().is_none(),
        "several {selector} in {}",
        el.html()
    );
    first
}

fn datetime(el: ElementRef<'_>) -> Option<String> {
    el.select(&sel("time"))
        .next()
        .and_then(|t| t.value().attr("datetime"))
        .map(str::to_string)
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339(t).to_string()
}

/// Everything the JSON says is on the page, in the same order.
fn assert_html_matches_json(html: &Html, report: &StatusReport) {
    let root = html.root_element();
    assert_eq!(text(one(root, "header .user")), report.user);
    let sections: Vec<ElementRef<'_>> = html.select(&sel("section.host")).collect();
    let names: Vec<&str> = sections
        .iter()
        .map(|s| s.value().attr("data-host").unwrap_or_default())
        .collect();
    let expected: Vec<&str> = report.hosts.iter().map(|h| h.host.as_str()).collect();
    assert_eq!(names, expected);
    assert_eq!(
        text(one(root, "header .count")),
        report.hosts.len().to_string()
    );
    for (section, host) in sections.iter().zip(&report.hosts) {
        let name = host.host.as_str();
        assert_eq!(text(one(*section, "h2 .name")), name);
        assert_eq!(
            section.value().attr("data-silent"),
            Some(if host.silent { "true" } else { "false" }),
            "{name}"
        );
        assert_eq!(
            section.select(&sel(".badge.silent")).count(),
            usize::from(host.silent),
            "{name}"
        );
        for r in &host.records {
            let t = r.record_type.as_str();
            let row = one(*section, &format!("tr.current[data-type=\"{t}\"]"));
            let shown = text(one(row, "td.addr"));
            match r.address {
                Some(a) => assert_eq!(shown, a.to_string(), "{name} {t}"),
                None => assert_eq!(shown, "none", "{name} {t}"),
            }
            let pending: Vec<ElementRef<'_>> = section
                .select(&sel(&format!("tr.pending[data-type=\"{t}\"]")))
                .collect();
            match &r.pending {
                Some(p) => {
                    assert_eq!(pending.len(), 1, "{name} {t}");
                    assert_eq!(text(one(pending[0], "td.addr")), p.address.to_string());
                    assert_eq!(datetime(pending[0]), Some(rfc3339(p.requested_at)));
                }
                None => assert!(pending.is_empty(), "{name} {t}"),
            }
        }
        assert_eq!(
            datetime(one(*section, "dd.last-change")),
            host.last_change.map(rfc3339),
            "{name}"
        );
        assert_eq!(
            datetime(one(*section, "dd.last-heard")),
            host.last_heard.map(rfc3339),
            "{name}"
        );
        assert_eq!(
            text(one(*section, ".history-count")),
            host.history.len().to_string()
        );
        let rows: Vec<ElementRef<'_>> = section.select(&sel("table.history tbody tr")).collect();
        assert_eq!(rows.len(), host.history.len(), "{name}");
        for (row, change) in rows.iter().zip(&host.history) {
            assert_eq!(datetime(*row), Some(rfc3339(change.applied_at)));
            assert_eq!(
                row.value().attr("data-type"),
                Some(change.record_type.as_str())
            );
            assert_eq!(text(one(*row, "td.new")), change.new.to_string());
            let old: Vec<String> = change.old.iter().map(|a| a.to_string()).collect();
            assert_eq!(text(one(*row, "td.old")), old.join(", "));
            let by = match (&change.user, change.repair) {
                (Some(u), _) => u.clone(),
                (None, true) => "repair after a crash".into(),
                (None, false) => "another user".into(),
            };
            assert_eq!(text(one(*row, "td.user")), by);
            assert_eq!(
                text(one(*row, "td.client")),
                change.client.map(|c| c.to_string()).unwrap_or_default()
            );
        }
        // the timeline: one row per type, one coloured stretch per known address
        let svg = one(*section, "svg.timeline");
        for row in &host.timeline {
            let g = one(
                svg,
                &format!("g.row[data-type=\"{}\"]", row.record_type.as_str()),
            );
            let drawn: Vec<&str> = g
                .select(&sel("rect.segment"))
                .filter_map(|r| r.value().attr("data-address"))
                .collect();
            let known: Vec<String> = row
                .segments
                .iter()
                .filter_map(|s| s.address.map(|a| a.to_string()))
                .collect();
            assert_eq!(drawn, known, "{name}");
        }
    }
}

fn hosts_of(report: &StatusReport) -> Vec<&str> {
    report.hosts.iter().map(|h| h.host.as_str()).collect()
}

// wasmtime serve only: the two users' client addresses are simulated with
// spin-client-addr (Spin would append 127.0.0.1 for both).
#[test]
fn a_user_sees_only_their_hosts_and_an_admin_sees_every_host() {
    let (env, server) = setup("");
    let (_, alice) = status(&server, ALICE);
    assert_eq!(
        hosts_of(&alice),
        ["home.dyn.example.com", "shared.dyn.example.com"]
    );
    assert!(!alice.admin);
    let (_, bob) = status(&server, BOB);
    assert_eq!(
        hosts_of(&bob),
        ["nas.dyn.example.com", "shared.dyn.example.com"]
    );
    let (_, admin) = status(&server, ADMIN);
    assert!(admin.admin);
    assert_eq!(
        hosts_of(&admin),
        [
            "home.dyn.example.com",
            "nas.dyn.example.com",
            "office.dyn.example.com",
            "shared.dyn.example.com"
        ]
    );
    // nothing applied yet, nobody heard: every host is silent ("never heard")
    assert!(
        admin
            .hosts
            .iter()
            .all(|h| h.silent && h.last_heard.is_none())
    );

    // bob changes the shared host, alice her own; both applied for real
    assert_eq!(
        update(
            &server,
            BOB,
            "hostname=shared.dyn.example.com&myip=198.51.100.40",
            "203.0.113.40"
        ),
        "good 198.51.100.40\n"
    );
    assert_eq!(
        update(
            &server,
            ALICE,
            "hostname=home.dyn.example.com&myip=198.51.100.10",
            "203.0.113.10"
        ),
        "good 198.51.100.10\n"
    );
    // queued, not applied: shown as pending, and the client counts as heard
    let (_, alice) = status(&server, ALICE);
    let home = &alice.hosts[0];
    let a = &home.records[0];
    assert_eq!(a.address, None);
    assert_eq!(
        a.pending.as_ref().map(|p| p.address.to_string()).as_deref(),
        Some("198.51.100.10")
    );
    assert!(!home.silent && home.last_heard.is_some());

    run_applier(&env);
    let (alice_page, alice) = status(&server, ALICE);
    let home = &alice.hosts[0];
    assert_eq!(
        home.records[0].address.map(|a| a.to_string()).as_deref(),
        Some("198.51.100.10")
    );
    assert_eq!(home.records[0].pending, None);
    assert_eq!(home.history.len(), 1);
    assert_eq!(home.history[0].user.as_deref(), Some("alice"));
    assert_eq!(
        home.history[0].client.map(|c| c.to_string()).as_deref(),
        Some("203.0.113.10")
    );
    assert_eq!(
        home.history[0]
            .old
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>(),
        ["192.0.2.1"]
    );
    // bob's change of the shared host: alice sees that it happened, not who or from where
    let shared = &alice.hosts[1];
    assert_eq!(shared.history.len(), 1);
    assert_eq!(shared.history[0].user, None);
    assert_eq!(shared.history[0].client, None);
    assert!(!shared.history[0].repair);
    let alice_html = alice_page.html();
    let alice_json = server.get("/status.json", Some(ALICE), &[]).body;
    for secret in [
        "bob",
        "203.0.113.40",
        "nas.dyn",
        "office.dyn",
        "sha256:",
        "carol",
    ] {
        assert!(!alice_html.contains(secret), "{secret} on alice's page");
        assert!(!alice_json.contains(secret), "{secret} in alice's JSON");
    }
    // bob sees himself, the admin sees everyone
    let (_, bob) = status(&server, BOB);
    assert_eq!(bob.hosts[1].history[0].user.as_deref(), Some("bob"));
    let (_, admin) = status(&server, ADMIN);
    assert_eq!(admin.hosts[3].history[0].user.as_deref(), Some("bob"));
    assert_eq!(
        admin.hosts[0].history[0]
            .client
            .map(|c| c.to_string())
            .as_deref(),
        Some("203.0.113.10")
    );
    assert!(
        !server
            .get("/status.json", Some(ADMIN), &[])
            .body
            .contains("sha256:")
    );
}

#[test_case(Runtime::Wasmtime; "wasmtime")]
#[test_case(Runtime::Spin; "spin")]
fn without_valid_credentials_the_answer_is_401_with_the_challenge(runtime: Runtime) {
    let Some((_env, server)) = setup_on(runtime, "") else {
        return;
    };
    for target in ["/status", "/status.json"] {
        let r = server.get(target, None, &[]);
        assert_eq!(r.status, 401, "{target}: {}", r.body);
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"dyndns\", charset=\"UTF-8\"")
        );
        for who in [
            ("alice", "wrong-secret"),
            ("nobody", "whatever"),
            ("alice", ""),
            (ADMIN.0, ALICE.1),
        ] {
            let r = server.get(target, Some(who), &[("spin-client-addr", "203.0.113.66:1")]);
            assert_eq!(r.status, 401, "{target} {who:?}: {}", r.body);
            assert!(r.header("www-authenticate").is_some());
            assert!(!r.body.contains("home.dyn"), "{}", r.body);
        }
        let r = server.get(target, None, &[("Authorization", "Bearer abc")]);
        assert_eq!(r.status, 401);
        let r = server.get(target, None, &[("Authorization", "Basic !!!")]);
        assert_eq!(r.status, 401);
    }
    let r =
        dyndns_tests::http::request(server.port, "POST", "/status", Some(ALICE), &[], Some(b""));
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET"));
    // refusals are logged in the line fail2ban matches; Spin appends the
    // real peer after the header the client sent
    let client = match runtime {
        Runtime::Wasmtime => "203.0.113.66",
        Runtime::Spin => "127.0.0.1",
    };
    let line = format!(
        "authentication failed client={client} user=\"alice\" reason=\"unknown user or wrong secret\""
    );
    assert!(
        dyndns_tests::wait_for(Duration::from_secs(5), || server.log().contains(&line)),
        "{line} not in:\n{}",
        server.log()
    );
    let log = server.log();
    assert!(log.contains("user=\"nobody\""), "{log}");
}

/// What a compromised web side could put in `user`: valid by the user-name
/// rule (no space, no ':'), so the applier takes it into the history.
const QUEUE_USER: &str =
    "\"'><script>alert(document.domain)</script><img/src=x/onerror=alert(1)>&lt;";
/// What only a hand-written host record can hold (spaces, newlines, markup
/// that would close the SVG or a comment).
const RECORD_USER: &str =
    "</title></svg></table><script>alert(2)</script>\n<!-- ]]> --> & \"x\" 'y'";

#[test_case(Runtime::Wasmtime; "wasmtime")]
#[test_case(Runtime::Spin; "spin")]
fn every_value_from_a_request_or_the_queue_is_escaped(runtime: Runtime) {
    let Some((env, server)) = setup_on(runtime, "") else {
        return;
    };
    // 1. a queue entry written straight into new/ by a compromised web side
    let entry = json!({
        "format": 1,
        "host": "home.dyn.example.com",
        "type": "A",
        "address": "198.51.100.66",
        "requested_at": rfc3339(SystemTime::now()),
        "user": QUEUE_USER,
        "client": "203.0.113.66",
    });
    fs::write(
        env.queue.join("new/home.dyn.example.com_A.json"),
        serde_json::to_vec(&entry).unwrap(),
    )
    .unwrap();
    run_applier(&env);
    let record = env.host_record("home.dyn.example.com").unwrap();
    assert_eq!(record["history"][0]["user"], QUEUE_USER, "it got through");
    // 2. a host record the applier never wrote
    let now = SystemTime::now();
    write_record(
        &env,
        "nas.dyn.example.com",
        json!({
            "format": 1,
            "host": "nas.dyn.example.com",
            "a": {"address": "198.51.100.77", "confirmed_at": rfc3339(now)},
            "aaaa": null,
            "last_heard": rfc3339(now),
            "history": [{
                "type": "A", "old": ["192.0.2.2"], "new": "198.51.100.77",
                "applied_at": rfc3339(now - Duration::from_secs(HOUR)),
                "user": RECORD_USER, "client": "203.0.113.77",
            }],
        }),
    );
    let (page, report) = status(&server, ADMIN);
    let no_scripts = |html: &Html| {
        assert_eq!(html.select(&sel("script")).count(), 0, "{}", html.html());
        assert_eq!(html.select(&sel("img")).count(), 0, "{}", html.html());
        assert_eq!(html.select(&sel("[onerror], [onload]")).count(), 0);
        assert_eq!(html.select(&sel("svg")).count(), report_svgs(html));
    };
    no_scripts(&page);
    let users: Vec<String> = page.select(&sel("td.user")).map(text).collect();
    assert!(users.contains(&QUEUE_USER.to_string()), "{users:?}");
    assert!(users.contains(&RECORD_USER.to_string()), "{users:?}");
    let home = &report.hosts[0];
    assert_eq!(home.history[0].user.as_deref(), Some(QUEUE_USER));
    // 3. a configured user name full of markup, on the user's own page
    let (page, report) = status(&server, MARKUP_USER);
    no_scripts(&page);
    assert_eq!(report.user, MARKUP_USER.0);
    assert_eq!(page.select(&sel("header em")).count(), 0, "{}", page.html());
    assert_eq!(
        text(one(page.root_element(), "header .user")),
        MARKUP_USER.0
    );
}

/// Every `svg` element on the page is a timeline (no injected one).
fn report_svgs(html: &Html) -> usize {
    html.select(&sel("section.host > svg.timeline")).count()
}

fn write_record(env: &TestEnv, host: &str, record: serde_json::Value) {
    let dir = env.state.join("hosts");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join(format!("{host}.json")),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
}

#[test]
fn the_history_is_bounded_to_50_changes_per_type() {
    let (env, server) = setup("host_change_limit = 0");
    for i in 1..=55 {
        let ip = format!("198.51.100.{i}");
        env.enqueue("home.dyn.example.com", "A", &ip);
        run_applier(&env);
    }
    assert_eq!(
        env.addresses("dyn.example.com", "home.dyn.example.com.", "A"),
        ["198.51.100.55"]
    );
    let (page, report) = status(&server, ALICE);
    let home = &report.hosts[0];
    assert_eq!(home.history.len(), 50);
    assert_eq!(
        home.history[0].new.to_string(),
        "198.51.100.55",
        "newest first"
    );
    assert_eq!(
        home.history[49].new.to_string(),
        "198.51.100.6",
        "the oldest 5 are gone"
    );
    let section = one(
        page.root_element(),
        "section[data-host=\"home.dyn.example.com\"]",
    );
    assert_eq!(section.select(&sel("table.history tbody tr")).count(), 50);
    // the record itself holds no more, and a hand-written longer one is cut too
    let record = env.host_record("home.dyn.example.com").unwrap();
    assert_eq!(record["history"].as_array().unwrap().len(), 50);
    let now = SystemTime::now();
    let long: Vec<serde_json::Value> = (0..80u64)
        .map(|i| {
            json!({"type": "A", "old": [], "new": format!("198.51.100.{}", i + 100),
                   "applied_at": rfc3339(now - Duration::from_secs(DAY + 80 - i)),
                   "user": "bob", "client": null})
        })
        .collect();
    write_record(
        &env,
        "nas.dyn.example.com",
        json!({"format": 1, "host": "nas.dyn.example.com", "a": null, "aaaa": null, "history": long}),
    );
    let (_, report) = status(&server, BOB);
    assert_eq!(report.hosts[0].history.len(), 50);
    assert_eq!(report.hosts[0].history[0].new.to_string(), "198.51.100.179");
}

/// Hand-written records with a month of history: one host heard a minute
/// ago, one silent for three days, one never heard, one silent by its
/// record but heard through a pending entry.
fn month_of_state(env: &TestEnv) {
    let now = SystemTime::now();
    let ago = |secs: u64| rfc3339(now - Duration::from_secs(secs));
    let change = |t: &str, old: &[&str], new: &str, secs: u64, user: &str, client: &str| json!({"type": t, "old": old, "new": new, "applied_at": ago(secs), "user": user, "client": client});
    write_record(
        env,
        "home.dyn.example.com",
        json!({
            "format": 1, "host": "home.dyn.example.com",
            "a": {"address": "198.51.100.23", "confirmed_at": ago(60)},
            "aaaa": {"address": "2001:db8:4::23", "confirmed_at": ago(60)},
            "last_heard": ago(60),
            "history": [
                change("A", &["192.0.2.1"], "198.51.100.21", 26 * DAY, "alice", "198.51.100.21"),
                change("AAAA", &["2001:db8::1"], "2001:db8:4::21", 26 * DAY, "alice", "2001:db8:4::21"),
                change("A", &["198.51.100.21"], "198.51.100.22", 17 * DAY + 5 * HOUR, "alice", "198.51.100.22"),
                change("A", &["198.51.100.22"], "198.51.100.21", 9 * DAY, "alice", "198.51.100.21"),
                change("AAAA", &["2001:db8:4::21"], "2001:db8:4::23", 4 * DAY, "alice", "2001:db8:4::23"),
                change("A", &["198.51.100.21"], "198.51.100.23", 4 * DAY, "alice", "198.51.100.23"),
            ],
        }),
    );
    write_record(
        env,
        "nas.dyn.example.com",
        json!({
            "format": 1, "host": "nas.dyn.example.com",
            "a": {"address": "203.0.113.50", "confirmed_at": ago(3 * DAY + 2 * HOUR)},
            "aaaa": null,
            "last_heard": ago(3 * DAY + 2 * HOUR),
            "history": [
                change("A", &["192.0.2.2"], "203.0.113.50", 12 * DAY, "bob", "203.0.113.50"),
            ],
        }),
    );
    write_record(
        env,
        "shared.dyn.example.com",
        json!({
            "format": 1, "host": "shared.dyn.example.com",
            "a": {"address": "192.0.2.4", "confirmed_at": ago(6 * DAY)},
            "aaaa": null,
            "last_heard": ago(6 * DAY),
            "history": [],
        }),
    );
    // office: no record at all (never heard)
    env.enqueue("shared.dyn.example.com", "A", "198.51.100.99");
}

#[test_case(Runtime::Wasmtime; "wasmtime")]
#[test_case(Runtime::Spin; "spin")]
fn a_host_not_heard_from_for_longer_than_silent_after_gets_a_badge(runtime: Runtime) {
    let Some((env, server)) = setup_on(runtime, "") else {
        return;
    };
    month_of_state(&env);
    let (page, report) = status(&server, ADMIN);
    let silent: Vec<&str> = report.silent_hosts().map(|h| h.host.as_str()).collect();
    assert_eq!(silent, ["nas.dyn.example.com", "office.dyn.example.com"]);
    let badge = |host: &str| {
        let section = one(
            page.root_element(),
            &format!("section[data-host=\"{host}\"]"),
        );
        section.select(&sel(".badge.silent")).next().map(text)
    };
    assert_eq!(
        badge("nas.dyn.example.com").as_deref(),
        Some("silent for 3d 2h")
    );
    assert_eq!(
        badge("office.dyn.example.com").as_deref(),
        Some("never heard")
    );
    assert_eq!(badge("home.dyn.example.com"), None);
    assert_eq!(
        badge("shared.dyn.example.com"),
        None,
        "heard through its pending entry"
    );
    assert_eq!(text(one(page.root_element(), ".silent-count")), "2");
    // the timeline: A went from the zone's first address to .21, .22, .21, .23 within the month
    let home = &report.hosts[0];
    let a: Vec<String> = home.timeline[0]
        .segments
        .iter()
        .map(|s| s.address.map(|a| a.to_string()).unwrap_or_default())
        .collect();
    assert_eq!(
        a,
        [
            "192.0.2.1",
            "198.51.100.21",
            "198.51.100.22",
            "198.51.100.21",
            "198.51.100.23"
        ]
    );
    assert_eq!(home.records[0].since, Some(home.history[0].applied_at));
    // the setting reaches the page
    assert_eq!(report.silent_after_seconds, 2 * DAY);
}

/// Chromium, headless, as root needs `--no-sandbox`.
fn chromium() -> Option<PathBuf> {
    let p = dyndns_tests::program("chromium");
    if p.is_file() {
        return Some(p);
    }
    if rustix::process::geteuid().is_root() {
        panic!("chromium is missing: run scripts/test-deps.sh");
    }
    eprintln!("SKIPPED the browser test: chromium is not installed and this is not root");
    None
}

fn run_chromium(chromium: &Path, profile: &Path, args: &[&str], url: &str) -> std::process::Output {
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    if rustix::process::geteuid().is_root() {
        cmd.arg("--no-sandbox");
    }
    let out = cmd
        .args(args)
        .arg(url)
        .env("HOME", profile)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn chromium_renders_the_page_and_a_screenshot_is_saved() {
    let Some(chromium) = chromium() else {
        return;
    };
    let (env, server) = setup("");
    month_of_state(&env);
    let profile = tempfile::tempdir().unwrap();
    // Basic credentials in the URL: Chromium answers the 401 challenge with them.
    let url = format!(
        "http://{}:{}@127.0.0.1:{}/status",
        ADMIN.0, ADMIN.1, server.port
    );
    let out = run_chromium(&chromium, profile.path(), &["--dump-dom"], &url);
    let dom = Html::parse_document(&String::from_utf8_lossy(&out.stdout));
    let hosts: Vec<&str> = dom
        .select(&sel("section.host"))
        .filter_map(|s| s.value().attr("data-host"))
        .collect();
    assert_eq!(
        hosts,
        [
            "home.dyn.example.com",
            "nas.dyn.example.com",
            "office.dyn.example.com",
            "shared.dyn.example.com"
        ],
        "{}",
        dom.html()
    );
    let badges: Vec<String> = dom
        .select(&sel(
            "section[data-host=\"nas.dyn.example.com\"] .badge.silent",
        ))
        .map(text)
        .collect();
    assert_eq!(badges, ["silent for 3d 2h"]);
    // home A 5 + AAAA 3, nas 2, office none (nothing known), shared 1
    assert_eq!(dom.select(&sel("svg.timeline rect.segment")).count(), 11);

    // a phone-sized screenshot under the test output (and, on request, the README's)
    let out_dir = dyndns_tests::target_dir().join("test-output");
    fs::create_dir_all(&out_dir).unwrap();
    let shot = out_dir.join("status-page.png");
    let _ = fs::remove_file(&shot);
    run_chromium(
        &chromium,
        profile.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=412,1180",
        ],
        &url,
    );
    let png = fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, 412, "phone width");
    assert!(png.len() > 20_000, "a real picture, {} bytes", png.len());
    if std::env::var_os("DYNDNS_UPDATE_SCREENSHOT").is_some() {
        fs::copy(&shot, dyndns_tests::root().join("docs/status-page.png")).unwrap();
    }
    eprintln!("screenshot: {}", shot.display());
}

#[test]
fn applier_status_and_metrics_show_each_host() {
    let (env, _server) = setup("metrics_file = \"metrics/dyndns.prom\"");
    month_of_state(&env);
    let out = env.run_applier(&["status"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("hosts (4, 2 silent: not heard from for over 2d):"),
        "{text}"
    );
    assert!(
        text.contains("  nas.dyn.example.com  [SILENT for 3d 2h]\n"),
        "{text}"
    );
    assert!(
        text.contains("  office.dyn.example.com  [SILENT: never heard]\n    A     (nothing applied yet)\n    last change none, last heard never, 0 change(s) in the history\n"),
        "{text}"
    );
    assert!(
        text.contains("  home.dyn.example.com\n    A     198.51.100.23"),
        "{text}"
    );
    assert!(
        text.contains("since 4d ago\n    AAAA  2001:db8:4::23"),
        "{text}"
    );
    assert!(
        text.contains("last heard 1m ago, 6 change(s) in the history"),
        "{text}"
    );
    assert!(
        text.contains("    A     192.0.2.4                               confirmed 6d ago\n          pending 198.51.100.99 (queued "),
        "{text}"
    );

    // the applier applies shared's pending change and writes the per-host gauges
    run_applier(&env);
    let metrics = fs::read_to_string(env.dir.path().join("metrics/dyndns.prom")).unwrap();
    let sample = |name: &str, host: &str| -> Option<f64> {
        let prefix = format!("{name}{{host=\"{host}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.parse().expect("a number"))
    };
    let heard = |host: &str| sample("dyndns_host_last_heard_seconds", host);
    let changed = |host: &str| sample("dyndns_host_last_change_timestamp_seconds", host);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let near = |value: Option<f64>, expected: f64| {
        let v = value.unwrap_or_else(|| panic!("no sample:\n{metrics}"));
        assert!((v - expected).abs() < 60.0, "{v} vs {expected}\n{metrics}");
    };
    near(heard("home.dyn.example.com"), 60.0);
    near(heard("nas.dyn.example.com"), (3 * DAY + 2 * HOUR) as f64);
    near(heard("shared.dyn.example.com"), 0.0);
    assert_eq!(
        heard("office.dyn.example.com"),
        None,
        "never heard: no sample"
    );
    near(changed("home.dyn.example.com"), now - (4 * DAY) as f64);
    near(changed("shared.dyn.example.com"), now);
    assert_eq!(changed("office.dyn.example.com"), None);
    // the alert a silent router should fire: only nas
    let silent: Vec<&str> = ["home", "nas", "office", "shared"]
        .into_iter()
        .filter(|h| heard(&format!("{h}.dyn.example.com")).is_some_and(|s| s > (2 * DAY) as f64))
        .collect();
    assert_eq!(silent, ["nas"]);
}

#[test_case(Runtime::Wasmtime; "wasmtime")]
#[test_case(Runtime::Spin; "spin")]
fn a_user_with_more_hosts_than_the_view_inlines_sees_exactly_theirs(runtime: Runtime) {
    if !runtime.usable() {
        return;
    }
    // over 64 hosts, the user's view file lists none: the page lists the
    // view's host files and keeps those the user's grants cover
    let mut body = String::from("zones = [\"dyn.example.com\"]\n");
    for i in 0..70 {
        body.push_str(&format!(
            "[[hosts]]\nname = \"h{i}.sub.dyn.example.com\"\ntypes = [\"A\"]\n"
        ));
    }
    body.push_str("[[hosts]]\nname = \"top.dyn.example.com\"\n");
    body.push_str(&format!(
        "[[users]]\nname = \"many\"\ncredential = \"{}\"\nhosts = [\"*.sub.dyn.example.com\"]\n",
        credential(ALICE.1)
    ));
    let env = TestEnv::new(&body, "");
    env.publish();
    let file = env
        .state
        .join("view/users")
        .join(dyndns_core::view::user_file_name("many"));
    let user: serde_json::Value = serde_json::from_slice(&fs::read(file).unwrap()).unwrap();
    assert!(user["hosts"].is_null(), "no inline hosts: {user}");
    let server = env.serve_on(runtime);
    let (page, report) = status(&server, ("many", ALICE.1));
    assert_eq!(report.hosts.len(), 70);
    assert!(
        report
            .hosts
            .iter()
            .all(|h| h.host.as_str().ends_with(".sub.dyn.example.com"))
    );
    assert!(!page.html().contains("top.dyn"));
    assert_eq!(
        report.hosts[0].records.len(),
        1,
        "types from the host's view file"
    );
}
