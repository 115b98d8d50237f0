//! ACME challenge (TXT) entries through the real applier and the Plesk
//! emulator: present, cleanup and clear applied; foreign names, too many
//! values and disabled challenges rejected; values that were never cleaned
//! up removed after the lifetime; one listing per zone per batch.

use std::fs;
use std::time::{Duration, SystemTime};

use dyndns_tests::{
    CHALLENGE_HOME as HOME, CHALLENGE_NAS as NAS, TestEnv, challenge_config as config,
    challenge_value,
};

fn env_with(acme: &str) -> TestEnv {
    let env = TestEnv::new(
        &config(acme),
        "interval = \"100ms\"\nretry_initial = \"300ms\"\nretry_max = \"2s\"\nplesk_timeout = \"3s\"",
    );
    env.set_zones(&[(
        "dyn.example.com",
        &[
            ("dyn.example.com.", "NS", "ns1.example.com."),
            ("home.dyn.example.com.", "A", "192.0.2.1"),
            ("nas.dyn.example.com.", "A", "192.0.2.2"),
            ("pc1.office.dyn.example.com.", "A", "192.0.2.3"),
            ("dyn.example.com.", "TXT", "v=spf1 -all"),
        ],
    )]);
    env
}

fn env() -> TestEnv {
    env_with("enabled = true")
}

