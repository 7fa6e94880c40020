//! `dualstack demo`: the whole data path on this machine, in network namespaces.
//!
//! Builds a two-node dual-stack "cluster" ([`topology`]): a LAN with a client and two nodes,
//! pods behind the nodes running echo backends. Each node's agent reports its live addresses
//! in its Lease and programs its nftables table from the built-in snapshot ([`SNAPSHOT`])
//! through the decision core and the agent's sync ([`agent`]). Then it sends real TCP and UDP
//! flows over IPv4 and IPv6 from the client to every node address and Service port, and
//! compares each with what the decision predicts ([`predict`]). Topology, snapshot and
//! prediction are pure and live in the `dualstack-demo` crate; this module does the I/O.
//! Finally it removes everything it created — also on error and on SIGINT/SIGTERM — unless
//! `--keep`.
//!
//! Exit 0 when every flow went as predicted, 1 when one did not (or something failed),
//! 2 without root or for a bad argument. Nothing is sent outside the demo's namespaces.

mod agent;
mod cleanup;
mod flows;
mod lab;

use std::net::IpAddr;

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use clap::Args;
use dualstack_addr::Family;
use dualstack_agent::announce::AnnounceStep;
use dualstack_demo::SNAPSHOT;
use dualstack_demo::{predict, render, topology};
use dualstack_lb::time::clock;
use dualstack_lb::{Config, Snapshot, Timestamp};
use dualstack_signal::Termination;
use dualstack_testbed::EchoServer;

use crate::exit::{Outcome, usage};
use lab::DemoLab;

/// Prints a line to stdout, ignoring a closed pipe (`dualstack demo | head`): the report is
/// cut short, but the demo still runs to the end and removes what it built.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Also print the nftables table the agent programmed on NODE (default node-1).
    #[arg(long, value_name = "NODE", num_args = 0..=1, default_missing_value = "node-1")]
    show_rules: Option<String>,
    /// Leave the namespaces, rules and backends in place to explore; prints how to enter
    /// them and how to remove them.
    #[arg(long, conflicts_with = "cleanup")]
    keep: bool,
    /// Remove what a kept or killed demo left: the `dsdemo-*` namespaces and the demo's
    /// backends in them, nothing else.
    #[arg(long, conflicts_with = "show_rules")]
    cleanup: bool,
    /// Internal (the backends `--keep` leaves running): serve as pod POD in this namespace.
    #[arg(long, value_name = "POD", hide = true, conflicts_with_all = ["keep", "cleanup", "show_rules"])]
    serve_echo: Option<String>,
    /// Internal: a port for `--serve-echo` (repeatable).
    #[arg(long, hide = true, requires = "serve_echo")]
    port: Vec<u16>,
}

pub fn run(args: DemoArgs) -> anyhow::Result<Outcome> {
    if let Some(pod) = &args.serve_echo {
        return serve_echo(pod, &args.port);
    }
    if let Some(node) = &args.show_rules
        && topology::node(node).is_none()
    {
        let known: Vec<&str> = topology::NODES.iter().map(|n| n.name).collect();
        return Err(usage(format!(
            "--show-rules {node:?}: the demo has no such node (nodes: {})",
            known.join(", ")
        )));
    }
    if !dualstack_testbed::is_root() {
        return Err(usage(
            "dualstack demo needs root: it creates network namespaces and nftables tables \
             (run it with sudo; nothing was changed)",
        ));
    }
    if args.cleanup {
        for line in cleanup::run()? {
            say!("{line}");
        }
        return Ok(Outcome::Ok);
    }
    let interrupt = Termination::listen()?;
    let result = demo(&args, &interrupt);
    if let (Err(_), Some(signal)) = (&result, interrupt.received()) {
        eprintln!("{signal}: everything the demo created was removed");
    }
    result
}

fn now() -> Timestamp {
    clock().unwrap_or(Timestamp::from_unix_micros(0))
}

/// Announce at once and then every few seconds (the demo is short).
fn announce_options() -> dualstack_announce::Options {
    dualstack_announce::Options {
        interval: std::time::Duration::from_secs(5),
        ..dualstack_announce::Options::default()
    }
}

fn client_addrs() -> Vec<IpAddr> {
    Family::BOTH.map(topology::client_addr).to_vec()
}

