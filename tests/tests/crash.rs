//! Crash tests: kill -9 the applier at every Plesk call of a batch (so also
//! between a `--del` and its `--add`) and at timed points in between, start
//! it again, and check that the zone ends up with exactly the newest
//! requested addresses: no duplicates, nothing missing. And kill the
//! handler's runtime while requests are in flight: no half-written entry.

use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use dyndns_tests::{TestEnv, credential, http, wait_for};

const CONFIG: &str = r#"
zones = ["dyn.example.com"]
[[hosts]]
name = "h1.dyn.example.com"
[[hosts]]
name = "h2.dyn.example.com"
[[hosts]]
name = "h3.dyn.example.com"
"#;

const LATENCY_MS: u64 = 150;

fn env() -> TestEnv {
    let mut env = TestEnv::new(
        CONFIG,
        "interval = \"50ms\"\nretry_initial = \"100ms\"\nretry_max = \"500ms\"",
    );
    env.set_zones(&[(
        "dyn.example.com",
        &[
            ("dyn.example.com.", "NS", "ns1.example.com."),
            ("h1.dyn.example.com.", "A", "192.0.2.1"),
            ("h1.dyn.example.com.", "AAAA", "2001:db8::1"),
            ("h2.dyn.example.com.", "A", "192.0.2.2"),
            ("h3.dyn.example.com.", "A", "192.0.2.3"),
        ],
    )]);
    env.applier_env
        .push(("PLESK_EMU_LATENCY_MS".into(), LATENCY_MS.to_string()));
    env.enqueue("h1.dyn.example.com", "A", "198.51.100.1");
    env.enqueue("h1.dyn.example.com", "AAAA", "2001:db8:1::1");
    env.enqueue("h2.dyn.example.com", "A", "198.51.100.2");
    env.enqueue("h3.dyn.example.com", "A", "198.51.100.3");
    env
}

/// Waits until every emulator call that started has ended (an orphaned
/// Plesk call finishes after the applier died, as it would for real).
fn wait_for_orphans(env: &TestEnv) {
    // A call the killed applier had just spawned logs its start a moment
    // later: the counts must agree and stay so for a while.
    let settled = || {
        let ev = env.events();
        ev.iter().filter(|e| e.event == "start").count()
            == ev.iter().filter(|e| e.event == "end").count()
    };
    for _ in 0..2 {
        assert!(
            wait_for(Duration::from_secs(10), settled),
            "an emulator call never ended"
        );
        thread::sleep(Duration::from_millis(300));
    }
    assert!(
        wait_for(Duration::from_secs(10), settled),
        "an emulator call never ended"
    );
}

/// An applier killed right after its first `--del` ended and before the
/// `--add` took effect (the add hangs once, and is killed too, as a crashed
/// machine would lose it).
fn crashed_between_del_and_add() -> TestEnv {
    let mut env = env();
    env.applier_env
        .push(("PLESK_EMU_LATENCY_MS".into(), "0".into()));
    env.applier_env
        .push(("PLESK_EMU_HANG".into(), "--add:1".into()));
    let mut applier = env.spawn_applier(&["run"]);
    assert!(
        wait_for(Duration::from_secs(20), || env.calls_of("--del").len() == 1),
        "{}",
        applier.log()
    );
    applier.kill9();
    kill_hung_adds(&env);
    // Under load the applier can be killed before it spawned the hanging
    // `--add`, leaving the hang unused for the restarted one: drop it.
    env.applier_env.retain(|(k, _)| k != "PLESK_EMU_HANG");
    env
}

