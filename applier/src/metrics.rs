//! Prometheus metrics in the text exposition format, written atomically to a
//! file for node_exporter's textfile collector (`applier.metrics_file`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::time::SystemTime;

use anyhow::Result;
use dyndns_core::Hostname;

use crate::batch::BatchReport;
use crate::fsutil::replace_in_dir;
use crate::notify::NotifyStats;

/// Upper bounds of the Plesk call latency histogram, in seconds.
const BUCKETS: [f64; 9] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Counters since the applier started, plus the latest gauges.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    applied: u64,
    unchanged: u64,
    rejected: u64,
    deferred: u64,
    superseded: u64,
    challenges: u64,
    batches: u64,
    calls: BTreeMap<(String, &'static str), u64>,
    latency: BTreeMap<String, Histogram>,
    queue_depth: u64,
    failed_entries: u64,
    last_batch: f64,
    notify: NotifyStats,
    hosts: Vec<HostActivity>,
}

/// When a host was last heard from and last changed (for the per-host gauges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostActivity {
    /// The host.
    pub host: Hostname,
    /// When its client was last heard from.
    pub last_heard: Option<SystemTime>,
    /// When one of its addresses was last changed.
    pub last_change: Option<SystemTime>,
}

impl Metrics {
    /// Adds a batch's figures and the Plesk calls it made (`(command, ok, seconds)`).
    pub fn record_batch(&mut self, report: &BatchReport, calls: &[(&'static str, bool, f64)]) {
        self.batches += 1;
        self.applied += report.applied.len() as u64;
        self.unchanged += report.unchanged as u64;
        self.rejected += report.rejected as u64;
        self.deferred += report.deferred as u64;
        self.superseded += report.superseded as u64;
        self.challenges += report.challenges as u64;
        for (command, ok, secs) in calls {
            let result = if *ok { "ok" } else { "error" };
            *self.calls.entry((command.to_string(), result)).or_insert(0) += 1;
            let h = self.latency.entry(command.to_string()).or_default();
            h.count += 1;
            h.sum += secs;
            for (i, bound) in BUCKETS.iter().enumerate() {
                if secs <= bound {
                    h.counts[i] += 1;
                }
            }
        }
        self.last_batch = unix_seconds(SystemTime::now());
    }

    /// Sets the queue gauges.
    pub fn set_queue(&mut self, depth: u64, failed: u64) {
        self.queue_depth = depth;
        self.failed_entries = failed;
    }

    /// Sets the notification counters.
    pub fn set_notify(&mut self, stats: NotifyStats) {
        self.notify = stats;
    }

    /// Sets the per-host gauges.
    pub fn set_hosts(&mut self, hosts: Vec<HostActivity>) {
        self.hosts = hosts;
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        self.render_at(SystemTime::now())
    }

    /// The text exposition, with host ages counted up to `now`.
    fn render_at(&self, now: SystemTime) -> String {
        let mut s = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            "dyndns_updates_applied_total",
            "Address changes applied to DNS.",
            self.applied,
        );
        counter(
            "dyndns_updates_unchanged_total",
            "Updates whose address was already in DNS.",
            self.unchanged,
        );
        counter(
            "dyndns_updates_rejected_total",
            "Queue items moved to failed/ (permanent failures).",
            self.rejected,
        );
        counter(
            "dyndns_updates_deferred_total",
            "Updates kept for a retry (transient failures or backoff).",
            self.deferred,
        );
        counter(
            "dyndns_updates_superseded_total",
            "Queued updates replaced by a newer one before being applied.",
            self.superseded,
        );
        counter(
            "dyndns_challenge_records_total",
            "ACME challenge TXT values added or removed (requested or expired).",
            self.challenges,
        );
        counter("dyndns_batches_total", "Batches run.", self.batches);
        let _ = writeln!(
            s,
            "# HELP dyndns_plesk_calls_total Calls of plesk bin dns by command and result.\n# TYPE dyndns_plesk_calls_total counter"
        );
        for ((command, result), n) in &self.calls {
            let _ = writeln!(
                s,
                "dyndns_plesk_calls_total{{command=\"{command}\",result=\"{result}\"}} {n}"
            );
        }
        let _ = writeln!(
            s,
            "# HELP dyndns_plesk_call_duration_seconds Duration of plesk bin dns calls.\n# TYPE dyndns_plesk_call_duration_seconds histogram"
        );
        for (command, h) in &self.latency {
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "dyndns_plesk_call_duration_seconds_bucket{{command=\"{command}\",le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                s,
                "dyndns_plesk_call_duration_seconds_bucket{{command=\"{command}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                s,
                "dyndns_plesk_call_duration_seconds_sum{{command=\"{command}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                s,
                "dyndns_plesk_call_duration_seconds_count{{command=\"{command}\"}} {}",
                h.count
            );
        }
        let mut gauge = |name: &str, help: &str, value: f64| {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge(
            "dyndns_queue_depth",
            "Entries waiting (pending and claimed) after the last batch.",
            self.queue_depth as f64,
        );
        gauge(
            "dyndns_failed_entries",
            "Items in the failed/ directory.",
            self.failed_entries as f64,
        );
        gauge(
            "dyndns_last_batch_timestamp_seconds",
            "When the last batch ended (Unix time).",
            self.last_batch,
        );
        let _ = writeln!(
            s,
            "# HELP dyndns_notifications_total Notifications by channel and result.\n# TYPE dyndns_notifications_total counter"
        );
        for (channel, n) in &self.notify.sent {
            let _ = writeln!(
                s,
                "dyndns_notifications_total{{channel=\"{channel}\",result=\"sent\"}} {n}"
            );
        }
        for (channel, n) in &self.notify.failed {
            let _ = writeln!(
                s,
                "dyndns_notifications_total{{channel=\"{channel}\",result=\"failed\"}} {n}"
            );
        }
        // An age, so that "silent for two days" is `> 172800`; a host never
        // heard from has no sample.
        let _ = writeln!(
            s,
            "# HELP dyndns_host_last_heard_seconds Seconds since the host's client was last heard from (an update or a nochg).\n# TYPE dyndns_host_last_heard_seconds gauge"
        );
        for h in &self.hosts {
            if let Some(t) = h.last_heard {
                let age = now.duration_since(t).unwrap_or_default().as_secs();
                let _ = writeln!(
                    s,
                    "dyndns_host_last_heard_seconds{{host=\"{}\"}} {age}",
                    label_value(h.host.as_str())
                );
            }
        }
        let _ = writeln!(
            s,
            "# HELP dyndns_host_last_change_timestamp_seconds When an address of the host last changed (Unix time).\n# TYPE dyndns_host_last_change_timestamp_seconds gauge"
        );
        for h in &self.hosts {
            if let Some(t) = h.last_change {
                let _ = writeln!(
                    s,
                    "dyndns_host_last_change_timestamp_seconds{{host=\"{}\"}} {}",
                    label_value(h.host.as_str()),
                    unix_seconds(t)
                );
            }
        }
        s
    }

    /// Writes the textfile atomically. Its directory may belong to another
    /// user (node_exporter's); see [`replace_in_dir`] for how root avoids
    /// writing through a link planted there.
    pub fn write(&self, path: &Path) -> Result<()> {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
        else {
            anyhow::bail!("{} does not name a file in a directory", path.display());
        };
        if std::fs::symlink_metadata(dir).is_err() {
            std::fs::create_dir_all(dir)?;
        }
        replace_in_dir(dir, name, self.render().as_bytes(), 0o644)?;
        Ok(())
    }
}

/// Seconds since the epoch (0 for earlier times).
fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A label value as the text exposition format wants it: backslash, double
/// quote and line feed escaped.
fn label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let mut m = Metrics::default();
        let report = BatchReport {
            unchanged: 2,
            challenges: 3,
            ..Default::default()
        };
        m.record_batch(
            &report,
            &[
                ("--info", true, 0.2),
                ("--add", false, 3.0),
                ("--add", true, 0.05),
            ],
        );
        m.set_queue(3, 1);
        let text = m.render();
        assert!(
            text.contains("dyndns_updates_unchanged_total 2\n"),
            "{text}"
        );
        assert!(text.contains("dyndns_plesk_calls_total{command=\"--add\",result=\"error\"} 1\n"));
        assert!(text.contains("dyndns_plesk_calls_total{command=\"--add\",result=\"ok\"} 1\n"));
        assert!(text.contains(
            "dyndns_plesk_call_duration_seconds_bucket{command=\"--add\",le=\"0.1\"} 1\n"
        ));
        assert!(
            text.contains(
                "dyndns_plesk_call_duration_seconds_bucket{command=\"--add\",le=\"5\"} 2\n"
            )
        );
        assert!(text.contains("dyndns_plesk_call_duration_seconds_count{command=\"--info\"} 1\n"));
        assert!(text.contains("dyndns_queue_depth 3\n"));
        assert!(
            text.contains("dyndns_challenge_records_total 3\n"),
            "{text}"
        );
        // every sample line is "name{labels} value" or "name value"
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            value.parse::<f64>().unwrap();
        }
    }

    #[test]
    fn per_host_gauges() {
        let mut m = Metrics::default();
        let t = |s: u64| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s);
        let host = |n: &str| Hostname::parse(n).unwrap();
        m.set_hosts(vec![
            HostActivity {
                host: host("home.dyn.example.com"),
                last_heard: Some(t(1_000)),
                last_change: Some(t(500)),
            },
            HostActivity {
                host: host("nas.dyn.example.com"),
                last_heard: None,
                last_change: None,
            },
        ]);
        let text = m.render_at(t(1_060));
        assert!(
            text.contains("dyndns_host_last_heard_seconds{host=\"home.dyn.example.com\"} 60\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "dyndns_host_last_change_timestamp_seconds{host=\"home.dyn.example.com\"} 500\n"
            ),
            "{text}"
        );
        assert!(
            !text.contains("nas.dyn"),
            "never heard, never changed: no sample\n{text}"
        );
        assert!(text.contains("# TYPE dyndns_host_last_heard_seconds gauge\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("a.example.com"), "a.example.com");
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
