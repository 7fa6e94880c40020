//! The `--output text|json` choice every reporting subcommand offers.

use clap::ValueEnum;

/// How a subcommand prints its result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Readable text (the default).
    #[default]
    Text,
    /// One JSON document on standard output, for scripts.
    Json,
}
