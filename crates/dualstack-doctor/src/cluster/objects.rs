//! Kubernetes objects for the cluster checks. Services, object metadata and node status are
//! the decision core's own types ([`dualstack_lb::objects`]): one mirror of the API for the
//! whole project. What only the doctor reads (`spec.podCIDRs`, pods, Calico pools) is here,
//! mirrored the same way: camelCase, unknown fields ignored, missing or `null` fields
//! defaulted, so the JSON of `kubectl get -o json` and of the `k8s-openapi` types (which is
//! how `dualstack_kube::doctor` converts what it fetched) deserializes into them.

use dualstack_lb::objects::null_default;
use serde::Deserialize;

pub use dualstack_lb::objects::{NodeAddress, NodeStatus, ObjectMeta, Service};

/// `v1 Node`, with the `spec.podCIDRs` the decision does not read.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Node {
    /// Name and labels.
    pub metadata: ObjectMeta,
    /// Only `podCIDRs`.
    pub spec: NodeSpec,
    /// Addresses and conditions, as the decision reads them.
    pub status: NodeStatus,
}

/// `v1 NodeSpec`: the pod ranges the node was given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeSpec {
    /// `spec.podCIDRs`: one range per family on a dual-stack node.
    #[serde(rename = "podCIDRs", deserialize_with = "null_default")]
    pub pod_cidrs: Vec<String>,
}

/// `v1 Pod`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Pod {
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// Where it runs and whether on the host's network.
    pub spec: PodSpec,
    /// Its phase and addresses.
    pub status: PodStatus,
}

/// `v1 PodSpec`, only what tells whether a pod has pod addresses of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodSpec {
    /// `hostNetwork`: such a pod has the node's addresses, not pod addresses.
    pub host_network: Option<bool>,
    /// The node it was scheduled to.
    pub node_name: Option<String>,
}

/// `v1 PodStatus`: the pod's phase and addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodStatus {
    /// `Running`, `Pending`, …; only running pods count.
    pub phase: Option<String>,
    /// `status.podIPs`: one address per family on a dual-stack cluster.
    #[serde(rename = "podIPs", deserialize_with = "null_default")]
    pub pod_ips: Vec<PodIp>,
}

/// One entry of `status.podIPs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PodIp {
    /// The address, as text.
    pub ip: String,
}

/// Calico `IPPool` (`crd.projectcalico.org/v1` or `projectcalico.org/v3`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IpPool {
    /// The pool's name.
    pub metadata: ObjectMeta,
    /// Its range and settings.
    pub spec: IpPoolSpec,
}

/// The part of an `IPPool`'s spec the checks read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IpPoolSpec {
    /// The pool's range, as written.
    pub cidr: String,
    /// Whether the pool hands out no addresses.
    pub disabled: Option<bool>,
    /// Whether Calico masquerades traffic from the pool that leaves the cluster.
    pub nat_outgoing: Option<bool>,
}
