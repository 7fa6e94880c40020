//! Rules over K3s options: the address lists, service range size, node masks, overlap,
//! obsolete and per-component flags, node-ip, flannel and version-dependent behaviour.
//! Each rule cites its source in `dualstack-planning.md` (section numbers below).

use dualstack_addr::{Family, Kind, classify, kind_of, overlaps};
use ipnet::IpNet;

use super::lists::{EntryKind, List, check_family_order, parse_list};
use super::ranges::{check_range_kind, human_count, node_count, pods_per_node};
use crate::code::Code;
use crate::finding::{Finding, Severity};
use crate::input::k3s_config::{Component, K3sOptions};
use crate::input::{Origin, Sourced};
use crate::version::Version;

/// K3s defaults (`docs/cli/server.md`, §2.1).
pub const DEFAULT_CLUSTER_CIDR: &str = "10.42.0.0/16";
/// The K3s default `service-cidr` (IPv4 only), used when the configuration sets none.
pub const DEFAULT_SERVICE_CIDR: &str = "10.43.0.0/16";

/// The cluster's address settings as the components see them.
#[derive(Debug, Clone)]
pub struct ClusterView {
    /// Pod ranges as kube-controller-manager allocates them.
    pub pods: List,
    /// Service ranges as kube-apiserver allocates them.
    pub services: List,
    /// `node-ip` as configured, if set (one address per family for dual-stack).
    pub node_ip: Option<List>,
    /// `cluster-dns` as configured, if set.
    pub cluster_dns: Option<List>,
    /// Whether flannel is the CNI (not `flannel-backend: none`), so flannel's rules apply.
    pub flannel: bool,
    /// The K3s version, when the inputs or `--k3s-version` name one.
    pub version: Option<Version>,
}

impl ClusterView {
    /// Whether the pods or the services are configured for both families.
    pub fn is_dual(&self) -> bool {
        self.pods.is_dual() || self.services.is_dual()
    }
}

fn default_value(value: &str) -> Sourced<String> {
    Sourced {
        value: value.to_owned(),
        origin: Origin::new("K3s default", None),
    }
}

/// A value for `component`: its own `--<component>-arg key=` if given, else the top-level option.
fn component_value(
    options: &K3sOptions,
    component: Component,
    arg: &str,
    top: &str,
) -> Option<Sourced<String>> {
    options
        .component_arg(component, arg)
        .or_else(|| options.list(top))
}

/// Runs every K3s rule and returns the view for the cross-input rules.
pub fn check_k3s(
    options: &K3sOptions,
    version: Option<Version>,
    findings: &mut Vec<Finding>,
) -> ClusterView {
    let pods_value = component_value(
        options,
        Component::ControllerManager,
        "cluster-cidr",
        "cluster-cidr",
    )
    .unwrap_or_else(|| default_value(DEFAULT_CLUSTER_CIDR));
    let services_value = component_value(
        options,
        Component::ApiServer,
        "service-cluster-ip-range",
        "service-cidr",
    )
    .unwrap_or_else(|| default_value(DEFAULT_SERVICE_CIDR));
    let pods = parse_list("cluster-cidr", &pods_value, EntryKind::Prefix, findings);
    let services = parse_list("service-cidr", &services_value, EntryKind::Prefix, findings);
    let node_ip = component_value(options, Component::Kubelet, "node-ip", "node-ip")
        .map(|v| parse_list("node-ip", &v, EntryKind::Address, findings));
    let cluster_dns = options
        .list("cluster-dns")
        .map(|v| parse_list("cluster-dns", &v, EntryKind::Address, findings));
    let flannel = !options.flag("no-flannel")
        && options
            .last("flannel-backend")
            .is_none_or(|b| b.value != "none");

    let view = ClusterView {
        pods,
        services,
        node_ip,
        cluster_dns,
        flannel,
        version,
    };
    let mut lists = vec![&view.pods, &view.services];
    lists.extend(view.node_ip.as_ref());
    lists.extend(view.cluster_dns.as_ref());
    check_family_order(&lists, findings);

    for entry in &view.pods.entries {
        check_range_kind(
            "cluster-cidr",
            &entry.net,
            view.pods.source.clone(),
            findings,
        );
    }
    for entry in &view.services.entries {
        check_range_kind(
            "service-cidr",
            &entry.net,
            view.services.source.clone(),
            findings,
        );
    }
    check_service_ranges(&view, findings);
    check_node_masks(options, &view, findings);
    check_overlaps(&view, findings);
    check_node_ip(options, &view, findings);
    check_obsolete(options, version, findings);
    check_per_component(options, &view, findings);
    check_flannel(options, &view, findings);
    check_versions(&view, findings);
    view
}

