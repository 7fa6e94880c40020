//! The demo's little network, as data (pure): one LAN with a client and two nodes, and the
//! "pods" behind each node. The built-in snapshot (`snapshot.yaml`) describes the same cluster
//! the way Kubernetes would; a test keeps both in agreement.
//!
//! ```text
//!  client 192.0.2.100, 2001:db8:1::100
//!     │
//!  ── lan (bridge) ───────────────────────────────────────────────────────────────
//!     │                                                 │
//!  node-1 192.0.2.11                                  node-2 192.0.2.12
//!         fd00:1::11      (ULA: its InternalIP)              2001:db8:1::12
//!         2001:db8:1::11  (global: only its agent reports it)
//!     │ cni0 198.51.100.1/25, 2001:db8:42:1::1/64       │ cni0 198.51.100.129/25, 2001:db8:42:2::1/64
//!  web-1, api-1                                       web-2, canary-1, legacy-1
//! ```
//!
//! Only documentation (192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32) and ULA (fd00::/8)
//! addresses are used, and only inside the demo's own namespaces.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dualstack_addr::Family;

/// Every namespace of the demo is named `dsdemo-<role>`; `--cleanup` removes exactly these.
pub const PREFIX: &str = "dsdemo-";

/// The nft table each node's agent owns (the agent's default).
pub const TABLE: &str = dualstack_ruleset::DEFAULT_TABLE;

/// An address with its prefix length, as configured on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The address.
    pub addr: IpAddr,
    /// Its prefix length.
    pub len: u8,
}

impl Cidr {
    const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Cidr {
        Cidr {
            addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            len,
        }
    }

    const fn v6(segments: [u16; 8], len: u8) -> Cidr {
        let [a, b, c, d, e, f, g, h] = segments;
        Cidr {
            addr: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            len,
        }
    }

    /// `addr/len`, as `ip addr add` takes it.
    pub fn text(&self) -> String {
        format!("{}/{}", self.addr, self.len)
    }

    /// The family of [`Cidr::addr`].
    pub fn family(&self) -> Family {
        Family::of(self.addr)
    }
}

/// A node: its LAN addresses and the gateway addresses of its pod bridge.
#[derive(Debug, Clone, Copy)]
pub struct DemoNode {
    /// The node's name (`node-1`), as the cluster dump knows it.
    pub name: &'static str,
    /// On the node's `eth0` in the LAN (the first of each family is the one other nodes
    /// route pod traffic to).
    pub lan: &'static [Cidr],
    /// On the node's `cni0` bridge: the pods' default gateways, one per family.
    pub cni: [Cidr; 2],
}

/// A pod: a namespace behind its node's `cni0`, addresses in the node's pod ranges.
#[derive(Debug, Clone, Copy)]
pub struct DemoPod {
    /// The pod's name (`web-1`), as the cluster dump knows it.
    pub name: &'static str,
    /// The node whose `cni0` it hangs off.
    pub node: &'static str,
    /// One IPv4 and one IPv6 address (prefix lengths are the node's `cni` ones).
    pub addrs: [IpAddr; 2],
}

/// The prefix length of the IPv4 LAN.
pub const LAN_V4: u8 = 24;
/// The prefix length of the IPv6 LAN.
pub const LAN_V6: u8 = 64;

/// The outside client, on the LAN.
pub const CLIENT: [Cidr; 2] = [
    Cidr::v4(192, 0, 2, 100, LAN_V4),
    Cidr::v6([0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100], LAN_V6),
];

/// The demo's nodes, each with its LAN addresses and pod gateways.
pub const NODES: [DemoNode; 2] = [
    DemoNode {
        name: "node-1",
        lan: &[
            Cidr::v4(192, 0, 2, 11, LAN_V4),
            Cidr::v6([0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x11], LAN_V6),
            Cidr::v6([0xfd00, 1, 0, 0, 0, 0, 0, 0x11], LAN_V6),
        ],
        cni: [
            Cidr::v4(198, 51, 100, 1, 25),
            Cidr::v6([0x2001, 0xdb8, 0x42, 1, 0, 0, 0, 1], 64),
        ],
    },
    DemoNode {
        name: "node-2",
        lan: &[
            Cidr::v4(192, 0, 2, 12, LAN_V4),
            Cidr::v6([0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x12], LAN_V6),
        ],
        cni: [
            Cidr::v4(198, 51, 100, 129, 25),
            Cidr::v6([0x2001, 0xdb8, 0x42, 2, 0, 0, 0, 1], 64),
        ],
    },
];

