//! The ACME challenge part of a batch: the TXT entries of each
//! `_acme-challenge` name, the values the applier created (and which of
//! them expire), and executing what [`dyndns_core::zone_plan`] decided for
//! them: adds first, removals after the address changes.

use std::collections::BTreeMap;
use std::time::SystemTime;

use anyhow::Result;
use dyndns_core::Hostname;
use dyndns_core::challenge::ChallengeValue;
use dyndns_core::queue::{Entry, TxtEntry};
use dyndns_core::zone_plan::{RequestOutcome, TxtPlan};
use tracing::{debug, error, info, warn};

use super::{Batch, BatchReport, ZoneWork, label_in, remove_file};
use crate::backend::DnsBackend;
use crate::challenge_store::{ChallengeStore, CreatedRecord};
use crate::queue_reader::ValidEntry;

/// The TXT entries of one `_acme-challenge` name.
#[derive(Debug, Clone)]
pub(super) struct TxtWork {
    pub(super) name: Hostname,
    pub(super) label: String,
    pub(super) entries: Vec<(ValidEntry, TxtEntry)>,
}

impl TxtWork {
    pub(super) fn key(&self) -> String {
        txt_key(&self.name)
    }
}

pub(super) fn txt_key(name: &Hostname) -> String {
    format!("{name}/TXT")
}

