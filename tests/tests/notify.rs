//! Change notifications against real peers on loopback: aiosmtpd (plain,
//! STARTTLS, TLS, with and without login) and an HTTP listener for the
//! webhook. Dead or hanging peers must not stop or delay DNS updates.

use std::time::{Duration, Instant};

use dyndns_tests::peers::{SmtpMode, SmtpServer, WebhookBehaviour, WebhookListener, make_cert};
use dyndns_tests::{TestEnv, credential, free_port, wait_for};

const HOSTS: &str = r#"
zones = ["dyn.example.com"]
[[hosts]]
name = "home.dyn.example.com"
[[hosts]]
name = "nas.dyn.example.com"
"#;

fn env(notify: &str) -> TestEnv {
    let body = format!(
        "{HOSTS}\n[[users]]\nname = \"alice\"\ncredential = \"{}\"\nhosts = [\"home.dyn.example.com\"]\n{notify}",
        credential("alice-secret-0123456789")
    );
    let env = TestEnv::new(&body, "interval = \"100ms\"");
    env.set_zones(&[(
        "dyn.example.com",
        &[
            ("home.dyn.example.com.", "A", "192.0.2.1"),
            ("home.dyn.example.com.", "AAAA", "2001:db8::1"),
            ("nas.dyn.example.com.", "A", "192.0.2.2"),
        ],
    )]);
    env
}

fn email_section(port: u16, security: &str, extra: &str) -> String {
    format!(
        "[notify]\nattempts = 2\nretry_delay = \"100ms\"\n[notify.email]\nserver = \"127.0.0.1\"\nport = {port}\nsecurity = \"{security}\"\nfrom = \"DynDNS <dyndns@example.com>\"\nto = [\"admin@example.com\", \"ops@example.com\"]\ntimeout = \"5s\"\n{extra}"
    )
}

fn apply_once(env: &TestEnv) -> String {
    let out = env.run_applier(&["--once"]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{log}");
    log
}

#[test]
fn email_over_plain_smtp_without_login() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path(), SmtpMode::Plain, None, None);
    let env = env(&email_section(smtp.port, "plain", ""));
    env.enqueue("home.dyn.example.com", "A", "198.51.100.7");
    apply_once(&env);
    assert!(wait_for(Duration::from_secs(10), || smtp.messages().len() == 1));
    let m = &smtp.messages()[0];
    assert!(
        m.contains("X-Test-Rcpt-To: admin@example.com,ops@example.com"),
        "{m}"
    );
    assert!(m.contains("X-Test-Mail-From: dyndns@example.com"), "{m}");
    assert!(
        m.contains("Subject: dyndns: home.dyn.example.com is now 198.51.100.7"),
        "{m}"
    );
    assert!(
        m.contains("The address of home.dyn.example.com (zone dyn.example.com) changed:"),
        "{m}"
    );
    assert!(m.contains("A    192.0.2.1 -> 198.51.100.7"), "{m}");
    assert!(m.contains("Requested by: tester"), "{m}");
    assert!(m.contains("X-Test-TLS: no"));
}

#[test]
fn email_over_starttls_with_login() {
    let dir = tempfile::tempdir().unwrap();
    let cert = make_cert(dir.path());
    let smtp = SmtpServer::start(
        dir.path(),
        SmtpMode::Starttls,
        Some(&cert),
        Some("dyndns:mail-pass"),
    );
    let extra = format!(
        "username = \"dyndns\"\npassword = \"mail-pass\"\nca_file = \"{}\"\n",
        cert.ca.display()
    );
    let env = env(&email_section(smtp.port, "starttls", &extra));
    env.enqueue("home.dyn.example.com", "A", "198.51.100.8");
    apply_once(&env);
    assert!(wait_for(Duration::from_secs(10), || smtp.messages().len() == 1));
    let m = &smtp.messages()[0];
    assert!(m.contains("X-Test-Auth-User: dyndns"), "{m}");
    assert!(m.contains("X-Test-TLS: yes"), "{m}");
    assert!(m.contains("192.0.2.1 -> 198.51.100.8"), "{m}");
}

#[test]
fn email_over_tls_with_login_and_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let cert = make_cert(dir.path());
    let smtp = SmtpServer::start(
        dir.path(),
        SmtpMode::Tls,
        Some(&cert),
        Some("dyndns:mail-pass"),
    );
    let good = format!(
        "username = \"dyndns\"\npassword = \"mail-pass\"\nca_file = \"{}\"\n",
        cert.ca.display()
    );
    let env1 = env(&email_section(smtp.port, "tls", &good));
    env1.enqueue("home.dyn.example.com", "A", "198.51.100.9");
    apply_once(&env1);
    assert!(wait_for(Duration::from_secs(10), || smtp.messages().len() == 1));
    assert!(smtp.messages()[0].contains("X-Test-TLS: yes"));
    // a wrong password: the mail is refused, the DNS update is not
    let bad = good.replace("mail-pass", "wrong");
    let env2 = env(&email_section(smtp.port, "tls", &bad));
    env2.enqueue("home.dyn.example.com", "A", "198.51.100.10");
    let log = apply_once(&env2);
    assert_eq!(
        env2.addresses("dyn.example.com", "home.dyn.example.com.", "A"),
        vec!["198.51.100.10"]
    );
    assert!(log.contains("notification failed, giving up"), "{log}");
    assert_eq!(smtp.messages().len(), 1);
}

