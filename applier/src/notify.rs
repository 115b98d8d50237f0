//! Change notifications: an email (SMTP: plain, STARTTLS or TLS, with or
//! without login) and/or a webhook (a JSON POST, with a `text` field that
//! Slack-style chat webhooks display). Sent after the change is applied, at
//! most once per host per batch, from background threads so that a slow or
//! dead server never delays DNS updates. Each message is tried a bounded
//! number of times with a doubling pause; failures are logged.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use dyndns_core::config::{EmailConfig, NotifyConfig, SmtpSecurity, WebhookConfig};
use dyndns_core::untrusted_text::escape;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use serde::Serialize;
use tracing::{error, info, warn};

use crate::change::{Change, address_list};

/// Most messages waiting per channel; beyond that new ones are dropped (and logged).
const QUEUE_LIMIT: usize = 1000;

/// One record's change inside a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordChangeNote {
    /// A or AAAA.
    #[serde(rename = "type")]
    pub record_type: String,
    /// Addresses before (empty after a crash repair).
    pub old: Vec<IpAddr>,
    /// Address now.
    pub new: IpAddr,
}

/// What is said about one host after a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// Always `dyndns.address_changed`.
    pub event: &'static str,
    /// The host.
    pub host: String,
    /// Its zone.
    pub zone: String,
    /// The record changes.
    pub changes: Vec<RecordChangeNote>,
    /// Who asked (escaped: it comes from the queue).
    pub user: String,
    /// From where.
    pub client: Option<IpAddr>,
    /// When it was applied (RFC 3339).
    pub applied_at: String,
    /// One human-readable line.
    pub text: String,
}

/// Groups a batch's changes into one notification per host.
pub fn notifications(changes: &[Change]) -> Vec<Notification> {
    let mut by_host: BTreeMap<String, Vec<&Change>> = BTreeMap::new();
    for c in changes {
        by_host.entry(c.host.to_string()).or_default().push(c);
    }
    by_host
        .into_iter()
        .map(|(host, list)| {
            let changes: Vec<RecordChangeNote> = list
                .iter()
                .map(|c| RecordChangeNote {
                    record_type: c.record_type.to_string(),
                    old: c.old.clone(),
                    new: c.new,
                })
                .collect();
            let parts: Vec<String> = changes
                .iter()
                .map(|c| format!("{} {} -> {}", c.record_type, address_list(&c.old), c.new))
                .collect();
            let last = list[list.len() - 1];
            Notification {
                event: "dyndns.address_changed",
                zone: last.zone.to_string(),
                text: format!("{host}: {}", parts.join(", ")),
                host,
                changes,
                user: escape(&last.user).into_owned(),
                client: last.client,
                applied_at: humantime::format_rfc3339_seconds(last.applied_at).to_string(),
            }
        })
        .collect()
}

/// Counters the metrics report.
#[derive(Debug, Default, Clone)]
pub struct NotifyStats {
    /// Messages delivered, by channel.
    pub sent: BTreeMap<&'static str, u64>,
    /// Messages given up, by channel.
    pub failed: BTreeMap<&'static str, u64>,
}

trait Channel: Send + 'static {
    fn name(&self) -> &'static str;
    fn send(&self, n: &Notification) -> Result<()>;
}

struct Worker {
    tx: SyncSender<Notification>,
    handle: JoinHandle<()>,
    name: &'static str,
}

/// The notification senders.
pub struct Notifier {
    workers: Vec<Worker>,
    stats: Arc<Mutex<NotifyStats>>,
}

impl Notifier {
    /// Starts a sender thread per configured channel; `None` when nothing is configured.
    pub fn start(config: &NotifyConfig) -> Result<Option<Notifier>> {
        let mut channels: Vec<Box<dyn Channel>> = Vec::new();
        if let Some(email) = &config.email {
            channels.push(Box::new(EmailChannel::new(email)?));
        }
        if let Some(webhook) = &config.webhook {
            channels.push(Box::new(WebhookChannel::new(webhook)));
        }
        if channels.is_empty() {
            return Ok(None);
        }
        let stats = Arc::new(Mutex::new(NotifyStats::default()));
        let mut workers = Vec::new();
        for channel in channels {
            let (tx, rx) = mpsc::sync_channel(QUEUE_LIMIT);
            let name = channel.name();
            let attempts = config.attempts.max(1);
            let delay = config.retry_delay;
            let stats = Arc::clone(&stats);
            let handle = thread::Builder::new()
                .name(format!("notify-{name}"))
                .spawn(move || worker(channel, rx, attempts, delay, stats))
                .context("starting a notification thread")?;
            workers.push(Worker { tx, handle, name });
        }
        Ok(Some(Notifier { workers, stats }))
    }

