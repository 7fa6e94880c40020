//! One module per subcommand. Each parses its own flags, calls the core, and prints.

pub mod ip;
pub mod lb;