const fn pod(name: &'static str, node: &'static str, v4: u8, net6: u16, host6: u16) -> DemoPod {
    DemoPod {
        name,
        node,
        addrs: [
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, v4)),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x42, net6, 0, 0, 0, host6)),
        ],
    }
}

/// The demo's pods, spread over the nodes.
pub const PODS: [DemoPod; 5] = [
    pod("web-1", "node-1", 10, 1, 0x10),
    pod("api-1", "node-1", 20, 1, 0x20),
    pod("web-2", "node-2", 130, 2, 0x30),
    pod("canary-1", "node-2", 150, 2, 0x50),
    pod("legacy-1", "node-2", 160, 2, 0x60),
];

/// The namespace name of a role (`lan`, `client`, a node or a pod name).
pub fn ns_name(role: &str) -> String {
    format!("{PREFIX}{role}")
}

/// The client's address of `family`.
pub fn client_addr(family: Family) -> IpAddr {
    pick(&CLIENT, family)
}

fn pick(cidrs: &[Cidr], family: Family) -> IpAddr {
    cidrs
        .iter()
        .find(|c| c.family() == family)
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.addr)
}

/// A node by name.
pub fn node(name: &str) -> Option<&'static DemoNode> {
    NODES.iter().find(|n| n.name == name)
}

impl DemoNode {
    /// Every address the node owns (LAN and pod gateways): a masqueraded flow shows the
    /// backend one of these.
    pub fn owns(&self, addr: IpAddr) -> bool {
        self.lan.iter().chain(&self.cni).any(|c| c.addr == addr)
    }

    /// The node's first LAN address of `family` (where other nodes route its pods).
    pub fn lan_addr(&self, family: Family) -> IpAddr {
        pick(self.lan, family)
    }

    /// The pod gateway of `family`.
    pub fn cni(&self, family: Family) -> Cidr {
        match family {
            Family::V4 => self.cni[0],
            Family::V6 => self.cni[1],
        }
    }
}

impl DemoPod {
    /// The pod's address of `family`.
    pub fn addr(&self, family: Family) -> IpAddr {
        match family {
            Family::V4 => self.addrs[0],
            Family::V6 => self.addrs[1],
        }
    }
}

/// The pod that owns `addr`.
pub fn pod_by_addr(addr: IpAddr) -> Option<&'static DemoPod> {
    PODS.iter().find(|p| p.addrs.contains(&addr))
}

/// A pod by name.
pub fn pod_by_name(name: &str) -> Option<&'static DemoPod> {
    PODS.iter().find(|p| p.name == name)
}

/// Who owns `addr`, for humans: `node-1`, `web-2`, `the client`, or the address itself.
pub fn owner_of(addr: IpAddr) -> String {
    if CLIENT.iter().any(|c| c.addr == addr) {
        return "the client".to_string();
    }
    if let Some(n) = NODES.iter().find(|n| n.owns(addr)) {
        return n.name.to_string();
    }
    pod_by_addr(addr).map_or_else(|| addr.to_string(), |p| p.name.to_string())
}

