//! The planner: from a few choices (ULA, IPv4 base, primary family, node count, pods per
//! node, services) to one consistent set of cluster CIDRs, service CIDRs, node masks, DNS
//! addresses and Calico pools, with the capacity each gives and the rule that bounds it.
//!
//! Layout follows the recommended default of `dualstack-planning.md` §7: pods
//! `10.42.0.0/16,<ULA>::/56`, services `10.43.0.0/16,<ULA>:100::/112`, DNS at index 10,
//! node masks /24 and /64, Calico blocks /26 and /122.

use std::net::IpAddr;

use dualstack_addr::{Family, Kind, classify};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Serialize;

use crate::check::k3s::index_addr;
use crate::version::Version;

/// The CNI the plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cni {
    /// Flannel, K3s's default: pod CIDRs per node from the node mask, nothing else to configure.
    Flannel,
    /// Calico: IP pools per family, handed out to nodes in blocks (`calico_block_size`).
    Calico,
}

/// What the user chose (every field has a default in [`PlanOptions::new`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// The IPv6 /48 (a ULA, or a prefix delegated to you).
    pub ipv6_prefix: Ipv6Net,
    /// Whether `ipv6_prefix` was generated (RFC 4193) rather than given.
    pub ipv6_generated: bool,
    /// The IPv4 space pods and services are carved from (pods first, services after them).
    pub ipv4_base: Ipv4Net,
    /// The family listed first everywhere (cluster CIDRs, service CIDRs, `ipFamilies` defaults).
    pub primary: Family,
    /// How many nodes the cluster must be able to hold; sizes the cluster CIDRs.
    pub max_nodes: u32,
    /// How many pods one node must be able to run; sizes the node masks.
    pub pods_per_node: u32,
    /// How many Services must fit; sizes the service CIDRs.
    pub services: u32,
    /// The cluster's DNS domain (K3s `--cluster-domain`).
    pub cluster_domain: String,
    /// The K3s release the files are for, when known (some rules depend on it).
    pub k3s_version: Option<Version>,
    /// The CNI the files are for.
    pub cni: Cni,
    /// The bundled Traefik chart version the `HelmChartConfig` targets.
    pub traefik_chart: Version,
    /// Whether K3s's ServiceLB is replaced by dualstack (`disable: [servicelb]`).
    pub replace_servicelb: bool,
}

/// The Traefik chart K3s v1.35 bundles (`traefik-39.0.701+up39.0.7`, §2.7).
pub const DEFAULT_TRAEFIK_CHART: Version = Version::new(39, 0, 701);

impl PlanOptions {
    /// Defaults around a given IPv6 /48.
    pub fn new(ipv6_prefix: Ipv6Net, ipv6_generated: bool) -> Self {
        PlanOptions {
            ipv6_prefix,
            ipv6_generated,
            ipv4_base: Ipv4Net::new_assert(std::net::Ipv4Addr::new(10, 42, 0, 0), 15),
            primary: Family::V4,
            max_nodes: 256,
            pods_per_node: 110,
            services: 65_534,
            cluster_domain: "cluster.local".to_owned(),
            k3s_version: None,
            cni: Cni::Flannel,
            traefik_chart: DEFAULT_TRAEFIK_CHART,
            replace_servicelb: false,
        }
    }
}

/// A number and the rule that limits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capacity {
    /// Exact decimal count.
    pub value: String,
    /// The formula and rule that bound it.
    pub bound: String,
}

/// One family's part of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FamilyPlan {
    /// Which family this part is for.
    pub family: Family,
    /// The pod range (K3s `cluster-cidr`).
    pub cluster_cidr: IpNet,
    /// The Service range (K3s `service-cidr`).
    pub service_cidr: IpNet,
    /// The prefix length of each node's pod range (`node-cidr-mask-size-ipv4`/`-ipv6`).
    pub node_mask: u8,
    /// The CoreDNS Service address (K3s `cluster-dns`), index 10 of the service range.
    pub cluster_dns: IpAddr,
    /// The prefix length of Calico's per-node blocks (`blockSize`).
    pub calico_block_size: u8,
    /// How many nodes the cluster range holds at this node mask.
    pub nodes: Capacity,
    /// How many pods one node's range holds.
    pub pods_per_node: Capacity,
    /// How many Services the service range holds.
    pub services: Capacity,
    /// How many Calico blocks the cluster range holds.
    pub calico_blocks: Capacity,
}

