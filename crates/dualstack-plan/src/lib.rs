//! Dual-stack address planning and configuration checking (pure: no I/O).
//!
//! * [`input`] reads what users already have (K3s config/unit/args, Calico, Traefik) from
//!   file contents;
//! * [`check`] runs the rules over it and returns [`Finding`]s;
//! * [`plan`] computes a consistent dual-stack plan and [`render`] turns it into files;
//! * [`report`] checks the rendered files with [`check`]'s rules and writes the summary
//!   `dualstack plan` prints.

pub mod code;
pub mod finding;
pub mod input;
pub mod version;

pub use code::Code;
pub use finding::{Finding, Severity};
pub mod check;
pub mod plan;
pub mod render;
pub mod report;
