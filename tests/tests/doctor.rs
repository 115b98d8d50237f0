//! `dyndns-applier doctor` against a throw-away install: the folders of a
//! temporary layout (owned by a stand-in handler user), units enabled with
//! the real `systemctl --root`, Plesk's per-domain nginx files in a
//! temporary tree, the real applier's view and heartbeat, and the real
//! component served over HTTP. Every check must pass on a working install
//! and name the fix for each thing broken. Needs root (it chowns folders);
//! skipped loudly otherwise. The real Spin and the real packaged install
//! are checked by the package tests (`tests/pkg.rs`).

use std::fs;
use std::os::unix::fs::{PermissionsExt, chown, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dyndns_tests::{Server, TestEnv, credential, free_port, root};

/// The stand-in handler user and group (nobody/nogroup's ids).
const HANDLER_ID: u32 = 65534;
/// `handler.proxy_secret`, pasted into the nginx directives too.
const PROXY_SECRET: &str = "0123456789abcdefghijklmnopqrstuv";

fn is_root() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIPPED: the doctor tests chown folders and need root");
    false
}

/// A working install in a temporary directory.
struct Install {
    env: TestEnv,
    /// Stands for `/`: units, cron line, Spin, user database.
    sysroot: PathBuf,
    /// Plesk's `/var/www/vhosts/system`.
    vhosts: PathBuf,
    server: Server,
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn write_exec(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    chmod(path, 0o755);
}

fn systemctl(sysroot: &Path, args: &[&str]) {
    let out = Command::new("systemctl")
        .arg(format!("--root={}", sysroot.display()))
        .args(args)
        .output()
        .expect("systemctl");
    assert!(out.status.success(), "systemctl {args:?}: {out:?}");
}

impl Install {
    fn new() -> Install {
        let body = format!(
            "zones = [\"dyn.example.com\"]\n[[hosts]]\nname = \"home.dyn.example.com\"\n[[users]]\nname = \"alice\"\ncredential = \"{}\"\nhosts = [\"home.dyn.example.com\"]\n[handler]\nproxy_secret = \"{PROXY_SECRET}\"\n",
            credential("alice-secret-0123456789")
        );
        let env = TestEnv::new(&body, "");
        let sysroot = env.dir.path().join("sysroot");
        let vhosts = env.dir.path().join("vhosts");
        // the handler's user, as the package creates it
        fs::create_dir_all(sysroot.join("etc")).unwrap();
        fs::write(
            sysroot.join("etc/passwd"),
            format!(
                "root:x:0:0:root:/root:/bin/sh\ndyndns:x:{HANDLER_ID}:{HANDLER_ID}:dyndns handler:/var/lib/dyndns-spin:/usr/sbin/nologin\n"
            ),
        )
        .unwrap();
        fs::write(
            sysroot.join("etc/group"),
            format!("root:x:0:\ndyndns:x:{HANDLER_ID}:\n"),
        )
        .unwrap();
        // the units, enabled by the real systemctl
        let units = sysroot.join("lib/systemd/system");
        fs::create_dir_all(&units).unwrap();
        for unit in ["dyndns-applier.service", "dyndns-spin.service"] {
            fs::copy(root().join("deploy/systemd").join(unit), units.join(unit)).unwrap();
        }
        systemctl(
            &sysroot,
            &["enable", "dyndns-applier.service", "dyndns-spin.service"],
        );
        fs::create_dir_all(sysroot.join("etc/cron.d")).unwrap();
        fs::copy(
            root().join("deploy/cron/dyndns-applier"),
            sysroot.join("etc/cron.d/dyndns-applier"),
        )
        .unwrap();
        // Spin's version answer (the real Spin is checked by the package tests)
        write_exec(
            &sysroot.join("usr/local/bin/spin"),
            "#!/bin/sh\necho 'spin 4.0.2 (stand-in)'\n",
        );
        // folders, owners and modes as the packages make them
        for (path, uid, gid, mode) in [
            (&env.queue, 0, HANDLER_ID, 0o750),
            (&env.queue.join("tmp"), HANDLER_ID, HANDLER_ID, 0o750),
            (&env.queue.join("new"), HANDLER_ID, HANDLER_ID, 0o750),
            (&env.state, 0, HANDLER_ID, 0o750),
        ] {
            chown(path, Some(uid), Some(gid)).unwrap();
            chmod(path, mode);
        }
        chmod(&env.config, 0o600);
        // the applier's first batch publishes the view and a heartbeat
        let run = env.run_applier(&["run", "--once"]);
        assert!(run.status.success(), "{run:?}");
        let server = env.serve();
        // Plesk's per-domain nginx files: ours, and another domain's
        let ours = fs::read_to_string(root().join("deploy/nginx/plesk-additional-directives.conf"))
            .unwrap()
            .replace("127.0.0.1:3000", &format!("127.0.0.1:{}", server.port))
            .replace("PROXY_SECRET", PROXY_SECRET);
        for (domain, text) in [
            ("dyn.example.com", ours.as_str()),
            (
                "shop.example.net",
                "location / { proxy_pass http://127.0.0.1:8080; }\n",
            ),
        ] {
            let conf = vhosts.join(domain).join("conf");
            fs::create_dir_all(&conf).unwrap();
            fs::write(conf.join("vhost_nginx.conf"), text).unwrap();
        }
        Install {
            env,
            sysroot,
            vhosts,
            server,
        }
    }

