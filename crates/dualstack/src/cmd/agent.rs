//! `dualstack agent`: the per-node agent.
//!
//! * `--node NAME --snapshot FILE --once`: offline mode. Reads a cluster dump (the `lb
//!   explain` format), programs NAME's frontends into our nft table through the same sync
//!   engine as the live agent ([`dualstack_agent::Syncer`]), prints what it did and exits 0.
//!   The rules stay. The agent running is NAME's own, so NAME counts as having a live agent
//!   even when the dump has no (or an expired) agent Lease for it
//!   ([`dualstack_agent::count_own_agent_live`]); when nothing is programmed, the output
//!   says why. With `--publish-ruleset FILE` it also writes the ruleset it wanted, as the
//!   JSON the live agent serves on `GET /ruleset` (for `dualstack doctor node --desired`).
//! * `--cleanup`: deletes our table (and nothing else), then exits.
//! * otherwise: the in-cluster agent ([`dualstack_agent_live::run`]).

use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use dualstack_agent::OwnLease;
use dualstack_agent::addresses::default_excluded;
use dualstack_dataplane::{Dataplane, DataplaneError, Runner};
use dualstack_lb::{Mode, Timestamp};
use dualstack_ruleset::DEFAULT_TABLE;
use dualstack_signal::shutdown_signal;

use super::decision_input::{DecisionArgs, load_snapshot, offline_now};
use crate::exit::{Outcome, usage};
use crate::logging::{self, LogFormat};

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// This node's name (as in `kubectl get nodes`); in a DaemonSet, from the downward API.
    #[arg(long, env = "NODE_NAME", value_name = "NAME")]
    pub node: Option<String>,
    /// Offline: read the cluster from this dump (YAML/JSON, `-` for stdin) instead of the API.
    #[arg(long, value_name = "FILE", requires = "once")]
    pub snapshot: Option<String>,
    /// Sync once and exit (rules stay). Needs --snapshot.
    #[arg(long, requires = "snapshot")]
    pub once: bool,
    /// Offline: decide as of this RFC 3339 instant (which agent Leases have expired); default:
    /// when the dump was taken (its newest Lease renewal), or the clock if it has no Lease.
    #[arg(long, value_name = "RFC3339", requires = "snapshot")]
    pub now: Option<Timestamp>,
    /// Offline: write the ruleset this sync wanted to FILE, as the JSON the live agent serves
    /// on `GET /ruleset` (for `dualstack doctor node --desired FILE`).
    #[arg(long, value_name = "FILE", requires = "once")]
    pub publish_ruleset: Option<std::path::PathBuf>,
    /// Delete our nft table (and nothing else), then exit.
    #[arg(long, conflicts_with_all = ["snapshot", "once"])]
    pub cleanup: bool,
    /// The nft table we own (`table inet NAME`).
    #[arg(long, env = "DUALSTACK_TABLE", default_value = DEFAULT_TABLE, value_name = "NAME")]
    pub table: String,
    #[command(flatten)]
    pub decision: DecisionArgs,
    /// Health and metrics listen address (`/healthz`, `/readyz`, `/metrics`).
    #[arg(
        long,
        env = "DUALSTACK_HEALTH_ADDR",
        default_value = "0.0.0.0:9655",
        value_name = "ADDR:PORT"
    )]
    pub health_addr: std::net::SocketAddr,
    /// How long the agent's Lease stays valid without a renewal (renewed 4 times as often);
    /// the controller drops the node from Service status this long after the agent stops.
    #[arg(long, env = "DUALSTACK_LEASE_DURATION_SECONDS", default_value_t = 40,
          value_parser = clap::value_parser!(i32).range(2..=3600), value_name = "SECONDS")]
    pub lease_duration_seconds: i32,
    /// Full read-back and drift repair every this many seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub resync_seconds: u64,
    /// Interfaces whose addresses are not node addresses (trailing `*` = prefix); replaces the default list.
    #[arg(long = "exclude-interface", value_name = "NAME", value_delimiter = ',')]
    pub exclude_interfaces: Option<Vec<String>>,
    /// Re-announce this node's pool addresses (gratuitous ARP, unsolicited NA) every this
    /// many seconds; 0: only on takeover.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub announce_interval_seconds: u64,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

