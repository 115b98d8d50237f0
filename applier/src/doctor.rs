//! `dyndns-applier doctor`: checks a live install end to end and prints one
//! line per check, `ok`, `warn` or `FAIL`, with the fix for each problem:
//! the config, Spin and its version, the two units, the folders with their
//! owners and modes, the nginx directives in Plesk's per-domain config, the
//! published view, the applier's heartbeat, and real requests to the
//! handler. What each check expects is written down once, here: the folder
//! rules in [`folder_rules`], the paths nginx must pass in
//! [`passed_paths`] and the directives their locations need in
//! [`nginx_expectations`].

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use dyndns_core::config::Config;
use dyndns_core::view;

use crate::config_file;
use crate::fsutil::read_optional;
use crate::layout::Layout;
use crate::nginx_conf::{self, ArgsMatch, ExpectedDirective};
use crate::process;
use crate::publish;
use crate::state_store;

/// The applier's unit.
pub const APPLIER_UNIT: &str = "dyndns-applier.service";
/// The handler's unit (Spin).
pub const SPIN_UNIT: &str = "dyndns-spin.service";
/// Where the README tells the admin to put Spin (the unit's default).
const DEFAULT_SPIN: &str = "/usr/local/bin/spin";
/// Spin's own default listen address, used when the unit does not say.
const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3000);
/// The handler's user when the unit does not say.
const DEFAULT_HANDLER_USER: &str = "dyndns";
/// The cron line the packages install (inactive until the admin edits it).
const CRON_FILE: &str = "etc/cron.d/dyndns-applier";
/// Where systemd looks for unit files, most important first.
const UNIT_DIRS: [&str; 5] = [
    "etc/systemd/system",
    "run/systemd/system",
    "usr/local/lib/systemd/system",
    "lib/systemd/system",
    "usr/lib/systemd/system",
];
/// The Spin major versions dyndns is tested with.
const SPIN_MAJORS: [u32; 2] = [3, 4];
/// How long one external command or request may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// The file Plesk writes "Additional nginx directives" to, per domain.
const PLESK_VHOST_NGINX: &str = "conf/vhost_nginx.conf";
/// The package's copy of the directives to paste.
const SHIPPED_DIRECTIVES: &str = "/usr/share/dyndns/plesk-additional-directives.conf";

/// Where `doctor` looks.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// The config file.
    pub config: PathBuf,
    /// The handler's address; `None`: the `--listen` of the installed
    /// Spin unit, else Spin's default 127.0.0.1:3000.
    pub listen: Option<SocketAddr>,
    /// Plesk's per-domain folders, each with `conf/vhost_nginx.conf`.
    pub vhosts: PathBuf,
    /// The root under which units, the cron file, Spin and the user
    /// database are looked up (`/`, or a chroot or test tree).
    pub root: PathBuf,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// As it should be.
    Ok,
    /// Works, but deserves a look.
    Warn,
    /// Broken; the line says how to fix it.
    Fail,
}

/// The result of one check: one output line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How it came out.
    pub verdict: Verdict,
    /// What was checked, e.g. `spin` or a folder.
    pub subject: String,
    /// What was found, and the fix when something is wrong.
    pub text: String,
}

impl Finding {
    fn ok(subject: impl Into<String>, text: impl Into<String>) -> Finding {
        Finding {
            verdict: Verdict::Ok,
            subject: subject.into(),
            text: text.into(),
        }
    }
    fn warn(subject: impl Into<String>, text: impl Into<String>) -> Finding {
        Finding {
            verdict: Verdict::Warn,
            subject: subject.into(),
            text: text.into(),
        }
    }
    fn fail(subject: impl Into<String>, text: impl Into<String>) -> Finding {
        Finding {
            verdict: Verdict::Fail,
            subject: subject.into(),
            text: text.into(),
        }
    }
}

/// `text` on one line: line breaks become spaces, and the source excerpt
/// of a TOML error (`1 | zones = 7`, `  ^`) is left out.
fn one_line(text: &str) -> String {
    let excerpt = |l: &str| {
        l.starts_with('|')
            || l.chars().all(|c| c == '^' || c.is_whitespace())
            || l.split_once(" |")
                .is_some_and(|(n, _)| n.chars().all(|c| c.is_ascii_digit()))
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !excerpt(l))
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        };
        write!(f, "{tag} {}: {}", self.subject, one_line(&self.text))
    }
}

/// Prints findings as they come and counts them.
struct Report<'a> {
    out: &'a mut dyn Write,
    total: usize,
    warned: usize,
    failed: usize,
}

impl Report<'_> {
    fn add(&mut self, finding: Finding) -> io::Result<()> {
        self.total += 1;
        match finding.verdict {
            Verdict::Ok => {}
            Verdict::Warn => self.warned += 1,
            Verdict::Fail => self.failed += 1,
        }
        writeln!(self.out, "{finding}")?;
        self.out.flush()
    }

    fn add_all(&mut self, findings: Vec<Finding>) -> io::Result<()> {
        findings.into_iter().try_for_each(|f| self.add(f))
    }
}

