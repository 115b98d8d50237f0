//! The batch's decision for one zone, as a pure function: what is wanted
//! (one address per host and type; the TXT requests of each `_acme-challenge`
//! name), what the zone holds (its listing) and what the applier knows (a
//! crash journal note, the challenge values it created and when) go in; the
//! ordered Plesk calls (`--add`/`--del` with exact values) and the outcome of
//! every wanted item come out. The applier only executes, records and
//! reports what this decides.
//!
//! Rules:
//! - an address record is changed only when it exists (or a journal note
//!   proves the applier itself deleted it); `--del` of every other value of
//!   that host and type, then `--add` of the target;
//! - the TXT requests of a name are applied in `requested_at` order on top of
//!   the values the zone holds: a present adds its value (nothing to do when
//!   it is there; rejected when the name would hold more than `max_values`),
//!   a cleanup removes its value, a clear removes them all;
//! - a challenge value the applier created longer than `lifetime` ago is
//!   removed, unless a request of this batch presents it again;
//! - TXT adds come first (an ACME client is waiting for them), then the
//!   address changes, then the TXT removals.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::hostname::Hostname;
use crate::queue::TxtOperation;
use crate::record_type::RecordType;
use crate::zone_listing::ZoneListing;

/// The record type of a planned call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallType {
    /// An address record (A or AAAA).
    Address(RecordType),
    /// A TXT record.
    Txt,
}

impl fmt::Display for CallType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallType::Address(t) => write!(f, "{t}"),
            CallType::Txt => f.write_str("TXT"),
        }
    }
}

/// Add or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallAction {
    /// `--add`.
    Add,
    /// `--del`.
    Delete,
}

/// One backend call.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlannedCall {
    /// Add or delete.
    pub action: CallAction,
    /// The record type.
    pub record_type: CallType,
    /// The name relative to the zone (`""` for the apex).
    pub label: String,
    /// The exact value (as the zone shows it, for a delete).
    pub value: String,
}

impl fmt::Display for PlannedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.action {
            CallAction::Add => "add",
            CallAction::Delete => "delete",
        };
        write!(
            f,
            "{verb} {} {:?} {}",
            self.record_type, self.label, self.value
        )
    }
}

/// A host and type to bring to one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressWant {
    /// The host.
    pub host: Hostname,
    /// A or AAAA.
    pub record_type: RecordType,
    /// The host's name relative to the zone.
    pub label: String,
    /// The wanted address.
    pub target: IpAddr,
    /// True when a crash journal note proves the applier deleted this
    /// record itself: then it may add it although the zone has none.
    pub interrupted: bool,
}

/// What to do about one [`AddressWant`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressDecision {
    /// The zone holds exactly the target.
    Unchanged,
    /// Delete `deleting`, then add the target unless it is there.
    Change {
        /// Values to delete, as the zone shows them.
        deleting: Vec<String>,
        /// The address deleted values had (parsed), for reports.
        old: Vec<IpAddr>,
        /// False when the target is already in the zone.
        adding: bool,
    },
    /// Not done, for this reason (the entry goes to `failed/`).
    Rejected(String),
}

/// The plan for one [`AddressWant`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPlan {
    /// Index of the want in the input.
    pub want: usize,
    /// The decision.
    pub decision: AddressDecision,
    /// The calls, in order.
    pub calls: Vec<PlannedCall>,
}

/// One queued TXT request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtRequest {
    /// The caller's id for it (reported back with its outcome).
    pub id: usize,
    /// What it asks.
    pub operation: TxtOperation,
    /// When it was accepted (requests apply in this order, then by id).
    pub requested_at: SystemTime,
}

/// The TXT requests of one `_acme-challenge` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtWant {
    /// The `_acme-challenge.<host>` name.
    pub name: Hostname,
    /// Its label relative to the zone.
    pub label: String,
    /// The requests, in any order.
    pub requests: Vec<TxtRequest>,
}

/// A challenge value the applier created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedValue {
    /// The `_acme-challenge` name.
    pub name: Hostname,
    /// Its label relative to the zone.
    pub label: String,
    /// The value.
    pub value: String,
    /// When the applier added it.
    pub created_at: SystemTime,
}

/// What became of one [`TxtRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestOutcome {
    /// It changes the zone.
    Applied,
    /// The zone already is as asked.
    Unchanged,
    /// Not done, for this reason.
    Rejected(String),
}

