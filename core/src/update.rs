//! The decision at the heart of an update request: for each requested host,
//! which answer to give and which queue entries to write. Lookups go through
//! [`UpdateContext`], so this logic does no I/O of its own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::SystemTime;

use crate::address::{check_publishable, combine_prefix};
use crate::answer::{Code, HostAnswer};
use crate::authorization::{Grant, may_update};
use crate::hostname::Hostname;
use crate::record_type::RecordType;
use crate::request::RequestedAddresses;
use crate::view::{HandlerSettings, HostView};

/// What the planner needs to look up.
pub trait UpdateContext {
    /// Error of a failed lookup (an I/O fault, answered with `911`).
    type Error;
    /// The configured host `name`, if any, with the applier's knowledge of
    /// it (applied addresses, rate limit, last heard).
    fn host(&mut self, name: &Hostname) -> Result<Option<HostView>, Self::Error>;
    /// The address of the pending (queued, not yet applied) entry for
    /// `host`/`record_type`, if there is one.
    fn pending_address(
        &mut self,
        host: &Hostname,
        record_type: RecordType,
    ) -> Result<Option<IpAddr>, Self::Error>;
}

/// A queue entry to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedWrite {
    /// The host.
    pub host: Hostname,
    /// A or AAAA.
    pub record_type: RecordType,
    /// The wanted address.
    pub address: IpAddr,
}

/// The outcome for one requested host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostOutcome {
    /// The host name as requested.
    pub requested: String,
    /// The answer line.
    pub answer: HostAnswer,
    /// Why, when the answer is a refusal (for the log, never sent).
    pub reason: Option<String>,
    /// True when the host was refused only because the request carried no
    /// address for its record types.
    pub missing_address: bool,
}

/// Why an answer is `abuse`: the host is over its change limit until then.
/// Its entries are still written, so the newest address is applied once the
/// limit allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimited {
    /// The host.
    pub host: Hostname,
    /// When it may change again.
    pub until: SystemTime,
}

/// The plan for a whole request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdatePlan {
    /// One outcome per requested host, in request order.
    pub outcomes: Vec<HostOutcome>,
    /// Entries to write before answering.
    pub writes: Vec<PlannedWrite>,
    /// Hosts answered `nochg` whose "last heard" time the applier should
    /// refresh (it is older than the handler's resolution).
    pub heard: Vec<Hostname>,
    /// Hosts answered `abuse` because of the change limit.
    pub limited: Vec<RateLimited>,
}

/// The authenticated user, as far as planning needs it.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    /// User name.
    pub name: &'a str,
    /// The user's grants.
    pub grants: &'a [Grant],
}

