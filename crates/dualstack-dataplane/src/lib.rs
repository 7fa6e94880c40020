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
    /// The ruleset (or the frontends of a change, or the table name) failed validation;
    /// nothing was applied.
    #[error(transparent)]
    Invalid(#[from] InvalidRuleset),
    /// A tool could not be started, fed its input or waited for.
    #[error("could not run {program}: {source}")]
    Spawn {
        /// The tool's name (`nft`, `iptables-restore`, …), even when it runs under
        /// `ip netns exec`.
        program: String,
        /// The error from starting it, writing its stdin or collecting its output.
        source: std::io::Error,
    },
    /// The tool ran and refused; `stderr` is its own message.
    #[error("`{command}` failed: {stderr}")]
    Failed {
        /// The command line that failed, as `program args…` (without any
        /// `ip netns exec` prefix); `fake transaction` for the fake data plane.
        command: String,
        /// The tool's standard error, trimmed (the fake's reason for refusing).
        stderr: String,
    },
    /// `nft -j` printed something that is not the JSON listing we expect.
    #[error("could not read nft's JSON output: {detail}")]
    BadJson {
        /// What was wrong: the parser's error, or the missing or malformed part.
        detail: String,
    },
    /// A netlink operation failed (nf_tables batch or dump, ctnetlink): the socket, the
    /// encoding, or a message the kernel refused.
    #[error(transparent)]
    Netlink(#[from] netlink::NetlinkError),
    /// The operation is not available on this data plane (e.g. incremental changes or
    /// reading the table back with `iptables-restore`).
    #[error("{plane} does not support {what}")]
    Unsupported {
        /// The data plane asked (e.g. `iptables-restore`).
        plane: &'static str,
        /// The operation it lacks (e.g. `incremental changes`).
        what: &'static str,
    },
    /// A failure the fake data plane was told to produce.
    #[error("injected failure: {0}")]
    Injected(String),
    /// The ruleset names a different table than the one this handle was created for;
    /// nothing was applied.
    #[error("ruleset is for table {ruleset:?} but this handle manages table {handle:?}")]
    WrongTable {
        /// The table this handle manages.
        handle: String,
        /// The table the ruleset names.
        ruleset: String,
    },
}