/// Kills the `--add` calls still hanging (as a crashed machine would lose
/// them). An emulator process logs its start only once it runs, so one the
/// killed applier had just spawned shows up a moment later: keep looking
/// until the log has been quiet for a while.
fn kill_hung_adds(env: &TestEnv) {
    let mut quiet_since = Instant::now();
    let mut seen = env.events().len();
    while quiet_since.elapsed() < Duration::from_millis(500) {
        for e in env
            .events()
            .iter()
            .filter(|e| e.event == "start" && e.command() == "--add")
        {
            if let Some(pid) = rustix::process::Pid::from_raw(e.pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        thread::sleep(Duration::from_millis(50));
        let now = env.events().len();
        if now != seen {
            seen = now;
            quiet_since = Instant::now();
        }
    }
}

fn assert_converged(env: &TestEnv, h2_expected: &str, context: &str) {
    let zone = env.zone("dyn.example.com");
    let expected = vec![
        (
            "dyn.example.com.".to_string(),
            "NS".to_string(),
            "ns1.example.com.".to_string(),
        ),
        (
            "h1.dyn.example.com.".to_string(),
            "A".to_string(),
            "198.51.100.1".to_string(),
        ),
        (
            "h1.dyn.example.com.".to_string(),
            "AAAA".to_string(),
            "2001:db8:1::1".to_string(),
        ),
        (
            "h2.dyn.example.com.".to_string(),
            "A".to_string(),
            h2_expected.to_string(),
        ),
        (
            "h3.dyn.example.com.".to_string(),
            "A".to_string(),
            "198.51.100.3".to_string(),
        ),
    ];
    let mut expected = expected;
    expected.sort();
    assert_eq!(zone, expected, "{context}");
    assert!(
        env.queue_files("new").is_empty() && env.queue_files("cur").is_empty(),
        "{context}: queue not drained"
    );
    assert!(
        env.queue_files("failed").is_empty(),
        "{context}: {:?}",
        env.queue_files("failed")
    );
    let journal: Vec<String> = std::fs::read_dir(env.private.join("journal"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        journal.is_empty(),
        "{context}: journal not empty: {journal:?}"
    );
}

fn restart_and_check(env: &TestEnv, newer_h2: bool, context: &str) {
    wait_for_orphans(env);
    let h2 = if newer_h2 {
        // a newer request arrived while the applier was down
        env.enqueue("h2.dyn.example.com", "A", "198.51.100.22");
        "198.51.100.22"
    } else {
        "198.51.100.2"
    };
    let out = env.run_applier(&["--once"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{context}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_converged(env, h2, context);
}

#[test]
fn kill_9_during_every_plesk_call() {
    // 1 listing + 4 records x (del + add) = 9 calls
    for k in 1..=9 {
        let env = env();
        let mut applier = env.spawn_applier(&["run"]);
        let reached = wait_for(Duration::from_secs(20), || {
            env.events().iter().filter(|e| e.event == "start").count() >= k
        });
        assert!(reached, "call {k} never started: {}", applier.log());
        applier.kill9();
        let killed_in = env
            .events()
            .iter()
            .filter(|e| e.event == "start")
            .nth(k - 1)
            .map(|e| e.command().to_string());
        restart_and_check(
            &env,
            k % 2 == 1,
            &format!("killed during call {k} ({killed_in:?})"),
        );
    }
}

#[test]
fn kill_9_between_del_and_add() {
    // kill right after a --del has finished and before the applier's --add
    // starts: the record is gone and only the journal knows why
    let env = crashed_between_del_and_add();
    thread::sleep(Duration::from_millis(100));
    let missing: Vec<_> = env
        .zone("dyn.example.com")
        .into_iter()
        .filter(|(n, t, _)| n == "h1.dyn.example.com." && t == "A")
        .collect();
    assert!(
        missing.is_empty(),
        "h1 A was deleted and not re-added: {missing:?}"
    );
    assert!(
        env.private
            .join("journal/h1.dyn.example.com_A.json")
            .exists(),
        "the journal records the interrupted change"
    );
    // the restarted applier has no hang injected any more
    env.apply_once();
    assert_converged(&env, "198.51.100.2", "between del and add");
}

#[test]
fn journal_repairs_even_without_a_queue_entry() {
    // the entry was lost (someone emptied cur/), but the journal still says
    // this applier deleted h1's A record: the record comes back
    let env = crashed_between_del_and_add();
    for f in env.queue_files("cur") {
        std::fs::remove_file(env.queue.join("cur").join(f)).unwrap();
    }
    let out = env.run_applier(&["--once"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        env.addresses("dyn.example.com", "h1.dyn.example.com.", "A"),
        vec!["198.51.100.1"]
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("repairing an interrupted change"));
}

#[test]
fn kill_9_at_timed_points() {
    // whole batch takes about 9 x 150 ms; kill at 16 points across it
    for step in 0..16u64 {
        let env = env();
        let mut applier = env.spawn_applier(&["run"]);
        let delay = Duration::from_millis(40 + step * LATENCY_MS * 9 / 16);
        let start = Instant::now();
        while start.elapsed() < delay {
            thread::sleep(Duration::from_millis(5));
        }
        applier.kill9();
        restart_and_check(&env, step % 3 == 0, &format!("killed after {delay:?}"));
    }
}

#[test]
fn kill_9_twice_in_a_row() {
    let env = env();
    let mut a = env.spawn_applier(&["run"]);
    assert!(wait_for(Duration::from_secs(20), || !env
        .calls_of("--del")
        .is_empty()));
    a.kill9();
    wait_for_orphans(&env);
    let mut b = env.spawn_applier(&["run"]);
    let before = env.events().len();
    assert!(wait_for(Duration::from_secs(20), || env.events().len() >= before + 3));
    b.kill9();
    restart_and_check(&env, true, "killed twice");
}

#[test]
fn killing_the_handler_mid_request_leaves_no_partial_entry() {
    let body = format!(
        "{CONFIG}\n[[users]]\nname = \"u\"\ncredential = \"{}\"\nhosts = [\"h1.dyn.example.com\", \"h2.dyn.example.com\", \"h3.dyn.example.com\"]\n",
        credential("u-secret-0123456789")
    );
    const CLIENTS: u64 = 30;
    let mut acknowledged_in_all_rounds = 0;
    // How long after the clients are connected the server is killed: from
    // before the first request is read to after most are answered.
    for (round, kill_after_ms) in [0u64, 5, 10, 20, 150].into_iter().enumerate() {
        let env = TestEnv::new(&body, "");
        env.publish();
        let server = env.serve();
        let port = server.port;
        // Every client is connected (the kernel has accepted it) before the
        // kill, so each one is a request in flight, never a refused connect.
        let connected = Arc::new(Barrier::new(CLIENTS as usize + 1));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let connected = Arc::clone(&connected);
                thread::spawn(move || {
                    let host = format!("h{}.dyn.example.com", i % 3 + 1);
                    let stream = TcpStream::connect(("127.0.0.1", port));
                    connected.wait();
                    let request = http::build(
                        &format!("127.0.0.1:{port}"),
                        "GET",
                        &format!("/nic/update?hostname={host}&myip=198.51.100.{i}"),
                        Some(("u", "u-secret-0123456789")),
                        &[],
                        None,
                    );
                    let stream = stream.unwrap_or_else(|e| panic!("connect to {port}: {e}"));
                    (host, http::exchange(stream, &request))
                })
            })
            .collect();
        connected.wait();
        thread::sleep(Duration::from_millis(kill_after_ms));
        drop(server); // SIGKILL to the runtime
        let mut acknowledged = Vec::new();
        for c in clients {
            let (host, r) = c.join().unwrap();
            if r.body.starts_with("good") {
                acknowledged.push(host);
            }
        }
        acknowledged_in_all_rounds += acknowledged.len();
        // every entry in new/ is complete and valid
        for f in env.queue_files("new") {
            let bytes = std::fs::read(env.queue.join("new").join(&f)).unwrap();
            let entry: dyndns_core::queue::QueueEntry = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("round {round}: {f} is not a complete entry: {e}"));
            assert!(entry.address.to_string().starts_with("198.51.100."));
        }
        // durable: a host that got "good" has its entry on disk
        for host in &acknowledged {
            assert!(
                env.pending(host, "A").is_some(),
                "round {round}: {host} was acknowledged but has no entry"
            );
        }
    }
    // Otherwise the durability check above never ran.
    assert!(
        acknowledged_in_all_rounds > 0,
        "no request was answered before the kill in any round"
    );
}