/// §1.1/§1.2: kube-apiserver's `maxCIDRBits = 20` (IPv4 ≥ /12, IPv6 ≥ /108) is enforced up to
/// Kubernetes 1.33; the old bitmap allocator caps IPv6 at 65,536 addresses; DNS is index 10.
fn check_service_ranges(view: &ClusterView, findings: &mut Vec<Finding>) {
    let source = view.services.source.clone();
    for entry in &view.services.entries {
        let net = entry.net;
        let len = net.prefix_len();
        let (min_len, max_len) = match entry.family {
            Family::V4 => (12, 28),
            Family::V6 => (108, 124),
        };
        if len < min_len {
            let (severity, applies) = match view.version {
                Some(v) if v.at_least(1, 34) => (
                    Severity::Warning,
                    format!("K3s {v} (Kubernetes 1.34+) skips this check by default, but K3s docs still document /{} as the largest", if entry.family == Family::V4 { 12 } else { 112 }),
                ),
                Some(v) => (Severity::Error, format!("kube-apiserver of K3s {v} refuses to start")),
                None => (
                    Severity::Error,
                    "applies to K3s v1.33 and older (Kubernetes ≤ 1.33), where kube-apiserver refuses to start; 1.34+ skips the check by default".to_owned(),
                ),
            };
            findings.push(
                Finding::new(
                    severity,
                    Code::ServiceRangeTooLarge,
                    format!("service-cidr {net} is larger than /{min_len}: \"specified --service-cluster-ip-range is too large\"; {applies}"),
                    format!("use a /{} or longer, e.g. {}", if entry.family == Family::V4 { 16 } else { 112 }, shrink(net, if entry.family == Family::V4 { 16 } else { 112 })),
                )
                .at(source.clone()),
            );
        } else if entry.family == Family::V6 && len < 112 {
            findings.push(
                Finding::new(
                    Severity::Warning,
                    Code::ServiceRangeClamped,
                    format!("service-cidr {net} holds {} addresses, but the bitmap service allocator (the only one before Kubernetes 1.33) uses at most 65,536 of them, i.e. a /112; K3s docs give /112 as the largest", human_count(dualstack_addr::count(&net).saturating_u128())),
                    format!("use a /112, e.g. {}", shrink(net, 112)),
                )
                .at(source.clone()),
            );
        }
        if len > max_len {
            findings.push(
                Finding::new(
                    Severity::Error,
                    Code::ServiceRangeTooSmall,
                    format!("service-cidr {net} has no address at index 10, where K3s puts the cluster DNS service (kubeadm requires at least 10 addresses)"),
                    format!("use a /{} or shorter", max_len),
                )
                .at(source.clone()),
            );
        }
    }
    // cluster-dns must be inside the service range of its family (K3s flag help).
    if let Some(dns) = &view.cluster_dns {
        for entry in &dns.entries {
            let inside = view
                .services
                .of(entry.family)
                .is_some_and(|s| s.net.contains(&entry.addr()));
            if !inside {
                findings.push(
                    Finding::new(
                        Severity::Error,
                        Code::ClusterDnsOutsideServiceCidr,
                        format!("cluster-dns {} is not inside the {} service-cidr{}", entry.addr(), entry.family.k8s_name(),
                            view.services.of(entry.family).map(|s| format!(" {}", s.net)).unwrap_or_default()),
                        "use index 10 of the service range of that family (or leave cluster-dns unset: K3s then uses index 10 of each service range)",
                    )
                    .at(dns.source.clone()),
                );
            }
        }
        if view.services.is_dual() && !dns.is_dual() && !dns.entries.is_empty() {
            let missing = dns.entries[0].family.other();
            let hint = view
                .services
                .of(missing)
                .and_then(|s| index_addr(&s.net, 10))
                .map(|a| format!(" (add {a})"))
                .unwrap_or_default();
            findings.push(
                Finding::new(
                    Severity::Warning,
                    Code::ClusterDnsMissingFamily,
                    format!("service-cidr is dual-stack but cluster-dns has only {}: pods get no {} DNS server", dns.entries[0].family.k8s_name(), missing.k8s_name()),
                    format!("list one DNS address per family in service-cidr order{hint}, or leave cluster-dns unset"),
                )
                .at(dns.source.clone()),
            );
        }
    }
}

