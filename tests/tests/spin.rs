//! What only the production runtime, Spin, does or needs: the repository's
//! `spin.toml` built and served exactly as `make up` does; the server
//! manifest (`deploy/spin.toml`) served with the systemd unit's command line
//! by an unprivileged user from a read-only directory; the client address
//! Spin passes (`spin-client-addr`) for a real peer that is not loopback, a
//! client-sent one ignored; the queue mount writable only with both mount
//! flags; component logs where `--log-dir` says, the fail2ban line among
//! them. Every test prints a SKIPPED line and returns when Spin is absent;
//! the ones that add addresses to `lo` or switch users also need root.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use dyndns_tests::runtime::{self, spin_or_skip};
use dyndns_tests::{
    ComponentSpec, LoopbackAlias, Runtime, SPIN_MOUNT_FLAGS, Server, TestEnv, applier_bin,
    credential, handler_wasm, http, plesk_emulator, program, root, skip, wait_for,
};

const ALICE: (&str, &str) = ("alice", "Alice0Secret0For0Spin0Tests012345");
/// What Plesk's nginx sends as X-Dyndns-Proxy-Secret (handler.proxy_secret).
const PROXY_SECRET: &str = "Proxy0Secret0For0Spin0Tests012345";
/// The user the systemd unit's `User=dyndns` stands for in these tests.
const NOBODY: u32 = 65534;

fn config() -> String {
    format!(
        "zones = [\"dyn.example.com\"]\n\
         [handler]\nproxy_secret = \"{PROXY_SECRET}\"\n\
         [[hosts]]\nname = \"home.dyn.example.com\"\n\
         [[hosts]]\nname = \"office.dyn.example.com\"\n\
         [[hosts]]\nname = \"v6.dyn.example.com\"\ntypes = [\"AAAA\"]\n\
         [[users]]\nname = \"alice\"\ncredential = \"{}\"\n\
         hosts = [\"home.dyn.example.com\", \"office.dyn.example.com\", \"v6.dyn.example.com\"]\n",
        credential(ALICE.1)
    )
}

/// A deployment with a published view and a fresh heartbeat.
fn deployment() -> TestEnv {
    let env = TestEnv::new(&config(), "");
    env.publish();
    env.fake_heartbeat(SystemTime::now());
    env
}

/// A process group killed (SIGTERM, then SIGKILL) on drop: a script and
/// everything it started.
struct Group(Child);

impl Group {
    fn spawn(cmd: &mut Command, log: &Path) -> Group {
        let file = fs::File::create(log).expect("log file");
        Group(
            cmd.process_group(0)
                .stdin(Stdio::null())
                .stdout(file.try_clone().expect("clone"))
                .stderr(file)
                .spawn()
                .expect("spawn"),
        )
    }

    fn signal(&self, sig: rustix::process::Signal) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.0.id() as i32) {
            let _ = rustix::process::kill_process_group(pid, sig);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(rustix::process::Signal::TERM);
        if !wait_for(Duration::from_secs(5), || {
            matches!(self.0.try_wait(), Ok(Some(_)))
        }) {
            self.signal(rustix::process::Signal::KILL);
        }
        let _ = self.0.wait();
    }
}

fn wait_listening(port: u16, group: &mut Group, log: &Path) {
    let up = wait_for(Duration::from_secs(90), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            || matches!(group.0.try_wait(), Ok(Some(_)))
    });
    assert!(
        up && matches!(group.0.try_wait(), Ok(None)),
        "not serving on port {port}:\n{}",
        fs::read_to_string(log).unwrap_or_default()
    );
}

fn update(port: u16, query: &str, auth: (&str, &str)) -> http::Response {
    http::request(
        port,
        "GET",
        &format!("/nic/update?{query}"),
        Some(auth),
        &[],
        None,
    )
}

