//! One batch: claim what is pending, keep the newest entry per host and
//! type, list each affected zone once, and change only the records whose
//! address really differs (`--del` of the old value, then `--add` of the
//! new). Transient failures are scheduled for retry, permanent ones go to
//! `failed/` with a reason; neither stops the other entries.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use anyhow::Result;
use dyndns_core::config::Config;
use dyndns_core::queue::{QueueEntry, record_key};
use dyndns_core::untrusted_text::escape;
use dyndns_core::{Hostname, RecordType};
use tracing::{debug, error, info, warn};

use crate::backend::{DnsBackend, RecordChange, ZoneRecord};
use crate::journal::{Journal, JournalNote};
use crate::layout::{Layout, is_not_found};
use crate::publish::{InFlux, Publisher};
use crate::queue_reader::pending_keys;
use crate::queue_reader::{
    QueueReader, ValidEntry, check_against_config, display_name, move_to_failed,
};
use crate::retry::RetrySchedule;
use crate::state_store::HostStates;
use dyndns_core::state::HistoryEntry;

/// An address change that was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The host.
    pub host: Hostname,
    /// A or AAAA.
    pub record_type: RecordType,
    /// The zone.
    pub zone: Hostname,
    /// Addresses removed (empty when the record was restored after a crash).
    pub old: Vec<IpAddr>,
    /// The address now in the zone.
    pub new: IpAddr,
    /// Who asked (empty for a crash repair).
    pub user: String,
    /// Where the request came from.
    pub client: Option<IpAddr>,
    /// When the request was accepted.
    pub requested_at: Option<SystemTime>,
    /// When it was applied.
    pub applied_at: SystemTime,
}

/// What a batch did.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Changes applied.
    pub applied: Vec<Change>,
    /// Entries whose address was already in the zone.
    pub unchanged: usize,
    /// Entries and items moved to `failed/` (or that would be, in dry-run).
    pub rejected: usize,
    /// Entries kept for a later attempt (transient failure, or backoff not over).
    pub deferred: usize,
    /// Changes held back because their host is over its change limit.
    pub limited: usize,
    /// Older entries replaced by a newer one for the same host and type.
    pub superseded: usize,
    /// True when a stop request ended the batch early.
    pub interrupted: bool,
    /// `plesk bin dns --info` calls made.
    pub listings: usize,
    /// Lines printed in dry-run mode.
    pub dry_run_lines: Vec<String>,
    /// Time spent reading and claiming the queue, in milliseconds.
    pub scan_ms: u64,
    /// Time the whole batch took, in milliseconds.
    pub elapsed_ms: u64,
}

/// One host and type to bring to its wanted address.
#[derive(Debug, Clone)]
struct Work {
    host: Hostname,
    record_type: RecordType,
    zone: Hostname,
    label: String,
    target: IpAddr,
    /// The queue entry (absent when only a journal note asks for repair).
    entry: Option<ValidEntry>,
}

impl Work {
    fn key(&self) -> String {
        record_key(&self.host, self.record_type)
    }

    /// The backend call for this work with `value`.
    fn change<'a>(&'a self, value: &'a str) -> RecordChange<'a> {
        RecordChange {
            zone: &self.zone,
            label: &self.label,
            record_type: self.record_type,
            value,
        }
    }
}

enum Outcome {
    Applied(Change),
    Unchanged,
    Rejected(String),
    Deferred(String),
    /// Over the host's change limit until then.
    Limited(SystemTime),
}

/// Everything a batch needs.
pub struct Batch<'a, B: DnsBackend> {
    /// The config.
    pub config: &'a Config,
    /// The paths.
    pub layout: &'a Layout,
    /// The DNS backend.
    pub backend: &'a mut B,
    /// The crash journal.
    pub journal: &'a Journal,
    /// The retry schedule.
    pub retry: &'a mut RetrySchedule,
    /// The hosts' records (addresses, history, limits).
    pub states: &'a mut HostStates,
    /// Record types whose published address is withheld while an entry for
    /// them is processed.
    pub in_flux: &'a mut InFlux,
    /// Writes the handler's view of changed hosts.
    pub publisher: &'a Publisher,
    /// Asked before each zone and each host: true means stop now.
    pub stop: &'a dyn Fn() -> bool,
    /// Print instead of change.
    pub dry_run: bool,
}

