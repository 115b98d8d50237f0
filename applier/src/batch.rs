//! One batch: claim what is pending, keep the newest address entry per host
//! and type (and every TXT entry), list each affected zone once, let
//! [`dyndns_core::zone_plan`] decide the Plesk calls, and execute them.
//! The batch itself only claims, executes, journals and reports.
//! Transient failures are scheduled for retry, permanent ones go to
//! `failed/` with a reason; neither stops the other entries.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use anyhow::Result;
use dyndns_core::Hostname;
use dyndns_core::config::Config;
use dyndns_core::queue::{Entry, EntryName, record_key};
use dyndns_core::state::HistoryEntry;
use dyndns_core::untrusted_text::escape;
use dyndns_core::zone_listing::ZoneListing;
use dyndns_core::zone_plan::{
    AddressDecision, AddressPlan, AddressWant, CallAction, CreatedValue, PlanLimits, PlannedCall,
    TxtRequest, TxtWant, plan_zone,
};
use tracing::{debug, error, info, warn};

use crate::backend::{BackendError, DnsBackend, RecordChange};
use crate::challenge_store::{ChallengeStore, CreatedRecord};
use crate::change::{Change, address_list};
use crate::journal::{Journal, JournalNote};
use crate::layout::{Layout, is_not_found};
use crate::publish::{InFlux, Publisher};
use crate::queue_reader::{
    QueueReader, ValidEntry, check_against_config, display_name, move_to_failed, pending_keys,
};
use crate::retry::RetrySchedule;
use crate::state_store::HostStates;
use challenges::{TxtWork, txt_key};

/// What a batch did.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Address changes applied.
    pub applied: Vec<Change>,
    /// ACME challenge values added or removed (requested or expired).
    pub challenges: usize,
    /// Entries whose wanted state already held.
    pub unchanged: usize,
    /// Entries and items moved to `failed/` (or that would be, in dry-run).
    pub rejected: usize,
    /// Entries kept for a later attempt (transient failure, or backoff not over).
    pub deferred: usize,
    /// Changes held back because their host is over its change limit.
    pub limited: usize,
    /// "Client heard" entries folded into host records.
    pub heard: usize,
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
struct AddressWork {
    want: AddressWant,
    /// The queue entry (absent when only a journal note asks for repair).
    entry: Option<ValidEntry>,
}

impl AddressWork {
    fn key(&self) -> String {
        record_key(&self.want.host, self.want.record_type)
    }
}

/// Everything one zone's listing serves.
#[derive(Debug, Default)]
struct ZoneWork {
    addresses: Vec<AddressWork>,
    txt: Vec<TxtWork>,
    created: Vec<CreatedRecord>,
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
        let entries = self.claim(&mut report)?;
        if !self.dry_run {
            self.withhold_changing(&entries)?;
        }
        report.scan_ms = started.elapsed().as_millis() as u64;

        let entries = self.note_heard(entries, &mut report);
        let mut zones: BTreeMap<Hostname, ZoneWork> = BTreeMap::new();
        let (addresses, txt) = self.newest(entries, &mut report);
        self.gather_addresses(addresses, &mut zones, &mut report)?;
        self.gather_txt(txt, &mut zones, &mut report);
        self.gather_expiring(&mut zones)?;
        self.keep_due(&mut zones, &mut report);

