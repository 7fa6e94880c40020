//! Per-node facts that do not depend on the Service: can the node serve at all (not being
//! deleted, Ready, network available, not draining, agent Lease live), its selection labels,
//! and its best address per family.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use dualstack_addr::Family;

use crate::classify::{Scope, classify};
use crate::config::{Config, Mode};
use crate::decision::{AddressSource, ChosenAddress, DropReason};
use crate::labels::{
    DRAINING_TAINTS, ENABLELB_LABEL, EXCLUDE_LABEL, LBPOOL_LABEL, LBPOOL_LABEL_PREFIX,
    POOL_LABEL_PREFIX,
};
use crate::live::{ADDRESSES_ANNOTATION, LiveAddress, parse_live_addresses};
use crate::objects::{Lease, Node};
use crate::prefixes::{PREFIXES_ANNOTATION, ReportedPrefix, parse_prefixes};
use crate::time::Timestamp;

/// What the decision knows about one node before looking at any Service.
#[derive(Debug, Clone)]
pub(crate) struct NodeFacts {
    pub name: String,
    /// Why the node cannot serve any Service, if so.
    pub unavailable: Option<DropReason>,
    pub excluded: bool,
    /// Value of the `enablelb` label, if present.
    pub enablelb: Option<String>,
    /// Pools from the K3s labels (`…/lbpool=<pool>`, `lbpool.…/<pool>=true`) and our
    /// `pool.dualstack.io/<pool>=true` labels.
    pub pools: BTreeSet<String>,
    /// The node's agent Lease is live (it can announce pool addresses).
    pub agent_live: bool,
    /// Best address per family.
    pub addresses: BTreeMap<Family, ChosenAddress>,
    /// Why a family has no address (for explanations).
    pub missing: BTreeMap<Family, String>,
    /// The on-link global IPv6 prefixes the live agent reports, or why there are none to read.
    pub prefixes: Result<Vec<ReportedPrefix>, String>,
}

#[cfg(test)]
impl NodeFacts {
    /// A ready node with a live agent that reports `prefixes` (for unit tests).
    pub(crate) fn for_test(name: &str, prefixes: Vec<ReportedPrefix>) -> NodeFacts {
        NodeFacts {
            name: name.to_string(),
            unavailable: None,
            excluded: false,
            enablelb: None,
            pools: BTreeSet::new(),
            agent_live: true,
            addresses: BTreeMap::new(),
            missing: BTreeMap::new(),
            prefixes: Ok(prefixes),
        }
    }
}

pub(crate) fn node_facts(
    node: &Node,
    leases: &[&Lease],
    config: &Config,
    now: Timestamp,
) -> NodeFacts {
    let name = node.metadata.name.clone();
    let labels = &node.metadata.labels;
    let lease_name = Config::lease_name(&name);
    let lease = leases
        .iter()
        .find(|l| l.metadata.namespace == config.lease_namespace && l.metadata.name == lease_name);
    let display_lease = format!("{}/{lease_name}", config.lease_namespace);

    let lease_state = match lease {
        None => Err(DropReason::NoAgentLease {
            lease: display_lease.clone(),
        }),
        Some(lease) => lease_liveness(lease, &name, &display_lease, now),
    };

    let unavailable = deleting(node)
        .or_else(|| readiness(node))
        .or_else(|| network_unavailable(node))
        .or_else(|| draining(node))
        .or_else(|| match (&lease_state, config.mode) {
            // kube-proxy mode: the agent only reports addresses; no Lease at all is fine.
            (Err(DropReason::NoAgentLease { .. }), Mode::KubeProxy) => None,
            (Err(reason), _) => Some(reason.clone()),
            (Ok(_), _) => None,
        });

    let (live, live_problem) = match (lease, &lease_state) {
        (Some(lease), Ok(())) => match lease.metadata.annotations.get(ADDRESSES_ANNOTATION) {
            None => (
                None,
                Some(format!("agent Lease has no {ADDRESSES_ANNOTATION}")),
            ),
            Some(value) => match parse_live_addresses(value) {
                Ok(list) => (Some(list), None),
                Err(err) => (None, Some(format!("ignoring agent addresses: {err}"))),
            },
        },
        _ => (None, None),
    };

    let prefixes = match (lease, &lease_state) {
        (Some(lease), Ok(())) => match lease.metadata.annotations.get(PREFIXES_ANNOTATION) {
            None => Err(format!(
                "agent Lease has no {PREFIXES_ANNOTATION} (an agent older than prefix pools?)"
            )),
            Some(value) => parse_prefixes(value).map_err(|e| format!("ignoring prefixes: {e}")),
        },
        _ => Err("no live agent Lease".to_string()),
    };

    let mut addresses = BTreeMap::new();
    let mut missing = BTreeMap::new();
    for family in Family::BOTH {
        match choose_address(node, live.as_deref(), live_problem.as_deref(), family) {
            Ok(chosen) => {
                addresses.insert(family, chosen);
            }
            Err(why) => {
                missing.insert(family, why);
            }
        }
    }

    let mut pools = BTreeSet::new();
    if let Some(pool) = labels.get(LBPOOL_LABEL).filter(|p| !p.is_empty()) {
        pools.insert(pool.to_string());
    }
    for (key, value) in labels {
        let pool = key
            .strip_prefix(LBPOOL_LABEL_PREFIX)
            .or_else(|| key.strip_prefix(POOL_LABEL_PREFIX));
        if let Some(pool) = pool
            && value == "true"
            && !pool.is_empty()
        {
            pools.insert(pool.to_string());
        }
    }

    NodeFacts {
        name: name.to_string(),
        unavailable,
        excluded: labels.contains_key(EXCLUDE_LABEL) && !config.ignore_exclusion_label,
        enablelb: labels.get(ENABLELB_LABEL).map(str::to_string),
        pools,
        agent_live: lease_state.is_ok(),
        addresses,
        missing,
        prefixes,
    }
}

