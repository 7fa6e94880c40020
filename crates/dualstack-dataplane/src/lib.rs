// documented in its own change
#![allow(missing_docs)]
//! Applies rulesets to the kernel and reads them back (adapter). Every decision — what to
//! render, what a frontend needs — lives in the pure [`dualstack_ruleset`] crate (and its
//! netlink encoding in the pure `dualstack_nftnl`); this crate talks to the kernel, in the
//! current or a named network namespace ([`Runner`]), and turns failures into typed errors
//! that carry the kernel's or the tool's own message.
//!
//! * [`Dataplane`]: the seam the sync engine programs through — apply a whole ruleset,
//!   apply incremental changes, read back (drift), clean up;
//! * [`Netlink`]: nf_tables batches on one long-lived netlink socket, read back by netlink
//!   dumps, stale UDP flows deleted over ctnetlink (preferred: no process at run time);
//! * [`Nft`]: the same table through `nft -f -` (fallback, and the test oracle);
//! * [`IptablesRestore`]: `iptables-restore` into our own chains, for kernels without
//!   nf_tables NAT;
//! * [`fake::Fake`]: in memory, for tests without root;
//! * [`connect`]: picks the first of netlink, `nft`, `iptables-restore` that a dry run
//!   accepts.

mod conntrack;
mod ctnetlink;
mod dump;
pub mod fake;
pub mod iptables;
pub mod netlink;
mod nft;
mod plane;
mod probe;
pub mod readback;
mod runner;

pub use conntrack::{UdpFlows, flush_udp};
pub use iptables::IptablesRestore;
pub use netlink::{Netlink, NetlinkError, NftSocket};
pub use nft::{Nft, udp_ports};
pub use plane::Dataplane;
pub use probe::{Backend, connect, probe, probe_netlink};
pub use readback::{Drift, Observed};
pub use runner::{Finished, Runner};

use dualstack_ruleset::InvalidRuleset;

/// Why a data-plane operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error(transparent)]
    Invalid(#[from] InvalidRuleset),
    #[error("could not run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    /// The tool ran and refused; `stderr` is its own message.
    #[error("`{command}` failed: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("could not read nft's JSON output: {detail}")]
    BadJson { detail: String },
    #[error(transparent)]
    Netlink(#[from] netlink::NetlinkError),
    #[error("{plane} does not support {what}")]
    Unsupported {
        plane: &'static str,
        what: &'static str,
    },
    /// A failure the fake data plane was told to produce.
    #[error("injected failure: {0}")]
    Injected(String),
    #[error("ruleset is for table {ruleset:?} but this handle manages table {handle:?}")]
    WrongTable { handle: String, ruleset: String },
}
