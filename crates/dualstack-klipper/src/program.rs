//! From a [`KlipperConfig`] to the ruleset one `svclb` container programs.
//!
//! One container forwards one Service port for both families through one table. K3s puts one
//! container per Service port into the same pod, and they share the pod's network namespace,
//! so each container owns a table of its own, named after its protocol and port
//! ([`default_table_name`]): restarting or stopping one container never touches another's rules.
//!
//! A family is served when it has a destination and forwarding is enabled for it in the pod
//! (`net.ipv4.ip_forward`, `net.ipv6.conf.all.forwarding`). A family that has destinations but
//! no forwarding is skipped and reported, never an error: upstream crash-looped on that until
//! v0.4.9 (k3s#9949).

use std::net::IpAddr;

use dualstack_addr::Family;
use dualstack_ruleset::{Backend, Destination, Frontend, Protocol, Ruleset, Selection};
use ipnet::IpNet;

use crate::contract::KlipperConfig;

/// Whether the namespace forwards each family (the values of the forwarding sysctls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forwarding {
    /// `net.ipv4.ip_forward` is 1.
    pub v4: bool,
    /// `net.ipv6.conf.all.forwarding` is 1.
    pub v6: bool,
}

impl Forwarding {
    /// Whether `family` is forwarded.
    pub fn enabled(self, family: Family) -> bool {
        match family {
            Family::V4 => self.v4,
            Family::V6 => self.v6,
        }
    }
}

/// What happens to one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FamilyPlan {
    /// Forwarded to these destinations, from these source ranges (empty: every client of
    /// this family is refused, because `SRC_RANGES` lists only the other family).
    Served {
        /// The Service's addresses of this family, forwarded to.
        destinations: Vec<IpAddr>,
        /// The client ranges of this family let through.
        src_ranges: Vec<IpNet>,
    },
    /// Destinations exist but the family's forwarding sysctl is not 1.
    NotForwarding {
        /// The destinations that cannot be reached while forwarding is off.
        destinations: Vec<IpAddr>,
    },
    /// No destination of this family was given.
    NoDestination,
}

/// The ruleset to program and what it means per family, IPv4 first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// What to program into the pod's table.
    pub ruleset: Ruleset,
    /// What happens to each family, for the startup report.
    pub families: [(Family, FamilyPlan); 2],
}

impl Program {
    /// True when at least one family is forwarded.
    pub fn serves_anything(&self) -> bool {
        self.families
            .iter()
            .any(|(_, plan)| matches!(plan, FamilyPlan::Served { .. }))
    }
}

/// The table one container owns: `dualstack-klipper-<proto>-<port>`.
pub fn default_table_name(protocol: Protocol, src_port: u16) -> String {
    format!("dualstack-klipper-{protocol}-{src_port}")
}

/// Builds the ruleset for `config` given which families the namespace forwards.
pub fn program(config: &KlipperConfig, forwarding: Forwarding, table: &str) -> Program {
    let families = Family::BOTH.map(|family| {
        let destinations: Vec<IpAddr> = config.destinations_of(family).collect();
        let plan = if destinations.is_empty() {
            FamilyPlan::NoDestination
        } else if !forwarding.enabled(family) {
            FamilyPlan::NotForwarding { destinations }
        } else {
            let src_ranges = config
                .src_ranges
                .iter()
                .copied()
                .filter(|r| Family::of_net(*r) == family)
                .collect();
            FamilyPlan::Served {
                destinations,
                src_ranges,
            }
        };
        (family, plan)
    });

    let backends: Vec<Backend> = families
        .iter()
        .filter_map(|(_, plan)| match plan {
            FamilyPlan::Served { destinations, .. } => Some(destinations),
            _ => None,
        })
        .flatten()
        .map(|&addr| Backend {
            addr,
            port: config.dest_port,
        })
        .collect();

    let frontends = if backends.is_empty() {
        Vec::new()
    } else {
        vec![Frontend {
            name: format!("klipper {}/{}", config.protocol, config.src_port),
            destination: Destination::AnyLocal,
            protocol: config.protocol,
            port: config.src_port,
            source_ranges: config.src_ranges.clone(),
            backends,
            selection: Selection::Random,
            masquerade: true,
        }]
    };

    Program {
        ruleset: Ruleset {
            table: table.to_owned(),
            guard: Vec::new(),
            frontends,
        },
        families,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dest: &[&str], ranges: &[&str]) -> KlipperConfig {
        KlipperConfig {
            src_port: 443,
            src_ranges: ranges.iter().map(|r| r.parse().unwrap()).collect(),
            protocol: Protocol::Tcp,
            dest_port: 8443,
            destinations: dest.iter().map(|d| d.parse().unwrap()).collect(),
        }
    }

    const BOTH_ON: Forwarding = Forwarding { v4: true, v6: true };

    #[test]
    fn dual_stack_destinations_give_one_frontend_with_both_families() {
        let cfg = config(&["10.43.0.10", "2001:cafe:43::a"], &["0.0.0.0/0", "::/0"]);
        let p = program(&cfg, BOTH_ON, "t");
        assert_eq!(p.ruleset.frontends.len(), 1);
        let fe = &p.ruleset.frontends[0];
        assert_eq!(fe.destination, Destination::AnyLocal);
        assert_eq!(fe.port, 443);
        assert!(fe.masquerade);
        assert_eq!(fe.backends.len(), 2);
        assert!(fe.backends.iter().all(|b| b.port == 8443));
        assert!(p.serves_anything());
    }

    #[test]
    fn a_family_without_forwarding_is_skipped_not_fatal() {
        let cfg = config(&["10.43.0.10", "2001:cafe:43::a"], &["0.0.0.0/0", "::/0"]);
        let p = program(
            &cfg,
            Forwarding {
                v4: true,
                v6: false,
            },
            "t",
        );
        assert!(matches!(p.families[1].1, FamilyPlan::NotForwarding { .. }));
        let fe = &p.ruleset.frontends[0];
        assert!(fe.backends.iter().all(|b| b.addr.is_ipv4()));
    }

    #[test]
    fn nothing_forwardable_gives_an_empty_ruleset() {
        let cfg = config(&["2001:cafe:43::a"], &["::/0"]);
        let p = program(
            &cfg,
            Forwarding {
                v4: true,
                v6: false,
            },
            "t",
        );
        assert!(p.ruleset.frontends.is_empty());
        assert!(!p.serves_anything());
        assert_eq!(p.families[0].1, FamilyPlan::NoDestination);
    }

    #[test]
    fn ipv4_only_ranges_leave_ipv6_served_but_closed() {
        let cfg = config(&["10.43.0.10", "2001:cafe:43::a"], &["192.168.0.0/16"]);
        let p = program(&cfg, BOTH_ON, "t");
        match &p.families[1].1 {
            FamilyPlan::Served { src_ranges, .. } => assert!(src_ranges.is_empty()),
            other => panic!("{other:?}"),
        }
        // The frontend carries only the IPv4 range: the renderer denies IPv6 clients.
        assert_eq!(p.ruleset.frontends[0].source_ranges.len(), 1);
    }

    #[test]
    fn table_names_differ_per_container() {
        assert_eq!(
            default_table_name(Protocol::Udp, 53),
            "dualstack-klipper-udp-53"
        );
        assert_ne!(
            default_table_name(Protocol::Tcp, 53),
            default_table_name(Protocol::Udp, 53)
        );
    }
}