/// K3s treats a Node with `metadata.deletionTimestamp` as gone: it is not served while its
/// finalizers run.
fn deleting(node: &Node) -> Option<DropReason> {
    node.metadata
        .deletion_timestamp
        .map(|since| DropReason::Deleting {
            since: since.to_string(),
        })
}

/// `NetworkUnavailable=True` (set by the cloud provider or CNI until the node's network is
/// configured): the node cannot reach pods, so MetalLB stops announcing from it, and so do we.
/// Missing, `False` or `Unknown` counts as available, as for MetalLB.
fn network_unavailable(node: &Node) -> Option<DropReason> {
    node.status
        .conditions
        .iter()
        .find(|c| c.type_ == "NetworkUnavailable" && c.status == "True")
        .map(|c| DropReason::NetworkUnavailable {
            reason: c.reason.as_deref().map(str::to_string),
        })
}

fn readiness(node: &Node) -> Option<DropReason> {
    let ready = node.status.conditions.iter().find(|c| c.type_ == "Ready");
    match ready {
        Some(c) if c.status == "True" => None,
        Some(c) => Some(DropReason::NotReady {
            status: match &c.reason {
                Some(reason) => format!("{}, {reason}", c.status),
                None => c.status.to_string(),
            },
        }),
        None => Some(DropReason::NotReady {
            status: "missing".to_string(),
        }),
    }
}

fn draining(node: &Node) -> Option<DropReason> {
    if !node.spec.unschedulable {
        return None;
    }
    node.spec
        .taints
        .iter()
        .find(|t| DRAINING_TAINTS.contains(&t.key.as_str()) || t.effect == "NoExecute")
        .map(|t| DropReason::Draining {
            taint: format!("{}:{}", t.key, t.effect),
        })
}

fn lease_liveness(
    lease: &Lease,
    node: &str,
    display: &str,
    now: Timestamp,
) -> Result<(), DropReason> {
    match lease.spec.holder_identity.as_deref() {
        Some(holder) if holder == node => {}
        other => {
            return Err(DropReason::LeaseHolderMismatch {
                lease: display.to_string(),
                holder: other.unwrap_or_default().to_string(),
            });
        }
    }
    let (Some(renewed), Some(duration)) =
        (lease.spec.renew_time, lease.spec.lease_duration_seconds)
    else {
        return Err(DropReason::LeaseExpired {
            lease: display.to_string(),
            expired: "never (no renewTime or leaseDurationSeconds)".to_string(),
        });
    };
    let expires = renewed.plus_seconds(duration);
    if expires < now {
        return Err(DropReason::LeaseExpired {
            lease: display.to_string(),
            expired: expires.to_string(),
        });
    }
    Ok(())
}

/// Best address of `family`: the agent's live ones first (global before ULA/private, stable
/// before temporary, never deprecated or unusable), else the first usable `ExternalIP`,
/// else the first usable `InternalIP`.
fn choose_address(
    node: &Node,
    live: Option<&[LiveAddress]>,
    live_problem: Option<&str>,
    family: Family,
) -> Result<ChosenAddress, String> {
    let mut fallback_because = live_problem.map(str::to_string);
    if let Some(live) = live {
        let of_family: Vec<&LiveAddress> = live
            .iter()
            .filter(|l| Family::of(l.addr) == family)
            .collect();
        let best = of_family
            .iter()
            .filter(|l| !l.deprecated)
            .filter_map(|l| match classify(l.addr) {
                Scope::Unusable(_) => None,
                scope => Some((scope, l.temporary, l.addr)),
            })
            .min();
        match best {
            Some((scope, temporary, ip)) => {
                let mut detail = scope.describe(ip).to_string();
                if temporary {
                    detail.push_str(", temporary");
                }
                return Ok(ChosenAddress {
                    ip,
                    family,
                    source: AddressSource::Agent,
                    detail,
                });
            }
            None if of_family.is_empty() => {
                fallback_because = Some(format!("agent reports no {family} address"));
            }
            None => {
                fallback_because = Some(format!(
                    "agent reports only unusable {family} addresses ({})",
                    of_family
                        .iter()
                        .map(|l| {
                            let why = if l.deprecated {
                                "deprecated"
                            } else {
                                classify(l.addr).describe(l.addr)
                            };
                            format!("{} {why}", l.addr)
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    for (type_, source) in [
        ("ExternalIP", AddressSource::ExternalIp),
        ("InternalIP", AddressSource::InternalIp),
    ] {
        let found = node
            .status
            .addresses
            .iter()
            .filter(|a| a.type_ == type_)
            .filter_map(|a| a.address.trim().parse::<IpAddr>().ok())
            .filter(|ip| Family::of(*ip) == family)
            .find(|ip| !matches!(classify(*ip), Scope::Unusable(_)));
        if let Some(ip) = found {
            let mut detail = classify(ip).describe(ip).to_string();
            if let Some(why) = &fallback_because {
                detail = format!("{detail}; {why}");
            }
            return Ok(ChosenAddress {
                ip,
                family,
                source,
                detail,
            });
        }
    }
    Err(match fallback_because {
        Some(why) => format!("{why}, and no usable {family} ExternalIP or InternalIP"),
        None => format!("no usable {family} ExternalIP or InternalIP"),
    })
}

/// Whether any node has the `enablelb` label key (K3s allow-list mode).
pub(crate) fn allow_list_mode(nodes: &[NodeFacts]) -> bool {
    nodes.iter().any(|n| n.enablelb.is_some())
}