impl<B: DnsBackend> Batch<'_, B> {
    /// Runs the batch.
    pub fn run(&mut self) -> Result<BatchReport> {
        let started = Instant::now();
        let mut report = BatchReport::default();
        if !self.dry_run {
            self.withhold_pending()?;
        }
        let reader = QueueReader::new(self.layout, self.config);
        let collected = if self.dry_run {
            reader.peek()
        } else {
            reader.collect()?
        };
        report.scan_ms = started.elapsed().as_millis() as u64;
        report.rejected += collected.rejected.len();
        if self.dry_run {
            for (item, reason) in &collected.rejected {
                report
                    .dry_run_lines
                    .push(format!("would reject {item}: {reason}"));
            }
        }

        // Newest entry per host and type; older ones are superseded.
        let mut newest: BTreeMap<String, ValidEntry> = BTreeMap::new();
        for e in collected.entries {
            let key = e.name.key();
            if e.fresh {
                self.retry.clear(&key);
            }
            match newest.remove(&key) {
                None => {
                    newest.insert(key, e);
                }
                Some(old) => {
                    let (keep, drop) = if (e.entry.requested_at, &e.name.claim)
                        >= (old.entry.requested_at, &old.name.claim)
                    {
                        (e, old)
                    } else {
                        (old, e)
                    };
                    report.superseded += 1;
                    if !self.dry_run {
                        debug!("{} superseded by a newer entry", display_name(&drop.path));
                        remove_file(&drop.path);
                    }
                    newest.insert(key, keep);
                }
            }
        }

        let mut work: Vec<Work> = Vec::new();
        for (key, e) in newest {
            let Some(host) = self.config.host(&e.entry.host) else {
                continue;
            };
            let label = match label_in(&e.entry.host, &host.zone) {
                Ok(label) => label,
                Err(reason) => {
                    self.reject(&key, Some(&e), &reason, &mut report);
                    continue;
                }
            };
            work.push(Work {
                host: e.entry.host.clone(),
                record_type: e.entry.record_type,
                zone: host.zone.clone(),
                label,
                target: e.entry.address,
                entry: Some(e),
            });
        }
        // Interrupted changes with no entry left: finish them from the journal.
        let queued: HashSet<String> = work.iter().map(Work::key).collect();
        for note in self.journal.all()? {
            let key = record_key(&note.host, note.record_type);
            if queued.contains(&key) {
                continue;
            }
            let host = self.config.host(&note.host).filter(|host| {
                self.config.zone_allowed(&host.zone) && host.types.contains(&note.record_type)
            });
            match host.map(|host| (host, label_in(&note.host, &host.zone))) {
                Some((_, Err(reason))) => {
                    error!(host = %note.host, "cannot repair an interrupted change: {reason}; dropping the journal note");
                    if !self.dry_run {
                        self.journal.finish(&note.host, note.record_type)?;
                    }
                }
                Some((host, Ok(label))) => {
                    warn!(host = %note.host, record_type = %note.record_type, "repairing an interrupted change");
                    work.push(Work {
                        label,
                        zone: host.zone.clone(),
                        host: note.host.clone(),
                        record_type: note.record_type,
                        target: note.target,
                        entry: None,
                    });
                }
                _ => {
                    error!(host = %note.host, "journal note for a host that is no longer configured; dropping it");
                    if !self.dry_run {
                        self.journal.finish(&note.host, note.record_type)?;
                    }
                }
            }
        }

        // Forget retry state of keys that have nothing left to do.
        let live: HashSet<String> = work.iter().map(Work::key).collect();
        self.retry.retain(|k| live.contains(k));

        // Respect the backoff of earlier failures.
        let now = SystemTime::now();
        let (due, waiting): (Vec<Work>, Vec<Work>) = work
            .into_iter()
            .partition(|w| self.dry_run || self.retry.is_due(&w.key(), now));
        report.deferred += waiting.len();

        let mut by_zone: BTreeMap<Hostname, Vec<Work>> = BTreeMap::new();
        for w in due {
            by_zone.entry(w.zone.clone()).or_default().push(w);
        }
        for (zone, items) in by_zone {
            if (self.stop)() {
                report.interrupted = true;
                break;
            }
            report.listings += 1;
            let records = match self.backend.list(&zone) {
                Ok(r) => r,
                Err(e) => {
                    let msg = format!("listing zone {zone} failed: {e}");
                    for w in &items {
                        self.defer(w, &msg, &mut report);
                    }
                    continue;
                }
            };
            for w in items {
                if (self.stop)() {
                    report.interrupted = true;
                    break;
                }
                match self.apply(&w, &records, &mut report) {
                    Ok(Outcome::Applied(change)) => report.applied.push(change),
                    Ok(Outcome::Unchanged) => report.unchanged += 1,
                    Ok(Outcome::Rejected(reason)) => {
                        self.reject(&w.key(), w.entry.as_ref(), &reason, &mut report);
                    }
                    Ok(Outcome::Deferred(msg)) => self.defer(&w, &msg, &mut report),
                    Ok(Outcome::Limited(until)) => self.hold_back(&w, until, &mut report),
                    Err(e) => self.defer(&w, &format!("{e:#}"), &mut report),
                }
            }
            if report.interrupted {
                break;
            }
        }
        if !self.dry_run {
            self.retry.save()?;
            self.publish_changes()?;
        }
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }

    /// Before anything is claimed: every record type with an entry waiting
    /// (in `new/` or `cur/`) is published without its address, so that a
    /// request arriving while the entry is processed is never answered
    /// `nochg` against the address about to be replaced (it is queued
    /// instead). Types with nothing waiting get their address back.
    fn withhold_pending(&mut self) -> Result<()> {
        let waiting: InFlux = pending_keys(self.layout).into_iter().collect();
        if waiting == *self.in_flux {
            return Ok(());
        }
        let changed: BTreeSet<Hostname> = waiting
            .symmetric_difference(self.in_flux)
            .map(|(h, _)| h.clone())
            .collect();
        *self.in_flux = waiting;
        let changed: Vec<Hostname> = changed.into_iter().collect();
        self.publisher.publish_hosts(
            self.config,
            self.layout,
            self.states,
            self.in_flux,
            &changed,
        )
    }

    /// Writes changed host records and the view files that show them.
    fn publish_changes(&mut self) -> Result<()> {
        let mut changed = self.states.save(self.layout)?;
        // Types whose entries are done (applied, unchanged, rejected) are no
        // longer withheld.
        let still_waiting: InFlux = pending_keys(self.layout).into_iter().collect();
        let released: Vec<Hostname> = self
            .in_flux
            .difference(&still_waiting)
            .map(|(h, _)| h.clone())
            .collect();
        *self.in_flux = still_waiting;
        changed.extend(released);
        changed.sort();
        changed.dedup();
        self.publisher.publish_hosts(
            self.config,
            self.layout,
            self.states,
            self.in_flux,
            &changed,
        )
    }

    /// Keeps a change of a host over its change limit queued until `until`
    /// and tells the handler (which answers `abuse` meanwhile).
    fn hold_back(&mut self, w: &Work, until: SystemTime, report: &mut BatchReport) {
        report.limited += 1;
        report.deferred += 1;
        let record = self.states.record_mut(&w.host);
        record.limited_until = Some(until);
        let first = self
            .retry
            .get(&w.key())
            .is_none_or(|r| r.next_attempt != until);
        let msg = format!(
            "over the change limit ({} changes per {}); held back until {}",
            self.config.applier.host_change_limit,
            humantime::format_duration(self.config.applier.host_change_window),
            humantime::format_rfc3339_seconds(until)
        );
        if first {
            warn!(host = %w.host, record_type = %w.record_type, "change limit reached: {msg}");
        }
        self.retry.postpone(&w.key(), until, msg);
    }

    /// A permanent failure: the entry (if any) goes to `failed/`.
    fn reject(
        &mut self,
        key: &str,
        entry: Option<&ValidEntry>,
        reason: &str,
        report: &mut BatchReport,
    ) {
        report.rejected += 1;
        self.retry.clear(key);
        if self.dry_run {
            report
                .dry_run_lines
                .push(format!("would reject {key}: {reason}"));
            return;
        }
        warn!(record = %key, reason = %escape(reason), "update rejected");
        if let Some(e) = entry
            && let Err(err) = move_to_failed(self.layout, &e.path, reason)
        {
            error!(
                "could not move {} to failed/: {err:#}",
                display_name(&e.path)
            );
        }
    }

    fn defer(&mut self, w: &Work, msg: &str, report: &mut BatchReport) {
        report.deferred += 1;
        if self.dry_run {
            report
                .dry_run_lines
                .push(format!("cannot plan {}: {msg}", w.key()));
            return;
        }
        let cfg = &self.config.applier;
        let state = self.retry.failed(
            &w.key(),
            msg.to_string(),
            SystemTime::now(),
            cfg.retry_initial,
            cfg.retry_max,
        );
        let wait = state
            .next_attempt
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        warn!(
            host = %w.host,
            record_type = %w.record_type,
            attempt = state.attempts,
            retry_in = %humantime::format_duration(std::time::Duration::from_secs(wait.as_secs().max(1))),
            "transient failure, will retry: {msg}"
        );
    }

    /// Brings one host and type to its target address.
    fn apply(
        &mut self,
        w: &Work,
        records: &[ZoneRecord],
        report: &mut BatchReport,
    ) -> Result<Outcome> {
        if let Some(e) = &w.entry
            && let Err(reason) = check_against_config(self.config, &e.entry)
        {
            return Ok(Outcome::Rejected(reason));
        }
        let current: Vec<&ZoneRecord> = records
            .iter()
            .filter(|r| r.record_type == w.record_type && r.name == w.host.as_str())
            .collect();
        let note = self.journal.get(&w.host, w.record_type)?;
        let has_target = current.iter().any(|r| r.address == w.target);
        let to_delete: Vec<&ZoneRecord> = current
            .iter()
            .copied()
            .filter(|r| r.address != w.target)
            .collect();

        if has_target && to_delete.is_empty() {
            if self.dry_run {
                report.dry_run_lines.push(format!(
                    "{} {} already has {}",
                    w.host, w.record_type, w.target
                ));
            } else {
                self.finish(w)?;
            }
            return Ok(Outcome::Unchanged);
        }
        if current.is_empty() && note.is_none() {
            return Ok(Outcome::Rejected(format!(
                "zone {} has no {} record for {}; create it once in Plesk (the applier only updates existing records)",
                w.zone, w.record_type, w.host
            )));
        }
        let target = w.target.to_string();
        if self.dry_run {
            for r in &to_delete {
                let line = self.backend.describe("--del", &w.change(&r.value));
                report.dry_run_lines.push(format!("would run: {line}"));
            }
            if !has_target {
                let line = self.backend.describe("--add", &w.change(&target));
                report.dry_run_lines.push(format!("would run: {line}"));
            }
            return Ok(Outcome::Applied(self.change_record(w, &to_delete)));
        }

        let now = SystemTime::now();
        if w.entry.is_some()
            && let Some(until) = self.states.get(&w.host).and_then(|r| {
                r.next_change_allowed(
                    self.config.applier.host_change_limit,
                    self.config.applier.host_change_window,
                    now,
                )
            })
        {
            return Ok(Outcome::Limited(until));
        }
        let started = Instant::now();
        if !to_delete.is_empty() {
            self.journal.begin(&JournalNote {
                host: w.host.clone(),
                record_type: w.record_type,
                zone: w.zone.clone(),
                deleting: to_delete.iter().map(|r| r.value.clone()).collect(),
                target: w.target,
                started: SystemTime::now(),
            })?;
        }
        for r in &to_delete {
            if let Err(e) = self.backend.delete(&w.change(&r.value)) {
                return Ok(Outcome::Deferred(e.to_string()));
            }
        }
        if !has_target && let Err(e) = self.backend.add(&w.change(&target)) {
            return Ok(Outcome::Deferred(e.to_string()));
        }
        let change = self.change_record(w, &to_delete);
        self.record_change(&change);
        self.finish(w)?;
        let old = crate::notify::address_list(&change.old);
        info!(
            host = %w.host,
            record_type = %w.record_type,
            ms = started.elapsed().as_millis() as u64,
            "applied {} {} {} -> {}",
            w.host,
            w.record_type,
            old,
            w.target
        );
        Ok(Outcome::Applied(change))
    }

    fn change_record(&self, w: &Work, deleted: &[&ZoneRecord]) -> Change {
        let e = w.entry.as_ref().map(|e| &e.entry);
        Change {
            host: w.host.clone(),
            record_type: w.record_type,
            zone: w.zone.clone(),
            old: deleted.iter().map(|r| r.address).collect(),
            new: w.target,
            user: e.map(|e| e.user.clone()).unwrap_or_default(),
            client: e.and_then(|e| e.client),
            requested_at: e.map(|e: &QueueEntry| e.requested_at),
            applied_at: SystemTime::now(),
        }
    }

    /// Adds an applied change to the host's history, and marks the host as
    /// limited right away when this change used up its allowance.
    fn record_change(&mut self, change: &Change) {
        let cfg = &self.config.applier;
        let record = self.states.record_mut(&change.host);
        record.push_history(HistoryEntry {
            record_type: change.record_type,
            old: change.old.clone(),
            new: change.new,
            applied_at: change.applied_at,
            user: change.user.clone(),
            client: change.client,
        });
        record.limited_until = record.next_change_allowed(
            cfg.host_change_limit,
            cfg.host_change_window,
            change.applied_at,
        );
    }

    /// The wanted state holds: record it, close the journal, drop the entry.
    fn finish(&mut self, w: &Work) -> Result<()> {
        let now = SystemTime::now();
        let record = self.states.record_mut(&w.host);
        record.confirm(w.record_type, w.target, now);
        if let Some(e) = &w.entry {
            record.heard(e.entry.requested_at, now);
        }
        self.publish_settled(w)?;
        self.journal.finish(&w.host, w.record_type)?;
        if let Some(e) = &w.entry {
            remove_file(&e.path);
        }
        self.retry.clear(&w.key());
        Ok(())
    }

    /// Publishes `w`'s host with the address now in the zone before its
    /// entry is removed, so the handler never sees neither (it would answer
    /// `good` and queue the same address again). The type stays withheld
    /// when a newer entry is already waiting in `new/`.
    fn publish_settled(&mut self, w: &Work) -> Result<()> {
        let key = (w.host.clone(), w.record_type);
        let newer = fs::symlink_metadata(self.layout.new.join(
            dyndns_core::queue::EntryName::pending(&w.host, w.record_type),
        ))
        .is_ok();
        if !newer {
            self.in_flux.remove(&key);
        }
        let changed = self.states.save(self.layout)?;
        self.publisher.publish_hosts(
            self.config,
            self.layout,
            self.states,
            self.in_flux,
            &changed,
        )
    }
}

/// `host`'s name relative to `zone`; never falls back to the apex.
fn label_in(host: &Hostname, zone: &Hostname) -> Result<String, String> {
    host.label_in_zone(zone).map(str::to_string).ok_or_else(|| {
        format!("{host} is not inside its configured zone {zone}; refusing to guess its name there")
    })
}

fn remove_file(path: &PathBuf) {
    if let Err(e) = fs::remove_file(path)
        && !is_not_found(&e)
    {
        error!("cannot remove {}: {e}", display_name(path));
    }
}

#[cfg(test)]
mod tests;
