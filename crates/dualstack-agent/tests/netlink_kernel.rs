//! Live addresses read over rtnetlink inside a throwaway network namespace (root only).
#![cfg(feature = "netlink")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use dualstack_agent::addresses::default_excluded;
use dualstack_agent::netlink::{live_now, report_now, watch_live};
use dualstack_lb::Timestamp;
use dualstack_lb::live::{NodeReport, format_live_addresses};
use dualstack_testbed::{Netns, kernel_tests_enabled};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn now() -> Timestamp {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    Timestamp::from_unix_micros(i64::try_from(micros).unwrap())
}

fn node() -> Netns {
    let ns = Netns::new("addrs").unwrap();
    ns.ip(&["link", "set", "lo", "up"]).unwrap();
    // veth pairs with both ends here (no dummy module needed); the peers only get
    // link-local addresses, which are never reported.
    for (dev, peer) in [("eth0", "eth0p"), ("cni0", "cni0p")] {
        ns.ip(&["link", "add", dev, "type", "veth", "peer", "name", peer])
            .unwrap();
        ns.ip(&["link", "set", dev, "up"]).unwrap();
        ns.ip(&["link", "set", peer, "up"]).unwrap();
    }
    ns.add_addr("eth0", "192.168.1.20/24").unwrap();
    ns.add_addr("eth0", "2001:db8:1::20/64").unwrap();
    ns.ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8:1::99/64",
        "dev",
        "eth0",
        "nodad",
        "preferred_lft",
        "0",
    ])
    .unwrap();
    ns.add_addr("cni0", "10.42.0.1/24").unwrap();
    ns
}

#[test]
fn a_dump_reports_node_addresses_with_flags_and_skips_cni_and_link_local() {
    if !kernel_tests_enabled(
        "a_dump_reports_node_addresses_with_flags_and_skips_cni_and_link_local",
    ) {
        return;
    }
    let ns = node();
    let live = ns
        .run_in(|| runtime().block_on(live_now(&default_excluded())))
        .unwrap()
        .unwrap();
    assert_eq!(
        format_live_addresses(&live),
        "192.168.1.20,2001:db8:1::20,2001:db8:1::99;deprecated"
    );
}

#[test]
fn a_new_global_address_shows_up_within_seconds() {
    if !kernel_tests_enabled("a_new_global_address_shows_up_within_seconds") {
        return;
    }
    let ns = node();
    let name = ns.name().to_string();
    let seen = ns
        .run_in(move || {
            runtime().block_on(async move {
                let (tx, mut rx) = tokio::sync::watch::channel(NodeReport::default());
                let watcher = tokio::spawn(watch_live(default_excluded(), now, tx));
                rx.changed().await.unwrap();
                let before = format_live_addresses(&rx.borrow_and_update().addresses);
                // The ISP hands out a new prefix: a new global address appears.
                let status = Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        &name,
                        "ip",
                        "-6",
                        "addr",
                        "add",
                        "2001:db8:2::20/64",
                        "dev",
                        "eth0",
                        "nodad",
                    ])
                    .status()
                    .unwrap();
                assert!(status.success());
                tokio::time::timeout(Duration::from_secs(3), rx.changed())
                    .await
                    .expect("announced within seconds")
                    .unwrap();
                let after = format_live_addresses(&rx.borrow().addresses);
                drop(rx);
                let _ = tokio::time::timeout(Duration::from_secs(2), watcher).await;
                (before, after)
            })
        })
        .unwrap();
    assert!(!seen.0.contains("2001:db8:2::20"), "{}", seen.0);
    assert!(seen.1.contains("2001:db8:2::20"), "{}", seen.1);
}

#[test]
fn prefixes_carry_lifetimes_and_never_come_from_ulas_or_host_routes() {
    if !kernel_tests_enabled("prefixes_carry_lifetimes_and_never_come_from_ulas_or_host_routes") {
        return;
    }
    let ns = node();
    for args in [
        &[
            "-6",
            "addr",
            "add",
            "2001:db8:5::20/64",
            "dev",
            "eth0",
            "nodad",
            "valid_lft",
            "600",
            "preferred_lft",
            "300",
        ][..],
        &["-6", "addr", "add", "fd00:5::20/64", "dev", "eth0", "nodad"][..],
        &[
            "-6",
            "addr",
            "add",
            "2001:db8:6::20/128",
            "dev",
            "eth0",
            "nodad",
        ][..],
        &[
            "-6",
            "addr",
            "add",
            "2001:db8:42::1/64",
            "dev",
            "cni0",
            "nodad",
        ][..],
    ] {
        ns.ip(args).unwrap();
    }
    let at = now();
    let report = ns
        .run_in(move || runtime().block_on(report_now(&default_excluded(), at)))
        .unwrap()
        .unwrap();
    let prefixes: Vec<String> = report
        .prefixes
        .iter()
        .map(|p| p.prefix.to_string())
        .collect();
    assert_eq!(
        prefixes,
        ["2001:db8:1::/64", "2001:db8:5::/64"],
        "{report:?}"
    );
    let static_one = &report.prefixes[0];
    assert_eq!(
        (static_one.preferred_until, static_one.valid_until),
        (None, None)
    );
    let slaac = &report.prefixes[1];
    assert_eq!(slaac.interface, "eth0");
    let secs = |t: Option<Timestamp>| (t.unwrap().unix_micros() - at.unix_micros()) / 1_000_000;
    assert!((597..=600).contains(&secs(slaac.valid_until)), "{slaac:?}");
    assert!(
        (297..=300).contains(&secs(slaac.preferred_until)),
        "{slaac:?}"
    );
    // Created just now (boot time from /proc/uptime + cstamp).
    assert!(secs(slaac.since).abs() <= 3, "{slaac:?}");
}
