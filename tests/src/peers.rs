//! Real network peers for the notification tests: an SMTP server (aiosmtpd,
//! from PyPI) and an HTTP listener that records webhook calls.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::{free_port, root};

/// A running aiosmtpd.
pub struct SmtpServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Where messages land.
    pub out: PathBuf,
    child: Child,
}

/// How the SMTP server talks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpMode {
    /// No TLS.
    Plain,
    /// STARTTLS required.
    Starttls,
    /// TLS from the first byte.
    Tls,
}

/// A test CA and a server certificate it signed for 127.0.0.1 and localhost.
pub struct TestCert {
    /// The CA certificate (PEM), to trust.
    pub ca: PathBuf,
    /// The server certificate (PEM).
    pub cert: PathBuf,
    /// The server key (PEM).
    pub key: PathBuf,
}

fn openssl(args: &[&str], dir: &Path) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success(), "openssl {args:?} failed");
}

/// Makes a CA and a server certificate for 127.0.0.1 in `dir` (with openssl).
pub fn make_cert(dir: &Path) -> TestCert {
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=dyndns test CA",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
        ],
        dir,
    );
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server-key.pem",
            "-out",
            "server.csr",
        ],
        dir,
    );
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n").expect("ext file");
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
        dir,
    );
    TestCert {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
    }
}

impl SmtpServer {
    /// Starts aiosmtpd in `mode`, optionally requiring `auth` (`user:password`).
    pub fn start(
        dir: &Path,
        mode: SmtpMode,
        cert: Option<&TestCert>,
        auth: Option<&str>,
    ) -> SmtpServer {
        let out = dir.join(format!("mail-{}", free_port()));
        std::fs::create_dir_all(&out).expect("mail dir");
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new("python3");
            cmd.arg(root().join("tests/support/smtp_server.py"))
                .arg("--port")
                .arg(port.to_string())
                .arg("--out")
                .arg(&out)
                .arg("--mode")
                .arg(match mode {
                    SmtpMode::Plain => "plain",
                    SmtpMode::Starttls => "starttls",
                    SmtpMode::Tls => "tls",
                });
            if let Some(c) = cert {
                cmd.arg("--cert").arg(&c.cert).arg("--key").arg(&c.key);
            }
            if let Some(a) = auth {
                cmd.arg("--auth").arg(a);
            }
            let mut child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("python3 smtp_server.py");
            let mut line = String::new();
            if let Some(stdout) = child.stdout.take() {
                let _ = BufReader::new(stdout).read_line(&mut line);
            }
            if line.trim() == "READY" {
                return SmtpServer { port, out, child };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("aiosmtpd did not start (is it installed? run scripts/test-deps.sh)");
    }

    /// The messages received so far, in order.
    pub fn messages(&self) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(&self.out)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One recorded HTTP request.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Request line.
    pub request_line: String,
    /// Headers, names lower case.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

impl Recorded {
    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the webhook listener answers.
#[derive(Debug, Clone, Copy)]
pub enum WebhookBehaviour {
    /// 200 OK.
    Ok,
    /// 500 every time.
    Fail,
    /// Read the request and never answer.
    Hang,
}

/// An HTTP listener on 127.0.0.1 recording every request.
pub struct WebhookListener {
    /// Its port.
    pub port: u16,
    requests: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
}

impl WebhookListener {
    /// Starts listening.
    pub fn start(behaviour: WebhookBehaviour) -> WebhookListener {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (Arc::clone(&requests), Arc::clone(&stop));
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let r = Arc::clone(&r);
                thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).is_err() {
                        return;
                    }
                    let mut headers = Vec::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                        }
                    }
                    let len = headers
                        .iter()
                        .find(|(k, _)| k == "content-length")
                        .and_then(|(_, v)| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    let _ = reader.read_exact(&mut body);
                    if let Ok(mut list) = r.lock() {
                        list.push(Recorded {
                            request_line: request_line.trim().to_string(),
                            headers,
                            body: String::from_utf8_lossy(&body).into_owned(),
                        });
                    }
                    let answer: &[u8] = match behaviour {
                        WebhookBehaviour::Ok => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        WebhookBehaviour::Fail => b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\nboom",
                        WebhookBehaviour::Hang => {
                            thread::sleep(Duration::from_secs(60));
                            return;
                        }
                    };
                    let _ = conn.write_all(answer);
                });
            }
        });
        WebhookListener {
            port,
            requests,
            stop,
        }
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for WebhookListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}
