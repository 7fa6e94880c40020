//! Stage 3, port conflicts: Services are decided oldest first, each claims every
//! (address, protocol, port) it is programmed on, and a younger Service gives up a whole
//! address where an older one holds any of its ports there. Also the `PortConflict`
//! condition that names the winners.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::rc::Rc;

use dualstack_ruleset::Protocol;

use crate::conditions::{Condition, ConditionType, Reason};
use crate::decision::Conflict;
use crate::service_key::ServiceKey;

use super::messages::list;
use super::selection::Candidate;
use super::spec::{Plan, PortPlan};

/// Who holds each (node address, protocol, port), filled oldest Service first (one shared
/// key per Service, not a copy per claim).
pub(super) type Claims = BTreeMap<(IpAddr, Protocol, u16), Rc<ServiceKey>>;

/// `PortConflict=False`.
pub(super) fn no_conflict() -> Condition {
    Condition::new(
        ConditionType::PortConflict,
        false,
        Reason::NoConflict,
        "no older Service claims the same node address, protocol and port".into(),
    )
}

/// Keeps on each candidate only the addresses where every port of the plan is free (or
/// already `me`'s), recording what the others lost.
pub(super) fn drop_lost(
    candidates: &mut [Candidate<'_>],
    plan: &Plan,
    claims: &Claims,
    me: &ServiceKey,
) {
    for candidate in candidates {
        let mut kept = Vec::new();
        for ip in &candidate.addresses {
            let lost: Vec<Conflict> = plan
                .ports
                .iter()
                .filter_map(|p| {
                    claims
                        .get(&(*ip, p.protocol, p.port))
                        .filter(|owner| owner.as_ref() != me)
                        .map(|owner| Conflict {
                            ip: *ip,
                            protocol: p.protocol,
                            port: p.port,
                            winner: ServiceKey::clone(owner),
                        })
                })
                .collect();
            if lost.is_empty() {
                kept.push(*ip);
            } else {
                candidate.conflicts.extend(lost);
            }
        }
        candidate.addresses = kept;
    }
}

/// `PortConflict=True` naming every lost address, protocol and port and its winner, or
/// [`no_conflict`].
pub(super) fn condition(candidates: &[Candidate<'_>]) -> Condition {
    let all: Vec<(&str, &Conflict)> = candidates
        .iter()
        .flat_map(|c| c.conflicts.iter().map(|x| (c.node.name.as_str(), x)))
        .collect();
    if all.is_empty() {
        return no_conflict();
    }
    Condition::new(
        ConditionType::PortConflict,
        true,
        Reason::PortConflict,
        format!(
            "not served where an older Service holds the same address, protocol and port: {}",
            list(all.iter().map(|(node, c)| format!(
                "{}/{} on {} (node {node}) is kept by {}",
                c.port, c.protocol, c.ip, c.winner
            )))
        ),
    )
}

/// `me` now holds every port of `ports` on `ip`.
pub(super) fn claim(claims: &mut Claims, ip: IpAddr, ports: &[PortPlan], me: &Rc<ServiceKey>) {
    for port in ports {
        claims.insert((ip, port.protocol, port.port), Rc::clone(me));
    }
}
