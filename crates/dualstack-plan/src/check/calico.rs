//! Rules over Calico pools and settings (`dualstack-planning.md` §3): pools inside the
//! matching cluster CIDR, block sizes, IPv6 enablement, NAT outgoing, encapsulation.

use dualstack_addr::{Family, Kind, ParseError, classify, contains, parse_prefix};
use ipnet::IpNet;

use super::k3s::ClusterView;
use crate::code::Code;
use crate::finding::{Finding, Severity};
use crate::input::Sourced;
use crate::input::calico::{CalicoConfig, CalicoPool, PoolSource};
use crate::version::Version;

fn src<T>(s: &Sourced<T>) -> Option<String> {
    Some(s.origin.to_string())
}

/// Parses a pool CIDR; Calico requires it strictly masked ("IPPool CIDR is not strictly masked").
fn pool_net(name: &str, cidr: &Sourced<String>, findings: &mut Vec<Finding>) -> Option<IpNet> {
    match parse_prefix(cidr.value.trim()) {
        Ok(net) => Some(net),
        Err(ParseError::HostBits { suggestion, .. }) => {
            findings.push(
                Finding::new(
                    Severity::Error,
                    Code::CalicoPoolNotMasked,
                    format!("Calico pool {name} cidr {} has host bits set; Calico rejects it (\"IPPool CIDR is not strictly masked\")", cidr.value),
                    format!("write {suggestion}"),
                )
                .at(src(cidr)),
            );
            Some(suggestion)
        }
        Err(err) => {
            findings.push(
                Finding::new(
                    Severity::Error,
                    Code::InvalidValue,
                    format!("Calico pool {name}: {err}"),
                    "give the pool a CIDR such as 10.42.0.0/16",
                )
                .at(src(cidr)),
            );
            None
        }
    }
}

