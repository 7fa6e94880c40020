//! The demo's report as text: what each agent reported and programmed, each Service's
//! status and conditions, the pool addresses and their announcers, and the table of flows
//! against their predictions.

use std::fmt::Write as _;
use std::net::IpAddr;

use dualstack_lb::Decision;
use dualstack_lb::decision::ServiceDecision;
use dualstack_lb::live::LiveAddress;
use dualstack_ruleset::Frontend;

use crate::observe::{Observed, destination};
use crate::predict::{Expect, Flow, Sees};
use crate::topology;

/// What one node's agent did.
pub struct AgentRun<'a> {
    /// The node the agent ran on.
    pub node: &'a str,
    /// The live addresses it reported for the node.
    pub reported: &'a [LiveAddress],
    /// The nft table it programmed.
    pub table: &'a str,
    /// The frontends it programmed there.
    pub programmed: &'a [Frontend],
}

fn join<T: ToString>(items: impl IntoIterator<Item = T>, sep: &str) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

/// One line per agent: the addresses it reported, the frontends it programmed.
pub fn agents(runs: &[AgentRun]) -> String {
    let mut out = String::from("Agents (one per node: report live addresses, program nftables)\n");
    for run in runs {
        let reported = join(
            run.reported.iter().map(|a| {
                let mut text = a.addr.to_string();
                if a.temporary {
                    text.push_str(" (temporary)");
                }
                if a.deprecated {
                    text.push_str(" (deprecated)");
                }
                text
            }),
            ", ",
        );
        let frontends = join(
            run.programmed
                .iter()
                .map(|f| format!("{} {}/{}", f.name, f.port, f.protocol)),
            ", ",
        );
        let _ = writeln!(out, "  {}  reports {reported}", run.node);
        let _ = writeln!(
            out,
            "  {:w$}  table inet {}: {}",
            "",
            run.table,
            if frontends.is_empty() {
                "no frontends".to_string()
            } else {
                frontends
            },
            w = run.node.len()
        );
    }
    out
}

/// Where an ingress address comes from: `node-1, agent, global`.
fn origin(service: &ServiceDecision, ip: IpAddr) -> String {
    // A pool address: the node that announces it (the others stand by).
    let mut nodes: Vec<_> = service.why.nodes.iter().collect();
    nodes.sort_by_key(|v| {
        !v.addresses
            .iter()
            .any(|a| a.ip == ip && a.detail.ends_with("announces"))
    });
    nodes
        .into_iter()
        .find_map(|v| {
            v.addresses
                .iter()
                .find(|a| a.ip == ip)
                .map(|a| format!("{}, {}: {}", v.node, a.source, a.detail))
        })
        .unwrap_or_default()
}

/// What each node's announcer took on: the decision's pool addresses, then each
/// `(node, address, interface)` an announcer announces.
pub fn announcements(decision: &Decision, announcing: &[(&str, IpAddr, &str)]) -> String {
    let mut out =
        String::from("Pool addresses (announced by one node each, ARP for IPv4, NDP for IPv6)\n");
    if decision.pool_addresses.is_empty() {
        out.push_str("  (no pool address in use)\n");
    }
    for a in &decision.pool_addresses {
        let services = join(a.services.iter().map(|(s, _)| s.to_string()), ", ");
        let by = a.announcer.as_deref().unwrap_or("nobody");
        let standby = join(
            a.candidates
                .iter()
                .filter(|c| Some(c.as_str()) != a.announcer.as_deref())
                .cloned(),
            ", ",
        );
        let _ = writeln!(
            out,
            "  {:<16} pool {} · {services} · announced by {by}{}",
            a.ip.to_string(),
            a.pool,
            if standby.is_empty() {
                String::new()
            } else {
                format!(", standby {standby}")
            }
        );
    }
    for (node, ip, interface) in announcing {
        let _ = writeln!(out, "  {node}: announcing {ip} on {interface}");
    }
    out
}

/// The client's neighbor entries for the pool addresses: (address, announcer, entry holds
/// its MAC, the entry as `ip neigh` prints it).
pub fn neighbors(entries: &[(std::net::IpAddr, String, bool, String)]) -> String {
    let mut out = String::new();
    if entries.is_empty() {
        return out;
    }
    out.push_str("Client neighbor entries for pool addresses (its own ARP / neighbor discovery)\n");
    for (ip, node, ok, entry) in entries {
        let mark = if *ok { "✓" } else { "✗" };
        let _ = writeln!(out, "  {mark} {ip}: {entry} (announcer {node})");
    }
    out
}

