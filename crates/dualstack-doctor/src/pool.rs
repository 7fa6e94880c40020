//! `dualstack doctor pool ADDRESS`: why a pool address is (not) reachable. Pure: the binary
//! passes the decision for a cluster dump and, when run on a node, that node's facts.
//!
//! | id | question |
//! |---|---|
//! | `pool.held` | a Service holds the address (else: which pool has it, and why no Service got it) |
//! | `pool.announcer` | one node announces it (else: why no node can — agent Leases, nodeSelector, endpoints) |
//! | `pool.this-node` | with `--node`: is this the announcing node |
//! | `pool.interface` | on the announcer: the interface to announce on exists and holds the node's address |
//! | `pool.not-assigned` | on the announcer: the address is on no interface (we answer for it; assigning it breaks DAD and source selection) |
//! | `pool.multicast` | on the announcer, IPv6: the solicited-node group is joined on that interface (`/proc/net/igmp6`) |
//! | `pool.rules` | on the announcer: our table has frontends bound to the address, and the pool guard |

use std::net::{IpAddr, Ipv6Addr};

use dualstack_lb::Decision;

use crate::node::{Interface, TableState};
use crate::{Check, Report};

/// What `doctor pool` knows.
#[derive(Debug, Clone)]
pub struct PoolFacts<'a> {
    /// The pool address asked about.
    pub address: IpAddr,
    /// The cluster's decision: which Service holds the address and which node announces it.
    pub decision: &'a Decision,
    /// The node the local facts were read on, if any.
    pub node: Option<String>,
    /// That node's interfaces, if read there.
    pub interfaces: Vec<Interface>,
    /// `/proc/net/igmp6` of that node.
    pub igmp6: Option<String>,
    /// Our table on that node, if read there.
    pub table: Option<TableState>,
}

/// The solicited-node group of `ip` (RFC 4291 §2.7.1) as `/proc/net/igmp6` prints it.
fn igmp6_group(ip: Ipv6Addr) -> String {
    let o = ip.octets();
    format!(
        "ff0200000000000000000001ff{:02x}{:02x}{:02x}",
        o[13], o[14], o[15]
    )
}

/// A pool that follows the nodes' prefix and whose host parts hold `ip`'s low 64 bits: its
/// name and the prefixes its nodes report (an address whose prefix has moved on).
fn following_prefix(d: &dualstack_lb::Decision, ip: std::net::IpAddr) -> Option<(String, String)> {
    let std::net::IpAddr::V6(v6) = ip else {
        return None;
    };
    let host = std::net::IpAddr::V6((u128::from(v6) & dualstack_lb::pool::HOST_MASK).into());
    d.pools.iter().find_map(|p| {
        let view = p.prefixes.as_ref()?;
        if !(view.hosts.0 <= host && host <= view.hosts.1) {
            return None;
        }
        let reported: Vec<String> = view.prefixes.iter().map(|s| s.subnet.to_string()).collect();
        Some((
            p.name.clone(),
            if reported.is_empty() {
                "none".to_string()
            } else {
                reported.join(", ")
            },
        ))
    })
}

