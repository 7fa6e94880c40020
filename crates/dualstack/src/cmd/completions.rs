//! `dualstack completions SHELL`: a shell completion script generated from the clap
//! definitions, on standard output (install command in the README).

use clap::Args;
use clap_complete::Shell;

use crate::exit::Outcome;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Writes the completion script for `command` (the whole CLI) to standard output.
pub fn run(args: CompletionsArgs, mut command: clap::Command) -> anyhow::Result<Outcome> {
    let name = command.get_name().to_string();
    clap_complete::generate(args.shell, &mut command, name, &mut std::io::stdout());
    Ok(Outcome::Ok)
}
