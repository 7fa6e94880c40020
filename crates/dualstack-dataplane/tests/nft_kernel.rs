//! The nft data plane with real traffic, each test in its own throwaway namespaces
//! (root only; skips with a printed reason otherwise, fails instead in CI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use common::*;
use dualstack_addr::Family;
use dualstack_dataplane::{Backend as Plane, DataplaneError, Nft, Runner, probe};
use dualstack_ruleset::{Destination, Protocol, Ruleset, nft as render};
use dualstack_testbed::{EchoServer, kernel_tests_enabled, tcp_request};

const TABLE: &str = "dualstack";

fn ruleset(frontends: Vec<dualstack_ruleset::Frontend>) -> Ruleset {
    Ruleset {
        table: TABLE.into(),
        guard: Vec::new(),
        frontends,
    }
}

#[test]
fn forwards_tcp_and_udp_both_families_with_and_without_masquerade() {
    if !kernel_tests_enabled("forwards_tcp_and_udp_both_families_with_and_without_masquerade") {
        return;
    }
    let s = Setup::new(1, 1);
    let nft = Nft::new(s.runner(), TABLE).unwrap();
    assert_eq!(probe(&s.runner()).unwrap(), Plane::Nftables);
    let rs = ruleset(vec![
        // Masquerade, bound to the node's addresses, TCP.
        frontend(
            "web",
            Destination::Addresses(s.node_addrs(0)),
            Protocol::Tcp,
            80,
            ALL,
            s.backends(&[0]),
            true,
        ),
        // No masquerade (externalTrafficPolicy: Local), any local address, UDP.
        frontend(
            "dns",
            Destination::AnyLocal,
            Protocol::Udp,
            53,
            ALL,
            s.backends(&[0]),
            false,
        ),
        // No masquerade, TCP, any local address.
        frontend(
            "local-tcp",
            Destination::AnyLocal,
            Protocol::Tcp,
            81,
            ALL,
            s.backends(&[0]),
            false,
        ),
    ]);
    nft.apply(&rs).unwrap();
    assert!(nft.drift(&rs).unwrap().is_empty());
    for f in Family::BOTH {
        let client = s.client(0).addr(f);
        let node_on_backend_link = s.backend(0).node_addr(f);
        let r = s
            .tcp(0, f, 80, OK)
            .unwrap_or_else(|| panic!("tcp {f} via web"));
        assert_eq!(
            (r.server.as_str(), r.peer),
            ("b1", node_on_backend_link),
            "{f}"
        );
        let r = s
            .udp(0, f, 53, OK)
            .unwrap_or_else(|| panic!("udp {f} via dns"));
        assert_eq!((r.server.as_str(), r.peer), ("b1", client), "{f}");
        let r = s
            .tcp(0, f, 81, OK)
            .unwrap_or_else(|| panic!("tcp {f} via local-tcp"));
        assert_eq!((r.server.as_str(), r.peer), ("b1", client), "{f}");
        // The node itself (output hook) reaches the frontend on its own address.
        let to = SocketAddr::new(s.client(0).node_addr(f), 80);
        let r = tcp_request(&s.lab.node, to, OK).unwrap();
        assert_eq!(r.server, "b1", "{f} from the node itself");
    }
}

#[test]
fn connections_spread_over_all_backends() {
    if !kernel_tests_enabled("connections_spread_over_all_backends") {
        return;
    }
    let s = Setup::new(1, 3);
    let nft = Nft::new(s.runner(), TABLE).unwrap();
    let rs = ruleset(vec![frontend(
        "spread",
        Destination::AnyLocal,
        Protocol::Tcp,
        80,
        ALL,
        s.backends(&[0, 1, 2]),
        true,
    )]);
    nft.apply(&rs).unwrap();
    for f in Family::BOTH {
        // 40 connections: the chance that random choice misses one of 3 is 3·(2/3)^40 < 1e-6.
        let seen: BTreeSet<String> = (0..40)
            .map(|_| s.tcp(0, f, 80, OK).expect("reply").server)
            .collect();
        let want: BTreeSet<String> = ["b1", "b2", "b3"].map(String::from).into();
        assert_eq!(seen, want, "{f}");
    }
}

