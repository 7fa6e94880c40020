//! The `dualstack` command: wires the pure core crates and the adapters together,
//! one module per subcommand under [`cmd`].

mod cmd;
mod exit;
mod input_files;
mod logging;
mod output;
mod sysctl;

use clap::{CommandFactory, Parser, Subcommand};

/// Dual-stack IPv4/IPv6 networking for K3s and bare-metal Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "dualstack", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// IPv4/IPv6 calculator: canonical and expanded forms, counts, split, overlap, ULA.
    #[command(subcommand)]
    Ip(cmd::ip::IpCommand),
    /// LoadBalancer decisions: `lb explain -f dump.yaml` shows what the controller would do.
    #[command(subcommand)]
    Lb(cmd::lb::LbCommand),
    /// Entrypoint for K3s svclb pods: the klipper-lb env contract, both families in one table.
    Klipper(cmd::klipper::KlipperArgs),
    /// Dual-stack address plan and the files that carry it; `plan check` checks an existing setup.
    Plan(cmd::plan::PlanArgs),
    /// The whole data path on this machine (root): a dual-stack cluster in network namespaces, real flows checked against the decision.
    Demo(cmd::demo::DemoArgs),
    /// Benchmarks in throwaway network namespaces (root): rule sync, data path, agent memory.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
    /// Is this node, and this cluster, really dual-stack? A ✓/⚠/✗ checklist with fixes.
    #[command(subcommand)]
    Doctor(cmd::doctor::DoctorCommand),
    /// Per-node agent: programs this node's frontends (nftables) and reports its live addresses.
    Agent(cmd::agent::AgentArgs),
    /// In-cluster LoadBalancer controller: status per family with ipMode, conditions, Events.
    Controller(cmd::controller::ControllerArgs),
    /// Shell completion script (bash, zsh, fish, elvish, powershell) on standard output.
    Completions(cmd::completions::CompletionsArgs),
    /// Man pages: `dualstack(1)` on standard output, or every page into `--out DIR`.
    Man(cmd::man::ManArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Ip(_)
            | Command::Lb(_)
            | Command::Plan(_)
            | Command::Doctor(_)
            | Command::Completions(_)
            | Command::Man(_)
    ) {
        die_quietly_on_closed_pipe();
    }
    let result = match cli.command {
        Command::Ip(c) => cmd::ip::run(c),
        Command::Lb(c) => cmd::lb::run(c),
        Command::Klipper(a) => cmd::klipper::run(a),
        Command::Plan(a) => cmd::plan::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Bench(c) => cmd::bench::run(c),
        Command::Doctor(c) => cmd::doctor::run(c),
        Command::Agent(a) => cmd::agent::run(a),
        Command::Controller(a) => cmd::controller::run(a),
        Command::Completions(a) => cmd::completions::run(a, Cli::command()),
        Command::Man(a) => cmd::man::run(a, Cli::command()),
    };
    exit::report(result)
}

/// Short reporting commands end quietly when their reader goes away
/// (`dualstack ip split 10.0.0.0/8 --into /24 | head`), as Unix tools do. Rust starts with
/// SIGPIPE ignored, which turns that write into a panic. Commands that own kernel state or
/// namespaces (demo, bench, klipper, agent, controller) keep it ignored, so a closed pipe can
/// never stop them before they clean up.
fn die_quietly_on_closed_pipe() {
    // SAFETY: runs at the start of `main`, before this process starts any thread, and
    // `SIG_DFL` is a valid disposition for SIGPIPE; no Rust invariant depends on it.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
