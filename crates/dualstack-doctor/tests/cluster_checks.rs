//! Cluster checks on realistic objects (the JSON `kubectl get -o json` prints).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dualstack_doctor::Status;
use dualstack_doctor::cluster::{ClusterFacts, check};
use serde_json::Value;

fn facts(fixture: &str, cluster_cidrs: &[&str]) -> ClusterFacts {
    let path = format!("{}/tests/fixtures/{fixture}", env!("CARGO_MANIFEST_DIR"));
    let list: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut f = ClusterFacts {
        cluster_cidrs: cluster_cidrs.iter().map(|c| c.parse().unwrap()).collect(),
        lb_class: "dualstack.io/lb".into(),
        ip_pools: Some(vec![]),
        ..ClusterFacts::default()
    };
    for item in list["items"].as_array().unwrap() {
        let v = item.clone();
        match item["kind"].as_str().unwrap() {
            "Node" => f.nodes.push(serde_json::from_value(v).unwrap()),
            "Service" => {
                let svc: dualstack_doctor::cluster::Service = serde_json::from_value(v).unwrap();
                if svc.metadata.name == "kube-dns" {
                    f.dns = Some(svc.clone());
                }
                f.services.push(svc);
            }
            "Pod" => f.pods.push(serde_json::from_value(v).unwrap()),
            "IPPool" => f
                .ip_pools
                .as_mut()
                .unwrap()
                .push(serde_json::from_value(v).unwrap()),
            other => panic!("unexpected kind {other}"),
        }
    }
    f
}

fn statuses(f: &ClusterFacts) -> Vec<(String, Status)> {
    check(f)
        .checks
        .into_iter()
        .map(|c| (c.id, c.status))
        .collect()
}

#[test]
fn a_dual_stack_calico_cluster_passes() {
    let f = facts(
        "dual-stack-calico.json",
        &["10.42.0.0/16", "fd12:3456:789a::/56"],
    );
    let report = check(&f);
    assert!(!report.has_failures(), "{}", report.to_text());
    assert_eq!(report.count(Status::Ok), 6, "{}", report.to_text());
    insta::assert_snapshot!("dual_stack_calico", report.to_text());
}

#[test]
fn a_single_stack_node_fails_every_check_it_touches() {
    let f = facts(
        "single-stack-node.json",
        &["10.42.0.0/16", "fd12:3456:789a::/56"],
    );
    let report = check(&f);
    assert_eq!(
        statuses(&f),
        [
            ("cluster.nodes.pod-cidrs".to_string(), Status::Fail),
            ("cluster.nodes.internal-ips".to_string(), Status::Fail),
            ("cluster.dns".to_string(), Status::Fail),
            ("cluster.calico.ippools".to_string(), Status::Fail),
            ("cluster.services.lb".to_string(), Status::Fail),
            ("cluster.pods.dual-stack".to_string(), Status::Fail),
        ]
    );
    insta::assert_snapshot!("single_stack_node", report.to_text());
}

#[test]
fn without_calico_or_cluster_cidrs() {
    let mut f = facts("dual-stack-calico.json", &[]);
    let c = check(&f);
    let pools = c.get("cluster.calico.ippools").unwrap();
    assert_eq!(pools.status, Status::Ok);
    assert!(pools.message.contains("not checked"), "{}", pools.message);
    f.ip_pools = None;
    assert_eq!(
        check(&f).get("cluster.calico.ippools").unwrap().message,
        "Calico IPPool CRD not installed: not applicable"
    );
}

#[test]
fn missing_ipv6_pool_prints_a_pool_inside_the_cluster_cidr() {
    let mut f = facts(
        "dual-stack-calico.json",
        &["10.42.0.0/16", "fd12:3456:789a::/56"],
    );
    f.ip_pools
        .as_mut()
        .unwrap()
        .retain(|p| !p.spec.cidr.contains(':'));
    let c = check(&f);
    let pools = c.get("cluster.calico.ippools").unwrap();
    assert_eq!(pools.status, Status::Fail);
    assert!(
        pools.message.contains("no enabled pool for IPv6"),
        "{}",
        pools.message
    );
    assert!(
        pools
            .fix
            .as_ref()
            .unwrap()
            .contains("  cidr: fd12:3456:789a::/56\n  blockSize: 122"),
        "{:?}",
        pools.fix
    );
}

#[test]
fn lb_services_of_other_classes_are_ignored_unless_default_class() {
    let mut f = facts("single-stack-node.json", &[]);
    f.lb_class = "example.com/other".into();
    assert_eq!(
        check(&f).get("cluster.services.lb").unwrap().status,
        Status::Ok
    );
    // traefik sets a class, so default_class does not make it ours
    f.default_class = true;
    assert_eq!(
        check(&f).get("cluster.services.lb").unwrap().status,
        Status::Ok
    );
    for s in &mut f.services {
        s.spec.load_balancer_class = None;
    }
    assert_eq!(
        check(&f).get("cluster.services.lb").unwrap().status,
        Status::Fail
    );
}

#[test]
fn dual_policy_with_one_allocated_family_warns() {
    let mut f = facts("dual-stack-calico.json", &[]);
    let traefik = f
        .services
        .iter_mut()
        .find(|s| s.metadata.name == "traefik")
        .unwrap();
    traefik.spec.ip_families = vec!["IPv4".into()];
    let c = check(&f);
    assert_eq!(c.get("cluster.services.lb").unwrap().status, Status::Warn);
}

#[test]
fn no_dns_no_nodes_no_pods_warn() {
    let f = ClusterFacts {
        lb_class: "dualstack.io/lb".into(),
        ..ClusterFacts::default()
    };
    let got = statuses(&f);
    assert_eq!(got[0].1, Status::Warn);
    assert_eq!(got[1].1, Status::Warn);
    assert_eq!(got[2].1, Status::Warn);
    assert_eq!(got[5].1, Status::Warn);
}
