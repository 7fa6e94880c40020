//! What the decision predicts for each flow the demo sends (pure).
//!
//! The flows are every Service port (protocol and port) against every node address the
//! decision chose, in both families. The prediction for one flow is read from the frontends
//! the decision gives that node — the same frontends its agent programs — never written by
//! hand: a frontend bound to the address, protocol and port answers with one of its backends
//! of that family, and the backend sees the client's address when the frontend does not
//! masquerade (`externalTrafficPolicy: Local`), or an address of the node when it does. No
//! frontend, no backend of the family, or a client outside the source ranges means no answer;
//! the reason is taken from the decision's verdicts.

use std::collections::BTreeSet;
use std::net::IpAddr;

use dualstack_addr::Family;
use dualstack_lb::Decision;
use dualstack_lb::decision::AddressSource;
use dualstack_ruleset::{Destination, Frontend, Protocol};

/// A node address a flow is sent to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// The node the address belongs to.
    pub node: String,
    /// The address's family.
    pub family: Family,
    /// The address itself.
    pub addr: IpAddr,
}

/// Which source address the backend should see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sees {
    /// The client's own address (no masquerade).
    Client(IpAddr),
    /// Some address of this node (masqueraded).
    Node(String),
}

/// The predicted outcome of one flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// One of `backends` answers, seeing `sees`.
    Answer {
        /// The frontend (`namespace/name:port`) that takes the flow.
        frontend: String,
        /// The pods that may answer (one of them does).
        backends: Vec<IpAddr>,
        /// Which source address the answering backend should see.
        sees: Sees,
        /// Services that wanted the same port here and lost it (port conflicts).
        losers: Vec<String>,
    },
    /// Nothing answers (refused or silence), and why.
    Nothing {
        /// Why nothing answers (no frontend on the port, a source range, a family not served, …).
        why: String,
    },
}

/// One flow: from the client, to a node address, protocol and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// The node address the flow is sent to.
    pub target: Target,
    /// The flow's protocol.
    pub protocol: Protocol,
    /// The port it is sent to.
    pub port: u16,
    /// What the decision says should happen.
    pub expect: Expect,
}

/// Every node address the decision chose for some Service (per node and family), and every
/// pool address at the node that announces it (standbys receive nothing), sorted.
pub fn targets(decision: &Decision) -> Vec<Target> {
    let announced = |node: &str, ip: IpAddr| {
        decision
            .announcements
            .iter()
            .any(|a| a.node == node && a.ip == ip)
    };
    let set: BTreeSet<Target> = decision
        .services
        .iter()
        .flat_map(|s| &s.why.nodes)
        .flat_map(|v| {
            v.addresses
                .iter()
                .filter(|a| a.source != AddressSource::Pool || announced(&v.node, a.ip))
                .map(|a| Target {
                    node: v.node.clone(),
                    family: a.family,
                    addr: a.ip,
                })
        })
        .collect();
    set.into_iter().collect()
}

/// The flows to send and what each should do: every Service port (sorted by port, then
/// protocol) against every target. `client` holds the client's address of each family.
pub fn flows(decision: &Decision, client: &[IpAddr]) -> Vec<Flow> {
    let ports: BTreeSet<(u16, Protocol)> = decision
        .services
        .iter()
        .flat_map(|s| s.why.ports.iter().map(|p| (p.port, p.protocol)))
        .collect();
    let targets = targets(decision);
    // A pool address carries only the ports of the Services on it (the node's guard drops
    // the rest): no point in waiting for the silence of the others.
    let pool_ports = |addr: IpAddr| -> Option<BTreeSet<(u16, Protocol)>> {
        decision
            .pool_addresses
            .iter()
            .find(|a| a.ip == addr)
            .map(|a| {
                decision
                    .services
                    .iter()
                    .filter(|s| a.services.iter().any(|(k, _)| k.is(&s.namespace, &s.name)))
                    .flat_map(|s| s.why.ports.iter().map(|p| (p.port, p.protocol)))
                    .collect()
            })
    };
    let mut out = Vec::new();
    for (port, protocol) in ports {
        for target in &targets {
            if pool_ports(target.addr).is_some_and(|p| !p.contains(&(port, protocol))) {
                continue;
            }
            let from = client
                .iter()
                .copied()
                .find(|c| Family::of(*c) == target.family);
            out.push(Flow {
                expect: expect(decision, target, protocol, port, from),
                target: target.clone(),
                protocol,
                port,
            });
        }
    }
    out
}

