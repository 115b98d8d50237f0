//! The applier as a real process driving the Plesk emulator.

use std::fs;
use std::time::{Duration, Instant, SystemTime};

use dyndns_tests::{TestEnv, process_alive, wait_for};

const CONFIG: &str = r#"
zones = ["dyn.example.com", "home.example.net"]

[[hosts]]
name = "h1.dyn.example.com"
[[hosts]]
name = "h2.dyn.example.com"
[[hosts]]
name = "h3.dyn.example.com"
[[hosts]]
name = "a.home.example.net"
[[hosts]]
name = "b.home.example.net"
[[hosts]]
name = "missing.dyn.example.com"
[[hosts]]
name = "home.example.net"
types = ["A"]
"#;

const FAST: &str =
    "interval = \"100ms\"\nretry_initial = \"300ms\"\nretry_max = \"2s\"\nplesk_timeout = \"3s\"";

fn env() -> TestEnv {
    let env = TestEnv::new(CONFIG, FAST);
    env.set_zones(&[
        (
            "dyn.example.com",
            &[
                ("dyn.example.com.", "NS", "ns1.example.com."),
                ("dyn.example.com.", "MX", "10 mail.example.com."),
                ("h1.dyn.example.com.", "A", "192.0.2.1"),
                ("h1.dyn.example.com.", "AAAA", "2001:db8::1"),
                ("h2.dyn.example.com.", "A", "192.0.2.2"),
                ("h3.dyn.example.com.", "A", "192.0.2.3"),
                ("www.dyn.example.com.", "CNAME", "dyn.example.com."),
            ],
        ),
        (
            "home.example.net",
            &[
                ("home.example.net.", "A", "192.0.2.50"),
                ("a.home.example.net.", "A", "192.0.2.51"),
                ("b.home.example.net.", "A", "192.0.2.52"),
                ("b.home.example.net.", "AAAA", "2001:db8::52"),
            ],
        ),
    ]);
    env
}

#[test]
fn one_update() {
    let env = env();
    env.enqueue("h1.dyn.example.com", "A", "198.51.100.7");
    let (code, log) = env.run_once();
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        env.addresses("dyn.example.com", "h1.dyn.example.com.", "A"),
        vec!["198.51.100.7"]
    );
    let commands: Vec<String> = env.calls().iter().map(|c| c.args[2..].join(" ")).collect();
    assert_eq!(
        commands,
        vec![
            "--info dyn.example.com",
            "--del dyn.example.com -a h1 -ip 192.0.2.1",
            "--add dyn.example.com -a h1 -ip 198.51.100.7",
        ]
    );
    assert!(
        log.contains("applied h1.dyn.example.com A 192.0.2.1 -> 198.51.100.7"),
        "{log}"
    );
    assert!(
        log.contains("ms="),
        "the log line carries the time taken: {log}"
    );
    // the rest of the zone is untouched
    assert_eq!(
        env.addresses("dyn.example.com", "h1.dyn.example.com.", "AAAA"),
        vec!["2001:db8::1"]
    );
    assert_eq!(env.zone("dyn.example.com").len(), 7);
    // queue drained, applied state written for the handler
    assert!(env.queue_files("new").is_empty() && env.queue_files("cur").is_empty());
    let record = env.host_record("h1.dyn.example.com").expect("host record");
    assert_eq!(record["a"]["address"], "198.51.100.7");
    let history = record["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{record}");
    assert_eq!(history[0]["new"], "198.51.100.7");
    assert_eq!(history[0]["old"], serde_json::json!(["192.0.2.1"]));
    // and the handler's view shows it (the user's file lists the host inline)
    let view = fs::read_to_string(env.state.join("view/hosts/h1.dyn.example.com.json")).unwrap();
    assert!(view.contains("\"a\":\"198.51.100.7\""), "{view}");
    assert!(env.state.join("heartbeat.json").exists());
}

