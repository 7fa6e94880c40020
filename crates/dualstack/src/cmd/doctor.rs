//! `dualstack doctor node` and `dualstack doctor cluster`: is this node, and this cluster,
//! really dual-stack? `dualstack doctor pool`: why is a pool address unreachable?
//!
//! The checks live in the pure `dualstack-doctor` crate; the submodules here only gather the
//! facts (`/proc/sys`, `ip`, `nft`, `iptables-save`, the K3s config, the Kubernetes API) and
//! print the report. Exit 0 when no check fails, 1 when one does, 2 for bad flags or
//! unreadable input.

mod cluster;
mod desired;
mod k3s;
mod node;
mod pool;

use clap::Subcommand;
use dualstack_doctor::Report;

use crate::exit::Outcome;
use crate::output::Format;

#[derive(Debug, Subcommand)]
pub enum DoctorCommand {
    /// Check this node (the current network namespace): forwarding, accept_ra, default
    /// routes, addresses, br_netfilter, pod masquerade, our nft table (and with --agent-url
    /// or --desired, whether it holds what the agent wants). Run as root.
    Node(node::NodeArgs),
    /// Check the cluster (kubeconfig): pod CIDRs and InternalIPs per node, DNS, Calico
    /// IPPools, our LoadBalancer Services, a sample of pods.
    Cluster(cluster::ClusterArgs),
    /// Why a LoadBalancer pool address is unreachable: who holds it, who should announce it,
    /// and with --node (run there) the interface, multicast membership and rules.
    Pool(pool::PoolArgs),
}

pub fn run(command: DoctorCommand) -> anyhow::Result<Outcome> {
    match command {
        DoctorCommand::Node(args) => node::run(args),
        DoctorCommand::Cluster(args) => cluster::run(args),
        DoctorCommand::Pool(args) => pool::run(args),
    }
}

/// Prints the report (text: a ✓/⚠/✗ checklist with the fix under every problem; JSON:
/// `{"checks":[{"id","status","message","fix"}]}`) and maps it to the exit outcome.
fn print(report: &Report, output: Format) -> anyhow::Result<Outcome> {
    match output {
        Format::Text => print!("{}", report.to_text()),
        Format::Json => println!("{}", serde_json::to_string_pretty(report)?),
    }
    Ok(if report.has_failures() {
        Outcome::Problems
    } else {
        Outcome::Ok
    })
}
