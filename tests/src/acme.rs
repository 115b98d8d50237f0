//! Real parts for ACME DNS-01 tests, all on loopback and all from Debian:
//! BIND `named` serving the Plesk emulator's zone files (reloaded through
//! `rndc` after every change, as Plesk does), `pebble` as the ACME server
//! validating against that `named`, and `lego` as the ACME client (its
//! `httpreq` provider). See /work/shared/docs/ACME-TESTING.md for the facts
//! these follow.
//!
//! Each test starts its own servers and stops them when they are dropped:
//! both start in well under a second, and a server shared by a whole test
//! binary would outlive it (nothing kills a child when the test process
//! exits).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use base64::Engine;

use crate::{free_port, program, wait_for};

/// Runs `program args` to completion, panicking with its output on failure.
fn run_ok(name: &str, args: &[&str]) -> Output {
    let out = Command::new(program(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e} (run scripts/test-deps.sh)"));
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// What a child printed so far (for failure messages), once it has exited.
fn output_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut text);
    }
    text
}

/// BIND `named` in the foreground: authoritative only, no recursion, on a
/// free loopback port, with an `rndc` control channel and a generated key.
pub struct DnsServer {
    child: Child,
    /// The DNS port on 127.0.0.1 (UDP and TCP).
    pub port: u16,
    /// The control channel port on 127.0.0.1.
    pub control_port: u16,
    /// The `rndc` key file.
    pub key_file: PathBuf,
    /// named's working directory (config, logs).
    pub dir: PathBuf,
}

impl DnsServer {
    /// Starts `named` serving `zones`, each from `<zone_dir>/<zone>.zone`
    /// (the files must exist), with its config and key in `dir`.
    pub fn start(dir: &Path, zone_dir: &Path, zones: &[&str]) -> DnsServer {
        fs::create_dir_all(dir).expect("named dir");
        let port = free_port();
        let control_port = free_port();
        let mut secret = [0u8; 32];
        fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut secret))
            .expect("random key");
        let secret = base64::engine::general_purpose::STANDARD.encode(secret);
        let key = format!(
            "key \"dyndns-test\" {{\n    algorithm hmac-sha256;\n    secret \"{secret}\";\n}};\n"
        );
        let key_file = dir.join("rndc.key");
        fs::write(&key_file, &key).expect("rndc key");
        let d = dir.display();
        let mut conf = format!(
            r#"{key}
options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    allow-query {{ any; }};
    allow-transfer {{ none; }};
    dnssec-validation no;
    notify no;
}};
controls {{
    inet 127.0.0.1 port {control_port} allow {{ 127.0.0.1; }} keys {{ "dyndns-test"; }};
}};
"#
        );
        for zone in zones {
            conf.push_str(&format!(
                "zone \"{zone}\" {{ type primary; file \"{}\"; }};\n",
                zone_dir.join(format!("{zone}.zone")).display()
            ));
        }
        let conf_file = dir.join("named.conf");
        fs::write(&conf_file, conf).expect("named.conf");
        run_ok(
            "named-checkconf",
            &[conf_file.to_str().expect("utf-8 path")],
        );
        let child = Command::new(program("named"))
            .arg("-g")
            .arg("-c")
            .arg(&conf_file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start named (run scripts/test-deps.sh)");
        let mut server = DnsServer {
            child,
            port,
            control_port,
            key_file,
            dir: dir.to_path_buf(),
        };
        let first = zones.first().copied().unwrap_or(".");
        let up = wait_for(Duration::from_secs(20), || {
            server.child.try_wait().ok().flatten().is_some()
                || !server.query(first, "SOA").is_empty()
        });
        if !up || server.child.try_wait().ok().flatten().is_some() {
            kill(&mut server.child);
            panic!("named did not start: {}", output_of(&mut server.child));
        }
        server
    }

    /// The reload command for the emulator's `PLESK_EMU_RELOAD`:
    /// `rndc -s 127.0.0.1 -p PORT -k KEY reload {zone}`.
    pub fn reload_command(&self) -> Vec<String> {
        vec![
            program("rndc").display().to_string(),
            "-s".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.control_port.to_string(),
            "-k".into(),
            self.key_file.display().to_string(),
            "reload".into(),
            "{zone}".into(),
        ]
    }

    /// `dig +short` answers for `name`/`rtype` (TXT strings without quotes).
    pub fn query(&self, name: &str, rtype: &str) -> Vec<String> {
        dig(self.port, name, rtype)
    }
}