/// The address at `index` inside `net`, if the range is large enough.
pub fn index_addr(net: &IpNet, index: u128) -> Option<std::net::IpAddr> {
    let host_bits = u32::from(Family::of_net(*net).bits() - net.prefix_len());
    if host_bits < 128 && index >= (1u128 << host_bits) {
        return None;
    }
    let base = dualstack_addr::prefix::addr_to_u128(net.network());
    Some(dualstack_addr::prefix::addr_from_u128(
        Family::of_net(*net),
        base + index,
    ))
}

/// The first `/len` inside `net`.
fn shrink(net: IpNet, len: u8) -> IpNet {
    IpNet::new(net.network(), len)
        .map(|n| n.trunc())
        .unwrap_or(net)
}

/// §1.5: node masks per family (defaults 24/64), the 16-bit limit for IPv6, node counts.
fn check_node_masks(options: &K3sOptions, view: &ClusterView, findings: &mut Vec<Finding>) {
    let kcm = Component::ControllerManager;
    if let Some(v) = options.component_arg(kcm, "node-cidr-mask-size")
        && view.pods.is_dual()
    {
        findings.push(
                Finding::new(
                    Severity::Error,
                    Code::NodeMaskUnsuffixed,
                    format!("node-cidr-mask-size={} on a dual-stack cluster: kube-controller-manager exits with \"usage of --node-cidr-mask-size is not allowed with dual-stack clusters\"", v.value),
                    "use node-cidr-mask-size-ipv4 and node-cidr-mask-size-ipv6 instead",
                )
                .at(Some(v.origin.to_string())),
            );
    }
    for family in Family::BOTH {
        let key = match family {
            Family::V4 => "node-cidr-mask-size-ipv4",
            Family::V6 => "node-cidr-mask-size-ipv6",
        };
        let given = options.component_arg(kcm, key);
        let Some(cluster) = view.pods.of(family) else {
            if let Some(v) = given
                && !view.pods.entries.is_empty()
            {
                findings.push(
                    Finding::new(
                        Severity::Error,
                        Code::NodeMaskWrongFamily,
                        format!("{key}={} but cluster-cidr has no {} range: kube-controller-manager refuses it", v.value, family.k8s_name()),
                        format!("remove {key}, or add a {} range to cluster-cidr", family.k8s_name()),
                    )
                    .at(Some(v.origin.to_string())),
                );
            }
            continue;
        };
        let source = given
            .as_ref()
            .map(|v| v.origin.to_string())
            .or(view.pods.source.clone());
        let mask: u8 = match &given {
            None => match family {
                Family::V4 => 24,
                Family::V6 => 64,
            },
            Some(v) => match v.value.trim().parse::<u8>() {
                Ok(m) if m <= family.bits() => m,
                _ => {
                    findings.push(
                        Finding::new(
                            Severity::Error,
                            Code::InvalidValue,
                            format!(
                                "{key}=`{}` is not a mask length (0–{})",
                                v.value,
                                family.bits()
                            ),
                            format!(
                                "set {key} to a number such as {}",
                                if family == Family::V4 { 24 } else { 64 }
                            ),
                        )
                        .at(source.clone()),
                    );
                    continue;
                }
            },
        };
        let prefix = cluster.net.prefix_len();
        let net = cluster.net;
        let suggestion = |m: u8| {
            let (max_mask, typical_prefix) = match family {
                Family::V4 => (28, 16),
                Family::V6 => (120, 56),
            };
            if m <= max_mask {
                format!("kube-controller-manager-arg: [\"{key}={m}\"] (or a shorter cluster-cidr)")
            } else {
                format!(
                    "use a shorter {} cluster-cidr, e.g. a /{typical_prefix} with {key}={}",
                    family.k8s_name(),
                    if family == Family::V4 { 24 } else { 64 }
                )
            }
        };
        if mask < prefix {
            findings.push(
                Finding::new(
                    Severity::Error,
                    Code::NodeMaskShorterThanCidr,
                    format!("{key} is /{mask} but the {} cluster-cidr {net} is only a /{prefix}: no node can get a pod range (CIDRNotAvailable)", family.k8s_name()),
                    suggestion(prefix.saturating_add(8).min(family.bits())),
                )
                .at(source.clone()),
            );
            continue;
        }
        if mask == prefix {
            findings.push(
                Finding::new(
                    Severity::Error,
                    Code::NodeMaskOneNode,
                    format!("{key} /{mask} equals the {} cluster-cidr {net} prefix: this plan allows only ONE node; every other node gets no pod range (CIDRNotAvailable, flannel: /run/flannel/subnet.env missing)", family.k8s_name()),
                    suggestion((prefix + 8).min(family.bits())),
                )
                .at(source.clone()),
            );
        }
        let diff = mask - prefix;
        if diff > 16 {
            let (severity, what) = match family {
                Family::V6 => (
                    Severity::Error,
                    "K3s exits at startup with \"New CIDR set failed; the node CIDR size is too big\" (k3s #7888)",
                ),
                Family::V4 => (
                    Severity::Warning,
                    "kubeadm rejects this; kube-controller-manager accepts it for IPv4",
                ),
            };
            findings.push(
                Finding::new(
                    severity,
                    Code::NodeMaskDiffTooLarge,
                    format!("{key} /{mask} is {diff} bits longer than the {} cluster-cidr {net}; the limit is 16: {what}", family.k8s_name()),
                    format!("make the cluster-cidr a /{} or longer, or the mask /{} or shorter", mask - 16, prefix + 16),
                )
                .at(source.clone()),
            );
        } else if mask > prefix {
            findings.push(
                Finding::new(
                    Severity::Info,
                    Code::Capacity,
                    format!(
                        "{} {net} with node mask /{mask}: {} nodes, {} pod addresses per node",
                        family.k8s_name(),
                        human_count(node_count(&net, mask)),
                        human_count(pods_per_node(family, mask))
                    ),
                    "nothing to do",
                )
                .at(source.clone()),
            );
        }
        if family == Family::V4 && pods_per_node(family, mask) < 110 {
            findings.push(
                Finding::new(
                    Severity::Warning,
                    Code::FewPodsPerNode,
                    format!("{key} /{mask} leaves {} pod addresses per node, fewer than the kubelet's default max-pods of 110", pods_per_node(family, mask)),
                    "use /24 (253 pods) or lower kubelet max-pods to match",
                )
                .at(source.clone()),
            );
        }
    }
}

