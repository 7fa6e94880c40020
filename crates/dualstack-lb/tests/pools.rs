//! Pool mode: allocation, stickiness, family policy, sharing and the announcer choice, on a
//! realistic three-node dump and on variations of it.

// Test helpers may panic on fixtures they build themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;

use common::publish;
use dualstack_lb::allocate::Origin;
use dualstack_lb::conditions::ConditionType;
use dualstack_lb::decision::ServiceDecision;
use dualstack_lb::{Config, Decision, Mode, Snapshot, Timestamp, decide, explain};
use dualstack_ruleset::Destination;
use proptest::prelude::*;

const FIXTURE: &str = include_str!("fixtures/pools-three-nodes.yaml");

fn now() -> Timestamp {
    "2025-04-10T10:00:00Z".parse().unwrap()
}

fn fixture() -> Snapshot {
    Snapshot::parse(FIXTURE).unwrap()
}

fn run(snapshot: &Snapshot) -> Decision {
    decide(snapshot, &Config::default(), now())
}

fn svc<'a>(d: &'a Decision, key: &str) -> &'a ServiceDecision {
    let (ns, name) = key.split_once('/').unwrap();
    d.service(ns, name).unwrap_or_else(|| panic!("no {key}"))
}

fn ingress(d: &Decision, key: &str) -> Vec<String> {
    svc(d, key)
        .ingress
        .iter()
        .map(|i| i.ip.to_string())
        .collect()
}

fn ready(d: &Decision, key: &str) -> (String, String, String) {
    let c = svc(d, key)
        .conditions
        .iter()
        .find(|c| c.type_ == ConditionType::LoadBalancerReady)
        .unwrap();
    (
        c.status.to_string(),
        c.reason.to_string(),
        c.message.clone(),
    )
}

fn announcer(d: &Decision, ip: &str) -> Option<String> {
    let ip: IpAddr = ip.parse().unwrap();
    d.pool_addresses
        .iter()
        .find(|a| a.ip == ip)
        .and_then(|a| a.announcer.clone())
}

#[test]
fn the_fixture_allocates_shares_and_refuses_with_named_causes() {
    let d = run(&fixture());
    // Sticky: traefik keeps the status address although .240 is lower and free.
    assert_eq!(
        ingress(&d, "kube-system/traefik"),
        ["192.168.1.243", "2001:db8:1:0:ffff::1"]
    );
    // Requested and shared by key, in ipFamilies order (IPv6 first).
    assert_eq!(
        ingress(&d, "dns/dns-tcp"),
        ["2001:db8:1:0:ffff::a", "192.168.1.245"]
    );
    assert_eq!(ingress(&d, "dns/dns-udp"), ingress(&d, "dns/dns-tcp"));
    // Lowest free, oldest first.
    assert_eq!(
        ingress(&d, "shop/storefront"),
        ["192.168.1.240", "2001:db8:1:0:ffff::2"]
    );
    // IPv4 from the named IPv4-only pool, IPv6 from the autoAssign pool.
    assert_eq!(
        ingress(&d, "mail/mail"),
        ["198.51.100.9", "2001:db8:1:0:ffff::3"]
    );
    let (status, reason, message) = ready(&d, "default/squatter");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "AddressInUse")
    );
    assert!(
        message.contains("192.168.1.245 is in use by dns/dns-tcp, dns/dns-udp"),
        "{message}"
    );
    let (_, reason, message) = ready(&d, "default/typo");
    assert_eq!(reason, "PoolNotFound");
    assert!(message.contains("\"lna\""), "{message}");
    assert!(ingress(&d, "default/squatter").is_empty());

    // One announcer per address; ETP Local only where the endpoint is; nodeSelector obeyed.
    assert_eq!(announcer(&d, "192.168.1.240").as_deref(), Some("node-2"));
    assert_eq!(announcer(&d, "198.51.100.9").as_deref(), Some("node-2"));
    let dns = d
        .pool_addresses
        .iter()
        .find(|a| a.ip.to_string() == "192.168.1.245")
        .unwrap();
    assert_eq!(
        dns.services
            .iter()
            .map(|(k, o)| (k.to_string(), *o))
            .collect::<Vec<_>>(),
        [
            ("dns/dns-tcp".to_string(), Origin::Requested),
            ("dns/dns-udp".to_string(), Origin::Requested)
        ]
    );
    for a in &d.pool_addresses {
        let count = d.announcements.iter().filter(|x| x.ip == a.ip).count();
        assert_eq!(count, 1, "{} announced {count} times", a.ip);
        assert!(a.candidates.contains(a.announcer.as_ref().unwrap()));
    }
    let dmz = d
        .announcements
        .iter()
        .find(|a| a.ip.to_string() == "198.51.100.9")
        .unwrap();
    assert_eq!(dmz.interfaces, ["eth1"]);
    let lan = d
        .announcements
        .iter()
        .find(|a| a.ip.to_string() == "192.168.1.240")
        .unwrap();
    assert_eq!(lan.via, Some("192.168.1.12".parse().unwrap()));

    // Frontends are bound to the pool addresses, on every candidate node.
    let storefront: Vec<_> = d
        .nodes
        .iter()
        .flat_map(|n| n.frontends.iter().map(move |f| (n.name.as_str(), f)))
        .filter(|(_, f)| f.name.starts_with("shop/storefront"))
        .collect();
    assert_eq!(storefront.len(), 1);
    assert_eq!(storefront[0].0, "node-2");
    assert_eq!(
        storefront[0].1.destination,
        Destination::Addresses(vec![
            "192.168.1.240".parse().unwrap(),
            "2001:db8:1:0:ffff::2".parse().unwrap()
        ])
    );
    // The agents drop what no frontend takes in these ranges.
    assert_eq!(
        d.pool_ranges(),
        [
            (
                "192.168.1.240".parse().unwrap(),
                "192.168.1.247".parse().unwrap()
            ),
            (
                "198.51.100.9".parse().unwrap(),
                "198.51.100.10".parse().unwrap()
            ),
            (
                "2001:db8:1:0:ffff::1".parse().unwrap(),
                "2001:db8:1:0:ffff::f".parse().unwrap()
            ),
        ]
    );
}