#[test]
fn dual_stack() {
    let env = env();
    env.enqueue("h1.dyn.example.com", "A", "198.51.100.7");
    env.enqueue("h1.dyn.example.com", "AAAA", "2001:db8:7::7");
    assert_eq!(env.run_once().0, 0);
    assert_eq!(
        env.addresses("dyn.example.com", "h1.dyn.example.com.", "A"),
        vec!["198.51.100.7"]
    );
    assert_eq!(
        env.addresses("dyn.example.com", "h1.dyn.example.com.", "AAAA"),
        vec!["2001:db8:7::7"]
    );
    assert_eq!(env.calls_of("--info").len(), 1);
    assert_eq!(env.calls_of("--del").len(), 2);
    assert_eq!(env.calls_of("--add").len(), 2);
}

#[test]
fn zone_apex_uses_the_empty_label() {
    let env = env();
    env.enqueue("home.example.net", "A", "198.51.100.50");
    assert_eq!(env.run_once().0, 0);
    assert_eq!(
        env.addresses("home.example.net", "home.example.net.", "A"),
        vec!["198.51.100.50"]
    );
    let add = &env.calls_of("--add")[0];
    assert_eq!(add.args[4..6], ["-a".to_string(), String::new()]);
}

#[test]
fn coalescing_50_updates_5_hosts_2_zones() {
    let env = env();
    let hosts = [
        ("h1.dyn.example.com", "dyn.example.com"),
        ("h2.dyn.example.com", "dyn.example.com"),
        ("h3.dyn.example.com", "dyn.example.com"),
        ("a.home.example.net", "home.example.net"),
        ("b.home.example.net", "home.example.net"),
    ];
    let base = SystemTime::now() - Duration::from_secs(600);
    // 20 older updates left claimed by an earlier, interrupted batch
    fs::create_dir_all(env.queue.join("cur")).unwrap();
    for i in 0..20u64 {
        let (host, _) = hosts[(i % 5) as usize];
        let at = base + Duration::from_secs(i);
        let entry = serde_json::json!({
            "format": 1, "host": host, "type": "A", "address": format!("203.0.113.{}", 100 + i),
            "requested_at": humantime::format_rfc3339_nanos(at).to_string(), "user": "tester", "client": null
        });
        fs::write(
            env.queue
                .join(format!("cur/{host}_A.{}-1-{i}.json", 1000 + i)),
            entry.to_string(),
        )
        .unwrap();
    }
    // 30 newer ones through new/, each replacing the previous for its host;
    // the last round decides: h3 gets the address it already has
    for i in 0..30u64 {
        let (host, _) = hosts[(i % 5) as usize];
        let addr = if host == "h3.dyn.example.com" && i >= 25 {
            "192.0.2.3".to_string()
        } else {
            format!("198.51.100.{i}")
        };
        env.enqueue_at(host, "A", &addr, base + Duration::from_secs(100 + i));
    }
    let (code, log) = env.run_once();
    assert_eq!(code, 0, "{log}");
    assert_eq!(env.calls_of("--info").len(), 2, "one listing per zone");
    assert_eq!(
        env.calls_of("--del").len(),
        4,
        "one delete per changed record"
    );
    assert_eq!(env.calls_of("--add").len(), 4, "one add per changed record");
    assert!(
        env.calls()
            .iter()
            .all(|c| !c.args.iter().any(|a| a == "h3")),
        "an unchanged address costs no mutation"
    );
    assert_eq!(
        env.addresses("dyn.example.com", "h1.dyn.example.com.", "A"),
        vec!["198.51.100.25"]
    );
    assert_eq!(
        env.addresses("dyn.example.com", "h2.dyn.example.com.", "A"),
        vec!["198.51.100.26"]
    );
    assert_eq!(
        env.addresses("dyn.example.com", "h3.dyn.example.com.", "A"),
        vec!["192.0.2.3"]
    );
    assert_eq!(
        env.addresses("home.example.net", "a.home.example.net.", "A"),
        vec!["198.51.100.28"]
    );
    assert_eq!(
        env.addresses("home.example.net", "b.home.example.net.", "A"),
        vec!["198.51.100.29"]
    );
    assert!(
        env.queue_files("cur").is_empty(),
        "superseded entries are removed: {:?}",
        env.queue_files("cur")
    );
}

