//! The handler's ACME challenge endpoints over real HTTP (the component on
//! `wasmtime serve`): dyndns2 `txt=`, `httpreq` present/cleanup (and lego's
//! RAW shape), acme-dns `update`; every refusal in its protocol's terms, the
//! value bound counting applied and pending values, and a waiting `present`
//! that holds up nobody else.

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use dyndns_core::challenge::ChallengeValue;
use dyndns_tests::http::{Response, request};
use dyndns_tests::{
    CHALLENGE_HOME as HOME, CHALLENGE_NAS as NAS, Runtime, Server, TestEnv,
    challenge_config as config, challenge_value,
};
use test_case::test_case;

/// A deployment with a published view and the handler served; no applier
/// runs unless a test runs one, so a present waits `present_wait` (1 s).
fn setup(acme: &str) -> (TestEnv, Server) {
    setup_on(Runtime::Wasmtime, acme)
}

/// [`setup`] with the handler on `runtime`.
fn setup_on(runtime: Runtime, acme: &str) -> (TestEnv, Server) {
    let env = TestEnv::new(
        &config(acme),
        "interval = \"100ms\"\nretry_initial = \"300ms\"\nplesk_timeout = \"3s\"",
    );
    env.set_zones(&[(
        "dyn.example.com",
        &[
            ("home.dyn.example.com.", "A", "192.0.2.1"),
            ("nas.dyn.example.com.", "A", "192.0.2.2"),
            ("pc1.office.dyn.example.com.", "A", "192.0.2.3"),
        ],
    )]);
    env.publish();
    let server = env.serve_on(runtime);
    (env, server)
}

const ENABLED: &str = "enabled = true\nmax_values = 2\npresent_wait = \"1s\"";

fn post(
    server: &Server,
    path: &str,
    auth: Option<(&str, &str)>,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    request(server.port, "POST", path, auth, &all, Some(body.as_bytes()))
}

