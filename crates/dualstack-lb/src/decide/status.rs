//! Stage 4, status: from the candidates that survived the conflicts, the families served,
//! the `LoadBalancerReady` condition, the published ingress and the frontends each node
//! programs — or, when the Service cannot be served as asked, a refusal that publishes and
//! programs nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use dualstack_addr::Family;
use dualstack_ruleset::{Destination, Frontend, Selection};

use crate::conditions::{Condition, ConditionType, Reason, events_for};
use crate::config::Config;
use crate::decision::{DropReason, Ingress, NodeVerdict, ServiceDecision, ServiceWhy};
use crate::objects::Service;
use crate::policy::IpFamilyPolicy;
use crate::service_key::ServiceKey;

use super::conflicts::{Claims, claim};
use super::messages::missing_family;
use super::selection::Candidate;
use super::spec::Plan;

/// The Service's decision from its explanation, ingress and two conditions (Events mirror the
/// problem ones).
pub(super) fn outcome(
    service: &Service,
    why: ServiceWhy,
    ingress: Vec<Ingress>,
    ready: Condition,
    conflict: Condition,
) -> ServiceDecision {
    let conditions = vec![ready, conflict];
    ServiceDecision {
        namespace: service.metadata.namespace.to_string(),
        name: service.metadata.name.to_string(),
        ingress,
        events: events_for(&conditions),
        conditions,
        why,
    }
}

/// The plan's families that some candidate still has an address of.
pub(super) fn served_families(plan: &Plan, candidates: &[Candidate<'_>]) -> Vec<Family> {
    plan.families
        .iter()
        .copied()
        .filter(|f| {
            candidates
                .iter()
                .any(|c| c.addresses.iter().any(|a| Family::of(*a) == *f))
        })
        .collect()
}

/// `LoadBalancerReady=False` when the Service is not served at all: a `RequireDualStack`
/// family is missing (`FamilyUnavailable`) or every address was lost (`PortConflict`).
pub(super) fn refusal(
    plan: &Plan,
    served: &[Family],
    candidates: &[Candidate<'_>],
) -> Option<Condition> {
    let mut required_missing: Vec<String> = Vec::new();
    if plan.policy == IpFamilyPolicy::RequireDualStack {
        if plan.families.len() < 2 {
            required_missing.push(format!(
                "RequireDualStack but spec.ipFamilies lists only {}",
                plan.families[0].k8s_name()
            ));
        }
        for family in &plan.families {
            if !served.contains(family) {
                required_missing.push(format!(
                    "RequireDualStack and {} is unavailable: {}",
                    family.k8s_name(),
                    missing_family(candidates, *family)
                ));
            }
        }
    }
    if !required_missing.is_empty() {
        Some(Condition::new(
            ConditionType::LoadBalancerReady,
            false,
            Reason::FamilyUnavailable,
            format!("not served: {}", required_missing.join("; ")),
        ))
    } else if served.is_empty() {
        Some(Condition::new(
            ConditionType::LoadBalancerReady,
            false,
            Reason::PortConflict,
            "not served: every candidate address is held by an older Service on the same protocol and port".into(),
        ))
    } else {
        None
    }
}

/// A refused Service is programmed nowhere: the verdicts only record the conflicts (a node
/// that lost every address is dropped for them).
pub(super) fn record_refused(verdicts: &mut [NodeVerdict], candidates: &[Candidate<'_>]) {
    for candidate in candidates {
        if let Some(v) = verdicts.iter_mut().find(|v| v.node == candidate.node.name) {
            v.conflicts = candidate.conflicts.clone();
            if candidate.addresses.is_empty() && !candidate.conflicts.is_empty() {
                v.dropped = Some(DropReason::PortConflict);
            }
        }
    }
}

/// Notes for the families of the plan that are not served (`PreferDualStack`).
pub(super) fn note_missing(
    plan: &Plan,
    served: &[Family],
    candidates: &[Candidate<'_>],
    why: &mut ServiceWhy,
) {
    for family in &plan.families {
        if !served.contains(family) {
            why.notes.push(format!(
                "{} not served: {}",
                family.k8s_name(),
                missing_family(candidates, *family)
            ));
        }
    }
}

/// What a served Service publishes and programs.
pub(super) struct Served {
    pub ingress: Vec<Ingress>,
    pub ready: Condition,
    /// `(node, frontend)`.
    pub programmed: Vec<(String, Frontend)>,
}

/// Serves the Service on every candidate with an address left: claims its ports there,
/// takes the node in its verdict, and builds the ingress, `Ready` condition and frontends.
pub(super) fn serve(
    plan: &Plan,
    served: &[Family],
    candidates: &[Candidate<'_>],
    verdicts: &mut [NodeVerdict],
    config: &Config,
    claims: &mut Claims,
    me: &std::rc::Rc<ServiceKey>,
) -> Served {
    let ip_mode = config.mode.ip_mode();
    let mut programmed = Vec::new();
    let mut taken_nodes = 0usize;
    let mut by_family: BTreeMap<Family, BTreeSet<IpAddr>> = BTreeMap::new();
    for candidate in candidates {
        let verdict = verdicts.iter_mut().find(|v| v.node == candidate.node.name);
        let Some(verdict) = verdict else { continue };
        verdict.conflicts = candidate.conflicts.clone();
        verdict
            .addresses
            .retain(|a| candidate.addresses.contains(&a.ip));
        if candidate.addresses.is_empty() {
            verdict.dropped = Some(DropReason::PortConflict);
            continue;
        }
        verdict.taken = true;
        taken_nodes += 1;
        let mut destination = candidate.addresses.clone();
        destination.sort();
        for ip in &destination {
            by_family.entry(Family::of(*ip)).or_default().insert(*ip);
            claim(claims, *ip, &plan.ports, me);
        }
        programmed.extend(frontends(plan, candidate, destination, me));
    }
    let ingress: Vec<Ingress> = plan
        .families
        .iter()
        .flat_map(|f| by_family.get(f).into_iter().flatten())
        .map(|ip| Ingress { ip: *ip, ip_mode })
        .collect();
    let ready = Condition::new(
        ConditionType::LoadBalancerReady,
        true,
        Reason::Ready,
        format!(
            "served on {taken_nodes} node(s) for {} with ipMode {ip_mode}",
            served
                .iter()
                .map(|f| f.k8s_name())
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    );
    Served {
        ingress,
        ready,
        programmed,
    }
}

/// One frontend per port on `candidate`'s node, bound to `destination` (sorted), with the
/// backends of the families it has a destination for (only the node's own when Local).
fn frontends(
    plan: &Plan,
    candidate: &Candidate<'_>,
    destination: Vec<IpAddr>,
    me: &ServiceKey,
) -> Vec<(String, Frontend)> {
    let node_families: BTreeSet<Family> = destination.iter().map(|a| Family::of(*a)).collect();
    plan.ports
        .iter()
        .map(|port| {
            let backends = port
                .backends
                .iter()
                .filter(|b| !plan.local || b.node.as_deref() == Some(candidate.node.name.as_str()))
                .filter(|b| node_families.contains(&b.backend.family()))
                .map(|b| b.backend)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            (
                candidate.node.name.clone(),
                Frontend {
                    name: format!("{me}:{}", port.label),
                    destination: Destination::Addresses(destination.clone()),
                    protocol: port.protocol,
                    port: port.port,
                    source_ranges: plan.source_ranges.clone(),
                    backends,
                    selection: Selection::Random,
                    masquerade: !plan.local,
                },
            )
        })
        .collect()
}
