//! Helpers for the integration tests: building the real artefacts (the
//! handler `.wasm`, the applier binary), a throw-away deployment in a
//! temporary directory (config, queue, state, Plesk emulator state), a real
//! `wasmtime serve` or Spin on a loopback port, and a raw HTTP/1.1 client
//! that can send the malformed requests real clients and attackers send.

#![warn(missing_docs)]

pub mod acme;
pub mod http;
pub mod peers;
pub mod runtime;

use std::fs;
use std::io::{Read, Write as _};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use dyndns_core::challenge::ChallengeValue;
use dyndns_core::credential::Credential;
use dyndns_core::queue::QueueEntry;
use serde::Deserialize;

pub use http::Response;
pub use runtime::{ComponentSpec, Runtime};

/// The Wasmtime version Spin 4.0.2 embeds; the tests insist on it.
pub const WASMTIME_VERSION: &str = "44.0.0";

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The cargo target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// The directory of this binary's profile (`target/debug`): test binaries
/// live in `target/<profile>/deps/`, other binaries in `target/<profile>/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().map(Path::to_path_buf).expect("exe dir");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().map(Path::to_path_buf).expect("profile dir")
    } else {
        dir
    }
}

fn cargo_build(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .arg("build")
        .args(args)
        .current_dir(root())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build {args:?} failed");
}

/// Builds (once per test process) and returns the release handler component.
pub fn handler_wasm() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        cargo_build(&[
            "-p",
            "dyndns-handler",
            "--target",
            "wasm32-wasip2",
            "--release",
        ]);
        let p = target_dir().join("wasm32-wasip2/release/dyndns_handler.wasm");
        assert!(p.exists(), "{} missing", p.display());
        p
    })
}

/// Builds (once per test process) and returns the applier binary of the
/// same profile as the tests.
pub fn applier_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = profile_dir();
        let release = dir.file_name().is_some_and(|n| n == "release");
        if release {
            cargo_build(&["-p", "dyndns-applier", "--release"]);
        } else {
            cargo_build(&["-p", "dyndns-applier"]);
        }
        dir.join("dyndns-applier")
    })
}

/// The Plesk emulator (a binary of this package, built with the tests).
pub fn plesk_emulator() -> PathBuf {
    profile_dir().join("plesk")
}

/// The `wasmtime` CLI, checked to be the pinned version.
pub fn wasmtime() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let candidates = [
            std::env::var_os("WASMTIME").map(PathBuf::from),
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/wasmtime")),
            Some(PathBuf::from("wasmtime")),
        ];
        for c in candidates.into_iter().flatten() {
            if let Ok(out) = Command::new(&c).arg("--version").output()
                && String::from_utf8_lossy(&out.stdout).contains(WASMTIME_VERSION)
            {
                return c;
            }
        }
        panic!("wasmtime {WASMTIME_VERSION} not found; run `make tools`");
    })
}

/// A credential string for `secret` (fixed salt: tests only).
pub fn credential(secret: &str) -> String {
    Credential::derive(secret, [7; 16]).to_string()
}

/// A temporary deployment.
pub struct TestEnv {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// The config file.
    pub config: PathBuf,
    /// Queue directory.
    pub queue: PathBuf,
    /// State directory.
    pub state: PathBuf,
    /// Private directory.
    pub private: PathBuf,
    /// The emulator's zone state.
    pub emu_state: PathBuf,
    /// The emulator's call log.
    pub emu_log: PathBuf,
    /// Extra environment for the applier (emulator knobs).
    pub applier_env: Vec<(String, String)>,
}

/// A zone record as `(name with trailing dot, type, value)`.
pub type Record<'a> = (&'a str, &'a str, &'a str);

/// One emulator call (from its log).
#[derive(Debug, Clone, Deserialize)]
pub struct Call {
    /// Process id of the emulator.
    pub pid: u32,
    /// Time in ms since the epoch.
    pub t_ms: u64,
    /// `start` or `end`.
    pub event: String,
    /// The arguments after `plesk`.
    pub args: Vec<String>,
    /// Exit code (end events).
    pub exit: Option<u8>,
}

