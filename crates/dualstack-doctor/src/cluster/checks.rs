//! The cluster checks, one function each.

use std::net::IpAddr;

use dualstack_addr::Family;
use ipnet::IpNet;

use super::ClusterFacts;
use super::objects::{Pod, Service};
use crate::Check;

/// How many offenders a message names before "and N more".
const SHOW: usize = 5;

fn family_of(text: &str) -> Option<Family> {
    let addr = text.split('/').next()?;
    addr.parse::<IpAddr>().ok().map(Family::of)
}

fn families(texts: impl IntoIterator<Item = impl AsRef<str>>) -> Vec<Family> {
    let mut out = Vec::new();
    for f in texts.into_iter().filter_map(|t| family_of(t.as_ref())) {
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

fn names(list: &[String]) -> String {
    let mut s = list
        .iter()
        .take(SHOW)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > SHOW {
        s += &format!(" and {} more", list.len() - SHOW);
    }
    s
}

fn k8s_families(f: &[Family]) -> String {
    if f.is_empty() {
        return "none".into();
    }
    f.iter().map(|x| x.k8s_name()).collect::<Vec<_>>().join(",")
}

pub fn pod_cidrs(facts: &ClusterFacts) -> Check {
    const ID: &str = "cluster.nodes.pod-cidrs";
    if facts.nodes.is_empty() {
        return Check::warn(
            ID,
            "no nodes listed",
            "check that the kubeconfig points at the right cluster: kubectl get nodes",
        );
    }
    let mut single = Vec::new();
    let mut orders: Vec<(String, Vec<Family>)> = Vec::new();
    for n in &facts.nodes {
        let fams = families(&n.spec.pod_cidrs);
        if n.spec.pod_cidrs.len() == 2 && fams.len() == 2 {
            orders.push((n.metadata.name.to_string(), fams));
        } else {
            single.push(format!(
                "{} ({})",
                n.metadata.name,
                if n.spec.pod_cidrs.is_empty() {
                    "none".into()
                } else {
                    n.spec.pod_cidrs.join(",")
                }
            ));
        }
    }
    if !single.is_empty() {
        let fix = if orders.is_empty() {
            "the cluster was created single-stack and cannot be converted: create it with both families, e.g. in /etc/rancher/k3s/config.yaml on every server: cluster-cidr: 10.42.0.0/16,<ula-prefix>::/56 and service-cidr: 10.43.0.0/16,<ula-prefix>:100::/112 (`dualstack plan` computes them)".to_string()
        } else {
            let first = single[0].split(' ').next().unwrap_or("<node>").to_string();
            format!(
                "re-register the node so it gets both pod CIDRs: kubectl drain {first} --ignore-daemonsets --delete-emptydir-data && kubectl delete node {first}, then on {first}: systemctl restart k3s-agent (k3s on servers)"
            )
        };
        return Check::fail(
            ID,
            format!(
                "{} of {} node(s) lack a pod CIDR per family: {}",
                single.len(),
                facts.nodes.len(),
                names(&single)
            ),
            fix,
        );
    }
    let first_order = &orders[0].1;
    let odd: Vec<String> = orders
        .iter()
        .filter(|(_, o)| o != first_order)
        .map(|(n, _)| n.clone())
        .collect();
    if !odd.is_empty() {
        return Check::warn(
            ID,
            format!(
                "pod CIDR family order differs between nodes ({} first on most): {}",
                first_order[0].k8s_name(),
                names(&odd)
            ),
            "use one family order everywhere: cluster-cidr, service-cidr and node-ip in /etc/rancher/k3s/config.yaml list the same family first",
        );
    }
    Check::ok(
        ID,
        format!(
            "all {} node(s) have an IPv4 and an IPv6 pod CIDR ({} first)",
            facts.nodes.len(),
            first_order[0].k8s_name()
        ),
    )
}

pub fn internal_ips(facts: &ClusterFacts) -> Check {
    const ID: &str = "cluster.nodes.internal-ips";
    let mut bad = Vec::new();
    let mut first_fix = None;
    for n in &facts.nodes {
        let ips: Vec<&str> = n
            .status
            .addresses
            .iter()
            .filter(|a| a.type_ == "InternalIP")
            .map(|a| a.address.as_str())
            .collect();
        let fams = families(&ips);
        if fams.len() < 2 {
            bad.push(format!(
                "{} ({})",
                n.metadata.name,
                if ips.is_empty() {
                    "none".into()
                } else {
                    ips.join(",")
                }
            ));
            if first_fix.is_none() {
                let v4 = ips
                    .iter()
                    .find(|a| family_of(a) == Some(Family::V4))
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "<node-ipv4>".into());
                let v6 = ips
                    .iter()
                    .find(|a| family_of(a) == Some(Family::V6))
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "<node-ipv6>".into());
                first_fix = Some(format!(
                    "on {}: add to /etc/rancher/k3s/config.yaml: node-ip: {v4},{v6}  (then systemctl restart k3s or k3s-agent; `dualstack doctor node` there shows its addresses)",
                    n.metadata.name
                ));
            }
        }
    }
    match first_fix {
        None if facts.nodes.is_empty() => {
            Check::warn(ID, "no nodes listed", "kubectl get nodes -o wide")
        }
        None => Check::ok(
            ID,
            format!(
                "all {} node(s) have an IPv4 and an IPv6 InternalIP",
                facts.nodes.len()
            ),
        ),
        Some(fix) => Check::fail(
            ID,
            format!(
                "{} node(s) lack an InternalIP per family: {}",
                bad.len(),
                names(&bad)
            ),
            fix,
        ),
    }
}

