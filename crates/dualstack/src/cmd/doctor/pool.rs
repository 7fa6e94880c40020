//! `dualstack doctor pool ADDRESS -f DUMP [--node NAME]`: why a pool address is (not)
//! reachable. The decision for the dump says who holds it and who should announce it; with
//! `--node` (run on that node, as root) the node's interfaces, `/proc/net/igmp6` and our
//! table say whether the announcer and the rules are in place.

use std::net::IpAddr;

use clap::Args;
use dualstack_dataplane::{Nft, Runner};
use dualstack_doctor::node::{TableState, ip};
use dualstack_doctor::pool::{PoolFacts, check};
use dualstack_lb::Timestamp;

use super::super::decision_input::{DecisionArgs, load_snapshot, offline_now};
use super::print;
use crate::exit::{Outcome, usage};
use crate::output::Format;

#[derive(Debug, Args)]
pub struct PoolArgs {
    /// The pool address clients cannot reach.
    #[arg(value_name = "ADDRESS")]
    address: IpAddr,
    /// The cluster dump (`kubectl get svc,endpointslices,nodes,leases,lbpool -A -o yaml`), `-` for stdin.
    #[arg(long, short = 'f', value_name = "FILE")]
    file: String,
    /// Also check this node's side; run on that node (its network namespace) as root.
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Decide as of this RFC 3339 instant (default: when the dump was taken).
    #[arg(long, value_name = "RFC3339")]
    now: Option<Timestamp>,
    #[command(flatten)]
    decision: DecisionArgs,
    /// Our nftables table (`table inet NAME`).
    #[arg(long, default_value = "dualstack", value_name = "NAME")]
    table: String,
    /// Output format: a checklist with the fix under every problem, or `{"checks":[…]}`.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    output: Format,
}

pub fn run(args: PoolArgs) -> anyhow::Result<Outcome> {
    let snapshot = load_snapshot(&args.file, "--file")?;
    let now = offline_now(args.now, &snapshot)?;
    let decision = dualstack_lb::decide(&snapshot, &args.decision.config(), now);
    let mut facts = PoolFacts {
        address: args.address,
        decision: &decision,
        node: args.node.clone(),
        interfaces: Vec::new(),
        igmp6: None,
        table: None,
    };
    if args.node.is_some() {
        let runner = Runner::host();
        facts.interfaces =
            ip::parse_addrs(&runner.run("ip", &["-d", "-j", "addr", "show"], "")?)?;
        facts.igmp6 = std::fs::read_to_string("/proc/net/igmp6").ok();
        let nft = Nft::new(Runner::host(), &args.table)
            .map_err(|e| usage(format!("--table: `{}`: {e}", args.table)))?;
        facts.table = Some(match nft.observe() {
            Ok(None) => TableState::NotInstalled,
            Ok(Some(o)) => TableState::Present {
                name: args.table.clone(),
                chains: o.chains,
                elements: o.elements,
                other_elements: o.other_elements,
            },
            Err(e) => TableState::Unreadable(e.to_string()),
        });
    }
    print(&check(&facts), args.output)
}