#[test]
fn the_client_address_is_the_peer_spin_reports_and_a_sent_one_is_ignored() {
    if spin_or_skip().is_none() {
        return;
    }
    let Some(v4) = LoopbackAlias::add("192.0.2.231") else {
        return;
    };
    let Some(v6) = LoopbackAlias::add("2001:db8::e7") else {
        return;
    };
    let env = deployment();
    let server = env.serve_on(Runtime::Spin);

    // no myip: the address Spin passes, which is the real peer
    let r = server.get_from(
        v4.ip,
        "/nic/update?hostname=home.dyn.example.com",
        Some(ALICE),
        &[],
    );
    assert_eq!(r.body, "good 192.0.2.231\n", "{}", server.log());
    let entry = env.pending("home.dyn.example.com", "A").expect("entry");
    assert_eq!(entry.address, v4.ip);
    assert_eq!(entry.client, Some(v4.ip));

    // a spin-client-addr sent by the client, and an X-Forwarded-For without
    // the proxy secret, change nothing
    let r = server.get_from(
        v4.ip,
        "/nic/update?hostname=office.dyn.example.com",
        Some(ALICE),
        &[
            ("spin-client-addr", "203.0.113.9:1"),
            ("x-forwarded-for", "198.51.100.5"),
        ],
    );
    assert_eq!(r.body, "good 192.0.2.231\n", "{}", server.log());
    assert_eq!(
        env.pending("office.dyn.example.com", "A").map(|e| e.client),
        Some(Some(v4.ip))
    );
    // nor does one sent from loopback make that client a public address
    let r = server.get(
        "/nic/update?hostname=office.dyn.example.com",
        Some(ALICE),
        &[("spin-client-addr", "203.0.113.9:1")],
    );
    assert_eq!(r.body, "badagent\n");
    // Plesk's nginx on loopback, with the proxy secret: the forwarded address
    let r = server.get(
        "/nic/update?hostname=office.dyn.example.com",
        Some(ALICE),
        &[
            ("x-forwarded-for", "198.51.100.5"),
            ("x-dyndns-proxy-secret", PROXY_SECRET),
        ],
    );
    assert_eq!(r.body, "good 198.51.100.5\n", "{}", server.log());

    // an IPv6 peer, in the form Spin writes it ([addr]:port)
    let server6 = Server::spin(
        &ComponentSpec::handler(handler_wasm(), &env.state, &env.queue),
        SPIN_MOUNT_FLAGS,
        "::1".parse().expect("::1"),
    );
    let r = server6.get_from(
        v6.ip,
        "/nic/update?hostname=v6.dyn.example.com",
        Some(ALICE),
        &[],
    );
    assert_eq!(r.body, "good 2001:db8::e7\n", "{}", server6.log());
    assert_eq!(
        env.pending("v6.dyn.example.com", "AAAA").map(|e| e.client),
        Some(Some(v6.ip))
    );
}

