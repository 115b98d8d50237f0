//! What the applier publishes for the handler and how the two behave
//! together: the real applier process (against the Plesk emulator) and the
//! real component (served by `wasmtime serve`) sharing one state and queue.
//! The window in which an update is being applied, the per-host change limit,
//! and who may read the published state.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::{Duration, SystemTime};

use dyndns_tests::{TestEnv, credential, wait_for};

const SECRET: &str = "home-secret-0123456789abcdef";

fn config(applier_extra: &str) -> TestEnv {
    let body = format!(
        r#"
zones = ["dyn.example.com"]
[[hosts]]
name = "home.dyn.example.com"
types = ["A"]
[[users]]
name = "home"
credential = "{}"
hosts = ["home.dyn.example.com"]
"#,
        credential(SECRET)
    );
    let env = TestEnv::new(
        &body,
        &format!(
            "interval = \"100ms\"\nretry_initial = \"200ms\"\nretry_max = \"1s\"\n{applier_extra}"
        ),
    );
    env.set_zones(&[(
        "dyn.example.com",
        &[
            ("dyn.example.com.", "NS", "ns1.example.com."),
            ("home.dyn.example.com.", "A", "192.0.2.1"),
        ],
    )]);
    env
}

fn update(server: &dyndns_tests::Server, ip: &str) -> String {
    server
        .get(
            &format!("/nic/update?hostname=home.dyn.example.com&myip={ip}"),
            Some(("home", SECRET)),
            &[("spin-client-addr", "203.0.113.44:5000")],
        )
        .body
}

