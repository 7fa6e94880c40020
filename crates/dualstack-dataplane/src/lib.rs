//! Applies rendered rulesets to the kernel and reads them back (adapter: runs `nft`,
//! `iptables-restore`, `conntrack`). Every decision — what to render, what a frontend needs —
//! lives in the pure [`dualstack_ruleset`] crate; this crate only runs the tools, in the
//! current or a named network namespace ([`Runner`]), and turns their failures into typed
//! errors that carry the tool's own message.

mod conntrack;
mod dump;
pub mod fake;
pub mod iptables;
pub mod netlink;
mod nft;
mod plane;
mod probe;
pub mod readback;
mod runner;

pub use conntrack::flush_udp;
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
