//! Data-plane model (frontends and backends), its validation and its renderers (pure: no I/O).
//!
//! A [`Ruleset`] is everything one owner (the agent on a node, or one `klipper` container)
//! wants in the kernel: a list of [`Frontend`]s, each mapping traffic that arrives for a
//! destination, protocol and port to backends per family.
//!
//! * [`validate`] checks a ruleset (every renderer calls it first);
//! * [`nft`] renders our `table inet <name>` (full sync, incremental changes, cleanup) and
//!   documents its layout;
//! * [`iptables`] renders `iptables-restore` / `ip6tables-restore` input into our own
//!   chains, for hosts without nf_tables NAT;
//! * [`canonical`] is the order- and handle-free form of what a table holds, and its
//!   `sha256:` hash, the same whether computed from a ruleset or from the kernel's read-back;
//! * [`published`] is what the agent publishes about the ruleset it wants (Lease annotation
//!   `dualstack.io/ruleset`, `GET /ruleset` on its health endpoint);
//! * [`names`] makes the stable per-frontend chain names both use, and the names of the
//!   nft source-range chains frontends with the same ranges share.

pub mod canonical;
mod fast_hash;
pub mod iptables;
mod model;
pub mod names;
pub mod nft;
pub mod published;
mod validate;

pub use model::{
    AddressRange, Backend, DEFAULT_TABLE, Destination, Frontend, Protocol, Ruleset, Selection,
};
pub use validate::{
    FRONTEND_NAME_MAX, InvalidRuleset, RulesetError, TABLE_NAME_MAX, chain_name_collisions,
    validate, validate_frontend, validate_table_name,
};
