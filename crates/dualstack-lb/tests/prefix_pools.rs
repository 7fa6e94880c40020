//! Pools whose IPv6 addresses follow the nodes' prefix, through the whole decision: a home
//! lab whose ISP renumbers, step by step (one prefix, both during the change, the old one
//! expired), the problems (no prefix, nodes that disagree), `lb explain`, and a property:
//! whatever sequence of prefixes the nodes report, a Service keeps its host part.

// Test helpers may panic on fixtures they build themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;

use common::publish;
use dualstack_lb::conditions::ConditionType;
use dualstack_lb::decision::ServiceDecision;
use dualstack_lb::{Config, Decision, Snapshot, Timestamp, decide, explain};
use dualstack_ruleset::Destination;
use proptest::prelude::*;

const A: &str = "2001:db8:a:1::/64";
const B: &str = "2001:db8:b:1::/64";

fn at(offset: i64) -> Timestamp {
    "2026-12-01T10:00:00Z"
        .parse::<Timestamp>()
        .unwrap()
        .plus_seconds(offset)
}

/// One reported prefix: (prefix, since, preferred until, valid until), seconds from `at(0)`.
type Report = (&'static str, i64, i64, i64);

fn reports(list: &[Report]) -> String {
    list.iter()
        .map(|(p, since, preferred, valid)| {
            format!(
                "{p};dev=eth0;since={};preferred={};valid={}",
                at(*since),
                at(*preferred),
                at(*valid)
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn node(name: &str, ip: u8, prefixes: &str, now: Timestamp) -> String {
    format!(
        r#"
- kind: Node
  metadata: {{name: {name}}}
  status:
    addresses: [{{type: InternalIP, address: 192.168.1.{ip}}}]
    conditions: [{{type: Ready, status: "True"}}]
- kind: Lease
  metadata:
    name: dualstack-agent-{name}
    namespace: dualstack-system
    annotations: {{dualstack.io/addresses: "192.168.1.{ip}", dualstack.io/prefixes: "{prefixes}"}}
  spec: {{holderIdentity: {name}, leaseDurationSeconds: 40, renewTime: "{now}"}}"#
    )
}

fn service(name: &str, policy: &str, annotations: &str, created: &str) -> String {
    format!(
        r#"
- kind: Service
  metadata: {{name: {name}, namespace: default, creationTimestamp: "{created}", annotations: {{{annotations}}}}}
  spec:
    type: LoadBalancer
    loadBalancerClass: dualstack.io/lb
    ipFamilies: [IPv6, IPv4]
    ipFamilyPolicy: {policy}
    clusterIPs: ["2001:db8:43::10", 10.43.0.10]
    ports: [{{name: http, port: 80, protocol: TCP}}]"#
    )
}

/// Two nodes reporting `n1`/`n2`, a pool `home` (IPv4 range + host parts `::f0-::ff`) and
/// three Services: `web` (oldest), `dns` asking for host part `::f5`, `api`
/// (RequireDualStack).
fn snapshot(n1: &[Report], n2: &[Report], grace: Option<u32>, now: Timestamp) -> Snapshot {
    let grace = grace.map_or(String::new(), |g| format!(", graceSeconds: {g}"));
    let text = format!(
        r#"apiVersion: v1
kind: List
items:
- apiVersion: dualstack.io/v1alpha1
  kind: LoadBalancerPool
  metadata: {{name: home}}
  spec:
    addresses: ["192.168.1.240-192.168.1.249"]
    ipv6Prefix: {{hosts: "::f0-::ff"{grace}}}{}{}{}{}{}"#,
        node("n1", 11, &reports(n1), now),
        node("n2", 12, &reports(n2), now),
        service("web", "PreferDualStack", "", "2026-01-01T00:00:00Z"),
        service(
            "dns",
            "PreferDualStack",
            r#"dualstack.io/addresses: "::f5""#,
            "2026-01-02T00:00:00Z"
        ),
        service("api", "RequireDualStack", "", "2026-01-03T00:00:00Z"),
    );
    Snapshot::parse(&text).unwrap()
}

fn svc<'a>(d: &'a Decision, name: &str) -> &'a ServiceDecision {
    d.service("default", name).unwrap()
}

fn ingress(d: &Decision, name: &str) -> Vec<String> {
    svc(d, name)
        .ingress
        .iter()
        .map(|i| i.ip.to_string())
        .collect()
}

fn condition(d: &Decision, name: &str, type_: ConditionType) -> (String, String, String) {
    let c = svc(d, name)
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("{name} has no {type_}"));
    (
        c.status.to_string(),
        c.reason.to_string(),
        c.message.clone(),
    )
}

fn events(d: &Decision, name: &str) -> Vec<(String, String)> {
    svc(d, name)
        .events
        .iter()
        .map(|e| (e.reason.to_string(), e.message.clone()))
        .collect()
}

fn with_status_of(mut next: Snapshot, before: &Snapshot) -> Snapshot {
    for (s, old) in next.services.iter_mut().zip(&before.services) {
        s.status = old.status.clone();
    }
    next
}

fn frontends_have(d: &Decision, node: &str, ip: &str) -> bool {
    let ip: IpAddr = ip.parse().unwrap();
    d.frontends_for(node)
        .iter()
        .any(|f| matches!(&f.destination, Destination::Addresses(l) if l.contains(&ip)))
}

#[test]
fn a_prefix_change_is_make_before_break_and_keeps_the_host_part() {
    let config = Config::default();
    let a: Report = (A, -3600, 1800, 3600);
    // Step 1: prefix A only.
    let mut s1 = snapshot(&[a], &[a], None, at(0));
    let d1 = decide(&s1, &config, at(0));
    assert_eq!(ingress(&d1, "web"), ["2001:db8:a:1::f0", "192.168.1.240"]);
    assert_eq!(ingress(&d1, "dns"), ["2001:db8:a:1::f5", "192.168.1.241"]);
    assert_eq!(ingress(&d1, "api"), ["2001:db8:a:1::f1", "192.168.1.242"]);
    assert_eq!(
        condition(&d1, "web", ConditionType::LoadBalancerReady).0,
        "True"
    );
    assert_eq!(
        condition(&d1, "web", ConditionType::PrefixMismatch).0,
        "False"
    );
    let announced: Vec<_> = d1
        .announcements
        .iter()
        .filter(|a| a.ip.to_string() == "2001:db8:a:1::f0")
        .collect();
    assert_eq!(announced.len(), 1);
    assert_eq!(announced[0].interfaces, ["eth0"]);
    assert!(frontends_have(&d1, "n1", "2001:db8:a:1::f0"));
    assert!(frontends_have(&d1, "n2", "2001:db8:a:1::f0"));
    publish(&mut s1, &d1);

    // Step 2: the ISP hands out B; A is no longer advertised, still valid.
    let b: Report = (B, 100, 1900, 3700);
    let s2 = with_status_of(snapshot(&[a, b], &[a, b], None, at(110)), &s1);
    let d2 = decide(&s2, &config, at(110));
    assert_eq!(
        ingress(&d2, "web"),
        ["2001:db8:a:1::f0", "2001:db8:b:1::f0", "192.168.1.240"]
    );
    assert_eq!(
        ingress(&d2, "dns"),
        ["2001:db8:a:1::f5", "2001:db8:b:1::f5", "192.168.1.241"]
    );
    assert!(frontends_have(&d2, "n1", "2001:db8:b:1::f0"));
    assert!(frontends_have(&d2, "n1", "2001:db8:a:1::f0"));
    let added = events(&d2, "web");
    assert!(
        added.iter().any(|(r, m)| r == "PrefixAdded"
            && m.contains("2001:db8:b:1::f0 published: prefix 2001:db8:b:1::/64 appeared on n1, n2; host part ::f0 kept, 2001:db8:a:1::f0 stays")),
        "{added:?}"
    );
    assert_eq!(
        d2.next_change,
        Some(at(1800)),
        "A's preferred lifetime ends first"
    );
    let text = explain(&d2, &config, at(110));
    assert!(
        text.contains("2001:db8:a:1::f0 = prefix 2001:db8:a:1::/64 superseded"),
        "{text}"
    );
    assert!(text.contains("+ host ::f0"), "{text}");
    assert!(text.contains("valid until 2026-12-01T11:00:00Z"), "{text}");
    let mut s2 = s2;
    publish(&mut s2, &d2);

    // Step 3: A's valid lifetime is over; nodes no longer report it.
    let s3 = with_status_of(snapshot(&[b], &[b], None, at(3700)), &s2);
    let d3 = decide(&s3, &config, at(3600));
    assert_eq!(ingress(&d3, "web"), ["2001:db8:b:1::f0", "192.168.1.240"]);
    let withdrawn = events(&d3, "web");
    assert!(
        withdrawn.iter().any(|(r, m)| r == "PrefixWithdrawn"
            && m.starts_with("2001:db8:a:1::f0 withdrawn: no node of the pool reports")),
        "{withdrawn:?}"
    );
    assert!(!frontends_have(&d3, "n1", "2001:db8:a:1::f0"));
}

#[test]
fn grace_withdraws_the_old_prefix_before_its_lifetime_ends() {
    let config = Config::default();
    let a: Report = (A, -3600, 80_000, 86_000);
    let b: Report = (B, 100, 90_000, 96_000);
    let mut s = snapshot(&[a, b], &[a, b], Some(60), at(110));
    // The status still has A only.
    let first = decide(&snapshot(&[a], &[a], Some(60), at(0)), &config, at(0));
    publish(&mut s, &first);
    let during = decide(&s, &config, at(110));
    assert_eq!(ingress(&during, "web").len(), 3);
    assert_eq!(during.next_change, Some(at(160)));
    let later = with_status_of(snapshot(&[a, b], &[a, b], Some(60), at(160)), &s);
    let after = decide(&later, &config, at(160));
    assert_eq!(
        ingress(&after, "web"),
        ["2001:db8:b:1::f0", "192.168.1.240"]
    );
    let ev = events(&after, "web");
    assert!(
        ev.iter().any(|(r, m)| r == "PrefixWithdrawn"
            && m.contains(
                "2001:db8:b:1::/64 superseded it and the grace time ends at 2026-12-01T10:02:40Z"
            )),
        "{ev:?}"
    );
}

#[test]
fn no_prefix_and_disagreeing_nodes_are_conditions_naming_them() {
    let config = Config::default();
    let none = snapshot(&[], &[], None, at(0));
    let d = decide(&none, &config, at(0));
    // PreferDualStack: served on IPv4, the note says why not IPv6.
    assert_eq!(ingress(&d, "web"), ["192.168.1.240"]);
    assert!(
        svc(&d, "web").why.notes.iter().any(|n| n.contains(
            "IPv6 not served (NoPrefix): pool \"home\" follows the nodes' IPv6 prefix and none of its nodes reports a global prefix (n1: none; n2: none)"
        )),
        "{:?}",
        svc(&d, "web").why.notes
    );
    // RequireDualStack: not served at all.
    let (status, reason, message) = condition(&d, "api", ConditionType::LoadBalancerReady);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "NoPrefix"));
    assert!(message.contains("RequireDualStack"), "{message}");
    assert!(ingress(&d, "api").is_empty());

    // n2 lacks B for longer than the settle time.
    let a: Report = (A, -3600, 1800, 3600);
    let b: Report = (B, 100, 1900, 3700);
    let split = snapshot(&[a, b], &[a], None, at(200));
    let d = decide(&split, &config, at(200));
    let (status, reason, message) = condition(&d, "web", ConditionType::PrefixMismatch);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "PrefixMismatch")
    );
    assert!(
        message.contains("n1: 2001:db8:a:1::/64 2001:db8:b:1::/64; n2: 2001:db8:a:1::/64"),
        "{message}"
    );
    // Only n1 can carry the B address.
    assert!(frontends_have(&d, "n1", "2001:db8:b:1::f0"));
    assert!(!frontends_have(&d, "n2", "2001:db8:b:1::f0"));
    assert!(frontends_have(&d, "n2", "2001:db8:a:1::f0"));
    assert!(
        svc(&d, "web")
            .events
            .iter()
            .any(|e| e.type_ == "Warning" && e.reason == "PrefixMismatch")
    );
}