pub fn run(args: AgentArgs) -> anyhow::Result<Outcome> {
    dualstack_ruleset::validate_table_name(&args.table)
        .map_err(|e| usage(format!("--table {:?}: {e}", args.table)))?;
    // Netlink first, then the nft binary, then iptables-restore (dry-run probes).
    let (nft, backend) = dualstack_dataplane::connect(&Runner::host(), &args.table)
        .with_context(|| "no usable data plane (nf_tables over netlink, nft, iptables-restore)")?;
    tracing::debug!(?backend, "data plane chosen");
    if args.cleanup {
        let present = match nft.observe() {
            Ok(table) => table.is_some(),
            // A plane that cannot read back: clean up anyway (idempotent).
            Err(DataplaneError::Unsupported { .. }) => true,
            Err(e) => {
                return Err(anyhow::Error::new(e))
                    .with_context(|| format!("reading table inet {}", args.table));
            }
        };
        if !present {
            println!("table inet {} is not present: nothing to do", args.table);
            return Ok(Outcome::Ok);
        }
        nft.cleanup()
            .with_context(|| format!("removing table inet {}", args.table))?;
        println!("table inet {} removed (nothing else touched)", args.table);
        return Ok(Outcome::Ok);
    }
    let node = match args.node.as_deref() {
        Some(n) if !n.trim().is_empty() => n.to_string(),
        _ => {
            return Err(usage(
                "--node (or NODE_NAME) is required: the name of this node",
            ));
        }
    };
    match &args.snapshot {
        Some(file) => offline(&args, &node, file, nft.as_ref()),
        None => live(args, node, nft),
    }
}

/// The in-cluster agent, until SIGTERM/SIGINT.
fn live(args: AgentArgs, node: String, nft: Box<dyn Dataplane>) -> anyhow::Result<Outcome> {
    logging::init(args.log_format);
    let opts = dualstack_agent_live::Options {
        node,
        dataplane: nft,
        config: args.decision.config(),
        health_addr: args.health_addr,
        lease_duration_seconds: args.lease_duration_seconds,
        resync: Duration::from_secs(args.resync_seconds),
        exclude_interfaces: args.exclude_interfaces.unwrap_or_else(default_excluded),
        announce_interval: Duration::from_secs(args.announce_interval_seconds),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(dualstack_agent_live::run(opts, shutdown_signal()))?;
    Ok(Outcome::Ok)
}

fn offline(
    args: &AgentArgs,
    node: &str,
    file: &str,
    nft: &dyn Dataplane,
) -> anyhow::Result<Outcome> {
    let mut snapshot = load_snapshot(file, "--snapshot")?;
    let config = args.decision.config();
    let now = offline_now(args.now, &snapshot)?;
    let known = snapshot.nodes.iter().any(|n| n.metadata.name == node);
    if known && config.mode == Mode::Nftables {
        match dualstack_agent::count_own_agent_live(&mut snapshot, &config, node, now) {
            OwnLease::AlreadyLive => {}
            other => eprintln!("note: node {node}: {other}"),
        }
    }
    // The same engine as `sync_once`, kept to read back what it wanted. The snapshot is
    // handed over: it is dropped once decided, before the apply.
    let mut syncer = dualstack_agent::Syncer::new(nft, node);
    let result = syncer.sync_owned(snapshot, &config, now);
    if let Some(path) = &args.publish_ruleset {
        publish(path, node, syncer.wanted(), now)?;
    }
    let report = result.map_err(|e| match e {
        dualstack_agent::AgentError::UnknownNode { .. } => usage(format!("--node: {e}")),
        other => anyhow::Error::new(other),
    })?;
    print!("{report}");
    Ok(Outcome::Ok)
}

/// Writes what the sync wanted (written even when the kernel refused it: that is what the
/// doctor should compare with). Nothing wanted (kube-proxy mode, unknown node): no file.
fn publish(
    path: &std::path::Path,
    node: &str,
    wanted: Option<&dualstack_ruleset::Ruleset>,
    now: Timestamp,
) -> anyhow::Result<()> {
    let Some(ruleset) = wanted else {
        eprintln!(
            "note: nothing programmed, so no ruleset written to --publish-ruleset {}",
            path.display()
        );
        return Ok(());
    };
    let published = dualstack_ruleset::published::Published::next(
        None,
        node,
        ruleset.clone(),
        &now.to_string(),
    )?;
    let json = serde_json::to_string_pretty(&published)? + "\n";
    std::fs::write(path, json)
        .with_context(|| format!("writing --publish-ruleset {}", path.display()))
}