#[test]
fn explain_shows_pools_addresses_and_announcers() {
    let snapshot = fixture();
    let config = Config::default();
    let d = decide(&snapshot, &config, now());
    insta::assert_snapshot!("pools_three_nodes_explain", explain(&d, &config, now()));
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(
        json["announcements"].as_array().unwrap().len(),
        d.announcements.len()
    );
    assert_eq!(json["poolAddresses"][0]["pool"], "lan");
    assert_eq!(json["pools"][1]["name"], "lan");
}

#[test]
fn no_pool_means_node_mode_unchanged() {
    let mut snapshot = fixture();
    snapshot.pools.clear();
    let d = run(&snapshot);
    assert!(d.pool_addresses.is_empty() && d.announcements.is_empty() && d.pools.is_empty());
    // Node addresses, as before pools existed (the status address is not kept).
    assert_eq!(
        ingress(&d, "kube-system/traefik"),
        [
            "192.168.1.11",
            "192.168.1.12",
            "192.168.1.13",
            "2001:db8:1::11",
            "2001:db8:1::12",
            "2001:db8:1::13"
        ]
    );
    let json = serde_json::to_string(&d).unwrap();
    assert!(!json.contains("poolAddresses") && !json.contains("announcements"));
}

#[test]
fn pool_edits_that_still_contain_an_address_keep_it() {
    let mut snapshot = fixture();
    let first = run(&snapshot);
    publish(&mut snapshot, &first);
    // A restart: same addresses, now all kept from the status.
    let restarted = run(&snapshot);
    for s in &first.services {
        let key = format!("{}/{}", s.namespace, s.name);
        assert_eq!(ingress(&restarted, &key), ingress(&first, &key), "{key}");
    }
    assert!(
        restarted
            .pool_addresses
            .iter()
            .all(|a| a.services.iter().all(|(_, o)| *o == Origin::Status)),
        "{:?}",
        restarted.pool_addresses
    );
    // Shrink the pool's IPv4 range from below and reorder its entries: .243 and .245 stay,
    // .240 (storefront) is gone and storefront moves to the lowest free address.
    let lan = snapshot
        .pools
        .iter_mut()
        .find(|p| p.metadata.name == "lan")
        .unwrap();
    lan.spec.addresses = vec![
        "2001:db8:1:0:ffff::/124".into(),
        "192.168.1.241-192.168.1.250".into(),
    ];
    let second = run(&snapshot);
    assert_eq!(
        ingress(&second, "kube-system/traefik"),
        ingress(&first, "kube-system/traefik")
    );
    assert_eq!(
        ingress(&second, "dns/dns-tcp"),
        ingress(&first, "dns/dns-tcp")
    );
    assert_eq!(ingress(&second, "mail/mail"), ingress(&first, "mail/mail"));
    assert_eq!(
        ingress(&second, "shop/storefront"),
        ["192.168.1.241", "2001:db8:1:0:ffff::2"]
    );
}

#[test]
fn require_dual_stack_with_a_family_missing_is_family_unavailable() {
    let mut snapshot = fixture();
    for pool in &mut snapshot.pools {
        pool.spec.addresses.retain(|a| !a.contains(':'));
    }
    let d = run(&snapshot);
    let (status, reason, message) = ready(&d, "shop/storefront");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "FamilyUnavailable")
    );
    assert!(
        message.contains("no autoAssign pool has IPv6 addresses"),
        "{message}"
    );
    assert!(ingress(&d, "shop/storefront").is_empty());
    // PreferDualStack: served on IPv4, the missing family noted.
    assert_eq!(ingress(&d, "kube-system/traefik"), ["192.168.1.243"]);
    let notes = &svc(&d, "kube-system/traefik").why.notes;
    assert!(
        notes
            .iter()
            .any(|n| n.contains("IPv6 not served (FamilyUnavailable)")),
        "{notes:?}"
    );
}

