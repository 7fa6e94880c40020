//! A masquerade rule for the pod network of each family, whoever installed it: flannel
//! (`FLANNEL-POSTRTG`, for IPv6 only with `flannel-ipv6-masq`), Calico natOutgoing
//! (`cali-nat-outgoing` with the `cali{4,6}0masq-ipam-pools` sets), or a rule of one's own.
//! Without it, pods with private or ULA addresses reach nothing outside the cluster.

use dualstack_addr::{Family, kind_of};
use ipnet::IpNet;

use super::{Cni, MasqRule, MasqSource, NodeFacts};
use crate::Check;

pub fn check(f: &NodeFacts) -> Vec<Check> {
    Family::BOTH.iter().map(|&fam| one(f, fam)).collect()
}

fn one(f: &NodeFacts, family: Family) -> Check {
    let id = format!("node.masquerade.{family}");
    let cidrs: Vec<IpNet> = f
        .pod_cidrs
        .cidrs
        .iter()
        .copied()
        .filter(|c| Family::of_net(*c) == family)
        .collect();
    let Some(cidr) = cidrs.first().copied() else {
        return if f.pod_cidrs.source.is_empty() {
            Check::warn(
                id,
                format!(
                    "pod {} CIDR unknown: cannot tell whether pods are masqueraded",
                    family.k8s_name()
                ),
                "pass --pod-cidr <ipv4-cidr>,<ipv6-cidr> or --k3s-config /etc/rancher/k3s/config.yaml",
            )
        } else {
            Check::warn(
                id,
                format!(
                    "{} names no {} pod CIDR: the cluster is not dual-stack",
                    f.pod_cidrs.source,
                    family.k8s_name()
                ),
                "dual-stack must be set when the cluster is created: run `dualstack plan` for a consistent cluster-cidr/service-cidr pair",
            )
        };
    };
    let Some(rules) = &f.masquerade else {
        return Check::warn(
            id,
            "could not read nft or iptables rules",
            "run `dualstack doctor node` as root on the node itself (needs nft or iptables-save)",
        );
    };
    let family_rules: Vec<&MasqRule> = rules.iter().filter(|r| r.family == family).collect();
    let by_prefix = family_rules.iter().find_map(|r| match &r.source {
        MasqSource::Prefix(p) if p.contains(&cidr) || cidr.contains(p) => Some((r, p)),
        _ => None,
    });
    let by_set = family_rules.iter().find_map(|r| match &r.source {
        MasqSource::Set(name) => Some((r, name)),
        _ => None,
    });
    let by_any = family_rules.iter().find(|r| r.source == MasqSource::Any);
    if let Some((r, p)) = by_prefix {
        return Check::ok(
            id,
            format!("pods {cidr} masqueraded ({} -s {p})", r.location),
        );
    }
    if let Some((r, name)) = by_set {
        return Check::ok(
            id,
            format!(
                "pods {cidr}: masquerade by source set {name} ({}; set contents not checked)",
                r.location
            ),
        );
    }
    if let Some(r) = by_any {
        return Check::ok(
            id,
            format!("pods {cidr}: every source is masqueraded ({})", r.location),
        );
    }
    let kind = kind_of(cidr.addr());
    if kind.is_global_unicast() {
        return Check::warn(
            id,
            format!(
                "no masquerade for pods {cidr}: they use their own global addresses, so your router must route {cidr} to the nodes"
            ),
            format!(
                "route {cidr} to the nodes on your router, or masquerade: {}",
                manual(family, cidr)
            ),
        );
    }
    Check::fail(
        id,
        format!(
            "no masquerade rule for pods {cidr} ({}, from {}): pods cannot reach anything outside the cluster over {}",
            kind.name(),
            f.pod_cidrs.source,
            family.k8s_name()
        ),
        fix(f.cni, family, cidr),
    )
}

fn manual(family: Family, cidr: IpNet) -> String {
    let tool = match family {
        Family::V4 => "iptables",
        Family::V6 => "ip6tables",
    };
    format!("{tool} -t nat -A POSTROUTING -s {cidr} ! -d {cidr} -j MASQUERADE")
}

