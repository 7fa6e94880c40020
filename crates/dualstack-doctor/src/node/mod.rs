//! `dualstack doctor node`: is this node (the network namespace the facts were read in)
//! ready for dual-stack Kubernetes?
//!
//! The binary gathers a [`NodeFacts`]; [`check`] answers, in this order:
//!
//! | id | question |
//! |---|---|
//! | `node.forwarding.ipv4` | `net.ipv4.ip_forward` and the uplinks' `net.ipv4.conf.<if>.forwarding` are 1 |
//! | `node.forwarding.ipv6` | IPv6 is on, `net.ipv6.conf.{all,default}.forwarding` are 1 |
//! | `node.ipv6.accept-ra` | an IPv6 default route learned from router advertisements survives forwarding (`accept_ra` 2 on its interface) |
//! | `node.route.ipv4`, `node.route.ipv6` | a default route per family |
//! | `node.address.ipv4`, `node.address.ipv6` | a usable (global scope, DAD done) address per family, on the default-route interface |
//! | `node.route.same-interface` | both default routes leave through one interface (flannel without `flannel-iface` needs that) |
//! | `node.bridge-netfilter` | with a bridge (`cni0`, …): `br_netfilter` loaded, `bridge-nf-call-ip{,6}tables` 1 |
//! | `node.masquerade.ipv4`, `node.masquerade.ipv6` | a masquerade rule covers the pod network of each family |
//! | `node.table` | our `table inet dualstack`, if installed, is complete and self-consistent |
//! | `node.table.desired` | given what the agent publishes (`--agent-url`, `--desired`), the kernel's table holds exactly that: same hash, else which frontends are missing, differ or are extra |

mod addresses;
mod bridge;
pub mod desired;
mod forwarding;
pub mod ip;
pub mod masq;
mod pod_masq;
pub mod published;
mod ra;
mod table;

use std::collections::{BTreeMap, BTreeSet};

use dualstack_addr::Family;
use ipnet::IpNet;

pub use desired::Desired;
pub use ip::{Address, Interface, Route};
pub use masq::{MasqRule, MasqSource};

use crate::Report;

/// A fact could not be read from a tool's output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactError {
    /// A fact source printed something other than the JSON expected.
    #[error("cannot read the output of `{source_name}`: {detail}")]
    Json {
        /// The command whose output it was (`ip -j addr`, `nft -j list ruleset`, …).
        source_name: &'static str,
        /// The parser's message.
        detail: String,
    },
}

/// The pod networks to find masquerade rules for, and where they came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodCidrs {
    /// The pod ranges of this node, both families.
    pub cidrs: Vec<IpNet>,
    /// `--pod-cidr`, `/etc/rancher/k3s/config.yaml:3`, …; empty when unknown.
    pub source: String,
}

/// What we know about the CNI (from the K3s config), to print the right masquerade fix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Cni {
    /// K3s's bundled flannel (`flannel-backend` unset or not `none`).
    K3sFlannel,
    /// `flannel-backend: none`: another CNI (Calico, Cilium, …).
    Other,
    /// No K3s config was read.
    #[default]
    Unknown,
}

/// Our own table as read back from the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TableState {
    /// `table inet <name>` does not exist (no agent on this node).
    #[default]
    NotInstalled,
    /// Listing or parsing it failed (not root, no `nft`, …).
    Unreadable(String),
    /// Its chains, its jump elements `(map, key, target chain)`, and its other elements
    /// `(map, key, value)`: DNAT targets of single-backend frontends, `drop` verdicts.
    Present {
        /// The table's name.
        name: String,
        /// Names of its non-base chains.
        chains: BTreeSet<String>,
        /// Its jump elements: `(map, key, target chain)`.
        elements: BTreeSet<(String, String, String)>,
        /// Its other elements: `(map, key, value)`.
        other_elements: BTreeSet<(String, String, String)>,
    },
}