    /// Queues notifications for a batch's changes; never blocks.
    pub fn notify(&self, changes: &[Change]) {
        for n in notifications(changes) {
            for w in &self.workers {
                match w.tx.try_send(n.clone()) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        error!(channel = w.name, host = %n.host, "notification queue full; dropping this notification");
                    }
                    Err(TrySendError::Disconnected(_)) => {
                        error!(channel = w.name, "notification sender is gone");
                    }
                }
            }
        }
    }

    /// A copy of the counters.
    pub fn stats(&self) -> NotifyStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Lets queued messages go out, waiting at most `limit`.
    pub fn shutdown(self, limit: Duration) {
        let deadline = Instant::now() + limit;
        for w in self.workers {
            drop(w.tx);
            while !w.handle.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
            if w.handle.is_finished() {
                let _ = w.handle.join();
            } else {
                warn!(
                    channel = w.name,
                    "notifications still pending at exit were not sent"
                );
            }
        }
    }
}

fn worker(
    channel: Box<dyn Channel>,
    rx: Receiver<Notification>,
    attempts: u32,
    delay: Duration,
    stats: Arc<Mutex<NotifyStats>>,
) {
    let name = channel.name();
    for n in rx {
        let mut pause = delay;
        let mut outcome = Err(anyhow!("not tried"));
        for attempt in 1..=attempts {
            outcome = channel.send(&n);
            match &outcome {
                Ok(()) => {
                    info!(channel = name, host = %n.host, attempt, "notification sent");
                    break;
                }
                Err(e) if attempt < attempts => {
                    warn!(channel = name, host = %n.host, attempt, "notification failed, retrying in {}: {e:#}", humantime::format_duration(pause));
                    thread::sleep(pause);
                    pause = pause.saturating_mul(2);
                }
                Err(e) => {
                    error!(channel = name, host = %n.host, attempt, "notification failed, giving up: {e:#}")
                }
            }
        }
        if let Ok(mut s) = stats.lock() {
            let counter = if outcome.is_ok() {
                &mut s.sent
            } else {
                &mut s.failed
            };
            *counter.entry(name).or_insert(0) += 1;
        }
    }
}

struct EmailChannel {
    transport: SmtpTransport,
    from: lettre::message::Mailbox,
    to: Vec<lettre::message::Mailbox>,
}

impl EmailChannel {
    fn new(cfg: &EmailConfig) -> Result<EmailChannel> {
        let tls_params = || -> Result<TlsParameters> {
            let mut b = TlsParameters::builder(cfg.server.clone());
            if let Some(ca) = &cfg.ca_file {
                let pem = std::fs::read(ca)
                    .with_context(|| format!("reading notify.email.ca_file {}", ca.display()))?;
                b = b.add_root_certificate(
                    Certificate::from_pem(&pem)
                        .with_context(|| format!("{} is not a PEM certificate", ca.display()))?,
                );
            }
            b.build_rustls().context("setting up TLS for SMTP")
        };
        let tls = match cfg.security {
            SmtpSecurity::Plain => Tls::None,
            SmtpSecurity::Starttls => Tls::Required(tls_params()?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_params()?),
        };
        let mut builder = SmtpTransport::builder_dangerous(cfg.server.clone())
            .port(cfg.port.unwrap_or(cfg.security.default_port()))
            .tls(tls)
            .timeout(Some(cfg.timeout));
        if let (Some(user), Some(pass)) = (&cfg.username, &cfg.password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        let from = cfg
            .from
            .parse()
            .with_context(|| format!("notify.email.from {:?}", cfg.from))?;
        let to = cfg
            .to
            .iter()
            .map(|t| t.parse().with_context(|| format!("notify.email.to {t:?}")))
            .collect::<Result<Vec<_>>>()?;
        Ok(EmailChannel {
            transport: builder.build(),
            from,
            to,
        })
    }
}

/// The email body for a notification.
pub fn email_body(n: &Notification) -> String {
    let mut body = format!("The address of {} (zone {}) changed:\n\n", n.host, n.zone);
    for c in &n.changes {
        body.push_str(&format!(
            "  {:<4} {} -> {}\n",
            c.record_type,
            address_list(&c.old),
            c.new
        ));
    }
    body.push_str(&format!(
        "\nRequested by: {}\nFrom: {}\nApplied: {}\n",
        if n.user.is_empty() {
            "(crash repair)"
        } else {
            &n.user
        },
        n.client
            .map_or_else(|| "unknown".to_string(), |c| c.to_string()),
        n.applied_at
    ));
    body
}

impl Channel for EmailChannel {
    fn name(&self) -> &'static str {
        "email"
    }