fn txt(env: &TestEnv, name: &str) -> Vec<String> {
    env.addresses("dyn.example.com", &format!("{name}."), "TXT")
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The emulator calls since `from`, as `command args...` after `bin dns`.
fn commands(env: &TestEnv, from: usize) -> Vec<String> {
    env.calls()[from..]
        .iter()
        .map(|c| c.args[2..].join(" "))
        .collect()
}

fn created_values(env: &TestEnv) -> usize {
    fs::read_dir(env.private.join("challenges"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The reasons of the notes in `failed/`, one a line.
fn failed_reasons(env: &TestEnv) -> String {
    env.queue_files("failed")
        .iter()
        .filter(|f| f.ends_with(".reason"))
        .map(|f| {
            let note: serde_json::Value =
                serde_json::from_slice(&fs::read(env.queue.join("failed").join(f)).unwrap())
                    .unwrap();
            format!("{}\n", note["reason"].as_str().unwrap())
        })
        .collect()
}

fn at(secs: u64) -> SystemTime {
    SystemTime::now() - Duration::from_secs(100) + Duration::from_secs(secs)
}

#[test]
fn present_cleanup_and_clear_are_applied() {
    let env = env();
    let (v1, v2) = (challenge_value("apex"), challenge_value("wildcard"));
    // apex and wildcard certificate in one order: two values at once
    env.enqueue_txt(HOME, "present", Some(&v1), "alice", at(1));
    env.enqueue_txt(HOME, "present", Some(&v2), "alice", at(2));
    let (code, log) = env.run_once();
    assert_eq!(code, 0, "{log}");
    assert_eq!(txt(&env, HOME), sorted(vec![v1.clone(), v2.clone()]));
    assert_eq!(
        commands(&env, 0),
        vec![
            "--info dyn.example.com".to_string(),
            format!("--add dyn.example.com -txt {v1} -domain _acme-challenge.home"),
            format!("--add dyn.example.com -txt {v2} -domain _acme-challenge.home"),
        ]
    );
    assert_eq!(
        created_values(&env),
        2,
        "the applier remembers what it created"
    );
    assert!(env.queue_files("new").is_empty() && env.queue_files("cur").is_empty());

    // presenting a value that is there changes nothing
    env.enqueue_txt(HOME, "present", Some(&v1), "alice", at(3));
    let calls = env.calls().len();
    assert_eq!(env.run_once().0, 0);
    assert_eq!(commands(&env, calls), vec!["--info dyn.example.com"]);

    // cleanup removes its value only
    env.enqueue_txt(HOME, "cleanup", Some(&v1), "alice", at(4));
    let calls = env.calls().len();
    assert_eq!(env.run_once().0, 0);
    assert_eq!(txt(&env, HOME), vec![v2.clone()]);
    assert_eq!(
        commands(&env, calls)[1],
        format!("--del dyn.example.com -txt {v1} -domain _acme-challenge.home")
    );
    assert_eq!(created_values(&env), 1);

    // clear removes every value of the name, nothing else
    env.enqueue_txt(HOME, "present", Some(&v1), "alice", at(5));
    env.enqueue_txt(HOME, "clear", None, "alice", at(6));
    assert_eq!(env.run_once().0, 0);
    assert!(txt(&env, HOME).is_empty());
    assert_eq!(txt(&env, "dyn.example.com"), vec!["v=spf1 -all"]);
    assert_eq!(created_values(&env), 0);
    assert!(
        env.queue_files("failed").is_empty(),
        "{:?}",
        env.queue_files("failed")
    );
    assert!(env.queue_files("cur").is_empty());
}

#[test]
fn a_pattern_grant_covers_the_challenge_of_its_hosts() {
    let env = env();
    let v = challenge_value("pc1");
    env.enqueue_txt(
        "_acme-challenge.pc1.office.dyn.example.com",
        "present",
        Some(&v),
        "alice",
        at(1),
    );
    let (code, log) = env.run_once();
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        txt(&env, "_acme-challenge.pc1.office.dyn.example.com"),
        vec![v]
    );
}

#[test]
fn foreign_and_unknown_names_are_rejected() {
    let env = env();
    let v = challenge_value("x");
    // a compromised web side writes entries the handler would never write
    env.enqueue_txt(NAS, "present", Some(&v), "alice", at(1));
    env.enqueue_txt(
        "_acme-challenge.other.dyn.example.com",
        "present",
        Some(&v),
        "alice",
        at(2),
    );
    env.enqueue_txt(HOME, "present", Some(&v), "mallory", at(3));
    env.enqueue_txt(
        "_acme-challenge.office.dyn.example.com",
        "present",
        Some(&v),
        "alice",
        at(4),
    );
    let (code, log) = env.run_once();
    assert_eq!(code, 2, "exit 2: something was rejected\n{log}");
    assert!(env.calls_of("--add").is_empty());
    assert!(
        env.zone("dyn.example.com")
            .iter()
            .all(|(n, _, _)| !n.starts_with("_acme"))
    );
    let reasons = failed_reasons(&env);
    for expected in [
        "user \"alice\" may not set TXT records at _acme-challenge.nas.dyn.example.com",
        "_acme-challenge.other.dyn.example.com is not the _acme-challenge name of a configured host",
        "user \"mallory\" is not configured",
        "_acme-challenge.office.dyn.example.com is not the _acme-challenge name of a configured host",
    ] {
        assert!(reasons.contains(expected), "no {expected:?} in\n{reasons}");
    }
    assert_eq!(env.queue_files("failed").len(), 8);
}

#[test]
fn entries_that_do_not_match_their_name_are_rejected() {
    let env = env();
    let (v1, v2) = (challenge_value("a"), challenge_value("b"));
    // the value's file name, another value inside
    let tag = dyndns_core::challenge::ChallengeValue::parse(&v1)
        .unwrap()
        .tag();
    let body = format!(
        r#"{{"format":1,"host":"{HOME}","type":"TXT","txt":{{"op":"present","value":"{v2}"}},"requested_at":"2026-01-01T00:00:00Z","user":"alice","client":null}}"#
    );
    env.enqueue_raw(&format!("{HOME}_TXT-{tag}.json"), body.as_bytes());
    // not a digest
    let bad = body.replace(&v2, "not-a-challenge-value");
    env.enqueue_raw(&format!("{HOME}_TXTCLEAR.json"), bad.as_bytes());
    // a TXT name for a plain host
    env.enqueue_raw(
        &format!("home.dyn.example.com_TXT-{tag}.json"),
        body.as_bytes(),
    );
    let (code, _) = env.run_once();
    assert_eq!(code, 2);
    let reasons = failed_reasons(&env);
    assert!(
        reasons.contains("does not belong in an entry named"),
        "{reasons}"
    );
    assert!(
        reasons.contains("an ACME challenge value has exactly 43"),
        "{reasons}"
    );
    assert!(
        reasons.contains("does not look like <host>_<KIND>.json"),
        "{reasons}"
    );
    assert!(env.calls().is_empty(), "nothing valid, no listing");
}

#[test]
fn challenges_are_off_unless_enabled() {
    let env = env_with("enabled = false");
    env.enqueue_txt(HOME, "present", Some(&challenge_value("x")), "alice", at(1));
    assert_eq!(env.run_once().0, 2);
    assert!(failed_reasons(&env).contains("ACME challenges are disabled"));
    assert!(env.calls().is_empty());
}

#[test]
fn more_values_than_allowed_are_rejected() {
    let env = env_with("enabled = true\nmax_values = 2");
    let values: Vec<String> = (0..3).map(|i| challenge_value(&i.to_string())).collect();
    for (i, v) in values.iter().enumerate() {
        env.enqueue_txt(HOME, "present", Some(v), "alice", at(i as u64));
    }
    let (code, log) = env.run_once();
    assert_eq!(code, 2, "{log}");
    assert_eq!(txt(&env, HOME), sorted(values[..2].to_vec()));
    let reasons = failed_reasons(&env);
    assert!(
        reasons.contains(&format!(
            "{HOME} already holds 2 TXT values, the most allowed (acme.max_values = 2)"
        )),
        "{reasons}"
    );
    assert!(env.queue_files("cur").is_empty());
    // a cleanup makes room again
    env.enqueue_txt(HOME, "cleanup", Some(&values[0]), "alice", at(10));
    env.enqueue_txt(HOME, "present", Some(&values[2]), "alice", at(11));
    assert_eq!(env.run_once().0, 0);
    assert_eq!(txt(&env, HOME), sorted(values[1..].to_vec()));
}

#[test]
fn stale_values_are_removed_after_the_lifetime() {
    let env = env_with("enabled = true\nlifetime = \"2s\"");
    let (mine, theirs) = (challenge_value("mine"), challenge_value("theirs"));
    // a value someone else put there (Plesk's own Let's Encrypt, an admin)
    env.set_zones(&[(
        "dyn.example.com",
        &[
            ("home.dyn.example.com.", "A", "192.0.2.1"),
            (
                "_acme-challenge.home.dyn.example.com.",
                "TXT",
                theirs.as_str(),
            ),
        ],
    )]);
    env.enqueue_txt(HOME, "present", Some(&mine), "alice", at(1));
    assert_eq!(env.run_once().0, 0);
    assert_eq!(txt(&env, HOME), sorted(vec![mine.clone(), theirs.clone()]));

    // within the lifetime nothing is due: no listing at all
    let before = env.calls().len();
    assert_eq!(env.run_once().0, 0);
    assert_eq!(env.calls().len(), before, "nothing to do, no Plesk call");

    std::thread::sleep(Duration::from_millis(2100));
    let (code, log) = env.run_once();
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        txt(&env, HOME),
        vec![theirs],
        "only what the applier created goes"
    );
    assert_eq!(
        commands(&env, before),
        vec![
            "--info dyn.example.com".to_string(),
            format!("--del dyn.example.com -txt {mine} -domain _acme-challenge.home"),
        ]
    );
    assert!(log.contains("that was not cleaned up"), "{log}");
    assert_eq!(created_values(&env), 0);
}

#[test]
fn one_listing_per_zone_with_addresses_and_challenges() {
    let env = env();
    let v = challenge_value("one");
    env.enqueue("home.dyn.example.com", "A", "198.51.100.7");
    env.enqueue_txt(HOME, "present", Some(&v), "alice", at(1));
    env.enqueue_txt(NAS, "present", Some(&challenge_value("nas")), "bob", at(2));
    let (code, log) = env.run_once();
    assert_eq!(code, 0, "{log}");
    let cmds = commands(&env, 0);
    assert_eq!(
        cmds.iter().filter(|c| c.starts_with("--info")).count(),
        1,
        "{cmds:?}"
    );
    // the challenges first (an ACME client waits for them), then the address
    assert_eq!(cmds.len(), 5, "{cmds:?}");
    assert!(
        cmds[1].contains("-txt") && cmds[2].contains("-txt"),
        "{cmds:?}"
    );
    assert_eq!(cmds[3], "--del dyn.example.com -a home -ip 192.0.2.1");
    assert_eq!(cmds[4], "--add dyn.example.com -a home -ip 198.51.100.7");
}

#[test]
fn a_failed_add_is_retried() {
    let mut env = env();
    env.applier_env
        .push(("PLESK_EMU_FAIL".into(), "--add:1".into()));
    let v = challenge_value("retry");
    env.enqueue_txt(HOME, "present", Some(&v), "alice", at(1));
    let (code, log) = env.run_once();
    assert_eq!(code, 3, "exit 3: something was deferred\n{log}");
    assert!(txt(&env, HOME).is_empty());
    assert_eq!(env.queue_files("cur").len(), 1, "the entry waits in cur/");
    std::thread::sleep(Duration::from_millis(400));
    let (code, log) = env.run_once();
    assert_eq!(code, 0, "{log}");
    assert_eq!(txt(&env, HOME), vec![v]);
    assert!(env.queue_files("cur").is_empty());
}

#[test]
fn dry_run_prints_the_calls_and_changes_nothing() {
    let env = env();
    let v = challenge_value("dry");
    env.enqueue_txt(HOME, "present", Some(&v), "alice", at(1));
    env.enqueue_txt(NAS, "present", Some(&v), "alice", at(2));
    let out = env.run_applier(&["--once", "--dry-run"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!(
            "would run: {} bin dns --add dyn.example.com -txt {v} -domain _acme-challenge.home",
            dyndns_tests::plesk_emulator().display()
        )),
        "{text}"
    );
    assert!(text.contains("may not set TXT records"), "{text}");
    assert!(env.calls_of("--add").is_empty());
    assert_eq!(env.queue_files("new").len(), 2, "the queue is left alone");
    assert_eq!(created_values(&env), 0);
}
