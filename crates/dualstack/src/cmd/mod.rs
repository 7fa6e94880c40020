//! One module per subcommand. Each parses its own flags, calls the core, and prints.

pub mod agent;
pub mod bench;
pub mod completions;
pub mod controller;
pub mod decision_input;
pub mod demo;
pub mod doctor;
pub mod ip;
pub mod klipper;
pub mod lb;
pub mod man;
pub mod plan;