#[test]
fn source_ranges_hold_for_both_families() {
    if !kernel_tests_enabled("source_ranges_hold_for_both_families") {
        return;
    }
    let s = Setup::new(2, 1);
    let nft = Nft::new(s.runner(), TABLE).unwrap();
    let b = s.backends(&[0]);
    let rs = ruleset(vec![
        // Only an IPv4 range: every IPv6 client is denied.
        frontend(
            "v4only",
            Destination::AnyLocal,
            Protocol::Tcp,
            80,
            &["10.0.1.0/24"],
            b.clone(),
            true,
        ),
        // IPv4 range plus ::/0: IPv6 open to all.
        frontend(
            "v6open",
            Destination::AnyLocal,
            Protocol::Tcp,
            81,
            &["10.0.1.0/24", "::/0"],
            b.clone(),
            true,
        ),
        // A range in each family.
        frontend(
            "both",
            Destination::AnyLocal,
            Protocol::Udp,
            82,
            &["10.0.1.0/24", "fd00:1::/64"],
            b,
            true,
        ),
    ]);
    nft.apply(&rs).unwrap();
    let (allowed, denied) = (0, 1);
    let v4 = Family::V4;
    let v6 = Family::V6;
    assert!(s.tcp(allowed, v4, 80, OK).is_some());
    assert!(s.tcp(denied, v4, 80, DROPPED).is_none());
    assert!(
        s.tcp(allowed, v6, 80, DROPPED).is_none(),
        "v6 must not bypass v4-only ranges"
    );
    assert!(s.tcp(denied, v6, 80, DROPPED).is_none());
    assert!(s.tcp(allowed, v6, 81, OK).is_some());
    assert!(s.tcp(denied, v6, 81, OK).is_some());
    assert!(s.tcp(denied, v4, 81, DROPPED).is_none());
    assert!(s.udp(allowed, v4, 82, OK).is_some());
    assert!(s.udp(allowed, v6, 82, OK).is_some());
    assert!(s.udp(denied, v4, 82, DROPPED).is_none());
    assert!(s.udp(denied, v6, 82, DROPPED).is_none());
}

/// Frontends with the same ranges share one range chain per family: removing one of them
/// incrementally must neither fail (the chain is still in use) nor open the others, and a
/// chain left without users is inert and not reported as drift.
#[test]
fn shared_range_chains_survive_incremental_changes() {
    if !kernel_tests_enabled("shared_range_chains_survive_incremental_changes") {
        return;
    }
    let s = Setup::new(2, 1);
    let nft = Nft::new(s.runner(), TABLE).unwrap();
    let ranges = &["10.0.1.0/24", "fd00:1::/64"];
    let b = s.backends(&[0]);
    let a = frontend(
        "a",
        Destination::AnyLocal,
        Protocol::Tcp,
        80,
        ranges,
        b.clone(),
        true,
    );
    let bound = Destination::Addresses(s.node_addrs(0));
    let c = frontend(
        "c",
        bound.clone(),
        Protocol::Tcp,
        81,
        ranges,
        b.clone(),
        false,
    );
    nft.apply(&ruleset(vec![a.clone(), c.clone()])).unwrap();
    let shared: Vec<String> = render::expected(&ruleset(vec![a.clone()]))
        .unwrap()
        .chains
        .into_iter()
        .collect();
    assert_eq!(shared.len(), 2, "{shared:?}");
    assert!(shared.iter().all(|c| render::is_shared_chain(c)));
    let (allowed, denied) = (0, 1);

    nft.apply_changes(std::slice::from_ref(&a), &[]).unwrap();
    assert!(nft.drift(&ruleset(vec![c.clone()])).unwrap().is_empty());
    for f in Family::BOTH {
        assert!(s.tcp(allowed, f, 80, DROPPED).is_none(), "{f}: a is gone");
        assert!(s.tcp(allowed, f, 81, OK).is_some(), "{f}");
        assert!(
            s.tcp(denied, f, 81, DROPPED).is_none(),
            "{f}: c still checked"
        );
    }

    // The last user goes: its range chains stay, unused, and that is not drift.
    nft.apply_changes(std::slice::from_ref(&c), &[]).unwrap();
    assert!(nft.drift(&ruleset(vec![])).unwrap().is_empty());
    let chains = nft.observe().unwrap().unwrap().chains;
    assert!(shared.iter().all(|c| chains.contains(c)), "{chains:?}");

    // A new user of the same ranges re-declares the chains; another with other ranges
    // gets its own.
    let d = frontend("d", bound, Protocol::Udp, 82, ranges, b.clone(), true);
    let e = frontend(
        "e",
        Destination::AnyLocal,
        Protocol::Tcp,
        83,
        &["10.0.2.0/24"],
        b,
        true,
    );
    nft.apply_changes(&[], &[d.clone(), e.clone()]).unwrap();
    assert!(nft.drift(&ruleset(vec![d, e])).unwrap().is_empty());
    for f in Family::BOTH {
        assert!(s.udp(allowed, f, 82, OK).is_some(), "{f}");
        assert!(s.udp(denied, f, 82, DROPPED).is_none(), "{f}");
        assert!(
            s.tcp(allowed, f, 83, DROPPED).is_none(),
            "{f}: not in e's ranges"
        );
    }
    let rules = s.ruleset_text();
    assert_eq!(
        rules.matches("ip saddr 10.0.1.0/24 return").count(),
        1,
        "{rules}"
    );
}