/// A consistent dual-stack plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The IPv6 /48 everything IPv6 is carved from.
    pub ipv6_prefix: Ipv6Net,
    /// Whether that prefix was generated here (RFC 4193) rather than given.
    pub ipv6_generated: bool,
    /// The family listed first everywhere.
    pub primary: Family,
    /// The CNI the files are for.
    pub cni: Cni,
    /// The cluster's DNS domain.
    pub cluster_domain: String,
    /// The K3s release the files are for, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k3s_version: Option<Version>,
    /// The Traefik chart version the `HelmChartConfig` targets.
    pub traefik_chart: Version,
    /// Whether K3s's ServiceLB is disabled in favour of dualstack.
    pub replace_servicelb: bool,
    /// How many nodes the plan was sized for.
    pub max_nodes: u32,
    /// Both families, primary first.
    pub families: Vec<FamilyPlan>,
}

impl Plan {
    /// This family's part of the plan, if the plan has it.
    pub fn family(&self, family: Family) -> Option<&FamilyPlan> {
        self.families.iter().find(|f| f.family == family)
    }

    /// A list option's value in primary-family order, e.g. `10.42.0.0/16,fd…::/56`.
    pub fn joined(&self, pick: impl Fn(&FamilyPlan) -> String) -> String {
        self.families.iter().map(pick).collect::<Vec<_>>().join(",")
    }
}

/// Why the options cannot make a plan. Messages name the option and its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// An option value the planner cannot use.
    #[error("--{option} {value}: {reason}")]
    Option {
        /// The option's name, without `--`.
        option: &'static str,
        /// The value as given.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
}