/// The plan for one `_acme-challenge` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtPlan {
    /// The name.
    pub name: Hostname,
    /// Its label relative to the zone.
    pub label: String,
    /// The values the name holds once the plan is carried out: the zone's
    /// (less the removed ones) in listing order, then the added ones in
    /// request order.
    pub values: Vec<String>,
    /// Each request's outcome, in the order they were applied.
    pub outcomes: Vec<(usize, RequestOutcome)>,
    /// Values to add (the applier records each as created, before adding it).
    pub adding: Vec<String>,
    /// Values to delete because a request asked.
    pub removing: Vec<String>,
    /// Values to delete because they outlived the lifetime.
    pub expired: Vec<String>,
    /// Values the applier created that a request of this batch presented
    /// again while they were there: their creation time starts anew.
    pub refreshed: Vec<String>,
    /// Created values the zone no longer holds (removed by someone else, or
    /// an add that never happened): the applier forgets them.
    pub forget: Vec<String>,
}

impl TxtPlan {
    /// The adds of this name.
    pub fn add_calls(&self) -> Vec<PlannedCall> {
        self.calls(CallAction::Add, &self.adding)
    }

    /// The deletes of this name (asked for, then expired).
    pub fn delete_calls(&self) -> Vec<PlannedCall> {
        let all: Vec<String> = self.removing.iter().chain(&self.expired).cloned().collect();
        self.calls(CallAction::Delete, &all)
    }

    fn calls(&self, action: CallAction, values: &[String]) -> Vec<PlannedCall> {
        values
            .iter()
            .map(|v| PlannedCall {
                action,
                record_type: CallType::Txt,
                label: self.label.clone(),
                value: v.clone(),
            })
            .collect()
    }
}

/// The settings the decision depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanLimits {
    /// Most TXT values one name may hold.
    pub max_values: usize,
    /// How long a created challenge value may stay.
    pub lifetime: Duration,
    /// The time of the decision.
    pub now: SystemTime,
}

/// The decision for one zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZonePlan {
    /// One plan per address want, in input order.
    pub addresses: Vec<AddressPlan>,
    /// One plan per challenge name with requests or created values.
    pub txt: Vec<TxtPlan>,
}

impl ZonePlan {
    /// Every call, in the order the applier makes them.
    pub fn calls(&self) -> Vec<PlannedCall> {
        let mut out: Vec<PlannedCall> = self.txt.iter().flat_map(TxtPlan::add_calls).collect();
        out.extend(self.addresses.iter().flat_map(|a| a.calls.iter().cloned()));
        out.extend(self.txt.iter().flat_map(TxtPlan::delete_calls));
        out
    }
}

/// Decides what to do in `zone`, whose listing is `listing`. `created` holds
/// the challenge values the applier created in this zone.
pub fn plan_zone(
    zone: &Hostname,
    listing: &ZoneListing,
    addresses: &[AddressWant],
    txt: &[TxtWant],
    created: &[CreatedValue],
    limits: &PlanLimits,
) -> ZonePlan {
    let addresses = addresses
        .iter()
        .enumerate()
        .map(|(i, w)| plan_address(zone, i, w, listing))
        .collect();
    // Every name with requests or created values, in name order.
    let mut names: BTreeMap<&Hostname, (&str, Vec<&TxtRequest>, Vec<&CreatedValue>)> =
        BTreeMap::new();
    for w in txt {
        let slot = names.entry(&w.name).or_insert((&w.label, vec![], vec![]));
        slot.1.extend(&w.requests);
    }
    for c in created {
        let slot = names.entry(&c.name).or_insert((&c.label, vec![], vec![]));
        slot.2.push(c);
    }
    let txt = names
        .into_iter()
        .map(|(name, (label, requests, created))| {
            plan_txt(name, label, requests, &created, listing, limits)
        })
        .collect();
    ZonePlan { addresses, txt }
}

fn plan_address(
    zone: &Hostname,
    index: usize,
    w: &AddressWant,
    listing: &ZoneListing,
) -> AddressPlan {
    let current: Vec<_> = listing
        .addresses_of(w.host.as_str(), w.record_type)
        .collect();
    let has_target = current.iter().any(|r| r.address == w.target);
    let stale: Vec<_> = current.iter().filter(|r| r.address != w.target).collect();
    let (decision, calls) = if has_target && stale.is_empty() {
        (AddressDecision::Unchanged, vec![])
    } else if current.is_empty() && !w.interrupted {
        (
            AddressDecision::Rejected(format!(
                "zone {zone} has no {} record for {}; create it once in Plesk (the applier only updates existing records)",
                w.record_type, w.host
            )),
            vec![],
        )
    } else {
        let call = |action, value: String| PlannedCall {
            action,
            record_type: CallType::Address(w.record_type),
            label: w.label.clone(),
            value,
        };
        let mut calls: Vec<PlannedCall> = stale
            .iter()
            .map(|r| call(CallAction::Delete, r.value.clone()))
            .collect();
        if !has_target {
            calls.push(call(CallAction::Add, w.target.to_string()));
        }
        (
            AddressDecision::Change {
                deleting: stale.iter().map(|r| r.value.clone()).collect(),
                old: stale.iter().map(|r| r.address).collect(),
                adding: !has_target,
            },
            calls,
        )
    };
    AddressPlan {
        want: index,
        decision,
        calls,
    }
}

