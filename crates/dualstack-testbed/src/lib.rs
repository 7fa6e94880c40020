//! Throwaway network-namespace topologies for tests, the demo and benchmarks.
//!
//! * [`Netns`]: one namespace with a unique name, removed on drop (also when a test panics);
//!   run `ip`/programs inside it, set sysctls, add addresses and routes.
//! * [`veth`]: connect two namespaces.
//! * [`Lab`]: a ready-made "node + hosts" topology, both families, forwarding on.
//! * [`EchoServer`], [`tcp_request`], [`udp_request`]: servers that answer with their id and
//!   the client address they saw, and clients with timeouts.
//! * [`kernel_tests_enabled`]: the skip-or-fail gate every kernel test starts with.
//! * `builders` (feature `builders`): the Kubernetes objects of a test's cluster dump,
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
    /// A program (`ip`, `nft`, …) could not be started.
    #[error("could not start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why it could not start.
        source: std::io::Error,
    },
    /// A command ran and failed.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// What it printed on standard error.
        stderr: String,
    },
    /// A named network namespace could not be opened.
    #[error("could not open network namespace {name}: {source}")]
    OpenNetns {
        /// The namespace's name.
        name: String,
        /// Why.
        source: std::io::Error,
    },
    /// `setns(2)` into a network namespace failed.
    #[error("could not enter network namespace: {0}")]
    Setns(nix::Error),
    /// A closure run inside a network namespace panicked.
    #[error("a thread running inside a network namespace panicked")]
    ThreadPanicked,
    /// An echo server could not bind its port.
    #[error("could not bind echo server on port {port}: {source}")]
    Bind {
        /// The port.
        port: u16,
        /// Why.
        source: std::io::Error,
    },
    /// A test client's request failed.
    #[error("{protocol} request to {to} failed: {source}")]
    Client {
        /// `tcp`, `udp` or `sctp`.
        protocol: &'static str,
        /// Where it was sent.
        to: SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A server answered something that is not an echo reply.
    #[error("unexpected reply from {to}: {text:?}")]
    BadReply {
        /// Who answered.
        to: SocketAddr,
        /// What it said.
        text: String,
    },
    /// A sysctl could not be read or written.
    #[error("could not access sysctl {key}: {source}")]
    Sysctl {
        /// The sysctl's key.
        key: String,
        /// Why.
        source: std::io::Error,
    },
    /// More hosts were asked of a lab than its addressing plan has room for.
    #[error("a lab holds at most 255 hosts")]
    TooManyHosts,
    /// A file or socket operation of the test bed failed.
    #[error("could not {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// The in-process test API server failed.
    #[error("test API server: {0}")]
    KubeApi(String),
}
