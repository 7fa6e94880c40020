//! The decision's output: per Service its status, conditions, Events and the reasons behind
//! them; per node the frontends its agent programs. Everything is sorted, so equal inputs
//! give byte-identical serializations.

use std::fmt;
use std::net::IpAddr;

use dualstack_addr::Family;
use dualstack_ruleset::{Frontend, Protocol};
use ipnet::IpNet;
use serde::Serialize;

use crate::announce::{Announcement, PoolAddress, PoolReport};
use crate::conditions::{Condition, Event};
use crate::service_key::ServiceKey;
use crate::time::Timestamp;

/// Everything decided for one snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// Services we own, sorted by namespace and name. A decision made for one node's agent
    /// ([`crate::decide_for_agent`]) lists those in node mode only when that node has no
    /// frontend (their conditions then say why).
    pub services: Vec<ServiceDecision>,
    /// Every node of the snapshot, sorted by name, with the frontends its agent programs
    /// (none in `kube-proxy` mode). A decision made for one node's agent lists that node
    /// only.
    pub nodes: Vec<NodeFrontends>,
    /// `type: LoadBalancer` Services we do not own, and why (for explanations only: they get
    /// no status, no condition and no frontend).
    pub ignored: Vec<IgnoredService>,
    /// Pool addresses in use, sorted by address: holders and announcer (empty without pools).
    #[serde(rename = "poolAddresses", skip_serializing_if = "Vec::is_empty")]
    pub pool_addresses: Vec<PoolAddress>,
    /// What each node announces, sorted by node, then address (empty without pools).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub announcements: Vec<Announcement>,
    /// Every pool of the snapshot and its usage, sorted by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<PoolReport>,
    /// The first instant after `now` at which time alone changes this decision through a
    /// prefix-following pool (a prefix's lifetime or grace time ends); agent Lease expiry is
    /// not included.
    #[serde(rename = "nextChange", skip_serializing_if = "Option::is_none")]
    pub next_change: Option<Timestamp>,
}

impl Decision {
    /// The frontends `node`'s agent programs (empty for unknown nodes).
    pub fn frontends_for(&self, node: &str) -> &[Frontend] {
        self.nodes
            .iter()
            .find(|n| n.name == node)
            .map_or(&[], |n| n.frontends.as_slice())
    }

    /// The decision for the Service `key`, if we own it.
    pub fn service_by_key(&self, key: &ServiceKey) -> Option<&ServiceDecision> {
        self.service(&key.namespace, &key.name)
    }

    /// The decision for one Service we own.
    pub fn service(&self, namespace: &str, name: &str) -> Option<&ServiceDecision> {
        self.services
            .iter()
            .find(|s| s.namespace == namespace && s.name == name)
    }

    /// The pool addresses `node`'s agent announces.
    pub fn announcements_for<'a>(
        &'a self,
        node: &'a str,
    ) -> impl Iterator<Item = &'a Announcement> {
        self.announcements.iter().filter(move |a| a.node == node)
    }

    /// Every pool address range of usable pools (traffic to them that no frontend takes is
    /// dropped by the agents).
    pub fn pool_ranges(&self) -> Vec<(IpAddr, IpAddr)> {
        let mut out: Vec<(IpAddr, IpAddr)> = self
            .pools
            .iter()
            .flat_map(|p| p.ranges.iter().copied())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Whether any owned Service has a problem condition.
    pub fn has_problems(&self) -> bool {
        self.services
            .iter()
            .any(|s| s.conditions.iter().any(Condition::is_problem))
    }
}

/// The decision for one Service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceDecision {
    /// The Service's namespace.
    pub namespace: String,
    /// The Service's name.
    pub name: String,
    /// The desired `status.loadBalancer.ingress`, ordered by `spec.ipFamilies`, then address.
    pub ingress: Vec<Ingress>,
    /// Our conditions: `LoadBalancerReady` and `PortConflict` (and `PrefixMismatch` for
    /// prefix-following pools). A decision made for an agent ([`crate::decide_for_agent`])
    /// keeps only `LoadBalancerReady` of a Service in node mode, and of its verdicts only the
    /// one on the agent's node.
    pub conditions: Vec<Condition>,
    /// The Events to record: one `Warning` per problem condition, plus `Normal` prefix steps.
    pub events: Vec<Event>,
    /// Why: the inputs read and the verdict on every node.
    pub why: ServiceWhy,
}

