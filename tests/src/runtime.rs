//! The two runtimes the tests serve components on: `wasmtime serve` and
//! Spin (production). Both get the same component, mounts and environment,
//! taken from the repository's own `spin.toml`, so a change to the manifest
//! reaches every test on both runtimes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::{root, skip};

/// Where a component is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// `wasmtime serve` 44 (the Wasmtime inside Spin 4.0.2). It passes no
    /// client address to the component.
    Wasmtime,
    /// `spin up`, as in production: it appends `spin-client-addr` (the real
    /// peer) to every request.
    Spin,
}

impl Runtime {
    /// Both runtimes, `wasmtime serve` first.
    pub const ALL: [Runtime; 2] = [Runtime::Wasmtime, Runtime::Spin];

    /// A short lower-case name (`wasmtime`, `spin`).
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Wasmtime => "wasmtime",
            Runtime::Spin => "spin",
        }
    }

    /// Whether a test can use this runtime here. `wasmtime serve` is
    /// required (`make tools` installs it), so this is always true for it;
    /// for Spin it is false when Spin is absent, after a loud line on stderr
    /// saying which test was skipped and why.
    pub fn usable(self) -> bool {
        match self {
            Runtime::Wasmtime => true,
            Runtime::Spin => spin_or_skip().is_some(),
        }
    }
}

/// The Spin CLI: `$SPIN` when set, else `../shared/tools/spin` next to the
/// checkout when it runs, else `spin` on PATH. `None` when none answers
/// `--version`.
pub fn spin() -> Option<&'static Path> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        // `$SPIN`, when set, is the only candidate (`SPIN=none` tests the skip).
        let candidates = match std::env::var_os("SPIN") {
            Some(path) => vec![PathBuf::from(path)],
            None => vec![root().join("../shared/tools/spin"), PathBuf::from("spin")],
        };
        candidates.into_iter().find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"spin "))
        })
    })
    .as_deref()
}

/// [`spin`], or `None` after printing `SKIPPED (Spin not found: ...)` with
/// the current test's name to stderr. The line bypasses the test harness's
/// output capture, so it shows in every `cargo test` run.
pub fn spin_or_skip() -> Option<&'static Path> {
    let found = spin();
    if found.is_none() {
        skip(&format!(
            "Spin not found: {}",
            match std::env::var_os("SPIN") {
                Some(path) => format!("$SPIN={} does not run", path.to_string_lossy()),
                None => format!(
                    "neither {} nor `spin` on PATH runs",
                    root().join("../shared/tools/spin").display()
                ),
            }
        ));
    }
    found
}

/// What a component is served with, on either runtime.
#[derive(Debug, Clone)]
pub struct ComponentSpec {
    /// The `.wasm` file.
    pub wasm: PathBuf,
    /// Directory mounts: host directory, path inside the component.
    pub mounts: Vec<(PathBuf, String)>,
    /// Environment variables of the component.
    pub env: Vec<(String, String)>,
}

/// The repository's own Spin manifest (what `make up` serves).
pub fn repo_manifest() -> PathBuf {
    root().join("spin.toml")
}

/// Parses a Spin manifest.
pub fn read_manifest(path: &Path) -> toml::Table {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// The table of the manifest's one component.
pub fn manifest_component(manifest: &toml::Table) -> &toml::Table {
    let components = manifest
        .get("component")
        .and_then(toml::Value::as_table)
        .expect("manifest has [component.*]");
    assert_eq!(components.len(), 1, "one component expected");
    components
        .values()
        .next()
        .and_then(toml::Value::as_table)
        .expect("component table")
}

fn manifest_component_mut(manifest: &mut toml::Table) -> &mut toml::Table {
    manifest
        .get_mut("component")
        .and_then(toml::Value::as_table_mut)
        .and_then(|c| c.iter_mut().next().map(|(_, v)| v))
        .and_then(toml::Value::as_table_mut)
        .expect("component table")
}

impl ComponentSpec {
    /// A component with no mounts and no environment (the benchmarks'
    /// reference components).
    pub fn plain(wasm: &Path) -> ComponentSpec {
        ComponentSpec {
            wasm: wasm.to_path_buf(),
            mounts: Vec::new(),
            env: Vec::new(),
        }
    }

    /// The handler `wasm` as the repository's `spin.toml` describes it: its
    /// environment, and its `files` mounts with the `.../state` and
    /// `.../queue` sources replaced by `state` and `queue`.
    pub fn handler(wasm: &Path, state: &Path, queue: &Path) -> ComponentSpec {
        let manifest = read_manifest(&repo_manifest());
        let component = manifest_component(&manifest);
        let mut mounts = Vec::new();
        for file in component
            .get("files")
            .and_then(toml::Value::as_array)
            .expect("files = [...]")
        {
            let source = file.get("source").and_then(toml::Value::as_str);
            let destination = file.get("destination").and_then(toml::Value::as_str);
            let (Some(source), Some(destination)) = (source, destination) else {
                panic!("a files entry without source and destination: {file}");
            };
            let host = match Path::new(source).file_name().and_then(|n| n.to_str()) {
                Some("state") => state,
                Some("queue") => queue,
                _ => panic!("spin.toml mounts {source}: the tests know only state and queue"),
            };
            mounts.push((host.to_path_buf(), destination.to_string()));
        }
        let env = component
            .get("environment")
            .and_then(toml::Value::as_table)
            .map(|t| {
                t.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        ComponentSpec {
            wasm: wasm.to_path_buf(),
            mounts,
            env,
        }
    }

    /// Adds environment variables (replacing ones of the same name).
    pub fn with_env(mut self, env: &[(&str, &str)]) -> ComponentSpec {
        for (k, v) in env {
            self.env.retain(|(name, _)| name != k);
            self.env.push(((*k).to_string(), (*v).to_string()));
        }
        self
    }

    /// Leaves out the environment variable `name`.
    pub fn without_env(mut self, name: &str) -> ComponentSpec {
        self.env.retain(|(k, _)| k != name);
        self
    }

    /// A Spin manifest for this component: the repository's `spin.toml`
    /// (application, trigger, `allowed_outbound_hosts`, everything else)
    /// with `source`, `files` and `environment` made absolute and the
    /// `build` section dropped.
    pub fn spin_manifest(&self) -> String {
        let mut manifest = read_manifest(&repo_manifest());
        let component = manifest_component_mut(&mut manifest);
        component.remove("build");
        component.insert(
            "source".into(),
            toml::Value::String(self.wasm.display().to_string()),
        );
        let files: Vec<toml::Value> = self
            .mounts
            .iter()
            .map(|(host, guest)| {
                let mut t = toml::Table::new();
                t.insert("source".into(), host.display().to_string().into());
                t.insert("destination".into(), guest.clone().into());
                toml::Value::Table(t)
            })
            .collect();
        component.insert("files".into(), toml::Value::Array(files));
        let env: toml::Table = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), toml::Value::String(v.clone())))
            .collect();
        component.insert("environment".into(), toml::Value::Table(env));
        toml::to_string(&manifest).expect("manifest to TOML")
    }

    /// The `wasmtime serve` arguments that give the component the same
    /// mounts and environment (before the `.wasm`).
    pub fn wasmtime_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (host, guest) in &self.mounts {
            args.push("--dir".into());
            args.push(format!("{}::{guest}", host.display()));
        }
        for (k, v) in &self.env {
            args.push("--env".into());
            args.push(format!("{k}={v}"));
        }
        args
    }
}