#[test]
fn rejected_transaction_leaves_previous_rules_working() {
    if !kernel_tests_enabled("rejected_transaction_leaves_previous_rules_working") {
        return;
    }
    let s = Setup::new(1, 1);
    let nft = Nft::new(s.runner(), TABLE).unwrap();
    let web = frontend(
        "web",
        Destination::AnyLocal,
        Protocol::Tcp,
        80,
        ALL,
        s.backends(&[0]),
        true,
    );
    let rs = ruleset(vec![web.clone()]);
    nft.apply(&rs).unwrap();
    let before = s.ruleset_text();

    // A full sync of a bigger ruleset with one invalid element injected (a jump to a chain
    // that does not exist): the kernel must refuse the whole transaction.
    let other = frontend(
        "other",
        Destination::AnyLocal,
        Protocol::Tcp,
        81,
        ALL,
        s.backends(&[0]),
        true,
    );
    let mut text = render::render_full(&ruleset(vec![web, other])).unwrap();
    text.push_str(&format!(
        "add element inet {TABLE} nat-local {{ ipv4 . tcp . 99 : goto no-such-chain }}\n"
    ));
    let err = nft.run_script(&text).unwrap_err();
    match &err {
        DataplaneError::Failed { stderr, .. } => assert!(!stderr.is_empty(), "{err}"),
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(s.ruleset_text(), before);
    assert!(nft.drift(&rs).unwrap().is_empty());
    for f in Family::BOTH {
        assert!(s.tcp(0, f, 80, OK).is_some(), "{f}");
        assert!(s.tcp(0, f, 81, DROPPED).is_none(), "{f}");
    }
}

#[test]
fn foreign_rules_untouched_and_cleanup_leaves_nothing() {
    if !kernel_tests_enabled("foreign_rules_untouched_and_cleanup_leaves_nothing") {
        return;
    }
    let s = Setup::new(1, 1);
    let node = &s.lab.node;
    node.exec("nft", &["add table ip nat"]).unwrap();
    node.exec("nft", &["add chain ip nat custom"]).unwrap();
    node.exec(
        "nft",
        &["add rule ip nat custom ip daddr 192.0.2.1 tcp dport 80 counter accept"],
    )
    .unwrap();
    node.exec("iptables", &["-w", "-t", "filter", "-N", "FOREIGN"])
        .unwrap();
    node.exec(
        "iptables",
        &[
            "-w",
            "-t",
            "filter",
            "-A",
            "FOREIGN",
            "-s",
            "192.0.2.9",
            "-j",
            "DROP",
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
    let before = s.ruleset_text();

    let nft = Nft::new(s.runner(), TABLE).unwrap();
    let rs = ruleset(vec![frontend(
        "web",
        Destination::AnyLocal,
        Protocol::Tcp,
        80,
        ALL,
        s.backends(&[0]),
        true,
    )]);
    nft.apply(&rs).unwrap();
    assert!(s.tcp(0, Family::V6, 80, OK).is_some());
    let during = s.ruleset_text();
    assert!(during.contains(&format!("table inet {TABLE} ")));
    assert_eq!(without_table(&during, &format!("inet {TABLE}")), before);

    nft.cleanup().unwrap();
    nft.cleanup().unwrap(); // idempotent
    let after = s.ruleset_text();
    assert_eq!(
        after, before,
        "cleanup must leave exactly the foreign rules"
    );
    assert!(!after.contains(TABLE));
    assert!(nft.observe().unwrap().is_none());
    assert!(s.tcp(0, Family::V4, 80, DROPPED).is_none());
}

#[test]
fn incremental_add_change_and_remove_with_traffic() {
    if !kernel_tests_enabled("incremental_add_change_and_remove_with_traffic") {
        return;
    }
    let s = Setup::new(1, 2);
    let nft = Nft::new(s.runner(), TABLE).unwrap();
    let a = frontend(
        "a",
        Destination::AnyLocal,
        Protocol::Tcp,
        80,
        ALL,
        s.backends(&[0]),
        true,
    );
    nft.apply(&ruleset(vec![a.clone()])).unwrap();

    let b = frontend(
        "b",
        Destination::Addresses(s.node_addrs(0)),
        Protocol::Udp,
        81,
        ALL,
        s.backends(&[1]),
        false,
    );
    nft.apply_changes(&[], std::slice::from_ref(&b)).unwrap();
    assert!(
        nft.drift(&ruleset(vec![a.clone(), b.clone()]))
            .unwrap()
            .is_empty()
    );
    for f in Family::BOTH {
        assert_eq!(s.tcp(0, f, 80, OK).unwrap().server, "b1");
        assert_eq!(s.udp(0, f, 81, OK).unwrap().server, "b2");
    }

    // Change b: other backend, IPv6 only.
    let mut b2 = b.clone();
    b2.backends = vec![s.backends(&[0])[1]];
    nft.apply_changes(std::slice::from_ref(&b), std::slice::from_ref(&b2))
        .unwrap();
    assert!(
        nft.drift(&ruleset(vec![a.clone(), b2.clone()]))
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.udp(0, Family::V6, 81, OK).unwrap().server, "b1");
    assert!(s.udp(0, Family::V4, 81, DROPPED).is_none());

    // Remove a.
    nft.apply_changes(std::slice::from_ref(&a), &[]).unwrap();
    assert!(nft.drift(&ruleset(vec![b2])).unwrap().is_empty());
    for f in Family::BOTH {
        assert!(s.tcp(0, f, 80, DROPPED).is_none(), "{f}");
    }
    assert_eq!(s.udp(0, Family::V6, 81, OK).unwrap().server, "b1");
}

#[test]
fn udp_flows_from_before_the_rules_are_flushed() {
    if !kernel_tests_enabled("udp_flows_from_before_the_rules_are_flushed") {
        return;
    }
    let s = Setup::new(1, 1);
    // Before our rules, a service on the node itself answers on UDP 53, so conntrack holds
    // an established, un-NATed flow for the client's tuple.
    let local = EchoServer::start(&s.lab.node, "node", 53).unwrap();
    // Conntrack only runs in a namespace once some rule needs it, as on any real host
    // with a stateful firewall.
    let fw = "add table inet host-fw; add chain inet host-fw input { type filter hook input priority 0; }; add rule inet host-fw input ct state established accept";
    s.lab.node.exec("nft", &[fw]).unwrap();
    for f in Family::BOTH {
        let to = SocketAddr::new(s.client(0).node_addr(f), 53);
        let from = SocketAddr::new(s.client(0).addr(f), 40000);
        let ask = move || {
            let sock = std::net::UdpSocket::bind(from).unwrap();
            sock.set_read_timeout(Some(OK)).unwrap();
            sock.send_to(b"x", to).unwrap();
            let mut buf = [0u8; 100];
            let n = sock.recv(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..n])
                .split(' ')
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(s.client(0).ns.run_in(ask).unwrap(), "node", "{f}");
        let nft = Nft::new(s.runner(), TABLE).unwrap();
        let dns = frontend(
            "dns",
            Destination::AnyLocal,
            Protocol::Udp,
            53,
            ALL,
            s.backends(&[0]),
            false,
        );
        nft.apply(&ruleset(vec![dns])).unwrap();
        // Same tuple again: without the flush it would still reach the node's own service.
        assert_eq!(
            s.client(0).ns.run_in(ask).unwrap(),
            "b1",
            "{f}: stale flow not flushed"
        );
        nft.cleanup().unwrap();
        s.lab.node.exec("conntrack", &["-F"]).unwrap();
    }
    drop(local);
}

/// A sync deletes the UDP flows of the frontends it changes and only those: a UDP Service
/// left as it was keeps its flows through a full sync, one whose backend changed loses
/// them, and removing a frontend (incrementally, where the applier can) deletes its
/// flows. Over netlink this is ctnetlink (no `conntrack` process); the `nft -f` and
/// `iptables-restore` appliers run `conntrack -D` for the changed ports only.
fn sync_deletes_only_the_udp_flows_of_changed_frontends(
    test: &str,
    plane: impl Fn(Runner) -> Box<dyn dualstack_dataplane::Dataplane>,
) {
    if !kernel_tests_enabled(test) {
        return;
    }
    let s = Setup::new(1, 2);
    let nl = plane(s.runner());
    let udp = |name: &str, port: u16, backend: usize| {
        frontend(
            name,
            Destination::AnyLocal,
            Protocol::Udp,
            port,
            ALL,
            s.backends(&[backend]),
            false,
        )
    };
    let flows = |port: u16| -> usize {
        let port = port.to_string();
        let out = s
            .lab
            .node
            .exec("conntrack", &["-L", "-p", "udp", "--dport", &port])
            .unwrap_or_default();
        out.lines().filter(|l| l.contains("udp")).count()
    };
    let (a, b) = (udp("a", 53, 0), udp("b", 54, 0));
    nl.apply(&ruleset(vec![a.clone(), b.clone()])).unwrap();
    for f in Family::BOTH {
        for port in [53, 54] {
            let r = s.udp(0, f, port, OK).expect("udp reply");
            assert_eq!(r.server, "b1", "{f} {port}");
        }
    }
    assert_eq!(
        (flows(53), flows(54)),
        (2, 2),
        "one flow per family and port"
    );
    // b moves to the second backend; a is untouched.
    let b2 = udp("b", 54, 1);
    nl.apply(&ruleset(vec![a.clone(), b2.clone()])).unwrap();
    assert_eq!(
        flows(53),
        2,
        "{}: the unchanged UDP frontend's flows were flushed",
        nl.kind()
    );
    assert_eq!(
        flows(54),
        0,
        "{}: the changed UDP frontend's flows are still there",
        nl.kind()
    );
    for f in Family::BOTH {
        assert_eq!(s.udp(0, f, 54, OK).expect("udp reply").server, "b2", "{f}");
    }
    // The same ruleset again changes nothing, flows included.
    nl.apply(&ruleset(vec![a.clone(), b2.clone()])).unwrap();
    assert_eq!((flows(53), flows(54)), (2, 2), "{}", nl.kind());
    // Removing a deletes a's flows only.
    if nl.incremental() {
        nl.apply_changes(std::slice::from_ref(&a), &[]).unwrap();
    } else {
        nl.apply(&ruleset(vec![b2.clone()])).unwrap();
    }
    assert_eq!((flows(53), flows(54)), (0, 2), "{}", nl.kind());
    nl.cleanup().unwrap();
}

#[test]
fn netlink_sync_deletes_only_the_udp_flows_of_changed_frontends() {
    sync_deletes_only_the_udp_flows_of_changed_frontends(
        "netlink_sync_deletes_only_the_udp_flows_of_changed_frontends",
        |r| Box::new(dualstack_dataplane::Netlink::new(r, TABLE).unwrap()),
    );
}

#[test]
fn nft_sync_deletes_only_the_udp_flows_of_changed_frontends() {
    sync_deletes_only_the_udp_flows_of_changed_frontends(
        "nft_sync_deletes_only_the_udp_flows_of_changed_frontends",
        |r| Box::new(Nft::new(r, TABLE).unwrap()),
    );
}

#[test]
fn iptables_restore_sync_deletes_only_the_udp_flows_of_changed_frontends() {
    sync_deletes_only_the_udp_flows_of_changed_frontends(
        "iptables_restore_sync_deletes_only_the_udp_flows_of_changed_frontends",
        |r| Box::new(dualstack_dataplane::IptablesRestore::with_table(r, TABLE)),
    );
}