fn takes(frontend: &Frontend, addr: IpAddr, protocol: Protocol, port: u16) -> bool {
    frontend.protocol == protocol
        && frontend.port == port
        && match &frontend.destination {
            Destination::AnyLocal => true,
            Destination::Addresses(list) => list.contains(&addr),
        }
}

fn expect(
    decision: &Decision,
    target: &Target,
    protocol: Protocol,
    port: u16,
    client: Option<IpAddr>,
) -> Expect {
    let family = target.family;
    let frontend = decision
        .frontends_for(&target.node)
        .iter()
        .find(|f| takes(f, target.addr, protocol, port));
    let Some(frontend) = frontend else {
        return Expect::Nothing {
            why: why_not(decision, target, protocol, port),
        };
    };
    let backends: Vec<IpAddr> = frontend.backends_of(family).map(|b| b.addr).collect();
    if backends.is_empty() {
        return Expect::Nothing {
            why: format!("{} has no {} backend", frontend.name, family.k8s_name()),
        };
    }
    let Some(client) = client else {
        return Expect::Nothing {
            why: format!("the client has no {} address", family.k8s_name()),
        };
    };
    if !frontend
        .source_ranges_of(family)
        .any(|r| r.contains(&client))
    {
        return Expect::Nothing {
            why: format!("{client} is outside the source ranges of {}", frontend.name),
        };
    }
    let sees = if frontend.masquerade {
        Sees::Node(target.node.clone())
    } else {
        Sees::Client(client)
    };
    Expect::Answer {
        frontend: frontend.name.clone(),
        backends,
        sees,
        losers: losers(decision, target, protocol, port),
    }
}

/// Services with this port that lost `target`'s address to an older one (the winner is the
/// frontend's Service).
fn losers(decision: &Decision, target: &Target, protocol: Protocol, port: u16) -> Vec<String> {
    let mut out = Vec::new();
    for service in &decision.services {
        for verdict in service.why.nodes.iter().filter(|v| v.node == target.node) {
            for c in &verdict.conflicts {
                if c.ip == target.addr && c.protocol == protocol && c.port == port {
                    out.push(format!("{}/{}", service.namespace, service.name));
                }
            }
        }
    }
    out
}

