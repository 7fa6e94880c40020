//! The test bed itself: routed traffic through a lab, both families, TCP and UDP, and
//! namespaces gone after drop.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use dualstack_addr::Family;
use dualstack_testbed::{EchoServer, Lab, Netns, kernel_tests_enabled, tcp_request, udp_request};

const T: Duration = Duration::from_secs(2);

#[test]
fn routed_echo_both_families_and_cleanup() {
    if !kernel_tests_enabled("routed_echo_both_families_and_cleanup") {
        return;
    }
    let names: Vec<String>;
    {
        let mut lab = Lab::new().unwrap();
        lab.add_hosts("client", 1).unwrap();
        lab.add_hosts("backend", 1).unwrap();
        let (client, backend) = (&lab.hosts()[0], &lab.hosts()[1]);
        let server = EchoServer::start(&backend.ns, "b1", 8080).unwrap();
        for family in Family::BOTH {
            let to = backend.socket(family, 8080);
            let r = tcp_request(&client.ns, to, T).unwrap();
            assert_eq!((r.server.as_str(), r.peer), ("b1", client.addr(family)));
            let r = udp_request(&client.ns, to, T).unwrap();
            assert_eq!((r.server.as_str(), r.peer), ("b1", client.addr(family)));
        }
        // Nothing listens on 8081: refused, not hanging.
        assert!(tcp_request(&client.ns, backend.socket(Family::V4, 8081), T).is_err());
        assert_eq!(server.id(), "b1");
        names = [&lab.node, &client.ns, &backend.ns]
            .iter()
            .map(|n| n.name().to_string())
            .collect();
    }
    let list = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for n in names {
        assert!(!list.contains(&n), "{n} still exists");
    }
}

#[test]
fn namespace_is_removed_even_when_a_test_panics() {
    if !kernel_tests_enabled("namespace_is_removed_even_when_a_test_panics") {
        return;
    }
    let name = std::panic::catch_unwind(|| {
        let ns = Netns::new("panic").unwrap();
        let name = ns.name().to_string();
        std::panic::panic_any(name);
    })
    .unwrap_err()
    .downcast::<String>()
    .unwrap();
    assert!(!std::path::Path::new("/run/netns").join(*name).exists());
}

#[test]
fn names_are_unique() {
    if !kernel_tests_enabled("names_are_unique") {
        return;
    }
    let a = Netns::new("x").unwrap();
    let b = Netns::new("x").unwrap();
    assert_ne!(a.name(), b.name());
}
