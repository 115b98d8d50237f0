//! The DNS-01 path with real parts: the applier's TXT changes reach the
//! Plesk emulator, which writes the zone and has BIND `named` reload it
//! through `rndc`; `dig` sees them; `pebble` validates against that
//! `named`; `lego` obtains a certificate for a host and its wildcard.
//!
//! The certificate tests go through the real handler component, served over
//! HTTP: lego's `httpreq` and `acme-dns` providers, and certbot with the
//! manual hooks the README shows.

use std::thread;
use std::time::{Duration, SystemTime};

use dyndns_tests::acme::{
    CertbotHooks, DnsServer, Httpreq, Pebble, run_certbot, run_lego, subject_alt_names,
};
use dyndns_tests::{
    RunningApplier, Runtime, Server, TestEnv, challenge_value, credential, wait_for,
};
use test_case::test_case;

const ZONE: &str = "dyn.example.com";
const HOME: &str = "_acme-challenge.home.dyn.example.com";
/// What the ACME client tests order: a host and its wildcard.
const DOMAINS: [&str; 2] = ["home.dyn.example.com", "*.home.dyn.example.com"];

fn env() -> TestEnv {
    let cred = credential("secret");
    let env = TestEnv::new(
        &format!(
            r#"
zones = ["{ZONE}"]

[[hosts]]
name = "home.dyn.example.com"

[[users]]
name = "alice"
credential = "{cred}"
hosts = ["home.dyn.example.com"]

[acme]
enabled = true
"#
        ),
        "interval = \"100ms\"\nretry_initial = \"300ms\"\nretry_max = \"2s\"\nplesk_timeout = \"10s\"",
    );
    env.set_zones(&[(
        ZONE,
        &[
            ("dyn.example.com.", "NS", "ns1.example.com."),
            ("home.dyn.example.com.", "A", "192.0.2.1"),
            ("home.dyn.example.com.", "AAAA", "2001:db8::1"),
        ],
    )]);
    env
}

/// The emulated zone served by a fresh `named` that the emulator reloads.
fn serve(env: &mut TestEnv) -> DnsServer {
    let zone_dir = env.dir.path().join("zones");
    env.write_zone_files(&zone_dir);
    let dns = DnsServer::start(&env.dir.path().join("named"), &zone_dir, &[ZONE]);
    env.publish_zones(&zone_dir, &dns.reload_command());
    dns
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Waits until `dns` answers `want` for `name`/`rtype`: `rndc reload` may
/// return before named has loaded the new file (as with Plesk).
fn served(dns: &DnsServer, name: &str, rtype: &str, want: Vec<String>) {
    let want = sorted(want);
    let ok = wait_for(Duration::from_secs(5), || {
        sorted(dns.query(name, rtype)) == want
    });
    assert!(
        ok,
        "{name} {rtype}: {:?}, want {want:?}",
        dns.query(name, rtype)
    );
}

#[test]
fn challenge_values_reach_the_dns_server() {
    let mut env = env();
    let dns = serve(&mut env);
    assert_eq!(dns.query("home.dyn.example.com", "A"), vec!["192.0.2.1"]);
    assert!(dns.query(HOME, "TXT").is_empty());

    let (v1, v2) = (challenge_value("apex"), challenge_value("wildcard"));
    env.enqueue_txt(HOME, "present", Some(&v1), "alice", SystemTime::now());
    env.enqueue_txt(HOME, "present", Some(&v2), "alice", SystemTime::now());
    env.apply_once();
    served(&dns, HOME, "TXT", vec![v1.clone(), v2.clone()]);

    env.enqueue_txt(HOME, "cleanup", Some(&v1), "alice", SystemTime::now());
    env.apply_once();
    served(&dns, HOME, "TXT", vec![v2.clone()]);

    // an address change goes the same way
    env.enqueue("home.dyn.example.com", "A", "198.51.100.7");
    env.enqueue_txt(HOME, "clear", None, "alice", SystemTime::now());
    env.apply_once();
    served(&dns, HOME, "TXT", vec![]);
    served(
        &dns,
        "home.dyn.example.com",
        "A",
        vec!["198.51.100.7".into()],
    );
    assert_eq!(
        dns.query("home.dyn.example.com", "AAAA"),
        vec!["2001:db8::1"]
    );
}

#[test]
fn a_failing_reload_is_retried() {
    let mut env = env();
    let dns = serve(&mut env);
    // point the reload at a key named does not know: rndc fails
    let mut reload = dns.reload_command();
    let bad_key = env.dir.path().join("wrong.key");
    std::fs::write(
        &bad_key,
        "key \"dyndns-test\" { algorithm hmac-sha256; secret \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"; };\n",
    )
    .unwrap();
    reload[6] = bad_key.display().to_string();
    let good = env.applier_env.pop().unwrap();
    env.applier_env.push((
        "PLESK_EMU_RELOAD".into(),
        serde_json::to_string(&reload).unwrap(),
    ));
    let v = challenge_value("x");
    env.enqueue_txt(HOME, "present", Some(&v), "alice", SystemTime::now());
    let out = env.run_applier(&["--once"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "deferred: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("reloading zone dyn.example.com failed"));
    assert!(
        dns.query(HOME, "TXT").is_empty(),
        "the server still has the old zone"
    );
    // with the reload working again, the retry finds the value in the zone
    // listing already and only the next change reloads: a present of a
    // second value brings both
    env.applier_env.pop();
    env.applier_env.push(good);
    thread::sleep(Duration::from_millis(400));
    let v2 = challenge_value("y");
    env.enqueue_txt(HOME, "present", Some(&v2), "alice", SystemTime::now());
    env.apply_once();
    served(&dns, HOME, "TXT", vec![v, v2]);
}

#[test]
fn pebble_serves_its_directory() {
    let mut env = env();
    let dns = serve(&mut env);
    let pebble = Pebble::start(&env.dir.path().join("pebble"), dns.port);
    let dir = pebble.directory().expect("directory");
    for key in ["newAccount", "newNonce", "newOrder"] {
        assert!(
            dir[key]
                .as_str()
                .is_some_and(|u| u.starts_with("https://127.0.0.1:")),
            "{key} in {dir}"
        );
    }
}

/// The `ms=` of every "is in the zone" line the handler logged: how long
/// each waiting `present` took from its durable write to the applier
/// publishing the value as in the zone.
fn present_waits(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|l| l.contains("is in the zone"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("ms="))
                .and_then(|ms| ms.parse().ok())
        })
        .collect()
}

