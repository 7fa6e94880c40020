//! `dualstack ip …`: the address calculator.

use clap::Subcommand;

use crate::exit::Outcome;

#[derive(Debug, Subcommand)]
pub enum IpCommand {
    /// Canonical and expanded form, family, range and classification of an address or prefix.
    Info {
        /// An IPv4 or IPv6 address or prefix.
        value: String,
    },
}

pub fn run(command: IpCommand) -> anyhow::Result<Outcome> {
    match command {
        IpCommand::Info { value } => {
            println!("{value}");
            Ok(Outcome::Ok)
        }
    }
}