/// `dig +short` answers of the server on 127.0.0.1:`port` for `name`/`rtype`
/// (TXT strings without quotes).
pub fn dig(port: u16, name: &str, rtype: &str) -> Vec<String> {
    {
        let out = Command::new(program("dig"))
            .args([
                "@127.0.0.1",
                "-p",
                &port.to_string(),
                "+short",
                "+norecurse",
                "+time=1",
                "+tries=1",
                rtype,
                name,
            ])
            .output()
            .expect("run dig (run scripts/test-deps.sh)");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with(";;"))
            .map(|l| l.trim_matches('"').to_string())
            .collect()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// `pebble`, the ACME test server, with a generated CA and certificate for
/// 127.0.0.1, validating DNS-01 against `-dnsserver`.
pub struct Pebble {
    child: Child,
    /// Its ACME port on 127.0.0.1.
    pub port: u16,
    /// The CA that signed its TLS certificate (for clients to trust).
    pub ca_file: PathBuf,
}

impl Pebble {
    /// Starts pebble in `dir`, validating challenges with the DNS server on
    /// 127.0.0.1:`dns_port`.
    pub fn start(dir: &Path, dns_port: u16) -> Pebble {
        fs::create_dir_all(dir).expect("pebble dir");
        let path = |f: &str| dir.join(f).display().to_string();
        let (ca_key, ca_file, key, csr, cert, ext) = (
            path("ca.key"),
            path("ca.pem"),
            path("pebble.key"),
            path("pebble.csr"),
            path("pebble.pem"),
            path("san.ext"),
        );
        run_ok(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &ca_key,
                "-out",
                &ca_file,
                "-days",
                "2",
                "-subj",
                "/CN=dyndns test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        run_ok(
            "openssl",
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                "/CN=localhost",
            ],
        );
        fs::write(&ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\n").expect("ext file");
        run_ok(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_file,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-out",
                &cert,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
        let port = free_port();
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{port}"),
                "managementListenAddress": format!("127.0.0.1:{}", free_port()),
                "certificate": cert,
                "privateKey": key,
                "httpPort": free_port(),
                "tlsPort": free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
            }
        });
        let config_file = dir.join("pebble.json");
        fs::write(&config_file, config.to_string()).expect("pebble config");
        let child = Command::new("pebble")
            .arg("-config")
            .arg(&config_file)
            .arg("-dnsserver")
            .arg(format!("127.0.0.1:{dns_port}"))
            // no random validation delay, no random nonce rejections
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pebble (run scripts/test-deps.sh)");
        let mut pebble = Pebble {
            child,
            port,
            ca_file: PathBuf::from(ca_file),
        };
        let up = wait_for(Duration::from_secs(20), || {
            pebble.child.try_wait().ok().flatten().is_some() || pebble.directory().is_some()
        });
        if !up || pebble.child.try_wait().ok().flatten().is_some() {
            kill(&mut pebble.child);
            panic!("pebble did not start: {}", output_of(&mut pebble.child));
        }
        pebble
    }

    /// The ACME directory URL.
    pub fn directory_url(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.port)
    }

    /// The directory document, fetched over TLS trusting only the test CA.
    pub fn directory(&self) -> Option<serde_json::Value> {
        let out = Command::new("curl")
            .args(["--silent", "--fail", "--max-time", "5", "--cacert"])
            .arg(&self.ca_file)
            .arg(self.directory_url())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// How `lego` reaches the service's `httpreq` endpoints.
pub struct Httpreq<'a> {
    /// Base URL (`HTTPREQ_ENDPOINT`); lego posts to `<base>/present` and `<base>/cleanup`.
    pub endpoint: &'a str,
    /// Basic auth user.
    pub username: &'a str,
    /// Basic auth password.
    pub password: &'a str,
}