impl Call {
    /// `--info`, `--add` or `--del`.
    pub fn command(&self) -> &str {
        self.args.get(2).map(String::as_str).unwrap_or("")
    }
}

impl TestEnv {
    /// A deployment whose config is `body` (zones, hosts, users, other
    /// tables) plus `[paths]` and `[applier]` pointing into the temporary
    /// directory and at the emulator. `applier` holds extra `[applier]` lines.
    pub fn new(body: &str, applier: &str) -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("dyndns-test")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        let env = TestEnv {
            config: d.join("dyndns.toml"),
            queue: d.join("queue"),
            state: d.join("state"),
            private: d.join("private"),
            emu_state: d.join("plesk-state.json"),
            emu_log: d.join("plesk-calls.jsonl"),
            applier_env: Vec::new(),
            dir,
        };
        let text = format!(
            "{body}\n[paths]\nqueue = \"{}\"\nstate = \"{}\"\nprivate = \"{}\"\n\n[applier]\nplesk = \"{}\"\n{applier}\n",
            env.queue.display(),
            env.state.display(),
            env.private.display(),
            plesk_emulator().display(),
        );
        fs::write(&env.config, text).expect("write config");
        fs::write(&env.emu_state, r#"{"zones":{}}"#).expect("write emulator state");
        for sub in ["tmp", "new"] {
            fs::create_dir_all(env.queue.join(sub)).expect("queue dirs");
        }
        fs::create_dir_all(&env.state).expect("state dir");
        env
    }

