//! The DNS-01 path with real parts: the applier's TXT changes reach the
//! Plesk emulator, which writes the zone and has BIND `named` reload it
//! through `rndc`; `dig` sees them; `pebble` validates against that
//! `named`; `lego` obtains a certificate for a host and its wildcard.
//!
//! The handler's ACME endpoints do not exist yet, so the certificate test
//! puts a small stand-in for them in front of the queue: it authenticates
//! lego's `httpreq` calls and writes the TXT entries the handler will
//! write. Everything behind the queue is the real thing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use dyndns_tests::acme::{DnsServer, Httpreq, Pebble, dig, run_lego, subject_alt_names};
use dyndns_tests::{TestEnv, challenge_value, credential, wait_for, write_txt_entry};

const ZONE: &str = "dyn.example.com";
const HOME: &str = "_acme-challenge.home.dyn.example.com";

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

fn once(env: &TestEnv) {
    let out = env.run_applier(&["--once"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    once(&env);
    served(&dns, HOME, "TXT", vec![v1.clone(), v2.clone()]);

    env.enqueue_txt(HOME, "cleanup", Some(&v1), "alice", SystemTime::now());
    once(&env);
    served(&dns, HOME, "TXT", vec![v2.clone()]);

    // an address change goes the same way
    env.enqueue("home.dyn.example.com", "A", "198.51.100.7");
    env.enqueue_txt(HOME, "clear", None, "alice", SystemTime::now());
    once(&env);
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
    once(&env);
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

/// What the stand-in endpoint saw: `(path, fqdn, value, time to answer)`;
/// for a present, the time until the DNS server served the value.
type Seen = Arc<Mutex<Vec<(String, String, String, Duration)>>>;

/// A stand-in for the handler's `httpreq` endpoints (`POST <base>/present`
/// and `<base>/cleanup`, Basic auth, JSON `{"fqdn", "value"}`): it writes the
/// TXT entry the handler will write and answers 200; a present only once
/// the DNS server serves the value (lego asks for validation right after).
struct Standin {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
    seen: Seen,
}

impl Standin {
    fn start(queue: PathBuf, dns_port: u16, user: &'static str, password: &'static str) -> Standin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Seen = Arc::default();
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let (stop2, seen2) = (stop.clone(), seen.clone());
        let thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    answer(conn, &queue, dns_port, &auth, user, &seen2);
                }
            }
        });
        Standin {
            port,
            stop,
            thread: Some(thread),
            seen,
        }
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(conn: TcpStream, queue: &Path, dns_port: u16, auth: &str, user: &str, seen: &Seen) {
    let mut reader = BufReader::new(conn);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0;
    let mut authorized = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
            if name.eq_ignore_ascii_case("authorization") && value.trim() == auth {
                authorized = true;
            }
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    let status = match serde_json::from_slice::<serde_json::Value>(&body) {
        _ if !authorized => "401 Unauthorized",
        Ok(json) => {
            let fqdn = json["fqdn"]
                .as_str()
                .unwrap_or("")
                .trim_end_matches('.')
                .to_ascii_lowercase();
            let value = json["value"].as_str().unwrap_or("").to_string();
            let op = match path.as_str() {
                "/acme/present" => Some("present"),
                "/acme/cleanup" => Some("cleanup"),
                _ => None,
            };
            match op {
                Some(op) => {
                    let asked = Instant::now();
                    write_txt_entry(queue, &fqdn, op, Some(&value), user, SystemTime::now());
                    if op == "present" {
                        wait_for(Duration::from_secs(30), || {
                            dig(dns_port, &fqdn, "TXT").contains(&value)
                        });
                    }
                    seen.lock()
                        .unwrap()
                        .push((path.clone(), fqdn, value, asked.elapsed()));
                    "200 OK"
                }
                None => "404 Not Found",
            }
        }
        Err(_) => "400 Bad Request",
    };
    let mut conn = reader.into_inner();
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn lego_gets_a_certificate_for_a_host_and_its_wildcard() {
    let mut env = env();
    let dns = serve(&mut env);
    let pebble = Pebble::start(&env.dir.path().join("pebble"), dns.port);
    let mut applier = env.spawn_applier(&["run"]);
    let standin = Standin::start(env.queue.clone(), dns.port, "alice", "secret");
    let endpoint = format!("http://127.0.0.1:{}/acme", standin.port);
    let domains = ["home.dyn.example.com", "*.home.dyn.example.com"];
    let result = run_lego(
        &env.dir.path().join("lego"),
        &pebble,
        &dns,
        &Httpreq {
            endpoint: &endpoint,
            username: "alice",
            password: "secret",
        },
        &domains,
    );
    let cert =
        result.unwrap_or_else(|log| panic!("lego failed:\n{log}\napplier:\n{}", applier.log()));
    assert_eq!(
        subject_alt_names(&cert),
        vec!["*.home.dyn.example.com", "home.dyn.example.com"]
    );
    let seen = standin.seen.lock().unwrap().clone();
    let presents = seen.iter().filter(|s| s.0 == "/acme/present").count();
    let cleanups = seen.iter().filter(|s| s.0 == "/acme/cleanup").count();
    assert_eq!((presents, cleanups), (2, 2), "{seen:?}");
    assert!(seen.iter().all(|s| s.1 == HOME));
    let slowest = seen
        .iter()
        .filter(|s| s.0 == "/acme/present")
        .map(|s| s.3)
        .max()
        .unwrap();
    assert!(
        slowest < Duration::from_secs(10),
        "present -> in DNS took {slowest:?}"
    );
    eprintln!("present -> served by named: at most {slowest:?} (applier interval 100 ms)");
    // the cleanups reach the zone: no challenge record is left
    assert!(
        wait_for(Duration::from_secs(10), || env
            .zone(ZONE)
            .iter()
            .all(|(n, _, _)| !n.starts_with("_acme-challenge"))),
        "{:?}\n{}",
        env.zone(ZONE),
        applier.log()
    );
    assert!(
        wait_for(Duration::from_secs(10), || dns
            .query(HOME, "TXT")
            .is_empty()),
        "named still serves {:?}",
        dns.query(HOME, "TXT")
    );
    applier.terminate();
    assert_eq!(applier.wait_timeout(Duration::from_secs(10)), Some(0));
}