#[test]
fn missing_record_goes_to_failed_with_a_reason() {
    let env = env();
    env.enqueue("missing.dyn.example.com", "A", "198.51.100.7");
    env.enqueue("h2.dyn.example.com", "A", "198.51.100.8");
    let (code, log) = env.run_once();
    assert_eq!(code, 2, "exit 2: something was rejected\n{log}");
    assert_eq!(
        env.addresses("dyn.example.com", "h2.dyn.example.com.", "A"),
        vec!["198.51.100.8"],
        "the good entry is applied"
    );
    assert!(
        env.addresses("dyn.example.com", "missing.dyn.example.com.", "A")
            .is_empty(),
        "names are never created"
    );
    assert_eq!(env.calls_of("--add").len(), 1);
    let failed = env.queue_files("failed");
    assert_eq!(failed.len(), 2, "{failed:?}");
    let reason = fs::read_to_string(
        env.queue
            .join("failed")
            .join(failed.iter().find(|f| f.ends_with(".reason")).unwrap()),
    )
    .unwrap();
    assert!(
        reason.contains("zone dyn.example.com has no A record for missing.dyn.example.com"),
        "{reason}"
    );
    // and it stays failed: the next run is clean
    assert_eq!(env.run_once().0, 0);
}

#[test]
fn zone_not_allowed_goes_to_failed() {
    let env = env();
    env.enqueue("www.example.org", "A", "198.51.100.7");
    env.enqueue("h2.dyn.example.com", "A", "198.51.100.8");
    let (code, _) = env.run_once();
    assert_eq!(code, 2);
    let failed = env.queue_files("failed");
    let reason_file = failed.iter().find(|f| f.ends_with(".reason")).unwrap();
    let reason = fs::read_to_string(env.queue.join("failed").join(reason_file)).unwrap();
    assert!(
        reason.contains(
            "www.example.org is not in an allowed zone (allowed: dyn.example.com, home.example.net)"
        ),
        "{reason}"
    );
    assert!(
        env.calls().iter().all(|c| c.args[3] != "example.org"),
        "a foreign zone is never even listed"
    );
    assert_eq!(
        env.addresses("dyn.example.com", "h2.dyn.example.com.", "A"),
        vec!["198.51.100.8"]
    );
}

#[test]
fn type_not_enabled_for_host_goes_to_failed() {
    let env = env();
    env.enqueue("home.example.net", "AAAA", "2001:db8::99");
    let (code, _) = env.run_once();
    assert_eq!(code, 2);
    assert!(env.calls().is_empty());
}

#[test]
fn plesk_failing_twice_then_succeeding_is_applied_after_backoff() {
    let mut env = env();
    env.applier_env
        .push(("PLESK_EMU_FAIL".into(), "--add:2".into()));
    env.enqueue("h1.dyn.example.com", "A", "198.51.100.7");
    let mut applier = env.spawn_applier(&["run", "--timeout", "20"]);
    assert!(
        wait_for(Duration::from_secs(15), || env.addresses(
            "dyn.example.com",
            "h1.dyn.example.com.",
            "A"
        ) == vec!["198.51.100.7"]),
        "not applied: {}",
        applier.log()
    );
    applier.terminate();
    assert_eq!(applier.wait_timeout(Duration::from_secs(10)), Some(0));
    let adds = env.calls_of("--add");
    assert_eq!(
        adds.iter().map(|c| c.exit.unwrap()).collect::<Vec<_>>(),
        vec![1, 1, 0]
    );
    // backoff: 300 ms, then 600 ms (plus the polling interval)
    let gap1 = adds[1].t_ms - adds[0].t_ms;
    let gap2 = adds[2].t_ms - adds[1].t_ms;
    assert!(gap1 >= 300 && gap2 >= 600, "gaps {gap1} ms, {gap2} ms");
    let log = applier.log();
    assert!(log.contains("transient failure, will retry"), "{log}");
    assert!(log.contains("attempt=2"), "{log}");
    // the record was deleted after the first failed add: no duplicate, nothing missing
    assert_eq!(
        env.addresses("dyn.example.com", "h1.dyn.example.com.", "A"),
        vec!["198.51.100.7"]
    );
    assert!(
        !env.private
            .join("journal/h1.dyn.example.com_A.json")
            .exists()
    );
}

