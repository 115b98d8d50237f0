//! `dyndns-applier status`: what is pending, what failed and why, which
//! changes were interrupted, and per host what the status page shows an
//! admin (addresses, pending ones, last change, last heard, silent, rate
//! limit). Reads only, and reads queue files only through the careful
//! reader; every piece of text that came from the queue is escaped before
//! it reaches the terminal.

use std::io::Write;
use std::time::SystemTime;

use anyhow::Result;
use dyndns_core::config::Config;
use dyndns_core::queue::{Entry, QueueEntry};
use dyndns_core::status::{HostSources, HostStatus, StatusReport, Viewer, rough_duration};
use dyndns_core::untrusted_text::escape;

use crate::config_file::LoadedConfig;
use crate::failed_area::list_failed;
use crate::instance_lock;
use crate::journal::Journal;
use crate::layout::Layout;
use crate::queue_reader::QueueReader;
use crate::retry::RetrySchedule;
use crate::runner::ago;
use crate::state_store::{read_heartbeat, read_host_record};

/// Prints the status report to `out`.
pub fn print_status(loaded: &LoadedConfig, out: &mut impl Write) -> Result<()> {
    let config = &loaded.config;
    let layout = Layout::new(&config.paths);
    writeln!(out, "config: {}", loaded.path.display())?;

    match (
        read_heartbeat(&layout),
        instance_lock::is_held(&layout.lock),
    ) {
        (Some(hb), true) => writeln!(
            out,
            "applier: running (pid {}, heartbeat {}{})",
            hb.pid,
            ago(hb.at),
            if hb.dry_run { ", dry run" } else { "" }
        )?,
        (Some(hb), false) => writeln!(out, "applier: not running (last heartbeat {})", ago(hb.at))?,
        (None, true) => writeln!(out, "applier: running (no heartbeat yet)")?,
        (None, false) => writeln!(out, "applier: never ran with this state directory")?,
    }

    let retry = RetrySchedule::load(layout.retry.clone());
    let collected = QueueReader::new(&layout, config).peek();
    writeln!(out, "\npending ({}):", collected.entries.len())?;
    let mut entries = collected.entries;
    entries.sort_by_key(|e| e.name.key());
    for e in &entries {
        let key = e.name.key();
        let place = if e.fresh { "new" } else { "claimed" };
        let (record_type, what) = match &e.entry {
            Entry::Address(a) => (a.record_type.as_str(), a.address.to_string()),
            Entry::Txt(t) => ("TXT", t.txt.to_string()),
            Entry::Heard(_) => ("-", "client heard".to_string()),
        };
        write!(
            out,
            "  {:<40} {:<4} {:<39} requested {} by {} [{place}]",
            e.entry.host().as_str(),
            record_type,
            what,
            ago(e.entry.requested_at()),
            escape(e.entry.user())
        )?;
        if let Some(r) = retry.get(&key) {
            write!(
                out,
                "\n      {} failed attempt(s), next {}; last error: {}",
                r.attempts,
                match r.next_attempt.duration_since(std::time::SystemTime::now()) {
                    Ok(d) => format!(
                        "in {}",
                        humantime::format_duration(std::time::Duration::from_secs(d.as_secs()))
                    ),
                    Err(_) => "now".to_string(),
                },
                escape(&r.last_error)
            )?;
        }
        writeln!(out)?;
    }
    for (item, reason) in &collected.rejected {
        writeln!(
            out,
            "  {}: will be rejected: {}",
            escape(item),
            escape(reason)
        )?;
    }

    let failed = list_failed(&layout);
    writeln!(
        out,
        "\nfailed ({}) in {}:",
        failed.len(),
        layout.failed.display()
    )?;
    for f in &failed {
        match &f.note {
            Ok(note) => writeln!(
                out,
                "  {}: {} rejected {}: {}",
                f.name,
                escape(&note.item),
                ago(note.rejected_at),
                escape(&note.reason)
            )?,
            Err(why) => writeln!(out, "  {}: ({})", f.name, escape(why))?,
        }
    }

    let notes = Journal::new(layout.journal.clone())
        .all()
        .unwrap_or_default();
    if !notes.is_empty() {
        writeln!(out, "\ninterrupted changes (repaired on the next batch):")?;
        for n in &notes {
            writeln!(
                out,
                "  {} {}: deleting {:?}, adding {} (started {})",
                n.host,
                n.record_type,
                n.deleting,
                n.target,
                ago(n.started)
            )?;
        }
    }

    let pending: Vec<QueueEntry> = entries
        .into_iter()
        .filter_map(|e| match e.entry {
            Entry::Address(a) => Some(a),
            _ => None,
        })
        .collect();
    print_hosts(config, &layout, &pending, SystemTime::now(), out)?;
    Ok(())
}

/// The per-host summary (what `/status` shows an admin): current and
/// pending addresses, last change, last heard, silent, rate limit.
fn print_hosts(
    config: &Config,
    layout: &Layout,
    pending: &[QueueEntry],
    now: SystemTime,
    out: &mut impl Write,
) -> Result<()> {
    let silent_after = config.handler.silent_after;
    let root = Viewer {
        name: "",
        admin: true,
    };
    let hosts: Vec<HostStatus> = config
        .hosts
        .values()
        .map(|host| {
            let record = read_host_record(layout, &host.name);
            HostStatus::build(
                HostSources {
                    host: &host.name,
                    types: &host.types,
                    record: record.as_ref(),
                    pending,
                    in_flux: &[],
                },
                root,
                now,
                silent_after,
            )
        })
        .collect();
    let report = StatusReport::new(root, now, silent_after, hosts);
    writeln!(
        out,
        "\nhosts ({}, {} silent: not heard from for over {}):",
        report.hosts.len(),
        report.silent_hosts().count(),
        rough_duration(silent_after)
    )?;
    let ago = |t: SystemTime| match now.duration_since(t) {
        Ok(d) => format!("{} ago", rough_duration(d)),
        Err(e) => format!("in {}", rough_duration(e.duration())),
    };
    for host in &report.hosts {
        write!(out, "  {}", host.host)?;
        if host.silent {
            match host.last_heard {
                Some(t) => write!(
                    out,
                    "  [SILENT for {}]",
                    rough_duration(now.duration_since(t).unwrap_or_default())
                )?,
                None => write!(out, "  [SILENT: never heard]")?,
            }
        }
        writeln!(out)?;
        for r in &host.records {
            let t = r.record_type.as_str();
            match (r.address, r.since.or(r.confirmed_at)) {
                (Some(a), Some(when)) => writeln!(
                    out,
                    "    {t:<4}  {:<39} {} {}",
                    a.to_string(),
                    if r.since.is_some() {
                        "since"
                    } else {
                        "confirmed"
                    },
                    ago(when)
                )?,
                (Some(a), None) => writeln!(out, "    {t:<4}  {a}")?,
                (None, _) => writeln!(out, "    {t:<4}  (nothing applied yet)")?,
            }
            if let Some(p) = &r.pending {
                writeln!(
                    out,
                    "          pending {} (queued {})",
                    p.address,
                    ago(p.requested_at)
                )?;
            }
        }
        writeln!(
            out,
            "    last change {}, last heard {}, {} change(s) in the history",
            host.last_change.map_or_else(|| "none".to_string(), ago),
            host.last_heard.map_or_else(|| "never".to_string(), ago),
            host.history.len()
        )?;
        if let Some(until) = host.limited_until {
            writeln!(
                out,
                "    over the change limit: changes wait until {} ({})",
                humantime::format_rfc3339_seconds(until),
                ago(until)
            )?;
        }
    }
    Ok(())
}