fn fix(cni: Cni, family: Family, cidr: IpNet) -> String {
    match (cni, family) {
        (Cni::K3sFlannel, Family::V6) => format!(
            "add to /etc/rancher/k3s/config.yaml on every server: flannel-ipv6-masq: true  (then: systemctl restart k3s)\nright now: {}",
            manual(family, cidr)
        ),
        (Cni::Other, _) => format!(
            "Calico: kubectl patch ippools.crd.projectcalico.org <pool-name> --type merge -p '{{\"spec\":{{\"natOutgoing\":true}}}}'\nother CNIs or right now: {}",
            manual(family, cidr)
        ),
        _ => manual(family, cidr),
    }
}

#[cfg(test)]
mod tests {
    use super::super::PodCidrs;
    use super::super::testing::healthy;
    use super::*;
    use crate::Status;

    fn rule(family: Family, source: MasqSource) -> MasqRule {
        MasqRule {
            family,
            location: "test".into(),
            source,
        }
    }

    #[test]
    fn table() {
        let v6 = |s: &str| MasqSource::Prefix(s.parse().unwrap());
        let cases: Vec<(Option<Vec<MasqRule>>, Status)> = vec![
            (
                Some(vec![rule(Family::V6, v6("fd12:3456:789a::/56"))]),
                Status::Ok,
            ),
            (
                Some(vec![rule(Family::V6, v6("fd12:3456:789a:1::/64"))]),
                Status::Ok,
            ),
            (
                Some(vec![rule(
                    Family::V6,
                    MasqSource::Set("cali60masq-ipam-pools".into()),
                )]),
                Status::Ok,
            ),
            (Some(vec![rule(Family::V6, MasqSource::Any)]), Status::Ok),
            (Some(vec![rule(Family::V6, v6("fd99::/56"))]), Status::Fail),
            (
                Some(vec![rule(Family::V6, MasqSource::Conditional)]),
                Status::Fail,
            ),
            (Some(vec![rule(Family::V4, MasqSource::Any)]), Status::Fail),
            (Some(vec![]), Status::Fail),
            (None, Status::Warn),
        ];
        for (rules, want) in cases {
            let mut f = healthy();
            f.masquerade = rules.clone();
            let c = one(&f, Family::V6);
            assert_eq!(c.status, want, "{rules:?}: {c:#?}");
        }
    }

    #[test]
    fn fixes_follow_the_cni() {
        let mut f = healthy();
        f.masquerade = Some(vec![]);
        let c = one(&f, Family::V6);
        assert_eq!(
            c.fix.as_deref(),
            Some(
                "add to /etc/rancher/k3s/config.yaml on every server: flannel-ipv6-masq: true  (then: systemctl restart k3s)\nright now: ip6tables -t nat -A POSTROUTING -s fd12:3456:789a::/56 ! -d fd12:3456:789a::/56 -j MASQUERADE"
            )
        );
        assert_eq!(
            one(&f, Family::V4).fix.as_deref(),
            Some("iptables -t nat -A POSTROUTING -s 10.42.0.0/16 ! -d 10.42.0.0/16 -j MASQUERADE")
        );
        f.cni = Cni::Other;
        assert!(
            one(&f, Family::V6)
                .fix
                .unwrap()
                .starts_with("Calico: kubectl patch ippools.crd.projectcalico.org")
        );
    }

    #[test]
    fn global_pod_prefixes_warn_and_unknown_cidrs_warn() {
        let mut f = healthy();
        f.masquerade = Some(vec![]);
        f.pod_cidrs.cidrs[1] = "2003:e9:f74a:ec00::/56".parse().unwrap();
        assert_eq!(one(&f, Family::V6).status, Status::Warn);
        f.pod_cidrs = PodCidrs::default();
        let c = one(&f, Family::V6);
        assert_eq!(c.status, Status::Warn);
        assert!(c.fix.unwrap().contains("--pod-cidr"));
        f.pod_cidrs = PodCidrs {
            cidrs: vec!["10.42.0.0/16".parse().unwrap()],
            source: "config.yaml:2".into(),
        };
        assert!(
            one(&f, Family::V6)
                .message
                .contains("config.yaml:2 names no IPv6 pod CIDR")
        );
    }
}
