//! Our nftables table as nf_tables netlink batches — pure encoding, bytes out, no sockets.
//!
//! * [`encode`]: the full-sync, incremental and cleanup batches for a
//!   [`Ruleset`](dualstack_ruleset::Ruleset), statement for statement what the text
//!   renderer in [`dualstack_ruleset::nft`] writes, encoded the way `nft` encodes that text;
//! * [`expr`]: the expressions our rules use (meta, cmp, payload, bitwise, ct, fib, lookup,
//!   nat, masq, numgen, jhash, immediate);
//! * [`types`]: set key/value types and the user data nft attaches to sets;
//! * [`wire`]: netlink framing — messages, attributes, the batch with its generation id and
//!   its per-message descriptions for error reports.
//!
//! The socket that sends a batch and collects its acks is an adapter, in
//! `dualstack-dataplane` (`netlink` module).
//!
//! # Why an encoder of our own
//! Evaluated (late 2026):
//! * `netlink-bindings` (generated from the kernel's `nftables.yaml` spec): covers every
//!   attribute, but it is young (0.x), its generated API exposes the whole spec (a large
//!   crate to build on 2 cores for the ~40 attributes we use), an open issue reports a hang
//!   on batch send, and it would still leave us to reproduce nft's conventions (implicit
//!   `meta nfproto` dependencies, register allocation, set user data, interval-set
//!   encoding) that make our table list identically to one written by `nft`.
//! * `rustables` / `nftnl`: GPL or a C dependency, and no maps with data, `fib` or
//!   `numgen` in their safe layers.
//! * `netlink-packet-core` + `netlink-sys` (rust-netlink, well kept): framing and sockets,
//!   no nf_tables messages. The socket side uses them; the encoder here is ~1k lines
//!   writing straight into one buffer (a 10,000-Service batch is a few MB, encoded in a
//!   few ms with no per-message allocations beyond the buffer), with the attribute numbers
//!   of `include/uapi/linux/netfilter/nf_tables.h`.

pub mod encode;
pub mod expr;
pub mod types;
pub mod wire;

pub use encode::{changes, delete, full, full_check, full_in_place, full_then};
pub use wire::{Batch, FinishedBatch};

/// Why a batch could not be encoded (nothing was sent).
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The ruleset (or the table name) failed [`dualstack_ruleset::validate`]; nothing was
    /// encoded.
    #[error(transparent)]
    Invalid(#[from] dualstack_ruleset::InvalidRuleset),
    /// An attribute payload of this many bytes exceeds [`wire::MAX_ATTR`], the most a 16-bit
    /// netlink attribute length can describe.
    #[error("an attribute of {0} bytes does not fit a netlink attribute")]
    TooLarge(usize),
    /// A set type declaration named a type [`types::parse`] does not know (the whole
    /// declaration is kept).
    #[error("unknown nft type {0:?}")]
    UnknownType(String),
    /// The plan put an element in a map the table does not declare (a bug in the plan).
    #[error("an element for the undeclared map {0:?}")]
    UnknownMap(String),
}
