//! Pools whose IPv6 addresses follow the prefix the nodes learn from the router
//! (`spec.ipv6Prefix`): an ISP that hands out a new prefix every day renumbers nothing by
//! hand. Pure: the prefixes come from the agents' Lease reports ([`crate::prefixes`]), the
//! clock is `now`.
//!
//! **Address = current prefix + fixed host part.** Allocation hands out *host parts* (the low
//! 64 bits, from `spec.ipv6Prefix.hosts`) exactly like addresses: sticky from the published
//! status (whatever prefix the status address has, its host part is kept), or the one the
//! Service asks for in `dualstack.io/addresses` (`::f5`), or the lowest free one. Host parts
//! are unique among all prefix-following pools. Each host part is then combined with every
//! *active* prefix of the pool (`expand`): during a change a Service has two IPv6 addresses.
//!
//! **Which prefixes.** The pool's nodes are those its `nodeSelector` selects that can serve
//! and have a live agent Lease. Each reports its on-link global prefixes (never of temporary
//! addresses or ULAs), with interface and lifetimes; the pool keeps those on
//! `spec.ipv6Prefix.interface` (if set) and maps each to the /64 it uses (`prefixLength` bits
//! of the learned prefix, then `subnetId`). A /64 reported by any of the pool's nodes is
//! known; its lifetimes are the longest any node reports, `since` the earliest.
//!
//! **Make-before-break.** A prefix is published the moment a node reports it. A prefix `P`
//! is *superseded* when a prefix `Q` appeared after it (`Q.since > P.since`) and is preferred
//! for longer (`Q.preferred > P.preferred`). A superseded prefix stays published and served
//! until its valid lifetime ends on every node — or, with `graceSeconds`, at most that long
//! after `Q` appeared — then it is withdrawn. A prefix that was not superseded is never
//! withdrawn while valid: a flapping router advertisement (A, B, A again) leaves A current
//! and B merely lingering until it expires, so nothing churns.
//!
//! **Problems** name the nodes: no node reports a prefix (the IPv6 family then fails with
//! `NoPrefix`), or nodes report different ones (`PrefixMismatch`, after a settle time of
//! [`SETTLE_SECONDS`] so a router advertisement reaching nodes a moment apart is not one).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use dualstack_addr::Family;
use ipnet::Ipv6Net;
use serde::Serialize;

use crate::allocate::{Allocation, Assigned, Failure};
use crate::conditions::{Event, EventType, Reason};
use crate::label_map::LabelMap;
use crate::nodes::NodeFacts;
use crate::pool::{Follow, Pool, combine};
pub use crate::prefix_state::{PrefixState, PrefixStatus, PrefixUse};
use crate::prefixes::{ReportedPrefix, followable};
use crate::time::Timestamp;

/// A prefix that one node has and another lacks is a mismatch only after this long.
pub const SETTLE_SECONDS: i64 = 10;

/// What a prefix-following pool sees of its nodes' prefixes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrefixView {
    /// The pool's host parts, first and last (`::f0`, `::ff`).
    pub hosts: (IpAddr, IpAddr),
    /// Every /64 reported, sorted.
    pub prefixes: Vec<PrefixState>,
    /// Nodes disagree: which node has which prefixes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mismatch: Option<String>,
    /// Why there is no active prefix (when there is none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
    /// The first instant after `now` at which time alone changes this view.
    #[serde(skip)]
    pub next_change: Option<Timestamp>,
}

impl PrefixView {
    /// The published prefixes.
    pub fn active(&self) -> impl Iterator<Item = &PrefixState> {
        self.prefixes.iter().filter(|p| p.active())
    }

    /// The state of the /64 that holds `ip`, if reported.
    pub fn of(&self, ip: IpAddr) -> Option<&PrefixState> {
        let IpAddr::V6(v6) = ip else { return None };
        self.prefixes.iter().find(|p| p.subnet.contains(&v6))
    }
}

/// `a` is later than `b`, `None` meaning forever.
fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> bool {
    match (a, b) {
        (None, None) => false,
        (None, Some(_)) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a > b,
    }
}

fn longest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    if later(a, b) || a.is_none() { a } else { b }
}