        for (zone, work) in zones {
            if (self.stop)() {
                report.interrupted = true;
                break;
            }
            self.run_zone(&zone, work, &mut report);
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

    /// Before the claim: the entries still in `new/` that change an address
    /// are published "in flux" while the handler can still see them there.
    /// Once claimed they leave `new/`, and a request for the old address
    /// that read the view before the mark would find neither the entry nor
    /// the mark and be answered `nochg` (lost). Costs a second read of each
    /// pending entry; only changing ones cost a view write.
    fn withhold_pending(&mut self) -> Result<()> {
        let pending: Vec<ValidEntry> = QueueReader::new(self.layout, self.config)
            .peek()
            .entries
            .into_iter()
            .filter(|e| e.fresh)
            .collect();
        self.withhold_changing(&pending)
    }

    /// Right after the claim: every record type whose claimed entry asks
    /// for another address than the one in the zone is published "in flux"
    /// before anything is changed, so that a request for the address about
    /// to be replaced is queued (good) instead of answered `nochg`. Entries
    /// that only confirm the zone's address cost no view write here (a
    /// burst of 10,000 unchanged entries stays cheap).
    fn withhold_changing(&mut self, entries: &[ValidEntry]) -> Result<()> {
        let mut changed: BTreeSet<Hostname> = BTreeSet::new();
        for e in entries {
            let Entry::Address(a) = &e.entry else {
                continue;
            };
            let current = self
                .states
                .get(&a.host)
                .and_then(|r| r.current(a.record_type))
                .map(|c| c.address);
            if current != Some(a.address) && self.in_flux.insert((a.host.clone(), a.record_type)) {
                changed.insert(a.host.clone());
            }
        }
        let changed: Vec<Hostname> = changed.into_iter().collect();
        self.publish_hosts(&changed)
    }

    /// Writes the view files of `hosts` (their live state, in flux or not).
    fn publish_hosts(&self, hosts: &[Hostname]) -> Result<()> {
        self.publisher
            .publish_hosts(self.config, self.layout, self.states, self.in_flux, hosts)
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
        self.in_flux.retain(|k| still_waiting.contains(k));
        changed.extend(released);
        changed.sort();
        changed.dedup();
        self.publish_hosts(&changed)
    }

    /// Claims pending entries (or, in dry-run, reads them) and counts the
    /// rejected ones.
    fn claim(&mut self, report: &mut BatchReport) -> Result<Vec<ValidEntry>> {
        let reader = QueueReader::new(self.layout, self.config);
        let collected = if self.dry_run {
            reader.peek()
        } else {
            reader.collect()?
        };
        report.rejected += collected.rejected.len();
        if self.dry_run {
            for (item, reason) in &collected.rejected {
                report
                    .dry_run_lines
                    .push(format!("would reject {item}: {reason}"));
            }
        }
        for e in &collected.entries {
            if e.fresh {
                self.retry.clear(&self.entry_key(e));
            }
        }
        Ok(collected.entries)
    }

    fn entry_key(&self, e: &ValidEntry) -> String {
        match &e.entry {
            Entry::Address(a) => record_key(&a.host, a.record_type),
            Entry::Txt(t) => txt_key(&t.host),
            Entry::Heard(_) => e.name.key(),
        }
    }

    /// Folds "heard" entries into their host's record (no Plesk call) and
    /// removes them; returns the other entries.
    fn note_heard(
        &mut self,
        entries: Vec<ValidEntry>,
        report: &mut BatchReport,
    ) -> Vec<ValidEntry> {
        let now = SystemTime::now();
        let mut rest = Vec::with_capacity(entries.len());
        for e in entries {
            let Entry::Heard(h) = &e.entry else {
                rest.push(e);
                continue;
            };
            report.heard += 1;
            if !self.dry_run {
                self.states
                    .update(&h.host, |r| r.heard(h.requested_at, now));
                remove_file(&e.path);
            }
        }
        rest
    }

    /// Keeps the newest address entry per host and type (older ones are
    /// superseded and removed) and every TXT entry.
    fn newest(
        &mut self,
        entries: Vec<ValidEntry>,
        report: &mut BatchReport,
    ) -> (Vec<ValidEntry>, Vec<ValidEntry>) {
        let mut newest: BTreeMap<String, ValidEntry> = BTreeMap::new();
        let mut txt = Vec::new();
        for e in entries {
            if matches!(e.entry, Entry::Txt(_)) {
                txt.push(e);
                continue;
            }
            let key = e.name.key();
            match newest.remove(&key) {
                None => {
                    newest.insert(key, e);
                }
                Some(old) => {
                    let (keep, drop) = if (e.entry.requested_at(), &e.name.claim)
                        >= (old.entry.requested_at(), &old.name.claim)
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
        (newest.into_values().collect(), txt)
    }

    /// Address work from the entries, and from journal notes of interrupted
    /// changes that have no entry left.
    fn gather_addresses(
        &mut self,
        entries: Vec<ValidEntry>,
        zones: &mut BTreeMap<Hostname, ZoneWork>,
        report: &mut BatchReport,
    ) -> Result<()> {
        let mut queued: HashSet<String> = HashSet::new();
        for e in entries {
            let Entry::Address(a) = &e.entry else {
                continue;
            };
            let Some(host) = self.config.host(&a.host) else {
                continue;
            };
            let label = match label_in(&a.host, &host.zone) {
                Ok(label) => label,
                Err(reason) => {
                    let key = record_key(&a.host, a.record_type);
                    self.reject(Some(&e), &key, &reason, report);
                    continue;
                }
            };
            let work = AddressWork {
                want: AddressWant {
                    host: a.host.clone(),
                    record_type: a.record_type,
                    label,
                    target: a.address,
                    interrupted: false,
                },
                entry: Some(e.clone()),
            };
            queued.insert(work.key());
            zones
                .entry(host.zone.clone())
                .or_default()
                .addresses
                .push(work);
        }
        for note in self.journal.all()? {
            if queued.contains(&record_key(&note.host, note.record_type)) {
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
                    zones
                        .entry(host.zone.clone())
                        .or_default()
                        .addresses
                        .push(AddressWork {
                            want: AddressWant {
                                host: note.host.clone(),
                                record_type: note.record_type,
                                label,
                                target: note.target,
                                interrupted: true,
                            },
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
        Ok(())
    }

    /// Forgets retry state of keys with nothing left to do, and holds back
    /// work whose backoff is not over.
    fn keep_due(&mut self, zones: &mut BTreeMap<Hostname, ZoneWork>, report: &mut BatchReport) {
        let live: HashSet<String> = zones
            .values()
            .flat_map(|z| {
                z.addresses
                    .iter()
                    .map(AddressWork::key)
                    .chain(z.txt.iter().map(TxtWork::key))
            })
            .collect();
        self.retry.retain(|k| live.contains(k));
        let now = SystemTime::now();
        let dry_run = self.dry_run;
        for work in zones.values_mut() {
            let before = work.addresses.len() + work.txt.len();
            work.addresses
                .retain(|w| dry_run || self.retry.is_due(&w.key(), now));
            work.txt
                .retain(|w| dry_run || self.retry.is_due(&w.key(), now));
            report.deferred += before - work.addresses.len() - work.txt.len();
        }
        let lifetime = self.config.acme.lifetime;
        zones.retain(|_, work| {
            !work.addresses.is_empty()
                || !work.txt.is_empty()
                || work.created.iter().any(|r| r.created_at + lifetime <= now)
        });
    }

    /// Lists one zone, plans it and executes the plan: TXT adds, address
    /// changes, TXT removals.
    fn run_zone(&mut self, zone: &Hostname, mut work: ZoneWork, report: &mut BatchReport) {
        report.listings += 1;
        let listing = match self.backend.list(zone) {
            Ok(l) => l,
            Err(e) => {
                let msg = format!("listing zone {zone} failed: {e}");
                for w in &work.addresses {
                    self.defer(&w.key(), &msg, report);
                }
                for w in &work.txt {
                    self.defer_txt(w, &msg, report);
                }
                return;
            }
        };
        let plan = self.plan(zone, &mut work, &listing, report);
        let store = ChallengeStore::new(self.layout.challenges.clone());
        let mut txt_failed: HashSet<Hostname> = HashSet::new();
        for p in &plan.txt {
            if let Err(msg) = self.txt_adds(zone, p, &work, &store, report) {
                txt_failed.insert(p.name.clone());
                self.txt_failed(p, &work, &msg, report);
            }
        }
        for p in &plan.addresses {
            if (self.stop)() {
                report.interrupted = true;
                break;
            }
            let w = &work.addresses[p.want];
            self.apply_address(zone, w, p, report);
        }
        for p in &plan.txt {
            if txt_failed.contains(&p.name) {
                continue;
            }
            match self.txt_deletes(zone, p, &store, report) {
                Ok(()) => {
                    self.publish_challenges(p, &work);
                    self.txt_done(p, &work, report)
                }
                Err(msg) => self.txt_failed(p, &work, &msg, report),
            }
        }
    }

    /// Asks [`plan_zone`]. Address work whose journal cannot be read is
    /// deferred and left out.
    fn plan(
        &mut self,
        zone: &Hostname,
        work: &mut ZoneWork,
        listing: &ZoneListing,
        report: &mut BatchReport,
    ) -> dyndns_core::zone_plan::ZonePlan {
        let mut readable = Vec::new();
        for mut w in std::mem::take(&mut work.addresses) {
            match self.journal.get(&w.want.host, w.want.record_type) {
                Ok(note) => {
                    w.want.interrupted |= note.is_some();
                    readable.push(w);
                }
                Err(e) => self.defer(&w.key(), &format!("reading the journal: {e:#}"), report),
            }
        }
        work.addresses = readable;
        let wants: Vec<AddressWant> = work.addresses.iter().map(|w| w.want.clone()).collect();
        let txt: Vec<TxtWant> = work
            .txt
            .iter()
            .map(|w| TxtWant {
                name: w.name.clone(),
                label: w.label.clone(),
                requests: w
                    .entries
                    .iter()
                    .enumerate()
                    .map(|(id, (_, t))| TxtRequest {
                        id,
                        operation: t.txt.clone(),
                        requested_at: t.requested_at,
                    })
                    .collect(),
            })
            .collect();
        let created: Vec<CreatedValue> = work
            .created
            .iter()
            .filter_map(|r| {
                Some(CreatedValue {
                    label: r.name.label_in_zone(zone)?.to_string(),
                    name: r.name.clone(),
                    value: r.value.to_string(),
                    created_at: r.created_at,
                })
            })
            .collect();
        let limits = PlanLimits {
            max_values: self.config.acme.max_values,
            lifetime: self.config.acme.lifetime,
            now: SystemTime::now(),
        };
        plan_zone(zone, listing, &wants, &txt, &created, &limits)
    }

    /// Makes one planned call (or, in dry-run, prints it).
    fn call(
        &mut self,
        zone: &Hostname,
        call: &PlannedCall,
        report: &mut BatchReport,
    ) -> Result<(), BackendError> {
        let change = RecordChange {
            zone,
            label: &call.label,
            record_type: call.record_type,
            value: &call.value,
        };
        let verb = match call.action {
            CallAction::Add => "--add",
            CallAction::Delete => "--del",
        };
        if self.dry_run {
            let line = self.backend.describe(verb, &change);
            report.dry_run_lines.push(format!("would run: {line}"));
            return Ok(());
        }
        match call.action {
            CallAction::Add => self.backend.add(&change).map(|_| ()),
            CallAction::Delete => self.backend.delete(&change),
        }
    }

    /// Brings one host and type to its target address.
    fn apply_address(
        &mut self,
        zone: &Hostname,
        w: &AddressWork,
        plan: &AddressPlan,
        report: &mut BatchReport,
    ) {
        if let Some(e) = &w.entry
            && let Entry::Address(a) = &e.entry
            && let Err(reason) = check_against_config(self.config, a)
        {
            self.reject(w.entry.as_ref(), &w.key(), &reason, report);
            return;
        }
        let (deleting, old) = match &plan.decision {
            AddressDecision::Rejected(reason) => {
                self.reject(w.entry.as_ref(), &w.key(), reason, report);
                return;
            }
            AddressDecision::Unchanged => {
                report.unchanged += 1;
                if self.dry_run {
                    report.dry_run_lines.push(format!(
                        "{} {} already has {}",
                        w.want.host, w.want.record_type, w.want.target
                    ));
                } else if let Err(e) = self.finish_address(w, false) {
                    self.defer(&w.key(), &format!("{e:#}"), report);
                }
                return;
            }
            AddressDecision::Change { deleting, old, .. } => (deleting, old),
        };
        let now = SystemTime::now();
        if !self.dry_run
            && w.entry.is_some()
            && let Some(until) = self.states.get(&w.want.host).and_then(|r| {
                r.next_change_allowed(
                    self.config.applier.host_change_limit,
                    self.config.applier.host_change_window,
                    now,
                )
            })
        {
            self.hold_back(w, until, report);
            return;
        }
        let started = Instant::now();
        if !self.dry_run && !deleting.is_empty() {
            let note = JournalNote {
                host: w.want.host.clone(),
                record_type: w.want.record_type,
                zone: zone.clone(),
                deleting: deleting.clone(),
                target: w.want.target,
                started: SystemTime::now(),
            };
            if let Err(e) = self.journal.begin(&note) {
                self.defer(&w.key(), &format!("{e:#}"), report);
                return;
            }
        }
        for c in &plan.calls {
            if let Err(e) = self.call(zone, c, report) {
                self.defer(&w.key(), &e.to_string(), report);
                return;
            }
        }
        let change = self.change_record(zone, w, old);
        if !self.dry_run {
            self.record_change(&change);
            if let Err(e) = self.finish_address(w, true) {
                self.defer(&w.key(), &format!("{e:#}"), report);
                return;
            }
            info!(
                host = %w.want.host,
                record_type = %w.want.record_type,
                ms = started.elapsed().as_millis() as u64,
                "applied {} {} {} -> {}",
                w.want.host,
                w.want.record_type,
                address_list(old),
                w.want.target
            );
        }
        report.applied.push(change);
    }

    fn change_record(&self, zone: &Hostname, w: &AddressWork, old: &[std::net::IpAddr]) -> Change {
        let e = w.entry.as_ref().map(|e| &e.entry);
        Change {
            host: w.want.host.clone(),
            record_type: w.want.record_type,
            zone: zone.clone(),
            old: old.to_vec(),
            new: w.want.target,
            user: e.map(|e| e.user().to_string()).unwrap_or_default(),
            client: e.and_then(Entry::client),
            requested_at: e.map(Entry::requested_at),
            applied_at: SystemTime::now(),
        }
    }

    /// Keeps a change of a host over its change limit queued until `until`
    /// and tells the handler (which answers `abuse` meanwhile).
    fn hold_back(&mut self, w: &AddressWork, until: SystemTime, report: &mut BatchReport) {
        report.limited += 1;
        report.deferred += 1;
        let record = self.states.record_mut(&w.want.host);
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
            warn!(host = %w.want.host, record_type = %w.want.record_type, "change limit reached: {msg}");
        }
        self.retry.postpone(&w.key(), until, msg);
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

    /// The wanted address holds: record it, close the journal, drop the
    /// entry. After a real change the host's view is published right away
    /// (`settle`); a confirmation of the zone's address is published with
    /// the rest at the end of the batch.
    fn finish_address(&mut self, w: &AddressWork, settle: bool) -> Result<()> {
        let now = SystemTime::now();
        let heard = w.entry.as_ref().map(|e| e.entry.requested_at());
        self.states.update(&w.want.host, |record| {
            record.confirm(w.want.record_type, w.want.target, now);
            if let Some(at) = heard {
                record.heard(at, now);
            }
        });
        if settle {
            self.publish_settled(w)?;
        }
        self.journal.finish(&w.want.host, w.want.record_type)?;
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
    fn publish_settled(&mut self, w: &AddressWork) -> Result<()> {
        let key = (w.want.host.clone(), w.want.record_type);
        let newer = fs::symlink_metadata(
            self.layout
                .new
                .join(EntryName::pending(&w.want.host, w.want.record_type)),
        )
        .is_ok();
        if !newer {
            self.in_flux.remove(&key);
        }
        let changed = self.states.save(self.layout)?;
        self.publish_hosts(&changed)
    }

    /// Moves an entry to `failed/` (nothing to move for a journal repair).
    fn reject(
        &mut self,
        entry: Option<&ValidEntry>,
        key: &str,
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

    fn defer(&mut self, key: &str, msg: &str, report: &mut BatchReport) {
        report.deferred += 1;
        if self.dry_run {
            report
                .dry_run_lines
                .push(format!("cannot plan {key}: {msg}"));
            return;
        }
        let cfg = &self.config.applier;
        let state = self.retry.failed(
            key,
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
            item = %key,
            attempt = state.attempts,
            retry_in = %humantime::format_duration(std::time::Duration::from_secs(wait.as_secs().max(1))),
            "transient failure, will retry: {msg}"
        );
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

mod challenges;
#[cfg(test)]
mod tests;