/// Everything [`check`] looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFacts {
    /// Sysctl values by `sysctl(8)` key (interface names with `/` for their dots); a missing
    /// key could not be read (absent in this kernel or namespace).
    pub sysctls: BTreeMap<String, String>,
    /// Every interface with its addresses.
    pub interfaces: Vec<Interface>,
    /// Default routes of both families.
    pub routes: Vec<Route>,
    /// Masquerade rules from nft and iptables; `None` when no ruleset could be read.
    pub masquerade: Option<Vec<MasqRule>>,
    /// The pod ranges masquerade rules should cover.
    pub pod_cidrs: PodCidrs,
    /// What the K3s config says about the CNI, for the masquerade fix.
    pub cni: Cni,
    /// Our table as read back.
    pub table: TableState,
    /// What the agent wants in the table, if a source was given.
    pub desired: Desired,
}

impl NodeFacts {
    /// A sysctl value, trimmed.
    pub fn sysctl(&self, key: &str) -> Option<&str> {
        self.sysctls.get(key).map(|v| v.trim())
    }

    /// Interfaces that carry a default route of `family`, in route order, without repeats.
    pub fn uplinks(&self, family: Family) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for dev in self
            .routes
            .iter()
            .filter(|r| r.family == family)
            .filter_map(|r| r.dev.as_deref())
        {
            if !out.contains(&dev) {
                out.push(dev);
            }
        }
        out
    }

    /// The interface called `name`, if this node has one.
    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }
}

/// The sysctl keys [`check`] reads, for these interfaces: the global ones, then per
/// interface (loopback skipped) its forwarding flags and `accept_ra`.
pub fn sysctl_keys(interfaces: &[Interface]) -> Vec<String> {
    let mut keys: Vec<String> = [
        "net.ipv4.ip_forward",
        "net.ipv6.conf.all.forwarding",
        "net.ipv6.conf.default.forwarding",
        "net.ipv6.conf.all.disable_ipv6",
        "net.ipv6.conf.all.accept_ra",
        "net.bridge.bridge-nf-call-iptables",
        "net.bridge.bridge-nf-call-ip6tables",
    ]
    .map(String::from)
    .to_vec();
    for i in interfaces.iter().filter(|i| i.name != "lo") {
        keys.push(crate::sysctl_fix::key(
            "net.ipv4.conf",
            &i.name,
            "forwarding",
        ));
        keys.push(crate::sysctl_fix::key(
            "net.ipv6.conf",
            &i.name,
            "forwarding",
        ));
        keys.push(crate::sysctl_fix::key(
            "net.ipv6.conf",
            &i.name,
            "accept_ra",
        ));
    }
    keys
}

/// The path of a `sysctl(8)` key below `/proc/sys`: dots separate, slashes were dots.
pub fn sysctl_path(key: &str) -> String {
    key.split('.')
        .map(|part| part.replace('/', "."))
        .collect::<Vec<_>>()
        .join("/")
}

/// Runs every node check.
pub fn check(facts: &NodeFacts) -> Report {
    let mut checks = Vec::new();
    checks.extend(forwarding::check(facts));
    checks.push(ra::check(facts));
    checks.extend(addresses::check(facts));
    checks.push(bridge::check(facts));
    checks.extend(pod_masq::check(facts));
    checks.push(table::check(facts));
    checks.push(desired::check(facts));
    Report::new(checks)
}

#[cfg(test)]
pub(crate) mod testing {
    //! A healthy dual-stack node, for tests to break one thing at a time.
    use super::*;

    pub fn addr(s: &str) -> Address {
        let (a, len) = s.split_once('/').unwrap();
        Address {
            addr: a.parse().unwrap(),
            prefix_len: len.parse().unwrap(),
            scope: if a.starts_with("fe80") {
                "link"
            } else {
                "global"
            }
            .into(),
            tentative: false,
            dad_failed: false,
            deprecated: false,
            temporary: false,
        }
    }

    pub fn route(family: Family, dev: &str, gw: &str, proto: Option<&str>) -> Route {
        Route {
            family,
            dev: Some(dev.into()),
            gateway: Some(gw.parse().unwrap()),
            protocol: proto.map(String::from),
        }
    }