/// Plans an update for `hostnames` (already limited to the allowed count)
/// at time `now`.
pub fn plan_update<C: UpdateContext>(
    requester: Requester<'_>,
    settings: &HandlerSettings,
    hostnames: &[String],
    addresses: &RequestedAddresses,
    now: SystemTime,
    ctx: &mut C,
) -> Result<UpdatePlan, C::Error> {
    let mut plan = UpdatePlan::default();
    let mut decided: HashMap<Hostname, HostAnswer> = HashMap::new();
    for requested in hostnames {
        let refuse = |code: Code, reason: String| HostOutcome {
            requested: requested.clone(),
            answer: HostAnswer::Code(code),
            reason: Some(reason),
            missing_address: false,
        };
        let name = match Hostname::parse(requested) {
            Ok(name) => name,
            Err(e) => {
                plan.outcomes.push(refuse(Code::NotFqdn, e.to_string()));
                continue;
            }
        };
        if let Some(answer) = decided.get(&name) {
            plan.outcomes.push(HostOutcome {
                requested: requested.clone(),
                answer: answer.clone(),
                reason: Some("repeated in the request".into()),
                missing_address: false,
            });
            continue;
        }
        let Some(host) = ctx.host(&name)? else {
            plan.outcomes.push(refuse(
                Code::NoHost,
                format!("{name} is not a configured dynamic host"),
            ));
            continue;
        };
        if !may_update(
            requester.name,
            requester.grants,
            &name,
            settings.user_named_hosts,
        ) {
            plan.outcomes
                .push(refuse(Code::NoHost, format!("user may not update {name}")));
            continue;
        }
        if host.name != name || !settings.zones.contains(&host.zone) || !name.is_in_zone(&host.zone)
        {
            plan.outcomes.push(refuse(
                Code::NoHost,
                format!("{name} is not in an allowed zone"),
            ));
            continue;
        }
        let wanted = match wanted_addresses(&host, addresses) {
            Ok(w) if w.is_empty() => {
                let types: Vec<&str> = host.types.iter().map(|t| t.as_str()).collect();
                let mut outcome = refuse(
                    Code::NoHost,
                    format!(
                        "the request carries no address for {name}'s record types ({})",
                        types.join(", ")
                    ),
                );
                outcome.missing_address = true;
                plan.outcomes.push(outcome);
                continue;
            }
            Ok(w) => w,
            Err(reason) => {
                plan.outcomes.push(refuse(Code::BadAgent, reason));
                continue;
            }
        };
        let mut changed = false;
        for (record_type, address) in &wanted {
            // The newest known address: the pending entry's, else the applied one.
            let known = match ctx.pending_address(&name, *record_type)? {
                Some(pending) => Some(pending),
                None => host.live.settled(*record_type),
            };
            if known != Some(*address) {
                changed = true;
                plan.writes.push(PlannedWrite {
                    host: name.clone(),
                    record_type: *record_type,
                    address: *address,
                });
            }
        }
        let addrs: Vec<IpAddr> = wanted.iter().map(|(_, a)| *a).collect();
        // Only a change of what is in the zone counts against the limit (a
        // request that cancels a pending entry with the zone's address does not).
        let changes_zone = wanted
            .iter()
            .any(|(t, a)| host.live.applied(*t) != Some(*a));
        let answer = if host.live.is_limited(now) && changed && changes_zone {
            // Queued all the same (nothing is lost), applied when the limit allows.
            plan.limited.push(RateLimited {
                host: name.clone(),
                until: host.live.limited_until.unwrap_or(now),
            });
            HostAnswer::Code(Code::Abuse)
        } else if changed {
            HostAnswer::Good(addrs)
        } else {
            if host.live.heard_is_stale(now, settings.heard_resolution) {
                plan.heard.push(name.clone());
            }
            HostAnswer::NoChg(addrs)
        };
        let reason = matches!(answer, HostAnswer::Code(Code::Abuse)).then(|| {
            format!(
                "{name} is over its change limit until {}; the update stays queued",
                humantime::format_rfc3339_seconds(host.live.limited_until.unwrap_or(now))
            )
        });
        decided.insert(name, answer.clone());
        plan.outcomes.push(HostOutcome {
            requested: requested.clone(),
            answer,
            reason,
            missing_address: false,
        });
    }
    Ok(plan)
}

/// The addresses `host` should get from this request, A before AAAA. A host
/// with an interface identifier takes prefix + identifier when the request
/// carries a LAN prefix.
fn wanted_addresses(
    host: &HostView,
    req: &RequestedAddresses,
) -> Result<Vec<(RecordType, IpAddr)>, String> {
    let mut out = Vec::new();
    for t in RecordType::ALL {
        if !host.types.contains(&t) {
            continue;
        }
        let addr = match t {
            RecordType::A => req.v4.map(IpAddr::V4),
            RecordType::AAAA => match (host.ipv6_interface_id, req.lan_prefix) {
                (Some(iid), Some(prefix)) => {
                    let combined = IpAddr::V6(combine_prefix(prefix, iid));
                    check_publishable(combined)
                        .map_err(|e| format!("ip6lanprefix {prefix}: {e}"))?;
                    Some(combined)
                }
                _ => req.v6.map(IpAddr::V6),
            },
        };
        if let Some(a) = addr {
            out.push((t, a));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
