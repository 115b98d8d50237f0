//! End to end: a real update client -> the handler served by `wasmtime
//! serve` and by Spin (every test on both: `NAME::test_case_1_wasmtime`,
//! `NAME::test_case_2_spin`) -> the queue -> the applier -> the Plesk emulator's
//! zone; then the same request answers nochg from the applied state. The
//! clients are the real ddclient and inadyn (Debian packages) and curl, plus
//! requests shaped exactly like FRITZ!Box, OPNsense and pfSense send them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, SystemTime};

use dyndns_tests::{RunningApplier, Runtime, Server, TestEnv, credential, http, wait_for};
use test_case::test_case;

const USER: &str = "alice";
const SECRET: &str = "Alice0Secret0For0The0Tests0123456";

struct Pipeline {
    env: TestEnv,
    server: Server,
    applier: RunningApplier,
}

/// The whole pipeline with the handler on `runtime`; `None` (after a loud
/// skip line) when that runtime is absent.
fn pipeline(runtime: Runtime) -> Option<Pipeline> {
    if !runtime.usable() {
        return None;
    }
    let body = format!(
        r#"
zones = ["dyn.example.com"]
[[hosts]]
name = "home.dyn.example.com"
[[hosts]]
name = "nas.dyn.example.com"
ipv6_interface_id = "::1:2:3:4"
[[hosts]]
name = "office.dyn.example.com"
types = ["A"]
[[users]]
name = "{USER}"
credential = "{}"
hosts = ["home.dyn.example.com", "nas.dyn.example.com", "office.dyn.example.com"]
"#,
        credential(SECRET)
    );
    let env = TestEnv::new(&body, "interval = \"100ms\"");
    env.set_zones(&[(
        "dyn.example.com",
        &[
            ("dyn.example.com.", "NS", "ns1.example.com."),
            ("home.dyn.example.com.", "A", "192.0.2.10"),
            ("home.dyn.example.com.", "AAAA", "2001:db8::10"),
            ("nas.dyn.example.com.", "A", "192.0.2.11"),
            ("nas.dyn.example.com.", "AAAA", "2001:db8::11"),
            ("office.dyn.example.com.", "A", "192.0.2.12"),
        ],
    )]);
    let applier = env.spawn_applier(&["run"]);
    assert!(
        wait_for(Duration::from_secs(20), || env
            .state
            .join("view/settings.json")
            .exists()
            && env.state.join("heartbeat.json").exists()),
        "{}",
        applier.log()
    );
    let server = env.serve_on(runtime);
    Some(Pipeline {
        env,
        server,
        applier,
    })
}

impl Pipeline {
    fn wait_zone(&self, name: &str, rtype: &str, want: &str) {
        let ok = wait_for(Duration::from_secs(15), || {
            self.env.addresses("dyn.example.com", name, rtype) == vec![want.to_string()]
        });
        assert!(
            ok,
            "{name} {rtype} is {:?}, wanted {want}\napplier:\n{}\nhandler:\n{}",
            self.env.addresses("dyn.example.com", name, rtype),
            self.applier.log(),
            self.server.log()
        );
    }

    fn wait_queue_empty(&self) {
        assert!(wait_for(Duration::from_secs(15), || self
            .env
            .queue_files("new")
            .is_empty()
            && self.env.queue_files("cur").is_empty()));
    }
}

#[test_case(Runtime::Wasmtime; "wasmtime")]
#[test_case(Runtime::Spin; "spin")]
fn request_to_zone_then_nochg(runtime: Runtime) {
    let Some(p) = pipeline(runtime) else {
        return;
    };
    let url = "/nic/update?hostname=home.dyn.example.com&myip=198.51.100.7";
    let r = p.server.get(url, Some((USER, SECRET)), &[]);
    assert_eq!(r.body, "good 198.51.100.7\n");
    p.wait_zone("home.dyn.example.com.", "A", "198.51.100.7");
    p.wait_queue_empty();
    // the same request again: nochg, from the applied state, and no new work
    let r = p.server.get(url, Some((USER, SECRET)), &[]);
    assert_eq!(r.body, "nochg 198.51.100.7\n");
    assert!(p.env.queue_files("new").is_empty());
    // health reflects the live applier
    let r = p.server.get("/health", None, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let adds = p.env.calls_of("--add").len();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        p.env.calls_of("--add").len(),
        adds,
        "nothing more was changed"
    );
}