/// Runs every check, printing one line each, then a summary. Returns the
/// exit code: 0 when nothing failed (warnings allowed), 1 otherwise.
pub fn run(opts: &DoctorOptions, out: &mut dyn Write) -> Result<i32> {
    let mut report = Report {
        out,
        total: 0,
        warned: 0,
        failed: 0,
    };
    let config = match config_file::load(&opts.config) {
        Ok(loaded) => {
            let c = &loaded.config;
            report.add(Finding::ok(
                "config",
                format!(
                    "{} is valid ({} zone(s), {} host(s), {} user(s))",
                    opts.config.display(),
                    c.zones.len(),
                    c.hosts.len(),
                    c.users.len()
                ),
            ))?;
            Some(loaded.config)
        }
        Err(e) => {
            report.add(Finding::fail(
                "config",
                format!(
                    "{}; fix it until `dyndns-applier --config {} check-config` passes",
                    one_line(&format!("{e:#}")),
                    opts.config.display()
                ),
            ))?;
            None
        }
    };
    let spin_unit = UnitFile::find(&opts.root, SPIN_UNIT);
    report.add(check_spin(&opts.root, spin_unit.as_ref()))?;
    for unit in [APPLIER_UNIT, SPIN_UNIT] {
        report.add(check_unit(&opts.root, unit))?;
    }
    let listen = opts.listen.unwrap_or_else(|| {
        spin_unit
            .as_ref()
            .and_then(UnitFile::listen)
            .unwrap_or(DEFAULT_LISTEN)
    });
    if let Some(config) = &config {
        match HandlerIdentity::resolve(&opts.root, spin_unit.as_ref()) {
            Ok(identity) => report.add_all(check_folders(
                &folder_rules(config, &opts.config),
                &identity,
            ))?,
            Err(finding) => report.add(finding)?,
        }
        if let Some(note) = proxy_secret_note(config) {
            report.add(note)?;
        }
        report.add_all(check_nginx(
            &opts.vhosts,
            config,
            &nginx_expectations(config, listen),
        ))?;
        let layout = Layout::new(&config.paths);
        report.add(check_view(config, &layout))?;
        report.add(check_heartbeat(config, &layout, SystemTime::now()))?;
        report.add_all(check_handler(listen, &config.handler.realm))?;
    }
    let (total, warned, failed) = (report.total, report.warned, report.failed);
    writeln!(
        report.out,
        "doctor: {total} checks, {failed} failed, {warned} warning(s)"
    )?;
    Ok(if failed > 0 { 1 } else { 0 })
}

/// `path` (absolute) as seen under `root`.
fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// An installed unit file (drop-ins are not read).
#[derive(Debug, Clone)]
struct UnitFile {
    text: String,
}

impl UnitFile {
    /// The unit file systemd would load for `name`.
    fn find(root: &Path, name: &str) -> Option<UnitFile> {
        UNIT_DIRS.iter().find_map(|dir| {
            let path = root.join(dir).join(name);
            let bytes = read_optional(&path, 64 * 1024).ok()??;
            Some(UnitFile {
                text: String::from_utf8_lossy(&bytes).into_owned(),
            })
        })
    }

    /// The last value of `key=` (later assignments win).
    fn value(&self, key: &str) -> Option<&str> {
        self.text
            .lines()
            .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
            .rfind(|v| !v.is_empty())
    }

    /// `ExecStart=` split into words (double quotes group, as systemd does).
    fn exec_start(&self) -> Vec<String> {
        let Some(line) = self.value("ExecStart") else {
            return Vec::new();
        };
        let mut words = Vec::new();
        let mut word = String::new();
        let mut quoted = false;
        let mut in_word = false;
        for c in line.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    in_word = true;
                }
                c if c.is_whitespace() && !quoted => {
                    if in_word {
                        words.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                c => {
                    word.push(c);
                    in_word = true;
                }
            }
        }
        if in_word {
            words.push(word);
        }
        if let Some(first) = words.first_mut() {
            *first = first
                .trim_start_matches(['-', '@', ':', '+', '!'])
                .to_string();
        }
        words
    }

    /// The address given to `spin up --listen`.
    fn listen(&self) -> Option<SocketAddr> {
        let words = self.exec_start();
        let mut it = words.iter();
        while let Some(w) = it.next() {
            if w == "--listen" {
                return it.next()?.parse().ok();
            }
            if let Some(v) = w.strip_prefix("--listen=") {
                return v.parse().ok();
            }
        }
        None
    }
}

fn check_spin(root: &Path, unit: Option<&UnitFile>) -> Finding {
    let program = unit
        .map(UnitFile::exec_start)
        .and_then(|w| w.into_iter().next())
        .unwrap_or_else(|| DEFAULT_SPIN.to_string());
    let path = under(root, Path::new(&program));
    if !path.is_file() {
        return Finding::fail(
            "spin",
            format!(
                "{program} not found: install Spin there (README, \"Install Spin\"); {SPIN_UNIT} runs it"
            ),
        );
    }
    match process::run(&path, &["--version"], PROBE_TIMEOUT) {
        Ok(done) if done.code == Some(0) => {
            let line = done
                .stdout
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            let major = line
                .strip_prefix("spin ")
                .and_then(|v| v.split('.').next())
                .and_then(|m| m.parse::<u32>().ok());
            match major {
                Some(m) if SPIN_MAJORS.contains(&m) => {
                    Finding::ok("spin", format!("{program}: {line}"))
                }
                _ => Finding::warn(
                    "spin",
                    format!("{program} says {line:?}; dyndns is tested with Spin 3.x and 4.x"),
                ),
            }
        }
        Ok(done) => Finding::fail(
            "spin",
            format!(
                "`{program} --version` failed (exit {:?}): {}",
                done.code,
                done.stderr.trim()
            ),
        ),
        Err(e) => Finding::fail("spin", format!("`{program} --version`: {e}")),
    }
}

