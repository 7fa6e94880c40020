//! `dualstack plan` and `dualstack plan check`: the address planner and the configuration
//! checker. The pure work is in `dualstack-plan`; this module reads files, draws the random
//! ULA, prints, and writes `--out`.

mod check;
mod make;

use clap::{Args, Subcommand};

use crate::exit::Outcome;

/// `dualstack plan [OPTIONS]` or `dualstack plan check [INPUTS]`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PlanArgs {
    #[command(subcommand)]
    command: Option<PlanCommand>,
    // Boxed so the top-level `Command` enum stays small.
    #[command(flatten)]
    make: Box<make::MakeArgs>,
}

#[derive(Debug, Subcommand)]
enum PlanCommand {
    /// Check an existing K3s config / systemd unit / Calico / Traefik setup and report every
    /// problem with a fix. Exit 1 if any finding is an error.
    Check(Box<check::CheckArgs>),
}

pub use crate::output::Format;

pub fn run(args: PlanArgs) -> anyhow::Result<Outcome> {
    match args.command {
        Some(PlanCommand::Check(c)) => check::run(*c),
        None => make::run(*args.make),
    }
}

/// Parses `--k3s-version` / `--traefik-chart` values.
fn parse_version(text: &str) -> Result<dualstack_plan::version::Version, String> {
    dualstack_plan::version::Version::parse(text)
        .ok_or_else(|| format!("`{text}` is not a version; expected e.g. v1.33.4+k3s1 or 1.33"))
}
