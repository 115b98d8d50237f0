//! Hardening of the applier against a compromised web side and hostile
//! local users (issue 9): planted links and FIFOs never reach `status`,
//! queue text never reaches root's log or terminal raw, IPv6 forms that
//! embed an unpublishable IPv4 address are refused everywhere, a Plesk call
//! is bounded with its output, `failed/` stays bounded and cheap, and the
//! metrics file is never written through a planted link.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use dyndns_tests::{Server, TestEnv, credential, http, process_alive, program};

const CONFIG: &str = r#"
zones = ["dyn.example.com"]
[[hosts]]
name = "home.dyn.example.com"
[[hosts]]
name = "nas.dyn.example.com"
[[hosts]]
name = "cam.dyn.example.com"
[[hosts]]
name = "pc.dyn.example.com"
"#;

fn env_with(applier: &str) -> TestEnv {
    let env = TestEnv::new(CONFIG, applier);
    env.set_zones(&[(
        "dyn.example.com",
        &[
            ("home.dyn.example.com.", "A", "192.0.2.1"),
            ("home.dyn.example.com.", "AAAA", "2001:db8::1"),
            ("nas.dyn.example.com.", "AAAA", "2001:db8::2"),
            ("cam.dyn.example.com.", "AAAA", "2001:db8::3"),
            ("pc.dyn.example.com.", "A", "192.0.2.4"),
        ],
    )]);
    env
}

fn env() -> TestEnv {
    env_with("")
}

/// Writes a raw entry file into `new/` under `name`.
fn plant_entry(env: &TestEnv, name: &str, json: &serde_json::Value) {
    fs::write(env.queue.join("new").join(name), json.to_string()).unwrap();
}

fn entry(host: &str, rtype: &str, address: &str, user: &str) -> serde_json::Value {
    serde_json::json!({
        "format": 1, "host": host, "type": rtype, "address": address,
        "requested_at": humantime::format_rfc3339_nanos(SystemTime::now()).to_string(),
        "user": user, "client": "203.0.113.1",
    })
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

/// What a bounded run of the applier did.
struct BoundedRun {
    output: std::process::Output,
    /// The highest resident memory seen while it ran, in KiB.
    peak_kib: u64,
}

/// Runs the applier with an address-space limit (so a runaway read fails
/// instead of eating the machine's memory) and a deadline (so a blocking
/// read fails the test instead of hanging it), sampling its resident
/// memory while it runs. `None` when it had to be killed.
fn run_bounded(env: &TestEnv, args: &[&str], limit: Duration) -> Option<BoundedRun> {
    let mut cmd = Command::new(program("prlimit"));
    cmd.arg(format!("--as={}", 512 * 1024 * 1024))
        .arg("--")
        .arg(dyndns_tests::applier_bin())
        .arg("--config")
        .arg(&env.config)
        .args(args)
        .env("PLESK_EMU_STATE", &env.emu_state)
        .env("PLESK_EMU_LOG", &env.emu_log)
        .env_remove("DYNDNS_CONFIG")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("run the applier under prlimit");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let deadline = Instant::now() + limit;
    let mut peak_kib = 0;
    loop {
        // prlimit execs the applier: same process id.
        let hwm = fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        peak_kib = peak_kib.max(hwm);
        match rx.recv_timeout(Duration::from_millis(2)) {
            Ok(out) => {
                return Some(BoundedRun {
                    output: out.expect("applier output"),
                    peak_kib,
                });
            }
            Err(_) if Instant::now() < deadline => {}
            Err(_) => {
                if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
                return None;
            }
        }
    }
}

/// True when `text` has a control character other than a line feed, or a
/// Unicode character that reorders or hides text on a terminal.
fn has_raw_controls(text: &str) -> bool {
    text.chars().any(|c| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
    })
}