fn plan_txt(
    name: &Hostname,
    label: &str,
    mut requests: Vec<&TxtRequest>,
    created: &[&CreatedValue],
    listing: &ZoneListing,
    limits: &PlanLimits,
) -> TxtPlan {
    requests.sort_by_key(|r| (r.requested_at, r.id));
    let current: Vec<String> = dedup(listing.txt_of(name.as_str()).map(str::to_string));
    let presented: BTreeSet<&str> = requests
        .iter()
        .filter_map(|r| match &r.operation {
            TxtOperation::Present { value } => Some(value.as_str()),
            _ => None,
        })
        .collect();
    let expired: Vec<String> = created
        .iter()
        .filter(|c| {
            current.contains(&c.value)
                && !presented.contains(c.value.as_str())
                && c.created_at + limits.lifetime <= limits.now
        })
        .map(|c| c.value.clone())
        .collect();
    // The working set: the zone's values less the expired ones.
    let mut values: Vec<String> = current
        .iter()
        .filter(|v| !expired.contains(v))
        .cloned()
        .collect();
    let outcomes: Vec<(usize, RequestOutcome)> = requests
        .iter()
        .map(|r| r.id)
        .zip(apply_txt_requests(
            name,
            &mut values,
            requests.iter().map(|r| &r.operation),
            limits.max_values,
        ))
        .collect();
    let adding: Vec<String> = values
        .iter()
        .filter(|v| !current.contains(v))
        .cloned()
        .collect();
    let removing: Vec<String> = current
        .iter()
        .filter(|v| !values.contains(v) && !expired.contains(v))
        .cloned()
        .collect();
    let refreshed: Vec<String> = created
        .iter()
        .filter(|c| values.contains(&c.value) && current.contains(&c.value))
        .filter(|c| presented.contains(c.value.as_str()))
        .map(|c| c.value.clone())
        .collect();
    let forget: Vec<String> = created
        .iter()
        .filter(|c| !current.contains(&c.value) && !adding.contains(&c.value))
        .map(|c| c.value.clone())
        .collect();
    TxtPlan {
        name: name.clone(),
        label: label.to_string(),
        values,
        outcomes,
        adding,
        removing,
        expired,
        refreshed,
        forget,
    }
}

/// Applies TXT requests, already in the order they were made, to the
/// values of `name`: a present adds its value (nothing to do when it is
/// there; rejected when the name already holds `max_values`), a cleanup
/// removes its value, a clear removes them all. The applier plans with this
/// and the handler bounds values with it, so both count alike.
pub fn apply_txt_requests<'a>(
    name: &Hostname,
    values: &mut Vec<String>,
    requests: impl IntoIterator<Item = &'a TxtOperation>,
    max_values: usize,
) -> Vec<RequestOutcome> {
    requests
        .into_iter()
        .map(|operation| match operation {
            TxtOperation::Present { value } => {
                if values.iter().any(|v| v == value.as_str()) {
                    RequestOutcome::Unchanged
                } else if values.len() >= max_values {
                    RequestOutcome::Rejected(format!(
                        "{name} already holds {} TXT values, the most allowed (acme.max_values = {max_values})",
                        values.len(),
                    ))
                } else {
                    values.push(value.to_string());
                    RequestOutcome::Applied
                }
            }
            TxtOperation::Cleanup { value } => {
                let before = values.len();
                values.retain(|v| v != value.as_str());
                if values.len() < before {
                    RequestOutcome::Applied
                } else {
                    RequestOutcome::Unchanged
                }
            }
            TxtOperation::Clear {} => {
                if values.is_empty() {
                    RequestOutcome::Unchanged
                } else {
                    values.clear();
                    RequestOutcome::Applied
                }
            }
        })
        .collect()
}

fn dedup(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests;
