//! The node agent's engine, without any Kubernetes client: turn a cluster [`Snapshot`] into
//! this node's nft table, and collect the node's live addresses for its Lease.
//!
//! * [`sync_once`]: one offline sync — decide, take this node's frontends, build the
//!   [`Ruleset`](dualstack_ruleset::Ruleset) and apply it as one atomic transaction. This is
//!   what `dualstack agent --snapshot FILE --once` and `dualstack demo` run.
//! * [`Syncer`]: the same steps for a long-running agent, remembering what it applied last:
//!   incremental transactions when only a few frontends changed ([`plan::plan`]), a full
//!   transaction otherwise, and a periodic [`Syncer::resync`] that reads the table back and
//!   repairs drift.
//! * [`why_nothing`]: when a sync leaves the node without frontends, the report says why
//!   (the decision's reasons, grouped).
//! * [`count_own_agent_live`]: the offline agent counts itself as live for its own node
//!   (a dump taken before the agent was installed has no agent Lease for it).
//! * [`announce`]: this node's pool addresses from the decision to the ARP/NDP announcer
//!   (`dualstack-announce`).
//! * [`addresses`]: which of the node's interface addresses are reported as live addresses
//!   (pure filtering and flags), and with the `netlink` feature, [`netlink`] dumps and
//!   watches them over rtnetlink;
//! * [`prefixes`]: which on-link global IPv6 prefixes (with lifetimes) it reports for pools
//!   that follow the ISP's prefix.
//!
//! The decisions themselves live in the pure [`dualstack_lb`] core; the rendering in
//! [`dualstack_ruleset`]; running `nft` in [`dualstack_dataplane`]. The in-cluster agent
//! (`dualstack agent`) feeds this crate from kube-rs reflectors (`dualstack-kube`).
//!
//! ```no_run
//! use dualstack_agent::sync_once;
//! use dualstack_dataplane::{Nft, Runner};
//! use dualstack_lb::{Config, Snapshot, Timestamp};
//!
//! let snapshot = Snapshot::parse(&std::fs::read_to_string("cluster.yaml")?)?;
//! let nft = Nft::new(Runner::host(), "dualstack")?;
//! let now: Timestamp = "2026-01-01T00:00:00Z".parse()?;
//! let report = sync_once(&snapshot, &Config::default(), "node-1", now, &nft)?;
//! println!("{report}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Snapshot`]: dualstack_lb::Snapshot

pub mod addresses;
pub mod announce;
mod idle;
#[cfg(feature = "netlink")]
pub mod netlink;
mod own_lease;
pub mod plan;
pub mod prefixes;
mod sync;

pub use idle::why_nothing;
pub use own_lease::{OWN_LEASE_SECONDS, OwnLease, count_own_agent_live};
pub use sync::{AgentError, FullReason, SyncKind, SyncReport, Syncer, node_ruleset, sync_once};