#[test_case(Runtime::Wasmtime; "wasmtime")]
#[test_case(Runtime::Spin; "spin")]
fn health_turns_503_when_the_applier_stops(runtime: Runtime) {
    let Some(mut p) = pipeline(runtime) else {
        return;
    };
    assert_eq!(p.server.get("/health", None, &[]).status, 200);
    p.applier.terminate();
    assert_eq!(p.applier.wait_timeout(Duration::from_secs(10)), Some(0));
    // a heartbeat older than handler.heartbeat_max_age (5 min by default)
    let hb: serde_json::Value =
        serde_json::from_slice(&fs::read(p.env.state.join("heartbeat.json")).unwrap()).unwrap();
    assert!(hb["pid"].as_u64().is_some());
    p.env
        .fake_heartbeat(SystemTime::now() - Duration::from_secs(301));
    let r = p.server.get("/health", None, &[]);
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("heartbeat"), "{}", r.body);
}

fn write_private(path: &std::path::Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

fn ddclient(p: &Pipeline, ip: &str) -> String {
    let dir = p.env.dir.path();
    let conf = dir.join(format!("ddclient-{}.conf", ip.replace(':', "_")));
    write_private(
        &conf,
        &format!(
            "daemon=0\nsyslog=no\nssl=no\nprotocol=dyndns2\nserver=127.0.0.1:{}\nlogin={USER}\npassword='{SECRET}'\nuse=ip, ip={ip}\nhome.dyn.example.com\n",
            p.server.port
        ),
    );
    let out = Command::new(dyndns_tests::program("ddclient"))
        .args(["-foreground", "-daemon=0", "-verbose", "-noquiet", "-force"])
        .arg("-file")
        .arg(&conf)
        .arg("-cache")
        .arg(dir.join(format!("ddclient-{}.cache", ip.replace(':', "_"))))
        .output()
        .expect("ddclient (run scripts/test-deps.sh)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test_case(Runtime::Wasmtime; "wasmtime")]
#[test_case(Runtime::Spin; "spin")]
fn ddclient_ipv4_and_ipv6(runtime: Runtime) {
    let Some(p) = pipeline(runtime) else {
        return;
    };
    let log = ddclient(&p, "198.51.100.21");
    assert!(
        log.contains("SUCCESS:") && log.contains("198.51.100.21"),
        "ddclient said:\n{log}\nhandler:\n{}",
        p.server.log()
    );
    p.wait_zone("home.dyn.example.com.", "A", "198.51.100.21");
    let log = ddclient(&p, "2001:db8:21::21");
    assert!(log.contains("SUCCESS:"), "ddclient said:\n{log}");
    p.wait_zone("home.dyn.example.com.", "AAAA", "2001:db8:21::21");
    p.wait_zone("home.dyn.example.com.", "A", "198.51.100.21");
    // ddclient sent its usual dyndns2 request
    assert!(
        p.server.log().contains("good 198.51.100.21"),
        "{}",
        p.server.log()
    );
}

fn inadyn(p: &Pipeline, ip: &str, ipv6: bool) -> String {
    let dir = p.env.dir.path();
    let tag = ip.replace(':', "_");
    let conf = dir.join(format!("inadyn-{tag}.conf"));
    write_private(
        &conf,
        &format!(
            "allow-ipv6 = {ipv6}\n\ncustom dyndns-test {{\n    ssl = false\n    username = \"{USER}\"\n    password = \"{SECRET}\"\n    ddns-server = \"127.0.0.1:{}\"\n    ddns-path = \"/nic/update?hostname=%h&myip=%i\"\n    checkip-command = \"echo {ip}\"\n    hostname = \"home.dyn.example.com\"\n}}\n",
            p.server.port
        ),
    );
    let cache = dir.join(format!("inadyn-cache-{tag}"));
    fs::create_dir_all(&cache).unwrap();
    let out = Command::new(dyndns_tests::program("inadyn"))
        .args([
            "--once",
            "--foreground",
            "--force",
            "--no-pidfile",
            "-l",
            "debug",
        ])
        .arg(format!("--config={}", conf.display()))
        .arg(format!("--cache-dir={}", cache.display()))
        .output()
        .expect("inadyn (run scripts/test-deps.sh)");
    format!(
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test_case(Runtime::Wasmtime; "wasmtime")]
#[test_case(Runtime::Spin; "spin")]
fn inadyn_custom_provider_ipv4_and_ipv6(runtime: Runtime) {
    let Some(p) = pipeline(runtime) else {
        return;
    };
    let log = inadyn(&p, "198.51.100.31", false);
    p.wait_zone("home.dyn.example.com.", "A", "198.51.100.31");
    assert!(log.contains("exit Some(0)"), "{log}");
    let log = inadyn(&p, "2001:db8:31::31", true);
    assert!(log.contains("exit Some(0)"), "{log}");
    p.wait_zone("home.dyn.example.com.", "AAAA", "2001:db8:31::31");
}

#[test_case(Runtime::Wasmtime; "wasmtime")]
#[test_case(Runtime::Spin; "spin")]
fn fritzbox_update_urls(runtime: Runtime) {
    let Some(p) = pipeline(runtime) else {
        return;
    };
    let fritz = [("User-Agent", "Fritz!Box DDNS/1.0.1")];
    // https://<server>/nic/update?hostname=<domain>&myip=<ipaddr>,<ip6addr>
    let r = p.server.get(
        "/nic/update?hostname=home.dyn.example.com&myip=198.51.100.41,2001:db8:41::1",
        Some((USER, SECRET)),
        &fritz,
    );
    assert_eq!(r.body, "good 198.51.100.41,2001:db8:41::1\n");
    // without IPv6 the FRITZ!Box leaves <ip6addr> empty
    let r = p.server.get(
        "/nic/update?hostname=office.dyn.example.com&myip=198.51.100.42,",
        Some((USER, SECRET)),
        &fritz,
    );
    assert_eq!(r.body, "good 198.51.100.42\n");
    // <ip6lanprefix> for a host behind the router
    let r = p.server.get(
        "/nic/update?hostname=nas.dyn.example.com&myip=198.51.100.41&ip6lanprefix=2001:db8:41:2::/64",
        Some((USER, SECRET)),
        &fritz,
    );
    assert_eq!(r.body, "good 198.51.100.41,2001:db8:41:2:1:2:3:4\n");
    p.wait_zone("home.dyn.example.com.", "A", "198.51.100.41");
    p.wait_zone("home.dyn.example.com.", "AAAA", "2001:db8:41::1");
    p.wait_zone("office.dyn.example.com.", "A", "198.51.100.42");
    p.wait_zone("nas.dyn.example.com.", "A", "198.51.100.41");
    p.wait_zone("nas.dyn.example.com.", "AAAA", "2001:db8:41:2:1:2:3:4");
    // the router re-sends while DNS catches up: nochg, no more Plesk work
    p.wait_queue_empty();
    let mutations = || {
        p.env
            .calls()
            .iter()
            .filter(|c| c.command() != "--info")
            .count()
    };
    let before = mutations();
    let r = p.server.get(
        "/nic/update?hostname=home.dyn.example.com&myip=198.51.100.41,2001:db8:41::1",
        Some((USER, SECRET)),
        &fritz,
    );
    assert_eq!(r.body, "nochg 198.51.100.41,2001:db8:41::1\n");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(mutations(), before);
}

#[test_case(Runtime::Wasmtime; "wasmtime")]
#[test_case(Runtime::Spin; "spin")]
fn opnsense_request(runtime: Runtime) {
    let Some(p) = pipeline(runtime) else {
        return;
    };
    let r = p.server.get(
        "/nic/update?system=dyndns&hostname=office.dyn.example.com&myip=198.51.100.51&wildcard=NOCHG&mx=NOCHG&backmx=NOCHG",
        Some((USER, SECRET)),
        &[("User-Agent", "OPNsense-dyndns/24.7")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body.split_whitespace().next(),
        Some("good"),
        "OPNsense shows the first word"
    );
    p.wait_zone("office.dyn.example.com.", "A", "198.51.100.51");
}

#[test_case(Runtime::Wasmtime; "wasmtime")]
#[test_case(Runtime::Spin; "spin")]
fn pfsense_challenge_first_with_real_curl(runtime: Runtime) {
    let Some(p) = pipeline(runtime) else {
        return;
    };
    // pfSense's custom provider uses libcurl with CURLAUTH_ANY: the first
    // request carries no credentials, the second answers the 401 challenge.
    let out = Command::new(dyndns_tests::program("curl"))
        .args(["--silent", "--show-error", "--anyauth", "--user"])
        .arg(format!("{USER}:{SECRET}"))
        .arg(format!(
            "http://127.0.0.1:{}/nic/update?hostname=office.dyn.example.com&myip=198.51.100.61",
            p.server.port
        ))
        .arg("--write-out")
        .arg("\n%{http_code} %{num_connects}")
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("good 198.51.100.61\n"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.trim_end().ends_with("200 1") || text.trim_end().ends_with("200 2"),
        "{text}"
    );
    // the result match pfSense is usually given
    assert!(text.contains("good") || text.contains("nochg"));
    assert!(
        p.server
            .log()
            .contains("no credentials sent; asking for them"),
        "{}",
        p.server.log()
    );
    p.wait_zone("office.dyn.example.com.", "A", "198.51.100.61");
    // and raw, step by step
    let first = p.server.get(
        "/nic/update?hostname=office.dyn.example.com&myip=198.51.100.62",
        None,
        &[],
    );
    assert_eq!(first.status, 401);
    assert!(
        first
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic realm=")
    );
    let second = http::request(
        p.server.port,
        "GET",
        "/nic/update?hostname=office.dyn.example.com&myip=198.51.100.62",
        Some((USER, SECRET)),
        &[],
        None,
    );
    assert_eq!(second.body, "good 198.51.100.62\n");
    p.wait_zone("office.dyn.example.com.", "A", "198.51.100.62");
}