    /// Sets the emulator's zones: `(zone, [(name, type, value)])`.
    pub fn set_zones(&self, zones: &[(&str, &[Record<'_>])]) {
        let mut map = serde_json::Map::new();
        for (zone, records) in zones {
            let list: Vec<serde_json::Value> = records
                .iter()
                .map(|(n, t, v)| serde_json::json!({"name": n, "type": t, "value": v}))
                .collect();
            map.insert((*zone).to_string(), serde_json::Value::Array(list));
        }
        let state = serde_json::json!({ "zones": map });
        fs::write(
            &self.emu_state,
            serde_json::to_vec_pretty(&state).expect("json"),
        )
        .expect("write emulator state");
    }

    /// The A/AAAA (and other) records of `zone` as `(name, type, value)`, sorted.
    pub fn zone(&self, zone: &str) -> Vec<(String, String, String)> {
        let v: serde_json::Value =
            serde_json::from_slice(&fs::read(&self.emu_state).expect("read state"))
                .expect("state json");
        let mut out: Vec<(String, String, String)> = v["zones"][zone]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| {
                        (
                            r["name"].as_str().unwrap_or_default().to_string(),
                            r["type"].as_str().unwrap_or_default().to_string(),
                            r["value"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// The addresses `name` (with trailing dot) has for `rtype`, sorted.
    pub fn addresses(&self, zone: &str, name: &str, rtype: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .zone(zone)
            .into_iter()
            .filter(|(n, t, _)| n == name && t == rtype)
            .map(|(_, _, v)| v)
            .collect();
        v.sort();
        v
    }

    /// Completed emulator calls, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.events()
            .into_iter()
            .filter(|c| c.event == "end")
            .collect()
    }

    /// All emulator log events (start and end), in order.
    pub fn events(&self) -> Vec<Call> {
        fs::read_to_string(&self.emu_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Completed calls of one command (`--info`, `--add`, `--del`).
    pub fn calls_of(&self, command: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.command() == command)
            .collect()
    }

    /// An applier command with the emulator's environment.
    pub fn applier(&self) -> Command {
        let mut cmd = Command::new(applier_bin());
        cmd.arg("--config")
            .arg(&self.config)
            .env("PLESK_EMU_STATE", &self.emu_state)
            .env("PLESK_EMU_LOG", &self.emu_log)
            .env_remove("DYNDNS_CONFIG")
            .env("RUST_LOG", "info");
        for (k, v) in &self.applier_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs the applier with `args` to completion.
    pub fn run_applier(&self, args: &[&str]) -> Output {
        self.applier().args(args).output().expect("run applier")
    }

    /// Runs one batch (`--once`): its exit code (-1 when killed) and its
    /// log.
    pub fn run_once(&self) -> (i32, String) {
        let out = self.run_applier(&["--once"]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs one batch (`--once`) that must succeed (exit 0).
    pub fn apply_once(&self) {
        let (code, log) = self.run_once();
        assert_eq!(code, 0, "{log}");
    }

    /// Runs `dyndns-applier publish`.
    pub fn publish(&self) {
        let out = self.run_applier(&["publish"]);
        assert!(
            out.status.success(),
            "publish failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Writes a heartbeat as a live applier would (for handler-only tests).
    pub fn fake_heartbeat(&self, at: SystemTime) {
        let hb = dyndns_core::state::Heartbeat {
            pid: 1,
            at,
            interval: Duration::from_secs(2),
            dry_run: false,
            version: "test".into(),
        };
        fs::create_dir_all(&self.state).expect("state dir");
        fs::write(
            self.state.join("heartbeat.json"),
            serde_json::to_vec(&hb).expect("json"),
        )
        .expect("heartbeat");
    }

    /// Names of files in `queue/<sub>`, sorted.
    pub fn queue_files(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.queue.join(sub))
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The pending entry for `host`/`rtype`, parsed.
    pub fn pending(&self, host: &str, rtype: &str) -> Option<QueueEntry> {
        let bytes = fs::read(self.queue.join("new").join(format!("{host}_{rtype}.json"))).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes a queue entry the way the handler does (for applier-only tests).
    pub fn enqueue(&self, host: &str, rtype: &str, address: &str) {
        self.enqueue_at(host, rtype, address, SystemTime::now());
    }

    /// Like [`TestEnv::enqueue`] with an explicit request time.
    pub fn enqueue_at(&self, host: &str, rtype: &str, address: &str, at: SystemTime) {
        let entry = serde_json::json!({
            "format": 1,
            "host": host,
            "type": rtype,
            "address": address,
            "requested_at": humantime::format_rfc3339_nanos(at).to_string(),
            "user": "tester",
            "client": "203.0.113.1",
        });
        let name = format!("{host}_{rtype}.json");
        let tmp = self
            .queue
            .join("tmp")
            .join(format!("{name}.{}", rand_suffix()));
        fs::write(&tmp, serde_json::to_vec(&entry).expect("json")).expect("write tmp");
        fs::rename(&tmp, self.queue.join("new").join(name)).expect("rename");
    }

    /// Writes a TXT entry the way the handler does: `op` is `present`,
    /// `cleanup` (both with a `value`) or `clear` (without one).
    pub fn enqueue_txt(
        &self,
        name: &str,
        op: &str,
        value: Option<&str>,
        user: &str,
        at: SystemTime,
    ) {
        write_txt_entry(&self.queue, name, op, value, user, at);
    }

    /// Has the emulator, as the applier runs it, write every changed zone
    /// into `zone_dir` and then run `reload` (an argument list, see
    /// `PLESK_EMU_RELOAD`), as Plesk rewrites the zone and reloads BIND.
    pub fn publish_zones(&mut self, zone_dir: &Path, reload: &[String]) {
        fs::create_dir_all(zone_dir).expect("zone dir");
        self.applier_env
            .push(("PLESK_EMU_ZONE_DIR".into(), zone_dir.display().to_string()));
        self.applier_env.push((
            "PLESK_EMU_RELOAD".into(),
            serde_json::to_string(reload).expect("json"),
        ));
    }

    /// Writes every emulated zone's file into `zone_dir` now
    /// (`plesk emu write-zones`), e.g. before a DNS server starts on them.
    pub fn write_zone_files(&self, zone_dir: &Path) {
        fs::create_dir_all(zone_dir).expect("zone dir");
        let out = Command::new(plesk_emulator())
            .args(["emu", "write-zones"])
            .env("PLESK_EMU_STATE", &self.emu_state)
            .env("PLESK_EMU_ZONE_DIR", zone_dir)
            .output()
            .expect("run the emulator");
        assert!(
            out.status.success(),
            "plesk emu write-zones: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Puts `bytes` into `new/` under `name`, through `tmp/` and a rename.
    pub fn enqueue_raw(&self, name: &str, bytes: &[u8]) {
        enqueue_raw_in(&self.queue, name, bytes);
    }

    /// Starts `wasmtime serve` with the handler on a free loopback port, with
    /// the environment of the repository's `spin.toml`: it believes
    /// `spin-client-addr` as a Spin deployment does (the tests send it the
    /// way Spin would; `wasmtime serve` itself passes no peer address).
    pub fn serve(&self) -> Server {
        self.serve_on(Runtime::Wasmtime)
    }

    /// Starts `wasmtime serve` as a plain wasi:http host: no peer header is
    /// believed (`DYNDNS_PEER_HEADER` of the repository's manifest left out).
    pub fn serve_without_peer_header(&self) -> Server {
        Server::serve(
            Runtime::Wasmtime,
            &ComponentSpec::handler(handler_wasm(), &self.state, &self.queue)
                .without_env("DYNDNS_PEER_HEADER"),
        )
    }

    /// Starts `runtime` with the handler on a free loopback port (Spin must
    /// be present: check [`Runtime::usable`] first), with the environment
    /// of the repository's `spin.toml`.
    pub fn serve_on(&self, runtime: Runtime) -> Server {
        Server::start_on(runtime, &self.state, &self.queue, &[])
    }

    /// Records, as the applier would, that `host`'s `rtype` record holds
    /// `address`, and republishes the view (for handler-only tests).
    pub fn set_applied(&self, host: &str, rtype: &str, address: &str) {
        let dir = self.state.join("hosts");
        fs::create_dir_all(&dir).expect("state/hosts");
        let path = dir.join(format!("{host}.json"));
        let mut record: serde_json::Value = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(
                || serde_json::json!({"format": 1, "host": host, "a": null, "aaaa": null}),
            );
        let key = if rtype == "A" { "a" } else { "aaaa" };
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        record[key] = serde_json::json!({
            "address": address,
            "confirmed_at": now,
        });
        // heard just now, as the request that set it would have been
        record["last_heard"] = serde_json::json!(now);
        fs::write(&path, serde_json::to_vec(&record).expect("json")).expect("write host record");
        self.publish();
    }

    /// The applier's record of `host` (`state/hosts/<host>.json`), if any.
    pub fn host_record(&self, host: &str) -> Option<serde_json::Value> {
        let bytes = fs::read(self.state.join("hosts").join(format!("{host}.json"))).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

fn rand_suffix() -> String {
    let n = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{n:x}")
}

/// The challenge name of `home.dyn.example.com` in [`challenge_config`].
pub const CHALLENGE_HOME: &str = "_acme-challenge.home.dyn.example.com";
/// The challenge name of `nas.dyn.example.com` in [`challenge_config`].
pub const CHALLENGE_NAS: &str = "_acme-challenge.nas.dyn.example.com";

/// The deployment the ACME challenge tests share: zone `dyn.example.com`
/// with `home`, `nas` and `pc1.office`; `alice` may update `home` and
/// `*.office`, `bob` `nas` (both with the secret `"secret"`); `acme` is the
/// body of the `[acme]` table.
pub fn challenge_config(acme: &str) -> String {
    let cred = credential("secret");
    format!(
        r#"
zones = ["dyn.example.com"]

[[hosts]]
name = "home.dyn.example.com"
[[hosts]]
name = "nas.dyn.example.com"
[[hosts]]
name = "pc1.office.dyn.example.com"

[[users]]
name = "alice"
credential = "{cred}"
hosts = ["home.dyn.example.com", "*.office.dyn.example.com"]

[[users]]
name = "bob"
credential = "{cred}"
hosts = ["nas.dyn.example.com"]

[acme]
{acme}
"#
    )
}

/// Writes a TXT entry into `queue` the way the handler does: `op` is
/// `present`, `cleanup` (both with a `value`) or `clear` (without one).
pub fn write_txt_entry(
    queue: &Path,
    name: &str,
    op: &str,
    value: Option<&str>,
    user: &str,
    at: SystemTime,
) {
    let mut txt = serde_json::json!({ "op": op });
    let kind = match value {
        Some(v) => {
            txt["value"] = serde_json::Value::from(v);
            let parsed = ChallengeValue::parse(v).expect("a challenge value");
            format!("TXT-{}", parsed.tag())
        }
        None => "TXTCLEAR".to_string(),
    };
    let entry = serde_json::json!({
        "format": 1,
        "host": name,
        "type": "TXT",
        "txt": txt,
        "requested_at": humantime::format_rfc3339_nanos(at).to_string(),
        "user": user,
        "client": "203.0.113.1",
    });
    enqueue_raw_in(
        queue,
        &format!("{name}_{kind}.json"),
        &serde_json::to_vec(&entry).expect("json"),
    );
}

fn enqueue_raw_in(queue: &Path, name: &str, bytes: &[u8]) {
    let tmp = queue.join("tmp").join(format!("{name}.{}", rand_suffix()));
    fs::write(&tmp, bytes).expect("write tmp");
    fs::rename(&tmp, queue.join("new").join(name)).expect("rename");
}

/// A valid ACME DNS-01 challenge value derived from `seed`: the base64url
/// SHA-256 digest an ACME client would publish.
pub fn challenge_value(seed: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(seed.as_bytes()))
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    free_port_on(LOOPBACK)
}

fn free_port_on(host: IpAddr) -> u16 {
    TcpListener::bind(SocketAddr::new(host, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The flags `make up` and the systemd unit give `spin up` so that the
/// component writes the real queue directory.
pub const SPIN_MOUNT_FLAGS: &[&str] = &["--direct-mounts", "--allow-transient-write"];

const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn serve_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("dyndns-serve")
        .tempdir()
        .expect("tempdir")
}

/// A running `wasmtime serve` or `spin up`.
pub struct Server {
    /// The port it listens on.
    pub port: u16,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The runtime serving the component.
    pub runtime: Runtime,
    child: Child,
    dir: tempfile::TempDir,
}

impl Server {
    /// Serves the handler on `wasmtime serve` with `state` and `queue`
    /// mounted as the repository's `spin.toml` mounts them.
    pub fn start(state: &Path, queue: &Path, env: &[(&str, &str)]) -> Server {
        Self::start_on(Runtime::Wasmtime, state, queue, env)
    }

    /// Like [`Server::start`], on `runtime` (Spin must be present: check
    /// [`Runtime::usable`] first).
    pub fn start_on(runtime: Runtime, state: &Path, queue: &Path, env: &[(&str, &str)]) -> Server {
        Self::serve(
            runtime,
            &ComponentSpec::handler(handler_wasm(), state, queue).with_env(env),
        )
    }

    /// Serves any component (the benchmarks' reference components too) on
    /// `runtime`, on a free loopback port. Spin runs as `make up` and the
    /// systemd unit run it (`--direct-mounts --allow-transient-write`) from a
    /// manifest generated next to the server's log, with `--log-dir`
    /// pointing there too ([`Server::log_dir`]).
    pub fn serve(runtime: Runtime, spec: &ComponentSpec) -> Server {
        match runtime {
            Runtime::Wasmtime => Self::launch(runtime, serve_dir(), LOOPBACK, |addr| {
                let mut cmd = Command::new(wasmtime());
                cmd.arg("serve")
                    .arg("--addr")
                    .arg(addr.to_string())
                    .arg("-Scli")
                    .args(spec.wasmtime_args())
                    .arg(&spec.wasm);
                cmd
            }),
            Runtime::Spin => Self::spin(spec, SPIN_MOUNT_FLAGS, LOOPBACK),
        }
    }

    /// `spin up` with `flags` (besides `--from`, `--listen` and
    /// `--log-dir`), listening on `host` (Spin must be present).
    pub fn spin(spec: &ComponentSpec, flags: &[&str], host: IpAddr) -> Server {
        let dir = serve_dir();
        let manifest = dir.path().join("spin.toml");
        fs::write(&manifest, spec.spin_manifest()).expect("write manifest");
        let logs = dir.path().join("logs");
        Self::launch(Runtime::Spin, dir, host, |addr| {
            let mut cmd = Command::new(runtime::spin().expect("Spin (check Runtime::usable)"));
            cmd.arg("up")
                .arg("--from")
                .arg(&manifest)
                .args(flags)
                .arg("--listen")
                .arg(addr.to_string())
                .arg("--log-dir")
                .arg(&logs);
            cmd
        })
    }

    /// Starts `command(address)` on a free port of `host` in its own
    /// process group, its output going to `dir/serve.log`, until it accepts
    /// connections (a few tries: another process may take the port first).
    fn launch(
        runtime: Runtime,
        dir: tempfile::TempDir,
        host: IpAddr,
        command: impl Fn(SocketAddr) -> Command,
    ) -> Server {
        let log = dir.path().join("serve.log");
        for attempt in 0..5 {
            let addr = SocketAddr::new(host, free_port_on(host));
            let logfile = fs::File::create(&log).expect("log file");
            // As in production (the systemd unit sets neither): with these,
            // the runtime captures a backtrace for every error it returns to
            // the guest, e.g. each "no such file" of a pending-entry check.
            let mut child = command(addr)
                .env_remove("RUST_BACKTRACE")
                .env_remove("RUST_LIB_BACKTRACE")
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(logfile.try_clone().expect("clone"))
                .stderr(logfile)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", runtime.name()));
            if wait_ready(&mut child, addr, Duration::from_secs(60)) {
                return Server {
                    port: addr.port(),
                    addr,
                    runtime,
                    child,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            eprintln!(
                "{} did not come up on {addr} (attempt {attempt}): {}",
                runtime.name(),
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        panic!("{} did not start", runtime.name());
    }

    /// The process id of the process that serves requests: `wasmtime
    /// serve` itself; for Spin, the `spin trigger http` process that `spin
    /// up` starts.
    pub fn pid(&self) -> u32 {
        let pid = self.child.id();
        match self.runtime {
            Runtime::Wasmtime => pid,
            Runtime::Spin => children(pid).into_iter().next().unwrap_or(pid),
        }
    }

    /// Sends raw bytes and reads the response.
    pub fn raw(&self, request: &[u8]) -> Response {
        http::raw_at(self.addr, None, request)
    }

    /// `GET target` sent from the local address `source` (a non-loopback
    /// peer when that address is on `lo`, see [`LoopbackAlias`]).
    pub fn get_from(
        &self,
        source: IpAddr,
        target: &str,
        auth: Option<(&str, &str)>,
        headers: &[(&str, &str)],
    ) -> Response {
        let request = http::build(&self.addr.to_string(), "GET", target, auth, headers, None);
        http::raw_at(self.addr, Some(source), &request)
    }

    /// `GET target` with optional Basic credentials and extra headers.
    pub fn get(
        &self,
        target: &str,
        auth: Option<(&str, &str)>,
        headers: &[(&str, &str)],
    ) -> Response {
        let request = http::build(&self.addr.to_string(), "GET", target, auth, headers, None);
        http::raw_at(self.addr, None, &request)
    }

    /// Runs `during` while strace watches the server process (all threads)
    /// for `syscalls` (strace's `trace=` list) and returns the trace lines,
    /// file descriptors annotated with what they are (`-y`: a path,
    /// `socket:[...]`, `anon_inode:[eventfd]`), so that the runtime's own
    /// descriptors can be told from the component's files on either runtime.
    pub fn trace(&self, syscalls: &str, during: impl FnOnce()) -> Vec<String> {
        let trace = self
            .dir
            .path()
            .join(format!("strace-{}.out", rand_suffix()));
        let mut strace = Command::new(program("strace"))
            .args(["-f", "-y", "-qq", "-s", "96", "-e"])
            .arg(format!("trace={syscalls}"))
            .arg("-o")
            .arg(&trace)
            .arg("-p")
            .arg(self.pid().to_string())
            .spawn()
            .expect("strace (run scripts/test-deps.sh)");
        // give strace time to attach to every thread
        thread::sleep(Duration::from_millis(500));
        during();
        thread::sleep(Duration::from_millis(300));
        let _ = strace.kill();
        let _ = strace.wait();
        fs::read_to_string(&trace)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// What the runtime printed so far: the component's log lines (both
    /// runtimes pass its stderr on), and the runtime's own.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// Spin's `--log-dir` (where it also writes the component's stdout and
    /// stderr); `None` on `wasmtime serve`.
    pub fn log_dir(&self) -> Option<PathBuf> {
        (self.runtime == Runtime::Spin).then(|| self.dir.path().join("logs"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The runtime leads its own process group: kill it all (`spin up`
        // serves from a child process, which a kill of `spin up` alone
        // would leave running).
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The process ids whose parent is `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    let after = stat.rsplit_once(')')?.1;
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// Waits until `child` accepts connections on `addr`; false when it exits
/// or `limit` passes first.
fn wait_ready(child: &mut Child, addr: SocketAddr, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if TcpStream::connect(addr).is_ok() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Waits until `cond` holds or `limit` passes; returns whether it held.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Reads a child's stderr without blocking forever (for long-running appliers).
pub fn read_all(mut r: impl Read) -> String {
    let mut s = String::new();
    let _ = r.read_to_string(&mut s);
    s
}

/// Finds a program on PATH or in the sbin directories (which are not on
/// every user's PATH).
pub fn program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Prints `SKIPPED (reason): <test name>` to stderr, past the test
/// harness's output capture, so a skipped test shows in every run.
pub fn skip(reason: &str) {
    let test = thread::current().name().unwrap_or("a test").to_string();
    // one write, so that the line stays whole between the harness's own
    let line = format!("SKIPPED ({reason}): {test}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// An extra address on the loopback interface, so that a test client can
/// connect from a peer address that is not loopback; removed on drop.
pub struct LoopbackAlias {
    /// The address.
    pub ip: IpAddr,
}

impl LoopbackAlias {
    /// `ip addr add ip dev lo`; needs root: `None` after a loud skip line
    /// otherwise.
    pub fn add(ip: &str) -> Option<LoopbackAlias> {
        if !rustix::process::geteuid().is_root() {
            skip("needs root to add an address to lo");
            return None;
        }
        let ip: IpAddr = ip.parse().expect("address");
        let out = Self::ip_addr("add", ip);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // "File exists": left by an interrupted run; removed on drop all the same
        assert!(
            out.status.success() || stderr.contains("File exists"),
            "ip addr add {ip}: {stderr}"
        );
        Some(LoopbackAlias { ip })
    }

    fn ip_addr(action: &str, ip: IpAddr) -> Output {
        let mut cmd = Command::new(program("ip"));
        match ip {
            IpAddr::V4(_) => cmd.args(["addr", action, &format!("{ip}/32"), "dev", "lo"]),
            IpAddr::V6(_) => cmd.args(["-6", "addr", action, &format!("{ip}/128"), "dev", "lo"]),
        };
        if action == "add" && ip.is_ipv6() {
            cmd.arg("nodad");
        }
        cmd.output()
            .expect("ip (iproute2; run scripts/test-deps.sh)")
    }
}

impl Drop for LoopbackAlias {
    fn drop(&mut self) {
        let _ = Self::ip_addr("del", self.ip);
    }
}

/// Parses an address (test convenience).
pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// An applier running in the background, its stderr going to a file.
pub struct RunningApplier {
    child: Child,
    log: PathBuf,
}

impl TestEnv {
    /// Starts the applier with `args` in the background.
    pub fn spawn_applier(&self, args: &[&str]) -> RunningApplier {
        let log = self
            .dir
            .path()
            .join(format!("applier-{}.log", rand_suffix()));
        let file = fs::File::create(&log).expect("log file");
        let child = self
            .applier()
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone"))
            .stderr(file)
            .spawn()
            .expect("spawn applier");
        RunningApplier { child, log }
    }
}

impl RunningApplier {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal(rustix::process::Signal::TERM);
    }

    /// Sends a signal.
    pub fn signal(&self, sig: rustix::process::Signal) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, sig);
        }
    }

    /// SIGKILL, and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `limit` for it to exit; its exit code, or `None` if it
    /// is still running.
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            if start.elapsed() > limit {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RunningApplier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True while a process with this pid exists.
pub fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.split_whitespace().nth(2) == Some("Z"))
            .unwrap_or(false)
}
