//! Throwaway network-namespace topologies for tests, the demo and benchmarks.
//!
//! * [`Netns`]: one namespace with a unique name, removed on drop (also when a test panics);
//!   run `ip`/programs inside it, set sysctls, add addresses and routes.
//! * [`veth`]: connect two namespaces.
//! * [`Lab`]: a ready-made "node + hosts" topology, both families, forwarding on.
//! * [`EchoServer`], [`tcp_request`], [`udp_request`]: servers that answer with their id and
//!   the client address they saw, and clients with timeouts.
//! * [`kernel_tests_enabled`]: the skip-or-fail gate every kernel test starts with.
//! * [`builders`] (feature `builders`): the Kubernetes objects of a test's cluster dump,
//!   typed (`cluster().node(node("node-a").ready()).service(svc("default", "web").lb())…`).
//! * [`KubeApi`]: a real kube-apiserver and etcd (`tests/kube/run`), and
//!   [`kube_tests_enabled`], the gate of the tests that use it; [`LoopbackForward`] makes its
//!   loopback port reachable inside a node namespace.
//!
//! ```no_run
//! use std::time::Duration;
//! use dualstack_addr::Family;
//! use dualstack_testbed::{EchoServer, Lab, kernel_tests_enabled, tcp_request};
//!
//! if kernel_tests_enabled("example") {
//!     let mut lab = Lab::new()?;
//!     lab.add_hosts("client", 1)?;
//!     lab.add_hosts("backend", 1)?;
//!     let (client, backend) = (&lab.hosts()[0], &lab.hosts()[1]);
//!     let _server = EchoServer::start(&backend.ns, "b1", 8080)?;
//!     let reply = tcp_request(&client.ns, backend.socket(Family::V6, 8080), Duration::from_secs(1))?;
//!     assert_eq!(reply.peer, client.addr(Family::V6)); // routed, not NATed
//! }
//! # Ok::<(), dualstack_testbed::TestbedError>(())
//! ```

#[cfg(feature = "builders")]
pub mod builders;
mod echo;
mod forward;
mod gate;
mod json;
mod kube_api;
mod lab;
mod netns;

use std::net::SocketAddr;

pub use echo::{EchoServer, Reply, tcp_request, tcp_request_here, udp_request, udp_request_here};
pub use forward::LoopbackForward;
pub use gate::{REQUIRE_ENV, is_root, kernel_tests_enabled};
pub use json::integral_numbers;
pub use kube_api::{KubeApi, REQUIRE_KUBE_ENV, kube_tests_enabled, repo_root};
pub use lab::{Host, Lab};
pub use netns::{Netns, veth};

/// Everything that can go wrong building or using a test bed.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    #[error("could not start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("could not open network namespace {name}: {source}")]
    OpenNetns {
        name: String,
        source: std::io::Error,
    },
    #[error("could not enter network namespace: {0}")]
    Setns(nix::Error),
    #[error("a thread running inside a network namespace panicked")]
    ThreadPanicked,
    #[error("could not bind echo server on port {port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("{protocol} request to {to} failed: {source}")]
    Client {
        protocol: &'static str,
        to: SocketAddr,
        source: std::io::Error,
    },
    #[error("unexpected reply from {to}: {text:?}")]
    BadReply { to: SocketAddr, text: String },
    #[error("could not access sysctl {key}: {source}")]
    Sysctl { key: String, source: std::io::Error },
    #[error("a lab holds at most 255 hosts")]
    TooManyHosts,
    #[error("could not {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("test API server: {0}")]
    KubeApi(String),
}