    fn nginx_file(&self, domain: &str) -> PathBuf {
        self.vhosts.join(domain).join("conf/vhost_nginx.conf")
    }

    fn doctor_at(&self, port: u16) -> (i32, Vec<String>) {
        let out: Output = self.env.run_applier(&[
            "doctor",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--vhosts",
            &self.vhosts.display().to_string(),
            "--root",
            &self.sysroot.display().to_string(),
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
        (
            out.status.code().unwrap_or(-1),
            text.lines().map(str::to_string).collect(),
        )
    }

    fn doctor(&self) -> (i32, Vec<String>) {
        self.doctor_at(self.server.port)
    }
}

/// The line about `subject`, which must be there exactly once.
fn line<'a>(lines: &'a [String], subject: &str) -> &'a str {
    let found: Vec<&String> = lines
        .iter()
        .filter(|l| {
            l.get(5..)
                .is_some_and(|rest| rest.starts_with(&format!("{subject}: ")))
        })
        .collect();
    assert_eq!(found.len(), 1, "one line for {subject:?} in {lines:#?}");
    found[0]
}

#[test]
fn a_working_install_passes_every_check() {
    if !is_root() {
        return;
    }
    let install = Install::new();
    let (code, lines) = install.doctor();
    let env = &install.env;
    assert!(line(&lines, "config").starts_with("ok   config: "));
    assert_eq!(
        line(&lines, "spin"),
        "ok   spin: /usr/local/bin/spin: spin 4.0.2 (stand-in)"
    );
    for unit in ["dyndns-applier.service", "dyndns-spin.service"] {
        // enabled; outside a booted systemd doctor cannot ask whether it runs
        assert_eq!(
            line(&lines, &format!("unit {unit}")),
            format!(
                "warn unit {unit}: enabled; systemd is not running here, so whether it runs was not asked"
            )
        );
    }
    for (dir, owner) in [
        ("", "root:dyndns 0750"),
        ("/tmp", "dyndns:dyndns 0750"),
        ("/new", "dyndns:dyndns 0750"),
        ("/cur", "root:root 0700"),
        ("/failed", "root:root 0700"),
    ] {
        let p = format!("{}{dir}", env.queue.display());
        assert_eq!(
            line(&lines, &format!("folder {p}")),
            format!("ok   folder {p}: {owner}")
        );
    }
    let state = env.state.display().to_string();
    assert_eq!(
        line(&lines, &format!("folder {state}")),
        format!("ok   folder {state}: root:dyndns 0750")
    );
    let private = env.private.display().to_string();
    assert!(line(&lines, &format!("folder {private}")).starts_with("ok   "));
    let config = env.config.display().to_string();
    assert_eq!(
        line(&lines, &format!("file {config}")),
        format!("ok   file {config}: root:root 0600")
    );
    assert!(
        line(&lines, "nginx dyn.example.com")
            .starts_with("ok   nginx dyn.example.com: location ~ ^/(nic/update|update|status|status\\.json)$ passes"),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.contains("shop.example.net")));
    assert!(line(&lines, "view").starts_with("ok   view: "));
    assert!(line(&lines, "heartbeat").starts_with("ok   heartbeat: "));
    let base = format!("http://127.0.0.1:{}", install.server.port);
    assert_eq!(
        line(&lines, "handler"),
        format!(
            "ok   handler: {base}/health: 200, version {}",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(
        line(&lines, "test update"),
        format!(
            "ok   test update: {base}/nic/update without credentials: 401, Basic realm=\"dyndns\""
        )
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("doctor: 17 checks, 0 failed, 2 warning(s)")
    );
    assert_eq!(code, 0);
}

#[test]
fn each_broken_part_is_named_with_its_fix() {
    if !is_root() {
        return;
    }
    let install = Install::new();
    let env = &install.env;
    let sysroot = &install.sysroot;
    // Spin missing, the spin unit disabled; the applier from cron instead
    fs::remove_file(sysroot.join("usr/local/bin/spin")).unwrap();
    systemctl(
        sysroot,
        &["disable", "dyndns-applier.service", "dyndns-spin.service"],
    );
    let cron = sysroot.join("etc/cron.d/dyndns-applier");
    let text = fs::read_to_string(&cron)
        .unwrap()
        .replace("#* * * * *", "* * * * *");
    fs::write(&cron, text).unwrap();
    // folders: new/ belongs to root, state/ readable by everyone, failed/ a
    // symlink, the config readable by everyone
    chown(env.queue.join("new"), Some(0), Some(0)).unwrap();
    chmod(&env.state, 0o755);
    let failed = env.queue.join("failed");
    fs::remove_dir(&failed).unwrap();
    symlink("/tmp", &failed).unwrap();
    chmod(&env.config, 0o644);
    // nginx: forwards to another port, and appends X-Forwarded-For
    let nginx = install.nginx_file("dyn.example.com");
    let text = fs::read_to_string(&nginx)
        .unwrap()
        .replace(&format!("127.0.0.1:{}", install.server.port), "127.0.0.1:1")
        .replace(
            "X-Forwarded-For $remote_addr",
            "X-Forwarded-For $proxy_add_x_forwarded_for",
        )
        .replace(PROXY_SECRET, "an-old-secret-0123456789");
    fs::write(&nginx, text).unwrap();
    // the config edited (another realm) but not republished; the applier
    // long gone
    let config = fs::read_to_string(&env.config).unwrap();
    fs::write(
        &env.config,
        config.replace("[handler]\n", "[handler]\nrealm = \"home\"\n"),
    )
    .unwrap();
    env.fake_heartbeat(std::time::SystemTime::now() - std::time::Duration::from_secs(3600));

    let (code, lines) = install.doctor();
    assert_eq!(code, 1);
    assert_eq!(
        line(&lines, "spin"),
        "FAIL spin: /usr/local/bin/spin not found: install Spin there (README, \"Install Spin\"); dyndns-spin.service runs it"
    );
    assert_eq!(
        line(&lines, "unit dyndns-applier.service"),
        "ok   unit dyndns-applier.service: disabled; the applier runs from cron (/etc/cron.d/dyndns-applier)"
    );
    assert_eq!(
        line(&lines, "unit dyndns-spin.service"),
        "FAIL unit dyndns-spin.service: disabled: systemctl enable --now dyndns-spin.service"
    );
    let new = env.queue.join("new").display().to_string();
    assert_eq!(
        line(&lines, &format!("folder {new}")),
        format!(
            "FAIL folder {new}: root:root 0750, want dyndns:dyndns 0750: chown dyndns:dyndns {new}"
        )
    );
    let state = env.state.display().to_string();
    assert_eq!(
        line(&lines, &format!("folder {state}")),
        format!("FAIL folder {state}: root:dyndns 0755, want root:dyndns 0750: chmod 0750 {state}")
    );
    let failed = failed.display().to_string();
    assert_eq!(
        line(&lines, &format!("folder {failed}")),
        format!(
            "FAIL folder {failed}: is a symbolic link, which the applier refuses: replace it: install -d -m 0700 -o root -g root {failed}"
        )
    );
    let config = env.config.display().to_string();
    assert_eq!(
        line(&lines, &format!("file {config}")),
        format!("FAIL file {config}: root:root 0644, want root 0600: chmod 0600 {config}")
    );
    assert_eq!(
        line(&lines, "nginx dyn.example.com"),
        format!(
            "FAIL nginx dyn.example.com: location ~ ^/(nic/update|update|status|status\\.json)$ lacks `proxy_pass http://127.0.0.1:{};` (passes the updates to Spin), `proxy_set_header X-Forwarded-For $remote_addr;` (tells the handler the client's address, set so a client cannot forge it), `proxy_set_header X-Dyndns-Proxy-Secret \"<handler.proxy_secret>\";` (proves the forwarded address comes from nginx): paste /usr/share/dyndns/plesk-additional-directives.conf into Plesk (the domain's Apache & nginx Settings, Additional nginx directives)",
            install.server.port
        )
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains(PROXY_SECRET) || l.contains("an-old-secret")),
        "secrets are not printed: {lines:#?}"
    );
    assert!(
        line(&lines, "view").starts_with("FAIL view: ")
            && line(&lines, "view").contains("was published from another config"),
        "{lines:#?}"
    );
    assert!(
        line(&lines, "heartbeat")
            .starts_with("FAIL heartbeat: 3600s old (limit 300s): the applier is not running"),
        "{lines:#?}"
    );
    // the served component still has the old view: its challenge names the old realm
    let base = format!("http://127.0.0.1:{}", install.server.port);
    assert_eq!(
        line(&lines, "test update"),
        format!(
            "FAIL test update: {base}/nic/update without credentials: 401 \"Basic realm=\\\"dyndns\\\", charset=\\\"UTF-8\\\"\", want 401 with Basic realm=\"home\": the handler cannot read its view (see above), or another program listens there"
        )
    );
}

#[test]
fn nothing_to_talk_to() {
    if !is_root() {
        return;
    }
    let install = Install::new();
    // no handler at the address, no domain with our directives, an old Spin,
    // no handler user
    fs::remove_file(install.nginx_file("dyn.example.com")).unwrap();
    write_exec(
        &install.sysroot.join("usr/local/bin/spin"),
        "#!/bin/sh\necho 'spin 2.7.0 (old)'\n",
    );
    fs::write(
        install.sysroot.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n",
    )
    .unwrap();
    // and no proxy secret in the config
    let config = fs::read_to_string(&install.env.config).unwrap();
    fs::write(
        &install.env.config,
        config.replace(&format!("proxy_secret = \"{PROXY_SECRET}\"\n"), ""),
    )
    .unwrap();
    let port = free_port();
    let (code, lines) = install.doctor_at(port);
    assert_eq!(code, 1);
    assert_eq!(
        line(&lines, "spin"),
        "warn spin: /usr/local/bin/spin says \"spin 2.7.0 (old)\"; dyndns is tested with Spin 3.x and 4.x"
    );
    assert_eq!(
        line(&lines, "handler user"),
        "FAIL handler user: dyndns (User= of dyndns-spin.service) does not exist: reinstall the dyndns package, which creates it"
    );
    assert!(!lines.iter().any(|l| l.contains(" folder ")), "{lines:#?}");
    assert!(
        line(&lines, "proxy secret").starts_with(
            "warn proxy secret: handler.proxy_secret is not set, so the handler believes no address nginx forwards"
        ),
        "{lines:#?}"
    );
    assert_eq!(
        line(&lines, "nginx"),
        format!(
            "FAIL nginx: no domain's conf/vhost_nginx.conf under {} passes /nic/update to the handler: paste /usr/share/dyndns/plesk-additional-directives.conf into Plesk (the domain's Apache & nginx Settings, Additional nginx directives)",
            install.vhosts.display()
        )
    );
    let handler = line(&lines, "handler");
    assert!(
        handler.starts_with(&format!(
            "FAIL handler: nothing answers at http://127.0.0.1:{port} ("
        )) && handler.ends_with(
            "systemctl enable --now dyndns-spin.service; journalctl -u dyndns-spin.service"
        ),
        "{handler}"
    );
    // an unreadable config stops the checks that need it, not the others
    fs::write(&install.env.config, "zones = 7\n").unwrap();
    let (code, lines) = install.doctor_at(port);
    assert_eq!(code, 1);
    let config = install.env.config.display().to_string();
    assert_eq!(
        line(&lines, "config"),
        format!(
            "FAIL config: {config}: TOML parse error at line 1, column 9 invalid type: integer `7`, expected a sequence; fix it until `dyndns-applier --config {config} check-config` passes"
        )
    );
    assert!(line(&lines, "spin").starts_with("warn spin: "));
    assert!(!lines.iter().any(|l| l.contains("heartbeat")));
}