pub fn dns(facts: &ClusterFacts) -> Check {
    const ID: &str = "cluster.dns";
    let Some(svc) = &facts.dns else {
        return Check::warn(
            ID,
            "Service kube-system/kube-dns not found",
            "kubectl -n kube-system get svc  (K3s: coredns disabled? remove `coredns` from `disable:` in /etc/rancher/k3s/config.yaml)",
        );
    };
    let fams = families(&svc.spec.cluster_ips);
    if fams.len() == 2 {
        return Check::ok(
            ID,
            format!(
                "kube-system/kube-dns has ClusterIPs {} ({})",
                svc.spec.cluster_ips.join(", "),
                svc.spec
                    .ip_family_policy
                    .as_deref()
                    .unwrap_or("SingleStack")
            ),
        );
    }
    let v4 = svc
        .spec
        .cluster_ips
        .iter()
        .find(|a| family_of(a) == Some(Family::V4))
        .cloned()
        .unwrap_or_else(|| "10.43.0.10".into());
    Check::fail(
        ID,
        format!(
            "kube-system/kube-dns is single-stack ({}, ClusterIPs {}): pods resolve names over {} only",
            svc.spec
                .ip_family_policy
                .as_deref()
                .unwrap_or("SingleStack"),
            svc.spec.cluster_ips.join(", "),
            k8s_families(&fams)
        ),
        format!(
            "add to /etc/rancher/k3s/config.yaml on every server: cluster-dns: {v4},<ipv6-service-cidr-address-10, e.g. fd00:43::a>  (then systemctl restart k3s; K3s makes kube-dns RequireDualStack)"
        ),
    )
}

