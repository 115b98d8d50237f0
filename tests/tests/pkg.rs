//! The packages, built by `scripts/package.sh` and used for real.
//!
//! Debian: lintian reports no error or warning; `dpkg -i` creates the user
//! and every folder with its owner and mode, installs the conffiles and
//! starts nothing; `systemd-analyze verify` accepts the installed units
//! (with the real Spin where the unit expects it); the installed programs
//! work together (the applier publishes, Spin runs the component as the
//! unit would, an update goes through the queue into the emulated Plesk,
//! `doctor` agrees with the package about every folder); an upgrade to a
//! rebuilt package keeps the edited config and the queue; remove keeps
//! them; purge leaves nothing. RPM: the file list with owners and modes,
//! the conffiles, the requirements and the scriptlets.
//!
//! The Debian test installs into this machine's real filesystem, so it
//! needs root (skipped loudly otherwise), refuses to run where dyndns is
//! already installed or its user or folders exist, and purges the package
//! again even when an assertion fails.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use dyndns_tests::{credential, free_port, handler_wasm, http, plesk_emulator, root, target_dir};

const MUSL: &str = "x86_64-unknown-linux-musl";
const SPIN: &str = "/usr/local/bin/spin";
const UNITS: [&str; 2] = ["dyndns-applier.service", "dyndns-spin.service"];
const CONFIG: &str = "/etc/dyndns/dyndns.toml";
/// The admin's `handler.proxy_secret`, pasted into the nginx directives too.
const PROXY_SECRET: &str = "0123456789abcdefghijklmnopqrstuv";

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

fn is_root() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIPPED: the package tests install with dpkg and need root");
    false
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds (once) what the packages hold: the component and the static applier.
fn artefacts() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        handler_wasm();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        run(Command::new(cargo)
            .args([
                "build",
                "--release",
                "-p",
                "dyndns-applier",
                "--target",
                MUSL,
            ])
            .current_dir(root()));
    });
}

/// Runs `scripts/package.sh FORMAT` with `version` into `out`; the package's path.
fn package(format: &str, version: &str, out: &Path) -> PathBuf {
    artefacts();
    let result = run(Command::new(root().join("scripts/package.sh"))
        .arg(format)
        .env("VERSION", version)
        .env("TARGET_DIR", target_dir())
        .env("OUT_DIR", out)
        .current_dir(root()));
    PathBuf::from(stdout(&result).trim())
}

/// `(mode, owner, group)` of a path, without following a symlink.
fn owner_mode(path: &str) -> (u32, String, String) {
    let meta = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let name = |db: &str, id: u32| {
        fs::read_to_string(db)
            .unwrap()
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.get(2) == Some(&id.to_string().as_str())).then(|| f[0].to_string())
            })
            .unwrap_or_else(|| id.to_string())
    };
    (
        meta.mode() & 0o7777,
        name("/etc/passwd", meta.uid()),
        name("/etc/group", meta.gid()),
    )
}

/// The user database entry of `name`, split into fields.
fn getent(db: &str, name: &str) -> Option<Vec<String>> {
    let out = Command::new("getent").args([db, name]).output().ok()?;
    out.status
        .success()
        .then(|| stdout(&out).trim().split(':').map(str::to_string).collect())
}

fn installed_version() -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status} ${Version}", "dyndns"])
        .output()
        .ok()?;
    let text = stdout(&out);
    text.strip_prefix("install ok installed ")
        .map(str::to_string)
}