#[test]
fn component_logs_go_where_log_dir_says_with_the_fail2ban_line() {
    if spin_or_skip().is_none() {
        return;
    }
    let Some(peer) = LoopbackAlias::add("192.0.2.232") else {
        return;
    };
    let env = deployment();
    let server = env.serve_on(Runtime::Spin);
    let r = server.get_from(
        peer.ip,
        "/nic/update?hostname=home.dyn.example.com&myip=198.51.100.7",
        Some(("mallory", "wrong")),
        &[],
    );
    assert_eq!(r.body, "badauth\n");
    let r = server.get_from(
        peer.ip,
        "/nic/update?hostname=home.dyn.example.com&myip=198.51.100.7",
        Some(ALICE),
        &[],
    );
    assert_eq!(r.body, "good 198.51.100.7\n");

    let dir = server.log_dir().expect("Spin has a log dir");
    let stderr = dir.join("dyndns_stderr.txt");
    let line = "authentication failed client=192.0.2.232 user=\"mallory\"";
    assert!(
        wait_for(Duration::from_secs(5), || fs::read_to_string(&stderr)
            .is_ok_and(
                |t| t.contains(line) && t.contains("good 198.51.100.7")
            )),
        "{}: {:?}",
        stderr.display(),
        fs::read_to_string(&stderr)
    );
    assert_eq!(
        fs::read_to_string(dir.join("dyndns_stdout.txt"))
            .ok()
            .as_deref(),
        Some(""),
        "the handler logs to stderr only"
    );
    // Spin passes the same lines on to its own stderr (the journal)
    assert!(server.log().contains(line), "{}", server.log());
    // and the shipped fail2ban filter finds the real peer in Spin's file
    let out = Command::new(program("fail2ban-regex"))
        .args(["--out", "ip"])
        .arg(&stderr)
        .arg(root().join("deploy/fail2ban/filter.d/dyndns.conf"))
        .output()
        .expect("fail2ban-regex (run scripts/test-deps.sh)");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "192.0.2.232",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `spin up --from manifest FLAGS` on a free port, from `dir`.
fn spin_up(spin: &Path, manifest: &Path, flags: &[&str], dir: &Path) -> (Group, u16, PathBuf) {
    let port = dyndns_tests::free_port();
    let log = dir.join(format!("spin-{port}.log"));
    let group = Group::spawn(
        Command::new(spin)
            .args(["up", "--from"])
            .arg(manifest)
            .args(flags)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--log-dir"])
            .arg(dir.join("logs"))
            .current_dir(dir),
        &log,
    );
    (group, port, log)
}

#[test]
fn the_queue_mount_needs_direct_mounts_and_transient_write() {
    let Some(spin) = spin_or_skip() else {
        return;
    };
    let env = deployment();
    let d = env.dir.path();
    // Mounts inside the application directory, as the repository's
    // spin.toml has them (var/state, var/queue next to it).
    let inside = ComponentSpec {
        mounts: vec![
            (PathBuf::from("state"), "/state".into()),
            (PathBuf::from("queue"), "/queue".into()),
        ],
        ..ComponentSpec::handler(handler_wasm(), &env.state, &env.queue)
    };
    let manifest = d.join("spin.toml");
    fs::write(&manifest, inside.spin_manifest()).expect("manifest");
    for flags in [
        &[][..],
        &["--direct-mounts"][..],
        &["--allow-transient-write"][..],
        SPIN_MOUNT_FLAGS,
    ] {
        let (mut group, port, log) = spin_up(spin, &manifest, flags, d);
        wait_listening(port, &mut group, &log);
        let r = update(
            port,
            "hostname=home.dyn.example.com&myip=198.51.100.7",
            ALICE,
        );
        let health = http::request(port, "GET", "/health", None, &[], None);
        if flags == SPIN_MOUNT_FLAGS {
            assert_eq!(r.body, "good 198.51.100.7\n");
            assert_eq!(env.queue_files("new"), vec!["home.dyn.example.com_A.json"]);
            assert!(env.queue_files("tmp").is_empty());
            assert_eq!(health.status, 200, "{}", health.body);
        } else {
            // a copy of the queue, or a read-only one: never a `good` that
            // does not reach the real queue
            assert_eq!(
                (r.status, r.body.as_str()),
                (500, "911\n"),
                "flags {flags:?}"
            );
            assert_eq!(health.status, 503, "flags {flags:?}: {}", health.body);
            assert!(
                health.body.contains("\"queue_writable\":false"),
                "{}",
                health.body
            );
            assert!(env.queue_files("new").is_empty(), "flags {flags:?}");
        }
    }
    // Absolute mounts outside it, as deploy/spin.toml has them: without
    // --direct-mounts Spin refuses to start at all.
    let outside = d.join("outside");
    fs::create_dir_all(&outside).expect("mkdir");
    let manifest = outside.join("spin.toml");
    fs::write(
        &manifest,
        ComponentSpec::handler(handler_wasm(), &env.state, &env.queue).spin_manifest(),
    )
    .expect("manifest");
    let (mut group, _, log) = spin_up(spin, &manifest, &["--allow-transient-write"], &outside);
    assert!(
        wait_for(Duration::from_secs(60), || matches!(
            group.0.try_wait(),
            Ok(Some(status)) if !status.success()
        )),
        "Spin started"
    );
    let said = fs::read_to_string(&log).unwrap_or_default();
    assert!(said.contains("outside the application directory"), "{said}");
}

/// Copies `files` (relative to the checkout) into `dir`.
fn copy_from_checkout(dir: &Path, files: &[&str]) {
    for f in files {
        let to = dir.join(f);
        fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        fs::copy(root().join(f), &to).unwrap_or_else(|e| panic!("copy {f}: {e}"));
    }
}

fn symlink(target: &Path, link: &Path) {
    fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
    std::os::unix::fs::symlink(target, link).expect("symlink");
}

#[test]
fn make_up_builds_and_serves_the_repository_manifest() {
    let Some(spin) = spin_or_skip() else {
        return;
    };
    let wasm = handler_wasm();
    let scratch = tempfile::Builder::new()
        .prefix("dyndns-make-up")
        .tempdir()
        .expect("tempdir");
    let s = scratch.path();

    // `spin build` of the repository's manifest: the cargo build it runs
    // has nothing left to do (the tests built the component already)
    let dot_spin = root().join(".spin");
    let had_dot_spin = dot_spin.exists();
    let out = Command::new(spin)
        .args(["build", "--from"])
        .arg(runtime::repo_manifest())
        .current_dir(s)
        .output()
        .expect("spin build");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("cargo build -p dyndns-handler --target wasm32-wasip2 --release"),
        "{text}"
    );
    assert!(
        had_dot_spin || !dot_spin.exists(),
        "spin build left .spin/ in the checkout"
    );

    // `make up` after its build: the scripts in a copy of the checkout
    // (so its var/ stays untouched), the built files linked in
    copy_from_checkout(
        s,
        &[
            "spin.toml",
            "scripts/local-setup.sh",
            "scripts/serve-local.sh",
            "examples/local.toml",
            "examples/plesk-zone.json",
        ],
    );
    symlink(
        wasm,
        &s.join("target/wasm32-wasip2/release/dyndns_handler.wasm"),
    );
    symlink(applier_bin(), &s.join("target/release/dyndns-applier"));
    symlink(&plesk_emulator(), &s.join("target/release/plesk"));
    let port = dyndns_tests::free_port();
    let listen = format!("127.0.0.1:{port}");
    let out = Command::new("sh")
        .arg("scripts/local-setup.sh")
        .env("LISTEN", &listen)
        .current_dir(s)
        .output()
        .expect("local-setup.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("http://{listen}/health")));
    let log = s.join("serve-local.log");
    let mut group = Group::spawn(
        Command::new("sh")
            .args(["scripts/serve-local.sh", "--dry-run"])
            .env("LISTEN", &listen)
            .env("SPIN", spin)
            .current_dir(s),
        &log,
    );
    wait_listening(port, &mut group, &log);
    let said = fs::read_to_string(&log).unwrap_or_default();
    assert!(said.contains("serving with spin "), "{said}");

    let secret = fs::read_to_string(s.join("var/demo.secret")).expect("demo secret");
    let r = update(
        port,
        "hostname=home.dyn.example.com&myip=198.51.100.7",
        ("demo", secret.trim()),
    );
    assert_eq!(
        r.body,
        "good 198.51.100.7\n",
        "{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    let entry = s.join("var/queue/new/home.dyn.example.com_A.json");
    assert!(entry.is_file(), "the entry is in the real var/queue");
    // the dry-run applier beside it keeps the heartbeat fresh
    assert!(
        wait_for(Duration::from_secs(20), || http::request(
            port,
            "GET",
            "/health",
            None,
            &[],
            None
        )
        .status
            == 200),
        "{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    // Spin keeps its own files under var/spin, the component log there too
    let component_log = s.join("var/spin/logs/dyndns_stderr.txt");
    assert!(
        wait_for(Duration::from_secs(5), || fs::read_to_string(
            &component_log
        )
        .is_ok_and(|t| t.contains("good 198.51.100.7"))),
        "{}",
        component_log.display()
    );
    assert!(
        !s.join(".spin").exists(),
        "Spin wrote .spin/ into the checkout"
    );
}

/// The value of `key=` in a systemd unit (the last one).
fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .rev()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
        .to_string()
}

/// Replaces the one occurrence of `from` in `text`.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} in:\n{text}");
    text.replacen(from, to, 1)
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn chown_nobody(path: &Path) {
    std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).expect("chown");
}

#[test]
fn server_install_serves_with_the_units_command_line_as_an_unprivileged_user() {
    let Some(spin) = spin_or_skip() else {
        return;
    };
    if !rustix::process::geteuid().is_root() {
        skip("needs root to run Spin as another user");
        return;
    }
    // The package's layout (README, "Deployment on Plesk") in a scratch
    // directory: the app folder (root's, read-only for the service), the
    // state (root's), the queue's tmp/ and new/ (the service user's), and
    // Spin's home and state folder (the service user's).
    let env = deployment();
    chmod(env.dir.path(), 0o755);
    for sub in ["tmp", "new"] {
        chown_nobody(&env.queue.join(sub));
        chmod(&env.queue.join(sub), 0o750);
    }
    // the view is published for the group of queue/new: publish again
    env.publish();
    let scratch = tempfile::Builder::new()
        .prefix("dyndns-unit")
        .tempdir()
        .expect("tempdir");
    chmod(scratch.path(), 0o755);
    let app = scratch.path().join("usr/share/dyndns");
    let home = scratch.path().join("var/lib/dyndns-spin");
    fs::create_dir_all(&app).expect("app folder");
    fs::create_dir_all(&home).expect("home");
    chown_nobody(&home);
    chmod(&home, 0o750);
    fs::copy(handler_wasm(), app.join("dyndns_handler.wasm")).expect("copy wasm");
    // the unit's absolute paths, moved into the scratch directory
    let moved = |path: &str| {
        path.replace("/usr/share/dyndns", &app.display().to_string())
            .replace("/var/lib/dyndns-spin", &home.display().to_string())
    };

    // deploy/spin.toml with only its two absolute paths changed
    let shipped = fs::read_to_string(root().join("deploy/spin.toml")).expect("deploy/spin.toml");
    let state = env.state.display().to_string();
    let queue = env.queue.display().to_string();
    let manifest = replace_once(
        &replace_once(
            &shipped,
            "\"/var/lib/dyndns/state\"",
            &format!("\"{state}\""),
        ),
        "\"/var/lib/dyndns/queue\"",
        &format!("\"{queue}\""),
    );
    assert_eq!(
        manifest
            .replace(&format!("\"{state}\""), "\"/var/lib/dyndns/state\"")
            .replace(&format!("\"{queue}\""), "\"/var/lib/dyndns/queue\""),
        shipped
    );
    fs::write(app.join("spin.toml"), &manifest).expect("manifest");

    // the unit's command line, its working directory and home, its user
    let unit = fs::read_to_string(root().join("deploy/systemd/dyndns-spin.service"))
        .expect("dyndns-spin.service");
    assert_eq!(unit_value(&unit, "User"), "dyndns");
    let workdir = unit_value(&unit, "WorkingDirectory");
    let home_env = unit_value(&unit, "Environment");
    assert_eq!(home_env, "HOME=/var/lib/dyndns-spin");
    let exec = shlex::split(&unit_value(&unit, "ExecStart")).expect("ExecStart quoting");
    assert_eq!(exec[..3], ["/usr/local/bin/spin", "up", "--from"]);
    assert_eq!(
        Path::new(&exec[3]).parent(),
        Some(Path::new(&workdir)),
        "the manifest is in the working directory"
    );
    let port = dyndns_tests::free_port();
    let mut args: Vec<String> = exec[1..].iter().map(|a| moved(a)).collect();
    let listen = args.iter().position(|a| a == "--listen").expect("--listen");
    assert_eq!(args[listen + 1], "127.0.0.1:3000");
    args[listen + 1] = format!("127.0.0.1:{port}");

    let log = scratch.path().join("journal.log");
    let mut group = Group::spawn(
        Command::new(spin)
            .args(&args)
            .current_dir(moved(&workdir))
            .env("HOME", moved(home_env.trim_start_matches("HOME=")))
            // the wrapper in ../shared/tools unpacks Spin under the home
            .env("DYNDNS_TOOLS_CACHE", home.join(".cache/dyndns-tools"))
            .uid(NOBODY)
            .gid(NOBODY),
        &log,
    );
    wait_listening(port, &mut group, &log);

    let r = update(
        port,
        "hostname=home.dyn.example.com&myip=198.51.100.7",
        ALICE,
    );
    assert_eq!(
        r.body,
        "good 198.51.100.7\n",
        "{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    let entry = env.queue.join("new/home.dyn.example.com_A.json");
    assert_eq!(
        fs::metadata(&entry).map(|m| m.uid()).ok(),
        Some(NOBODY),
        "the entry was written by the service user"
    );
    let r = update(
        port,
        "hostname=home.dyn.example.com&myip=198.51.100.7",
        ("mallory", "x"),
    );
    assert_eq!(r.body, "badauth\n");
    // the component's log reaches Spin's stderr, the journal
    let line = "authentication failed client=127.0.0.1 user=\"mallory\"";
    assert!(
        wait_for(Duration::from_secs(5), || fs::read_to_string(&log)
            .is_ok_and(|t| t.contains(line))),
        "{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    // Spin wrote nothing into the app folder, its files are in its home
    let mut in_app: Vec<String> = fs::read_dir(&app)
        .expect("app folder")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    in_app.sort();
    assert_eq!(in_app, ["dyndns_handler.wasm", "spin.toml"]);
    let written: Vec<PathBuf> = walk(&home)
        .into_iter()
        .filter(|p| !p.starts_with(home.join(".cache")))
        .collect();
    assert!(
        written
            .iter()
            .all(|p| fs::metadata(p).is_ok_and(|m| m.uid() == NOBODY)),
        "{written:?}"
    );
    // with a --state-dir, a copy of the component's log lands there too
    if let Some(i) = args.iter().position(|a| a == "--state-dir") {
        let copy = Path::new(&args[i + 1]).join("logs/dyndns_stderr.txt");
        assert!(
            fs::read_to_string(&copy).is_ok_and(|t| t.contains(line)),
            "{}: {written:?}",
            copy.display()
        );
    }
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