/// Runs the Calico rules; `view` is the K3s side when K3s inputs were given.
pub fn check_calico(
    calico: &CalicoConfig,
    view: Option<&ClusterView>,
    findings: &mut Vec<Finding>,
) {
    if let Some(view) = view
        && view.flannel
    {
        findings.push(Finding::new(
            Severity::Error,
            Code::CalicoWithFlannel,
            "Calico is configured but K3s still runs flannel (flannel-backend is not `none`): two CNIs fight over the pod network",
            "set flannel-backend: none and disable-network-policy: true in the K3s config (--no-flannel is obsolete)",
        ));
    }
    let mut v6_pools = Vec::new();
    let mut per_family = [0usize; 2];
    for pool in calico.pools.iter().filter(|p| !p.disabled) {
        let Some(net) = pool_net(&pool.name, &pool.cidr, findings) else {
            continue;
        };
        let family = Family::of_net(net);
        per_family[usize::from(family == Family::V6)] += 1;
        if family == Family::V6 {
            v6_pools.push((pool, net));
        }
        check_inside_cluster(&pool.name, net, &pool.cidr, view, findings);
        check_block_size(pool, net, findings);
        check_encapsulation(pool, net, calico.version.as_ref(), findings);
        if family == Family::V6
            && !pool.nat_outgoing
            && !classify(&net).kinds().contains(&Kind::GlobalUnicast)
        {
            findings.push(
                Finding::new(
                    Severity::Warning,
                    Code::CalicoIpv6NoNatOutgoing,
                    format!("Calico IPv6 pool {} ({net}, {}) has NAT outgoing off (the manifest default for IPv6): unless the nodes route a global prefix to the pods, pods cannot reach IPv6 outside the cluster", pool.name, classify(&net).name()),
                    match pool.source {
                        PoolSource::NodeEnv => "set CALICO_IPV6POOL_NAT_OUTGOING to \"true\" (only used when the pool is first created)",
                        PoolSource::Installation => "set natOutgoing: Enabled on the IPv6 pool",
                        PoolSource::IpPool => "set spec.natOutgoing: true on the IPv6 IPPool",
                    },
                )
                .at(src(&pool.cidr)),
            );
        }
    }
    for pool in calico.cni_ipv4_pools.iter().chain(&calico.cni_ipv6_pools) {
        if pool.value.contains('/')
            && let Ok(net) = parse_prefix(pool.value.trim())
        {
            check_inside_cluster("in CNI ipam", net, pool, view, findings);
        }
    }
    if calico.operator && per_family.iter().any(|&n| n > 1) {
        findings.push(Finding::new(
            Severity::Error,
            Code::CalicoTooManyPools,
            "the Installation lists more than one pool for a family; the operator refuses it (\"only one IPPool per version is allowed\")",
            "keep one IPv4 and one IPv6 pool in spec.calicoNetwork.ipPools; add more as IPPool resources",
        ));
    }
    if let Some(view) = view {
        for family in Family::BOTH {
            if let Some(range) = view.pods.of(family)
                && per_family[usize::from(family == Family::V6)] == 0
                && (calico.operator || calico.has_node_daemonset)
            {
                findings.push(Finding::new(
                    if family == Family::V6 { Severity::Error } else { Severity::Warning },
                    Code::CalicoMissingPool,
                    format!("cluster-cidr has the {} range {} but Calico has no {} pool{}", family.k8s_name(), range.net, family.k8s_name(),
                        if family == Family::V4 && !calico.operator { ": calico-node then picks the first free of 192.168.0.0/16, 172.16–31.0.0/16" } else { ": pods get no address of that family" }),
                    match (calico.operator, family) {
                        (true, _) => format!("add {{cidr: {}, blockSize: {}}} to spec.calicoNetwork.ipPools", range.net, if family == Family::V4 { 26 } else { 122 }),
                        (false, Family::V4) => format!("set CALICO_IPV4POOL_CIDR to \"{}\"", range.net),
                        (false, Family::V6) => format!("set CALICO_IPV6POOL_CIDR to \"{}\"", range.net),
                    },
                ));
            }
        }
    }
    // Manifest installs need IPv6 switched on in two places (calico/networking/ipam/ipv6.mdx).
    let manifest = calico.has_node_daemonset || calico.assign_ipv6.is_some();
    if manifest && (!v6_pools.is_empty() || !calico.cni_ipv6_pools.is_empty()) {
        let felix_on = calico
            .felix_ipv6_support
            .as_ref()
            .is_some_and(|v| v.value.eq_ignore_ascii_case("true"));
        if calico.has_node_daemonset && !felix_on {
            findings.push(
                Finding::new(
                    Severity::Error,
                    Code::CalicoIpv6Disabled,
                    format!("Calico has an IPv6 pool but FELIX_IPV6SUPPORT is {} (the stock manifest sets \"false\"): Felix programs no IPv6 routes or policy", calico.felix_ipv6_support.as_ref().map(|v| format!("\"{}\"", v.value)).unwrap_or_else(|| "unset".into())),
                    "set FELIX_IPV6SUPPORT to \"true\" in the calico-node env",
                )
                .at(calico.felix_ipv6_support.as_ref().and_then(src)),
            );
        }
        let assign_on = calico
            .assign_ipv6
            .as_ref()
            .is_some_and(|v| v.value == "true");
        if calico.assign_ipv6.is_some() && !assign_on
            || calico.assign_ipv6.is_none()
                && calico.has_node_daemonset
                && !calico.cni_ipv6_pools.is_empty()
        {
            findings.push(
                Finding::new(
                    Severity::Error,
                    Code::CalicoIpv6Disabled,
                    "Calico has an IPv6 pool but the CNI ipam has assign_ipv6 not \"true\" (a string; the default is \"false\"): pods get only IPv4 (calico #9312)",
                    "set \"assign_ipv6\": \"true\" in the ipam section of cni_network_config",
                )
                .at(calico.assign_ipv6.as_ref().and_then(src)),
            );
        }
        let ip6_on = calico
            .ip6
            .as_ref()
            .is_some_and(|v| v.value != "none" && !v.value.is_empty());
        if calico.has_node_daemonset && calico.bgp == Some(true) && !ip6_on {
            findings.push(
                Finding::new(
                    Severity::Warning,
                    Code::CalicoIp6Autodetect,
                    "BGP (calico_backend: bird) with an IPv6 pool, but IP6 is not set: \"IP6 will not do autodetection when unset\", so nodes have no IPv6 BGP address and pods on different nodes cannot reach each other over IPv6",
                    "set IP6 to \"autodetect\" (and IP6_AUTODETECTION_METHOD, e.g. kubernetes-internal-ip or interface=eth0) in the calico-node env",
                )
                .at(calico.ip6.as_ref().and_then(src)),
            );
        }
    }
}

