//! The pure half of `dualstack demo`: no namespaces, no sockets, no kernel.
//!
//! * [`topology`]: the demo's little network as data (a client, two nodes, their pods).
//! * [`SNAPSHOT`]: the same cluster the way Kubernetes would print it; a test keeps both in
//!   agreement.
//! * [`predict`]: what the decision predicts for every flow the demo sends, read from the
//!   frontends it gives each node.
//! * [`observe`]: what happened to a flow, and whether it matches its prediction.
//! * [`render`]: the report the demo prints, as text.
//!
//! The binary builds the network from [`topology`], sends the flows [`predict::flows`] lists,
//! and compares what happened with each [`predict::Expect`].

pub mod observe;
pub mod predict;
pub mod render;
pub mod topology;

/// The cluster the demo plays, as `kubectl get … -o yaml` would print it.
pub const SNAPSHOT: &str = include_str!("snapshot.yaml");

/// The decision for [`SNAPSHOT`] at the demo's fixed time, for the unit tests.
#[cfg(test)]
pub(crate) fn demo_decision() -> dualstack_lb::Decision {
    #[allow(clippy::unwrap_used)]
    let snapshot = dualstack_lb::Snapshot::parse(SNAPSHOT).unwrap();
    #[allow(clippy::unwrap_used)]
    let now: dualstack_lb::Timestamp = "2025-04-10T10:00:05Z".parse().unwrap();
    dualstack_lb::decide(&snapshot, &dualstack_lb::Config::default(), now)
}