/// §1.1 flag help, §1.6, k3s #284: pod, service and node networks must not overlap.
fn check_overlaps(view: &ClusterView, findings: &mut Vec<Finding>) {
    for family in Family::BOTH {
        if let (Some(p), Some(s)) = (view.pods.of(family), view.services.of(family))
            && overlaps(&p.net, &s.net)
        {
            findings.push(
                Finding::new(
                    Severity::Error,
                    Code::RangesOverlap,
                    format!(
                        "{} cluster-cidr {} and service-cidr {} overlap",
                        family.k8s_name(),
                        p.net,
                        s.net
                    ),
                    "give pods and services separate ranges, e.g. 10.42.0.0/16 and 10.43.0.0/16",
                )
                .at(view.services.source.clone()),
            );
        }
    }
    if let Some(node_ip) = &view.node_ip {
        for entry in &node_ip.entries {
            for (what, list) in [
                ("cluster-cidr", &view.pods),
                ("service-cidr", &view.services),
            ] {
                if let Some(range) = list.of(entry.family)
                    && range.net.contains(&entry.addr())
                {
                    findings.push(
                        Finding::new(
                            Severity::Error,
                            Code::RangesOverlap,
                            format!("node-ip {} lies inside {what} {}: the host address must not appear in the pod or service ranges (k3s #284)", entry.addr(), range.net),
                            format!("choose a {what} that does not contain the node network"),
                        )
                        .at(node_ip.source.clone()),
                    );
                }
            }
        }
    }
}