#[test]
fn plesk_hanging_is_killed_and_retried() {
    let mut env = env();
    env.applier_env
        .push(("PLESK_EMU_HANG".into(), "--info:1".into()));
    fs::write(
        &env.config,
        fs::read_to_string(&env.config)
            .unwrap()
            .replace("plesk_timeout = \"3s\"", "plesk_timeout = \"700ms\""),
    )
    .unwrap();
    env.enqueue("h2.dyn.example.com", "A", "198.51.100.9");
    let started = Instant::now();
    let mut applier = env.spawn_applier(&["run", "--timeout", "20"]);
    assert!(
        wait_for(Duration::from_secs(15), || env.addresses(
            "dyn.example.com",
            "h2.dyn.example.com.",
            "A"
        ) == vec!["198.51.100.9"]),
        "not applied: {}",
        applier.log()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    applier.terminate();
    applier.wait_timeout(Duration::from_secs(10));
    let starts: Vec<_> = env
        .events()
        .into_iter()
        .filter(|e| e.event == "start" && e.command() == "--info")
        .collect();
    assert_eq!(starts.len(), 2, "the hung listing and its retry");
    assert!(
        !process_alive(starts[0].pid),
        "the hung plesk process was killed"
    );
    assert!(
        applier.log().contains("timed out after"),
        "{}",
        applier.log()
    );
}

#[test]
fn two_appliers_second_leaves_or_waits_without_touching_anything() {
    let mut env = env();
    env.applier_env
        .push(("PLESK_EMU_LATENCY_MS".into(), "50".into()));
    let mut first = env.spawn_applier(&["run"]);
    assert!(
        wait_for(Duration::from_secs(10), || first
            .log()
            .contains("applier started")),
        "{}",
        first.log()
    );
    // --once: leaves at once with exit code 4
    let started = Instant::now();
    let out = env.run_applier(&["--once"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("another applier (pid {}) is running", first.pid()))
    );
    // a service-style run waits (here until its --timeout) without doing anything
    let mut second = env.spawn_applier(&["run", "--timeout", "2"]);
    assert_eq!(second.wait_timeout(Duration::from_secs(10)), Some(4));
    assert!(
        second.log().contains("waiting for it to finish"),
        "{}",
        second.log()
    );
    assert!(
        env.calls().is_empty(),
        "nothing was queued, so no Plesk call from anyone"
    );
    // the first one still works
    env.enqueue("h3.dyn.example.com", "A", "198.51.100.33");
    assert!(wait_for(Duration::from_secs(10), || env.addresses(
        "dyn.example.com",
        "h3.dyn.example.com.",
        "A"
    ) == vec![
        "198.51.100.33"
    ]));
    assert!(env.calls().iter().all(|c| c.command() != ""));
    first.terminate();
    assert_eq!(first.wait_timeout(Duration::from_secs(10)), Some(0));
}

#[test]
fn waiting_applier_takes_over_when_the_first_stops() {
    let env = env();
    let mut first = env.spawn_applier(&["run"]);
    assert!(wait_for(Duration::from_secs(10), || first
        .log()
        .contains("applier started")));
    let mut second = env.spawn_applier(&["run", "--timeout", "15"]);
    assert!(wait_for(Duration::from_secs(10), || second
        .log()
        .contains("waiting for it to finish")));
    first.terminate();
    assert_eq!(first.wait_timeout(Duration::from_secs(10)), Some(0));
    env.enqueue("h1.dyn.example.com", "A", "198.51.100.44");
    assert!(
        wait_for(Duration::from_secs(10), || env.addresses(
            "dyn.example.com",
            "h1.dyn.example.com.",
            "A"
        ) == vec!["198.51.100.44"]),
        "{}",
        second.log()
    );
    second.terminate();
    assert_eq!(second.wait_timeout(Duration::from_secs(10)), Some(0));
}

#[test]
fn sigterm_mid_batch_finishes_the_host_and_loses_nothing() {
    let mut env = env();
    env.applier_env
        .push(("PLESK_EMU_LATENCY_MS".into(), "400".into()));
    for (h, a) in [
        ("h1", "198.51.100.1"),
        ("h2", "198.51.100.2"),
        ("h3", "198.51.100.3"),
    ] {
        env.enqueue(&format!("{h}.dyn.example.com"), "A", a);
    }
    let mut applier = env.spawn_applier(&["run"]);
    // wait for the first --del to start, then ask to stop
    assert!(wait_for(Duration::from_secs(15), || env
        .events()
        .iter()
        .any(|e| e.event == "start" && e.command() == "--del")));
    applier.terminate();
    assert_eq!(
        applier.wait_timeout(Duration::from_secs(15)),
        Some(0),
        "{}",
        applier.log()
    );
    // the host in progress was finished: its del and its add
    let dels = env.calls_of("--del");
    let adds = env.calls_of("--add");
    assert_eq!((dels.len(), adds.len()), (1, 1), "{:?}", env.calls());
    assert_eq!(
        env.addresses("dyn.example.com", "h1.dyn.example.com.", "A"),
        vec!["198.51.100.1"]
    );
    assert_eq!(
        env.addresses("dyn.example.com", "h2.dyn.example.com.", "A"),
        vec!["192.0.2.2"]
    );
    assert!(
        applier.log().contains("finishing the host in progress"),
        "{}",
        applier.log()
    );
    // nothing lost: the rest is applied by the next run
    assert_eq!(
        env.queue_files("cur").len(),
        2,
        "{:?}",
        env.queue_files("cur")
    );
    let (code, log) = env.run_once();
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        env.addresses("dyn.example.com", "h2.dyn.example.com.", "A"),
        vec!["198.51.100.2"]
    );
    assert_eq!(
        env.addresses("dyn.example.com", "h3.dyn.example.com.", "A"),
        vec!["198.51.100.3"]
    );
}

