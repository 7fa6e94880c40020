//! The checks behind `dualstack doctor` (pure: no I/O).
//!
//! The binary gathers facts — sysctl values, `ip -j addr` / `ip -j route` output, netfilter
//! rules (`nft -j list ruleset`, `iptables-save`), the K3s config, Kubernetes objects — and
//! this crate turns them into a [`Report`]: one [`Check`] per question, each `ok`, `warn` or
//! `fail`, every non-ok one with the exact command or config line that fixes it.
//!
//! * [`node`]: is this node (this network namespace) ready for dual-stack?
//! * [`cluster`]: is the cluster really dual-stack (nodes, DNS, Calico pools, Services, pods)?
//! * [`pool`]: why a LoadBalancer pool address is (not) reachable, and where it breaks.
//! * [`report`]: the check model and the ✓/⚠/✗ text rendering.
//!
//! ```
//! use dualstack_doctor::{Check, Report, Status};
//!
//! let report = Report::new(vec![
//!     Check::ok("node.forwarding.ipv4", "net.ipv4.ip_forward = 1"),
//!     Check::fail("node.forwarding.ipv6", "net.ipv6.conf.all.forwarding = 0",
//!                 "sysctl -w net.ipv6.conf.all.forwarding=1"),
//! ]);
//! assert!(report.has_failures());
//! assert!(report.to_text().contains("✗ node.forwarding.ipv6"));
//! ```

pub mod cluster;
pub mod node;
pub mod pool;
pub mod report;
mod sysctl_fix;

pub use report::{Check, Report, Status};