/// Processes running one of the installed programs.
fn running_programs() -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        if let Ok(exe) = fs::read_link(entry.path().join("exe")) {
            let exe = exe.display().to_string();
            if exe.starts_with("/usr/sbin/dyndns-applier") || exe.starts_with(SPIN) {
                found.push(format!("{}: {exe}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// Purges the package (and what the test added) however the test ends.
struct Cleanup {
    spin_added: bool,
    spin: Option<Child>,
}

impl Cleanup {
    /// Stops Spin and the trigger process it starts (its process group).
    fn stop_spin(&mut self) {
        if let Some(mut child) = self.spin.take() {
            if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            let _ = child.wait();
            // the group is gone once no process of it is left
            dyndns_tests::wait_for(Duration::from_secs(10), || running_programs().is_empty());
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.stop_spin();
        if installed_version().is_some() || Path::new("/var/lib/dpkg/info/dyndns.list").exists() {
            let _ = Command::new("dpkg").args(["--purge", "dyndns"]).status();
        }
        if self.spin_added {
            let _ = fs::remove_file(SPIN);
        }
    }
}

/// The real Spin from the shared tools, if this checkout has them.
fn shared_spin() -> Option<PathBuf> {
    let tools = root().join("../shared/tools");
    let mut found: Vec<PathBuf> = fs::read_dir(&tools)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("spin-") && n.ends_with("-linux-x86_64.xz"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// Puts the real Spin where the unit expects it, unless one is there.
/// Returns whether the test added it.
fn provide_spin() -> Option<bool> {
    if Path::new(SPIN).exists() {
        return Some(false);
    }
    let xz = shared_spin()?;
    let file = fs::File::create(SPIN).unwrap();
    run(Command::new("xz").arg("-dc").arg(&xz).stdout(file));
    fs::set_permissions(SPIN, fs::Permissions::from_mode(0o755)).unwrap();
    Some(true)
}

/// A key's value in a unit file.
fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{key}= missing"))
        .to_string()
}

fn applier(emu: &Path) -> Command {
    let mut cmd = Command::new("/usr/sbin/dyndns-applier");
    cmd.env("PLESK_EMU_STATE", emu.join("plesk-state.json"))
        .env("PLESK_EMU_LOG", emu.join("plesk-calls.jsonl"))
        .env_remove("DYNDNS_CONFIG");
    cmd
}

/// The folders the package must create: path, mode, owner, group.
const FOLDERS: [(&str, u32, &str, &str); 9] = [
    ("/var/lib/dyndns", 0o750, "root", "dyndns"),
    ("/var/lib/dyndns/queue", 0o750, "root", "dyndns"),
    ("/var/lib/dyndns/queue/tmp", 0o750, "dyndns", "dyndns"),
    ("/var/lib/dyndns/queue/new", 0o750, "dyndns", "dyndns"),
    ("/var/lib/dyndns/queue/cur", 0o700, "root", "root"),
    ("/var/lib/dyndns/queue/failed", 0o700, "root", "root"),
    ("/var/lib/dyndns/state", 0o750, "root", "dyndns"),
    ("/var/lib/dyndns/private", 0o700, "root", "root"),
    ("/var/lib/dyndns-spin", 0o750, "dyndns", "dyndns"),
];

const CONFFILES: [&str; 4] = [
    "/etc/cron.d/dyndns-applier",
    "/etc/dyndns/dyndns.toml",
    "/etc/fail2ban/filter.d/dyndns.conf",
    "/etc/fail2ban/jail.d/dyndns.conf",
];

fn check_folders() {
    for (path, mode, owner, group) in FOLDERS {
        assert_eq!(
            owner_mode(path),
            (mode, owner.to_string(), group.to_string()),
            "{path}"
        );
    }
}

#[test]
fn debian_package_installs_upgrades_and_purges() {
    if !is_root() {
        return;
    }
    for (what, present) in [
        ("the dyndns package", installed_version().is_some()),
        ("user dyndns", getent("passwd", "dyndns").is_some()),
        ("group dyndns", getent("group", "dyndns").is_some()),
        ("/var/lib/dyndns", Path::new("/var/lib/dyndns").exists()),
        ("/etc/dyndns", Path::new("/etc/dyndns").exists()),
    ] {
        assert!(
            !present,
            "{what} exists on this machine: this test installs and purges the package, so it would destroy it. Remove it first (dpkg --purge dyndns)."
        );
    }
    let work = tempfile::tempdir().unwrap();
    let deb = package("deb", version(), work.path());
    assert_eq!(
        deb.file_name().unwrap().to_string_lossy(),
        format!("dyndns_{}_amd64.deb", version())
    );

    // lintian: no error, and no warning that is not overridden with a reason
    let lint = Command::new("lintian")
        .args(["--fail-on", "error,warning", "--display-level", ">=warning"])
        .arg(&deb)
        .output()
        .expect("lintian (scripts/test-deps.sh installs it)");
    let lint_text = format!("{}{}", stdout(&lint), String::from_utf8_lossy(&lint.stderr));
    assert!(lint.status.success(), "lintian:\n{lint_text}");
    assert!(
        !lint_text
            .lines()
            .any(|l| l.starts_with("E:") || l.starts_with("W:")),
        "{lint_text}"
    );

    let mut cleanup = Cleanup {
        spin_added: false,
        spin: None,
    };
    let install = run(Command::new("dpkg").arg("-i").arg(&deb));
    assert!(
        stdout(&install).contains("nothing was started"),
        "{}",
        stdout(&install)
    );
    assert_eq!(installed_version().as_deref(), Some(version()));

    // the user: a system user without a login
    let user = getent("passwd", "dyndns").expect("user dyndns");
    let uid: u32 = user[2].parse().unwrap();
    assert!(uid < 1000, "a system user: {user:?}");
    assert_eq!(user[5], "/var/lib/dyndns-spin");
    assert_eq!(user[6], "/usr/sbin/nologin");
    let group = getent("group", "dyndns").expect("group dyndns");
    assert_eq!(user[3], group[2], "primary group dyndns");

    // every folder, the config (a conffile, root only), the other conffiles
    check_folders();
    assert_eq!(
        owner_mode("/etc/dyndns"),
        (0o755, "root".into(), "root".into())
    );
    assert_eq!(owner_mode(CONFIG), (0o600, "root".into(), "root".into()));
    let example = fs::read_to_string(root().join("examples/dyndns.toml")).unwrap();
    assert_eq!(fs::read_to_string(CONFIG).unwrap(), example);
    let conffiles = stdout(&run(Command::new("dpkg-query").args([
        "-W",
        "-f=${Conffiles}",
        "dyndns",
    ])));
    let mut listed: Vec<&str> = conffiles
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    listed.sort();
    assert_eq!(listed, CONFFILES);
    for (installed, shipped) in [
        ("/usr/share/dyndns/spin.toml", "deploy/spin.toml"),
        (
            "/usr/share/dyndns/plesk-additional-directives.conf",
            "deploy/nginx/plesk-additional-directives.conf",
        ),
        (
            "/lib/systemd/system/dyndns-applier.service",
            "deploy/systemd/dyndns-applier.service",
        ),
        (
            "/lib/systemd/system/dyndns-spin.service",
            "deploy/systemd/dyndns-spin.service",
        ),
    ] {
        assert_eq!(
            fs::read(installed).unwrap(),
            fs::read(root().join(shipped)).unwrap(),
            "{installed}"
        );
    }
    assert_eq!(
        fs::read("/usr/share/dyndns/dyndns_handler.wasm").unwrap(),
        fs::read(handler_wasm()).unwrap()
    );
    for doc in [
        "/usr/share/doc/dyndns/copyright",
        "/usr/share/doc/dyndns/changelog.gz",
        "/usr/share/doc/dyndns/README.md.gz",
        "/usr/share/doc/dyndns/CHANGELOG.md.gz",
        "/usr/share/man/man8/dyndns-applier.8.gz",
    ] {
        assert!(Path::new(doc).is_file(), "{doc}");
    }
    assert_eq!(
        stdout(&run(
            Command::new("/usr/sbin/dyndns-applier").arg("--version")
        ))
        .trim(),
        format!("dyndns-applier {}", version())
    );

    // the postinst is idempotent: again, and nothing changes
    run(Command::new("/var/lib/dpkg/info/dyndns.postinst").arg("configure"));
    check_folders();
    assert_eq!(getent("passwd", "dyndns").unwrap(), user);

    // nothing started or enabled; cron line and jail inactive
    assert_eq!(running_programs(), Vec::<String>::new());
    for unit in UNITS {
        let out = Command::new("systemctl")
            .args(["is-enabled", unit])
            .output()
            .unwrap();
        assert_eq!(stdout(&out).trim(), "disabled", "{unit}");
    }
    let cron = fs::read_to_string("/etc/cron.d/dyndns-applier").unwrap();
    assert!(
        cron.lines()
            .all(|l| l.is_empty() || l.starts_with('#') || l.contains('=')),
        "{cron}"
    );
    let jail = fs::read_to_string("/etc/fail2ban/jail.d/dyndns.conf").unwrap();
    assert!(
        jail.lines().any(|l| l.replace(' ', "") == "enabled=false"),
        "{jail}"
    );

    // systemd itself checks the installed units, with the real Spin where
    // the Spin unit runs it
    let units: Vec<String> = UNITS
        .iter()
        .map(|u| format!("/lib/systemd/system/{u}"))
        .collect();
    let spin = provide_spin();
    match spin {
        Some(added) => {
            cleanup.spin_added = added;
            let verify = Command::new("systemd-analyze")
                .arg("verify")
                .args(&units)
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                stdout(&verify),
                String::from_utf8_lossy(&verify.stderr)
            );
            assert!(verify.status.success(), "systemd-analyze verify:\n{text}");
            assert!(!text.contains("dyndns"), "systemd-analyze verify:\n{text}");
        }
        None => {
            eprintln!(
                "SKIPPED (Spin not found: no {SPIN}, no ../shared/tools/spin-*.xz): systemd-analyze verify of the Spin unit and the run on Spin"
            );
            let verify = Command::new("systemd-analyze")
                .arg("verify")
                .arg(&units[0])
                .output()
                .unwrap();
            assert!(verify.status.success(), "{verify:?}");
        }
    }

    // The admin's edit: a real user and host, the emulated Plesk. Then the
    // installed programs, run as the units run them.
    let emu = work.path().join("plesk");
    fs::create_dir_all(&emu).unwrap();
    fs::write(
        emu.join("plesk-state.json"),
        r#"{"zones":{"dyn.example.com":[{"name":"home.dyn.example.com.","type":"A","value":"192.0.2.1"}]}}"#,
    )
    .unwrap();
    let edited = format!(
        "# edited by the admin\nzones = [\"dyn.example.com\"]\n\n[handler]\nproxy_secret = \"{PROXY_SECRET}\"\n\n[applier]\nplesk = \"{}\"\ninterval = \"1s\"\n\n[[hosts]]\nname = \"home.dyn.example.com\"\ntypes = [\"A\"]\n\n[[users]]\nname = \"alice\"\ncredential = \"{}\"\nhosts = [\"home.dyn.example.com\"]\n",
        plesk_emulator().display(),
        credential("alice-secret-0123456789")
    );
    fs::write(CONFIG, &edited).unwrap();
    run(applier(&emu).arg("check-config"));
    run(applier(&emu).args(["run", "--once"]));

    if spin.is_some() {
        let unit = fs::read_to_string("/lib/systemd/system/dyndns-spin.service").unwrap();
        let port = free_port();
        let mut words: Vec<String> = unit_value(&unit, "ExecStart")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let at = words.iter().position(|w| w == "--listen").unwrap();
        words[at + 1] = format!("127.0.0.1:{port}");
        let home = unit_value(&unit, "Environment")
            .strip_prefix("HOME=")
            .unwrap()
            .to_string();
        // User= and Group= without supplementary groups, as systemd runs it
        let log = fs::File::create(work.path().join("spin.log")).unwrap();
        let child = Command::new("setpriv")
            .arg(format!("--reuid={}", unit_value(&unit, "User")))
            .arg(format!("--regid={}", unit_value(&unit, "Group")))
            .arg("--clear-groups")
            .arg("--")
            .args(&words)
            .current_dir(unit_value(&unit, "WorkingDirectory"))
            .env_clear()
            .env("HOME", &home)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        cleanup.spin = Some(child);
        let ready = dyndns_tests::wait_for(Duration::from_secs(60), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let spin_log = || fs::read_to_string(work.path().join("spin.log")).unwrap_or_default();
        assert!(ready, "Spin did not start:\n{}", spin_log());
        let update = |ip: &str| {
            http::request(
                port,
                "GET",
                &format!("/nic/update?hostname=home.dyn.example.com&myip={ip}"),
                Some(("alice", "alice-secret-0123456789")),
                &[],
                None,
            )
        };
        let r = update("198.51.100.7");
        assert_eq!(r.body, "good 198.51.100.7\n", "{}", spin_log());
        let entry = "/var/lib/dyndns/queue/new/home.dyn.example.com_A.json";
        assert_eq!(
            owner_mode(entry).1,
            "dyndns",
            "written by the handler's user"
        );
        run(applier(&emu).args(["run", "--once"]));
        let zone = fs::read_to_string(emu.join("plesk-state.json")).unwrap();
        assert!(zone.contains("198.51.100.7"), "{zone}");

        // doctor agrees with the package: only the units are not enabled
        let vhosts = work.path().join("vhosts");
        let conf = vhosts.join("dyn.example.com/conf");
        fs::create_dir_all(&conf).unwrap();
        let directives = fs::read_to_string("/usr/share/dyndns/plesk-additional-directives.conf")
            .unwrap()
            .replace("127.0.0.1:3000", &format!("127.0.0.1:{port}"))
            .replace("PROXY_SECRET", PROXY_SECRET);
        fs::write(conf.join("vhost_nginx.conf"), directives).unwrap();
        let doctor = applier(&emu)
            .args([
                "doctor",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--vhosts",
            ])
            .arg(&vhosts)
            .output()
            .unwrap();
        let report = stdout(&doctor);
        assert_eq!(doctor.status.code(), Some(1), "{report}");
        let failed: Vec<&str> = report.lines().filter(|l| l.starts_with("FAIL")).collect();
        assert_eq!(
            failed,
            vec![
                "FAIL unit dyndns-applier.service: disabled: systemctl enable --now dyndns-applier.service",
                "FAIL unit dyndns-spin.service: disabled: systemctl enable --now dyndns-spin.service",
            ],
            "{report}"
        );
        assert!(
            report.contains("ok   spin: /usr/local/bin/spin: spin 4."),
            "{report}"
        );
        assert_eq!(
            report
                .lines()
                .filter(|l| l.starts_with("ok   folder "))
                .count(),
            7,
            "{report}"
        );
        assert!(
            report.contains(&format!("ok   file {CONFIG}: root:root 0600")),
            "{report}"
        );
        assert!(report.contains("ok   test update: "), "{report}");
        assert!(report.contains("ok   nginx dyn.example.com: "), "{report}");
        assert!(!report.lines().any(|l| l.starts_with("warn")), "{report}");

        // a pending update for the upgrade to keep
        assert_eq!(update("198.51.100.8").body, "good 198.51.100.8\n");
        cleanup.stop_spin();
    } else {
        // without Spin, queue an entry as the handler would
        let entry = "/var/lib/dyndns/queue/new/home.dyn.example.com_A.json";
        fs::write(entry, "{}").unwrap();
    }
    let pending = fs::read("/var/lib/dyndns/queue/new/home.dyn.example.com_A.json").unwrap();

    // upgrade to a rebuilt package with another version: the edited config
    // and the queue survive, the folders are as the package makes them
    // (a mode changed meanwhile is put right)
    fs::set_permissions("/var/lib/dyndns/state", fs::Permissions::from_mode(0o755)).unwrap();
    let next = format!("{}+test1", version());
    let deb2 = package("deb", &next, &work.path().join("next"));
    let upgrade = run(Command::new("dpkg").arg("-i").arg(&deb2));
    assert_eq!(installed_version(), Some(next.clone()));
    assert!(
        !stdout(&upgrade).contains("nothing was started"),
        "an upgrade is not a first install"
    );
    assert_eq!(fs::read_to_string(CONFIG).unwrap(), edited);
    assert_eq!(owner_mode(CONFIG), (0o600, "root".into(), "root".into()));
    assert!(!Path::new(&format!("{CONFIG}.dpkg-dist")).exists());
    assert!(!Path::new(&format!("{CONFIG}.dpkg-new")).exists());
    assert_eq!(
        fs::read("/var/lib/dyndns/queue/new/home.dyn.example.com_A.json").unwrap(),
        pending
    );
    check_folders();
    assert_eq!(
        getent("passwd", "dyndns").unwrap()[2],
        uid.to_string(),
        "same user"
    );
    assert_eq!(running_programs(), Vec::<String>::new());

    // remove keeps the config and the queue; purge removes everything
    let files = stdout(&run(Command::new("dpkg").args(["-L", "dyndns"])));
    run(Command::new("dpkg").args(["--remove", "dyndns"]));
    assert!(!Path::new("/usr/sbin/dyndns-applier").exists());
    assert_eq!(fs::read_to_string(CONFIG).unwrap(), edited);
    assert_eq!(
        fs::read("/var/lib/dyndns/queue/new/home.dyn.example.com_A.json").unwrap(),
        pending
    );
    run(Command::new("dpkg").args(["--purge", "dyndns"]));
    assert_eq!(installed_version(), None);
    for path in files.lines().filter(|p| p.contains("dyndns")) {
        assert!(
            fs::symlink_metadata(path).is_err(),
            "{path} left after purge"
        );
    }
    for path in ["/etc/dyndns", "/var/lib/dyndns", "/var/lib/dyndns-spin"]
        .into_iter()
        .chain(CONFFILES)
    {
        assert!(
            fs::symlink_metadata(path).is_err(),
            "{path} left after purge"
        );
    }
    assert!(
        getent("passwd", "dyndns").is_none(),
        "user left after purge"
    );
    assert!(
        getent("group", "dyndns").is_none(),
        "group left after purge"
    );
    let spin_added = cleanup.spin_added;
    drop(cleanup);
    assert_eq!(
        Path::new(SPIN).exists(),
        spin.is_some() && !spin_added,
        "{SPIN} as before the test"
    );
}

#[test]
fn rpm_package_holds_the_files_and_scripts() {
    let work = tempfile::tempdir().unwrap();
    let rpm = package("rpm", version(), work.path());
    assert_eq!(
        rpm.file_name().unwrap().to_string_lossy(),
        format!("dyndns-{}.x86_64.rpm", version())
    );
    let query = |args: &[&str]| stdout(&run(Command::new("rpm").args(args).arg(&rpm)));

    // every file and folder, with mode and owner
    let mut listing: Vec<String> = query(&["-qlvp"])
        .lines()
        .filter(|l| !l.contains("/usr/lib/.build-id"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {} {}", f[0], f[2], f[3], f[f.len() - 1])
        })
        .collect();
    listing.sort();
    let mut want: Vec<String> = [
        "-rw-r--r-- root root /etc/cron.d/dyndns-applier",
        "drwxr-xr-x root root /etc/dyndns",
        "-rw------- root root /etc/dyndns/dyndns.toml",
        "-rw-r--r-- root root /etc/fail2ban/filter.d/dyndns.conf",
        "-rw-r--r-- root root /etc/fail2ban/jail.d/dyndns.conf",
        "-rw-r--r-- root root /usr/lib/systemd/system/dyndns-applier.service",
        "-rw-r--r-- root root /usr/lib/systemd/system/dyndns-spin.service",
        "-rwxr-xr-x root root /usr/sbin/dyndns-applier",
        "drwxr-xr-x root root /usr/share/doc/dyndns",
        "-rw-r--r-- root root /usr/share/doc/dyndns/CHANGELOG.md",
        "-rw-r--r-- root root /usr/share/doc/dyndns/README.md",
        "drwxr-xr-x root root /usr/share/dyndns",
        "-rw-r--r-- root root /usr/share/dyndns/dyndns_handler.wasm",
        "-rw-r--r-- root root /usr/share/dyndns/plesk-additional-directives.conf",
        "-rw-r--r-- root root /usr/share/dyndns/spin.toml",
        "-rw-r--r-- root root /usr/share/man/man8/dyndns-applier.8.gz",
        "drwxr-x--- root dyndns /var/lib/dyndns",
        "drwxr-x--- dyndns dyndns /var/lib/dyndns-spin",
        "drwx------ root root /var/lib/dyndns/private",
        "drwxr-x--- root dyndns /var/lib/dyndns/queue",
        "drwx------ root root /var/lib/dyndns/queue/cur",
        "drwx------ root root /var/lib/dyndns/queue/failed",
        "drwxr-x--- dyndns dyndns /var/lib/dyndns/queue/new",
        "drwxr-x--- dyndns dyndns /var/lib/dyndns/queue/tmp",
        "drwxr-x--- root dyndns /var/lib/dyndns/state",
    ]
    .map(str::to_string)
    .to_vec();
    want.sort();
    assert_eq!(listing, want);

    // conffiles, never replaced on upgrade (%config(noreplace))
    let mut configs: Vec<String> = query(&["-qcp"]).lines().map(str::to_string).collect();
    configs.sort();
    assert_eq!(configs, CONFFILES);
    let noreplace = query(&["--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\\n]", "-qp"]);
    for conf in CONFFILES {
        assert!(
            noreplace.lines().any(|l| l == format!("{conf} cn")),
            "{conf} %config(noreplace):\n{noreplace}"
        );
    }

    // a static binary: no C library to require; the user tools for %pre
    let requires = query(&["-qp", "--requires"]);
    assert!(
        requires.lines().any(|l| l.trim() == "shadow-utils"),
        "{requires}"
    );
    assert!(!requires.contains("libc.so"), "{requires}");
    assert!(!requires.to_lowercase().contains("spin"), "{requires}");
    let version_line = query(&["-qp", "--qf", "%{VERSION}"]);
    assert_eq!(version_line, version());

    // the scriptlets: user first, nothing started on install, stop on
    // erase, restart of running units on upgrade only with a valid config;
    // each parses as POSIX sh
    let scripts = query(&["-qp", "--scripts"]);
    for tag in ["PREIN", "POSTIN", "PREUN", "POSTUN"] {
        let body = query(&["-qp", "--qf", &format!("%{{{tag}}}")]);
        let path = work.path().join(tag);
        fs::write(&path, &body).unwrap();
        run(Command::new("sh").arg("-n").arg(&path));
        let check = match tag {
            "PREIN" => body.contains("useradd -r -g dyndns") && body.contains("groupadd -r dyndns"),
            // the only systemctl call: reloading the unit files
            "POSTIN" => body
                .lines()
                .filter(|l| l.trim_start().starts_with("systemctl"))
                .all(|l| l.contains("daemon-reload") && !l.contains("enable")),
            "PREUN" => body.contains("disable --now dyndns-spin.service dyndns-applier.service"),
            _ => {
                body.contains("check-config")
                    && body.contains("try-restart dyndns-applier.service dyndns-spin.service")
            }
        };
        assert!(check, "{tag}:\n{scripts}");
    }
}