#[test]
fn once_exit_codes() {
    // 0: nothing to do
    let env1 = env();
    assert_eq!(env1.run_once().0, 0);
    // 3: Plesk keeps failing, the entry is kept for a retry
    let mut env2 = env();
    env2.applier_env
        .push(("PLESK_EMU_FAIL".into(), "--info:5".into()));
    env2.enqueue("h1.dyn.example.com", "A", "198.51.100.7");
    let (code, log) = env2.run_once();
    assert_eq!(code, 3, "{log}");
    assert_eq!(env2.queue_files("cur").len(), 1, "kept");
    let status = String::from_utf8_lossy(&env2.run_applier(&["status"]).stdout).into_owned();
    assert!(
        status.contains("1 failed attempt(s)") && status.contains("emulated failure"),
        "{status}"
    );
    // the backoff is respected by the next --once (still 3, no new Plesk call)
    let calls = env2.calls().len();
    assert_eq!(env2.run_once().0, 3);
    assert_eq!(env2.calls().len(), calls);
    // 2: rejected (covered above), 1: broken config
    let env3 = env();
    fs::write(&env3.config, "zones = [").unwrap();
    let (code, log) = env3.run_once();
    assert_eq!(code, 1);
    assert!(log.contains("dyndns.toml"), "{log}");
}