/// True when the package's cron line is active (not commented out).
fn cron_active(root: &Path) -> bool {
    fs::read_to_string(root.join(CRON_FILE))
        .map(|text| {
            text.lines().any(|l| {
                let l = l.trim();
                // not a comment, not a variable (SHELL=, PATH=)
                !l.starts_with('#')
                    && l.split_whitespace()
                        .next()
                        .is_some_and(|w| !w.contains('='))
                    && l.contains("dyndns-applier")
            })
        })
        .unwrap_or(false)
}

fn systemctl(root: &Path, args: &[&str]) -> Result<(Option<i32>, String), String> {
    let root_arg = format!("--root={}", root.display());
    let mut all: Vec<&str> = Vec::new();
    if root != Path::new("/") {
        all.push(&root_arg);
    }
    all.extend_from_slice(args);
    match process::run(Path::new("systemctl"), &all, PROBE_TIMEOUT) {
        Ok(done) => Ok((
            done.code,
            format!("{}{}", done.stdout.trim(), done.stderr.trim()),
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn check_unit(root: &Path, unit: &str) -> Finding {
    let subject = format!("unit {unit}");
    if UnitFile::find(root, unit).is_none() {
        return Finding::fail(subject, "not installed: reinstall the dyndns package");
    }
    let state = match systemctl(root, &["is-enabled", unit]) {
        Ok((_, out)) => out.lines().next().unwrap_or_default().to_string(),
        Err(e) => return Finding::warn(subject, format!("cannot ask systemctl: {e}")),
    };
    if !state.starts_with("enabled") {
        if unit == APPLIER_UNIT && cron_active(root) {
            return Finding::ok(
                subject,
                format!("{state}; the applier runs from cron (/{CRON_FILE})"),
            );
        }
        return Finding::fail(subject, format!("{state}: systemctl enable --now {unit}"));
    }
    if root != Path::new("/") || !Path::new("/run/systemd/system").is_dir() {
        return Finding::warn(
            subject,
            "enabled; systemd is not running here, so whether it runs was not asked",
        );
    }
    match systemctl(root, &["is-active", unit]) {
        Ok((Some(0), _)) => Finding::ok(subject, "enabled and running"),
        Ok((_, out)) => Finding::fail(
            subject,
            format!(
                "enabled but {}: journalctl -u {unit}, then systemctl restart {unit}",
                out.lines().next().unwrap_or("not running")
            ),
        ),
        Err(e) => Finding::warn(subject, format!("enabled; cannot ask systemctl: {e}")),
    }
}

/// The handler's user and group, as the Spin unit runs it.
#[derive(Debug, Clone)]
struct HandlerIdentity {
    user: String,
    group: String,
    uid: u32,
    gid: u32,
    /// The user database, for naming other owners in messages.
    passwd: String,
    group_db: String,
}

/// `name:x:id:...` lines: the entry named `name`, as (id, fourth field).
fn db_entry(db: &str, name: &str) -> Option<(u32, Option<u32>)> {
    db.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        let id = f.nth(1)?.parse().ok()?;
        Some((id, f.next().and_then(|g| g.parse().ok())))
    })
}

/// The name of id `id` in a `name:x:id:...` database.
fn db_name(db: &str, id: u32) -> Option<&str> {
    db.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)?.parse::<u32>().ok()? == id).then_some(name)
    })
}

impl HandlerIdentity {
    fn resolve(root: &Path, unit: Option<&UnitFile>) -> Result<HandlerIdentity, Finding> {
        let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
        let group_db = fs::read_to_string(root.join("etc/group")).unwrap_or_default();
        let user = unit
            .and_then(|u| u.value("User"))
            .unwrap_or(DEFAULT_HANDLER_USER)
            .to_string();
        let Some((uid, primary)) = db_entry(&passwd, &user) else {
            return Err(Finding::fail(
                "handler user",
                format!(
                    "{user} (User= of {SPIN_UNIT}) does not exist: reinstall the dyndns package, which creates it"
                ),
            ));
        };
        let group = match unit.and_then(|u| u.value("Group")) {
            Some(g) => g.to_string(),
            None => primary
                .and_then(|g| db_name(&group_db, g))
                .unwrap_or(&user)
                .to_string(),
        };
        let Some((gid, _)) = db_entry(&group_db, &group) else {
            return Err(Finding::fail(
                "handler group",
                format!("{group} does not exist: reinstall the dyndns package, which creates it"),
            ));
        };
        Ok(HandlerIdentity {
            user,
            group,
            uid,
            gid,
            passwd,
            group_db,
        })
    }

    fn user_name(&self, uid: u32) -> String {
        db_name(&self.passwd, uid).map_or_else(|| uid.to_string(), str::to_string)
    }

    fn group_name(&self, gid: u32) -> String {
        db_name(&self.group_db, gid).map_or_else(|| gid.to_string(), str::to_string)
    }
}

/// Who owns a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// root (uid or gid 0).
    Root,
    /// The handler's user or group (`User=`/`Group=` of the Spin unit).
    Handler,
}

/// What a folder (or the config file) must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderRule {
    /// The path.
    pub path: PathBuf,
    /// A directory (else a regular file).
    pub dir: bool,
    /// Its owner.
    pub owner: Owner,
    /// Its group, when it matters.
    pub group: Option<Owner>,
    /// The mode the packages give it (suggested in the fix).
    pub mode: u32,
    /// Permission bits that must be set (the handler must get in).
    pub required: u32,
    /// Permission bits that may be set (no others: other local users must
    /// not read, nobody but the owner may write where root relies on it).
    pub allowed: u32,
}