/// Runs `lego` against `pebble` for `domains` in one order, solving DNS-01
/// through `httpreq`, with `dns` as its resolver. Returns the certificate
/// file, or lego's output when it fails.
///
/// `--dns.disable-cp` is needed: without it lego waits for the zone's name
/// servers on port 53, found by resolving their names through the system
/// resolver, which cannot know them. With it lego does not wait at all: it
/// asks pebble to validate as soon as `present` has answered, so the value
/// must be in the zone by then.
pub fn run_lego(
    dir: &Path,
    pebble: &Pebble,
    dns: &DnsServer,
    httpreq: &Httpreq<'_>,
    domains: &[&str],
) -> Result<PathBuf, String> {
    let mut cmd = Command::new("lego");
    cmd.arg("--server")
        .arg(pebble.directory_url())
        .args(["--email", "acme@example.com", "--accept-tos"])
        .args(["--key-type", "ec256"])
        .args(["--dns", "httpreq"])
        .arg("--dns.resolvers")
        .arg(format!("127.0.0.1:{}", dns.port))
        .arg("--dns.disable-cp")
        .arg("--path")
        .arg(dir);
    for d in domains {
        cmd.arg("--domains").arg(d);
    }
    cmd.arg("run")
        .env("LEGO_CA_CERTIFICATES", &pebble.ca_file)
        .env("HTTPREQ_ENDPOINT", httpreq.endpoint)
        .env("HTTPREQ_USERNAME", httpreq.username)
        .env("HTTPREQ_PASSWORD", httpreq.password)
        .env("HTTPREQ_PROPAGATION_TIMEOUT", "60")
        .env("HTTPREQ_POLLING_INTERVAL", "1")
        .env("HTTPREQ_HTTP_TIMEOUT", "30");
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run lego: {e} (run scripts/test-deps.sh)"))?;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(log);
    }
    // lego names the files after the first domain, `*` written as `_`.
    let first = domains
        .first()
        .copied()
        .unwrap_or_default()
        .replace('*', "_");
    let cert = dir.join("certificates").join(format!("{first}.crt"));
    if cert.exists() {
        Ok(cert)
    } else {
        Err(format!("no {} after:\n{log}", cert.display()))
    }
}

/// The DNS names in a certificate's subjectAltName, as `openssl` shows them.
pub fn subject_alt_names(cert: &Path) -> Vec<String> {
    let out = run_ok(
        "openssl",
        &[
            "x509",
            "-noout",
            "-ext",
            "subjectAltName",
            "-in",
            cert.to_str().expect("utf-8 path"),
        ],
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split([',', '\n'])
        .filter_map(|part| part.trim().strip_prefix("DNS:").map(str::to_string))
        .collect();
    names.sort();
    names
}

/// How certbot's manual hooks reach the service.
pub struct CertbotHooks<'a> {
    /// The hook script (`examples/acme/certbot-hook.sh`), run as
    /// `<script> present` and `<script> cleanup`.
    pub script: &'a Path,
    /// `DYNDNS_ACME_URL`: the endpoint's base URL.
    pub url: &'a str,
    /// `DYNDNS_NETRC`: the netrc file with the user and secret.
    pub netrc: &'a Path,
}

/// Runs `certbot certonly --manual` against `pebble` for `domains` in one
/// order, the DNS-01 values set and removed by `hooks`. Returns the
/// certificate file, or certbot's output and log when it fails.
pub fn run_certbot(
    dir: &Path,
    pebble: &Pebble,
    hooks: &CertbotHooks<'_>,
    domains: &[&str],
) -> Result<PathBuf, String> {
    let script = hooks.script.display();
    let mut cmd = Command::new("certbot");
    cmd.args(["certonly", "--non-interactive", "--agree-tos"])
        .arg("--register-unsafely-without-email")
        .arg("--server")
        .arg(pebble.directory_url())
        .args(["--manual", "--preferred-challenges", "dns"])
        .arg("--manual-auth-hook")
        .arg(format!("{script} present"))
        .arg("--manual-cleanup-hook")
        .arg(format!("{script} cleanup"))
        .args(["--key-type", "ecdsa"])
        .arg("--config-dir")
        .arg(dir.join("config"))
        .arg("--work-dir")
        .arg(dir.join("work"))
        .arg("--logs-dir")
        .arg(dir.join("logs"));
    for d in domains {
        cmd.arg("-d").arg(d);
    }
    cmd.env("REQUESTS_CA_BUNDLE", &pebble.ca_file)
        .env("DYNDNS_ACME_URL", hooks.url)
        .env("DYNDNS_NETRC", hooks.netrc);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run certbot: {e} (run scripts/test-deps.sh)"))?;
    let log = format!(
        "{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        fs::read_to_string(dir.join("logs/letsencrypt.log")).unwrap_or_default()
    );
    if !out.status.success() {
        return Err(log);
    }
    let first = domains.first().copied().unwrap_or_default();
    let cert = dir.join("config/live").join(first).join("cert.pem");
    if cert.exists() {
        Ok(cert)
    } else {
        Err(format!("no {} after:\n{log}", cert.display()))
    }
}
