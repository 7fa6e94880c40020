//! `dualstack bench …`: measurements of the data plane in throwaway network namespaces
//! (root only). The measuring code lives in the `dualstack-bench` crate; this module parses
//! flags and prints. Method and results: `BENCHMARKS.md`.

use std::time::Duration;

use clap::{Args, Subcommand};
use dualstack_bench::{BenchError, datapath, memory, sync};

use crate::exit::{Outcome, usage};
use crate::output::Format;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Rule sync at N Services: nft full sync and incremental, klipper-style, iptables-restore.
    Sync(SyncArgs),
    /// New-connection latency, request rate and bulk throughput through the node.
    Datapath(DatapathArgs),
    /// Peak memory of `dualstack agent --snapshot FILE --once` on a generated N-Service dump.
    Memory(MemoryArgs),
}

#[derive(Debug, Args)]
pub struct MemoryArgs {
    /// Service counts to measure, comma-separated (each 1 to 50000).
    #[arg(
        long,
        value_name = "N[,N…]",
        value_delimiter = ',',
        default_value = "1,10000"
    )]
    services: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Service counts to measure, comma-separated (each 1 to 50000).
    #[arg(
        long,
        value_name = "N[,N…]",
        value_delimiter = ',',
        default_value = "1,100,1000,10000"
    )]
    services: Vec<String>,
    /// Repetitions of each measurement; medians, min and max are reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// Seconds the klipper-style baseline may take per N (all runs together); past it the
    /// result is "over budget" with a linear extrapolation.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=3600))]
    budget_secs: u32,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(Debug, Args)]
pub struct DatapathArgs {
    /// Service counts to measure, comma-separated (each 1 to 50000); the other N−1
    /// frontends are present but idle.
    #[arg(
        long,
        value_name = "N[,N…]",
        value_delimiter = ',',
        default_value = "1,10000"
    )]
    services: Vec<String>,
    /// Measured new connections per scenario and family (after warm-up).
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u32).range(10..=100_000))]
    connections: u32,
    /// Rounds the scenarios are interleaved in (spreads machine noise evenly).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=50))]
    rounds: u32,
    /// MiB sent per bulk-throughput transfer (0 skips the bulk test).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(0..=8192))]
    bulk_mib: u32,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

pub fn run(command: BenchCommand) -> anyhow::Result<Outcome> {
    match command {
        BenchCommand::Sync(a) => run_sync(a),
        BenchCommand::Datapath(a) => run_datapath(a),
        BenchCommand::Memory(a) => run_memory(a),
    }
}

/// Parses `--services` (already split on commas) into counts, naming a bad value.
fn services(list: &[String]) -> anyhow::Result<Vec<usize>> {
    let counts = list
        .iter()
        .map(|s| {
            s.trim().parse::<usize>().map_err(|_| {
                usage(format!(
                    "--services: {s:?} is not a number (expected a comma-separated list like 1,100,1000)"
                ))
            })
        })
        .collect::<anyhow::Result<Vec<usize>>>()?;
    dualstack_bench::check_services(&counts).map_err(|e| usage(e.to_string()))?;
    Ok(counts)
}

fn needs_root() -> anyhow::Result<()> {
    if dualstack_bench::is_root() {
        Ok(())
    } else {
        Err(usage(
            "bench needs root: it creates network namespaces and programs nftables inside them",
        ))
    }
}

fn run_sync(a: SyncArgs) -> anyhow::Result<Outcome> {
    let options = sync::SyncOptions {
        services: services(&a.services)?,
        runs: a.runs as usize,
        budget: Duration::from_secs(u64::from(a.budget_secs)),
    };
    needs_root()?;
    let report = sync::run(&options).map_err(bench_error)?;
    match a.output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print!("{}", dualstack_bench::text::sync(&report)),
    }
    Ok(Outcome::Ok)
}

fn run_datapath(a: DatapathArgs) -> anyhow::Result<Outcome> {
    let options = datapath::DatapathOptions {
        services: services(&a.services)?,
        connections: a.connections as usize,
        rounds: a.rounds as usize,
        bulk_bytes: u64::from(a.bulk_mib) << 20,
    };
    needs_root()?;
    let report = datapath::run(&options).map_err(bench_error)?;
    match a.output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print!("{}", dualstack_bench::text::datapath(&report)),
    }
    Ok(Outcome::Ok)
}

fn run_memory(a: MemoryArgs) -> anyhow::Result<Outcome> {
    let options = memory::MemoryOptions {
        services: services(&a.services)?,
        exe: std::env::current_exe()?,
    };
    needs_root()?;
    let report = memory::run(&options).map_err(bench_error)?;
    match a.output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print!("{}", dualstack_bench::text::memory(&report)),
    }
    Ok(Outcome::Ok)
}

fn bench_error(e: BenchError) -> anyhow::Error {
    match e {
        BenchError::Services(_) | BenchError::NoServices => usage(e.to_string()),
        other => anyhow::Error::new(other),
    }
}
