//! The node labels and taints the decision reads (K3s ServiceLB's, Kubernetes', ours): one
//! place for the API strings, imported by the node selection and by the messages that name
//! them.

/// K3s: as soon as any node has this label key, only nodes with value `true` serve.
pub const ENABLELB_LABEL: &str = "svccontroller.k3s.cattle.io/enablelb";
/// K3s single-value pool label, on nodes and on Services.
pub const LBPOOL_LABEL: &str = "svccontroller.k3s.cattle.io/lbpool";
/// Newer K3s multi-pool node labels: `lbpool.svccontroller.k3s.cattle.io/<pool>=true`, one
/// label per pool (K3s selects a pool's nodes by either this label or [`LBPOOL_LABEL`]).
pub const LBPOOL_LABEL_PREFIX: &str = "lbpool.svccontroller.k3s.cattle.io/";
/// Our multi-pool node labels: `pool.dualstack.io/<pool>=true`, one label per pool.
pub const POOL_LABEL_PREFIX: &str = "pool.dualstack.io/";
/// Kubernetes: nodes with this label (any value) are not used for external load balancers.
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
/// Taint keys that mark a cordoned node as draining (besides any `NoExecute` taint).
pub const DRAINING_TAINTS: [&str; 3] = [
    "ToBeDeletedByClusterAutoscaler",
    "node.kubernetes.io/out-of-service",
    "karpenter.sh/disrupted",
];