/// No `_acme-challenge` record is left, in the emulated zone or in named.
fn no_challenge_left(env: &TestEnv, dns: &DnsServer, context: &str) {
    assert!(
        wait_for(Duration::from_secs(10), || env
            .zone(ZONE)
            .iter()
            .all(|(n, _, _)| !n.starts_with("_acme-challenge"))),
        "{:?}\n{context}",
        env.zone(ZONE),
    );
    assert!(
        wait_for(Duration::from_secs(10), || dns
            .query(HOME, "TXT")
            .is_empty()),
        "named still serves {:?}",
        dns.query(HOME, "TXT")
    );
}

/// What an ACME client test runs against: the zone served by named, pebble
/// validating through it, and a running applier that has published the
/// view.
struct Rig {
    env: TestEnv,
    dns: DnsServer,
    pebble: Pebble,
    applier: RunningApplier,
}

impl Rig {
    fn start() -> Rig {
        let mut env = env();
        let dns = serve(&mut env);
        let pebble = Pebble::start(&env.dir.path().join("pebble"), dns.port);
        let applier = env.spawn_applier(&["run"]);
        assert!(wait_for(Duration::from_secs(10), || env
            .state
            .join("view/settings.json")
            .exists()));
        Rig {
            env,
            dns,
            pebble,
            applier,
        }
    }

    /// Fails the test with the ACME client's log and the handler's and
    /// applier's.
    fn client_failed(&self, client: &str, log: &str, server: &Server) -> ! {
        panic!(
            "{client} failed:\n{log}\nhandler:\n{}\napplier:\n{}",
            server.log(),
            self.applier.log()
        )
    }

    /// Checks an order for the host and its wildcard: the certificate names
    /// both, the handler saw two presents and two cleanups, each present
    /// waited for its value to be in the zone, and no challenge record is
    /// left. Stops the applier; returns how long each present waited (ms).
    fn finish_order(mut self, cert: &std::path::Path, server: &Server) -> Vec<u64> {
        assert_eq!(subject_alt_names(cert), vec![DOMAINS[1], DOMAINS[0]]);
        let log = server.log();
        let presents = log.matches("challenge present").count();
        let cleanups = log.matches("challenge cleanup").count();
        assert_eq!((presents, cleanups), (2, 2), "{log}");
        let waits = present_waits(&log);
        assert_eq!(waits.len(), 2, "both presents waited for the zone: {log}");
        no_challenge_left(&self.env, &self.dns, &self.applier.log());
        self.applier.terminate();
        assert_eq!(self.applier.wait_timeout(Duration::from_secs(10)), Some(0));
        waits
    }
}

/// The whole path with real parts: lego (httpreq) -> the handler component
/// served by `runtime` -> queue -> applier -> Plesk emulator -> BIND ->
/// pebble's DNS-01 validation, for a host and its wildcard in one order.
#[test_case(Runtime::Wasmtime; "wasmtime")]
#[test_case(Runtime::Spin; "spin")]
fn lego_gets_a_certificate_for_a_host_and_its_wildcard(runtime: Runtime) {
    if !runtime.usable() {
        return;
    }
    let rig = Rig::start();
    let server = rig.env.serve_on(runtime);
    let endpoint = format!("http://127.0.0.1:{}/acme", server.port);
    let cert = run_lego(
        &rig.env.dir.path().join("lego"),
        &rig.pebble,
        &rig.dns,
        &Httpreq {
            endpoint: &endpoint,
            username: "alice",
            password: "secret",
        },
        &DOMAINS,
    )
    .unwrap_or_else(|log| rig.client_failed("lego", &log, &server));
    let waits = rig.finish_order(&cert, &server);
    let slowest = waits.iter().max().copied().unwrap_or_default();
    assert!(slowest < 10_000, "present -> in the zone took {slowest} ms");
    eprintln!(
        "{}: present -> in the zone: {waits:?} ms (applier interval 100 ms)",
        runtime.name()
    );
}

/// certbot with the manual hooks the README shows (`examples/acme/certbot-hook.sh`,
/// curl against the httpreq endpoint), through the real handler.
#[test]
fn certbot_with_the_example_hooks_gets_a_certificate() {
    let rig = Rig::start();
    let server = rig.env.serve();
    let netrc = rig.env.dir.path().join("netrc");
    std::fs::write(&netrc, "machine 127.0.0.1 login alice password secret\n").unwrap();
    let script = dyndns_tests::root().join("examples/acme/certbot-hook.sh");
    let url = format!("http://127.0.0.1:{}/acme", server.port);
    let cert = run_certbot(
        &rig.env.dir.path().join("certbot"),
        &rig.pebble,
        &CertbotHooks {
            script: &script,
            url: &url,
            netrc: &netrc,
        },
        &DOMAINS,
    )
    .unwrap_or_else(|log| rig.client_failed("certbot", &log, &server));
    rig.finish_order(&cert, &server);
}