/// Why nothing serves this address, protocol and port, from the decision's verdicts.
fn why_not(decision: &Decision, target: &Target, protocol: Protocol, port: u16) -> String {
    let mut reasons = Vec::new();
    for service in &decision.services {
        if !service
            .why
            .ports
            .iter()
            .any(|p| p.protocol == protocol && p.port == port)
        {
            continue;
        }
        let name = service.key();
        let on_pool = decision
            .pool_addresses
            .iter()
            .any(|a| a.services.iter().any(|(s, _)| *s == name));
        if on_pool && !service.ingress.iter().any(|i| i.ip == target.addr) {
            continue; // its pool addresses are elsewhere: not a reason for this address
        }
        if !service.why.families.contains(&target.family) {
            let families: Vec<&str> = service.why.families.iter().map(|f| f.k8s_name()).collect();
            reasons.push(format!("{name} is {} only", families.join("+")));
            continue;
        }
        let verdict = service.why.nodes.iter().find(|v| v.node == target.node);
        match verdict.and_then(|v| v.dropped.as_ref()) {
            Some(dropped) => reasons.push(format!("{name} is not on {}: {dropped}", target.node)),
            None => reasons.push(format!("{name} is not programmed on {}", target.node)),
        }
    }
    if reasons.is_empty() {
        format!("no Service uses {port}/{protocol}")
    } else {
        reasons.join("; ")
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::topology;

    fn decision() -> Decision {
        crate::demo_decision()
    }

    fn client() -> Vec<IpAddr> {
        Family::BOTH
            .into_iter()
            .map(topology::client_addr)
            .collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn find(flows: &[Flow], node: &str, addr: &str, port: u16) -> Expect {
        flows
            .iter()
            .find(|f| f.target.node == node && f.target.addr == ip(addr) && f.port == port)
            .unwrap_or_else(|| panic!("no flow to {addr}:{port}"))
            .expect
            .clone()
    }

    #[test]
    fn targets_are_the_chosen_node_addresses() {
        // Without the agent's report, node-1's IPv6 address is its ULA InternalIP.
        let t: Vec<(String, IpAddr)> = targets(&decision())
            .into_iter()
            .map(|t| (t.node, t.addr))
            .collect();
        assert_eq!(
            t,
            vec![
                ("node-1".into(), ip("192.0.2.11")),
                ("node-1".into(), ip("fd00:1::11")),
                ("node-2".into(), ip("192.0.2.12")),
                ("node-2".into(), ip("192.0.2.240")),
                ("node-2".into(), ip("2001:db8:1::12")),
                // The pool addresses, at their announcer only (node-1 stands by).
                ("node-2".into(), ip("2001:db8:1::f1")),
            ]
        );
    }

    #[test]
    fn predictions_follow_the_services() {
        let flows = flows(&decision(), &client());
        assert_eq!(
            flows.len(),
            4 * 4 + 2,
            "4 ports x 4 node addresses, and the pool Service's port on its 2 addresses"
        );
        // Cluster: any web pod of the family answers, masqueraded.
        assert_eq!(
            find(&flows, "node-2", "2001:db8:1::12", 80),
            Expect::Answer {
                frontend: "demo/web:http".into(),
                backends: vec![ip("2001:db8:42:1::10"), ip("2001:db8:42:2::30")],
                sees: Sees::Node("node-2".into()),
                losers: vec![],
            }
        );
        // Local: the client address is kept, and the canary lost the port on node-1.
        assert_eq!(
            find(&flows, "node-1", "192.0.2.11", 8443),
            Expect::Answer {
                frontend: "demo/api:https".into(),
                backends: vec![ip("198.51.100.20")],
                sees: Sees::Client(ip("192.0.2.100")),
                losers: vec!["demo/api-canary".into()],
            }
        );
        // The canary keeps node-2.
        assert!(matches!(
            find(&flows, "node-2", "2001:db8:1::12", 8443),
            Expect::Answer { frontend, .. } if frontend == "demo/api-canary:https"
        ));
        // IPv4-only Service over IPv6.
        assert_eq!(
            find(&flows, "node-2", "2001:db8:1::12", 8080),
            Expect::Nothing {
                why: "demo/legacy is IPv4 only".into()
            }
        );
        // The legacy Service over IPv4 goes to its only pod, on node-2, from node-1 too.
        assert!(matches!(
            find(&flows, "node-1", "192.0.2.11", 8080),
            Expect::Answer { backends, sees: Sees::Node(n), .. }
                if backends == vec![ip("198.51.100.160")] && n == "node-1"
        ));
    }

    #[test]
    fn source_ranges_and_missing_frontends_predict_nothing() {
        let mut decision = decision();
        for node in &mut decision.nodes {
            for f in &mut node.frontends {
                f.source_ranges = vec!["203.0.113.0/24".parse().unwrap()];
            }
        }
        let flows = flows(&decision, &client());
        assert!(matches!(
            find(&flows, "node-1", "192.0.2.11", 80),
            Expect::Nothing { why } if why.contains("outside the source ranges of demo/web:http")
        ));
        decision.nodes.iter_mut().for_each(|n| n.frontends.clear());
        let flows = super::flows(&decision, &client());
        assert!(matches!(
            find(&flows, "node-1", "192.0.2.11", 80),
            Expect::Nothing { why } if why == "demo/web is not programmed on node-1"
        ));
    }
}
