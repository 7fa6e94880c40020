//! Data-plane model (frontends and backends) and its renderers (pure: no I/O).
//!
//! A [`Ruleset`] is everything one owner (the agent on a node, or one `klipper` container)
//! wants in the kernel: a list of [`Frontend`]s, each mapping traffic that arrives for a
//! destination, protocol and port to backends per family.

mod model;

pub use model::{Backend, DEFAULT_TABLE, Destination, Frontend, Protocol, Ruleset, Selection};