#[test]
fn a_request_for_the_old_address_during_a_change_is_not_lost() {
    // The applier has claimed an entry (198.51.100.7) and is busy in Plesk;
    // the router flips back to the address still in the zone. That request
    // must be queued (good), not answered nochg against the address about to
    // be replaced, or the zone ends at the wrong address.
    let mut env = config("");
    env.applier_env
        .push(("PLESK_EMU_LATENCY_MS".into(), "1500".into()));
    env.publish();
    let server = env.serve();
    // the applier confirms 192.0.2.1 first, so the view knows it
    assert_eq!(update(&server, "192.0.2.1"), "good 192.0.2.1\n");
    let out = env.run_applier(&["--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(update(&server, "192.0.2.1"), "nochg 192.0.2.1\n");

    assert_eq!(update(&server, "198.51.100.7"), "good 198.51.100.7\n");
    let mut applier = env.spawn_applier(&["run"]);
    assert!(
        wait_for(Duration::from_secs(20), || env
            .events()
            .iter()
            .any(|e| e.event == "start" && e.command() == "--del")),
        "the change never started: {}",
        applier.log()
    );
    assert!(env.queue_files("new").is_empty(), "claimed");
    assert_eq!(
        update(&server, "192.0.2.1"),
        "good 192.0.2.1\n",
        "queued, not nochg"
    );
    assert!(
        wait_for(Duration::from_secs(30), || env.addresses(
            "dyn.example.com",
            "home.dyn.example.com.",
            "A"
        ) == vec!["192.0.2.1"]
            && env.queue_files("new").is_empty()
            && env.queue_files("cur").is_empty()),
        "the newest request wins: {:?}\n{}",
        env.zone("dyn.example.com"),
        applier.log()
    );
    // settled: the view knows the address again
    assert!(wait_for(Duration::from_secs(5), || update(
        &server,
        "192.0.2.1"
    ) == "nochg 192.0.2.1\n"));
    applier.terminate();
    applier.wait_timeout(Duration::from_secs(10));
}

#[test]
fn a_host_over_its_change_limit_is_answered_abuse_and_nothing_is_lost() {
    let env = config("host_change_limit = 2\nhost_change_window = \"1h\"");
    env.publish();
    let server = env.serve();
    for ip in ["198.51.100.1", "198.51.100.2"] {
        assert_eq!(update(&server, ip), format!("good {ip}\n"));
        env.apply_once();
    }
    let record = env.host_record("home.dyn.example.com").unwrap();
    assert_eq!(record["history"].as_array().unwrap().len(), 2);
    assert!(
        record["limited_until"].is_string(),
        "the second change used up the allowance: {record}"
    );
    // the same address as the zone's is still nochg
    assert_eq!(update(&server, "198.51.100.2"), "nochg 198.51.100.2\n");
    // the handler now answers abuse for a change, keeps it queued, logs it
    assert_eq!(update(&server, "198.51.100.3"), "abuse\n");
    assert_eq!(
        env.pending("home.dyn.example.com", "A")
            .unwrap()
            .address
            .to_string(),
        "198.51.100.3"
    );
    let log = server.log();
    assert!(
        log.contains("rate limit exceeded client=203.0.113.44 user=\"home\" host=\"home.dyn.example.com\" until="),
        "{log}"
    );
    // the line fail2ban's dyndns-abuse filter matches (and nothing else)
    let log_file = env.dir.path().join("handler.log");
    fs::write(&log_file, &log).unwrap();
    let out = Command::new(dyndns_tests::program("fail2ban-regex"))
        .args(["--out", "ip"])
        .arg(&log_file)
        .arg(dyndns_tests::root().join("deploy/fail2ban/filter.d/dyndns-abuse.conf"))
        .output()
        .expect("fail2ban-regex (run scripts/test-deps.sh)");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "203.0.113.44");
    // repeated, it is the newest known address (queued): nochg, as without a limit
    assert_eq!(update(&server, "198.51.100.3"), "nochg 198.51.100.3\n");
    // the applier holds the change back (exit 3: left for later), no Plesk change
    let before = env.calls_of("--add").len();
    let out = env.run_applier(&["--once"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(log.contains("change limit reached"), "{log}");
    assert_eq!(env.calls_of("--add").len(), before);
    assert_eq!(env.queue_files("cur").len(), 1, "kept, not dropped");
    assert_eq!(
        env.addresses("dyn.example.com", "home.dyn.example.com.", "A"),
        vec!["198.51.100.2"]
    );
    // status says why it waits
    let status = env.run_applier(&["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("over the change limit"), "{text}");
    // going back to the zone's address cancels the held-back change
    assert_eq!(update(&server, "198.51.100.2"), "good 198.51.100.2\n");
    env.apply_once();
    assert_eq!(
        env.calls_of("--add").len(),
        before,
        "nothing to change in Plesk"
    );
    assert!(env.queue_files("cur").is_empty() && env.queue_files("new").is_empty());
}

#[test]
fn the_published_state_is_not_readable_by_other_local_users() {
    // Issue 9, finding 6: user names, grants, credential hashes and
    // addresses were world-readable (0644 files in 0755 directories).
    let env = config("");
    env.enqueue("home.dyn.example.com", "A", "198.51.100.7");
    let out = env.run_applier(&["--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gid = fs::metadata(env.queue.join("new")).unwrap().gid();
    let mut checked = 0;
    for entry in walk(&env.state) {
        let meta = fs::symlink_metadata(&entry).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        assert_eq!(
            mode & 0o007,
            0,
            "{} is open to others ({mode:o})",
            entry.display()
        );
        assert_eq!(
            meta.gid(),
            gid,
            "{} has the handler's group",
            entry.display()
        );
        if meta.is_dir() {
            assert_eq!(mode, 0o750, "{}", entry.display());
        } else if !entry
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            assert_eq!(mode, 0o640, "{}", entry.display());
        }
        checked += 1;
    }
    assert!(checked > 6, "walked {checked} items");
    // and a real unprivileged user cannot read a view file
    if rustix::process::geteuid().is_root() {
        // the temporary directory itself is 0700: open it as a real
        // deployment's /var/lib/dyndns is (0755)
        fs::set_permissions(env.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let view = env.state.join("view/settings.json");
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
            .arg(&view)
            .output()
            .expect("setpriv (util-linux)");
        assert!(!out.status.success(), "nobody read {}", view.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Permission denied"), "{err}");
    } else {
        eprintln!(
            "SKIPPED part of the_published_state_is_not_readable_by_other_local_users: needs root"
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn nochg_records_heard_once_per_resolution_and_the_applier_folds_it_in() {
    // Design (issue 12): a nochg must not become a durable write. The
    // handler writes a small "heard" marker only when the published
    // last-heard time is older than handler.heard_resolution; the applier
    // folds it into the host's record and republishes, so the next nochg
    // within the period writes nothing.
    let env = config("");
    env.publish();
    let server = env.serve();
    assert_eq!(update(&server, "198.51.100.7"), "good 198.51.100.7\n");
    let out = env.run_applier(&["--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let applied = env.host_record("home.dyn.example.com").unwrap();
    let first_heard = applied["last_heard"].as_str().unwrap().to_string();

    // just heard (the good's own request): a nochg writes nothing
    assert_eq!(update(&server, "198.51.100.7"), "nochg 198.51.100.7\n");
    assert!(
        env.queue_files("new").is_empty(),
        "{:?}",
        env.queue_files("new")
    );

    // make the published time old: the next nochg leaves one marker, however
    // many arrive before the applier picks it up
    let mut record = applied.clone();
    record["last_heard"] = serde_json::json!("2026-01-01T00:00:00Z");
    fs::write(
        env.state.join("hosts/home.dyn.example.com.json"),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
    env.publish();
    let marker_path = env.queue.join("new/home.dyn.example.com_HEARD.json");
    let inode = |p: &std::path::Path| fs::symlink_metadata(p).map(|m| m.ino()).ok();
    assert_eq!(update(&server, "198.51.100.7"), "nochg 198.51.100.7\n");
    let written = inode(&marker_path).expect("a marker after a stale nochg");
    for _ in 0..3 {
        assert_eq!(update(&server, "198.51.100.7"), "nochg 198.51.100.7\n");
    }
    assert_eq!(
        env.queue_files("new"),
        vec!["home.dyn.example.com_HEARD.json"]
    );
    // one write: the later requests see the fresh marker and leave it be
    assert_eq!(
        inode(&marker_path),
        Some(written),
        "the marker was rewritten"
    );
    // a marker older than handler.heard_resolution (the applier has been
    // away) is replaced by the next nochg, so "last heard" stays that fresh
    fs::File::options()
        .write(true)
        .open(&marker_path)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    assert_eq!(update(&server, "198.51.100.7"), "nochg 198.51.100.7\n");
    assert_ne!(inode(&marker_path), Some(written), "an old marker was kept");
    let marker: serde_json::Value = serde_json::from_slice(
        &fs::read(env.queue.join("new/home.dyn.example.com_HEARD.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(marker["type"], "HEARD");
    assert_eq!(marker["user"], "home");
    assert_eq!(marker["client"], "203.0.113.44");

    // the applier folds it in without touching Plesk
    let calls_before = env.calls().len();
    env.apply_once();
    assert_eq!(env.calls().len(), calls_before, "no Plesk call at all");
    assert!(env.queue_files("new").is_empty() && env.queue_files("cur").is_empty());
    let record = env.host_record("home.dyn.example.com").unwrap();
    let heard = record["last_heard"].as_str().unwrap();
    assert!(heard > first_heard.as_str(), "{heard} after {first_heard}");
    let view = fs::read_to_string(env.state.join("view/hosts/home.dyn.example.com.json")).unwrap();
    assert!(
        view.contains(&format!("\"last_heard\":\"{}", &heard[..19])),
        "{view}"
    );
    // and now a nochg writes nothing again
    assert_eq!(update(&server, "198.51.100.7"), "nochg 198.51.100.7\n");
    assert!(env.queue_files("new").is_empty());
}

#[test]
fn a_forged_heard_marker_for_someone_elses_host_is_rejected() {
    let env = config("");
    let entry = serde_json::json!({
        "format": 1, "host": "home.dyn.example.com", "type": "HEARD",
        "requested_at": "2026-11-29T00:00:00Z", "user": "mallory", "client": null,
    });
    fs::write(
        env.queue.join("new/home.dyn.example.com_HEARD.json"),
        serde_json::to_vec(&entry).unwrap(),
    )
    .unwrap();
    let out = env.run_applier(&["--once"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "rejected: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        env.host_record("home.dyn.example.com")
            .is_none_or(|r| r["last_heard"].is_null()),
        "not counted as heard"
    );
}

#[test]
fn a_changing_entry_is_marked_in_flux_before_it_leaves_new() {
    // The claim moves an entry out of new/, where the handler looks for
    // pending entries. The host whose address is about to change must be
    // published "in flux" before that: a request for the old address that
    // read the view before the mark and looked in new/ after the claim
    // would otherwise find neither, be answered nochg, and be lost.
    let env = config("");
    env.set_applied("home.dyn.example.com", "A", "192.0.2.1");
    env.enqueue("home.dyn.example.com", "A", "198.51.100.7");
    let trace = env.dir.path().join("applier.trace");
    let applier = env.applier();
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-e", "trace=%file", "-o"])
        .arg(&trace)
        .arg(applier.get_program())
        .args(applier.get_args())
        .arg("--once");
    for (k, v) in applier.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd.output().expect("strace (test-deps installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        env.addresses("dyn.example.com", "home.dyn.example.com.", "A"),
        vec!["198.51.100.7"]
    );
    let text = fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let entry = "new/home.dyn.example.com_A.json";
    // the batch's first look at the entry (opened by name, relative to
    // new/), and the claim that moves it
    let seen = lines
        .iter()
        .position(|l| l.contains("home.dyn.example.com_A.json\""))
        .unwrap_or_else(|| panic!("{entry} never touched:\n{text}"));
    let claim = lines
        .iter()
        .position(|l| l.contains("rename") && l.contains(entry))
        .unwrap_or_else(|| panic!("{entry} never claimed:\n{text}"));
    let marked = lines[seen..claim]
        .iter()
        .any(|l| l.contains("rename") && l.contains("/view/"));
    assert!(
        marked,
        "no view written between reading the entry and claiming it:\n{}",
        lines[seen.saturating_sub(5)..(claim + 5).min(lines.len())].join("\n")
    );
}