fn httpreq(server: &Server, action: &str, user: &str, fqdn: &str, value: &str) -> Response {
    post(
        server,
        &format!("/acme/{action}"),
        Some((user, "secret")),
        &[],
        &format!(r#"{{"fqdn":"{fqdn}.","value":"{value}"}}"#),
    )
}

fn dyndns2(server: &Server, user: &str, query: &str) -> Response {
    server.get(&format!("/nic/update?{query}"), Some((user, "secret")), &[])
}

fn acme_dns(server: &Server, user: &str, key: &str, body: &str) -> Response {
    post(
        server,
        "/acme/update",
        None,
        &[("X-Api-User", user), ("X-Api-Key", key)],
        body,
    )
}

fn entry_name(name: &str, value: &str) -> String {
    let tag = ChallengeValue::parse(value).unwrap().tag();
    format!("{name}_TXT-{tag}.json")
}

/// The pending TXT entry for `name` and `value`: its operation.
fn pending_op(env: &TestEnv, name: &str, value: &str) -> Option<String> {
    let bytes = fs::read(env.queue.join("new").join(entry_name(name, value))).ok()?;
    let entry: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    assert_eq!(entry["txt"]["value"], value);
    entry["txt"]["op"].as_str().map(str::to_string)
}

fn zone_txt(env: &TestEnv, name: &str) -> Vec<String> {
    env.addresses("dyn.example.com", &format!("{name}."), "TXT")
}

/// The values the view publishes for `host`'s challenge name.
fn published(env: &TestEnv, host: &str) -> Vec<String> {
    let bytes = fs::read(env.state.join(format!("view/hosts/{host}.json"))).unwrap();
    let view: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    view["live"]["challenges"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn httpreq_present_answers_once_the_value_is_in_the_zone_and_cleanup_removes_it() {
    let (env, server) = setup("enabled = true");
    let mut applier = env.spawn_applier(&["run"]);
    let (v1, v2) = (challenge_value("apex"), challenge_value("wildcard"));
    for v in [&v1, &v2] {
        let started = Instant::now();
        let r = httpreq(&server, "present", "alice", HOME, v);
        assert_eq!(r.status, 200, "{r:?}\n{}", applier.log());
        assert_eq!(r.body, format!("ok: {HOME} holds {v}\n"));
        assert!(
            zone_txt(&env, HOME).contains(v),
            "in the zone when present answers"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    assert_eq!(
        published(&env, "home.dyn.example.com"),
        vec![v1.clone(), v2.clone()],
        "oldest first"
    );
    // presenting a value the zone holds again is confirmed by the applier
    let r = httpreq(&server, "present", "alice", HOME, &v1);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(zone_txt(&env, HOME).len(), 2);
    for v in [&v1, &v2] {
        let r = httpreq(&server, "cleanup", "alice", HOME, v);
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(
            r.body,
            format!("ok: {v} is queued for removal from {HOME}\n")
        );
    }
    assert!(
        dyndns_tests::wait_for(Duration::from_secs(10), || zone_txt(&env, HOME).is_empty()),
        "{:?}",
        zone_txt(&env, HOME)
    );
    assert!(dyndns_tests::wait_for(Duration::from_secs(10), || {
        published(&env, "home.dyn.example.com").is_empty()
    }));
    // a cleanup of a value the name does not hold writes nothing
    let r = httpreq(&server, "cleanup", "alice", HOME, &v1);
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, &*format!("ok: {HOME} does not hold {v1}\n"))
    );
    applier.terminate();
    assert_eq!(applier.wait_timeout(Duration::from_secs(10)), Some(0));
    assert!(
        env.queue_files("new").is_empty(),
        "{:?}",
        env.queue_files("new")
    );
}

#[test]
fn httpreq_refusals() {
    let (env, server) = setup(ENABLED);
    let v = challenge_value("v");
    let body = format!(r#"{{"fqdn":"{HOME}.","value":"{v}"}}"#);
    // credentials
    let r = post(&server, "/acme/present", None, &[], &body);
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .is_some_and(|h| h.starts_with("Basic realm="))
    );
    let r = post(
        &server,
        "/acme/present",
        Some(("alice", "wrong")),
        &[],
        &body,
    );
    assert_eq!(r.status, 401);
    let r = post(
        &server,
        "/acme/present",
        Some(("mallory", "secret")),
        &[],
        &body,
    );
    assert_eq!(r.status, 401);
    assert!(
        server
            .log()
            .contains("authentication failed client=unknown user=\"mallory\" reason=\"unknown user or wrong secret\""),
        "the fail2ban line: {}",
        server.log()
    );
    // names the user may not set
    for (fqdn, why) in [
        (NAS, "another user's host"),
        ("home.dyn.example.com", "not a challenge name"),
        (
            "_acme-challenge.sub.home.dyn.example.com",
            "not a host alice may update",
        ),
        (
            "_acme-challenge.office.dyn.example.com",
            "a pattern does not cover its base",
        ),
        (
            "_acme-challenge.pc2.office.dyn.example.com",
            "not a configured host",
        ),
    ] {
        let r = httpreq(&server, "present", "alice", fqdn, &v);
        assert_eq!(r.status, 403, "{why}: {r:?}");
        assert!(r.body.starts_with("refused: "), "{why}: {}", r.body);
    }
    // values
    let mut trailing = v.clone();
    trailing.replace_range(42.., "B");
    for (value, why) in [
        ("", "empty"),
        ("abc", "short"),
        (&*"A".repeat(200), "oversized"),
        (&*format!("{}\\u0001", &v[..42]), "non-printable"),
        (&*format!("{}=", &v[..42]), "padding"),
        (&*trailing, "not a digest's encoding"),
    ] {
        let r = httpreq(&server, "present", "alice", HOME, value);
        assert_eq!(r.status, 400, "{why}: {r:?}");
        assert!(r.body.starts_with("bad request: "), "{why}: {}", r.body);
    }
    for bad in ["", "not json", "{}", r#"{"fqdn":"x."}"#, "[1]"] {
        let r = post(
            &server,
            "/acme/present",
            Some(("alice", "secret")),
            &[],
            bad,
        );
        assert_eq!(r.status, 400, "{bad:?}: {r:?}");
    }
    // method and path
    let r = request(
        server.port,
        "GET",
        "/acme/present",
        Some(("alice", "secret")),
        &[],
        None,
    );
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    for path in [
        "/other/present",
        "/acme/present/x",
        "/acme/remove",
        "/present",
    ] {
        let r = post(&server, path, Some(("alice", "secret")), &[], &body);
        assert_eq!(r.status, 404, "{path}: {r:?}");
    }
    assert!(
        env.queue_files("new").is_empty(),
        "nothing refused was queued: {:?}",
        env.queue_files("new")
    );
}

#[test]
fn at_most_max_values_counting_pending_and_applied_ones() {
    let (env, server) = setup(ENABLED);
    let (v1, v2, v3) = (
        challenge_value("1"),
        challenge_value("2"),
        challenge_value("3"),
    );
    // no applier: each present is queued and answered after present_wait
    for v in [&v1, &v2] {
        let started = Instant::now();
        let r = httpreq(&server, "present", "alice", HOME, v);
        assert_eq!(r.status, 202, "{r:?}");
        assert!(r.body.starts_with("accepted: "), "{}", r.body);
        assert!(started.elapsed() >= Duration::from_secs(1));
        assert_eq!(pending_op(&env, HOME, v).as_deref(), Some("present"));
    }
    let r = httpreq(&server, "present", "alice", HOME, &v3);
    assert_eq!(r.status, 409, "two pending values fill the name: {r:?}");
    assert_eq!(pending_op(&env, HOME, &v3), None);
    // applied values count the same
    env.apply_once();
    assert_eq!(zone_txt(&env, HOME).len(), 2);
    assert!(env.queue_files("new").is_empty());
    let r = httpreq(&server, "present", "alice", HOME, &v3);
    assert_eq!(r.status, 409, "two applied values fill the name: {r:?}");
    let r = dyndns2(&server, "alice", &format!("hostname={HOME}&txt={v3}"));
    assert_eq!((r.status, r.body.as_str()), (200, "numhost\n"));
    // a pending cleanup makes room
    let r = httpreq(&server, "cleanup", "alice", HOME, &v1);
    assert_eq!(r.status, 200);
    assert_eq!(pending_op(&env, HOME, &v1).as_deref(), Some("cleanup"));
    let r = httpreq(&server, "present", "alice", HOME, &v3);
    assert_eq!(r.status, 202, "{r:?}");
    env.apply_once();
    let mut want = vec![v2.clone(), v3.clone()];
    want.sort();
    assert_eq!(zone_txt(&env, HOME), want);
    // the bound is per name: bob's is empty
    let r = httpreq(&server, "present", "bob", NAS, &v1);
    assert_eq!(r.status, 202, "{r:?}");
}

#[test]
fn httpreq_raw_mode_computes_the_value() {
    let (env, server) = setup(ENABLED);
    let body = r#"{"domain":"*.home.dyn.example.com","token":"tok","keyAuth":"tok.thumbprint"}"#;
    let r = post(
        &server,
        "/acme/present",
        Some(("alice", "secret")),
        &[],
        body,
    );
    assert_eq!(r.status, 202, "{r:?}");
    let value = ChallengeValue::from_key_authorization("tok.thumbprint");
    assert_eq!(
        pending_op(&env, HOME, value.as_str()).as_deref(),
        Some("present")
    );
    let r = post(
        &server,
        "/acme/cleanup",
        Some(("alice", "secret")),
        &[],
        body,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        pending_op(&env, HOME, value.as_str()).as_deref(),
        Some("cleanup"),
        "the cleanup replaced its present"
    );
}

#[test]
fn dyndns2_txt() {
    let (env, server) = setup(ENABLED);
    let v = challenge_value("v");
    let r = dyndns2(&server, "alice", &format!("hostname={HOME}&txt={v}"));
    assert_eq!((r.status, r.body.as_str()), (200, "good\n"));
    assert_eq!(pending_op(&env, HOME, &v).as_deref(), Some("present"));
    // an empty txt= clears the name
    let r = dyndns2(&server, "alice", &format!("hostname={HOME}&txt="));
    assert_eq!((r.status, r.body.as_str()), (200, "good\n"));
    let clear = env.queue.join("new").join(format!("{HOME}_TXTCLEAR.json"));
    let entry: serde_json::Value = serde_json::from_slice(&fs::read(clear).unwrap()).unwrap();
    assert_eq!(entry["txt"]["op"], "clear");
    assert_eq!(entry["user"], "alice");
    // POST form body works too
    let w = challenge_value("w");
    let r = request(
        server.port,
        "POST",
        "/nic/update",
        Some(("alice", "secret")),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(format!("hostname={HOME}&txt={w}").as_bytes()),
    );
    assert_eq!((r.status, r.body.as_str()), (200, "good\n"));

    let before = env.queue_files("new");
    for (query, want, why) in [
        (
            format!("hostname={NAS}&txt={v}"),
            "nohost",
            "another user's host",
        ),
        (
            format!("hostname=home.dyn.example.com&txt={v}"),
            "nohost",
            "not a challenge name",
        ),
        (
            format!("hostname={HOME}&txt=short"),
            "badagent",
            "short value",
        ),
        (
            format!("hostname={HOME}&txt={}%01", &v[..42]),
            "badagent",
            "non-printable",
        ),
        (
            format!("hostname={HOME}&txt={}", "A".repeat(300)),
            "badagent",
            "oversized",
        ),
        (
            format!("hostname={HOME}&txt={v}&myip=198.51.100.7"),
            "badagent",
            "with an address",
        ),
        (
            format!("hostname={HOME},{HOME}&txt={v}"),
            "numhost",
            "two names",
        ),
        (format!("txt={v}"), "notfqdn", "no name"),
        (
            format!("hostname=bad..name&txt={v}"),
            "notfqdn",
            "not a name",
        ),
    ] {
        let r = dyndns2(&server, "alice", &query);
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, &*format!("{want}\n")),
            "{why}"
        );
    }
    let r = server.get(
        &format!("/nic/update?hostname={HOME}&txt={v}"),
        Some(("alice", "wrong")),
        &[],
    );
    assert_eq!((r.status, r.body.as_str()), (200, "badauth\n"));
    assert_eq!(env.queue_files("new"), before, "nothing refused was queued");
}

#[test]
fn acme_dns_update() {
    let (env, server) = setup(ENABLED);
    let (v1, v2, v3) = (
        challenge_value("1"),
        challenge_value("2"),
        challenge_value("3"),
    );
    // exactly what acme.sh's dns_acmedns sends
    let body = |sub: &str, v: &str| format!(r#"{{"subdomain":"{sub}", "txt": "{v}"}}"#);
    // the subdomain is the host, or its challenge name
    let r = acme_dns(
        &server,
        "alice",
        "secret",
        &body("home.dyn.example.com", &v1),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let answer: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(answer, serde_json::json!({ "txt": v1 }));
    assert!(r.body.contains(&format!("\"{v1}\"")), "what acme.sh checks");
    assert_eq!(pending_op(&env, HOME, &v1).as_deref(), Some("present"));
    let r = acme_dns(&server, "alice", "secret", &body(HOME, &v2));
    assert_eq!(r.status, 200, "{r:?}");
    env.apply_once();
    assert_eq!(
        published(&env, "home.dyn.example.com"),
        vec![v1.clone(), v2.clone()]
    );
    // acme-dns keeps the newest values: a full name drops its oldest
    let r = acme_dns(&server, "alice", "secret", &body(HOME, &v3));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(pending_op(&env, HOME, &v1).as_deref(), Some("cleanup"));
    assert_eq!(pending_op(&env, HOME, &v3).as_deref(), Some("present"));
    env.apply_once();
    let mut want = vec![v2.clone(), v3.clone()];
    want.sort();
    assert_eq!(zone_txt(&env, HOME), want);

    let before = env.queue_files("new");
    for (user, key, b, status, error) in [
        ("alice", "wrong", body(HOME, &v1), 401, "forbidden"),
        ("mallory", "secret", body(HOME, &v1), 401, "forbidden"),
        ("alice", "secret", body(NAS, &v1), 401, "forbidden"),
        (
            "alice",
            "secret",
            body("nas.dyn.example.com", &v1),
            401,
            "forbidden",
        ),
        ("alice", "secret", body(HOME, "short"), 400, "bad_txt"),
        (
            "alice",
            "secret",
            body("bad..name", &v1),
            400,
            "bad_subdomain",
        ),
        (
            "alice",
            "secret",
            "{\"subdomain\":1}".to_string(),
            400,
            "malformed_json_payload",
        ),
    ] {
        let r = acme_dns(&server, user, key, &b);
        assert_eq!(r.status, status, "{user} {b}: {r:?}");
        let answer: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(answer, serde_json::json!({ "error": error }), "{user} {b}");
    }
    let r = post(&server, "/acme/update", None, &[], &body(HOME, &v1));
    assert_eq!(r.status, 401, "no X-Api-User/X-Api-Key");
    assert_eq!(env.queue_files("new"), before, "nothing refused was queued");
}

#[test]
fn disabled_challenges() {
    let (env, server) = setup("enabled = false");
    let v = challenge_value("v");
    let r = httpreq(&server, "present", "alice", HOME, &v);
    assert_eq!(r.status, 404, "{r:?}");
    let r = acme_dns(
        &server,
        "alice",
        "secret",
        &format!(r#"{{"subdomain":"{HOME}","txt":"{v}"}}"#),
    );
    assert_eq!(r.status, 404, "{r:?}");
    let r = dyndns2(&server, "alice", &format!("hostname={HOME}&txt={v}"));
    assert_eq!((r.status, r.body.as_str()), (200, "nohost\n"));
    assert!(env.queue_files("new").is_empty());
}

#[test_case(Runtime::Wasmtime; "wasmtime")]
#[test_case(Runtime::Spin; "spin")]
fn a_waiting_present_holds_up_no_other_request(runtime: Runtime) {
    if !runtime.usable() {
        return;
    }
    let (env, server) = setup_on(runtime, "enabled = true\npresent_wait = \"3s\"");
    let port = server.port;
    let v = challenge_value("waiting");
    let waiting = thread::spawn(move || {
        let started = Instant::now();
        let r = request(
            port,
            "POST",
            "/acme/present",
            Some(("alice", "secret")),
            &[("Content-Type", "application/json")],
            Some(format!(r#"{{"fqdn":"{HOME}.","value":"{v}"}}"#).as_bytes()),
        );
        (r.status, started.elapsed())
    });
    thread::sleep(Duration::from_millis(300));
    // meanwhile: address updates and health checks are answered at once
    let mut slowest = Duration::ZERO;
    for i in 0..5 {
        let started = Instant::now();
        let r = server.get(
            &format!(
                "/nic/update?hostname=home.dyn.example.com&myip=198.51.100.{}",
                10 + i
            ),
            Some(("alice", "secret")),
            &[],
        );
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body.starts_with("good"), "{r:?}");
        slowest = slowest.max(started.elapsed());
    }
    let (status, took) = waiting.join().unwrap();
    assert_eq!(status, 202);
    assert!(took >= Duration::from_secs(3), "{took:?}");
    assert!(
        slowest < Duration::from_secs(1),
        "an update took {slowest:?} while a present waited"
    );
    eprintln!(
        "{}: while a present waited {took:?}, updates took at most {slowest:?}",
        runtime.name()
    );
    assert!(env.pending("home.dyn.example.com", "A").is_some());
}