#[test]
fn runonce_alias_and_timeout() {
    let env = env();
    env.enqueue("h1.dyn.example.com", "A", "198.51.100.7");
    let out = env.run_applier(&["--runonce"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        env.addresses("dyn.example.com", "h1.dyn.example.com.", "A"),
        vec!["198.51.100.7"]
    );
    let started = Instant::now();
    let out = env.run_applier(&["--timeout", "1"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--timeout reached"));
}

#[test]
fn dry_run_prints_and_changes_nothing() {
    let env = env();
    env.enqueue("h1.dyn.example.com", "A", "198.51.100.7");
    env.enqueue("h3.dyn.example.com", "A", "192.0.2.3");
    env.enqueue("missing.dyn.example.com", "A", "198.51.100.8");
    let before = env.zone("dyn.example.com");
    let out = env.run_applier(&["run", "--dry-run", "--once"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "DRY RUN: would run: {} bin dns --del dyn.example.com -a h1 -ip 192.0.2.1",
            dyndns_tests::plesk_emulator().display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("bin dns --add dyn.example.com -a h1 -ip 198.51.100.7"),
        "{stdout}"
    );
    assert!(
        stdout.contains("h3.dyn.example.com A already has 192.0.2.3"),
        "{stdout}"
    );
    assert!(
        stdout.contains("would reject missing.dyn.example.com/A"),
        "{stdout}"
    );
    assert_eq!(env.zone("dyn.example.com"), before);
    assert!(
        env.calls().iter().all(|c| c.command() == "--info"),
        "only listings"
    );
    assert_eq!(env.queue_files("new").len(), 3, "the queue is untouched");
    assert!(env.queue_files("failed").is_empty());
}

#[test]
fn status_and_check_config() {
    let env = env();
    env.enqueue("h1.dyn.example.com", "A", "198.51.100.7");
    env.enqueue("missing.dyn.example.com", "A", "198.51.100.8");
    env.run_once();
    env.enqueue("h2.dyn.example.com", "A", "198.51.100.9");
    let out = env.run_applier(&["status"]);
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("pending (1):"), "{s}");
    assert!(
        s.contains("h2.dyn.example.com") && s.contains("198.51.100.9"),
        "{s}"
    );
    assert!(s.contains("failed (1)"), "{s}");
    assert!(
        s.contains("has no A record for missing.dyn.example.com"),
        "{s}"
    );
    assert!(
        s.contains("h1.dyn.example.com") && s.contains("198.51.100.7"),
        "{s}"
    );
    assert!(s.contains("applier: not running"), "{s}");

    let out = env.run_applier(&["check-config"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK (2 zone(s), 7 host(s), 0 user(s))"));
    fs::write(
        &env.config,
        fs::read_to_string(&env.config)
            .unwrap()
            .replace("h3.dyn.example.com", "h3.example.org"),
    )
    .unwrap();
    let out = env.run_applier(&["check-config"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("h3.example.org is not inside any allowed zone")
    );
}

#[test]
fn record_already_holding_the_new_address_only_loses_the_old_one() {
    let env = env();
    env.set_zones(&[(
        "dyn.example.com",
        &[
            ("h1.dyn.example.com.", "A", "192.0.2.1"),
            ("h1.dyn.example.com.", "A", "198.51.100.7"),
        ],
    )]);
    env.enqueue("h1.dyn.example.com", "A", "198.51.100.7");
    assert_eq!(env.run_once().0, 0);
    assert_eq!(
        env.addresses("dyn.example.com", "h1.dyn.example.com.", "A"),
        vec!["198.51.100.7"]
    );
    assert_eq!(env.calls_of("--del").len(), 1);
    assert_eq!(env.calls_of("--add").len(), 0);
}

#[test]
fn config_edits_are_picked_up_and_republished() {
    let env = env();
    let mut applier = env.spawn_applier(&["run", "--timeout", "20"]);
    assert!(wait_for(Duration::from_secs(10), || env
        .state
        .join("view/hosts/h1.dyn.example.com.json")
        .exists()));
    assert!(
        !env.state
            .join("view/hosts/new.dyn.example.com.json")
            .exists()
    );
    let text = fs::read_to_string(&env.config).unwrap();
    fs::write(
        &env.config,
        text.replacen(
            "[[hosts]]",
            "[[hosts]]\nname = \"new.dyn.example.com\"\n[[hosts]]",
            1,
        ),
    )
    .unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || env
            .state
            .join("view/hosts/new.dyn.example.com.json")
            .exists()),
        "{}",
        applier.log()
    );
    // a broken edit is refused and the old config kept
    fs::write(&env.config, "zones = [").unwrap();
    assert!(wait_for(Duration::from_secs(10), || applier
        .log()
        .contains("the edited config is invalid")));
    assert!(
        env.state
            .join("view/hosts/new.dyn.example.com.json")
            .exists()
    );
    applier.terminate();
    assert_eq!(applier.wait_timeout(Duration::from_secs(10)), Some(0));
}

#[test]
fn metrics_textfile_for_node_exporter() {
    let mut env = env();
    let prom = env.dir.path().join("textfile/dyndns.prom");
    fs::write(
        &env.config,
        fs::read_to_string(&env.config).unwrap()
            + &format!("metrics_file = \"{}\"\n", prom.display()),
    )
    .unwrap();
    env.applier_env
        .push(("PLESK_EMU_FAIL".into(), "--info@home.example.net:1".into()));
    env.enqueue("h1.dyn.example.com", "A", "198.51.100.7");
    env.enqueue("h3.dyn.example.com", "A", "192.0.2.3");
    env.enqueue("a.home.example.net", "A", "198.51.100.8");
    env.enqueue("missing.dyn.example.com", "A", "198.51.100.9");
    assert_eq!(env.run_once().0, 2);
    let text = fs::read_to_string(&prom).expect("metrics file");
    for expected in [
        "dyndns_updates_applied_total 1\n",
        "dyndns_updates_unchanged_total 1\n",
        "dyndns_updates_rejected_total 1\n",
        "dyndns_updates_deferred_total 1\n",
        "dyndns_plesk_calls_total{command=\"--info\",result=\"ok\"} 1\n",
        "dyndns_plesk_calls_total{command=\"--info\",result=\"error\"} 1\n",
        "dyndns_plesk_calls_total{command=\"--add\",result=\"ok\"} 1\n",
        "dyndns_plesk_call_duration_seconds_count{command=\"--del\"} 1\n",
        "dyndns_queue_depth 1\n",
        "dyndns_failed_entries 1\n",
        "# TYPE dyndns_plesk_call_duration_seconds histogram\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&prom).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644, "node_exporter must be able to read it");
}

#[test]
fn sighup_reloads_the_config() {
    let env = env();
    let mut applier = env.spawn_applier(&["run", "--timeout", "20"]);
    assert!(wait_for(Duration::from_secs(10), || applier
        .log()
        .contains("applier started")));
    // an edit that keeps size and mtime would go unnoticed; SIGHUP forces the reload
    applier.signal(rustix::process::Signal::HUP);
    assert!(
        wait_for(Duration::from_secs(10), || applier
            .log()
            .contains("config reloaded")),
        "{}",
        applier.log()
    );
    assert!(applier.log().contains("SIGHUP: reloading the config"));
    applier.terminate();
    assert_eq!(applier.wait_timeout(Duration::from_secs(10)), Some(0));
}

#[test]
fn new_credential_makes_a_secret_that_verifies() {
    let out = std::process::Command::new(dyndns_tests::applier_bin())
        .args(["new-credential", "--user", "home@dyn.example.com"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("secret:"))
        .unwrap()
        .trim();
    let stored = text
        .lines()
        .find_map(|l| l.strip_prefix("credential:"))
        .unwrap()
        .trim();
    assert_eq!(secret.len(), 32);
    assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()));
    let cred = dyndns_core::credential::Credential::parse(stored).unwrap();
    assert!(cred.verify(secret));
    assert!(!cred.verify(&format!("{secret}x")));
    // the [[users]] block is valid config once hosts are filled in
    let block = &text[text.find("[[users]]").unwrap()..];
    let config = format!(
        "zones = [\"dyn.example.com\"]\n[handler]\nuser_named_hosts = true\n[[hosts]]\nname = \"home.dyn.example.com\"\n{}",
        block.replace(
            "hosts = []  # fill in",
            "hosts = [\"home.dyn.example.com\"]"
        )
    );
    dyndns_core::config::Config::parse(&config, None).unwrap();
    // two runs never give the same secret
    let again = std::process::Command::new(dyndns_tests::applier_bin())
        .arg("new-credential")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&again.stdout).contains(secret));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shown only now"));
}

#[test]
fn command_line_mistakes_get_clear_errors() {
    let env = env();
    // run flags with another command
    let out = env.run_applier(&["--once", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--once, --timeout, --interval and --dry-run belong to `run`")
    );
    // a missing config file names the path
    let out = std::process::Command::new(dyndns_tests::applier_bin())
        .args(["--config", "/nonexistent/dyndns.toml", "--once"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("/nonexistent/dyndns.toml: No such file or directory")
    );
    // an unknown option
    let out = env.run_applier(&["--frobnicate"]);
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--frobnicate"));
    // a bad interval value
    let out = env.run_applier(&["run", "--interval", "soon"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("soon"));
}

#[test]
fn check_config_warns_about_a_missing_plesk_and_readable_secrets() {
    let env = env();
    let text = fs::read_to_string(&env.config).unwrap();
    let plesk = dyndns_tests::plesk_emulator().display().to_string();
    fs::write(
        &env.config,
        text.replace(&plesk, "/opt/nowhere/plesk")
            + "\n[notify.webhook]\nurl = \"https://chat.example.com/hooks/TOKEN\"\n",
    )
    .unwrap();
    fs::set_permissions(
        &env.config,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let out = env.run_applier(&["check-config"]);
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.contains("warning: applier.plesk: /opt/nowhere/plesk is not an existing file"),
        "{s}"
    );
    assert!(
        s.contains("holds notification secrets but is readable by group or others (mode 644)"),
        "{s}"
    );
    assert!(s.contains("notifications: webhook"), "{s}");
    fs::set_permissions(
        &env.config,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let s = String::from_utf8_lossy(&env.run_applier(&["check-config"]).stdout).into_owned();
    assert!(!s.contains("readable by group"), "{s}");
}

#[test]
fn check_config_warns_when_the_handler_cannot_write_the_queue() {
    let env = env();
    let out = String::from_utf8_lossy(&env.run_applier(&["check-config"]).stdout).into_owned();
    if !rustix::process::geteuid().is_root() {
        // only root can make directories the handler's user cannot write
        assert!(!out.contains("belongs to root"), "{out}");
        return;
    }
    assert!(
        out.contains("queue/new belongs to root: the handler cannot write updates there"),
        "{out}"
    );
    for sub in ["tmp", "new"] {
        rustix::fs::chown(
            env.queue.join(sub),
            Some(rustix::process::Uid::from_raw(65534)),
            None,
        )
        .unwrap();
    }
    let out = String::from_utf8_lossy(&env.run_applier(&["check-config"]).stdout).into_owned();
    assert!(!out.contains("belongs to root"), "{out}");
}

#[test]
fn an_update_arriving_during_a_batch_is_not_lost() {
    // DESIGN.md: the applier claims entries before applying them, so an
    // update that arrives meanwhile survives and is applied next.
    let mut env = env();
    env.applier_env
        .push(("PLESK_EMU_LATENCY_MS".into(), "300".into()));
    env.enqueue("h1.dyn.example.com", "A", "198.51.100.1");
    let mut applier = env.spawn_applier(&["run"]);
    assert!(wait_for(Duration::from_secs(15), || env
        .events()
        .iter()
        .any(|e| e.event == "start" && e.command() == "--del")));
    // the first address is being applied right now
    env.enqueue("h1.dyn.example.com", "A", "198.51.100.2");
    assert!(
        wait_for(Duration::from_secs(15), || env.addresses(
            "dyn.example.com",
            "h1.dyn.example.com.",
            "A"
        ) == vec!["198.51.100.2"]
            && env.queue_files("new").is_empty()
            && env.queue_files("cur").is_empty()),
        "{}",
        applier.log()
    );
    applier.terminate();
    assert_eq!(applier.wait_timeout(Duration::from_secs(10)), Some(0));
    let adds: Vec<String> = env
        .calls_of("--add")
        .iter()
        .map(|c| c.args[7].clone())
        .collect();
    assert_eq!(adds, vec!["198.51.100.1", "198.51.100.2"]);
}
