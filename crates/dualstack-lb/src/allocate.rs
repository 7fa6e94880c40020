//! Address allocation from [`LoadBalancerPool`](crate::pool::LoadBalancerPool)s: which pool
//! address each Service gets per family. Pure and deterministic.
//!
//! **Who uses pools.** A Service we own draws from pools when it has the annotation
//! [`POOL_ANNOTATION`] or [`ADDRESSES_ANNOTATION`], or when any pool has `autoAssign` (the
//! default). Otherwise it stays in node mode. With no pool object at all nothing changes.
//!
//! **Which pools, per family.** With `dualstack.io/pool: P`, family `f` comes from `P` when `P`
//! has addresses of `f`; when it has none, from the `autoAssign` pools that do (so
//! `PreferDualStack` gets its IPv6 address from another pool, and a single-family pool never
//! forces a dual-stack Service down to one family). Without the annotation: the `autoAssign`
//! pools with `f`, in name order. A pool with a bad entry hands out nothing.
//!
//! **Order.** Three passes, each oldest Service first (as for port conflicts):
//! 1. *sticky*: the Service's published `status.loadBalancer.ingress` is the record — each
//!    address there that is still in one of the Service's pools for its family (and is not
//!    replaced by a different requested address) is kept, so restarts and pool edits that
//!    still contain it renumber nothing;
//! 2. *requested*: each address in `dualstack.io/addresses` (comma list, at most one per
//!    family) must be in a usable pool (the named one, if any) and free, or shareable;
//! 3. *automatic*: a Service with a sharing key first joins the lowest address its key
//!    already holds in its pools (ports disjoint), else every Service takes the lowest free
//!    address of its first pool that has one.
//!
//! **Sharing.** Services share an address only when all of them carry the same
//! `dualstack.io/sharing-key`, their (protocol, port) sets are disjoint and none is
//! `externalTrafficPolicy: Local` (one node attracts the address for every port, so Local on
//! a shared address would send some Services' traffic to nodes without their endpoints).
//!
//! **Failures** name their cause: `PoolNotFound`, `AddressNotInPool`, `AddressInUse` (the
//! holder named), `SharingClash` (the holder and the overlapping port named),
//! `PoolExhausted` (the pools and their sizes named), `FamilyUnavailable` (no pool has the
//! family), `InvalidSpec` (an annotation that does not parse). The family policy then says
//! what they mean (see the decision): `RequireDualStack` is not served with any family
//! failing; the others are served with the families that got an address.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use dualstack_addr::Family;
use dualstack_ruleset::Protocol;
use serde::Serialize;

use crate::conditions::Reason;
use crate::pool::{Pool, from_int, to_int};
use crate::service_key::ServiceKey;

/// Service annotation: the pool to draw from.
pub const POOL_ANNOTATION: &str = "dualstack.io/pool";
/// Service annotation: exact addresses, comma list, at most one per family.
pub const ADDRESSES_ANNOTATION: &str = "dualstack.io/addresses";
/// Service annotation: Services with the same key may share an address on disjoint ports.
pub const SHARING_KEY_ANNOTATION: &str = "dualstack.io/sharing-key";

/// What allocation needs to know about one Service.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// The Service asking.
    pub key: ServiceKey,
    /// Families to serve, in `ipFamilies` order.
    pub families: Vec<Family>,
    pub ports: BTreeSet<(Protocol, u16)>,
    pub local: bool,
    pub pool: Option<String>,
    /// Parsed `dualstack.io/addresses`, or why it does not parse.
    pub requested: Result<Vec<IpAddr>, String>,
    pub sharing_key: Option<String>,
    /// Addresses of the published `status.loadBalancer.ingress`.
    pub status: Vec<IpAddr>,
}

impl Request {
    /// Whether this Service draws from pools at all.
    pub fn uses_pools(&self, pools: &[Pool]) -> bool {
        self.pool.is_some()
            || !matches!(&self.requested, Ok(list) if list.is_empty())
            || pools.iter().any(|p| p.auto_assign)
    }
}

