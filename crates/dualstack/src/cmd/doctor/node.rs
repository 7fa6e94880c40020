//! `dualstack doctor node`: gathers this network namespace's facts and runs the node checks.
//!
//! Everything is read from the namespace the process runs in (`/proc/sys/net` and the tools
//! follow it), so `ip netns exec NS dualstack doctor node` checks NS.

use std::path::PathBuf;

use clap::Args;
use dualstack_addr::Family;
use dualstack_dataplane::{Nft, Runner};
use dualstack_doctor::node::{self, NodeFacts, PodCidrs, TableState, ip, masq};

use super::{desired, k3s, print};
use crate::exit::{Outcome, usage};
use crate::output::Format;

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The pod networks (cluster CIDRs), e.g. 10.42.0.0/16,fd12:3456:789a::/56; repeatable.
    /// Default: `cluster-cidr` from the K3s config.
    #[arg(long, value_name = "CIDR[,CIDR]")]
    pod_cidr: Vec<String>,
    /// K3s config file (its `config.yaml.d/` drop-ins are read too).
    /// Default: /etc/rancher/k3s/config.yaml when it exists.
    #[arg(long, value_name = "FILE")]
    k3s_config: Option<PathBuf>,
    /// Compare our table with what the agent wants: its health endpoint, e.g.
    /// http://127.0.0.1:9655 (`GET /ruleset`).
    #[arg(
        long,
        env = "DUALSTACK_AGENT_URL",
        value_name = "URL",
        conflicts_with = "desired"
    )]
    agent_url: Option<String>,
    /// Compare our table with what the agent wants, from a file (`-`: stdin): the JSON of
    /// `GET /ruleset` or of `dualstack agent --once --publish-ruleset`, or the agent's Lease
    /// (`kubectl get lease -n dualstack-system dualstack-agent-NODE -o yaml`: hash only).
    #[arg(long, value_name = "FILE")]
    desired: Option<String>,
    /// With --desired: whose agent Lease to read when the file holds several.
    #[arg(long, value_name = "NAME", requires = "desired")]
    node: Option<String>,
    /// Our nftables table (`table inet NAME`).
    #[arg(long, default_value = "dualstack", value_name = "NAME")]
    table: String,
    /// Output format: a checklist with the fix under every problem, or `{"checks":[…]}`.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    output: Format,
}

pub fn run(args: NodeArgs) -> anyhow::Result<Outcome> {
    let explicit = k3s::parse_cidrs(&args.pod_cidr, "--pod-cidr")?;
    let nft = Nft::new(Runner::host(), &args.table)
        .map_err(|e| usage(format!("--table: `{}`: {e}", args.table)))?;
    let k3s = k3s::find(args.k3s_config.as_deref())?;
    let wanted = match (&args.agent_url, &args.desired) {
        (Some(url), _) => desired::from_agent(url),
        (None, Some(file)) => {
            let text = if file == "-" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                    .map_err(|e| usage(format!("--desired -: cannot read standard input: {e}")))?;
                text
            } else {
                std::fs::read_to_string(file)
                    .map_err(|e| usage(format!("cannot read --desired {file}: {e}")))?
            };
            node::published::from_file(file, &text, args.node.as_deref())
        }
        (None, None) => node::Desired::NotAsked,
    };
    let pod_cidrs = if explicit.is_empty() {
        k3s.as_ref()
            .map(|k| k.pod_cidrs.clone())
            .unwrap_or_default()
    } else {
        PodCidrs {
            cidrs: explicit,
            source: "--pod-cidr".into(),
        }
    };
    let runner = Runner::host();
    let interfaces = ip::parse_addrs(&runner.run("ip", &["-d", "-j", "addr", "show"], "")?)?;
    let mut routes = Vec::new();
    for (family, flag) in [(Family::V4, "-4"), (Family::V6, "-6")] {
        // With IPv6 disabled in the kernel `ip -6 route` fails: no routes of that family.
        if let Ok(json) = runner.run("ip", &["-j", flag, "route", "show", "default"], "") {
            routes.extend(ip::parse_routes(&json, family)?);
        }
    }
    let sysctls = node::sysctl_keys(&interfaces)
        .into_iter()
        .filter_map(|key| {
            let path = crate::sysctl::proc_sys().join(node::sysctl_path(&key));
            std::fs::read_to_string(path)
                .ok()
                .map(|v| (key, v.trim().to_string()))
        })
        .collect();
    let facts = NodeFacts {
        sysctls,
        interfaces,
        routes,
        masquerade: masquerade_rules(&runner),
        pod_cidrs,
        cni: k3s.map(|k| k.cni).unwrap_or_default(),
        table: match nft.observe() {
            Ok(None) => TableState::NotInstalled,
            Ok(Some(o)) => TableState::Present {
                name: args.table.clone(),
                chains: o.chains,
                elements: o.elements,
                other_elements: o.other_elements,
            },
            Err(e) => TableState::Unreadable(e.to_string()),
        },
        desired: wanted,
    };
    print(&node::check(&facts), args.output)
}

/// Masquerade rules from `nft -j list ruleset`, `iptables-save` and `ip6tables-save`;
/// `None` when none of them could be read.
fn masquerade_rules(runner: &Runner) -> Option<Vec<masq::MasqRule>> {
    let mut rules = Vec::new();
    let mut read_any = false;
    if let Ok(json) = runner.run("nft", &["-j", "list", "ruleset"], "")
        && let Ok(found) = masq::from_nft_json(&json)
    {
        rules.extend(found);
        read_any = true;
    }
    for (tool, family) in [
        ("iptables-save", Family::V4),
        ("ip6tables-save", Family::V6),
    ] {
        if let Ok(text) = runner.run(tool, &["-t", "nat"], "") {
            rules.extend(masq::from_iptables_save(&text, family));
            read_any = true;
        }
    }
    read_any.then_some(rules)
}