    fn send(&self, n: &Notification) -> Result<()> {
        let new: Vec<String> = n.changes.iter().map(|c| c.new.to_string()).collect();
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(format!("dyndns: {} is now {}", n.host, new.join(", ")))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let message = builder
            .body(email_body(n))
            .context("building the message")?;
        self.transport.send(&message).context("sending over SMTP")?;
        Ok(())
    }
}

struct WebhookChannel {
    agent: ureq::Agent,
    url: String,
    token: Option<String>,
}

impl WebhookChannel {
    fn new(cfg: &WebhookConfig) -> WebhookChannel {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(cfg.timeout))
            .http_status_as_error(true)
            .build()
            .into();
        WebhookChannel {
            agent,
            url: cfg.url.clone(),
            token: cfg.bearer_token.clone(),
        }
    }
}

impl Channel for WebhookChannel {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn send(&self, n: &Notification) -> Result<()> {
        let mut req = self.agent.post(&self.url).header(
            "User-Agent",
            concat!("dyndns-applier/", env!("CARGO_PKG_VERSION")),
        );
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        // The URL may carry a secret token: never log it.
        req.send_json(n).map_err(|e| {
            anyhow!(
                "POST to the webhook failed: {}",
                redact(&e.to_string(), &self.url)
            )
        })?;
        Ok(())
    }
}

fn redact(message: &str, url: &str) -> String {
    message.replace(url, "<webhook url>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use dyndns_core::{Hostname, RecordType};
    use std::time::SystemTime;

    fn change(host: &str, t: RecordType, old: &[&str], new: &str) -> Change {
        Change {
            host: Hostname::parse(host).unwrap(),
            record_type: t,
            zone: Hostname::parse("dyn.example.com").unwrap(),
            old: old.iter().map(|a| a.parse().unwrap()).collect(),
            new: new.parse().unwrap(),
            user: "alice".into(),
            client: Some("203.0.113.5".parse().unwrap()),
            requested_at: None,
            applied_at: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn one_notification_per_host() {
        let changes = vec![
            change(
                "a.dyn.example.com",
                RecordType::A,
                &["192.0.2.1"],
                "198.51.100.1",
            ),
            change("b.dyn.example.com", RecordType::A, &[], "198.51.100.2"),
            change(
                "a.dyn.example.com",
                RecordType::AAAA,
                &["2001:db8::1"],
                "2001:db8::2",
            ),
        ];
        let n = notifications(&changes);
        assert_eq!(n.len(), 2);
        assert_eq!(
            n[0].text,
            "a.dyn.example.com: A 192.0.2.1 -> 198.51.100.1, AAAA 2001:db8::1 -> 2001:db8::2"
        );
        assert_eq!(n[1].text, "b.dyn.example.com: A (none) -> 198.51.100.2");
        let json = serde_json::to_value(&n[0]).unwrap();
        assert_eq!(json["changes"][1]["type"], "AAAA");
        assert_eq!(json["applied_at"], "1970-01-01T00:00:00Z");
        let body = email_body(&n[0]);
        assert!(body.contains("A    192.0.2.1 -> 198.51.100.1"), "{body}");
        assert!(body.contains("Requested by: alice"));
    }

    #[test]
    fn webhook_errors_do_not_leak_the_url() {
        assert_eq!(
            redact(
                "error sending to https://h/T0K3N: refused",
                "https://h/T0K3N"
            ),
            "error sending to <webhook url>: refused"
        );
    }
}