/// Parses `dualstack.io/addresses`.
pub(crate) fn parse_requested(text: Option<&String>) -> Result<Vec<IpAddr>, String> {
    let mut out: Vec<IpAddr> = Vec::new();
    for item in text
        .map(String::as_str)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
    {
        if item.is_empty() {
            continue;
        }
        let ip: IpAddr = item
            .parse()
            .map_err(|_| format!("{ADDRESSES_ANNOTATION} entry {item:?} is not an address"))?;
        if out.iter().any(|o| Family::of(*o) == Family::of(ip)) {
            return Err(format!(
                "{ADDRESSES_ANNOTATION} lists more than one {} address",
                Family::of(ip).k8s_name()
            ));
        }
        out.push(ip);
    }
    Ok(out)
}

/// How a Service came to hold an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Origin {
    /// Kept from the published status.
    Status,
    /// Asked for with `dualstack.io/addresses`.
    Requested,
    /// The lowest free address of the pool.
    Allocated,
    /// Joined an address its sharing key already holds.
    Shared,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::Status => "kept from status",
            Origin::Requested => "requested",
            Origin::Allocated => "allocated",
            Origin::Shared => "shared by sharing key",
        })
    }
}

/// One pool address a Service got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assigned {
    /// The address (for a prefix-following pool: the host part until expanded).
    pub ip: IpAddr,
    /// Its family.
    pub family: Family,
    /// The pool it is from.
    pub pool: String,
    /// How the Service came to hold it.
    pub origin: Origin,
    /// For a pool that follows the nodes' prefix: the host part and the prefix behind `ip`
    /// (allocation itself hands out the host part; the prefix pool's expansion fills this).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<crate::prefix_state::PrefixUse>,
}

/// A family (or the whole Service) that got no address, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// `None`: the Service as a whole (an annotation that does not parse, an unknown pool).
    pub family: Option<Family>,
    /// The condition reason this failure becomes.
    pub reason: Reason,
    /// What failed, for a person.
    pub message: String,
}

/// Allocation result for one Service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Allocation {
    /// In `ipFamilies` order.
    pub assigned: Vec<Assigned>,
    /// Families (or the whole Service) that got no address.
    pub failures: Vec<Failure>,
    /// Anything worth knowing that is not a failure (a requested address ignored, …).
    pub notes: Vec<String>,
}

/// Who holds an address.
#[derive(Debug, Clone)]
struct Holding {
    pool: String,
    key: Option<String>,
    local: bool,
    ports: BTreeMap<(Protocol, u16), ServiceKey>,
    holders: Vec<ServiceKey>,
}

/// Why a Service cannot join a holding.
enum Refusal {
    /// Not sharing (no key, another key): plainly taken.
    InUse(String),
    /// Same key but a port overlaps or Local traffic policy.
    Clash(String),
}

impl Holding {
    fn refusal(&self, request: &Request) -> Option<Refusal> {
        let holders = self
            .holders
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        match (&request.sharing_key, &self.key) {
            (Some(mine), Some(theirs)) if mine == theirs => {}
            _ => return Some(Refusal::InUse(holders)),
        }
        if request.local || self.local {
            return Some(Refusal::Clash(format!(
                "{holders} (externalTrafficPolicy Local cannot share an address)"
            )));
        }
        if let Some(((proto, port), owner)) = request
            .ports
            .iter()
            .find_map(|p| self.ports.get_key_value(p))
        {
            return Some(Refusal::Clash(format!("{owner} (both use {port}/{proto})")));
        }
        None
    }

    fn join(&mut self, request: &Request) {
        for p in &request.ports {
            self.ports.insert(*p, request.key.clone());
        }
        self.holders.push(request.key.clone());
    }
}