fn bad(option: &'static str, value: impl ToString, reason: impl Into<String>) -> PlanError {
    PlanError::Option {
        option,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Bits needed to number `n` things: `ceil(log2(n))`.
fn bits_for(n: u64) -> u8 {
    if n <= 1 {
        0
    } else {
        (64 - (n - 1).leading_zeros()) as u8
    }
}

/// Builds the plan.
pub fn plan(options: &PlanOptions) -> Result<Plan, PlanError> {
    let o = options;
    if o.ipv6_prefix.prefix_len() != 48 {
        return Err(bad(
            "ula",
            o.ipv6_prefix,
            "give a /48 (RFC 4193 ULAs are /48s)",
        ));
    }
    let v6_kinds = classify(&IpNet::V6(o.ipv6_prefix)).kinds();
    if !v6_kinds
        .iter()
        .all(|k| matches!(k, Kind::UniqueLocal | Kind::GlobalUnicast))
    {
        return Err(bad(
            "ula",
            o.ipv6_prefix,
            format!(
                "{} space cannot carry cluster addresses; use an fd00::/8 ULA or a delegated global prefix",
                v6_kinds
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let v4_kinds = classify(&IpNet::V4(o.ipv4_base)).kinds();
    if v4_kinds.iter().any(|k| !matches!(k, Kind::Private)) {
        return Err(bad(
            "ipv4-base",
            o.ipv4_base,
            "use RFC 1918 private space (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)",
        ));
    }
    if let Some(v) = o.k3s_version
        && !v.at_least(1, 21)
    {
        return Err(bad(
            "k3s-version",
            v,
            "K3s has no dual-stack before v1.21.0+k3s1 (stable from v1.23.7+k3s1)",
        ));
    }
    if o.max_nodes == 0 || o.max_nodes > 32_768 {
        return Err(bad(
            "nodes",
            o.max_nodes,
            "must be 1 to 32768 (IPv6 node /64s must fit in half of the /48, within the 16-bit node index kube-controller-manager allows)",
        ));
    }
    if o.pods_per_node == 0 || o.pods_per_node > 4093 {
        return Err(bad(
            "pods-per-node",
            o.pods_per_node,
            "must be 1 to 4093 (an IPv4 /20 per node)",
        ));
    }
    if !(10..=65_534).contains(&o.services) {
        return Err(bad(
            "services",
            o.services,
            "must be 10 to 65534 (the DNS service is index 10; the IPv6 bitmap allocator stops at 65,536 addresses)",
        ));
    }
    if o.cluster_domain.is_empty()
        || !o.cluster_domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
    {
        return Err(bad(
            "cluster-domain",
            &o.cluster_domain,
            "must be a DNS name such as cluster.local",
        ));
    }

    // Never a plan that allows only one node: a second node could never join.
    let node_bits = bits_for(u64::from(o.max_nodes)).max(1);
    // IPv4 node mask: the smallest block that holds the pods (2^(32-m) - 3 addresses: network,
    // gateway, broadcast), but never smaller than K3s's /24 default.
    let v4_mask = (8..=30u8)
        .rev()
        .find(|m| (1u64 << (32 - m)) - 3 >= u64::from(o.pods_per_node))
        .unwrap_or(20)
        .min(24);
    let v4_prefix = v4_mask
        .checked_sub(node_bits)
        .filter(|p| *p >= 8)
        .ok_or_else(|| {
            bad(
                "nodes",
                o.max_nodes,
                format!(
                    "{} nodes of /{v4_mask} do not fit in IPv4 private space",
                    o.max_nodes
                ),
            )
        })?;
    let v4_service_len = 32 - bits_for(u64::from(o.services) + 2).max(4);
    let v4_service_len = v4_service_len.clamp(12, 28);

    // Carve pods then services out of the IPv4 base.
    let base_start = u32::from(o.ipv4_base.network());
    let base_end = u32::from(o.ipv4_base.broadcast());
    let pods_size = 1u64 << (32 - v4_prefix);
    let svc_size = 1u64 << (32 - v4_service_len);
    let pods_start = u64::from(base_start);
    let svc_start = (pods_start + pods_size).div_ceil(svc_size) * svc_size;
    let needed_len = if svc_size <= pods_size {
        v4_prefix - 1
    } else {
        v4_service_len - 1
    };
    let example = Ipv4Net::new(o.ipv4_base.network(), needed_len)
        .map(|n| n.trunc().to_string())
        .unwrap_or_default();
    if v4_prefix < o.ipv4_base.prefix_len() || svc_start + svc_size - 1 > u64::from(base_end) {
        return Err(bad(
            "ipv4-base",
            o.ipv4_base,
            format!(
                "too small for a /{v4_prefix} pod range ({} nodes × /{v4_mask}) plus a /{v4_service_len} service range; it needs at least a /{needed_len} such as {example}, or fewer --nodes",
                o.max_nodes
            ),
        ));
    }
    if pods_start % pods_size != 0 {
        return Err(bad(
            "ipv4-base",
            o.ipv4_base,
            format!("must start on a /{v4_prefix} boundary, e.g. {example}"),
        ));
    }
    let v4_pods = Ipv4Net::new_assert((pods_start as u32).into(), v4_prefix);
    let v4_services = Ipv4Net::new_assert((svc_start as u32).into(), v4_service_len);

    // IPv6: node /64s (the standard subnet size) out of subnet 0 of the /48; at least a /56.
    let v6_mask = 64u8;
    let v6_prefix = 64 - node_bits.max(8);
    let v6_pods = Ipv6Net::new_assert(o.ipv6_prefix.network(), v6_prefix);
    // Services: the first /112 of subnet 0x100 of the /48 (`<prefix>:100::/112`), or of the
    // first subnet after the pod range when more than 256 nodes push the pods past 0x100.
    let service_subnet = 0x100u128.max(1u128 << node_bits);
    let service_net = u128::from(o.ipv6_prefix.network()) | (service_subnet << 64);
    let v6_services = Ipv6Net::new_assert(service_net.into(), 112);

    let v4 = family_plan(
        Family::V4,
        IpNet::V4(v4_pods),
        IpNet::V4(v4_services),
        v4_mask,
        26,
        o,
    )?;
    let v6 = family_plan(
        Family::V6,
        IpNet::V6(v6_pods),
        IpNet::V6(v6_services),
        v6_mask,
        122,
        o,
    )?;
    let families = match o.primary {
        Family::V4 => vec![v4, v6],
        Family::V6 => vec![v6, v4],
    };
    Ok(Plan {
        ipv6_prefix: o.ipv6_prefix,
        ipv6_generated: o.ipv6_generated,
        primary: o.primary,
        cni: o.cni,
        cluster_domain: o.cluster_domain.clone(),
        k3s_version: o.k3s_version,
        traefik_chart: o.traefik_chart,
        replace_servicelb: o.replace_servicelb,
        max_nodes: o.max_nodes,
        families,
    })
}

fn family_plan(
    family: Family,
    cluster: IpNet,
    services: IpNet,
    node_mask: u8,
    block: u8,
    o: &PlanOptions,
) -> Result<FamilyPlan, PlanError> {
    let prefix = cluster.prefix_len();
    let node_count = 1u128 << (node_mask - prefix);
    let pods = crate::check::ranges::pods_per_node(family, node_mask);
    let svc_total = 1u128 << (family.bits() - services.prefix_len());
    let (svc_usable, svc_bound) = match family {
        Family::V4 => (
            svc_total - 2,
            format!(
                "2^(32−{}) − 2 (network and broadcast are never allocated); kube-apiserver allows /12 at most",
                services.prefix_len()
            ),
        ),
        Family::V6 => (
            svc_total.min(65_536) - 1,
            format!(
                "2^(128−{}) − 1 (the ::0 address is never allocated); the bitmap allocator caps IPv6 service ranges at 65,536 addresses",
                services.prefix_len()
            ),
        ),
    };
    let cluster_dns = index_addr(&services, 10).ok_or_else(|| {
        bad(
            "services",
            o.services,
            "the service range has no index 10 for DNS",
        )
    })?;
    Ok(FamilyPlan {
        family,
        cluster_cidr: cluster,
        service_cidr: services,
        node_mask,
        cluster_dns,
        calico_block_size: block,
        nodes: Capacity {
            value: node_count.to_string(),
            bound: format!(
                "2^({node_mask}−{prefix}) node ranges of /{node_mask} in the /{prefix} cluster CIDR (kube-controller-manager cidr_set; the mask difference must stay ≤ 16)"
            ),
        },
        pods_per_node: Capacity {
            value: pods.to_string(),
            bound: match family {
                Family::V4 => format!(
                    "2^(32−{node_mask}) − 3 (network, gateway, broadcast); the kubelet runs at most max-pods (110 by default)"
                ),
                Family::V6 => format!(
                    "2^(128−{node_mask}) − 2 (network, gateway); the kubelet runs at most max-pods (110 by default)"
                ),
            },
        },
        services: Capacity {
            value: svc_usable.to_string(),
            bound: svc_bound,
        },
        calico_blocks: Capacity {
            value: (1u128 << (block - prefix)).to_string(),
            bound: format!(
                "2^({block}−{prefix}) blocks of /{block} ({} addresses each); Calico wants at least one block per node",
                1u128 << (family.bits() - block)
            ),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ula() -> Ipv6Net {
        "fd12:3456:789a::/48".parse().unwrap()
    }

    #[test]
    fn default_plan_is_the_recommended_layout() {
        let p = plan(&PlanOptions::new(ula(), true)).unwrap();
        assert_eq!(
            p.joined(|f| f.cluster_cidr.to_string()),
            "10.42.0.0/16,fd12:3456:789a::/56"
        );
        assert_eq!(
            p.joined(|f| f.service_cidr.to_string()),
            "10.43.0.0/16,fd12:3456:789a:100::/112"
        );
        assert_eq!(
            p.joined(|f| f.cluster_dns.to_string()),
            "10.43.0.10,fd12:3456:789a:100::a"
        );
        assert_eq!(p.families[0].nodes.value, "256");
        assert_eq!(p.families[0].pods_per_node.value, "253");
        assert_eq!(p.families[1].services.value, "65535");
    }

    #[test]
    fn sizes_follow_the_options() {
        let mut o = PlanOptions::new(ula(), false);
        o.max_nodes = 1000;
        o.pods_per_node = 500;
        o.services = 1000;
        o.primary = Family::V6;
        let err = plan(&o).unwrap_err().to_string();
        assert!(
            err.contains("needs at least a /12 such as 10.32.0.0/12"),
            "{err}"
        );
        o.ipv4_base = "10.32.0.0/12".parse().unwrap();
        let p = plan(&o).unwrap();
        let v4 = p.family(Family::V4).unwrap();
        assert_eq!(v4.node_mask, 23);
        assert_eq!(v4.cluster_cidr.to_string(), "10.32.0.0/13");
        assert_eq!(v4.service_cidr.to_string(), "10.40.0.0/22");
        assert_eq!(v4.cluster_dns.to_string(), "10.40.0.10");
        assert_eq!(p.families[0].family, Family::V6);
        assert_eq!(p.family(Family::V6).unwrap().cluster_cidr.prefix_len(), 54);
    }

    #[test]
    fn impossible_options_name_the_option() {
        let mut o = PlanOptions::new(ula(), false);
        o.max_nodes = 40_000;
        assert!(
            plan(&o)
                .unwrap_err()
                .to_string()
                .starts_with("--nodes 40000")
        );
        let mut o = PlanOptions::new(ula(), false);
        o.ipv4_base = "10.42.0.0/20".parse().unwrap();
        assert!(
            plan(&o)
                .unwrap_err()
                .to_string()
                .starts_with("--ipv4-base 10.42.0.0/20")
        );
        let o = PlanOptions::new("2001:db8:1::/48".parse().unwrap(), false);
        assert!(plan(&o).unwrap_err().to_string().contains("documentation"));
        let mut o = PlanOptions::new(ula(), false);
        o.ipv4_base = "8.8.0.0/15".parse().unwrap();
        assert!(plan(&o).unwrap_err().to_string().contains("RFC 1918"));
    }
}
