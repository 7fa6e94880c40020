//! LoadBalancer decisions as a pure function of a cluster snapshot.
//!
//! [`decide`] takes a [`Snapshot`] (Services, Nodes, EndpointSlices and our per-node agent
//! Leases), a [`Config`] and the current time, and returns a [`Decision`]: for every Service
//! we own, the desired `status.loadBalancer.ingress`, conditions and Events, with the reasons
//! behind them; for every node, the [`dualstack_ruleset::Frontend`]s its agent programs.
//! No I/O, no clock: the controller, the agent, `dualstack lb explain` and `dualstack demo`
//! all call the same function. [`explain()`] renders a decision as text.
//!
//! Inputs are our own minimal serde types ([`objects`]), not `k8s-openapi`: they mirror the
//! fields we read, so `kubectl get -o yaml|json` output and `k8s-openapi` JSON deserialize
//! into them. [`Snapshot::parse`] reads a `List`, a single object or a multi-document YAML
//! stream, ignoring kinds we do not use.
//!
//! # Where the rules live
//!
//! [`decide`] (`src/decide/mod.rs`) orders the work: ownership, Services oldest first, pool
//! allocation over all of them, then the pool records and the sorted output. Each Service
//! passes through one module per stage, in this order:
//!
//! 1. `decide/spec.rs` — the plan from the Service's spec: families, ports with their
//!    backends, source ranges (or `InvalidSpec`);
//! 2. `decide/selection.rs` — node selection: the verdict on every node, local endpoints,
//!    K3s pools, and the pool addresses each node can carry in pool mode;
//! 3. `decide/conflicts.rs` — port and address conflicts with older Services;
//! 4. `decide/status.rs` — families served, ingress, conditions and frontends;
//!
//! with `decide/messages.rs` holding the human text they share. Condition and Event strings
//! are the typed [`conditions`]; Services are keyed by [`ServiceKey`].
//!
//! # The rules, in plain words
//!
//! **Ownership.** A Service is ours when `spec.type` is `LoadBalancer` and its
//! `spec.loadBalancerClass` is our class (`dualstack.io/lb` unless configured), or it has no
//! class and we are configured as the default class. Any other Service never appears in
//! `services` or in a frontend (explanations list LoadBalancer Services we skipped, and why).
//!
//! **Families.** Served in `spec.ipFamilies` order (if empty, the families of
//! `spec.clusterIPs`). `SingleStack` serves only the first family. `PreferDualStack` serves
//! each family that has an address on some eligible node, and notes the ones that do not.
//! `RequireDualStack` with a family missing (no eligible node has such an address, every
//! such address lost a port conflict, or `ipFamilies` lists only one) is not served at all:
//! no ingress, no frontends, `LoadBalancerReady=False` `FamilyUnavailable` naming the family
//! and why — never a silent half-status.
//!
//! **Addresses: one per node and family**, chosen per node (not all-or-nothing across the
//! cluster): the agent's live addresses from its Lease when the Lease is live and reports
//! that family (global before ULA/private, stable before temporary, then the lowest; never
//! deprecated, link-local, loopback, multicast, unspecified or IPv4-mapped); else the node's
//! first usable `ExternalIP` of that family; else its first usable `InternalIP`. We advertise
//! the best address only, not all of them: status stays stable when temporary addresses
//! rotate, and privacy addresses are never published. The agent's annotation format is in
//! [`live`].
//!
//! **Nodes.** A node serves a Service unless, checked in this order:
//! 1. it has `metadata.deletionTimestamp` (it is being deleted; K3s treats it as gone);
//! 2. its `Ready` condition is not `True` (missing counts as not ready);
//! 3. its `NetworkUnavailable` condition is `True` (its pod network is not set up, so it
//!    cannot reach the backends; MetalLB stops announcing from such a node too). Missing,
//!    `False` or `Unknown` counts as available;
//! 4. it is cordoned (`spec.unschedulable`) *and* has a draining taint
//!    ([`DRAINING_TAINTS`] or any `NoExecute` taint) — a cordon alone keeps it serving;
//! 5. its agent Lease (`<lease namespace>/dualstack-agent-<node>`) is held by another
//!    identity, has no `renewTime`/`leaseDurationSeconds`, or `renewTime +
//!    leaseDurationSeconds` is before `now`; in `nftables` mode a node without any agent
//!    Lease is dropped too (nobody would program it), in `kube-proxy` mode it is kept;
//! 6. it has the label `node.kubernetes.io/exclude-from-external-load-balancers` (any value;
//!    `ignore_exclusion_label` turns this off). When this leaves no node, the condition says
//!    exactly that;
//! 7. K3s allow-list mode: some node in the cluster has the label key
//!    `svccontroller.k3s.cattle.io/enablelb` (any value) and this node's value is not `true`.
//!    With no such label anywhere — including after the last one is removed — all nodes
//!    qualify;
//! 8. the Service has the label `svccontroller.k3s.cattle.io/lbpool=<pool>` and the node is
//!    not in that pool. A node is in pool `p` when it has the K3s label `…/lbpool=p`, the
//!    newer K3s label `lbpool.svccontroller.k3s.cattle.io/p=true`, or our label
//!    `pool.dualstack.io/p=true` (the last two are one label per pool, so a node can be in
//!    several; label values cannot hold lists). Unlike K3s, pools apply without allow-list
//!    mode too;
//! 9. `externalTrafficPolicy: Local` and no usable endpoint of the Service runs on the node;
//! 10. it has no usable address of any family the Service uses.
//!
//! **Endpoints.** EndpointSlices are tied
//! to the Service by `kubernetes.io/service-name` (so Services without a selector with
//! hand-written slices work), ports match by name and protocol and the slice's port number
//! is the target (named `targetPort`s resolve), an endpoint is usable when ready, or serving
//! and not terminating, and its first address is used. `Cluster`: every usable endpoint
//! (including ones without `nodeName`), masquerade on. `Local`: only the endpoints on that
//! node, masquerade off so the backend sees the client. Node ports are never used, so
//! `allocateLoadBalancerNodePorts: false` changes nothing. A frontend only carries backends
//! of the families it has a destination for.
//!
//! **Source ranges.** `spec.loadBalancerSourceRanges` (or, when empty, the legacy annotation
//! `service.beta.kubernetes.io/load-balancer-source-ranges`) become the frontend's ranges,
//! normalized to their network. An empty list allows `0.0.0.0/0` and `::/0`. A list without
//! ranges of one family refuses every client of that family (noted in the explanation); a
//! range that does not parse fails closed (`InvalidSpec`, nothing programmed).
//!
//! **Port conflicts.** Services are decided oldest first (`creationTimestamp`, then
//! namespace, then name; no timestamp counts as newest). A Service claims every
//! (node address, protocol, port) it is programmed on. When an older Service already holds
//! one of its ports on an address, the younger Service gives up that whole address (all its
//! ports there, so a client never reaches half a Service) and gets `PortConflict=True`
//! naming the winner; on addresses where nothing conflicts it is still served. Losing every
//! address means `LoadBalancerReady=False` `PortConflict`.
//!
//! **ipMode.** `Proxy` in `nftables` mode (our agent carries the traffic), `VIP` in
//! `kube-proxy` mode, where no frontends are produced at all.
//!
//! **Pools** (see [`pool`], [`allocate`], [`announce`]). With `LoadBalancerPool` objects in
//! the snapshot, a Service that names a pool (`dualstack.io/pool`), asks for addresses
//! (`dualstack.io/addresses`), or meets an `autoAssign` pool gets dedicated pool addresses
//! instead of node addresses: sticky (the published status is the record), per family in
//! `ipFamilies` order, oldest Service first, shared only by `dualstack.io/sharing-key` on
//! disjoint ports. Node rules 1–8 still pick the nodes; in addition a node must have a live
//! agent Lease (in either mode: it announces), be selected by the pool's `nodeSelector` and
//! have an interface to announce on. Frontends are bound to the pool addresses on every such
//! node (standbys are ready for takeover), and exactly one of them — chosen by rendezvous
//! hashing — announces each address ([`Decision::announcements`]). With no pool object,
//! nothing here applies and node mode is unchanged.
//!
//! **Determinism.** Outputs are sorted (Services by namespace/name, nodes by name,
//! frontends by name, ingress by family order then address, backends by address), so the
//! same snapshot in any object order gives byte-identical output.
//!
//! # Where we differ from K3s ServiceLB and MetalLB, on purpose
//!
//! * **ExternalIP or InternalIP per node, not per cluster.** K3s uses only ExternalIPs as
//!   soon as any node has one, else only InternalIPs, for every Service. One node with a
//!   public address would then remove every other node's InternalIP from the status. We
//!   choose per node and family, so each node publishes the best address it has.
//! * **Numeric address order.** K3s sorts the ingress addresses of a family as strings
//!   (`10.0.0.10` before `10.0.0.9`); we sort them as numbers, so the order is the one a
//!   person expects and does not change when an address gains a digit.
//! * **The exclusion label is honoured.** K3s ServiceLB ignores
//!   `node.kubernetes.io/exclude-from-external-load-balancers`; we follow the Kubernetes
//!   contract (kubeadm and Talos put it on control-plane nodes, MetalLB honours it since
//!   0.14). Unlike MetalLB 0.14, a Service it leaves without nodes gets a condition and an
//!   Event saying exactly that instead of silently announcing nothing, and
//!   `ignore_exclusion_label` turns it off for single-node clusters.
//! * **Serving-but-terminating endpoints are not used.** kube-proxy (KEP-1669) falls back
//!   to endpoints that are `serving` and `terminating` when no ready one is left, and
//!   MetalLB keeps announcing from nodes that have them. Our data plane DNATs straight to
//!   the pods, so new connections would go to a pod that is shutting down; instead the
//!   node leaves the status (`Local`) or the backend leaves the frontend, while connections
//!   already established keep their conntrack entry. K3s, which reads only `ready`, agrees.
//! * **Ingress order follows `spec.ipFamilies`, and the policy is read.** K3s orders the
//!   status by `ipFamilies` as we do but ignores `ipFamilyPolicy`, so a `RequireDualStack`
//!   Service with no node address of one family gets a silent half-status; Cilium's LB-IPAM
//!   ignores the `ipFamilies` order. We publish the primary family first (tools that read
//!   only the first ingress address get the Service's primary family, as with its
//!   ClusterIPs) and refuse a half-served `RequireDualStack` with a condition.
//!
//! # Conditions and Events
//!
//! Every Service we own gets both conditions; every problem condition is mirrored by a
//! `Warning` Event with the same reason and message.
//!
//! | type | status | reason | meaning |
//! |---|---|---|---|
//! | `dualstack.io/LoadBalancerReady` | True | `Ready` | served on at least one node for every family it gets |
//! | `dualstack.io/LoadBalancerReady` | False | `InvalidSpec` | no usable family, no ports, an unknown protocol, or a source range that does not parse |
//! | `dualstack.io/LoadBalancerReady` | False | `NoEligibleNodes` | node selection (deletion, readiness, network, draining, agent Lease, exclusion label, `enablelb`, pool) left no node; the message lists each node and why |
//! | `dualstack.io/LoadBalancerReady` | False | `NoLocalEndpoints` | `externalTrafficPolicy: Local` and no eligible node has a usable endpoint |
//! | `dualstack.io/LoadBalancerReady` | False | `FamilyUnavailable` | a `RequireDualStack` family, or every family, has no address on the eligible nodes |
//! | `dualstack.io/LoadBalancerReady` | False | `PortConflict` | every candidate address is held by older Services |
//! | `dualstack.io/LoadBalancerReady` | False | `PoolNotFound` | `dualstack.io/pool` names a pool that does not exist or has a bad entry |
//! | `dualstack.io/LoadBalancerReady` | False | `AddressNotInPool` | a requested address is in no usable pool (or not in the named one) |
//! | `dualstack.io/LoadBalancerReady` | False | `AddressInUse` | a requested address is held by another Service (named) that does not share |
//! | `dualstack.io/LoadBalancerReady` | False | `SharingClash` | same sharing key, but a port overlaps (named) or a Service is `externalTrafficPolicy: Local` |
//! | `dualstack.io/LoadBalancerReady` | False | `PoolExhausted` | every address of the family in the Service's pools is in use (pools and sizes named) |
//! | `dualstack.io/PortConflict` | False | `NoConflict` | no port lost |
//! | `dualstack.io/PortConflict` | True | `PortConflict` | some address + protocol + port is kept by an older Service (named) |

