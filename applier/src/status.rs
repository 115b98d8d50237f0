//! `dyndns-applier status`: what is pending, what failed and why, which
//! changes were interrupted, and what was applied. Reads only, and reads
//! queue files only through the careful reader; every piece of text that
//! came from the queue is escaped before it reaches the terminal.

use std::io::Write;

use anyhow::Result;
use dyndns_core::queue::Entry;
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

    writeln!(out, "\napplied:")?;
    for host in config.hosts.values() {
        let record = read_host_record(&layout, &host.name);
        for t in &host.types {
            match record.as_ref().and_then(|r| r.current(*t)) {
                Some(c) => writeln!(
                    out,
                    "  {:<40} {:<4} {:<39} {}",
                    host.name.as_str(),
                    t.as_str(),
                    c.address.to_string(),
                    ago(c.confirmed_at)
                )?,
                None => writeln!(
                    out,
                    "  {:<40} {:<4} (nothing applied yet)",
                    host.name.as_str(),
                    t.as_str()
                )?,
            }
        }
    }
    Ok(())
}
