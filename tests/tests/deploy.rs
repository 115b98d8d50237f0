//! The shipped deployment files agree with the code: the fail2ban filter
//! matches what the handler really logs (checked with fail2ban-regex), the
//! Spin manifests mount what the config's default paths are, the units run
//! the commands the binaries accept.

use std::fs;
use std::process::Command;

use dyndns_tests::{TestEnv, credential, root};

#[test]
fn fail2ban_filter_matches_the_handler_log() {
    let body = format!(
        "zones = [\"dyn.example.com\"]\n[[hosts]]\nname = \"home.dyn.example.com\"\n[[users]]\nname = \"alice\"\ncredential = \"{}\"\nhosts = [\"home.dyn.example.com\"]\n",
        credential("alice-secret-0123456789")
    );
    let env = TestEnv::new(&body, "");
    env.publish();
    let server = env.serve();
    // the last two try to smuggle another address into the line
    for (user, peer) in [
        ("mallory", "203.0.113.66:1"),
        ("alice", "203.0.113.66:2"),
        ("eve\" reason=\"x", "198.51.100.23:3"),
        (
            "x authentication failed client=192.0.2.250 user=\"y\" reason=\"z",
            "198.51.100.24:4",
        ),
    ] {
        let r = server.get(
            "/nic/update?hostname=home.dyn.example.com&myip=198.51.100.7",
            Some((user, "wrong")),
            &[("spin-client-addr", peer)],
        );
        assert_eq!(r.body, "badauth\n");
    }
    // a successful update must not match
    let r = server.get(
        "/nic/update?hostname=home.dyn.example.com&myip=198.51.100.7",
        Some(("alice", "alice-secret-0123456789")),
        &[("spin-client-addr", "192.0.2.99:1")],
    );
    assert_eq!(r.body, "good 198.51.100.7\n");
    let log = env.dir.path().join("handler.log");
    fs::write(&log, server.log()).unwrap();
    let out = Command::new(dyndns_tests::program("fail2ban-regex"))
        .arg("--print-all-matched")
        .arg(&log)
        .arg(root().join("deploy/fail2ban/filter.d/dyndns.conf"))
        .output()
        .expect("fail2ban-regex (run scripts/test-deps.sh)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Failregex: 4 total"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // what fail2ban would ban: the real peers, never a smuggled address
    let banned = Command::new(dyndns_tests::program("fail2ban-regex"))
        .arg("--out")
        .arg("ip")
        .arg(&log)
        .arg(root().join("deploy/fail2ban/filter.d/dyndns.conf"))
        .output()
        .unwrap();
    let mut ips: Vec<String> = String::from_utf8_lossy(&banned.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    ips.sort();
    assert_eq!(
        ips,
        vec![
            "198.51.100.23",
            "198.51.100.24",
            "203.0.113.66",
            "203.0.113.66"
        ],
        "{text}"
    );
}

fn toml_file(path: &str) -> toml::Value {
    toml::from_str(&fs::read_to_string(root().join(path)).unwrap()).unwrap()
}

#[test]
fn spin_manifests_mount_the_configured_directories() {
    let defaults =
        dyndns_core::config::Config::parse("zones = [\"dyn.example.com\"]", None).unwrap();
    for (manifest, state, queue) in [
        (
            "deploy/spin.toml",
            defaults.paths.state.display().to_string(),
            defaults.paths.queue.display().to_string(),
        ),
        (
            "spin.toml",
            "var/state".to_string(),
            "var/queue".to_string(),
        ),
    ] {
        let m = toml_file(manifest);
        assert_eq!(
            m["spin_manifest_version"].as_integer(),
            Some(2),
            "{manifest}"
        );
        assert_eq!(
            m["trigger"]["http"][0]["route"].as_str(),
            Some("/..."),
            "{manifest}"
        );
        let c = &m["component"]["dyndns"];
        assert_eq!(
            c["allowed_outbound_hosts"].as_array().map(Vec::len),
            Some(0),
            "{manifest}: no network"
        );
        let files = c["files"].as_array().unwrap();
        let mounts: Vec<(String, String)> = files
            .iter()
            .map(|f| {
                (
                    f["source"].as_str().unwrap().to_string(),
                    f["destination"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            mounts,
            vec![
                (state.clone(), "/state".to_string()),
                (queue.clone(), "/queue".to_string())
            ],
            "{manifest}"
        );
        assert_eq!(
            c["environment"]["DYNDNS_STATE_DIR"].as_str(),
            Some("/state")
        );
        assert_eq!(
            c["environment"]["DYNDNS_QUEUE_DIR"].as_str(),
            Some("/queue")
        );
    }
    // the dev manifest builds the component it serves
    let m = toml_file("spin.toml");
    let c = &m["component"]["dyndns"];
    assert!(
        c["build"]["command"]
            .as_str()
            .unwrap()
            .contains("--target wasm32-wasip2 --release")
    );
    assert_eq!(
        c["source"].as_str(),
        Some("target/wasm32-wasip2/release/dyndns_handler.wasm")
    );
    // the example local config uses the same directories
    let local = fs::read_to_string(root().join("examples/local.toml")).unwrap();
    assert!(local.contains("queue = \"queue\"") && local.contains("state = \"state\""));
}

#[test]
fn units_and_cron_run_commands_the_applier_accepts() {
    let unit = fs::read_to_string(root().join("deploy/systemd/dyndns-applier.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let cron = fs::read_to_string(root().join("deploy/cron/dyndns-applier")).unwrap();
    // shipped inactive: the line is commented out, nothing else runs
    assert!(
        !cron
            .lines()
            .any(|l| l.starts_with(|c: char| c == '*' || c.is_ascii_digit())),
        "{cron}"
    );
    let cron_line = cron
        .lines()
        .find_map(|l| l.strip_prefix('#').filter(|l| l.starts_with("* * * * *")))
        .unwrap();
    let cron_cmd = cron_line
        .split_whitespace()
        .skip(6)
        .take_while(|w| *w != "2>&1")
        .collect::<Vec<_>>();
    let env = TestEnv::new("zones = [\"dyn.example.com\"]", "");
    for args in [
        exec.split_whitespace().skip(1).collect::<Vec<_>>(),
        cron_cmd[1..].to_vec(),
    ] {
        // same arguments, our config instead of /etc/dyndns/dyndns.toml, and --help to not run
        let mut fixed: Vec<String> = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if *a == "--config" {
                it.next();
                fixed.push("--config".into());
                fixed.push(env.config.display().to_string());
            } else {
                fixed.push((*a).to_string());
            }
        }
        fixed.push("--help".into());
        let out = Command::new(dyndns_tests::applier_bin())
            .args(&fixed)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{fixed:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        unit.contains("KillMode=mixed"),
        "a running plesk call must not get SIGTERM"
    );
    let spin_unit = fs::read_to_string(root().join("deploy/systemd/dyndns-spin.service")).unwrap();
    assert!(spin_unit.contains("--direct-mounts --allow-transient-write"));
    assert!(spin_unit.contains("User=dyndns"));
}

/// The component's imports, by name.
fn component_imports(wasm: &std::path::Path) -> Vec<String> {
    let bytes = fs::read(wasm).unwrap();
    let mut names = Vec::new();
    let mut depth = 0;
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        match payload.unwrap() {
            wasmparser::Payload::ComponentSection { .. }
            | wasmparser::Payload::ModuleSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth -= 1,
            wasmparser::Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    names.push(import.unwrap().name.0.to_string());
                }
            }
            _ => {}
        }
    }
    names
}

#[test]
fn the_component_imports_only_standard_wasi() {
    // Spin 3/4 and wasmtime serve both provide WASI 0.2 and wasi:http; an
    // import of a Spin-only interface would tie the component to one host.
    let imports = component_imports(dyndns_tests::handler_wasm());
    assert!(!imports.is_empty());
    for name in &imports {
        assert!(
            name.starts_with("wasi:") && name.contains("@0.2."),
            "unexpected import {name}"
        );
    }
    assert!(
        imports.iter().any(|n| n.starts_with("wasi:filesystem/")),
        "{imports:?}"
    );
    assert!(
        !imports.iter().any(|n| n.starts_with("wasi:sockets/")),
        "no network: {imports:?}"
    );
}

/// The workspace version from the root Cargo.toml.
fn workspace_version() -> String {
    toml_file("Cargo.toml")["workspace"]["package"]["version"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn one_version_everywhere() {
    let version = workspace_version();
    // the manifests, and the newest release in the changelog
    for manifest in ["spin.toml", "deploy/spin.toml"] {
        assert_eq!(
            toml_file(manifest)["application"]["version"].as_str(),
            Some(version.as_str()),
            "{manifest}"
        );
    }
    let changelog = fs::read_to_string(root().join("CHANGELOG.md")).unwrap();
    let newest = changelog
        .lines()
        .find_map(|l| l.strip_prefix("## ["))
        .and_then(|l| l.split(']').next())
        .unwrap();
    assert_eq!(newest, version, "CHANGELOG.md's newest entry");
    // the applier says it
    let out = Command::new(dyndns_tests::applier_bin())
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("dyndns-applier {version}")
    );
    // the handler says it in /health, and the heartbeat carries the applier's
    let env = TestEnv::new("zones = [\"dyn.example.com\"]", "");
    let run = env.run_applier(&["run", "--once"]);
    assert!(run.status.success(), "{run:?}");
    let heartbeat: serde_json::Value =
        serde_json::from_slice(&fs::read(env.state.join("heartbeat.json")).unwrap()).unwrap();
    assert_eq!(heartbeat["version"].as_str(), Some(version.as_str()));
    let server = env.serve();
    let health: serde_json::Value =
        serde_json::from_str(&server.get("/health", None, &[]).body).unwrap();
    assert_eq!(
        health["version"].as_str(),
        Some(version.as_str()),
        "{health}"
    );
}
