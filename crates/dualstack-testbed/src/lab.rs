//! A ready-made topology: one router-like "node" namespace and any number of hosts, each on
//! its own veth link and subnet, with IPv4 and IPv6 addresses and default routes via the node.
//!
//! ```text
//!   host 1 (10.0.1.2, fd00:1::2) ── veth ── (10.0.1.1, fd00:1::1)
//!   host 2 (10.0.2.2, fd00:2::2) ── veth ── (10.0.2.1, fd00:2::1)   node (forwarding on)
//!   …                                        …
//! ```
//! Addresses repeat between labs on purpose: every lab lives in its own namespaces.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use dualstack_addr::Family;

use crate::TestbedError;
use crate::netns::{Netns, veth};

/// One host attached to the node.
#[derive(Debug)]
pub struct Host {
    /// The host's network namespace.
    pub ns: Netns,
    /// Link number (1-based): the host's subnet is `10.0.<n>.0/24` and `fd00:<n>::/64`.
    pub link: u8,
}

impl Host {
    /// The host's own address.
    pub fn addr(&self, family: Family) -> IpAddr {
        link_addr(self.link, 2, family)
    }

    /// The node's address on this host's link (the host's gateway).
    pub fn node_addr(&self, family: Family) -> IpAddr {
        link_addr(self.link, 1, family)
    }

    /// `addr(family):port`.
    pub fn socket(&self, family: Family, port: u16) -> SocketAddr {
        SocketAddr::new(self.addr(family), port)
    }
}

fn link_addr(link: u8, host: u8, family: Family) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::new(10, 0, link, host)),
        Family::V6 => IpAddr::V6(Ipv6Addr::new(
            0xfd00,
            u16::from(link),
            0,
            0,
            0,
            0,
            0,
            u16::from(host),
        )),
    }
}

/// A node plus hosts. Dropping it removes every namespace (hosts first).
#[derive(Debug)]
pub struct Lab {
    hosts: Vec<Host>,
    /// The router: forwarding is on for both families.
    pub node: Netns,
}

impl Lab {
    /// A lab with just the node.
    pub fn new() -> Result<Lab, TestbedError> {
        let node = Netns::new("node")?;
        node.enable_forwarding()?;
        Ok(Lab {
            hosts: Vec::new(),
            node,
        })
    }

    /// Adds a host on a new link (`label` is for humans: `client`, `backend1` …).
    pub fn add_host(&mut self, label: &str) -> Result<&Host, TestbedError> {
        let link = u8::try_from(self.hosts.len() + 1).map_err(|_| TestbedError::TooManyHosts)?;
        let ns = Netns::new(label)?;
        let node_dev = format!("h{link}");
        veth(&self.node, &node_dev, &ns, "eth0")?;
        let host = Host { ns, link };
        for family in [Family::V4, Family::V6] {
            let plen = if family == Family::V4 { 24 } else { 64 };
            self.node
                .add_addr(&node_dev, &format!("{}/{plen}", host.node_addr(family)))?;
            host.ns
                .add_addr("eth0", &format!("{}/{plen}", host.addr(family)))?;
            host.ns.default_route(&host.node_addr(family).to_string())?;
        }
        self.hosts.push(host);
        let last = self.hosts.len() - 1;
        Ok(&self.hosts[last])
    }

    /// Adds `n` hosts labelled `<label>1` … `<label>n` and returns their indexes.
    pub fn add_hosts(&mut self, label: &str, n: usize) -> Result<Vec<usize>, TestbedError> {
        (1..=n)
            .map(|i| {
                self.add_host(&format!("{label}{i}"))
                    .map(|h| usize::from(h.link) - 1)
            })
            .collect()
    }

    /// All hosts.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.hosts.clear();
    }
}
