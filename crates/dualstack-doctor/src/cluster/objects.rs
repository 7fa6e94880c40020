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
    pub metadata: ObjectMeta,
    pub spec: NodeSpec,
    pub status: NodeStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeSpec {
    #[serde(rename = "podCIDRs", deserialize_with = "null_default")]
    pub pod_cidrs: Vec<String>,
}

/// `v1 Pod`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Pod {
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
    pub status: PodStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodSpec {
    pub host_network: Option<bool>,
    pub node_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodStatus {
    pub phase: Option<String>,
    #[serde(rename = "podIPs", deserialize_with = "null_default")]
    pub pod_ips: Vec<PodIp>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PodIp {
    pub ip: String,
}

/// Calico `IPPool` (`crd.projectcalico.org/v1` or `projectcalico.org/v3`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IpPool {
    pub metadata: ObjectMeta,
    pub spec: IpPoolSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IpPoolSpec {
    pub cidr: String,
    pub disabled: Option<bool>,
    pub nat_outgoing: Option<bool>,
}