/// Each Service: what it asks for, its ingress per family with `ipMode`, its conditions.
pub fn services(decision: &Decision) -> String {
    let mut out = String::from("Services (the status the controller publishes)\n");
    for s in &decision.services {
        let families = join(s.why.families.iter().map(|f| f.k8s_name()), "+");
        let ports = join(
            s.why
                .ports
                .iter()
                .map(|p| format!("{}/{}", p.port, p.protocol)),
            " ",
        );
        let _ = writeln!(
            out,
            "\n  {}/{}  {families} {} · externalTrafficPolicy {} · {ports}",
            s.namespace, s.name, s.why.ip_family_policy, s.why.external_traffic_policy
        );
        if s.ingress.is_empty() {
            let _ = writeln!(out, "    ingress   (none)");
        }
        let width = s
            .ingress
            .iter()
            .map(|i| i.ip.to_string().len())
            .max()
            .unwrap_or(0);
        for (n, ingress) in s.ingress.iter().enumerate() {
            let family = dualstack_addr::Family::of(ingress.ip).k8s_name();
            let _ = writeln!(
                out,
                "    {:9} {family}  {:width$}  ipMode {:5}  ({})",
                if n == 0 { "ingress" } else { "" },
                ingress.ip.to_string(),
                ingress.ip_mode,
                origin(s, ingress.ip),
            );
        }
        for c in &s.conditions {
            let mark = if c.is_problem() { "!" } else { " " };
            let _ = writeln!(
                out,
                "  {mark} {}={} {}: {}",
                c.type_, c.status, c.reason, c.message
            );
        }
        for note in &s.why.notes {
            let _ = writeln!(out, "    note: {note}");
        }
    }
    out
}

/// The expected column: `web-1|web-2 see node-1 (demo/web:http)` or `nothing: why`.
fn expected(flow: &Flow) -> String {
    match &flow.expect {
        Expect::Answer {
            frontend,
            backends,
            sees,
            losers,
        } => {
            let who = join(backends.iter().map(|b| topology::owner_of(*b)), "|");
            let sees = match sees {
                Sees::Client(_) => "the client".to_string(),
                Sees::Node(node) => node.clone(),
            };
            let mut text = format!("{who} sees {sees} ({frontend})");
            if !losers.is_empty() {
                let _ = write!(text, "; {} lost this port here", losers.join(", "));
            }
            text
        }
        Expect::Nothing { why } => format!("no answer: {why}"),
    }
}

fn observed(o: &Observed) -> String {
    match o {
        Observed::Answered { pod, peer } => {
            format!("{pod} saw {peer} ({})", topology::owner_of(*peer))
        }
        Observed::Refused => "no answer (refused)".to_string(),
        Observed::Silence => "no answer (timed out)".to_string(),
        Observed::Failed(e) => format!("error: {e}"),
    }
}

/// The flow table, one row per flow, ✓ when it went as predicted, and a summary line.
pub fn flows(results: &[(Flow, Observed, bool)], client: &[IpAddr]) -> String {
    let header = [
        "",
        "family",
        "node",
        "destination",
        "expected (from the decision)",
        "observed",
    ];
    let mut rows: Vec<[String; 6]> = vec![header.map(str::to_string)];
    for (flow, seen, ok) in results {
        rows.push([
            if *ok { "✓" } else { "✗" }.to_string(),
            flow.target.family.k8s_name().to_string(),
            flow.target.node.clone(),
            format!("{} {}", flow.protocol, destination(flow)),
            expected(flow),
            observed(seen),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = format!(
        "Flows just sent from the client ({}) and what the decision predicts\n\n",
        join(client, ", ")
    );
    for row in &rows {
        let mut line = String::from(" ");
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = w - cell.chars().count();
                let _ = write!(line, "{cell}{:pad$}  ", "");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let good = results.iter().filter(|(_, _, ok)| *ok).count();
    let _ = if good == results.len() {
        writeln!(out, "\n{good} of {} flows as predicted ✓", results.len())
    } else {
        writeln!(
            out,
            "\n{} of {} flows NOT as predicted ✗",
            results.len() - good,
            results.len()
        )
    };
    out
}

#[cfg(test)]
mod tests {
    use dualstack_addr::Family;

    use super::*;
    use crate::predict;

    fn decision() -> Decision {
        crate::demo_decision()
    }

    #[test]
    fn services_text() {
        insta::assert_snapshot!(services(&decision()));
    }

    /// Observations as a perfect data plane would produce them: the first backend answers.
    fn ideal(flow: &Flow) -> Observed {
        match &flow.expect {
            Expect::Answer { backends, sees, .. } => Observed::Answered {
                pod: topology::owner_of(backends[0]),
                peer: match sees {
                    Sees::Client(c) => *c,
                    Sees::Node(n) => topology::node(n).unwrap().lan_addr(flow.target.family),
                },
            },
            Expect::Nothing { .. } => Observed::Refused,
        }
    }

    #[test]
    fn flow_table_text() {
        let client: Vec<IpAddr> = Family::BOTH.map(topology::client_addr).to_vec();
        let flows = predict::flows(&decision(), &client);
        let mut results: Vec<(Flow, Observed, bool)> = flows
            .into_iter()
            .map(|f| {
                let o = ideal(&f);
                let ok = crate::observe::matches(&f, &o);
                (f, o, ok)
            })
            .collect();
        assert!(results.iter().all(|r| r.2));
        insta::assert_snapshot!("flows_all_good", super::flows(&results, &client));
        // A flow that went wrong is marked and counted.
        results[0].1 = Observed::Silence;
        results[0].2 = false;
        let text = super::flows(&results, &client);
        assert!(text.contains("✗"), "{text}");
        assert!(
            text.ends_with("1 of 18 flows NOT as predicted ✗\n"),
            "{text}"
        );
    }
}