/// The folders and modes a working install has, from the config's paths.
/// The packages create them so (packaging/folders); the applier refuses
/// to run when root's folders are writable by others.
pub fn folder_rules(config: &Config, config_path: &Path) -> Vec<FolderRule> {
    let layout = Layout::new(&config.paths);
    let dir = |path: &Path, owner, group, mode, required, allowed| FolderRule {
        path: path.to_path_buf(),
        dir: true,
        owner,
        group,
        mode,
        required,
        allowed,
    };
    use Owner::{Handler, Root};
    vec![
        dir(&layout.queue, Root, Some(Handler), 0o750, 0o010, 0o750),
        dir(&layout.tmp, Handler, Some(Handler), 0o750, 0o700, 0o770),
        dir(&layout.new, Handler, Some(Handler), 0o750, 0o700, 0o770),
        dir(&layout.cur, Root, None, 0o700, 0o700, 0o700),
        dir(&layout.failed, Root, None, 0o700, 0o700, 0o700),
        dir(&layout.state, Root, Some(Handler), 0o750, 0o050, 0o750),
        dir(&layout.private, Root, None, 0o700, 0o700, 0o700),
        FolderRule {
            path: config_path.to_path_buf(),
            dir: false,
            owner: Root,
            group: None,
            mode: 0o600,
            required: 0o400,
            allowed: 0o600,
        },
    ]
}

fn check_folders(rules: &[FolderRule], who: &HandlerIdentity) -> Vec<Finding> {
    rules.iter().map(|rule| check_folder(rule, who)).collect()
}

fn check_folder(rule: &FolderRule, who: &HandlerIdentity) -> Finding {
    let p = rule.path.display();
    let subject = if rule.dir {
        format!("folder {p}")
    } else {
        format!("file {p}")
    };
    let owner_name = |o: Owner| match o {
        Owner::Root => "root".to_string(),
        Owner::Handler => who.user.clone(),
    };
    let group_name = |o: Owner| match o {
        Owner::Root => "root".to_string(),
        Owner::Handler => who.group.clone(),
    };
    let want_owner = owner_name(rule.owner);
    let want_group = rule.group.map_or_else(|| "root".to_string(), group_name);
    let create = if rule.dir {
        format!(
            "install -d -m {:04o} -o {want_owner} -g {want_group} {p}",
            rule.mode
        )
    } else {
        "reinstall the dyndns package".to_string()
    };
    let meta = match fs::symlink_metadata(&rule.path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Finding::fail(subject, format!("missing: {create}"));
        }
        Err(e) => return Finding::fail(subject, format!("cannot inspect: {e}")),
    };
    if meta.file_type().is_symlink() {
        return Finding::fail(
            subject,
            format!("is a symbolic link, which the applier refuses: replace it: {create}"),
        );
    }
    if meta.is_dir() != rule.dir {
        let what = if rule.dir { "a directory" } else { "a file" };
        return Finding::fail(subject, format!("is not {what}"));
    }
    let id_of = |o: Owner, handler: u32| match o {
        Owner::Root => 0,
        Owner::Handler => handler,
    };
    let owner_ok = meta.uid() == id_of(rule.owner, who.uid);
    let group_ok = rule.group.is_none_or(|g| meta.gid() == id_of(g, who.gid));
    let mode = meta.mode() & 0o7777;
    let mode_ok = mode & rule.required == rule.required && mode & !rule.allowed == 0;
    let found = format!(
        "{}:{} {mode:04o}",
        who.user_name(meta.uid()),
        who.group_name(meta.gid())
    );
    if owner_ok && group_ok && mode_ok {
        return Finding::ok(subject, found);
    }
    let mut fixes = Vec::new();
    if !owner_ok || !group_ok {
        fixes.push(format!("chown {want_owner}:{want_group} {p}"));
    }
    if !mode_ok {
        fixes.push(format!("chmod {:04o} {p}", rule.mode));
    }
    let want = match rule.group {
        Some(g) => format!("{want_owner}:{} {:04o}", group_name(g), rule.mode),
        None => format!("{want_owner} {:04o}", rule.mode),
    };
    Finding::fail(
        subject,
        format!("{found}, want {want}: {}", fixes.join(" && ")),
    )
}

/// The proxy secret header as the shipped directives write it.
const PROXY_SECRET_HEADER: &str = "X-Dyndns-Proxy-Secret";

/// What each `location` serving a [`passed_paths`] path in Plesk's
/// "Additional nginx directives" must contain, for the handler at `listen`: the pass to the
/// handler, the client address set (not appended), and, when the config
/// has a `handler.proxy_secret`, that secret in its header (without it the
/// handler believes no forwarded address).
pub fn nginx_expectations(config: &Config, listen: SocketAddr) -> Vec<ExpectedDirective> {
    let mut expected = vec![
        ExpectedDirective {
            name: "proxy_pass",
            args: ArgsMatch::Url(format!("http://{listen}")),
            why: "passes the updates to Spin",
        },
        ExpectedDirective {
            name: "proxy_set_header",
            args: ArgsMatch::Exact(vec!["X-Forwarded-For".into(), "$remote_addr".into()]),
            why: "tells the handler the client's address, set so a client cannot forge it",
        },
    ];
    if let Some(secret) = &config.handler.proxy_secret {
        expected.push(ExpectedDirective {
            name: "proxy_set_header",
            args: ArgsMatch::Secret {
                header: PROXY_SECRET_HEADER.into(),
                value: secret.clone(),
                shown: "<handler.proxy_secret>",
            },
            why: "proves the forwarded address comes from nginx",
        });
    }
    expected
}

