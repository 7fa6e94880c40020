//! `dualstack lb …`: the LoadBalancer decision core, offline.
//!
//! `lb explain -f FILE` reads a `kubectl get svc,endpointslices,nodes,leases -A -o yaml`
//! (or `-o json`) dump, runs the same decision the controller and agents run, and prints per
//! Service the decision and why, and per node its frontends. Exit 0 when every Service we own
//! is served without conflict, 1 when one has a problem condition, 2 for unreadable input.

use clap::{Args, Subcommand};
use dualstack_lb::{Config, Decision, Timestamp};
use serde::Serialize;

use super::decision_input::{DecisionArgs, load_snapshot, offline_now};
use crate::exit::Outcome;
use crate::output::Format;

#[derive(Debug, Subcommand)]
pub enum LbCommand {
    /// What the controller would decide for a `kubectl get svc,endpointslices,nodes,leases -A -o yaml` dump.
    Explain(ExplainArgs),
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The dump: YAML or JSON, a `List` or a multi-document stream; `-` reads standard input.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: Format,
    #[command(flatten)]
    decision: DecisionArgs,
    /// Decide as of this RFC 3339 instant (which agent Leases have expired); default: when the
    /// dump was taken (its newest Lease renewal), or the clock if it has no Lease.
    #[arg(long, value_name = "RFC3339")]
    now: Option<Timestamp>,
}

pub fn run(command: LbCommand) -> anyhow::Result<Outcome> {
    match command {
        LbCommand::Explain(args) => explain(args),
    }
}

#[derive(Serialize)]
struct Report<'a> {
    now: Timestamp,
    configuration: &'a Config,
    #[serde(flatten)]
    decision: &'a Decision,
}

fn explain(args: ExplainArgs) -> anyhow::Result<Outcome> {
    let snapshot = load_snapshot(&args.file, "--file")?;
    let config = args.decision.config();
    let now = offline_now(args.now, &snapshot)?;
    let decision = dualstack_lb::decide(&snapshot, &config, now);
    match args.output {
        Format::Text => print!("{}", dualstack_lb::explain(&decision, &config, now)),
        Format::Json => {
            let report = Report {
                now,
                configuration: &config,
                decision: &decision,
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    Ok(if decision.has_problems() {
        Outcome::Problems
    } else {
        Outcome::Ok
    })
}
