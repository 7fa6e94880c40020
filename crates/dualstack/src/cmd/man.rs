//! `dualstack man [--out DIR]`: man pages generated from the clap definitions. Without
//! `--out`, `dualstack(1)` on standard output; with it, one page per command and subcommand
//! (`dualstack.1`, `dualstack-agent.1`, `dualstack-lb-explain.1`, …) written into DIR.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::exit::Outcome;

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write every page into this directory (created if missing) instead of printing
    /// `dualstack(1)`, e.g. `/usr/local/share/man/man1`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Renders the pages of `command` (the whole CLI).
pub fn run(args: ManArgs, command: clap::Command) -> anyhow::Result<Outcome> {
    match args.out {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .context("rendering the man page")?;
            use std::io::Write as _;
            std::io::stdout()
                .write_all(&page)
                .context("writing the man page")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating --out {}", dir.display()))?;
            clap_mangen::generate_to(command, &dir)
                .with_context(|| format!("writing man pages into --out {}", dir.display()))?;
            println!("man pages written to {}", dir.display());
        }
    }
    Ok(Outcome::Ok)
}
