//! Shared set-up for the kernel tests: a lab (node + clients + backends), echo servers on
//! every backend, and helpers to build frontends and send traffic.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use dualstack_addr::Family;
use dualstack_dataplane::Runner;
use dualstack_ruleset::{Backend, Destination, Frontend, Protocol, Selection};
use dualstack_testbed::{EchoServer, Host, Lab, Reply, tcp_request, udp_request};

/// Timeout for requests that must succeed.
pub const OK: Duration = Duration::from_secs(2);
/// Timeout for requests that must be dropped (kept short: the suite must stay fast).
pub const DROPPED: Duration = Duration::from_millis(300);
/// Port every backend's echo servers listen on.
pub const BACKEND_PORT: u16 = 8080;

pub struct Setup {
    pub servers: Vec<EchoServer>,
    pub lab: Lab,
    pub clients: usize,
}

impl Setup {
    /// `clients` client hosts (links 1..), then `backends` backend hosts, each backend
    /// running echo servers `b1`, `b2`, … on [`BACKEND_PORT`].
    pub fn new(clients: usize, backends: usize) -> Setup {
        let mut lab = Lab::new().unwrap();
        lab.add_hosts("client", clients).unwrap();
        let idx = lab.add_hosts("backend", backends).unwrap();
        let servers = idx
            .iter()
            .enumerate()
            .map(|(i, h)| {
                EchoServer::start(&lab.hosts()[*h].ns, &format!("b{}", i + 1), BACKEND_PORT)
                    .unwrap()
            })
            .collect();
        Setup {
            servers,
            lab,
            clients,
        }
    }

    pub fn runner(&self) -> Runner {
        Runner::in_netns(self.lab.node.name())
    }

    pub fn client(&self, i: usize) -> &Host {
        &self.lab.hosts()[i]
    }

    pub fn backend(&self, i: usize) -> &Host {
        &self.lab.hosts()[self.clients + i]
    }

    /// Backends `addr:8080` of both families for the given backend hosts.
    pub fn backends(&self, which: &[usize]) -> Vec<Backend> {
        which
            .iter()
            .flat_map(|i| {
                Family::BOTH.map(|f| Backend {
                    addr: self.backend(*i).addr(f),
                    port: BACKEND_PORT,
                })
            })
            .collect()
    }

    /// The node's addresses (both families) on client `i`'s link.
    pub fn node_addrs(&self, client: usize) -> Vec<IpAddr> {
        Family::BOTH
            .map(|f| self.client(client).node_addr(f))
            .to_vec()
    }

    /// Client `i` → node address on its link (family `f`), `port`.
    pub fn tcp(&self, client: usize, f: Family, port: u16, t: Duration) -> Option<Reply> {
        let to = SocketAddr::new(self.client(client).node_addr(f), port);
        tcp_request(&self.client(client).ns, to, t).ok()
    }

    pub fn udp(&self, client: usize, f: Family, port: u16, t: Duration) -> Option<Reply> {
        let to = SocketAddr::new(self.client(client).node_addr(f), port);
        udp_request(&self.client(client).ns, to, t).ok()
    }

    /// `nft list ruleset` inside the node.
    pub fn ruleset_text(&self) -> String {
        self.lab.node.exec("nft", &["list", "ruleset"]).unwrap()
    }
}

pub fn frontend(
    name: &str,
    destination: Destination,
    protocol: Protocol,
    port: u16,
    ranges: &[&str],
    backends: Vec<Backend>,
    masquerade: bool,
) -> Frontend {
    Frontend {
        name: name.to_string(),
        destination,
        protocol,
        port,
        source_ranges: ranges.iter().map(|r| r.parse().unwrap()).collect(),
        backends,
        selection: Selection::Random,
        masquerade,
    }
}

pub const ALL: &[&str] = &["0.0.0.0/0", "::/0"];

/// `text` without the top-level block `table <family> <name> { … }`.
pub fn without_table(text: &str, header: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with(&format!("table {header} ")) {
            skipping = true;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
        if skipping && line == "}" {
            skipping = false;
        }
    }
    out
}