impl<B: DnsBackend> Batch<'_, B> {
    /// TXT work, one per challenge name.
    pub(super) fn gather_txt(
        &mut self,
        entries: Vec<ValidEntry>,
        zones: &mut BTreeMap<Hostname, ZoneWork>,
        report: &mut BatchReport,
    ) {
        let mut by_name: BTreeMap<Hostname, Vec<(ValidEntry, TxtEntry)>> = BTreeMap::new();
        for e in entries {
            if let Entry::Txt(t) = &e.entry {
                let t = t.clone();
                by_name.entry(t.host.clone()).or_default().push((e, t));
            }
        }
        for (name, entries) in by_name {
            // The reader checked the name against the config already.
            let Some(host) = self.config.challenge_host(&name) else {
                continue;
            };
            let label = match label_in(&name, &host.zone) {
                Ok(label) => label,
                Err(reason) => {
                    for (e, _) in &entries {
                        self.reject(Some(e), &txt_key(&name), &reason, report);
                    }
                    continue;
                }
            };
            zones
                .entry(host.zone.clone())
                .or_default()
                .txt
                .push(TxtWork {
                    name,
                    label,
                    entries,
                });
        }
    }

    /// The challenge values the applier created, for every zone it is
    /// listing anyway or where one has outlived `acme.lifetime`.
    pub(super) fn gather_expiring(
        &mut self,
        zones: &mut BTreeMap<Hostname, ZoneWork>,
    ) -> Result<()> {
        let store = ChallengeStore::new(self.layout.challenges.clone());
        let now = SystemTime::now();
        let lifetime = self.config.acme.lifetime;
        let mut by_zone: BTreeMap<Hostname, Vec<CreatedRecord>> = BTreeMap::new();
        for record in store.all()? {
            if !self.config.zone_allowed(&record.zone) {
                debug!(name = %record.name, "challenge value in a zone that is no longer allowed; left alone");
                continue;
            }
            by_zone.entry(record.zone.clone()).or_default().push(record);
        }
        for (zone, records) in by_zone {
            let due = records.iter().any(|r| r.created_at + lifetime <= now);
            if due || zones.contains_key(&zone) {
                zones.entry(zone).or_default().created = records;
            }
        }
        Ok(())
    }

    /// Rejects the name's refused requests, records and adds its new values.
    pub(super) fn txt_adds(
        &mut self,
        zone: &Hostname,
        plan: &TxtPlan,
        work: &ZoneWork,
        store: &ChallengeStore,
        report: &mut BatchReport,
    ) -> Result<(), String> {
        if let Some(w) = work.txt.iter().find(|w| w.name == plan.name) {
            for (id, outcome) in &plan.outcomes {
                if let (RequestOutcome::Rejected(reason), Some((e, _))) =
                    (outcome, w.entries.get(*id))
                {
                    self.reject(Some(e), &w.key(), reason, report);
                }
            }
        }
        let now = SystemTime::now();
        for value in plan.adding.iter().chain(&plan.refreshed) {
            if self.dry_run {
                break;
            }
            let Ok(value) = ChallengeValue::parse(value) else {
                continue;
            };
            let record = CreatedRecord {
                name: plan.name.clone(),
                zone: zone.clone(),
                value,
                created_at: now,
            };
            store.record(&record).map_err(|e| format!("{e:#}"))?;
        }
        for c in plan.add_calls() {
            self.call(zone, &c, report).map_err(|e| e.to_string())?;
            report.challenges += 1;
            if !self.dry_run {
                info!(name = %plan.name, "added challenge value {}", c.value);
            }
        }
        Ok(())
    }

    /// Deletes the values asked away and the expired ones; forgets them.
    pub(super) fn txt_deletes(
        &mut self,
        zone: &Hostname,
        plan: &TxtPlan,
        store: &ChallengeStore,
        report: &mut BatchReport,
    ) -> Result<(), String> {
        for c in plan.delete_calls() {
            if plan.expired.contains(&c.value) && !self.dry_run {
                info!(name = %plan.name, lifetime = %humantime::format_duration(self.config.acme.lifetime), "removing challenge value {} that was not cleaned up", c.value);
            }
            self.call(zone, &c, report).map_err(|e| e.to_string())?;
            report.challenges += 1;
            if !self.dry_run
                && let Ok(value) = ChallengeValue::parse(&c.value)
            {
                store
                    .forget(&plan.name, &value)
                    .map_err(|e| format!("{e:#}"))?;
            }
        }
        if !self.dry_run {
            for value in &plan.forget {
                if let Ok(value) = ChallengeValue::parse(value) {
                    store
                        .forget(&plan.name, &value)
                        .map_err(|e| format!("{e:#}"))?;
                }
            }
        }
        Ok(())
    }

    /// The name's calls all succeeded: records the values it now holds,
    /// oldest first, in its host's record and publishes them, before its
    /// entries are removed, so that a `present` waiting in the handler sees
    /// its value as soon as it is in the zone.
    pub(super) fn publish_challenges(&mut self, plan: &TxtPlan, work: &ZoneWork) {
        if self.dry_run {
            return;
        }
        let Some(host) = plan
            .name
            .acme_challenge_target()
            .filter(|h| self.config.host(h).is_some())
        else {
            return;
        };
        let now = SystemTime::now();
        let created_at = |value: &String| {
            if plan.adding.contains(value) || plan.refreshed.contains(value) {
                now
            } else {
                work.created
                    .iter()
                    .find(|r| r.name == plan.name && r.value.as_str() == value)
                    .map_or(SystemTime::UNIX_EPOCH, |r| r.created_at)
            }
        };
        let mut values = plan.values.clone();
        values.sort_by_key(created_at);
        let known = self.states.get(&host).map(|r| r.challenges.as_slice());
        if known.unwrap_or_default() == values.as_slice() {
            return;
        }
        self.states.record_mut(&host).challenges = values;
        let published = self
            .states
            .save(self.layout)
            .and_then(|changed| self.publish_hosts(&changed));
        if let Err(e) = published {
            error!(name = %plan.name, "cannot publish the challenge values: {e:#}");
        }
    }

    /// The name's calls all succeeded: its accepted entries are done.
    pub(super) fn txt_done(&mut self, plan: &TxtPlan, work: &ZoneWork, report: &mut BatchReport) {
        let Some(w) = work.txt.iter().find(|w| w.name == plan.name) else {
            return;
        };
        for (id, outcome) in &plan.outcomes {
            let Some((e, t)) = w.entries.get(*id) else {
                continue;
            };
            match outcome {
                RequestOutcome::Rejected(_) => continue,
                RequestOutcome::Unchanged => report.unchanged += 1,
                RequestOutcome::Applied => {}
            }
            if self.dry_run {
                report
                    .dry_run_lines
                    .push(format!("{} {}: done", w.name, t.txt));
            } else {
                debug!(name = %w.name, "{} done", t.txt);
                remove_file(&e.path);
            }
        }
        self.retry.clear(&w.key());
    }

    /// A call of the name failed: its entries wait for the retry.
    pub(super) fn txt_failed(
        &mut self,
        plan: &TxtPlan,
        work: &ZoneWork,
        msg: &str,
        report: &mut BatchReport,
    ) {
        match work.txt.iter().find(|w| w.name == plan.name) {
            Some(w) => {
                let w = w.clone();
                self.defer_txt(&w, msg, report);
            }
            // Only expired values: the next batch tries again.
            None => warn!(name = %plan.name, "removing expired challenge values failed: {msg}"),
        }
    }

    pub(super) fn defer_txt(&mut self, w: &TxtWork, msg: &str, report: &mut BatchReport) {
        self.defer(&w.key(), msg, report);
        report.deferred += w.entries.len().saturating_sub(1);
    }
}
