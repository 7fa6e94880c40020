//! What the benchmarks program (pure): N dual-stack frontends, the same Services as
//! klipper-lb's per-rule `iptables` commands, and the "linear iptables DNAT" baseline.
//!
//! Service `i` (0-based) listens on TCP port [`FIRST_PORT`]` + i` on both node addresses,
//! admits one source range per family, and forwards to one backend per family (by
//! default a distinct ClusterIP-like address per Service, as klipper-lb does).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dualstack_addr::Family;
use dualstack_ruleset::{Backend, Destination, Frontend, Protocol, Ruleset, Selection};
use ipnet::IpNet;

/// Port of Service 0; Service `i` uses `FIRST_PORT + i`.
pub const FIRST_PORT: u16 = 10_000;
/// Most Services a workload can hold (ports up to 60,000).
pub const MAX_SERVICES: usize = 50_000;
/// The port every backend listens on.
pub const BACKEND_PORT: u16 = 8080;

/// Where the generated Services forward to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backends {
    /// One ClusterIP-like address per Service and family (`10.96.0.0/12`, `fd96::/108`):
    /// what a cluster with N Services looks like to the rule programmer.
    PerService,
    /// Every Service forwards to the same real host (the data-path bench's backend).
    Shared {
        /// The backend's IPv4 address.
        v4: IpAddr,
        /// The backend's IPv6 address.
        v6: IpAddr,
    },
}

/// A generated set of Services on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// The node's IPv4 and IPv6 address the frontends listen on.
    pub node_v4: IpAddr,
    /// The node's IPv6 address the frontends listen on.
    pub node_v6: IpAddr,
    /// Where the frontends forward to.
    pub backends: Backends,
    /// Allowed client ranges (one per family keeps the source-range checks in play).
    pub source_ranges: Vec<IpNet>,
    /// SNAT forwarded traffic (klipper-lb and `externalTrafficPolicy: Cluster` do).
    pub masquerade: bool,
}

impl Workload {
    /// The sync-bench workload: per-Service backends, masquerade on (klipper-lb's shape).
    pub fn sync(node_v4: IpAddr, node_v6: IpAddr) -> Workload {
        Workload {
            node_v4,
            node_v6,
            backends: Backends::PerService,
            source_ranges: default_ranges(),
            masquerade: true,
        }
    }

    /// The port of Service `i`, or `None` past [`MAX_SERVICES`].
    pub fn port(i: usize) -> Option<u16> {
        if i >= MAX_SERVICES {
            return None;
        }
        u16::try_from(i)
            .ok()
            .and_then(|i| FIRST_PORT.checked_add(i))
    }

    /// Service `i`'s backend of one family.
    pub fn backend(&self, i: usize, family: Family) -> IpAddr {
        match (self.backends, family) {
            (Backends::Shared { v4, .. }, Family::V4) => v4,
            (Backends::Shared { v6, .. }, Family::V6) => v6,
            (Backends::PerService, Family::V4) => {
                // 10.96.0.0/12 holds a million addresses; skip .0 of the block.
                let base = u32::from(Ipv4Addr::new(10, 96, 0, 0));
                IpAddr::V4(Ipv4Addr::from(base + 1 + (i as u32 & 0x000f_ffff)))
            }
            (Backends::PerService, Family::V6) => {
                let base = u128::from(Ipv6Addr::new(0xfd96, 0, 0, 0, 0, 0, 0, 0));
                IpAddr::V6(Ipv6Addr::from(base + 1 + i as u128))
            }
        }
    }

    /// Service `i` as one dual-stack frontend, or `None` past [`MAX_SERVICES`].
    pub fn frontend(&self, i: usize) -> Option<Frontend> {
        Some(Frontend {
            name: service_name(i),
            destination: Destination::Addresses(vec![self.node_v4, self.node_v6]),
            protocol: Protocol::Tcp,
            port: Workload::port(i)?,
            source_ranges: self.source_ranges.clone(),
            backends: Family::BOTH
                .into_iter()
                .map(|f| Backend {
                    addr: self.backend(i, f),
                    port: BACKEND_PORT,
                })
                .collect(),
            selection: Selection::Random,
            masquerade: self.masquerade,
        })
    }

    /// Services `0..n` in `table`, or `None` when `n` exceeds [`MAX_SERVICES`].
    pub fn ruleset(&self, table: &str, n: usize) -> Option<Ruleset> {
        Some(Ruleset {
            table: table.to_string(),
            guard: Vec::new(),
            frontends: (0..n).map(|i| self.frontend(i)).collect::<Option<_>>()?,
        })
    }

    /// `ruleset` with `changed` of its frontends (spread evenly over it) moved to backends
    /// on the next port: the "many changes at once" case (a Deployment's pods replaced,
    /// a namespace re-created).
    pub fn with_moved_backends(ruleset: &Ruleset, changed: usize) -> Ruleset {
        let mut moved = ruleset.clone();
        let step = (ruleset.frontends.len() / changed.max(1)).max(1);
        for fe in moved.frontends.iter_mut().step_by(step).take(changed) {
            for b in &mut fe.backends {
                b.port = b.port.wrapping_add(1).max(1);
            }
        }
        moved
    }

    /// What takes `from` to `to`: the frontends to remove (old versions of changed ones
    /// included) and those to add, as the agent's planner produces them.
    pub fn difference(from: &[Frontend], to: &[Frontend]) -> (Vec<Frontend>, Vec<Frontend>) {
        let old: std::collections::HashSet<&Frontend> = from.iter().collect();
        let new: std::collections::HashSet<&Frontend> = to.iter().collect();
        let remove = from.iter().filter(|f| !new.contains(f)).cloned().collect();
        let add = to.iter().filter(|f| !old.contains(f)).cloned().collect();
        (remove, add)
    }