/// §1.6 and k3s #7190/#9946: node-ip pairs, families and kinds.
fn check_node_ip(options: &K3sOptions, view: &ClusterView, findings: &mut Vec<Finding>) {
    if let Some(node_ip) = &view.node_ip {
        for entry in &node_ip.entries {
            let kind = kind_of(entry.addr());
            if matches!(
                kind,
                Kind::LinkLocal | Kind::Loopback | Kind::Unspecified | Kind::Multicast
            ) {
                findings.push(
                    Finding::new(
                        Severity::Error,
                        Code::NodeIpInvalidKind,
                        format!("node-ip {} is {} ({}): other nodes cannot reach it{}", entry.addr(), kind.name(), kind.description(),
                            if kind == Kind::Unspecified { " (\"dual-stack node IP cannot include '0.0.0.0' or '::'\")" } else { "" }),
                        "use the node's routable address of that family on the interface that carries cluster traffic",
                    )
                    .at(node_ip.source.clone()),
                );
            }
        }
    }
    if !view.is_dual() {
        return;
    }
    let dual_node_ip = view.node_ip.as_ref().is_some_and(List::is_dual);
    if !dual_node_ip {
        let have = view
            .node_ip
            .as_ref()
            .map(|l| {
                format!(
                    "node-ip has only {}",
                    l.primary()
                        .map(Family::k8s_name)
                        .unwrap_or("nothing usable")
                )
            })
            .unwrap_or_else(|| "node-ip is not set".to_owned());
        findings.push(
            Finding::new(
                Severity::Warning,
                Code::NodeIpSingleFamily,
                format!("the cluster is dual-stack but {have}: K3s may detect only one family and refuse to start (\"IPv6 was enabled but no IPv6 address was found on node\", k3s #7190, #9946)"),
                format!("set node-ip on every node to its {} address: node-ip: \"<{}>,<{}>\"",
                    if view.pods.primary() == Some(Family::V6) { "IPv6 and IPv4" } else { "IPv4 and IPv6" },
                    view.pods.primary().unwrap_or(Family::V4).k8s_name(),
                    view.pods.primary().unwrap_or(Family::V4).other().k8s_name()),
            )
            .at(options.list("node-ip").map(|v| v.origin.to_string())),
        );
    }
}