#[test]
fn email_without_a_trusted_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cert = make_cert(dir.path());
    let smtp = SmtpServer::start(dir.path(), SmtpMode::Tls, Some(&cert), None);
    let env = env(&email_section(smtp.port, "tls", ""));
    env.enqueue("home.dyn.example.com", "A", "198.51.100.11");
    let log = apply_once(&env);
    assert!(log.contains("notification failed, giving up"), "{log}");
    assert!(
        smtp.messages().is_empty(),
        "a self-signed server must not be trusted by default"
    );
}

#[test]
fn webhook_gets_one_json_post_per_host_and_batch() {
    let hook = WebhookListener::start(WebhookBehaviour::Ok);
    let env = env(&format!(
        "[notify.webhook]\nurl = \"http://127.0.0.1:{}/hooks/T0KEN\"\nbearer_token = \"b3arer\"\n",
        hook.port
    ));
    env.enqueue("home.dyn.example.com", "A", "198.51.100.7");
    env.enqueue("home.dyn.example.com", "AAAA", "2001:db8::7");
    env.enqueue("nas.dyn.example.com", "A", "198.51.100.8");
    apply_once(&env);
    assert!(wait_for(Duration::from_secs(10), || hook.requests().len() == 2));
    std::thread::sleep(Duration::from_millis(300));
    let reqs = hook.requests();
    assert_eq!(reqs.len(), 2, "one per host, not one per record");
    assert_eq!(reqs[0].request_line, "POST /hooks/T0KEN HTTP/1.1");
    assert_eq!(reqs[0].header("authorization"), Some("Bearer b3arer"));
    assert!(
        reqs[0]
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let bodies: Vec<serde_json::Value> = reqs
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    let home = bodies
        .iter()
        .find(|b| b["host"] == "home.dyn.example.com")
        .expect("home");
    assert_eq!(home["event"], "dyndns.address_changed");
    assert_eq!(home["zone"], "dyn.example.com");
    assert_eq!(home["user"], "tester");
    assert_eq!(home["changes"].as_array().unwrap().len(), 2);
    assert_eq!(home["changes"][0]["type"], "A");
    assert_eq!(home["changes"][0]["old"][0], "192.0.2.1");
    assert_eq!(home["changes"][0]["new"], "198.51.100.7");
    assert_eq!(home["changes"][1]["new"], "2001:db8::7");
    assert_eq!(
        home["text"],
        "home.dyn.example.com: A 192.0.2.1 -> 198.51.100.7, AAAA 2001:db8::1 -> 2001:db8::7"
    );
    // an unchanged address is no news
    env.enqueue("nas.dyn.example.com", "A", "198.51.100.8");
    apply_once(&env);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(hook.requests().len(), 2);
}

#[test]
fn dead_smtp_and_failing_webhook_do_not_stop_updates() {
    let hook = WebhookListener::start(WebhookBehaviour::Fail);
    let dead_port = free_port();
    let notify = format!(
        "{}\n[notify.webhook]\nurl = \"http://127.0.0.1:{}/hook\"\n",
        email_section(dead_port, "plain", ""),
        hook.port
    );
    let env = env(&notify);
    env.enqueue("home.dyn.example.com", "A", "198.51.100.7");
    dyndns_tests::applier_bin(); // build first: the clock is for the applier only
    let started = Instant::now();
    let log = apply_once(&env);
    assert_eq!(
        env.addresses("dyn.example.com", "home.dyn.example.com.", "A"),
        vec!["198.51.100.7"]
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // bounded retries: attempts = 2 for each channel
    assert_eq!(hook.requests().len(), 2, "{log}");
    assert_eq!(
        log.matches("notification failed, giving up").count(),
        2,
        "{log}"
    );
    assert!(
        !log.contains("/hook"),
        "the webhook URL (it may hold a token) is not logged: {log}"
    );
}

#[test]
fn hanging_webhook_does_not_delay_dns() {
    let hook = WebhookListener::start(WebhookBehaviour::Hang);
    let env = env(&format!(
        "[notify]\nattempts = 1\n[notify.webhook]\nurl = \"http://127.0.0.1:{}/hook\"\ntimeout = \"30s\"\n",
        hook.port
    ));
    let mut applier = env.spawn_applier(&["run"]);
    env.enqueue("home.dyn.example.com", "A", "198.51.100.7");
    assert!(
        wait_for(Duration::from_secs(10), || hook.requests().len() == 1),
        "{}",
        applier.log()
    );
    // while the first notification hangs, the next update goes through at once
    let t = Instant::now();
    env.enqueue("nas.dyn.example.com", "A", "198.51.100.8");
    assert!(wait_for(Duration::from_secs(5), || env.addresses(
        "dyn.example.com",
        "nas.dyn.example.com.",
        "A"
    ) == vec![
        "198.51.100.8"
    ]));
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    applier.terminate();
    // exit waits a bounded time for pending notifications, then goes
    assert_eq!(
        applier.wait_timeout(Duration::from_secs(20)),
        Some(0),
        "{}",
        applier.log()
    );
}

#[test]
fn secrets_never_reach_the_handler_view() {
    let env = env(
        "[notify.email]\nserver = \"mail.example.com\"\nusername = \"u\"\npassword = \"SMTP-PASSWORD-XYZ\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n[notify.webhook]\nurl = \"https://chat.example.com/hooks/WEBHOOK-TOKEN-XYZ\"\nbearer_token = \"BEARER-XYZ\"\n",
    );
    env.publish();
    let mut seen = 0;
    for entry in walkdir(&env.state) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        seen += 1;
        for secret in [
            "SMTP-PASSWORD-XYZ",
            "WEBHOOK-TOKEN-XYZ",
            "BEARER-XYZ",
            "mail.example.com",
        ] {
            assert!(
                !text.contains(secret),
                "{} contains {secret}",
                entry.display()
            );
        }
    }
    assert!(seen >= 3);
}

fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}
