//! The iptables-restore fallback with real traffic (root only).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dualstack_addr::Family;
use dualstack_dataplane::IptablesRestore;
use dualstack_ruleset::{Destination, Protocol, Ruleset};
use dualstack_testbed::kernel_tests_enabled;

fn saves(s: &Setup) -> String {
    ["iptables-save", "ip6tables-save"]
        .iter()
        .flat_map(|tool| {
            ["mangle", "nat", "filter"].map(|t| s.lab.node.exec(tool, &["-t", t]).unwrap())
        })
        .map(|text| {
            // Drop the timestamp comments and packet counters, which change on their own.
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.split(" [").next().unwrap_or(l).to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn fallback_forwards_filters_and_cleans_up() {
    if !kernel_tests_enabled("fallback_forwards_filters_and_cleans_up") {
        return;
    }
    let s = Setup::new(2, 2);
    let node = &s.lab.node;
    node.exec(
        "iptables",
        &[
            "-w",
            "-t",
            "nat",
            "-A",
            "PREROUTING",
            "-s",
            "192.0.2.9",
            "-j",
            "RETURN",
        ],
    )
    .unwrap();
    node.exec(
        "ip6tables",
        &[
            "-w",
            "-t",
            "filter",
            "-A",
            "FORWARD",
            "-s",
            "2001:db8::9",
            "-j",
            "DROP",
        ],
    )
    .unwrap();
    let before = saves(&s);

    let ipt = IptablesRestore::new(s.runner());
    let mut rs = Ruleset {
        table: "dualstack".into(),
        guard: Vec::new(),
        frontends: vec![
            frontend(
                "web",
                Destination::Addresses(s.node_addrs(0)),
                Protocol::Tcp,
                80,
                &["10.0.1.0/24", "fd00:1::/64"],
                s.backends(&[0]),
                true,
            ),
            frontend(
                "dns",
                Destination::AnyLocal,
                Protocol::Udp,
                53,
                ALL,
                s.backends(&[0, 1]),
                false,
            ),
        ],
    };
    ipt.apply(&rs).unwrap();
    ipt.apply(&rs).unwrap(); // re-apply: no duplicate jumps
    for f in Family::BOTH {
        let r = s.tcp(0, f, 80, OK).unwrap_or_else(|| panic!("{f} tcp"));
        assert_eq!(
            (r.server.as_str(), r.peer),
            ("b1", s.backend(0).node_addr(f)),
            "{f}"
        );
        assert!(
            s.tcp(1, f, 80, DROPPED).is_none(),
            "{f}: client 2 is outside the ranges"
        );
        let r = s.udp(1, f, 53, OK).unwrap_or_else(|| panic!("{f} udp"));
        assert_eq!(r.peer, s.client(1).addr(f), "{f}: no masquerade");
    }
    for tool in ["iptables-save", "ip6tables-save"] {
        let nat = node.exec(tool, &["-t", "nat"]).unwrap();
        assert_eq!(
            nat.matches("-A PREROUTING -j DUALSTACK-PREROUTING").count(),
            1,
            "{tool}"
        );
    }

    // Drop a frontend: its chains go away on the next sync.
    rs.frontends.truncate(1);
    ipt.apply(&rs).unwrap();
    assert!(s.udp(0, Family::V4, 53, DROPPED).is_none());
    assert!(s.tcp(0, Family::V6, 80, OK).is_some());

    ipt.cleanup().unwrap();
    ipt.cleanup().unwrap();
    assert_eq!(saves(&s), before);
    assert!(!saves(&s).contains("DUALSTACK"));
    assert!(s.tcp(0, Family::V4, 80, DROPPED).is_none());
}