/// §1.2: the IPv6DualStack gate (GA 1.23, removed 1.25); K3s `--no-flannel`.
fn check_obsolete(options: &K3sOptions, version: Option<Version>, findings: &mut Vec<Finding>) {
    for component in Component::ALL {
        for (key, value) in options.component_args(component) {
            if key != "feature-gates" || !value.value.contains("IPv6DualStack") {
                continue;
            }
            let (severity, why) = match version {
                Some(v) if v.at_least(1, 25) => (Severity::Error, format!("K3s {v}: the gate was removed in Kubernetes 1.25 and {} exits with \"unrecognized feature gate: IPv6DualStack\"", component.option().trim_end_matches("-arg"))),
                Some(v) if v.at_least(1, 21) => (Severity::Warning, format!("K3s {v}: dual-stack is on by default since 1.21 (GA in 1.23); the gate does nothing and breaks the upgrade to 1.25")),
                Some(v) => (Severity::Info, format!("K3s {v} needs the gate, but dual-stack before 1.21 is alpha; upgrade")),
                None => (Severity::Error, "fatal on K3s v1.25 and newer (gate removed: the component exits with \"unrecognized feature gate\"); redundant on v1.21–v1.24 (beta on by default, GA in 1.23)".to_owned()),
            };
            findings.push(
                Finding::new(
                    severity,
                    Code::ObsoleteFeatureGate,
                    format!(
                        "{}: feature-gates={} — {why}",
                        component.option(),
                        value.value
                    ),
                    format!(
                        "remove IPv6DualStack from {} feature-gates",
                        component.option()
                    ),
                )
                .at(Some(value.origin.to_string())),
            );
        }
    }
    if let Some(v) = options.last("no-flannel") {
        findings.push(
            Finding::new(
                Severity::Warning,
                Code::ObsoleteFlag,
                "--no-flannel is a deprecated alias that current K3s releases no longer accept",
                "use flannel-backend: none (and disable-network-policy: true) for another CNI",
            )
            .at(Some(v.origin.to_string())),
        );
    }
}

/// §2.1: K3s has top-level options for these; per-component copies drift apart.
fn check_per_component(options: &K3sOptions, view: &ClusterView, findings: &mut Vec<Finding>) {
    const TOP_LEVEL: &[(Component, &str, &str)] = &[
        (
            Component::ApiServer,
            "service-cluster-ip-range",
            "service-cidr",
        ),
        (
            Component::ControllerManager,
            "service-cluster-ip-range",
            "service-cidr",
        ),
        (Component::ControllerManager, "cluster-cidr", "cluster-cidr"),
        (Component::KubeProxy, "cluster-cidr", "cluster-cidr"),
        (Component::Kubelet, "node-ip", "node-ip"),
    ];
    for (component, arg, top) in TOP_LEVEL {
        let Some(value) = options.component_arg(*component, arg) else {
            continue;
        };
        findings.push(
            Finding::new(
                Severity::Warning,
                Code::PerComponentFlag,
                format!("{}: {arg}={} is set for one component; K3s has the top-level option `{top}`, which it passes to every component that needs it", component.option(), value.value),
                format!("remove the {} entry and set {top}: \"{}\"", component.option(), value.value),
            )
            .at(Some(value.origin.to_string())),
        );
    }
    // kube-proxy's cluster-cidr drives masquerading; it must equal the pod CIDR (§1.4).
    let proxy = component_value(
        options,
        Component::KubeProxy,
        "cluster-cidr",
        "cluster-cidr",
    )
    .unwrap_or_else(|| default_value(DEFAULT_CLUSTER_CIDR));
    compare(
        findings,
        "kube-proxy cluster-cidr",
        &proxy,
        "the pod cluster-cidr",
        &view.pods,
        "kube-proxy uses it to tell pod traffic from external traffic (masquerading, local traffic detection)",
    );
    let kcm_services = component_value(
        options,
        Component::ControllerManager,
        "service-cluster-ip-range",
        "service-cidr",
    )
    .unwrap_or_else(|| default_value(DEFAULT_SERVICE_CIDR));
    compare(
        findings,
        "kube-controller-manager service-cluster-ip-range",
        &kcm_services,
        "kube-apiserver service-cluster-ip-range",
        &view.services,
        "the controller manager keeps node pod ranges out of the service range it is told about",
    );
}