impl ServiceDecision {
    /// The Service's `namespace/name`.
    pub fn key(&self) -> ServiceKey {
        ServiceKey::new(&self.namespace, &self.name)
    }
}

/// One `status.loadBalancer.ingress` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ingress {
    /// The published address.
    pub ip: IpAddr,
    /// `Proxy` (nftables mode) or `VIP` (kube-proxy mode).
    pub ip_mode: crate::policy::IpMode,
}

/// What the decision read from the Service, and what it concluded per node.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceWhy {
    /// `spec.loadBalancerClass`, when set.
    pub load_balancer_class: Option<String>,
    /// `metadata.creationTimestamp` (older Services win conflicts).
    pub created: Option<Timestamp>,
    /// Families served in this order (after `SingleStack` truncation).
    pub families: Vec<Family>,
    /// `spec.ipFamilyPolicy` (the default when unset or unknown).
    pub ip_family_policy: crate::policy::IpFamilyPolicy,
    /// `spec.externalTrafficPolicy` (the default when unset or unknown).
    pub external_traffic_policy: crate::policy::TrafficPolicy,
    /// The frontends' source ranges, normalized (both "everything" ranges when the spec has none).
    pub source_ranges: Vec<IpNet>,
    /// The Service's `lbpool` label, when set.
    pub pool: Option<String>,
    /// The Service's ports, by name.
    pub ports: Vec<PortWhy>,
    /// The verdict on every node, by node name.
    pub nodes: Vec<NodeVerdict>,
    /// Anything else worth knowing (a family not served, no ready endpoints, …).
    pub notes: Vec<String>,
    /// The published addresses of a pool that follows the nodes' IPv6 prefix: host part,
    /// prefix and its lifetimes behind each.
    #[serde(rename = "prefixAddresses", skip_serializing_if = "Vec::is_empty")]
    pub prefix_addresses: Vec<crate::allocate::Assigned>,
}

/// One Service port and its backends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortWhy {
    /// The port's name, or its number when unnamed (the frontend-name suffix).
    pub name: String,
    /// The port's protocol.
    pub protocol: Protocol,
    /// The port number clients connect to.
    pub port: u16,
    /// Usable endpoints (ready, or serving and not terminating) per family.
    pub ready_ipv4: usize,
    /// See `ready_ipv4`.
    pub ready_ipv6: usize,
}

/// The verdict on one node for one Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeVerdict {
    /// The node's name.
    pub node: String,
    /// Serves the Service (on at least one address).
    pub taken: bool,
    /// Why not, when not taken.
    pub dropped: Option<DropReason>,
    /// The address per family this node serves the Service on, and where it came from.
    pub addresses: Vec<ChosenAddress>,
    /// Addresses lost to older Services.
    pub conflicts: Vec<Conflict>,
}

/// An address chosen for a node and family, and its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChosenAddress {
    /// The address.
    pub ip: IpAddr,
    /// Its family.
    pub family: Family,
    /// Where it came from.
    pub source: AddressSource,
    /// `global`, `ULA`, `private`; plus why a fallback was used.
    pub detail: String,
}

/// Where a node address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum AddressSource {
    /// Reported live by the node's agent in its Lease.
    #[serde(rename = "agent")]
    Agent,
    /// The node's `ExternalIP` (no live agent address of the family).
    #[serde(rename = "ExternalIP")]
    ExternalIp,
    /// The node's `InternalIP` (no live agent or external address of the family).
    #[serde(rename = "InternalIP")]
    InternalIp,
    /// A pool address (see `Decision::pool_addresses`).
    #[serde(rename = "pool")]
    Pool,
}

impl fmt::Display for AddressSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressSource::Agent => "agent",
            AddressSource::ExternalIp => "ExternalIP",
            AddressSource::InternalIp => "InternalIP",
            AddressSource::Pool => "pool",
        })
    }
}

/// An address + protocol + port this Service lost to an older Service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    /// The node address lost.
    pub ip: IpAddr,
    /// The protocol of the port lost.
    pub protocol: Protocol,
    /// The port lost.
    pub port: u16,
    /// The Service that keeps it (serialized as `namespace/name`).
    pub winner: ServiceKey,
}