pub fn ip_pools(facts: &ClusterFacts) -> Check {
    const ID: &str = "cluster.calico.ippools";
    let Some(pools) = &facts.ip_pools else {
        return Check::ok(ID, "Calico IPPool CRD not installed: not applicable");
    };
    let enabled: Vec<(String, Option<IpNet>)> = pools
        .iter()
        .filter(|p| p.spec.disabled != Some(true))
        .map(|p| {
            (
                p.metadata.name.to_string(),
                p.spec.cidr.parse::<IpNet>().ok(),
            )
        })
        .collect();
    let unparsable: Vec<String> = enabled
        .iter()
        .filter(|(_, c)| c.is_none())
        .map(|(n, _)| n.clone())
        .collect();
    let nets: Vec<(String, IpNet)> = enabled
        .iter()
        .filter_map(|(n, c)| c.map(|c| (n.clone(), c)))
        .collect();
    let missing: Vec<Family> = Family::BOTH
        .into_iter()
        .filter(|f| !nets.iter().any(|(_, c)| Family::of_net(*c) == *f))
        .collect();
    let mut problems = Vec::new();
    if !unparsable.is_empty() {
        problems.push(format!(
            "pool(s) with an unreadable cidr: {}",
            names(&unparsable)
        ));
    }
    if !missing.is_empty() {
        problems.push(format!("no enabled pool for {}", k8s_families(&missing)));
    }
    let mut outside = Vec::new();
    if !facts.cluster_cidrs.is_empty() {
        for (name, net) in &nets {
            let fam = Family::of_net(*net);
            let inside = facts
                .cluster_cidrs
                .iter()
                .any(|c| Family::of_net(*c) == fam && c.contains(net));
            if !inside {
                outside.push((name.clone(), *net));
            }
        }
    }
    if !outside.is_empty() {
        let list: Vec<String> = outside.iter().map(|(n, c)| format!("{n} ({c})")).collect();
        problems.push(format!(
            "outside the cluster CIDRs {}: {}",
            show_nets(&facts.cluster_cidrs),
            list.join(", ")
        ));
    }
    let shown: Vec<String> = nets.iter().map(|(n, c)| format!("{n} {c}")).collect();
    if problems.is_empty() {
        let note = if facts.cluster_cidrs.is_empty() {
            " (containment in cluster-cidr not checked: pass --cluster-cidr)"
        } else {
            ""
        };
        return Check::ok(
            ID,
            format!(
                "enabled pools for both families: {}{note}",
                shown.join(", ")
            ),
        );
    }
    let fix = if let Some(fam) = missing.first() {
        let cidr = facts
            .cluster_cidrs
            .iter()
            .find(|c| Family::of_net(**c) == *fam)
            .map(|c| c.to_string());
        let (name, block, default_cidr) = match fam {
            Family::V4 => ("default-ipv4-ippool", 26, "<ipv4-cluster-cidr>"),
            Family::V6 => ("default-ipv6-ippool", 122, "<ipv6-cluster-cidr>"),
        };
        format!(
            "kubectl apply -f - <<'EOF'\napiVersion: crd.projectcalico.org/v1\nkind: IPPool\nmetadata:\n  name: {name}\nspec:\n  cidr: {}\n  blockSize: {block}\n  natOutgoing: true\n  nodeSelector: all()\n  vxlanMode: CrossSubnet\nEOF",
            cidr.as_deref().unwrap_or(default_cidr)
        )
    } else if let Some((name, _)) = outside.first() {
        format!(
            "create a pool inside the cluster CIDR, then disable the stray one: kubectl patch ippools.crd.projectcalico.org {name} --type merge -p '{{\"spec\":{{\"disabled\":true}}}}'"
        )
    } else {
        "kubectl get ippools.crd.projectcalico.org -o yaml   (every pool needs a valid spec.cidr)"
            .into()
    };
    Check::fail(ID, format!("Calico IPPools: {}", problems.join("; ")), fix)
}

