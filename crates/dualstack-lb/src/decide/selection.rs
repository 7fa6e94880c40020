//! Stage 2, node selection: which nodes may serve a Service and with which addresses — the
//! node rules of the crate docs (readiness, agent Lease, labels, K3s pools, local endpoints,
//! an address of the Service's families), then, in pool mode, the pool addresses each
//! remaining node can carry. Port conflicts are the next stage's.

use std::net::IpAddr;

use dualstack_addr::Family;

use crate::allocate::Allocation;
use crate::conditions::Reason;
use crate::decision::{ChosenAddress, Conflict, DropReason, NodeVerdict};
use crate::nodes::NodeFacts;
use crate::pool_mode;

use super::PoolContext;
use super::messages::family_names;
use super::spec::Plan;

/// A per-node candidate: the node and its addresses for this Service.
pub(super) struct Candidate<'a> {
    pub node: &'a NodeFacts,
    pub addresses: Vec<IpAddr>,
    /// Filled by the conflicts stage: what this node's addresses lost.
    pub conflicts: Vec<Conflict>,
}

/// A verdict for every node (in `nodes` order) and the candidates: the nodes not dropped.
pub(super) fn candidates<'a>(
    plan: &Plan,
    nodes: &'a [NodeFacts],
    allow_list: bool,
) -> (Vec<NodeVerdict>, Vec<Candidate<'a>>) {
    // Sized up front: a pushed-to empty vector starts with room for 4, and the verdicts are
    // kept for every Service.
    let mut verdicts = Vec::with_capacity(nodes.len());
    let mut candidates = Vec::with_capacity(nodes.len());
    for node in nodes {
        let addresses: Vec<ChosenAddress> = plan
            .families
            .iter()
            .filter_map(|f| node.addresses.get(f))
            .cloned()
            .collect();
        let dropped = drop_reason(plan, node, allow_list, &addresses);
        if dropped.is_none() {
            candidates.push(Candidate {
                node,
                addresses: addresses.iter().map(|a| a.ip).collect(),
                conflicts: Vec::new(),
            });
        }
        verdicts.push(NodeVerdict {
            node: node.name.clone(),
            taken: false,
            dropped,
            addresses,
            conflicts: Vec::new(),
        });
    }
    (verdicts, candidates)
}

/// Why `node` does not serve the Service (the first rule that applies), if it does not.
fn drop_reason(
    plan: &Plan,
    node: &NodeFacts,
    allow_list: bool,
    addresses: &[ChosenAddress],
) -> Option<DropReason> {
    let has_local = || {
        plan.ports.iter().any(|p| {
            p.backends
                .iter()
                .any(|b| b.node.as_deref() == Some(node.name.as_str()))
        })
    };
    node.unavailable
        .clone()
        .or_else(|| node.excluded.then_some(DropReason::ExcludedByLabel))
        .or_else(|| {
            (allow_list && node.enablelb.as_deref() != Some("true")).then(|| {
                DropReason::NotEnabled {
                    value: node.enablelb.clone(),
                }
            })
        })
        .or_else(|| {
            plan.pool
                .as_ref()
                .filter(|pool| !node.pools.contains(*pool))
                .map(|pool| DropReason::NotInPool { pool: pool.clone() })
        })
        .or_else(|| (plan.local && !has_local()).then_some(DropReason::NoLocalEndpoint))
        .or_else(|| {
            addresses.is_empty().then(|| DropReason::NoAddress {
                families: family_names(&plan.families),
            })
        })
}

/// Pool mode: narrows the plan to the families the allocation serves and gives each
/// candidate the pool addresses it can carry (dropping the nodes that cannot announce).
/// Returns the allocation's notes, or the reason and message when it serves nothing.
pub(super) fn pool_addresses(
    allocation: &Allocation,
    context: &PoolContext<'_>,
    plan: &mut Plan,
    verdicts: &mut [NodeVerdict],
    candidates: &mut Vec<Candidate<'_>>,
) -> Result<Vec<String>, (Reason, String)> {
    let (served, notes): (Vec<Family>, Vec<String>) =
        pool_mode::verdict(allocation, &plan.families, plan.policy)?;
    plan.families.retain(|f| served.contains(f));
    candidates.retain_mut(|candidate| {
        let name = candidate.node.name.as_str();
        let Some(verdict) = verdicts.iter_mut().find(|v| v.node == name) else {
            return false;
        };
        let labels = context.labels.get(name).copied();
        match pool_mode::node_addresses(allocation, &served, context.pools, candidate.node, labels)
        {
            Ok(chosen) => {
                candidate.addresses = chosen.iter().map(|a| a.ip).collect();
                verdict.addresses = chosen;
                true
            }
            Err(why) => {
                verdict.dropped = Some(DropReason::CannotAnnounce { why });
                false
            }
        }
    });
    Ok(notes)
}