/// The note when no proxy secret is configured.
fn proxy_secret_note(config: &Config) -> Option<Finding> {
    config.handler.proxy_secret.is_none().then(|| {
        Finding::warn(
            "proxy secret",
            format!(
                "handler.proxy_secret is not set, so the handler believes no address nginx forwards and clients must send myip: set it (e.g. the secret line of `dyndns-applier new-credential`) and send it with `proxy_set_header {PROXY_SECRET_HEADER} \"...\";`"
            ),
        )
    })
}

/// nginx's `proxy_read_timeout` when no directive sets it.
const NGINX_DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// What a path nginx passes to the handler serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathPurpose {
    /// Address updates.
    Updates,
    /// The status page (new in 0.2.0: older directives lack it).
    StatusPage,
    /// The ACME challenge endpoints.
    Challenges,
}

/// A request path nginx must pass to the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassedPath {
    /// The path, e.g. `/nic/update`.
    pub path: String,
    /// What it serves.
    pub purpose: PathPurpose,
}

/// The request paths nginx must pass to the handler for what `config`
/// enables: updates and the status page always, the ACME challenge
/// endpoints when `[acme]` is on.
pub fn passed_paths(config: &Config) -> Vec<PassedPath> {
    let passed = |path: String, purpose| PassedPath { path, purpose };
    let mut paths = vec![
        passed("/nic/update".into(), PathPurpose::Updates),
        passed("/status".into(), PathPurpose::StatusPage),
    ];
    if config.acme.enabled {
        let base = config.acme.httpreq_path.trim_end_matches('/');
        for endpoint in ["present", "cleanup", "update"] {
            paths.push(passed(
                format!("{base}/{endpoint}"),
                PathPurpose::Challenges,
            ));
        }
    }
    paths
}

/// Whether any of `paths` is an ACME challenge endpoint.
fn any_challenge(paths: &[&PassedPath]) -> bool {
    paths.iter().any(|p| p.purpose == PathPurpose::Challenges)
}