/// The nodes whose prefixes count for `pool`: selected, able to serve, live agent.
fn pool_nodes<'n>(
    pool: &Pool,
    nodes: &'n [NodeFacts],
    labels: &BTreeMap<&str, &LabelMap>,
) -> (Vec<&'n NodeFacts>, Vec<String>) {
    let empty = LabelMap::new();
    let mut used = Vec::new();
    let mut skipped = Vec::new();
    for node in nodes {
        let node_labels = labels.get(node.name.as_str()).copied().unwrap_or(&empty);
        if !pool.selects(node_labels) {
            continue;
        }
        match (&node.unavailable, node.agent_live) {
            (Some(reason), _) => skipped.push(format!("{}: {reason}", node.name)),
            (None, false) => skipped.push(format!("{}: no live agent Lease", node.name)),
            (None, true) => used.push(node),
        }
    }
    (used, skipped)
}

/// The prefixes `node` reports that count for `follow`, mapped to the /64 used.
fn node_subnets<'r>(
    follow: &'r Follow,
    reports: &'r [ReportedPrefix],
    now: Timestamp,
) -> impl Iterator<Item = (Ipv6Net, &'r ReportedPrefix)> + 'r {
    reports
        .iter()
        .filter(move |r| r.valid_at(now) && followable(r.prefix.network()))
        .filter(move |r| follow.interface.as_ref().is_none_or(|i| *i == r.interface))
        .map(move |r| (follow.subnet(r.prefix), r))
}

/// What `pool` (which follows the prefix as `follow`) sees at `now`.
pub(crate) fn view(
    pool: &Pool,
    follow: &Follow,
    nodes: &[NodeFacts],
    labels: &BTreeMap<&str, &LabelMap>,
    now: Timestamp,
) -> PrefixView {
    let (used, skipped) = pool_nodes(pool, nodes, labels);
    let mut by_subnet: BTreeMap<Ipv6Net, PrefixState> = BTreeMap::new();
    let mut per_node: BTreeMap<&str, BTreeSet<Ipv6Net>> = BTreeMap::new();
    // Nodes whose reports cannot be read, and why.
    let mut unreadable: BTreeMap<&str, &str> = BTreeMap::new();
    for node in &used {
        let set = per_node.entry(node.name.as_str()).or_default();
        match &node.prefixes {
            Err(why) => {
                unreadable.insert(node.name.as_str(), why.as_str());
            }
            Ok(reports) => {
                for (subnet, r) in node_subnets(follow, reports, now) {
                    set.insert(subnet);
                    let state = by_subnet.entry(subnet).or_insert_with(|| PrefixState {
                        subnet,
                        learned: BTreeSet::new(),
                        nodes: BTreeMap::new(),
                        since: r.since,
                        preferred_until: r.preferred_until,
                        valid_until: r.valid_until,
                        status: PrefixStatus::Preferred,
                        superseded_by: None,
                        withdraw_at: None,
                    });
                    state.learned.insert(r.prefix);
                    state
                        .nodes
                        .entry(node.name.clone())
                        .or_insert_with(|| r.interface.clone());
                    state.since = match (state.since, r.since) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    state.preferred_until = longest(state.preferred_until, r.preferred_until);
                    state.valid_until = longest(state.valid_until, r.valid_until);
                }
            }
        }
    }

    // Supersession and withdrawal.
    let snapshot: Vec<PrefixState> = by_subnet.values().cloned().collect();
    let mut next: Vec<Timestamp> = Vec::new();
    for state in by_subnet.values_mut() {
        // Appeared after it (a prefix of unknown age counts as the oldest) and is
        // preferred for longer.
        let appeared_after = |q: &PrefixState| match (q.since, state.since) {
            (Some(q), Some(p)) => q > p,
            (Some(_), None) => true,
            _ => false,
        };
        let newer = snapshot
            .iter()
            .filter(|q| {
                q.subnet != state.subnet
                    && appeared_after(q)
                    && later(q.preferred_until, state.preferred_until)
            })
            .min_by_key(|q| q.since);
        if let Some(q) = newer {
            state.superseded_by = Some((q.subnet, q.since));
            let grace_end = match (follow.grace_seconds, q.since) {
                (Some(grace), Some(since)) => Some(since.plus_seconds(i64::from(grace))),
                _ => None,
            };
            state.withdraw_at = match (grace_end, state.valid_until) {
                (Some(g), Some(v)) => Some(g.min(v)),
                (g, v) => g.or(v),
            };
            state.status = PrefixStatus::Superseded;
        } else {
            state.withdraw_at = state.valid_until;
            state.status = if state.preferred_until.is_none_or(|t| now < t) {
                PrefixStatus::Preferred
            } else {
                PrefixStatus::Deprecated
            };
        }
        if state.withdraw_at.is_some_and(|at| at <= now) {
            state.status = PrefixStatus::Withdrawn;
        } else if let Some(at) = state.withdraw_at {
            next.push(at);
        }
        if let Some(t) = state.preferred_until.filter(|t| *t > now) {
            next.push(t);
        }
    }

    // Do the nodes agree?
    let active: BTreeSet<Ipv6Net> = by_subnet
        .values()
        .filter(|s| s.active())
        .map(|s| s.subnet)
        .collect();
    let mut lacking = false;
    for set in per_node.values() {
        for subnet in active.difference(set) {
            let since = by_subnet.get(subnet).and_then(|s| s.since);
            match since.map(|t| t.plus_seconds(SETTLE_SECONDS)) {
                Some(settled) if settled > now => next.push(settled),
                _ => lacking = true,
            }
        }
    }
    let describe = |set: &BTreeSet<Ipv6Net>| {
        let mine: Vec<String> = set
            .iter()
            .filter(|s| active.contains(s))
            .map(ToString::to_string)
            .collect();
        if mine.is_empty() {
            "none".to_string()
        } else {
            mine.join(" ")
        }
    };
    let mismatch = lacking.then(|| {
        per_node
            .iter()
            .map(|(node, set)| format!("{node}: {}", describe(set)))
            .collect::<Vec<_>>()
            .join("; ")
    });
    let missing = active.is_empty().then(|| {
        let mut text = String::new();
        let on = follow
            .interface
            .as_ref()
            .map_or(String::new(), |i| format!(" on {i}"));
        let _ = write!(
            text,
            "pool {:?} follows the nodes' IPv6 prefix and none of its nodes reports a global prefix{on}",
            pool.name
        );
        let mut why: Vec<String> = per_node
            .keys()
            .filter(|n| !unreadable.contains_key(*n))
            .map(|n| format!("{n}: none"))
            .collect();
        why.extend(unreadable.iter().map(|(n, w)| format!("{n}: {w}")));
        why.extend(skipped.iter().cloned());
        if let Some(withdrawn) = by_subnet.values().find(|s| !s.active()) {
            why.push(format!("{} withdrawn: {}", withdrawn.subnet, withdrawn.withdrawal()));
        }
        if !why.is_empty() {
            let _ = write!(text, " ({})", why.join("; "));
        }
        text
    });
    next.retain(|t| *t > now);
    PrefixView {
        hosts: (follow.hosts.first_addr(), follow.hosts.last_addr()),
        prefixes: by_subnet.into_values().collect(),
        mismatch,
        missing,
        next_change: next.into_iter().min(),
    }
}

/// Replaces each host part a prefix-following pool handed out by one address per active
/// prefix of that pool, or by a `NoPrefix` failure when the pool has none.
pub(crate) fn expand(
    allocation: &mut Allocation,
    pools: &[Pool],
    views: &BTreeMap<String, PrefixView>,
) {
    let mut out: Vec<Assigned> = Vec::new();
    for assigned in std::mem::take(&mut allocation.assigned) {
        let follows = pools
            .iter()
            .find(|p| p.name == assigned.pool)
            .is_some_and(|p| p.follows().is_some());
        let view = views.get(&assigned.pool);
        match (follows && assigned.family == Family::V6, view) {
            (true, Some(view)) => {
                let before = out.len();
                for state in view.active() {
                    out.push(Assigned {
                        ip: IpAddr::V6(combine(state.subnet, assigned.ip)),
                        prefix: Some(PrefixUse {
                            host: assigned.ip,
                            prefix: state.clone(),
                        }),
                        ..assigned.clone()
                    });
                }
                if out.len() == before {
                    allocation.failures.push(Failure {
                        family: Some(Family::V6),
                        reason: Reason::NoPrefix,
                        message: view.missing.clone().unwrap_or_else(|| {
                            format!("pool {:?} has no active prefix", assigned.pool)
                        }),
                    });
                }
            }
            _ => out.push(assigned),
        }
    }
    allocation.assigned = out;
}

/// Normal Events marking the two steps of a prefix change for one Service, from what its
/// published status has and what it gets now: a new prefix's address published (host part
/// kept), an old one withdrawn (and why).
pub(crate) fn transition_events(
    allocation: &Allocation,
    status: &[IpAddr],
    published: &[IpAddr],
    pools: &[Pool],
    views: &BTreeMap<String, PrefixView>,
) -> Vec<Event> {
    let mut events = Vec::new();
    let host_key = |pool: &str, ip: IpAddr| {
        pools
            .iter()
            .find(|p| p.name == pool)
            .and_then(|p| p.follows())
            .and_then(|f| f.host_of(ip))
    };
    for assigned in &allocation.assigned {
        let Some(used) = &assigned.prefix else {
            continue;
        };
        if !published.contains(&assigned.ip) || status.contains(&assigned.ip) {
            continue;
        }
        let before: Vec<String> = status
            .iter()
            .filter(|ip| host_key(&assigned.pool, **ip) == Some(used.host))
            .map(ToString::to_string)
            .collect();
        if before.is_empty() {
            continue;
        }
        events.push(Event {
            type_: EventType::Normal,
            reason: Reason::PrefixAdded,
            message: format!(
                "{} published: prefix {} appeared on {}; host part {} kept, {} stays while its prefix is valid",
                assigned.ip,
                used.prefix.subnet,
                used.prefix.nodes.keys().cloned().collect::<Vec<_>>().join(", "),
                used.host,
                before.join(", ")
            ),
        });
    }
    let hosts: BTreeSet<(String, IpAddr)> = allocation
        .assigned
        .iter()
        .filter_map(|a| a.prefix.as_ref().map(|u| (a.pool.clone(), u.host)))
        .collect();
    for (pool, host) in &hosts {
        for ip in status {
            if published.contains(ip) || host_key(pool, *ip) != Some(*host) {
                continue;
            }
            let why = match views.get(pool).and_then(|v| v.of(*ip)) {
                Some(state) => state.withdrawal(),
                None => "no node of the pool reports its prefix any more".to_string(),
            };
            events.push(Event {
                type_: EventType::Normal,
                reason: Reason::PrefixWithdrawn,
                message: format!("{ip} withdrawn: {why}"),
            });
        }
    }
    events
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pool::LoadBalancerPool;

    pub(crate) fn t(s: i64) -> Timestamp {
        Timestamp::from_unix_micros(1_800_000_000_000_000 + s * 1_000_000)
    }

    fn pool(grace: Option<u32>) -> Pool {
        let object: LoadBalancerPool = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "home"},
            "spec": {"ipv6Prefix": {"hosts": "::f0-::ff", "graceSeconds": grace}}
        }))
        .unwrap();
        Pool::from_object(&object)
    }

    fn node(name: &str, prefixes: &[(&str, i64, i64, i64)]) -> NodeFacts {
        NodeFacts::for_test(
            name,
            prefixes
                .iter()
                .map(|(p, since, preferred, valid)| ReportedPrefix {
                    prefix: p.parse().unwrap(),
                    interface: "eth0".into(),
                    since: Some(t(*since)),
                    preferred_until: Some(t(*preferred)),
                    valid_until: Some(t(*valid)),
                })
                .collect(),
        )
    }

    fn view_at(pool: &Pool, nodes: &[NodeFacts], now: i64) -> PrefixView {
        view(
            pool,
            pool.follows().unwrap(),
            nodes,
            &BTreeMap::new(),
            t(now),
        )
    }

    fn statuses(v: &PrefixView) -> Vec<(String, PrefixStatus)> {
        v.prefixes
            .iter()
            .map(|p| (p.subnet.to_string(), p.status))
            .collect()
    }

    #[test]
    fn a_new_prefix_is_published_at_once_and_the_old_one_kept_while_valid() {
        let p = pool(None);
        let a = ("2001:db8:a::/64", 0, 100, 200);
        let b = ("2001:db8:b::/64", 50, 150, 250);
        let v = view_at(&p, &[node("n1", &[a, b]), node("n2", &[a, b])], 60);
        assert_eq!(
            statuses(&v),
            [
                ("2001:db8:a::/64".into(), PrefixStatus::Superseded),
                ("2001:db8:b::/64".into(), PrefixStatus::Preferred)
            ]
        );
        assert_eq!(v.prefixes[0].withdraw_at, Some(t(200)));
        assert_eq!(v.mismatch, None);
        assert_eq!(v.next_change, Some(t(100)), "a's preferred end comes first");
        // At 200 a's valid lifetime is over: it is gone; b is past its preferred lifetime
        // but still served.
        let later = view_at(&p, &[node("n1", &[a, b])], 200);
        assert_eq!(
            statuses(&later),
            [("2001:db8:b::/64".into(), PrefixStatus::Deprecated)]
        );
        assert!(later.of("2001:db8:a::f0".parse().unwrap()).is_none());
    }

    #[test]
    fn grace_caps_how_long_a_superseded_prefix_stays() {
        let p = pool(Some(30));
        let a = ("2001:db8:a::/64", 0, 1000, 2000);
        let b = ("2001:db8:b::/64", 50, 1500, 2500);
        let v = view_at(&p, &[node("n1", &[a, b])], 60);
        assert_eq!(v.prefixes[0].withdraw_at, Some(t(80)));
        assert_eq!(v.next_change, Some(t(80)));
        assert!(v.prefixes[0].withdrawal().contains("grace time ends"));
        let after = view_at(&p, &[node("n1", &[a, b])], 80);
        assert_eq!(after.prefixes[0].status, PrefixStatus::Withdrawn);
    }

    #[test]
    fn a_flapping_prefix_does_not_supersede_the_refreshed_one() {
        // A, then B, then A again: A's lifetimes are refreshed past B's, so B (newer but
        // less preferred) does not supersede A; B lingers until it expires.
        let p = pool(Some(10));
        let a = ("2001:db8:a::/64", 0, 3000, 4000);
        let b = ("2001:db8:b::/64", 50, 1500, 2500);
        let v = view_at(&p, &[node("n1", &[a, b])], 100);
        assert_eq!(
            statuses(&v),
            [
                ("2001:db8:a::/64".into(), PrefixStatus::Preferred),
                ("2001:db8:b::/64".into(), PrefixStatus::Preferred)
            ]
        );
    }

    #[test]
    fn nodes_that_disagree_are_named_after_the_settle_time() {
        let p = pool(None);
        let a = ("2001:db8:a::/64", 0, 100, 200);
        let b = ("2001:db8:b::/64", 50, 150, 250);
        let nodes = [node("n1", &[a, b]), node("n2", &[a])];
        let early = view_at(&p, &nodes, 55);
        assert_eq!(early.mismatch, None, "b appeared 5 s ago");
        assert_eq!(early.next_change, Some(t(60)));
        let late = view_at(&p, &nodes, 70);
        assert_eq!(
            late.mismatch.as_deref(),
            Some("n1: 2001:db8:a::/64 2001:db8:b::/64; n2: 2001:db8:a::/64")
        );
    }

    #[test]
    fn no_prefix_names_every_node() {
        let p = pool(None);
        let v = view_at(&p, &[node("n1", &[]), node("n2", &[])], 0);
        assert_eq!(
            v.missing.as_deref(),
            Some(
                "pool \"home\" follows the nodes' IPv6 prefix and none of its nodes reports a global prefix (n1: none; n2: none)"
            )
        );
    }

    #[test]
    fn subnet_id_and_prefix_length_place_the_subnet() {
        let object: LoadBalancerPool = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "pd"},
            "spec": {"ipv6Prefix": {"hosts": "::10", "prefixLength": 56, "subnetId": "f0"}}
        }))
        .unwrap();
        let p = Pool::from_object(&object);
        assert!(p.usable(), "{:?}", p.errors);
        let f = p.follows().unwrap();
        let subnet = f.subnet("2001:db8:ab:1::/64".parse().unwrap());
        assert_eq!(subnet.to_string(), "2001:db8:ab:f0::/64");
        assert_eq!(
            combine(subnet, "::10".parse().unwrap()).to_string(),
            "2001:db8:ab:f0::10"
        );
    }

    #[test]
    fn bad_follow_specs_name_the_field() {
        let cases = [
            (
                serde_json::json!({"hosts": "2001:db8::f0-2001:db8::ff"}),
                "sets bits of the prefix",
            ),
            (
                serde_json::json!({"hosts": "10.0.0.1"}),
                "not a range, CIDR or address of IPv6",
            ),
            (
                serde_json::json!({"hosts": "::f0", "prefixLength": 65}),
                "prefixLength 65",
            ),
            (
                serde_json::json!({"hosts": "::f0", "prefixLength": 60, "subnetId": "1f"}),
                "subnetId \"1f\"",
            ),
        ];
        for (spec, expected) in cases {
            let object: LoadBalancerPool = serde_json::from_value(
                serde_json::json!({"metadata": {"name": "x"}, "spec": {"ipv6Prefix": spec}}),
            )
            .unwrap();
            let p = Pool::from_object(&object);
            assert!(
                p.errors.iter().any(|e| e.contains(expected)),
                "{expected}: {:?}",
                p.errors
            );
        }
        let mixed: LoadBalancerPool = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x"},
            "spec": {"addresses": ["192.0.2.0/28", "2001:db8::/120"], "ipv6Prefix": {"hosts": "::f0"}}
        }))
        .unwrap();
        assert!(Pool::from_object(&mixed).errors[0].contains("lists IPv6 entry"));
    }
}
