//! `dualstack doctor cluster`: is the cluster really dual-stack?
//!
//! `dualstack_kube::doctor` lists a handful of objects into a [`ClusterFacts`]; [`check`]
//! answers:
//!
//! | id | question |
//! |---|---|
//! | `cluster.nodes.pod-cidrs` | every node has two `spec.podCIDRs`, one per family, in one order |
//! | `cluster.nodes.internal-ips` | every node has an `InternalIP` of each family |
//! | `cluster.dns` | the DNS Service `kube-system/kube-dns` has both families |
//! | `cluster.calico.ippools` | Calico IPPools (if the CRD exists) cover both families, inside the cluster CIDRs |
//! | `cluster.services.lb` | our LoadBalancer Services have an ingress address for each family they asked for |
//! | `cluster.pods.dual-stack` | a sample of running (non-hostNetwork) pods has addresses of both families |

mod checks;
pub mod objects;

use ipnet::IpNet;

pub use objects::{IpPool, Node, Pod, Service};

use crate::Report;

/// Everything [`check`] looks at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterFacts {
    /// Every Node, with its `spec.podCIDRs` and addresses.
    pub nodes: Vec<Node>,
    /// `kube-system/kube-dns`; `None` when it does not exist.
    pub dns: Option<Service>,
    /// Services of every type (the LoadBalancer ones of our class are checked).
    pub services: Vec<Service>,
    /// A sample of pods.
    pub pods: Vec<Pod>,
    /// Calico IPPools; `None` when the CRD is not installed.
    pub ip_pools: Option<Vec<IpPool>>,
    /// The cluster CIDRs (`--cluster-cidr` / K3s config), when known: pools must sit inside.
    pub cluster_cidrs: Vec<IpNet>,
    /// Our `loadBalancerClass`.
    pub lb_class: String,
    /// Whether we also own LoadBalancer Services without a class.
    pub default_class: bool,
}

/// Runs every cluster check.
pub fn check(facts: &ClusterFacts) -> Report {
    Report::new(vec![
        checks::pod_cidrs(facts),
        checks::internal_ips(facts),
        checks::dns(facts),
        checks::ip_pools(facts),
        checks::lb_services(facts),
        checks::pods(facts),
    ])
}