fn check_inside_cluster(
    name: &str,
    net: IpNet,
    at: &Sourced<String>,
    view: Option<&ClusterView>,
    findings: &mut Vec<Finding>,
) {
    let Some(view) = view else { return };
    let family = Family::of_net(net);
    match view.pods.of(family) {
        Some(range) if contains(&range.net, &net) => {}
        range => findings.push(
            Finding::new(
                Severity::Error,
                Code::CalicoPoolOutsideClusterCidr,
                format!("Calico pool {name} {net} is not inside the {} cluster-cidr{}: K3s allocates node pod ranges and kube-proxy masquerades by cluster-cidr, so pods from this pool are treated as outside traffic",
                    family.k8s_name(), range.map(|r| format!(" {}", r.net)).unwrap_or_else(|| " (there is none)".into())),
                range.map(|r| format!("make the pool {} (or a range inside it)", r.net)).unwrap_or_else(|| format!("add a {} range to cluster-cidr", family.k8s_name())),
            )
            .at(src(at)),
        ),
    }
}

/// libcalico-go `validateAndSetDefaults`: 20–32 / 116–128, and pool ≥ block.
fn check_block_size(pool: &CalicoPool, net: IpNet, findings: &mut Vec<Finding>) {
    let family = Family::of_net(net);
    let (lo, hi, default) = match family {
        Family::V4 => (20u8, 32u8, 26u8),
        Family::V6 => (116, 128, 122),
    };
    let (size, at) = match &pool.block_size {
        None => (default, src(&pool.cidr)),
        Some(b) => match b.value.trim().parse::<u8>() {
            Ok(size) => (size, src(b)),
            Err(_) => {
                findings.push(
                    Finding::new(
                        Severity::Error,
                        Code::InvalidValue,
                        format!(
                            "Calico pool {} blockSize `{}` is not a number",
                            pool.name, b.value
                        ),
                        format!("use {default}"),
                    )
                    .at(src(b)),
                );
                return;
            }
        },
    };
    if size < lo || size > hi {
        findings.push(
            Finding::new(Severity::Error, Code::CalicoBlockSize,
                format!("Calico pool {} block size /{size} is outside {lo}–{hi} for {}: \"{} block size must be between {lo} and {hi}\"", pool.name, family.k8s_name(), family.k8s_name()),
                format!("use blockSize {default} (the default)")).at(at),
        );
    } else if net.prefix_len() > size {
        findings.push(
            Finding::new(Severity::Error, Code::CalicoBlockSize,
                format!("Calico pool {} {net} is smaller than one /{size} block: \"IP pool size is too small for use with Calico IPAM\"", pool.name),
                format!("use a pool of /{size} or larger, or a block size of at least /{}", net.prefix_len())).at(at),
        );
    }
}

/// IPIP is IPv4-only; IPIP and VXLAN exclude each other; IPv6 VXLAN needs Calico ≥ 3.23.
fn check_encapsulation(
    pool: &CalicoPool,
    net: IpNet,
    version: Option<&Sourced<Version>>,
    findings: &mut Vec<Finding>,
) {
    let family = Family::of_net(net);
    let at = src(&pool.cidr);
    if pool.ipip && pool.vxlan {
        findings.push(Finding::new(Severity::Error, Code::CalicoEncapsulation,
            format!("Calico pool {} enables both IPIP and VXLAN: \"Cannot enable both VXLAN and IPIP on the same IPPool\"", pool.name),
            "choose one encapsulation").at(at.clone()));
    }
    if family == Family::V6 && pool.ipip {
        findings.push(
            Finding::new(
                Severity::Error,
                Code::CalicoEncapsulation,
                format!(
                    "Calico IPv6 pool {} uses IPIP: \"IPIP is not supported on an IPv6 IP pool\"",
                    pool.name
                ),
                "use VXLAN (Calico ≥ 3.23) or no encapsulation with BGP for the IPv6 pool",
            )
            .at(at.clone()),
        );
    }
    if family == Family::V6 && pool.vxlan {
        let (severity, applies) = match version {
            Some(v) if v.value.at_least(3, 23) => return,
            Some(v) => (Severity::Error, format!("Calico {} is older", v.value)),
            None => (
                Severity::Warning,
                "applies to Calico before v3.23; the version is unknown".to_owned(),
            ),
        };
        findings.push(Finding::new(severity, Code::CalicoEncapsulation,
            format!("Calico IPv6 pool {} uses VXLAN, which needs Calico ≥ 3.23 (and kernel ≥ 4.19.1): {applies}", pool.name),
            "upgrade Calico to 3.23 or newer, or use no encapsulation with BGP for IPv6").at(at));
    }
}