fn compare(
    findings: &mut Vec<Finding>,
    what: &str,
    value: &Sourced<String>,
    against: &str,
    list: &List,
    why: &str,
) {
    let mut scratch = Vec::new();
    let other = parse_list(what, value, EntryKind::Prefix, &mut scratch);
    let nets = |l: &List| l.entries.iter().map(|e| e.net).collect::<Vec<_>>();
    if !other.entries.is_empty() && !list.entries.is_empty() && nets(&other) != nets(list) {
        let show = |l: &List| {
            nets(l)
                .iter()
                .map(IpNet::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        findings.push(
            Finding::new(
                Severity::Error,
                Code::ComponentMismatch,
                format!("{what} is {} ({}) but {against} is {}: {why}", show(&other), value.origin, show(list)),
                "set the value once with the top-level K3s option and remove the per-component arguments",
            )
            .at(Some(value.origin.to_string())),
        );
    }
}

/// §2.3: ULA pod ranges need masquerading with flannel.
fn check_flannel(options: &K3sOptions, view: &ClusterView, findings: &mut Vec<Finding>) {
    if !view.flannel || options.flag("flannel-ipv6-masq") {
        return;
    }
    if let Some(v6) = view.pods.of(Family::V6)
        && !classify(&v6.net).kinds().contains(&Kind::GlobalUnicast)
    {
        findings.push(
            Finding::new(
                Severity::Warning,
                Code::FlannelIpv6NoMasq,
                format!("flannel with the IPv6 pod range {} ({}) and no flannel-ipv6-masq: pods send from addresses nobody routes back, so IPv6 to the outside fails", v6.net, classify(&v6.net).name()),
                "set flannel-ipv6-masq: true (a critical option: the same on every server)",
            )
            .at(view.pods.source.clone()),
        );
    }
}

/// §2.3 and k3s #8467/#8502: release-dependent dual-stack behaviour.
fn check_versions(view: &ClusterView, findings: &mut Vec<Finding>) {
    if !view.is_dual() {
        return;
    }
    if let Some(v) = view.version {
        if !v.at_least(1, 21) {
            findings.push(Finding::new(
                Severity::Error,
                Code::DualStackUnsupported,
                format!("K3s {v} has no dual-stack support (experimental from v1.21.0+k3s1, stable from v1.23.7+k3s1)"),
                "upgrade K3s to v1.23.7 or newer before enabling dual-stack",
            ));
        } else if v < Version::new(1, 23, 7) {
            findings.push(Finding::new(
                Severity::Warning,
                Code::DualStackUnsupported,
                format!("dual-stack on K3s {v} is experimental (stable from v1.23.7+k3s1)"),
                "upgrade K3s to v1.23.7 or newer",
            ));
        }
    }
    if view.pods.primary() == Some(Family::V6) {
        let applies = match view.version {
            Some(v) if v.at_least(1, 28) => return,
            Some(v) => format!("K3s {v} does not honour it"),
            None => "K3s releases before v1.28 do not honour it (backports to 1.25–1.27 arrived only in late-2023 patch releases)".to_owned(),
        };
        findings.push(
            Finding::new(
                Severity::Warning,
                Code::Ipv6FirstUnsupported,
                format!("IPv6-first family order: {applies}: IPv4 still takes precedence for pod IPs and services, and flannel may panic (k3s #8467, #8502; flannel #1629)"),
                "use K3s v1.28 or newer for an IPv6-primary cluster, or list IPv4 first",
            )
            .at(view.pods.source.clone()),
        );
    }
}
