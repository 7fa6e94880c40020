//! `dualstack lb …`: the LoadBalancer decision core, offline.
//!
//! `lb explain -f FILE` reads a `kubectl get svc,endpointslices,nodes,leases -A -o yaml`
//! (or `-o json`) dump, runs the same decision the controller and agents run, and prints per
//! Service the decision and why, and per node its frontends. Exit 0 when every Service we own
//! is served without conflict, 1 when one has a problem condition, 2 for unreadable input.

use std::io::Read as _;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use dualstack_lb::config::{DEFAULT_CLASS, DEFAULT_LEASE_NAMESPACE};
use dualstack_lb::{Config, Decision, Mode, Snapshot, Timestamp};
use serde::Serialize;

use crate::exit::{Outcome, usage};
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
    /// Our `spec.loadBalancerClass`.
    #[arg(long, default_value = DEFAULT_CLASS)]
    class: String,
    /// Also handle LoadBalancer Services that set no `loadBalancerClass`.
    #[arg(long)]
    default_class: bool,
    /// Data plane: `nftables` (our agent, ipMode Proxy) or `kube-proxy` (ipMode VIP, no frontends).
    #[arg(long, default_value = "nftables", value_name = "nftables|kube-proxy")]
    mode: Mode,
    /// Namespace of the per-node agent Leases.
    #[arg(long, default_value = DEFAULT_LEASE_NAMESPACE)]
    lease_namespace: String,
    /// Decide as of this RFC 3339 instant (which agent Leases have expired); default: now.
    #[arg(long, value_name = "RFC3339")]
    now: Option<Timestamp>,
    /// Ignore `node.kubernetes.io/exclude-from-external-load-balancers` on nodes.
    #[arg(long)]
    ignore_exclusion_label: bool,
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
    let text = read_input(&args.file)?;
    let snapshot = Snapshot::parse(&text).map_err(|err| {
        let name = if args.file == "-" {
            "standard input"
        } else {
            &args.file
        };
        usage(format!("cannot read {name} as a cluster dump: {err}"))
    })?;
    let config = Config {
        class: args.class,
        default_class: args.default_class,
        mode: args.mode,
        lease_namespace: args.lease_namespace,
        ignore_exclusion_label: args.ignore_exclusion_label,
    };
    let now = match args.now {
        Some(now) => now,
        None => clock()?,
    };
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

fn read_input(file: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    if file == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|err| usage(format!("cannot read standard input: {err}")))?;
    } else {
        text = std::fs::read_to_string(file)
            .map_err(|err| usage(format!("cannot read --file {file}: {err}")))?;
    }
    Ok(text)
}

fn clock() -> anyhow::Result<Timestamp> {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?;
    let micros = i64::try_from(since.as_micros()).context("the system clock is out of range")?;
    Ok(Timestamp::from_unix_micros(micros))
}