/// Why a node does not serve a Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "camelCase")]
pub enum DropReason {
    /// The Node has `metadata.deletionTimestamp`: it is being deleted.
    Deleting {
        /// The `deletionTimestamp`.
        since: String,
    },
    /// The node's `Ready` condition is not `True`.
    NotReady {
        /// The `Ready` status (and reason), or that it is missing.
        status: String,
    },
    /// The node's `NetworkUnavailable` condition is `True` (its pod network is not set up).
    NetworkUnavailable {
        /// The condition's reason, when it has one.
        reason: Option<String>,
    },
    /// Cordoned (`spec.unschedulable`) and carrying a draining taint.
    Draining {
        /// The draining taint found.
        taint: String,
    },
    /// nftables mode needs the node's agent; it has no Lease.
    NoAgentLease {
        /// The Lease looked for (`namespace/name`).
        lease: String,
    },
    /// The agent Lease was not renewed in time.
    LeaseExpired {
        /// The Lease (`namespace/name`).
        lease: String,
        /// When it expired (`renewTime + leaseDurationSeconds`), or what it lacks.
        expired: String,
    },
    /// The agent Lease is held by someone else.
    LeaseHolderMismatch {
        /// The Lease (`namespace/name`).
        lease: String,
        /// Its `holderIdentity`.
        holder: String,
    },
    /// `node.kubernetes.io/exclude-from-external-load-balancers` is set.
    ExcludedByLabel,
    /// Allow-list mode (some node has the `enablelb` label) and this one is not `true`.
    NotEnabled {
        /// The node's `enablelb` label value, if any.
        value: Option<String>,
    },
    /// The Service asks for a pool this node is not in.
    NotInPool {
        /// The pool the Service asks for.
        pool: String,
    },
    /// `externalTrafficPolicy: Local` and no usable endpoint runs here.
    NoLocalEndpoint,
    /// No usable address of any family the Service uses.
    NoAddress {
        /// The Service's families (`IPv4 or IPv6`).
        families: String,
    },
    /// Every address lost a port conflict (see `conflicts`).
    PortConflict,
    /// Pool mode: this node may announce none of the Service's pool addresses.
    CannotAnnounce {
        /// Why, for a person.
        why: String,
    },
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::Deleting { since } => {
                write!(f, "being deleted (deletionTimestamp {since})")
            }
            DropReason::NotReady { status } => write!(f, "not Ready (Ready={status})"),
            DropReason::NetworkUnavailable { reason: None } => {
                write!(f, "NetworkUnavailable=True: its pod network is not set up")
            }
            DropReason::NetworkUnavailable { reason: Some(r) } => write!(
                f,
                "NetworkUnavailable=True ({r}): its pod network is not set up"
            ),
            DropReason::Draining { taint } => write!(f, "cordoned and draining (taint {taint})"),
            DropReason::NoAgentLease { lease } => {
                write!(f, "no agent Lease {lease}: no agent programs this node")
            }
            DropReason::LeaseExpired { lease, expired } => {
                write!(f, "agent Lease {lease} expired at {expired}")
            }
            DropReason::LeaseHolderMismatch { lease, holder } => {
                write!(
                    f,
                    "agent Lease {lease} is held by {holder:?}, not by this node"
                )
            }
            DropReason::ExcludedByLabel => {
                write!(f, "excluded by label {}", crate::labels::EXCLUDE_LABEL)
            }
            DropReason::NotEnabled { value: None } => write!(
                f,
                "allow-list mode (some node has {}) and this node lacks it",
                crate::labels::ENABLELB_LABEL
            ),
            DropReason::NotEnabled { value: Some(v) } => write!(
                f,
                "allow-list mode and this node has {}={v:?}, not \"true\"",
                crate::labels::ENABLELB_LABEL
            ),
            DropReason::NotInPool { pool } => write!(f, "not in pool {pool:?}"),
            DropReason::NoLocalEndpoint => write!(
                f,
                "externalTrafficPolicy Local and no ready endpoint on this node"
            ),
            DropReason::NoAddress { families } => write!(f, "no usable {families} address"),
            DropReason::PortConflict => write!(f, "every address lost a port conflict"),
            DropReason::CannotAnnounce { why } => write!(f, "cannot announce: {why}"),
        }
    }
}

/// The frontends one node's agent programs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeFrontends {
    /// The node's name.
    pub name: String,
    /// Sorted by name.
    pub frontends: Vec<Frontend>,
}

/// A `type: LoadBalancer` Service that is not ours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgnoredService {
    /// The Service's namespace.
    pub namespace: String,
    /// The Service's name.
    pub name: String,
    /// Why it is not ours (type or class).
    pub reason: String,
}
