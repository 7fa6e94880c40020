//! The klipper-lb environment contract, read without side effects.
//!
//! K3s's ServiceLB runs one `svclb` container per Service port and describes what that
//! container must forward through environment variables (`SRC_PORT`, `SRC_RANGES`,
//! `DEST_PROTO`, `DEST_PORT`, `DEST_IPS`, legacy `DEST_IP`, and the dual-stack fork's
//! `DEST_IP6`). This crate turns those variables into a validated [`KlipperConfig`]
//! ([`contract`]) and that configuration into a data-plane [`Ruleset`](dualstack_ruleset::Ruleset)
//! for the families the container can forward ([`program`](mod@program)).
//!
//! Reading the environment, the forwarding sysctls and talking to the kernel are the caller's
//! job (`dualstack klipper` in the binary); everything here is a pure function.

pub mod contract;
pub mod program;

pub use contract::{ContractError, KlipperConfig, VARIABLES};
pub use program::{FamilyPlan, Forwarding, Program, default_table_name, program};