/// Every pool check for `facts.address`.
pub fn check(facts: &PoolFacts) -> Report {
    let ip = facts.address;
    let d = facts.decision;
    let mut checks = Vec::new();
    let Some(record) = d.pool_addresses.iter().find(|a| a.ip == ip) else {
        let pool = d.pools.iter().find(|p| {
            p.ranges
                .iter()
                .any(|(a, b)| a.is_ipv4() == ip.is_ipv4() && *a <= ip && ip <= *b)
        });
        let problems: Vec<String> = d
            .services
            .iter()
            .flat_map(|s| {
                s.conditions
                    .iter()
                    .filter(|c| c.is_problem())
                    .map(move |c| format!("{}/{}: {} {}", s.namespace, s.name, c.reason, c.message))
            })
            .collect();
        checks.push(match pool {
            Some(p) => Check::fail(
                "pool.held",
                format!("{ip} is in pool {} but no Service holds it", p.name),
                if problems.is_empty() {
                    "give a Service the annotation dualstack.io/addresses or dualstack.io/pool"
                        .to_string()
                } else {
                    format!("Services with problems: {}", problems.join("; "))
                },
            ),
            None => match following_prefix(d, ip) {
                Some((pool, reported)) => Check::fail(
                    "pool.held",
                    format!(
                        "{ip} has a host part of pool {pool}, which follows the nodes' IPv6 prefix, but no node of it reports that prefix (they report: {reported})"
                    ),
                    "the address moved with the prefix: use the Service's current status (kubectl get svc -o wide); if the nodes lack the new prefix, check router advertisements and accept_ra=2 (dualstack doctor node)",
                ),
                None => Check::fail(
                    "pool.held",
                    format!("{ip} is in no usable LoadBalancerPool"),
                    "add it to a pool's spec.addresses (kubectl get lbpool -o yaml)",
                ),
            },
        });
        return Report::new(checks);
    };
    let holders: Vec<String> = record
        .services
        .iter()
        .map(|(s, o)| format!("{s} ({o})"))
        .collect();
    checks.push(Check::ok(
        "pool.held",
        format!(
            "{ip} (pool {}) is held by {}",
            record.pool,
            holders.join(", ")
        ),
    ));
    let Some(announcer) = record.announcer.clone() else {
        let why: Vec<String> = d
            .services
            .iter()
            .filter(|s| {
                record
                    .services
                    .iter()
                    .any(|(k, _)| k.is(&s.namespace, &s.name))
            })
            .flat_map(|s| s.why.nodes.iter())
            .filter_map(|v| v.dropped.as_ref().map(|r| format!("{}: {r}", v.node)))
            .collect();
        checks.push(Check::fail(
            "pool.announcer",
            format!("no node announces {ip}: no node is eligible for every Service on it"),
            format!("nodes: {}", why.join("; ")),
        ));
        return Report::new(checks);
    };
    checks.push(Check::ok(
        "pool.announcer",
        format!(
            "announced by {announcer}, whose agent Lease is live (candidates: {})",
            record.candidates.join(", ")
        ),
    ));
    let Some(node) = &facts.node else {
        return Report::new(checks);
    };
    if *node != announcer {
        checks.push(Check::warn(
            "pool.this-node",
            format!("this node ({node}) does not announce {ip}; {announcer} does"),
            format!("run `dualstack doctor pool {ip} --node {announcer}` on {announcer}"),
        ));
        return Report::new(checks);
    }
    checks.push(Check::ok(
        "pool.this-node",
        format!("this node ({node}) announces {ip}"),
    ));
    let announcement = d
        .announcements
        .iter()
        .find(|a| a.ip == ip && a.node == *node);
    let interface = announcement.and_then(|a| {
        if a.interfaces.is_empty() {
            a.via.and_then(|via| {
                facts
                    .interfaces
                    .iter()
                    .find(|i| i.addrs.iter().any(|x| x.addr == via))
            })
        } else {
            facts
                .interfaces
                .iter()
                .find(|i| a.interfaces.contains(&i.name))
        }
    });
    match (interface, announcement) {
        (Some(i), _) if i.up => checks.push(Check::ok(
            "pool.interface",
            format!("announced on {}", i.name),
        )),
        (Some(i), _) => checks.push(Check::fail(
            "pool.interface",
            format!("{} is down", i.name),
            format!("ip link set {} up", i.name),
        )),
        (None, a) => checks.push(Check::fail(
            "pool.interface",
            format!(
                "no interface to announce on: {}",
                a.map_or("no announcement".to_string(), |a| {
                    if a.interfaces.is_empty() {
                        format!(
                            "none holds the node address {}",
                            a.via.map_or("(unknown)".into(), |v| v.to_string())
                        )
                    } else {
                        format!("none of {} exists", a.interfaces.join(", "))
                    }
                })
            ),
            "set the pool's spec.interfaces to this node's LAN interface",
        )),
    }
    if let Some(i) = facts
        .interfaces
        .iter()
        .find(|i| i.addrs.iter().any(|x| x.addr == ip))
    {
        checks.push(Check::fail(
            "pool.not-assigned",
            format!("{ip} is assigned to {}", i.name),
            format!(
                "ip addr del {ip} dev {} (the agent answers for it without assigning it)",
                i.name
            ),
        ));
    } else {
        checks.push(Check::ok(
            "pool.not-assigned",
            format!("{ip} is on no interface"),
        ));
    }
    if let (IpAddr::V6(v6), Some(i)) = (ip, interface) {
        let group = igmp6_group(v6);
        let joined = facts.igmp6.as_deref().is_some_and(|text| {
            text.lines().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.get(1) == Some(&i.name.as_str()) && w.get(2) == Some(&group.as_str())
            })
        });
        checks.push(if joined {
            Check::ok("pool.multicast", format!("solicited-node group of {ip} joined on {}", i.name))
        } else {
            Check::fail(
                "pool.multicast",
                format!("solicited-node group of {ip} not joined on {}: MLD-snooping switches will not forward solicitations", i.name),
                "is the agent running with CAP_NET_RAW (its announcer joins the group)? see its log",
            )
        });
    }
    match &facts.table {
        Some(TableState::Present {
            chains,
            elements,
            other_elements,
            ..
        }) => {
            let prefix = format!("{ip} . ");
            let bound = elements
                .iter()
                .map(|e| &e.1)
                .chain(other_elements.iter().map(|e| &e.1))
                .any(|k| k.starts_with(&prefix));
            let guard = chains.contains("pool-guard");
            checks.push(if bound && guard {
                Check::ok("pool.rules", format!("frontends bound to {ip}, pool guard present"))
            } else {
                Check::fail(
                    "pool.rules",
                    format!("our table lacks {}", if bound { "the pool guard" } else { "frontends bound to the address" }),
                    "check the agent's sync log; `dualstack agent --snapshot DUMP --once --node NODE` shows what it would program",
                )
            });
        }
        Some(TableState::NotInstalled) => checks.push(Check::fail(
            "pool.rules",
            "our table is not installed",
            "is the agent running on this node?",
        )),
        Some(TableState::Unreadable(e)) => checks.push(Check::warn(
            "pool.rules",
            format!("cannot read our table: {e}"),
            "run as root",
        )),
        None => {}
    }
    Report::new(checks)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Status;

    use crate::node::Address;
    use dualstack_lb::{Config, Snapshot, decide};

    const DUMP: &str = include_str!("../../dualstack-lb/tests/fixtures/pools-three-nodes.yaml");

    fn decision() -> Decision {
        let s = Snapshot::parse(DUMP).unwrap();
        decide(
            &s,
            &Config::default(),
            "2025-04-10T10:00:00Z".parse().unwrap(),
        )
    }

    fn eth0(extra: &[&str]) -> Interface {
        let mut addrs: Vec<Address> = ["192.168.1.13", "2001:db8:1::13"]
            .iter()
            .chain(extra)
            .map(|a| Address {
                addr: a.parse().unwrap(),
                prefix_len: 64,
                scope: "global".into(),
                tentative: false,
                dad_failed: false,
                deprecated: false,
                temporary: false,
            })
            .collect();
        addrs.sort_by_key(|a| a.addr);
        Interface {
            name: "eth0".into(),
            kind: None,
            up: true,
            addrs,
        }
    }

    fn status(report: &Report, id: &str) -> Status {
        report.get(id).unwrap_or_else(|| panic!("no {id}")).status
    }

    #[test]
    fn offline_it_names_holder_and_announcer_or_why_not() {
        let d = decision();
        let facts = |ip: &str| PoolFacts {
            address: ip.parse().unwrap(),
            decision: &d,
            node: None,
            interfaces: Vec::new(),
            igmp6: None,
            table: None,
        };
        let r = check(&facts("2001:db8:1:0:ffff::1"));
        assert_eq!(status(&r, "pool.held"), Status::Ok);
        assert!(
            r.get("pool.announcer")
                .unwrap()
                .message
                .contains("announced by node-3")
        );
        let r = check(&facts("192.168.1.246"));
        assert_eq!(status(&r, "pool.held"), Status::Fail);
        assert!(
            r.get("pool.held")
                .unwrap()
                .message
                .contains("in pool lan but no Service holds it")
        );
        let r = check(&facts("10.9.9.9"));
        assert!(
            r.get("pool.held")
                .unwrap()
                .message
                .contains("in no usable LoadBalancerPool")
        );
    }

    #[test]
    fn on_the_announcer_it_checks_interface_membership_assignment_and_rules() {
        let d = decision();
        let ip = "2001:db8:1:0:ffff::1";
        let igmp6 = "2    eth0            ff0200000000000000000001ff000001     1 00000004 0\n";
        let table = TableState::Present {
            name: "dualstack".into(),
            chains: ["pool-guard".to_string()].into(),
            elements: Default::default(),
            other_elements: [(
                "dnat-masq-addr6".to_string(),
                format!("{ip} . tcp . 80"),
                "x".to_string(),
            )]
            .into(),
        };
        let mut facts = PoolFacts {
            address: ip.parse().unwrap(),
            decision: &d,
            node: Some("node-3".into()),
            interfaces: vec![eth0(&[])],
            igmp6: Some(igmp6.into()),
            table: Some(table),
        };
        let r = check(&facts);
        assert!(!r.has_failures(), "{}", r.to_text());
        for id in [
            "pool.interface",
            "pool.multicast",
            "pool.rules",
            "pool.not-assigned",
        ] {
            assert_eq!(status(&r, id), Status::Ok, "{id}");
        }
        facts.igmp6 = Some(String::new());
        facts.interfaces = vec![eth0(&[ip])];
        let r = check(&facts);
        assert_eq!(status(&r, "pool.multicast"), Status::Fail);
        assert_eq!(status(&r, "pool.not-assigned"), Status::Fail);
        facts.node = Some("node-1".into());
        assert_eq!(status(&check(&facts), "pool.this-node"), Status::Warn);
    }

    #[test]
    fn the_group_is_printed_as_the_kernel_does() {
        assert_eq!(
            igmp6_group("2001:db8:100::201".parse().unwrap()),
            "ff0200000000000000000001ff000201"
        );
    }
}