#[test]
fn a_ula_or_link_local_report_is_never_followed() {
    let config = Config::default();
    let ula: Report = ("fd00:1:2:3::/64", 0, 1800, 3600);
    let d = decide(&snapshot(&[ula], &[ula], None, at(10)), &config, at(10));
    assert_eq!(ingress(&d, "web"), ["192.168.1.240"]);
}

/// A random history of prefixes: each step keeps or drops the previous prefix and maybe
/// adds a new one (from a small set, so prefixes come back).
fn history() -> impl Strategy<Value = Vec<(u8, bool)>> {
    proptest::collection::vec((0u8..4, any::<bool>()), 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn the_host_part_is_stable_across_any_sequence_of_prefix_changes(steps in history()) {
        let config = Config::default();
        let names = ["2001:db8:10::/64", "2001:db8:11::/64", "2001:db8:12::/64", "2001:db8:13::/64"];
        let mut current: Vec<Report> = vec![(names[0], -10, 500, 1000)];
        let mut s = snapshot(&current, &current, None, at(0));
        let d = decide(&s, &config, at(0));
        publish(&mut s, &d);
        let host = |d: &Decision, name: &str| -> Vec<u128> {
            svc(d, name)
                .ingress
                .iter()
                .filter_map(|i| match i.ip { IpAddr::V6(v6) => Some(u128::from(v6) & ((1u128 << 64) - 1)), _ => None })
                .collect()
        };
        let first_web = host(&d, "web")[0];
        let first_dns = host(&d, "dns")[0];
        prop_assert_eq!(first_dns, 0xf5);
        for (i, (pick, keep_old)) in steps.into_iter().enumerate() {
            let t = (i as i64 + 1) * 20;
            let fresh: Report = (names[usize::from(pick)], t, t + 500, t + 1000);
            if !keep_old {
                current.clear();
            }
            current.retain(|r| r.0 != fresh.0);
            current.push(fresh);
            let next = with_status_of(snapshot(&current, &current, None, at(t)), &s);
            let d = decide(&next, &config, at(t));
            for h in host(&d, "web") {
                prop_assert_eq!(h, first_web);
            }
            for h in host(&d, "dns") {
                prop_assert_eq!(h, first_dns);
            }
            prop_assert!(!host(&d, "web").is_empty());
            s = next;
            publish(&mut s, &d);
        }
    }
}