/// `paths` as a list for a message.
fn path_list(paths: &[&PassedPath]) -> String {
    paths
        .iter()
        .map(|p| p.path.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks one domain's "Additional nginx directives": every path in
/// `paths` reaches a location that passes it to the handler with the
/// `expected` directives, and a location serving the ACME endpoints lets a
/// `present` wait `acme.present_wait` before nginx gives up on it.
fn check_nginx_file(
    subject: &str,
    file: &Path,
    directives: &[nginx_conf::Directive],
    config: &Config,
    paths: &[PassedPath],
    expected: &[ExpectedDirective],
    paste: &str,
) -> Vec<Finding> {
    // The paths each location serves, in the order of `paths`.
    let mut served: Vec<(&nginx_conf::Directive, Vec<&PassedPath>)> = Vec::new();
    let mut unserved: Vec<&PassedPath> = Vec::new();
    for path in paths {
        match nginx_conf::location_serving(directives, &path.path) {
            Some(location) => match served.iter_mut().find(|(l, _)| std::ptr::eq(*l, location)) {
                Some((_, list)) => list.push(path),
                None => served.push((location, vec![path])),
            },
            None => unserved.push(path),
        }
    }
    let read_timeout = |block: &[nginx_conf::Directive]| {
        block
            .iter()
            .chain(directives)
            .find(|d| d.name == "proxy_read_timeout")
            .map(|d| {
                let text = d.args.first().cloned().unwrap_or_default();
                (nginx_conf::parse_time(&text), text)
            })
    };
    let mut findings = Vec::new();
    for (location, list) in served {
        let block = location.block.as_deref().unwrap_or_default();
        let mut lacks: Vec<String> = nginx_conf::missing(block, expected)
            .iter()
            .map(|m| format!("`{}` ({})", m.display(), m.why))
            .collect();
        let wait = config.acme.present_wait;
        if any_challenge(&list) {
            let (timeout, shown) = match read_timeout(block) {
                Some((Some(t), text)) => (t, text),
                Some((None, text)) => (Duration::ZERO, text),
                None => (
                    NGINX_DEFAULT_READ_TIMEOUT,
                    "60s (nginx's default)".to_string(),
                ),
            };
            if timeout <= wait {
                lacks.push(format!(
                    "`proxy_read_timeout` above acme.present_wait ({}; found {shown}, so nginx answers 504 to a present still waiting for the zone)",
                    humantime::format_duration(wait)
                ));
            }
        }
        let loc = format!("location {}", location.args.join(" "));
        if lacks.is_empty() {
            findings.push(Finding::ok(
                subject,
                format!(
                    "{loc} passes {} to the handler ({})",
                    path_list(&list),
                    file.display()
                ),
            ));
        } else {
            findings.push(Finding::fail(
                subject,
                format!("{loc} lacks {}: {paste}", lacks.join(", ")),
            ));
        }
    }
    if !unserved.is_empty() {
        // Without the challenge paths certificates fail; without /status
        // only the status page is missing (directives from before 0.2.0).
        let (finding, why): (fn(&str, String) -> Finding, &str) = if any_challenge(&unserved) {
            (|s, t| Finding::fail(s, t), " ([acme] is enabled)")
        } else {
            (|s, t| Finding::warn(s, t), " (the status page)")
        };
        findings.push(finding(
            subject,
            format!(
                "no location passes {} to the handler{why} ({}): {paste}",
                path_list(&unserved),
                file.display()
            ),
        ));
    }
    findings
}

fn check_nginx(vhosts: &Path, config: &Config, expected: &[ExpectedDirective]) -> Vec<Finding> {
    let paste = format!(
        "paste {SHIPPED_DIRECTIVES} into Plesk (the domain's Apache & nginx Settings, Additional nginx directives)"
    );
    let entries = match fs::read_dir(vhosts) {
        Ok(d) => d,
        Err(e) => {
            return vec![Finding::fail(
                "nginx",
                format!(
                    "cannot read Plesk's per-domain folder {} ({e}); is this a Plesk server?",
                    vhosts.display()
                ),
            )];
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path().join(PLESK_VHOST_NGINX))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let paths = passed_paths(config);
    let mut findings = Vec::new();
    for file in files {
        let domain = file
            .parent()
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let subject = format!("nginx {domain}");
        let text = match read_optional(&file, 1024 * 1024) {
            Ok(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
            Ok(None) => continue,
            Err(e) => {
                findings.push(Finding::warn(
                    subject,
                    format!("cannot read {}: {e}", file.display()),
                ));
                continue;
            }
        };
        // Another domain's directives (a shop's `location /`) are none of
        // our business: only a file that names the update path is ours.
        if !text.contains("nic/update") {
            continue;
        }
        let directives = match nginx_conf::parse(&text) {
            Ok(d) => d,
            Err(e) => {
                findings.push(Finding::fail(
                    subject,
                    format!("{}: {e}; nginx will not load it either", file.display()),
                ));
                continue;
            }
        };
        if nginx_conf::location_serving(&directives, "/nic/update").is_none() {
            continue;
        }
        findings.extend(check_nginx_file(
            &subject,
            &file,
            &directives,
            config,
            &paths,
            expected,
            &paste,
        ));
    }
    if findings.is_empty() {
        findings.push(Finding::fail(
            "nginx",
            format!(
                "no domain's {PLESK_VHOST_NGINX} under {} passes /nic/update to the handler: {paste}",
                vhosts.display()
            ),
        ));
    }
    findings
}

fn check_view(config: &Config, layout: &Layout) -> Finding {
    let settings = layout.view.join(view::SETTINGS_FILE);
    if !settings.is_file() {
        return Finding::fail(
            "view",
            format!(
                "{} is not published: start the applier (systemctl enable --now {APPLIER_UNIT}) or run `dyndns-applier publish`",
                layout.view.display()
            ),
        );
    }
    let expected = match publish::view_digest(config) {
        Ok(d) => d,
        Err(e) => return Finding::fail("view", format!("cannot compute the view: {e:#}")),
    };
    let recorded = read_optional(&layout.view_digest, 128)
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string());
    if recorded.as_deref() == Some(expected.as_str()) {
        Finding::ok(
            "view",
            format!("{} matches the config", layout.view.display()),
        )
    } else {
        Finding::fail(
            "view",
            format!(
                "{} was published from another config: a running applier republishes on its own, so check its log (journalctl -u {APPLIER_UNIT}) or run `dyndns-applier publish`",
                layout.view.display()
            ),
        )
    }
}

fn check_heartbeat(config: &Config, layout: &Layout, now: SystemTime) -> Finding {
    let limit = config.handler.heartbeat_max_age;
    let Some(hb) = state_store::read_heartbeat(layout) else {
        return Finding::fail(
            "heartbeat",
            format!(
                "{} missing: the applier has not run: systemctl enable --now {APPLIER_UNIT}",
                layout.heartbeat.display()
            ),
        );
    };
    let age = hb.age(now);
    let ours = env!("CARGO_PKG_VERSION");
    if age > limit {
        Finding::fail(
            "heartbeat",
            format!(
                "{}s old (limit {}s): the applier is not running: systemctl status {APPLIER_UNIT}",
                age.as_secs(),
                limit.as_secs()
            ),
        )
    } else if hb.dry_run {
        Finding::warn(
            "heartbeat",
            "fresh, but the applier runs with --dry-run: nothing reaches DNS",
        )
    } else if hb.version != ours {
        Finding::warn(
            "heartbeat",
            format!(
                "the running applier is version {}, this is {ours}: systemctl restart {APPLIER_UNIT}",
                hb.version
            ),
        )
    } else {
        Finding::ok(
            "heartbeat",
            format!(
                "{:.1}s old (limit {}s), applier {} pid {}",
                age.as_secs_f64(),
                limit.as_secs(),
                hb.version,
                hb.pid
            ),
        )
    }
}

/// Where to connect for `listen` (an unspecified address means loopback).
fn connect_address(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), listen.port())
        }
        _ => listen,
    }
}

