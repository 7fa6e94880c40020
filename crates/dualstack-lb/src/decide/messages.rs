//! The human text of conditions and notes: short lists, family names, why no node is left
//! and why a family is missing. Only words; every decision is made by the other stages.

use dualstack_addr::Family;

use crate::conditions::Reason;
use crate::decision::DropReason;
use crate::nodes::NodeFacts;

use super::selection::Candidate;
use super::spec::Plan;

/// At most this many items are listed in a condition message.
const MESSAGE_ITEMS: usize = 5;

/// `items` joined by `; `, the first [`MESSAGE_ITEMS`] only, then `and N more`.
pub(super) fn list(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    let mut text = items
        .iter()
        .take(MESSAGE_ITEMS)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > MESSAGE_ITEMS {
        text.push_str(&format!("; and {} more", items.len() - MESSAGE_ITEMS));
    }
    text
}

/// `IPv4 or IPv6`.
pub(super) fn family_names(families: &[Family]) -> String {
    families
        .iter()
        .map(|f| f.k8s_name())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Why `family` is not served although nodes are left: every address of it lost a port
/// conflict, or no candidate has one (each node's reason listed).
pub(super) fn missing_family(candidates: &[Candidate<'_>], family: Family) -> String {
    let lost = candidates
        .iter()
        .any(|c| c.conflicts.iter().any(|x| Family::of(x.ip) == family));
    if lost {
        format!("every {} address lost a port conflict", family.k8s_name())
    } else {
        format!(
            "no eligible node has a usable {} address ({})",
            family.k8s_name(),
            list(candidates.iter().map(|c| format!(
                "{}: {}",
                c.node.name,
                c.node.missing.get(&family).cloned().unwrap_or_default()
            )))
        )
    }
}

/// The reason and message of `LoadBalancerReady=False` when node selection left no node.
pub(super) fn no_candidates_message(
    plan: &Plan,
    nodes: &[NodeFacts],
    verdicts: &[crate::decision::NodeVerdict],
) -> (Reason, String) {
    if nodes.is_empty() {
        return (Reason::NoEligibleNodes, "the snapshot has no nodes".into());
    }
    let reasons: Vec<&DropReason> = verdicts.iter().filter_map(|v| v.dropped.as_ref()).collect();
    let all = |f: &dyn Fn(&DropReason) -> bool| reasons.iter().all(|r| f(r));
    if all(&|r| matches!(r, DropReason::NoAddress { .. })) {
        return (Reason::FamilyUnavailable, no_address_message(plan, nodes));
    }
    if plan.local
        && all(&|r| {
            matches!(
                r,
                DropReason::NoLocalEndpoint | DropReason::NoAddress { .. }
            )
        })
    {
        let eligible: Vec<String> = verdicts
            .iter()
            .filter(|v| v.dropped == Some(DropReason::NoLocalEndpoint))
            .map(|v| v.node.clone())
            .collect();
        return (
            Reason::NoLocalEndpoints,
            format!(
                "externalTrafficPolicy is Local and no eligible node ({}) has a ready endpoint",
                eligible.join(", ")
            ),
        );
    }
    if all(&|r| matches!(r, DropReason::ExcludedByLabel)) {
        return (
            Reason::NoEligibleNodes,
            format!(
                "no eligible node: all {} node(s) carry label {} ({})",
                nodes.len(),
                crate::labels::EXCLUDE_LABEL,
                nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    let listed = list(
        verdicts
            .iter()
            .filter_map(|v| v.dropped.as_ref().map(|r| format!("{}: {r}", v.node))),
    );
    (
        Reason::NoEligibleNodes,
        format!("no eligible node: {listed}"),
    )
}

/// Every node lacks an address of the Service's families: which, per node.
fn no_address_message(plan: &Plan, nodes: &[NodeFacts]) -> String {
    let families = family_names(&plan.families);
    format!(
        "no eligible node has a usable {families} address ({})",
        list(nodes.iter().map(|n| format!(
            "{}: {}",
            n.name,
            plan.families
                .iter()
                .filter_map(|f| n.missing.get(f).cloned())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    )
}
