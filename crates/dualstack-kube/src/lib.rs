//! kube-rs glue for `dualstack controller` and `dualstack agent` (adapter).
//!
//! Every decision is made by the pure [`dualstack_lb::decide`]; this crate only moves objects
//! between the API server and that function:
//!
//! * [`convert`]: `k8s-openapi` objects → [`dualstack_lb::objects`] (a serde round trip:
//!   the core's types mirror the API's JSON).
//! * [`cluster`]: reflectors on Services, EndpointSlices, Nodes and our agent Leases, and a
//!   [`Snapshot`](dualstack_lb::Snapshot) of them; a change counter wakes whoever syncs.
//! * [`status`] and [`finalizer`] (pure): the exact merge patches for
//!   `status.loadBalancer` + `status.conditions` and for our finalizer — `None` when nothing
//!   would change, so unchanged Services cost no request.
//! * [`decision_cache`]: the cluster-wide decision, computed once per change of what it
//!   reads and shared by every reconcile.
//! * [`reconcile`]: the controller's reconcile function and error policy (backoff), and
//!   [`reconcile::release`], which `controller --release-all` uses for uninstall.
//! * [`controller`]: the controller wiring: reflectors, `kube::runtime::Controller`, leader
//!   election with `kube-lease-manager` (one active replica).
//! * [`lease`]: the agent's per-node Lease carrying its live addresses.
//! * [`doctor`]: the list calls behind `dualstack doctor cluster`, converted for its checks.
//! * [`uninstall`]: `controller --release-all`, our status and finalizers off every Service.
//! * [`crd`]: the `LoadBalancerPool` CRD, generated from the core's type.
//! * [`health`] and [`metrics`]: the one port both long-running processes serve
//!   (`/healthz`, `/readyz`, `/metrics`, and the agent's `/ruleset`). They hold no Kubernetes
//!   client; they live here, beside [`controller`], so that the controller and the agent
//!   runtime (`dualstack-agent-live`, which depends on this crate) share one copy.

pub mod cluster;
pub mod controller;
pub mod convert;
pub mod crd;
pub mod decision_cache;
pub mod doctor;
pub mod finalizer;
pub mod health;
pub mod lease;
pub mod metrics;
pub mod reconcile;
pub mod status;
pub mod uninstall;

/// The field manager / reporting controller name used in every write.
pub const MANAGER: &str = "dualstack";