struct State<'p> {
    pools: &'p [Pool],
    held: BTreeMap<IpAddr, Holding>,
    /// Per (pool, span): every address below this one is held. Addresses are only added
    /// while allocating, so the search for the lowest free one resumes here (linear, not
    /// quadratic, in the number of Services of a pool).
    free_from: std::cell::RefCell<BTreeMap<(String, usize), u128>>,
}

impl<'p> State<'p> {
    fn pool(&self, name: &str) -> Option<&'p Pool> {
        self.pools.iter().find(|p| p.name == name)
    }

    /// The pools `request` draws `family` from, in order.
    fn candidates(&self, request: &Request, family: Family) -> Vec<&'p Pool> {
        if let Some(named) = request.pool.as_deref().and_then(|n| self.pool(n))
            && named.has_family(family)
        {
            return vec![named];
        }
        self.pools
            .iter()
            .filter(|p| p.auto_assign && p.has_family(family))
            .collect()
    }

    fn take(&mut self, ip: IpAddr, pool: &str, request: &Request) {
        let holding = self.held.entry(ip).or_insert_with(|| Holding {
            pool: pool.to_string(),
            key: request.sharing_key.clone(),
            local: request.local,
            ports: BTreeMap::new(),
            holders: Vec::new(),
        });
        holding.join(request);
    }

    /// Lowest free address of `pool` and `family`.
    fn lowest_free(&self, pool: &Pool, family: Family) -> Option<IpAddr> {
        let mut best: Option<u128> = None;
        let mut hints = self.free_from.borrow_mut();
        for (index, span) in pool.spans.iter().enumerate() {
            if span.family != family {
                continue;
            }
            let hint = hints
                .entry((pool.name.clone(), index))
                .or_insert(span.first);
            let mut candidate = *hint;
            if candidate > span.last {
                continue;
            }
            for ip in self
                .held
                .range(from_int(family, candidate)..=span.last_addr())
                .map(|(ip, _)| to_int(*ip))
            {
                if ip == candidate {
                    candidate += 1;
                } else if ip > candidate {
                    break;
                }
            }
            *hint = candidate;
            if candidate <= span.last {
                best = Some(best.map_or(candidate, |b: u128| b.min(candidate)));
            }
        }
        best.map(|n| from_int(family, n))
    }
}