#[test]
fn exhaustion_names_the_pool_and_its_size() {
    let mut snapshot = fixture();
    let lan = snapshot
        .pools
        .iter_mut()
        .find(|p| p.metadata.name == "lan")
        .unwrap();
    lan.spec.addresses = vec![
        "192.168.1.243-192.168.1.245".into(),
        "2001:db8:1:0:ffff::/124".into(),
    ];
    let d = run(&snapshot);
    // traefik .243 (status), dns .245 (requested), storefront .244; mail gets IPv4 from dmz.
    assert_eq!(
        ingress(&d, "shop/storefront"),
        ["192.168.1.244", "2001:db8:1:0:ffff::2"]
    );
    let lan = snapshot
        .pools
        .iter_mut()
        .find(|p| p.metadata.name == "lan")
        .unwrap();
    lan.spec.addresses = vec![
        "192.168.1.243-192.168.1.245".into(),
        "2001:db8:1:0:ffff::1-2001:db8:1:0:ffff::1".into(),
    ];
    let d = run(&snapshot);
    let (_, reason, message) = ready(&d, "shop/storefront");
    assert_eq!(reason, "PoolExhausted");
    assert!(
        message.contains("pool \"lan\" has 1 and all are in use"),
        "{message}"
    );
}

#[test]
fn takeover_when_the_announcer_s_lease_expires() {
    let mut snapshot = fixture();
    let first = run(&snapshot);
    let ip = "192.168.1.243";
    let before = announcer(&first, ip).unwrap();
    snapshot
        .leases
        .retain(|l| l.metadata.name != format!("dualstack-agent-{before}"));
    let second = run(&snapshot);
    let after = announcer(&second, ip).unwrap();
    assert_ne!(before, after);
    assert_eq!(
        ingress(&second, "kube-system/traefik"),
        ingress(&first, "kube-system/traefik")
    );
    // kube-proxy mode still needs a live agent to announce.
    let config = Config {
        mode: Mode::KubeProxy,
        ..Config::default()
    };
    let d = decide(&snapshot, &config, now());
    assert!(d.announcements.iter().all(|a| a.node != before));
    assert!(d.nodes.iter().all(|n| n.frontends.is_empty()));
}

#[test]
fn sharing_clashes_and_local_policy_do_not_share() {
    let mut snapshot = fixture();
    let udp = snapshot
        .services
        .iter_mut()
        .find(|s| s.metadata.name == "dns-udp")
        .unwrap();
    udp.spec.ports[0].protocol = Some("TCP".into());
    let d = run(&snapshot);
    let (_, reason, message) = ready(&d, "dns/dns-udp");
    assert_eq!(reason, "SharingClash");
    assert!(
        message.contains("dns/dns-tcp (both use 53/tcp)"),
        "{message}"
    );
}

fn permute<T: Clone>(items: &[T], keys: &[u32]) -> Vec<T> {
    let mut indexed: Vec<(u32, usize)> = (0..items.len())
        .map(|i| (keys[i % keys.len()], i))
        .collect();
    indexed.sort();
    indexed.into_iter().map(|(_, i)| items[i].clone()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Any object order gives the same decision, and publishing it then deciding again (a
    /// restart) changes nothing, whatever extra Services arrive later.
    #[test]
    fn deterministic_and_sticky(
        keys in proptest::collection::vec(any::<u32>(), 4..32),
        extra in 0usize..6,
        drop_lease in proptest::option::of(1usize..=3),
    ) {
        let mut snapshot = fixture();
        if let Some(n) = drop_lease {
            snapshot.leases.retain(|l| l.metadata.name != format!("dualstack-agent-node-{n}"));
        }
        let template = snapshot.services.iter().find(|s| s.metadata.name == "traefik").unwrap().clone();
        for i in 0..extra {
            let mut s = template.clone();
            s.metadata.name = format!("extra-{i}").into();
            s.metadata.creation_timestamp = Some(format!("2025-04-07T0{i}:00:00Z").parse().unwrap());
            s.status = Default::default();
            snapshot.services.push(s);
        }
        let first = run(&snapshot);
        let mut shuffled = snapshot.clone();
        shuffled.services = permute(&snapshot.services, &keys);
        shuffled.pools = permute(&snapshot.pools, &keys);
        shuffled.nodes = permute(&snapshot.nodes, &keys);
        shuffled.leases = permute(&snapshot.leases, &keys);
        prop_assert_eq!(&run(&shuffled), &first);

        publish(&mut shuffled, &first);
        let again = run(&shuffled);
        for s in &first.services {
            prop_assert_eq!(&again.service(&s.namespace, &s.name).unwrap().ingress, &s.ingress);
        }
        // A younger Service added after publication never takes an address away.
        let mut newcomer = template.clone();
        newcomer.metadata.name = "newcomer".into();
        newcomer.metadata.creation_timestamp = Some("2020-01-01T00:00:00Z".parse().unwrap());
        newcomer.status = Default::default();
        shuffled.services.push(newcomer);
        let later = run(&shuffled);
        for s in &first.services {
            prop_assert_eq!(&later.service(&s.namespace, &s.name).unwrap().ingress, &s.ingress);
        }
    }
}
