//! The decision's pool-mode steps, kept out of `decide.rs`: what a Service's allocation means
//! under its family policy, which of its pool addresses a node may carry, and — once every
//! Service is decided — the address records, the announcer of each address and pool usage.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use dualstack_addr::Family;
use dualstack_ruleset::{Destination, Frontend};

use crate::allocate::{Allocation, Request, parse_requested};
use crate::announce::{Announcement, PoolAddress, PoolReport, choose};
use crate::conditions::REASON_FAMILY_UNAVAILABLE;
use crate::decision::{AddressSource, ChosenAddress, ServiceDecision};
use crate::nodes::NodeFacts;
use crate::objects::Service;
use crate::pool::Pool;

/// The allocation request of a Service with these families, ports and traffic policy.
pub(crate) fn request(
    service: &Service,
    families: &[Family],
    ports: BTreeSet<(dualstack_ruleset::Protocol, u16)>,
    local: bool,
) -> Request {
    let annotations = &service.metadata.annotations;
    let text = |key: &str| {
        annotations
            .get(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    Request {
        key: format!("{}/{}", service.metadata.namespace, service.metadata.name),
        families: families.to_vec(),
        ports,
        local,
        pool: text(crate::allocate::POOL_ANNOTATION),
        requested: parse_requested(annotations.get(crate::allocate::ADDRESSES_ANNOTATION)),
        sharing_key: text(crate::allocate::SHARING_KEY_ANNOTATION),
        status: service
            .status
            .load_balancer
            .ingress
            .iter()
            .filter_map(|i| i.ip.as_deref().and_then(|ip| ip.trim().parse().ok()))
            .collect(),
    }
}

/// The families served and notes, or the (reason, message) of the condition that keeps the
/// Service from being served.
pub(crate) type Verdict = Result<(Vec<Family>, Vec<String>), (&'static str, String)>;

/// What an allocation means under the family policy: the families served and notes, or the
/// condition (reason, message) that keeps the Service from being served.
pub(crate) fn verdict(allocation: &Allocation, families: &[Family], policy: &str) -> Verdict {
    let mut notes = allocation.notes.clone();
    if let Some(whole) = allocation.failures.iter().find(|f| f.family.is_none()) {
        return Err((whole.reason, whole.message.clone()));
    }
    let served: Vec<Family> = families
        .iter()
        .copied()
        .filter(|f| allocation.assigned.iter().any(|a| a.family == *f))
        .collect();
    let failed = |f: &&crate::allocate::Failure| f.family.is_some();
    if policy == "RequireDualStack"
        && let Some(first) = allocation.failures.iter().find(failed)
    {
        let all = allocation
            .failures
            .iter()
            .map(|f| f.message.clone())
            .collect::<Vec<_>>()
            .join("; ");
        return Err((
            first.reason,
            format!("not served: RequireDualStack and {all}"),
        ));
    }
    if served.is_empty() {
        let first = allocation.failures.iter().find(failed);
        return Err(match first {
            Some(f) => (f.reason, format!("not served: {}", f.message)),
            None => (
                REASON_FAMILY_UNAVAILABLE,
                "not served: no pool address".into(),
            ),
        });
    }
    for failure in &allocation.failures {
        if let Some(family) = failure.family {
            notes.push(format!(
                "{} not served ({}): {}",
                family.k8s_name(),
                failure.reason,
                failure.message
            ));
        }
    }
    Ok((served, notes))
}

/// The pool addresses `node` may carry for this allocation, or why none.
pub(crate) fn node_addresses(
    allocation: &Allocation,
    served: &[Family],
    pools: &[Pool],
    node: &NodeFacts,
    labels: Option<&BTreeMap<String, String>>,
) -> Result<Vec<ChosenAddress>, String> {
    if !node.agent_live {
        return Err("no live agent Lease: nobody would announce".into());
    }
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let mut out = Vec::new();
    let mut why = Vec::new();
    for assigned in allocation
        .assigned
        .iter()
        .filter(|a| served.contains(&a.family))
    {
        let Some(pool) = pools.iter().find(|p| p.name == assigned.pool) else {
            continue;
        };
        if !pool.selects(labels) {
            why.push(format!(
                "pool {:?} nodeSelector does not select it",
                pool.name
            ));
        } else if pool.interfaces.is_empty() && !node.addresses.contains_key(&assigned.family) {
            why.push(format!(
                "no {} address to find the interface for {} (pool {:?} names no interfaces)",
                assigned.family.k8s_name(),
                assigned.ip,
                pool.name
            ));
        } else {
            out.push(ChosenAddress {
                ip: assigned.ip,
                family: assigned.family,
                source: AddressSource::Pool,
                detail: format!("{}, {}", pool.name, assigned.origin),
            });
        }
    }
    if out.is_empty() {
        why.dedup();
        return Err(why.join("; "));
    }
    Ok(out)
}

/// Pool reports for every pool, with usage from `addresses`.
fn reports(pools: &[Pool], addresses: &[PoolAddress]) -> Vec<PoolReport> {
    pools
        .iter()
        .map(|pool| PoolReport {
            name: pool.name.clone(),
            addresses: pool
                .spans
                .iter()
                .map(|s| {
                    if s.first == s.last {
                        s.first_addr().to_string()
                    } else {
                        format!("{}-{}", s.first_addr(), s.last_addr())
                    }
                })
                .collect(),
            auto_assign: pool.auto_assign,
            node_selector: pool
                .node_selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            interfaces: pool.interfaces.clone(),
            ranges: if pool.usable() {
                pool.spans
                    .iter()
                    .map(|s| (s.first_addr(), s.last_addr()))
                    .collect()
            } else {
                Vec::new()
            },
            usage: Family::BOTH
                .into_iter()
                .filter(|f| pool.spans.iter().any(|s| s.family == *f))
                .map(|f| {
                    (
                        f,
                        pool.size(f).to_string(),
                        addresses
                            .iter()
                            .filter(|a| a.pool == pool.name && a.family == f)
                            .count(),
                    )
                })
                .collect(),
            errors: pool.errors.clone(),
        })
        .collect()
}

/// One served pool Service, as the decision loop saw it.
pub(crate) struct Served<'a> {
    pub allocation: &'a Allocation,
    pub decision: &'a ServiceDecision,
    /// The frontends the Service programs, per node.
    pub programmed: Vec<(String, Frontend)>,
}

/// The address records, announcements and pool reports, and the detail of each node verdict
/// updated to say whether the node announces or stands by.
pub(crate) fn finish(
    served: Vec<Served<'_>>,
    pools: &[Pool],
    nodes: &[NodeFacts],
) -> (Vec<PoolAddress>, Vec<Announcement>, Vec<PoolReport>) {
    let mut records: BTreeMap<IpAddr, (PoolAddress, Option<BTreeSet<String>>)> = BTreeMap::new();
    for s in &served {
        let me = format!("{}/{}", s.decision.namespace, s.decision.name);
        for assigned in &s.allocation.assigned {
            if !s.decision.ingress.iter().any(|i| i.ip == assigned.ip) {
                continue;
            }
            let carriers: BTreeSet<String> = s
                .programmed
                .iter()
                .filter(|(_, f)| {
                    matches!(&f.destination, Destination::Addresses(list) if list.contains(&assigned.ip))
                })
                .map(|(node, _)| node.clone())
                .collect();
            let (record, candidates) = records.entry(assigned.ip).or_insert_with(|| {
                (
                    PoolAddress {
                        ip: assigned.ip,
                        family: assigned.family,
                        pool: assigned.pool.clone(),
                        services: Vec::new(),
                        announcer: None,
                        candidates: Vec::new(),
                    },
                    None,
                )
            });
            record.services.push((me.clone(), assigned.origin));
            *candidates = Some(match candidates.take() {
                None => carriers,
                Some(before) => before.intersection(&carriers).cloned().collect(),
            });
        }
    }
    let mut addresses = Vec::new();
    let mut announcements = Vec::new();
    for (ip, (mut record, candidates)) in records {
        let candidates = candidates.unwrap_or_default();
        record.announcer = choose(ip, &candidates);
        record.candidates = candidates.into_iter().collect();
        if let Some(node) = &record.announcer {
            let pool = pools.iter().find(|p| p.name == record.pool);
            announcements.push(Announcement {
                node: node.clone(),
                ip,
                pool: record.pool.clone(),
                interfaces: pool.map(|p| p.interfaces.clone()).unwrap_or_default(),
                via: nodes
                    .iter()
                    .find(|n| &n.name == node)
                    .and_then(|n| n.addresses.get(&record.family))
                    .map(|a| a.ip),
            });
        }
        addresses.push(record);
    }
    announcements.sort();
    let reports = reports(pools, &addresses);
    (addresses, announcements, reports)
}

/// Marks each pool address in the node verdicts as announced or standby.
pub(crate) fn label_verdicts(services: &mut [ServiceDecision], addresses: &[PoolAddress]) {
    let announcers: BTreeMap<IpAddr, Option<&str>> = addresses
        .iter()
        .map(|a| (a.ip, a.announcer.as_deref()))
        .collect();
    for service in services {
        for verdict in &mut service.why.nodes {
            for chosen in &mut verdict.addresses {
                if chosen.source != AddressSource::Pool {
                    continue;
                }
                let announcer = announcers.get(&chosen.ip).copied().flatten();
                let role = if announcer == Some(verdict.node.as_str()) {
                    "announces"
                } else {
                    "standby"
                };
                chosen.detail.push_str(&format!(", {role}"));
            }
        }
    }
}