/// The ports each pod serves: every EndpointSlice port of a usable endpoint that is the pod.
pub fn pod_ports(
    snapshot: &dualstack_lb::Snapshot,
) -> std::collections::BTreeMap<&'static str, Vec<u16>> {
    let mut out: std::collections::BTreeMap<&'static str, Vec<u16>> =
        std::collections::BTreeMap::new();
    for slice in &snapshot.endpoint_slices {
        for endpoint in &slice.endpoints {
            if let Some(pod) = pod_by_addr(endpoint.addr) {
                let ports = out.entry(pod.name).or_default();
                ports.extend(slice.ports.iter().filter_map(|p| p.port));
                ports.sort_unstable();
                ports.dedup();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use dualstack_lb::Snapshot;
    use ipnet::IpNet;

    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot::parse(crate::SNAPSHOT).unwrap()
    }

    #[test]
    fn every_endpoint_is_a_pod_on_its_node() {
        let snapshot = snapshot();
        let mut seen = BTreeSet::new();
        for slice in &snapshot.endpoint_slices {
            for ep in &slice.endpoints {
                let addr = ep.addr;
                let pod = pod_by_addr(addr)
                    .unwrap_or_else(|| panic!("{addr} of {} is no pod", slice.name));
                assert_eq!(ep.node.as_deref(), Some(pod.node), "{addr}");
                seen.insert(pod.name);
            }
        }
        let all: BTreeSet<&str> = PODS.iter().map(|p| p.name).collect();
        assert_eq!(seen, all, "every pod backs some Service");
    }

    #[test]
    fn nodes_agree_with_the_snapshot() {
        let snapshot = snapshot();
        let names: Vec<&str> = snapshot
            .nodes
            .iter()
            .map(|n| n.metadata.name.as_str())
            .collect();
        assert_eq!(names, NODES.iter().map(|n| n.name).collect::<Vec<_>>());
        for n in &snapshot.nodes {
            let demo = node(&n.metadata.name).unwrap();
            for a in n
                .status
                .addresses
                .iter()
                .filter(|a| a.type_ == "InternalIP")
            {
                let addr: IpAddr = a.address.parse().unwrap();
                assert!(
                    demo.lan.iter().any(|c| c.addr == addr),
                    "{addr} is not on {}",
                    demo.name
                );
            }
        }
    }

    #[test]
    fn pods_live_in_their_nodes_pod_ranges() {
        for pod in PODS {
            let node = node(pod.node).unwrap();
            for family in Family::BOTH {
                let gw = node.cni(family);
                let net = IpNet::new(gw.addr, gw.len).unwrap().trunc();
                assert!(net.contains(&pod.addr(family)), "{} {family:?}", pod.name);
            }
        }
    }

    #[test]
    fn only_documentation_and_ula_addresses() {
        let doc_or_ula = |addr: IpAddr| match addr {
            IpAddr::V4(a) => {
                let o = a.octets();
                matches!(o, [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _])
            }
            IpAddr::V6(a) => {
                let s = a.segments();
                (s[0] == 0x2001 && s[1] == 0xdb8) || (s[0] & 0xfe00) == 0xfc00
            }
        };
        let all = CLIENT
            .iter()
            .chain(NODES.iter().flat_map(|n| n.lan.iter().chain(&n.cni)))
            .map(|c| c.addr)
            .chain(PODS.iter().flat_map(|p| p.addrs));
        for addr in all {
            assert!(doc_or_ula(addr), "{addr}");
        }
    }

    #[test]
    fn owners_are_named() {
        assert_eq!(owner_of(client_addr(Family::V6)), "the client");
        assert_eq!(owner_of("198.51.100.129".parse().unwrap()), "node-2");
        assert_eq!(owner_of("2001:db8:42:2::50".parse().unwrap()), "canary-1");
        assert_eq!(owner_of("203.0.113.9".parse().unwrap()), "203.0.113.9");
    }

    #[test]
    fn pods_serve_their_slice_ports() {
        let snapshot = dualstack_lb::Snapshot::parse(crate::SNAPSHOT).unwrap();
        let ports = pod_ports(&snapshot);
        let expected: std::collections::BTreeMap<&str, Vec<u16>> =
            std::collections::BTreeMap::from([
                ("api-1", vec![9443]),
                ("canary-1", vec![9443]),
                ("legacy-1", vec![8080]),
                ("web-1", vec![8080, 8443]),
                ("web-2", vec![8080, 8443]),
            ]);
        assert_eq!(ports, expected);
    }
}