    /// The commands klipper-lb's entry script runs for Service `i` (one process each):
    /// per source range an `ACCEPT` in `FORWARD`, then per family a `DROP`, a `DNAT` and a
    /// `MASQUERADE` — as `(program, arguments)`.
    pub fn klipper_commands(&self, i: usize) -> Option<Vec<(&'static str, Vec<String>)>> {
        let src_port = Workload::port(i)?.to_string();
        let dest_port = BACKEND_PORT.to_string();
        let mut out = Vec::new();
        for range in &self.source_ranges {
            out.push((
                tool(Family::of_net(*range)),
                args(&[
                    "-t",
                    "filter",
                    "-I",
                    "FORWARD",
                    "-s",
                    &range.to_string(),
                    "-p",
                    "tcp",
                    "--dport",
                    &dest_port,
                    "-j",
                    "ACCEPT",
                ]),
            ));
        }
        for family in Family::BOTH {
            let dest = self.backend(i, family);
            let (host, to) = match dest {
                IpAddr::V4(a) => (format!("{a}/32"), format!("{a}:{dest_port}")),
                IpAddr::V6(a) => (format!("{a}/128"), format!("[{a}]:{dest_port}")),
            };
            let program = tool(family);
            out.push((
                program,
                args(&[
                    "-t", "filter", "-A", "FORWARD", "-d", &host, "-p", "tcp", "--dport",
                    &dest_port, "-j", "DROP",
                ]),
            ));
            out.push((
                program,
                args(&[
                    "-t",
                    "nat",
                    "-I",
                    "PREROUTING",
                    "-p",
                    "tcp",
                    "--dport",
                    &src_port,
                    "-j",
                    "DNAT",
                    "--to",
                    &to,
                ]),
            ));
            out.push((
                program,
                args(&[
                    "-t",
                    "nat",
                    "-I",
                    "POSTROUTING",
                    "-d",
                    &host,
                    "-p",
                    "tcp",
                    "-j",
                    "MASQUERADE",
                ]),
            ));
        }
        Some(out)
    }

    /// `iptables-restore` input for one family: Services `0..n` as a linear list of DNAT
    /// rules in `nat PREROUTING`, in order, so Service `n - 1` (the one the data-path bench
    /// measures) is matched last. This is the per-packet cost a rule-per-Service data
    /// plane has; no filtering or SNAT, so it is a lower bound for such a data plane.
    pub fn linear_dnat(&self, family: Family, n: usize) -> Option<String> {
        let node = match family {
            Family::V4 => format!("{}/32", self.node_v4),
            Family::V6 => format!("{}/128", self.node_v6),
        };
        let mut out = String::from("*nat\n");
        for i in 0..n {
            let port = Workload::port(i)?;
            let to = match self.backend(i, family) {
                IpAddr::V4(a) => format!("{a}:{BACKEND_PORT}"),
                IpAddr::V6(a) => format!("[{a}]:{BACKEND_PORT}"),
            };
            out.push_str(&format!(
                "-A PREROUTING -d {node} -p tcp -m tcp --dport {port} -j DNAT --to-destination {to}\n"
            ));
        }
        out.push_str("COMMIT\n");
        Some(out)
    }
}

/// `10.0.0.0/8` and `fd00::/8`: the test bed's clients are inside, so traffic is admitted,
/// but every new connection still passes the range check.
pub fn default_ranges() -> Vec<IpNet> {
    ["10.0.0.0/8", "fd00::/8"]
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The frontend name of Service `i`: `bench/svc-<i>:tcp`.
pub fn service_name(i: usize) -> String {
    format!("bench/svc-{i}:tcp")
}

fn tool(family: Family) -> &'static str {
    match family {
        Family::V4 => "iptables",
        Family::V6 => "ip6tables",
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dualstack_ruleset::validate;

    fn workload() -> Workload {
        Workload::sync("10.0.1.1".parse().unwrap(), "fd00:1::1".parse().unwrap())
    }

    #[test]
    fn rulesets_are_valid_and_sized() {
        for n in [0, 1, 2, 300] {
            let rs = workload().ruleset("bench", n).unwrap();
            assert_eq!(rs.frontends.len(), n);
            validate(&rs).unwrap();
        }
        assert!(workload().ruleset("bench", MAX_SERVICES + 1).is_none());
        assert_eq!(Workload::port(MAX_SERVICES - 1), Some(59_999));
        assert_eq!(Workload::port(MAX_SERVICES), None);
    }

    #[test]
    fn per_service_backends_are_distinct() {
        let w = workload();
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..1000 {
            for f in Family::BOTH {
                let b = w.backend(i, f);
                assert_eq!(Family::of(b), f);
                assert!(seen.insert(b), "{b} repeats");
            }
        }
    }

    #[test]
    fn klipper_commands_for_one_service() {
        let text: Vec<String> = workload()
            .klipper_commands(3)
            .unwrap()
            .into_iter()
            .map(|(p, a)| format!("{p} {}", a.join(" ")))
            .collect();
        insta::assert_snapshot!(text.join("\n"));
    }

    #[test]
    fn linear_dnat_puts_the_last_service_last() {
        let w = Workload {
            backends: Backends::Shared {
                v4: "10.0.2.2".parse().unwrap(),
                v6: "fd00:2::2".parse().unwrap(),
            },
            ..workload()
        };
        insta::assert_snapshot!(w.linear_dnat(Family::V6, 3).unwrap());
        let v4 = w.linear_dnat(Family::V4, 500).unwrap();
        let last_rule = v4.lines().rev().nth(1).unwrap();
        assert!(last_rule.contains("--dport 10499 "), "{last_rule}");
    }
}