/// Names in `failed/` the applier chose itself: `<id>.item` and `<id>.reason`.
fn applier_named(name: &str) -> bool {
    let id = name
        .strip_suffix(".item")
        .or_else(|| name.strip_suffix(".reason"));
    id.is_some_and(|id| {
        let parts: Vec<&str> = id.split('-').collect();
        parts.len() == 3
            && parts[0].len() == 13
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// A root-only file whose second line looks like a reason line.
fn root_only_secret(env: &TestEnv) -> (PathBuf, &'static str) {
    let secret = env.dir.path().join("root-only");
    let text = "item: x\nreason: TOPSECRET line of a root-only file\n";
    fs::write(&secret, text).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    (secret, text)
}

#[test]
fn rejected_items_never_keep_a_name_the_web_side_chose() {
    let env = env();
    let (secret, _) = root_only_secret(&env);
    let new = env.queue.join("new");
    // Items whose names end like the applier's own reason files.
    symlink(&secret, new.join("a.reason")).unwrap();
    mkfifo(&new.join("b.reason"));
    symlink("/dev/zero", new.join("c.reason")).unwrap();
    symlink(&secret, new.join("home.dyn.example.com_A.json.reason")).unwrap();
    env.enqueue("pc.dyn.example.com", "A", "198.51.100.4");

    let out = run_bounded(&env, &["--once"], Duration::from_secs(60))
        .expect("batch hung")
        .output;
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert_eq!(
        env.addresses("dyn.example.com", "pc.dyn.example.com.", "A"),
        vec!["198.51.100.4"],
        "the good entry beside them is applied"
    );
    let failed = env.queue_files("failed");
    assert_eq!(failed.len(), 8, "four items, four reasons: {failed:?}");
    for name in &failed {
        assert!(
            applier_named(name),
            "{name:?} in failed/ was not named by the applier: {failed:?}"
        );
    }
    let out = run_bounded(&env, &["status"], Duration::from_secs(20))
        .expect("status hung")
        .output;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("failed (4)"), "{stdout}");
    assert!(!stdout.contains("TOPSECRET"), "{stdout}");
    for original in ["new/a.reason", "new/b.reason", "new/c.reason"] {
        assert!(
            stdout.contains(original),
            "the original name is shown: {stdout}"
        );
    }
    assert!(stdout.contains("is a symbolic link"), "{stdout}");
    assert!(stdout.contains("is a FIFO"), "{stdout}");
}

#[test]
fn status_never_follows_blocks_on_or_slurps_a_planted_file() {
    // What an older version left in failed/ under the names the web side
    // chose: a link to a root-only file, a FIFO, a link to /dev/zero.
    for case in ["link to a root-only file", "FIFO", "link to /dev/zero"] {
        let env = env();
        let (secret, secret_text) = root_only_secret(&env);
        let failed = env.queue.join("failed");
        fs::create_dir(&failed).unwrap();
        fs::set_permissions(&failed, fs::Permissions::from_mode(0o700)).unwrap();
        let planted = failed.join("old.reason");
        match case {
            "FIFO" => mkfifo(&planted),
            "link to /dev/zero" => symlink("/dev/zero", &planted).unwrap(),
            _ => symlink(&secret, &planted).unwrap(),
        }
        let started = Instant::now();
        let run = run_bounded(&env, &["status"], Duration::from_secs(20))
            .unwrap_or_else(|| panic!("{case}: status hung"));
        let stdout = String::from_utf8_lossy(&run.output.stdout);
        let stderr = String::from_utf8_lossy(&run.output.stderr);
        assert!(run.output.status.success(), "{case}: {stderr}\n{stdout}");
        assert!(started.elapsed() < Duration::from_secs(10), "{case}");
        assert!(
            run.peak_kib < 64 * 1024,
            "{case}: status used {} MiB",
            run.peak_kib / 1024
        );
        assert!(
            !stdout.contains("TOPSECRET") && !stderr.contains("TOPSECRET"),
            "{case}: status printed a root-only file:\n{stdout}"
        );
        assert!(stdout.contains("failed (1)"), "{case}: {stdout}");
        assert!(stdout.contains("old.reason"), "{case}: {stdout}");
        assert_eq!(fs::read_to_string(&secret).unwrap(), secret_text);
    }
}

#[test]
fn queue_text_cannot_forge_log_lines_or_reach_the_terminal_raw() {
    let env = env();
    // An unknown key whose name carries a complete fake log line.
    let forged = "x\n2026-01-01T00:00:00.000000Z  INFO applied home.dyn.example.com A 192.0.2.1 -> 203.0.113.66 ms=1\n";
    let mut e = entry("home.dyn.example.com", "A", "198.51.100.1", "alice");
    e[forged] = serde_json::json!(1);
    plant_entry(&env, "home.dyn.example.com_A.json", &e);
    // A valid-looking entry whose user carries terminal escapes.
    let evil_user = "eve\u{1b}]0;pwned\u{7}\u{1b}[2J\u{202e}";
    plant_entry(
        &env,
        "nas.dyn.example.com_AAAA.json",
        &entry("nas.dyn.example.com", "AAAA", "2001:db8::99", evil_user),
    );
    // A rejected item whose reason carries them (an unknown key again).
    let mut e = entry("cam.dyn.example.com", "AAAA", "2001:db8::98", "alice");
    e["k\u{1b}[31m\u{9b}31m\r"] = serde_json::json!(1);
    plant_entry(&env, "cam.dyn.example.com_AAAA.json", &e);

    // status before the batch: pending entries and would-be rejections
    let out = env.run_applier(&["status"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        !has_raw_controls(&stdout),
        "status printed raw control characters:\n{stdout:?}"
    );
    assert!(
        stdout.contains("pending (0)"),
        "the entry with a bad user is not pending: {stdout}"
    );

    // dry run prints too
    let out = env.run_applier(&["run", "--once", "--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !has_raw_controls(&stdout),
        "dry run printed raw control characters:\n{stdout:?}"
    );

    let out = env.run_applier(&["--once"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{log}");
    for line in log.lines() {
        assert!(
            line.len() > 20 && line.as_bytes()[..4].iter().all(u8::is_ascii_digit),
            "a log line that does not start with a timestamp: {line:?}\n{log}"
        );
        assert!(
            !line.contains("203.0.113.66") || line.contains("WARN"),
            "forged line: {line:?}"
        );
    }
    assert!(!has_raw_controls(&log), "{log:?}");
    assert!(
        !log.lines().any(|l| {
            let mut fields = l.split_whitespace().skip(1);
            fields.next() == Some("INFO") && fields.next() == Some("applied")
        }),
        "a forged `applied` line: {log}"
    );
    assert!(log.contains("user"), "the user name is the reason: {log}");
    assert_eq!(
        env.addresses("dyn.example.com", "nas.dyn.example.com.", "AAAA"),
        vec!["2001:db8::2"],
        "an entry with an invalid user is rejected"
    );
    assert!(env.calls_of("--add").is_empty());

    // status after the batch: failed reasons
    let out = env.run_applier(&["status"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("failed (3)"), "{stdout}");
    assert!(
        !has_raw_controls(&stdout),
        "status printed raw control characters:\n{stdout:?}"
    );
    assert!(stdout.contains("\\u{1b}"), "escaped, not dropped: {stdout}");
}

#[test]
fn aaaa_entries_embedding_unpublishable_ipv4_are_rejected_by_the_applier() {
    let env = env();
    // A compromised web side writes the raw addresses into the queue.
    env.enqueue("home.dyn.example.com", "AAAA", "::ffff:127.0.0.1");
    env.enqueue("nas.dyn.example.com", "AAAA", "::127.0.0.1");
    env.enqueue("cam.dyn.example.com", "AAAA", "64:ff9b::7f00:1");
    let out = env.run_applier(&["--once"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(
        env.calls().iter().all(|c| c.command() == "--info"),
        "nothing was changed: {:?}",
        env.calls()
    );
    for (host, old) in [
        ("home", "2001:db8::1"),
        ("nas", "2001:db8::2"),
        ("cam", "2001:db8::3"),
    ] {
        assert_eq!(
            env.addresses(
                "dyn.example.com",
                &format!("{host}.dyn.example.com."),
                "AAAA"
            ),
            vec![old]
        );
    }
    let failed = env.queue_files("failed");
    assert_eq!(failed.len(), 6, "{failed:?}");
    let out = env.run_applier(&["status"]);
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.contains("127.0.0.1"), "{status}");
    assert!(status.contains("loopback"), "{status}");
}

#[test]
fn embedded_ipv4_forms_are_badagent_over_http() {
    let secret = "alice-secret-0123456789";
    let body = format!(
        "{CONFIG}\n[[users]]\nname = \"alice\"\ncredential = \"{}\"\nhosts = [\"home.dyn.example.com\"]\n",
        credential(secret)
    );
    let env = TestEnv::new(&body, "");
    env.publish();
    env.fake_heartbeat(SystemTime::now());
    let server: Server = env.serve();
    let ask = |myip: &str| -> http::Response {
        server.get(
            &format!("/nic/update?hostname=home.dyn.example.com&myip={myip}"),
            Some(("alice", secret)),
            &[],
        )
    };
    for bad in [
        "::127.0.0.1",
        "::7f00:1",
        "::ffff:0:7f00:1",
        "64:ff9b::7f00:1",
        "64:ff9b::a00:1",
        "64:ff9b::c0a8:101",
        "64:ff9b:1::7f00:1",
        "2002:7f00:1::1",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
        "::",
    ] {
        let r = ask(bad);
        assert_eq!(r.body, "badagent\n", "myip={bad}");
    }
    assert!(
        env.queue_files("new").is_empty(),
        "{:?}",
        env.queue_files("new")
    );
    // the same forms with a global IPv4 inside are fine
    let r = ask("64:ff9b::808:808");
    assert_eq!(r.body, "good 64:ff9b::808:808\n");
    let r = ask("2002:c000:221::1");
    assert_eq!(r.body, "good 2002:c000:221::1\n");
}

/// A stand-in for `plesk` that does the real (emulated) work but leaves a
/// grandchild in its own session holding stdout open. `hang` makes the
/// call itself hang as well.
fn leaky_plesk(env: &TestEnv, hang: bool) -> (PathBuf, PathBuf) {
    let pids = env.dir.path().join("grandchildren");
    let script = env.dir.path().join("plesk-leaky");
    let last = if hang {
        "exec sleep 60".to_string()
    } else {
        format!("exec {} \"$@\"", dyndns_tests::plesk_emulator().display())
    };
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nsetsid sh -c 'echo $$ >> {}; exec sleep 40' &\n{last}\n",
            pids.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    (script, pids)
}

fn kill_listed(pids: &Path) {
    for pid in fs::read_to_string(pids).unwrap_or_default().lines() {
        if let Some(p) = pid
            .trim()
            .parse()
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
    }
}

#[test]
fn a_grandchild_holding_plesks_output_cannot_stall_the_applier() {
    for hang in [false, true] {
        let env = env_with("plesk_timeout = \"1s\"\nretry_initial = \"10s\"\n");
        let (script, pids) = leaky_plesk(&env, hang);
        let text = fs::read_to_string(&env.config).unwrap().replace(
            &format!("plesk = \"{}\"", dyndns_tests::plesk_emulator().display()),
            &format!("plesk = \"{}\"", script.display()),
        );
        fs::write(&env.config, text).unwrap();
        env.enqueue("pc.dyn.example.com", "A", "198.51.100.4");
        dyndns_tests::applier_bin(); // built before the clock starts
        let started = Instant::now();
        let out = run_bounded(&env, &["--once"], Duration::from_secs(60));
        let elapsed = started.elapsed();
        kill_listed(&pids);
        let out = out.expect("the applier never returned").output;
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            elapsed < Duration::from_secs(5),
            "hang={hang}: a 1 s Plesk timeout took {elapsed:?}\n{log}"
        );
        assert_eq!(
            out.status.code(),
            Some(3),
            "hang={hang}: a transient failure, kept for a retry\n{log}"
        );
        assert!(log.contains("timed out after 1s"), "{log}");
        assert_eq!(env.queue_files("cur").len(), 1, "the entry is kept");
        assert!(env.queue_files("failed").is_empty());
        for pid in fs::read_to_string(&pids).unwrap_or_default().lines() {
            let pid: u32 = pid.trim().parse().unwrap();
            assert!(
                !process_alive(pid) || wait_gone(pid),
                "grandchild {pid} left running by the test"
            );
        }
    }
}

fn wait_gone(pid: u32) -> bool {
    dyndns_tests::wait_for(Duration::from_secs(5), || !process_alive(pid))
}

/// An id in the applier's naming of `failed/` for a rejection `age` ago.
fn failed_id(age: Duration, n: usize) -> String {
    let ms = (SystemTime::now() - age)
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!("{ms:013}-1-{n}")
}

fn fill_failed(env: &TestEnv, count: usize, age: impl Fn(usize) -> Duration) -> Vec<String> {
    let mut ids = Vec::new();
    let dir = env.queue.join("failed");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    for n in 0..count {
        let id = failed_id(age(n), n);
        fs::write(dir.join(format!("{id}.item")), b"{}").unwrap();
        fs::write(
            dir.join(format!("{id}.reason")),
            serde_json::json!({"format": 1, "item": format!("new/x{n}"), "reason": "test",
                "rejected_at": humantime::format_rfc3339_seconds(SystemTime::now() - age(n)).to_string()})
            .to_string(),
        )
        .unwrap();
        ids.push(id);
    }
    ids
}

#[test]
fn failed_is_trimmed_by_count_and_age() {
    let env = env();
    // 1,200 items a minute or more old, newest last, and 30 from last year
    let recent = fill_failed(&env, 1200, |n| Duration::from_secs(60 + (1200 - n as u64)));
    let ancient = fill_failed(&env, 30, |_| Duration::from_secs(365 * 86400));
    // a foreign item (from an older version) whose mtime is old
    let legacy = env.queue.join("failed/home.dyn.example.com_A.json");
    fs::write(&legacy, b"{}").unwrap();
    let old = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        &legacy,
        &old,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
    env.enqueue("pc.dyn.example.com", "A", "198.51.100.4");
    env.apply_once();
    let failed = env.queue_files("failed");
    let items: Vec<&String> = failed.iter().filter(|f| f.ends_with(".item")).collect();
    assert_eq!(items.len(), 1000, "kept the newest 1000 items");
    assert_eq!(
        failed.iter().filter(|f| f.ends_with(".reason")).count(),
        1000,
        "and their reasons"
    );
    let kept: Vec<String> = items
        .iter()
        .map(|f| f.trim_end_matches(".item").to_string())
        .collect();
    let mut expected = recent[200..].to_vec();
    expected.sort();
    assert_eq!(kept, expected, "the newest 1000 survived");
    assert!(ancient.iter().all(|id| !kept.contains(id)));
    assert!(!legacy.exists(), "an old foreign item is removed by age");
}

/// How many file system calls naming `failed/` an applier run makes,
/// traced with strace.
fn failed_syscalls(env: &TestEnv, args: &[&str]) -> (usize, String) {
    let trace = env.dir.path().join(format!(
        "strace-{}.out",
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let status = Command::new(program("strace"))
        .arg("-f")
        .arg("-qq")
        .arg("-e")
        .arg("trace=%file")
        .arg("-o")
        .arg(&trace)
        .arg(dyndns_tests::applier_bin())
        .arg("--config")
        .arg(&env.config)
        .args(args)
        .env("PLESK_EMU_STATE", &env.emu_state)
        .env("PLESK_EMU_LOG", &env.emu_log)
        .env_remove("DYNDNS_CONFIG")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("strace (run scripts/test-deps.sh)");
    assert!(status.code().is_some());
    let text = fs::read_to_string(&trace).unwrap_or_default();
    let failed = format!("{}/failed", env.queue.display());
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(&failed)).collect();
    (lines.len(), lines.join("\n"))
}

#[test]
fn a_batch_does_not_scan_failed_however_large_or_however_many_batches() {
    let mut counts = Vec::new();
    for (size, seconds) in [(50, "1"), (900, "1"), (900, "3")] {
        let metrics = tempfile::tempdir().unwrap();
        let env = env_with(&format!(
            "interval = \"50ms\"\nmetrics_file = \"{}/dyndns.prom\"\n",
            metrics.path().display()
        ));
        fill_failed(&env, size, |n| Duration::from_secs(60 + n as u64));
        // one rejection in every run
        plant_entry(&env, "x.dyn.example.com_A.json", &serde_json::json!({}));
        let (count, lines) = failed_syscalls(&env, &["run", "--timeout", seconds]);
        assert_eq!(
            env.queue_files("failed").len(),
            2 * size + 2,
            "the rejected item and its reason were added"
        );
        counts.push((size, seconds, count, lines));
    }
    let (_, _, first, lines) = &counts[0];
    for (size, seconds, count, other) in &counts[1..] {
        assert_eq!(
            count, first,
            "failed/ of {size} items, {seconds} s of batches: {count} calls naming failed/, \
             against {first} for 50 items and 1 s\n--- small:\n{lines}\n--- this:\n{other}"
        );
    }
    assert!(*first < 20, "{first} calls:\n{lines}");
}

#[test]
fn metrics_are_never_written_through_a_planted_link() {
    let base = tempfile::tempdir().unwrap();
    let elsewhere = base.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    // The metrics directory replaced by a symlink.
    let linked = base.path().join("linked");
    symlink(&elsewhere, &linked).unwrap();
    let env = env_with(&format!(
        "metrics_file = \"{}/dyndns.prom\"\n",
        linked.display()
    ));
    env.enqueue("pc.dyn.example.com", "A", "198.51.100.4");
    let out = env.run_applier(&["--once"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert_eq!(
        fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "root wrote through the link"
    );
    assert!(log.contains("cannot write metrics"), "{log}");
    assert!(log.contains("symbolic link"), "{log}");

    // A directory anyone may write to (without the sticky bit) is refused:
    // anyone could replace the file with forged metrics.
    let open = base.path().join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let env = env_with(&format!(
        "metrics_file = \"{}/dyndns.prom\"\n",
        open.display()
    ));
    let out = env.run_applier(&["--once"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!open.join("dyndns.prom").exists(), "{log}");
    assert!(log.contains("writable by others"), "{log}");

    // With the sticky bit (like /tmp) others cannot replace our file; a
    // link planted at the file's own name is replaced, not followed.
    let sticky = base.path().join("sticky");
    fs::create_dir(&sticky).unwrap();
    fs::set_permissions(&sticky, fs::Permissions::from_mode(0o1777)).unwrap();
    let victim = base.path().join("victim");
    fs::write(&victim, b"precious").unwrap();
    symlink(&victim, sticky.join("dyndns.prom")).unwrap();
    let env = env_with(&format!(
        "metrics_file = \"{}/dyndns.prom\"\n",
        sticky.display()
    ));
    let out = env.run_applier(&["--once"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(fs::read(&victim).unwrap(), b"precious", "{log}");
    let meta = fs::symlink_metadata(sticky.join("dyndns.prom")).unwrap();
    assert!(meta.is_file(), "{log}");
    assert!(
        fs::read_to_string(sticky.join("dyndns.prom"))
            .unwrap()
            .contains("dyndns_batches_total 1"),
        "{log}"
    );
    assert_eq!(meta.permissions().mode() & 0o777, 0o644);
}