    pub fn healthy() -> NodeFacts {
        let sysctls = [
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv6.conf.all.forwarding", "1"),
            ("net.ipv6.conf.default.forwarding", "1"),
            ("net.ipv6.conf.all.disable_ipv6", "0"),
            ("net.ipv6.conf.all.accept_ra", "1"),
            ("net.ipv4.conf.eth0.forwarding", "1"),
            ("net.ipv6.conf.eth0.forwarding", "1"),
            ("net.ipv6.conf.eth0.accept_ra", "2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        NodeFacts {
            sysctls,
            interfaces: vec![Interface {
                name: "eth0".into(),
                kind: None,
                up: true,
                addrs: vec![
                    addr("192.168.1.10/24"),
                    addr("2003:e9:f74a:ecf8::10/64"),
                    addr("fe80::1/64"),
                ],
            }],
            routes: vec![
                route(Family::V4, "eth0", "192.168.1.1", Some("dhcp")),
                route(Family::V6, "eth0", "fe80::1", Some("ra")),
            ],
            masquerade: Some(vec![
                MasqRule {
                    family: Family::V4,
                    location: "iptables nat FLANNEL-POSTRTG".into(),
                    source: MasqSource::Prefix("10.42.0.0/16".parse().unwrap()),
                },
                MasqRule {
                    family: Family::V6,
                    location: "ip6tables nat FLANNEL-POSTRTG".into(),
                    source: MasqSource::Prefix("fd12:3456:789a::/56".parse().unwrap()),
                },
            ]),
            pod_cidrs: PodCidrs {
                cidrs: vec![
                    "10.42.0.0/16".parse().unwrap(),
                    "fd12:3456:789a::/56".parse().unwrap(),
                ],
                source: "/etc/rancher/k3s/config.yaml:1".into(),
            },
            cni: Cni::K3sFlannel,
            table: TableState::NotInstalled,
            desired: Desired::NotAsked,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;

    #[test]
    fn a_healthy_node_passes_everything() {
        let report = check(&testing::healthy());
        let not_ok: Vec<_> = report
            .checks
            .iter()
            .filter(|c| c.status != Status::Ok)
            .collect();
        assert!(not_ok.is_empty(), "{not_ok:#?}");
        assert_eq!(report.checks.len(), 13);
    }

    #[test]
    fn sysctl_keys_and_paths_round_trip_dotted_interfaces() {
        let keys = sysctl_keys(&[Interface {
            name: "eth0.100".into(),
            kind: Some("vlan".into()),
            up: true,
            addrs: vec![],
        }]);
        assert!(keys.contains(&"net.ipv6.conf.eth0/100.accept_ra".to_string()));
        assert_eq!(
            sysctl_path("net.ipv6.conf.eth0/100.accept_ra"),
            "net/ipv6/conf/eth0.100/accept_ra"
        );
        assert_eq!(sysctl_path("net.ipv4.ip_forward"), "net/ipv4/ip_forward");
    }
}

#[cfg(test)]
mod snapshot {
    use super::testing::{healthy, route};
    use super::*;

    /// A node as K3s leaves it on a home network: IPv6 default route from RAs with
    /// `accept_ra` 1, flannel without `flannel-ipv6-masq`, and `br_netfilter` missing.
    #[test]
    fn a_typical_broken_k3s_node() {
        let mut f = healthy();
        f.sysctls
            .insert("net.ipv6.conf.eth0.accept_ra".into(), "1".into());
        f.routes[1] = route(Family::V6, "eth0", "fe80::1", Some("ra"));
        f.interfaces.push(Interface {
            name: "cni0".into(),
            kind: Some("bridge".into()),
            up: true,
            addrs: vec![testing::addr("10.42.0.1/24")],
        });
        if let Some(rules) = f.masquerade.as_mut() {
            rules.retain(|r| r.family == Family::V4);
        }
        insta::assert_snapshot!(check(&f).to_text());
    }
}