#![warn(missing_docs)]

pub mod allocate;
pub mod announce;
mod classify;
pub mod conditions;
pub mod config;
mod decide;
pub mod decision;
mod endpoints;
pub mod explain;
pub mod label_map;
pub mod labels;
pub mod live;
mod nodes;
pub mod objects;
pub mod policy;
pub mod pool;
mod pool_mode;
pub mod prefix_pool;
pub mod prefix_state;
pub mod prefixes;
pub mod service_key;
pub mod slice_backends;
pub mod snapshot;
mod snapshot_stream;
pub mod time;

pub use allocate::{ADDRESSES_ANNOTATION, POOL_ANNOTATION, SHARING_KEY_ANNOTATION};
pub use config::{Config, Mode};
pub use decide::{SOURCE_RANGES_ANNOTATION, decide, decide_for_agent, decide_owned, ownership};
pub use decision::Decision;
pub use endpoints::SERVICE_NAME_LABEL;
pub use explain::explain;
pub use labels::{
    DRAINING_TAINTS, ENABLELB_LABEL, EXCLUDE_LABEL, LBPOOL_LABEL, LBPOOL_LABEL_PREFIX,
    POOL_LABEL_PREFIX,
};
pub use service_key::ServiceKey;
pub use slice_backends::SliceBackends;
pub use snapshot::{Snapshot, SnapshotError};
pub use time::Timestamp;