fn check_handler(listen: SocketAddr, realm: &str) -> Vec<Finding> {
    let base = format!("http://{}", connect_address(listen));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(PROBE_TIMEOUT))
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into();
    let ours = env!("CARGO_PKG_VERSION");
    let mut findings = Vec::new();
    let health = match agent.get(format!("{base}/health")).call() {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let body: serde_json::Value = r
                .body_mut()
                .with_config()
                .limit(64 * 1024)
                .read_json()
                .unwrap_or_default();
            let version = body["version"].as_str().unwrap_or("unknown").to_string();
            match status {
                200 if version == ours => {
                    Finding::ok("handler", format!("{base}/health: 200, version {version}"))
                }
                200 => Finding::warn(
                    "handler",
                    format!(
                        "{base}/health: 200, but Spin serves version {version}, this is {ours}: systemctl restart dyndns-spin"
                    ),
                ),
                503 => Finding::fail(
                    "handler",
                    format!(
                        "{base}/health: 503: {}",
                        body["problems"]
                            .as_array()
                            .map(|p| p
                                .iter()
                                .filter_map(|v| v.as_str())
                                .collect::<Vec<_>>()
                                .join("; "))
                            .unwrap_or_default()
                    ),
                ),
                other => Finding::fail(
                    "handler",
                    format!("{base}/health: {other}: is this the dyndns handler?"),
                ),
            }
        }
        Err(e) => {
            findings.push(Finding::fail(
                "handler",
                format!(
                    "nothing answers at {base} ({e}): systemctl enable --now {SPIN_UNIT}; journalctl -u {SPIN_UNIT}"
                ),
            ));
            return findings;
        }
    };
    findings.push(health);
    let challenge = format!("Basic realm=\"{realm}\"");
    let update = match agent.get(format!("{base}/nic/update")).call() {
        Ok(r) => {
            let status = r.status().as_u16();
            let header = r
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            if status == 401 && header.starts_with(&challenge) {
                Finding::ok(
                    "test update",
                    format!("{base}/nic/update without credentials: 401, {challenge}"),
                )
            } else {
                Finding::fail(
                    "test update",
                    format!(
                        "{base}/nic/update without credentials: {status} {header:?}, want 401 with {challenge}: the handler cannot read its view (see above), or another program listens there"
                    ),
                )
            }
        }
        Err(e) => Finding::fail("test update", format!("{base}/nic/update: {e}")),
    };
    findings.push(update);
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(text: &str) -> UnitFile {
        UnitFile {
            text: text.to_string(),
        }
    }

    #[test]
    fn reads_the_shipped_spin_unit() {
        let u = unit(include_str!("../../deploy/systemd/dyndns-spin.service"));
        let words = u.exec_start();
        assert_eq!(words[0], DEFAULT_SPIN);
        assert_eq!(u.listen(), Some(DEFAULT_LISTEN));
        assert_eq!(u.value("User"), Some("dyndns"));
        assert_eq!(u.value("Group"), Some("dyndns"));
    }

    #[test]
    fn exec_start_quotes_prefixes_and_resets() {
        let u = unit(
            "ExecStart=/old\nExecStart=\nExecStart=-/opt/spin up --log-dir \"\" --listen=[::1]:4000 \"a b\"\n",
        );
        assert_eq!(
            u.exec_start(),
            vec![
                "/opt/spin",
                "up",
                "--log-dir",
                "",
                "--listen=[::1]:4000",
                "a b"
            ]
        );
        assert_eq!(u.listen(), Some("[::1]:4000".parse().unwrap()));
        assert_eq!(unit("ExecStart=/x up").listen(), None);
    }

    #[test]
    fn the_shipped_nginx_directives_meet_the_expectations() {
        const SHIPPED: &str = include_str!("../../deploy/nginx/plesk-additional-directives.conf");
        let secret = "0123456789abcdefghijklmnopqrstuv";
        let config = Config::parse(
            &format!("zones = [\"dyn.example.com\"]\n[handler]\nproxy_secret = \"{secret}\"\n"),
            None,
        )
        .unwrap();
        assert!(PROXY_SECRET_HEADER.eq_ignore_ascii_case(dyndns_core::config::PROXY_SECRET_HEADER));
        let missing = |text: &str, config: &Config, listen: SocketAddr| {
            let directives = nginx_conf::parse(text).unwrap();
            let location = nginx_conf::location_serving(&directives, "/nic/update").unwrap();
            let block = location.block.as_deref().unwrap();
            nginx_conf::missing(block, &nginx_expectations(config, listen))
                .iter()
                .map(|e| e.display())
                .collect::<Vec<_>>()
        };
        // as the README says: the placeholder replaced by the configured secret
        let pasted = SHIPPED.replace("PROXY_SECRET", secret);
        assert_eq!(
            missing(&pasted, &config, DEFAULT_LISTEN),
            Vec::<String>::new()
        );
        assert_eq!(
            missing(SHIPPED, &config, DEFAULT_LISTEN),
            vec!["proxy_set_header X-Dyndns-Proxy-Secret \"<handler.proxy_secret>\";"]
        );
        assert_eq!(
            missing(&pasted, &config, "127.0.0.1:3001".parse().unwrap()),
            vec!["proxy_pass http://127.0.0.1:3001;"]
        );
        let without = Config::parse("zones = [\"dyn.example.com\"]", None).unwrap();
        assert_eq!(
            missing(SHIPPED, &without, DEFAULT_LISTEN),
            Vec::<String>::new()
        );
        assert!(proxy_secret_note(&without).is_some());
        assert!(proxy_secret_note(&config).is_none());
    }

    /// `check_nginx` on one domain whose directives are `text`, as lines.
    fn nginx_lines(config_text: &str, text: &str) -> Vec<String> {
        let vhosts = tempfile::tempdir().unwrap();
        let conf = vhosts.path().join("dyn.example.com/conf");
        fs::create_dir_all(&conf).unwrap();
        fs::write(conf.join("vhost_nginx.conf"), text).unwrap();
        let config = Config::parse(config_text, None).unwrap();
        check_nginx(
            vhosts.path(),
            &config,
            &nginx_expectations(&config, DEFAULT_LISTEN),
        )
        .iter()
        .map(|f| {
            f.to_string()
                .replace(&vhosts.path().display().to_string(), "VHOSTS")
        })
        .collect()
    }

    #[test]
    fn nginx_passes_what_the_config_enables() {
        const SHIPPED: &str = include_str!("../../deploy/nginx/plesk-additional-directives.conf");
        const ZONES: &str = "zones = [\"dyn.example.com\"]\n";
        let acme = format!("{ZONES}[acme]\nenabled = true\n");
        let file = "(VHOSTS/dyn.example.com/conf/vhost_nginx.conf)";
        let paste = format!(
            "paste {SHIPPED_DIRECTIVES} into Plesk (the domain's Apache & nginx Settings, Additional nginx directives)"
        );
        let updates = format!(
            "ok   nginx dyn.example.com: location ~ ^/(nic/update|update|status|status\\.json)$ passes /nic/update, /status to the handler {file}"
        );
        // without [acme], its location is not looked at
        assert_eq!(nginx_lines(ZONES, SHIPPED), vec![updates.clone()]);
        // with it, the shipped directives serve every endpoint
        assert_eq!(
            nginx_lines(&acme, SHIPPED),
            vec![
                updates.clone(),
                format!(
                    "ok   nginx dyn.example.com: location ~ ^/acme/(present|cleanup|update)$ passes /acme/present, /acme/cleanup, /acme/update to the handler {file}"
                )
            ]
        );
        // directives pasted before [acme] was enabled
        let acme_block = SHIPPED.find("location ~ ^/acme/").unwrap();
        let acme_end = acme_block + SHIPPED[acme_block..].find("}\n").unwrap() + 2;
        let without_acme = format!("{}{}", &SHIPPED[..acme_block], &SHIPPED[acme_end..]);
        assert_eq!(
            nginx_lines(&acme, &without_acme),
            vec![
                updates.clone(),
                format!(
                    "FAIL nginx dyn.example.com: no location passes /acme/present, /acme/cleanup, /acme/update to the handler ([acme] is enabled) {file}: {paste}"
                )
            ]
        );
        // a base path changed in the config but not in nginx
        let moved = format!("{acme}httpreq_path = \"/le/httpreq\"\n");
        assert_eq!(
            nginx_lines(&moved, SHIPPED)[1],
            format!(
                "FAIL nginx dyn.example.com: no location passes /le/httpreq/present, /le/httpreq/cleanup, /le/httpreq/update to the handler ([acme] is enabled) {file}: {paste}"
            )
        );
        // a read timeout a waiting present outlives, in the block or the
        // file; without one, nginx's 60 s default
        let short = SHIPPED.replace(
            "    proxy_read_timeout 30s;\n    client_max_body_size 8k;\n}\n\n# Health",
            "    proxy_read_timeout 20s;\n    client_max_body_size 8k;\n}\n\n# Health",
        );
        assert_ne!(short, SHIPPED);
        let timeout_fail = |found: &str| {
            format!(
                "FAIL nginx dyn.example.com: location ~ ^/acme/(present|cleanup|update)$ lacks `proxy_read_timeout` above acme.present_wait (25s; found {found}, so nginx answers 504 to a present still waiting for the zone): {paste}"
            )
        };
        assert_eq!(nginx_lines(&acme, &short)[1], timeout_fail("20s"));
        let unset = SHIPPED.replace("    proxy_read_timeout 30s;\n", "");
        assert!(nginx_lines(&acme, &unset)[1].starts_with("ok   "));
        let file_wide = format!("proxy_read_timeout 10;\n{unset}");
        assert_eq!(nginx_lines(&acme, &file_wide)[1], timeout_fail("10"));
        let waits_long = format!("{acme}present_wait = \"90s\"\n");
        assert_eq!(
            nginx_lines(&waits_long, &unset)[1],
            "FAIL nginx dyn.example.com: location ~ ^/acme/(present|cleanup|update)$ lacks `proxy_read_timeout` above acme.present_wait (1m 30s; found 60s (nginx's default), so nginx answers 504 to a present still waiting for the zone): ".to_string() + &paste
        );
        // directives from before the status page: updates work, a warning
        let old = SHIPPED.replace(
            "^/(nic/update|update|status|status\\.json)$",
            "^/(nic/update|update)$",
        );
        assert_eq!(
            nginx_lines(ZONES, &old),
            vec![
                format!(
                    "ok   nginx dyn.example.com: location ~ ^/(nic/update|update)$ passes /nic/update to the handler {file}"
                ),
                format!(
                    "warn nginx dyn.example.com: no location passes /status to the handler (the status page) {file}: {paste}"
                ),
            ]
        );
    }

    #[test]
    fn user_database_lookups() {
        let db = "root:x:0:0:root:/root:/bin/bash\ndyndns:x:105:108:dyndns,,,:/var/lib/dyndns-spin:/usr/sbin/nologin\n";
        assert_eq!(db_entry(db, "dyndns"), Some((105, Some(108))));
        assert_eq!(db_entry(db, "dyndn"), None);
        assert_eq!(db_name(db, 105), Some("dyndns"));
        assert_eq!(db_name(db, 7), None);
    }

    #[test]
    fn unspecified_listen_addresses_are_reached_on_loopback() {
        assert_eq!(
            connect_address("0.0.0.0:3000".parse().unwrap()),
            "127.0.0.1:3000".parse().unwrap()
        );
        assert_eq!(
            connect_address("[::]:3000".parse().unwrap()),
            "[::1]:3000".parse().unwrap()
        );
        assert_eq!(
            connect_address("192.0.2.1:80".parse().unwrap()),
            "192.0.2.1:80".parse().unwrap()
        );
    }

    #[test]
    fn finding_lines() {
        assert_eq!(
            Finding::fail("config", "x.toml: TOML parse error at line 1, column 9\n  |\n1 | zones = 7\n  |         ^\ninvalid type\n").to_string(),
            "FAIL config: x.toml: TOML parse error at line 1, column 9 invalid type"
        );
        assert_eq!(Finding::ok("a", "b").to_string(), "ok   a: b");
        assert_eq!(Finding::warn("a", "b").to_string(), "warn a: b");
        assert_eq!(Finding::fail("a", "b").to_string(), "FAIL a: b");
    }
}
