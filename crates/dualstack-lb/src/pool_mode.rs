//! The decision's pool-mode steps, kept out of `decide.rs`: what a Service's allocation means
//! under its family policy, which of its pool addresses a node may carry, and — once every
//! Service is decided — the address records, the announcer of each address and pool usage.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use dualstack_addr::Family;
use dualstack_ruleset::{Destination, Frontend};

use crate::allocate::{Allocation, Request, parse_requested};
use crate::announce::{Announcement, PoolAddress, PoolReport, choose};
use crate::conditions::{Condition, ConditionType, Reason};
use crate::decision::{AddressSource, ChosenAddress, ServiceDecision};
use crate::label_map::LabelMap;
use crate::nodes::NodeFacts;
use crate::objects::Service;
use crate::pool::{Pool, combine};
use crate::prefix_pool::{self, PrefixView};
use crate::service_key::ServiceKey;

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
        key: ServiceKey::of(service),
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
pub(crate) type Verdict = Result<(Vec<Family>, Vec<String>), (Reason, String)>;

/// What an allocation means under the family policy: the families served and notes, or the
/// condition (reason, message) that keeps the Service from being served.
pub(crate) fn verdict(
    allocation: &Allocation,
    families: &[Family],
    policy: crate::policy::IpFamilyPolicy,
) -> Verdict {
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
    if policy == crate::policy::IpFamilyPolicy::RequireDualStack
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
                Reason::FamilyUnavailable,
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
    labels: Option<&LabelMap>,
) -> Result<Vec<ChosenAddress>, String> {
    if !node.agent_live {
        return Err("no live agent Lease: nobody would announce".into());
    }
    let empty = LabelMap::new();
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
        } else if let Some(used) = &assigned.prefix {
            // The prefix names its interface on each node that has it on-link.
            if used.prefix.nodes.contains_key(&node.name) {
                out.push(ChosenAddress {
                    ip: assigned.ip,
                    family: assigned.family,
                    source: AddressSource::Pool,
                    detail: format!(
                        "{}, prefix {} + host {} ({})",
                        pool.name, used.prefix.subnet, used.host, assigned.origin
                    ),
                });
            } else {
                why.push(format!(
                    "does not report prefix {} (pool {:?} follows the nodes' prefix)",
                    used.prefix.subnet, pool.name
                ));
            }
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

/// The spans of `pool` as real address ranges: a prefix-following pool's host parts in
/// each of its active prefixes.
fn ranges(pool: &Pool, view: Option<&PrefixView>) -> Vec<(IpAddr, IpAddr)> {
    let mut out = Vec::new();
    for span in &pool.spans {
        match (pool.follows(), span.family) {
            (Some(_), Family::V6) => {
                for state in view.into_iter().flat_map(PrefixView::active) {
                    out.push((
                        IpAddr::V6(combine(state.subnet, span.first_addr())),
                        IpAddr::V6(combine(state.subnet, span.last_addr())),
                    ));
                }
            }
            _ => out.push((span.first_addr(), span.last_addr())),
        }
    }
    out
}

/// Pool reports for every pool, with usage from `addresses`.
fn reports(
    pools: &[Pool],
    addresses: &[PoolAddress],
    views: &BTreeMap<String, PrefixView>,
) -> Vec<PoolReport> {
    pools
        .iter()
        .map(|pool| PoolReport {
            name: pool.name.clone(),
            addresses: pool
                .spans
                .iter()
                .map(|s| {
                    let text = if s.first == s.last {
                        s.first_addr().to_string()
                    } else {
                        format!("{}-{}", s.first_addr(), s.last_addr())
                    };
                    match (pool.follows(), s.family) {
                        (Some(_), Family::V6) => format!("hosts {text} in the nodes' prefix"),
                        _ => text,
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
                ranges(pool, views.get(&pool.name))
            } else {
                Vec::new()
            },
            prefixes: views.get(&pool.name).cloned(),
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
                            .map(|a| pool.key_of(a.ip))
                            .collect::<BTreeSet<_>>()
                            .len(),
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
    views: &BTreeMap<String, PrefixView>,
) -> (Vec<PoolAddress>, Vec<Announcement>, Vec<PoolReport>) {
    let mut records: BTreeMap<IpAddr, (PoolAddress, Option<BTreeSet<String>>)> = BTreeMap::new();
    // Node → interface, for addresses of a prefix that nodes report on an interface.
    let mut prefix_interfaces: BTreeMap<IpAddr, BTreeMap<String, String>> = BTreeMap::new();
    for s in &served {
        let me = s.decision.key();
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
            if let Some(used) = &assigned.prefix {
                prefix_interfaces.insert(assigned.ip, used.prefix.nodes.clone());
            }
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
            let mut interfaces = pool.map(|p| p.interfaces.clone()).unwrap_or_default();
            if interfaces.is_empty()
                && let Some(interface) = prefix_interfaces.get(&ip).and_then(|m| m.get(node))
            {
                interfaces.push(interface.clone());
            }
            announcements.push(Announcement {
                node: node.clone(),
                ip,
                pool: record.pool.clone(),
                interfaces,
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
    let reports = reports(pools, &addresses, views);
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

/// For a Service with addresses from a prefix-following pool: the addresses behind its
/// ingress (for explanations), the `PrefixMismatch` condition, and the Events of a prefix
/// change (new address published, old one withdrawn) against its published `status`.
pub(crate) fn prefix_outcome(
    service: &mut ServiceDecision,
    allocation: &Allocation,
    status: &[IpAddr],
    pools: &[Pool],
    views: &BTreeMap<String, PrefixView>,
) {
    let following: BTreeSet<&str> = allocation
        .assigned
        .iter()
        .filter(|a| a.prefix.is_some())
        .map(|a| a.pool.as_str())
        .collect();
    if following.is_empty() {
        return;
    }
    let published: Vec<IpAddr> = service.ingress.iter().map(|i| i.ip).collect();
    service.why.prefix_addresses = allocation
        .assigned
        .iter()
        .filter(|a| a.prefix.is_some() && published.contains(&a.ip))
        .cloned()
        .collect();
    let mismatches: Vec<String> = following
        .iter()
        .filter_map(|pool| {
            let text = views.get(*pool)?.mismatch.as_ref()?;
            Some(format!("pool {pool:?}: {text}"))
        })
        .collect();
    let condition = if mismatches.is_empty() {
        Condition::new(
            ConditionType::PrefixMismatch,
            false,
            Reason::PrefixesAgree,
            "the pool's nodes report the same IPv6 prefixes".into(),
        )
    } else {
        Condition::new(
            ConditionType::PrefixMismatch,
            true,
            Reason::PrefixMismatch,
            format!(
                "nodes report different IPv6 prefixes ({}); addresses in a prefix are announced only by nodes that have it",
                mismatches.join("; ")
            ),
        )
    };
    service
        .events
        .extend(crate::conditions::events_for(std::slice::from_ref(
            &condition,
        )));
    service.conditions.push(condition);
    service.events.extend(prefix_pool::transition_events(
        allocation, status, &published, pools, views,
    ));
}