fn demo(args: &DemoArgs, interrupt: &Termination) -> anyhow::Result<Outcome> {
    let mut snapshot = Snapshot::parse(SNAPSHOT).context("reading the built-in snapshot")?;
    let config = Config::default();
    let ports = topology::pod_ports(&snapshot);

    say!(
        "dualstack demo: {} nodes, {} pods and a client in network namespaces {}*; \
         no packet leaves them\n",
        topology::NODES.len(),
        topology::PODS.len(),
        topology::PREFIX
    );
    // Dropping the lab (error, panic) removes everything it built.
    let mut lab = DemoLab::build(interrupt)?;
    lab.start_backends(&ports, interrupt)?;

    // Each agent reports what it sees on its LAN interface and renews its Lease.
    let now = now();
    let mut reported = Vec::new();
    for node in topology::NODES {
        interrupt.check()?;
        let json = lab.ns(node.name)?.ip(&["-j", "addr", "show"])?;
        let live = agent::report(&json)?;
        agent::renew_lease(&mut snapshot, &config, node.name, &live, now)?;
        reported.push(live);
    }
    // … then syncs its node: decide, take its frontends, program its table.
    let mut programmed = Vec::new();
    for (node, nft) in lab.nfts() {
        interrupt.check()?;
        programmed.push(agent::sync_node(&snapshot, &config, node, now, nft)?);
    }
    let runs: Vec<render::AgentRun> = topology::NODES
        .iter()
        .zip(&reported)
        .zip(&programmed)
        .map(|((node, reported), programmed)| render::AgentRun {
            node: node.name,
            reported,
            table: &programmed.table,
            programmed: &programmed.frontends,
        })
        .collect();
    say!("{}", render::agents(&runs));

    // The status the controller publishes, from the same decision.
    let decision = dualstack_lb::decide(&snapshot, &config, now);
    say!("{}", render::services(&decision));

    // Each agent announces the pool addresses the decision gives its node (ARP / NDP from
    // inside the node's namespace); the client finds them with its own ARP and ND.
    let mut announcers = Vec::new();
    for node in topology::NODES {
        interrupt.check()?;
        let step = Arc::new(Mutex::new(AnnounceStep::new(node.name, announce_options())));
        let (s, d) = (Arc::clone(&step), decision.clone());
        let report = lab
            .ns(node.name)?
            .run_in(move || s.lock().map(|mut s| s.apply(&d)).ok())?
            .context("the announcer lock was poisoned")?;
        if !report.problems.is_empty() {
            anyhow::bail!("{}: {}", node.name, report.problems.join("; "));
        }
        announcers.push((node.name, step, report));
    }
    say!(
        "{}",
        render::announcements(
            &decision,
            &announcers
                .iter()
                .flat_map(|(n, _, r)| r.targets.iter().map(|t| (*n, t.ip, t.interface.as_str())))
                .collect::<Vec<_>>()
        )
    );

    // Real flows, each against its prediction.
    let client = client_addrs();
    let mut results = Vec::new();
    for flow in predict::flows(&decision, &client) {
        interrupt.check()?;
        let seen = flows::send(lab.ns("client")?, &flow);
        let ok = dualstack_demo::observe::matches(&flow, &seen);
        results.push((flow, seen, ok));
    }
    say!("{}", render::flows(&results, &client));
    let all_good = results.iter().all(|(_, _, ok)| *ok);
    // The client learned each pool address from the node that announces it.
    let mut neighbors = Vec::new();
    for a in &decision.announcements {
        let entry = lab
            .ns("client")?
            .ip(&["neigh", "show", &a.ip.to_string(), "dev", "eth0"])?;
        let mac = lab.ns(&a.node)?.ip(&["-o", "link", "show", "eth0"])?;
        let mac = mac
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        neighbors.push((
            a.ip,
            a.node.clone(),
            !mac.is_empty() && entry.contains(&mac),
            entry.trim().to_string(),
        ));
    }
    say!("{}", render::neighbors(&neighbors));
    let all_good = all_good && neighbors.iter().all(|(_, _, ok, _)| *ok);
    drop(announcers);

    if let Some(node) = &args.show_rules {
        let rules = lab
            .ns(node)?
            .exec("nft", &["list", "table", "inet", topology::TABLE])?;
        say!(
            "Rules the agent programmed on {node} (ip netns exec {} nft list table inet {}):\n\n{rules}",
            topology::ns_name(node),
            topology::TABLE
        );
    }

    if args.keep {
        let exe = std::env::current_exe().context("finding this program's path")?;
        let names = lab.keep(&exe, &ports)?;
        say!("{}", kept_instructions(&names));
    } else {
        lab.remove()?;
        say!(
            "Removed everything the demo created ({} namespaces, their tables and backends).",
            topology::NODES.len() + topology::PODS.len() + 2
        );
    }
    Ok(if all_good {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

fn kept_instructions(names: &[String]) -> String {
    let node = topology::ns_name(topology::NODES[0].name);
    let client = topology::ns_name("client");
    let web = topology::NODES[0].lan_addr(Family::V6);
    format!(
        "Kept for exploring: namespaces {}.\n\
         Look around:\n  \
         ip netns exec {node} nft list table inet {table}\n  \
         ip netns exec {client} ip -br addr\n  \
         ip netns exec {client} bash   # then, for example: exec 3<>/dev/tcp/{web}/80; cat <&3\n\
         Remove all of it (namespaces named {prefix}*, and the demo's backends in them):\n  \
         dualstack demo --cleanup",
        names.join(", "),
        table = topology::TABLE,
        prefix = topology::PREFIX,
    )
}

/// The backends `--keep` leaves running: echo servers for `pod` in this process's namespace
/// until SIGTERM/SIGINT.
fn serve_echo(pod: &str, ports: &[u16]) -> anyhow::Result<Outcome> {
    if ports.is_empty() {
        return Err(usage("--serve-echo needs at least one --port"));
    }
    let interrupt = Termination::listen()?;
    let mut servers = Vec::new();
    for port in ports {
        servers.push(
            EchoServer::start_here(pod, *port)
                .with_context(|| format!("serving {pod} on port {port}"))?,
        );
    }
    interrupt.wait();
    drop(servers);
    Ok(Outcome::Ok)
}