/// Allocates for `requests`, which are sorted oldest first. Returns one [`Allocation`] per
/// request, in the same order.
pub(crate) fn allocate(requests: &[Request], pools: &[Pool]) -> Vec<Allocation> {
    let mut state = State {
        pools,
        held: BTreeMap::new(),
        free_from: Default::default(),
    };
    let mut out: Vec<Allocation> = vec![Allocation::default(); requests.len()];

    // Requests that cannot allocate at all.
    let mut live = vec![true; requests.len()];
    for (i, request) in requests.iter().enumerate() {
        if let Err(message) = &request.requested {
            out[i].failures.push(Failure {
                family: None,
                reason: Reason::InvalidSpec,
                message: message.clone(),
            });
            live[i] = false;
        } else if let Some(name) = &request.pool {
            match state.pool(name) {
                None => {
                    out[i].failures.push(Failure {
                        family: None,
                        reason: Reason::PoolNotFound,
                        message: format!(
                            "{POOL_ANNOTATION} names pool {name:?}, which does not exist"
                        ),
                    });
                    live[i] = false;
                }
                Some(pool) if !pool.usable() => {
                    out[i].failures.push(Failure {
                        family: None,
                        reason: Reason::PoolNotFound,
                        message: format!("pool {name:?} is not usable: {}", pool.errors.join("; ")),
                    });
                    live[i] = false;
                }
                Some(_) => {}
            }
        }
    }
    let requested_of = |request: &Request, family: Family| -> Option<IpAddr> {
        request
            .requested
            .as_ref()
            .ok()
            .and_then(|l| l.iter().copied().find(|ip| Family::of(*ip) == family))
    };

    // 1. Sticky: the published status.
    for (i, request) in requests.iter().enumerate() {
        if !live[i] {
            continue;
        }
        for family in &request.families {
            // The first status address of the family that one of the Service's pools holds
            // (and that is the requested one, if any). A pool that follows the prefix keys
            // it by its host part ([`Pool::key_of`]).
            let requested = requested_of(request, *family);
            let kept = request
                .status
                .iter()
                .copied()
                .filter(|ip| Family::of(*ip) == *family)
                .find_map(|ip| {
                    let pool = match requested {
                        Some(wanted) => match &request.pool {
                            Some(name) => state.pool(name).filter(|p| p.contains(ip)),
                            None => state.pools.iter().find(|p| p.contains(ip)),
                        }
                        .filter(|p| p.key_of(ip) == p.key_of(wanted)),
                        None => state
                            .candidates(request, *family)
                            .into_iter()
                            .find(|p| p.contains(ip)),
                    };
                    pool.map(|p| (p.key_of(ip), p))
                });
            let Some((ip, pool)) = kept else { continue };
            let pool_name = pool.name.clone();
            match state.held.get(&ip).map(|h| h.refusal(request)) {
                None | Some(None) => {
                    state.take(ip, &pool_name, request);
                    out[i].assigned.push(Assigned {
                        ip,
                        family: *family,
                        pool: pool_name,
                        origin: Origin::Status,
                        prefix: None,
                    });
                }
                Some(Some(Refusal::InUse(who) | Refusal::Clash(who))) => out[i].notes.push(
                    format!("status address {ip} is held by older {who}: not kept"),
                ),
            }
        }
    }

    // 2. Requested addresses.
    for (i, request) in requests.iter().enumerate() {
        if !live[i] {
            continue;
        }
        let Ok(list) = &request.requested else {
            continue;
        };
        for ip in list {
            let family = Family::of(*ip);
            if !request.families.contains(&family) {
                out[i].notes.push(format!(
                    "{ADDRESSES_ANNOTATION} lists {ip}, but the Service does not serve {}",
                    family.k8s_name()
                ));
                continue;
            }
            let pool = match &request.pool {
                Some(name) => state.pool(name).filter(|p| p.contains(*ip)),
                None => state.pools.iter().find(|p| p.contains(*ip)),
            };
            if out[i]
                .assigned
                .iter()
                .any(|a| Some(a.ip) == pool.map(|p| p.key_of(*ip)))
            {
                continue;
            }
            let Some(pool) = pool else {
                out[i].failures.push(Failure {
                    family: Some(family),
                    reason: Reason::AddressNotInPool,
                    message: match &request.pool {
                        Some(name) => format!("requested {ip} is not in pool {name:?}"),
                        None => format!("requested {ip} is in no usable pool"),
                    },
                });
                continue;
            };
            let pool_name = pool.name.clone();
            let key = pool.key_of(*ip);
            match state.held.get(&key).map(|h| h.refusal(request)) {
                None | Some(None) => {
                    state.take(key, &pool_name, request);
                    out[i].assigned.push(Assigned {
                        ip: key,
                        family,
                        pool: pool_name,
                        origin: Origin::Requested,
                        prefix: None,
                    });
                }
                Some(Some(Refusal::InUse(who))) => out[i].failures.push(Failure {
                    family: Some(family),
                    reason: Reason::AddressInUse,
                    message: format!("requested {ip} is in use by {who}"),
                }),
                Some(Some(Refusal::Clash(why))) => out[i].failures.push(Failure {
                    family: Some(family),
                    reason: Reason::SharingClash,
                    message: format!("requested {ip} cannot be shared with {why}"),
                }),
            }
        }
    }

    // 3. Automatic.
    for (i, request) in requests.iter().enumerate() {
        if !live[i] {
            continue;
        }
        for family in &request.families {
            if requested_of(request, *family).is_some()
                || out[i].assigned.iter().any(|a| a.family == *family)
            {
                continue;
            }
            let pools = state.candidates(request, *family);
            if pools.is_empty() {
                let message = match request.pool.as_deref() {
                    Some(name) => format!(
                        "pool {name:?} has no {f} addresses and no autoAssign pool has any",
                        f = family.k8s_name()
                    ),
                    None => format!("no autoAssign pool has {} addresses", family.k8s_name()),
                };
                out[i].failures.push(Failure {
                    family: Some(*family),
                    reason: Reason::FamilyUnavailable,
                    message,
                });
                continue;
            }
            let shared = request.sharing_key.as_ref().and_then(|_| {
                state.held.iter().find_map(|(ip, h)| {
                    (Family::of(*ip) == *family
                        && pools.iter().any(|p| p.name == h.pool && p.contains(*ip))
                        && h.refusal(request).is_none())
                    .then(|| (*ip, h.pool.clone()))
                })
            });
            let chosen = shared
                .map(|(ip, pool)| (ip, pool, Origin::Shared))
                .or_else(|| {
                    pools.iter().find_map(|p| {
                        state
                            .lowest_free(p, *family)
                            .map(|ip| (ip, p.name.clone(), Origin::Allocated))
                    })
                });
            match chosen {
                Some((ip, pool, origin)) => {
                    state.take(ip, &pool, request);
                    out[i].assigned.push(Assigned {
                        ip,
                        family: *family,
                        pool,
                        origin,
                        prefix: None,
                    });
                }
                None => out[i].failures.push(Failure {
                    family: Some(*family),
                    reason: Reason::PoolExhausted,
                    message: format!(
                        "no free {} address: {}",
                        family.k8s_name(),
                        pools
                            .iter()
                            .map(|p| format!(
                                "pool {:?} has {} and all are in use",
                                p.name,
                                p.size(*family)
                            ))
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                }),
            }
        }
        let order = |f: Family| request.families.iter().position(|x| *x == f);
        out[i].assigned.sort_by_key(|a| order(a.family));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pool::{LoadBalancerPool, Pool};

    fn pool(name: &str, addresses: &[&str], auto: bool) -> Pool {
        let object: LoadBalancerPool = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"addresses": addresses, "autoAssign": auto}
        }))
        .unwrap();
        Pool::from_object(&object)
    }

    /// `"ns/name"` as a key.
    fn key(text: &str) -> ServiceKey {
        let (namespace, name) = text.split_once('/').unwrap();
        ServiceKey::new(namespace, name)
    }

    fn request(text: &str, families: &[Family]) -> Request {
        Request {
            key: key(text),
            families: families.to_vec(),
            ports: [(Protocol::Tcp, 80)].into(),
            local: false,
            pool: None,
            requested: Ok(Vec::new()),
            sharing_key: None,
            status: Vec::new(),
        }
    }

    fn ips(a: &Allocation) -> Vec<String> {
        a.assigned.iter().map(|x| x.ip.to_string()).collect()
    }

    const DUAL: [Family; 2] = [Family::V6, Family::V4];

    #[test]
    fn lowest_free_oldest_first_in_family_order() {
        let pools = [pool(
            "lan",
            &["192.0.2.10-192.0.2.11", "2001:db8::10/127"],
            true,
        )];
        let out = allocate(
            &[
                request("a/old", &DUAL),
                request("a/new", &DUAL),
                request("a/third", &[Family::V4]),
            ],
            &pools,
        );
        assert_eq!(ips(&out[0]), ["2001:db8::10", "192.0.2.10"]);
        assert_eq!(ips(&out[1]), ["2001:db8::11", "192.0.2.11"]);
        assert!(out[2].assigned.is_empty());
        assert_eq!(out[2].failures[0].reason, Reason::PoolExhausted);
        assert!(out[2].failures[0].message.contains("pool \"lan\" has 2"));
    }

    #[test]
    fn status_is_sticky_and_outranks_age() {
        let pools = [pool("lan", &["192.0.2.10-192.0.2.12"], true)];
        let mut old = request("a/old", &[Family::V4]);
        old.status = vec!["10.0.0.1".parse().unwrap()]; // a node address: not kept
        let mut young = request("a/young", &[Family::V4]);
        young.status = vec!["192.0.2.10".parse().unwrap()];
        let out = allocate(&[old, young], &pools);
        assert_eq!(ips(&out[0]), ["192.0.2.11"]);
        assert_eq!(out[1].assigned[0].origin, Origin::Status);
        assert_eq!(ips(&out[1]), ["192.0.2.10"]);
    }

    #[test]
    fn ipv6_from_another_pool_when_the_named_one_has_none() {
        let pools = [
            pool("v4only", &["192.0.2.10/32"], false),
            pool("v6", &["2001:db8::10/128"], true),
        ];
        let mut r = request("a/s", &[Family::V4, Family::V6]);
        r.pool = Some("v4only".into());
        let out = allocate(&[r], &pools);
        assert_eq!(ips(&out[0]), ["192.0.2.10", "2001:db8::10"]);
        assert_eq!(out[0].assigned[1].pool, "v6");
    }

    #[test]
    fn missing_family_unknown_pool_and_bad_annotation() {
        let pools = [pool("v4", &["192.0.2.10/32"], true)];
        let out = allocate(&[request("a/s", &DUAL)], &pools);
        assert_eq!(out[0].failures[0].reason, Reason::FamilyUnavailable);
        assert_eq!(ips(&out[0]), ["192.0.2.10"]);

        let mut r = request("a/s", &DUAL);
        r.pool = Some("nope".into());
        assert_eq!(
            allocate(&[r], &pools)[0].failures[0].reason,
            Reason::PoolNotFound
        );
        assert!(
            parse_requested(Some(&"192.0.2.1, 192.0.2.2".to_string()))
                .unwrap_err()
                .contains("more than one IPv4")
        );
    }

    #[test]
    fn requested_addresses_taken_and_shared() {
        let pools = [pool("lan", &["192.0.2.10-192.0.2.20"], true)];
        let want = |key: &str, ip: &str, share: Option<&str>, port: u16| {
            let mut r = request(key, &[Family::V4]);
            r.requested = Ok(vec![ip.parse().unwrap()]);
            r.sharing_key = share.map(str::to_string);
            r.ports = [(Protocol::Tcp, port)].into();
            r
        };
        let out = allocate(
            &[
                want("a/one", "192.0.2.15", Some("k"), 80),
                want("a/two", "192.0.2.15", Some("k"), 443),
                want("a/three", "192.0.2.15", Some("k"), 80),
                want("a/four", "192.0.2.15", None, 22),
                want("a/five", "198.51.100.1", None, 22),
            ],
            &pools,
        );
        assert_eq!(ips(&out[0]), ["192.0.2.15"]);
        assert_eq!(ips(&out[1]), ["192.0.2.15"]);
        assert_eq!(out[2].failures[0].reason, Reason::SharingClash);
        assert!(
            out[2].failures[0]
                .message
                .contains("a/one (both use 80/tcp)")
        );
        assert_eq!(out[3].failures[0].reason, Reason::AddressInUse);
        assert!(out[3].failures[0].message.contains("a/one, a/two"));
        assert_eq!(out[4].failures[0].reason, Reason::AddressNotInPool);
    }

    #[test]
    fn sharing_key_joins_automatically() {
        let pools = [pool("lan", &["192.0.2.10-192.0.2.20"], true)];
        let mut a = request("a/dns-tcp", &[Family::V4]);
        a.sharing_key = Some("dns".into());
        let mut b = a.clone();
        b.key = key("a/dns-udp");
        b.ports = [(Protocol::Udp, 80)].into();
        let out = allocate(&[a, b, request("a/other", &[Family::V4])], &pools);
        assert_eq!(ips(&out[0]), ["192.0.2.10"]);
        assert_eq!(ips(&out[1]), ["192.0.2.10"]);
        assert_eq!(out[1].assigned[0].origin, Origin::Shared);
        assert_eq!(ips(&out[2]), ["192.0.2.11"]);
    }
}