fn show_nets(nets: &[IpNet]) -> String {
    nets.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn ours(facts: &ClusterFacts, svc: &Service) -> bool {
    svc.spec.type_.as_deref() == Some("LoadBalancer")
        && match svc.spec.load_balancer_class.as_deref() {
            Some(c) => c == facts.lb_class,
            None => facts.default_class,
        }
}

pub fn lb_services(facts: &ClusterFacts) -> Check {
    const ID: &str = "cluster.services.lb";
    let mine: Vec<&Service> = facts.services.iter().filter(|s| ours(facts, s)).collect();
    if mine.is_empty() {
        return Check::ok(
            ID,
            format!(
                "no LoadBalancer Services of class {}{}",
                facts.lb_class,
                if facts.default_class {
                    " (or without a class)"
                } else {
                    ""
                }
            ),
        );
    }
    let mut missing = Vec::new();
    let mut narrowed = Vec::new();
    for s in &mine {
        let name = format!("{}/{}", s.metadata.namespace, s.metadata.name);
        let asked: Vec<Family> = s
            .spec
            .ip_families
            .iter()
            .filter_map(|f| match f.as_str() {
                "IPv4" => Some(Family::V4),
                "IPv6" => Some(Family::V6),
                _ => None,
            })
            .collect();
        let got = families(
            s.status
                .load_balancer
                .ingress
                .iter()
                .filter_map(|i| i.ip.clone()),
        );
        let lacking: Vec<Family> = asked.iter().copied().filter(|f| !got.contains(f)).collect();
        if !lacking.is_empty() {
            missing.push((
                name.clone(),
                format!(
                    "{name} (asked {}, has {})",
                    k8s_families(&asked),
                    k8s_families(&got)
                ),
            ));
        }
        let dual_policy = matches!(
            s.spec.ip_family_policy.as_deref(),
            Some("PreferDualStack" | "RequireDualStack")
        );
        if dual_policy && asked.len() < 2 {
            narrowed.push(name);
        }
    }
    if let Some((first, _)) = missing.first() {
        let list: Vec<String> = missing.iter().map(|(_, l)| l.clone()).collect();
        let (ns, name) = first.split_once('/').unwrap_or(("default", first));
        return Check::fail(
            ID,
            format!(
                "{} of {} LoadBalancer Service(s) lack an ingress address for a family they asked for: {}",
                missing.len(),
                mine.len(),
                names(&list)
            ),
            format!(
                "kubectl -n {ns} describe service {name}   (Events say why); offline: kubectl get svc,endpointslices,nodes,leases -A -o yaml > dump.yaml && dualstack lb explain -f dump.yaml"
            ),
        );
    }
    if !narrowed.is_empty() {
        return Check::warn(
            ID,
            format!(
                "dual-stack policy but one family allocated (the service CIDR has one family): {}",
                names(&narrowed)
            ),
            "the cluster needs service-cidr: <ipv4-cidr>,<ipv6-cidr> in /etc/rancher/k3s/config.yaml on every server; then recreate these Services",
        );
    }
    Check::ok(
        ID,
        format!(
            "{} LoadBalancer Service(s) of class {} have an ingress address for every family they asked for",
            mine.len(),
            facts.lb_class
        ),
    )
}

fn sampled(p: &Pod) -> bool {
    p.spec.host_network != Some(true) && p.status.phase.as_deref() == Some("Running")
}

pub fn pods(facts: &ClusterFacts) -> Check {
    const ID: &str = "cluster.pods.dual-stack";
    let sample: Vec<&Pod> = facts.pods.iter().filter(|p| sampled(p)).collect();
    if sample.is_empty() {
        return Check::warn(
            ID,
            "no running pod with its own network in the sample",
            "kubectl get pods -A -o wide",
        );
    }
    let single: Vec<&Pod> = sample
        .iter()
        .copied()
        .filter(|p| families(p.status.pod_ips.iter().map(|i| i.ip.as_str())).len() < 2)
        .collect();
    if single.is_empty() {
        return Check::ok(
            ID,
            format!(
                "all {} sampled pod(s) have an IPv4 and an IPv6 address",
                sample.len()
            ),
        );
    }
    let list: Vec<String> = single
        .iter()
        .map(|p| {
            let ips: Vec<&str> = p.status.pod_ips.iter().map(|i| i.ip.as_str()).collect();
            format!(
                "{}/{} ({})",
                p.metadata.namespace,
                p.metadata.name,
                ips.join(",")
            )
        })
        .collect();
    let first = single[0];
    Check::fail(
        ID,
        format!(
            "{} of {} sampled pod(s) have one family only: {}",
            single.len(),
            sample.len(),
            names(&list)
        ),
        format!(
            "pods started before the second family existed keep one address; recreate them, e.g. kubectl -n {} delete pod {}  (if new pods still get one family, fix cluster.nodes.pod-cidrs / cluster.calico.ippools first)",
            first.metadata.namespace, first.metadata.name
        ),
    )
}
