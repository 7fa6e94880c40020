//! Stage 1, the spec: what a Service asks for, read from its spec alone — the families to
//! serve, the ports (with their ready backends) and the source ranges — as a [`Plan`], or the
//! [`SpecError`] that makes it `InvalidSpec`. Also the part of the explanation that comes
//! straight from the spec.

use std::net::IpAddr;

use dualstack_addr::Family;
use dualstack_ruleset::Protocol;
use ipnet::IpNet;

use crate::decision::{PortWhy, ServiceWhy};
use crate::endpoints::{Located, backends, protocol};
use crate::labels::LBPOOL_LABEL;
use crate::objects::{Service, ServicePort, ServiceSpec};
use crate::policy::{IpFamilyPolicy, SpecError, TrafficPolicy};
use crate::slice_backends::SliceBackends;

/// Legacy annotation read when `spec.loadBalancerSourceRanges` is empty.
pub const SOURCE_RANGES_ANNOTATION: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";

/// One port of the Service and its usable backends.
pub(super) struct PortPlan {
    /// The port's name, or its number when it has none.
    pub label: String,
    pub protocol: Protocol,
    pub port: u16,
    pub backends: Vec<Located>,
}

/// A Service whose spec we could read.
pub(super) struct Plan {
    /// In `spec.ipFamilies` order; narrowed later to the families pool mode serves.
    pub families: Vec<Family>,
    pub policy: IpFamilyPolicy,
    /// `externalTrafficPolicy: Local`.
    pub local: bool,
    /// Normalized, sorted, deduplicated; both "everything" ranges when the spec has none.
    pub source_ranges: Vec<IpNet>,
    /// Sorted by label.
    pub ports: Vec<PortPlan>,
    /// The K3s `lbpool` the Service is restricted to.
    pub pool: Option<String>,
    pub notes: Vec<String>,
}

/// The plan for `service`, whose EndpointSlices are `slices`.
pub(super) fn plan(service: &Service, slices: &[&SliceBackends]) -> Result<Plan, SpecError> {
    let spec = &service.spec;
    let mut notes = Vec::new();
    let policy = IpFamilyPolicy::from_spec(spec.ip_family_policy.as_deref())?;
    let traffic = TrafficPolicy::from_spec(spec.external_traffic_policy.as_deref())?;
    let families = families(spec, policy, &mut notes)?;
    let source_ranges = source_ranges(service, &families, &mut notes)?;
    if spec.ports.is_empty() {
        return Err(SpecError::NoPorts);
    }
    let mut ports = spec
        .ports
        .iter()
        .map(|port| port_plan(port, slices))
        .collect::<Result<Vec<_>, _>>()?;
    // A collect through `Result` cannot size the vector up front: it starts at 4 entries.
    ports.shrink_to_fit();
    ports.sort_by(|a, b| a.label.cmp(&b.label));

    Ok(Plan {
        families,
        policy,
        local: traffic == TrafficPolicy::Local,
        source_ranges,
        ports,
        pool: service
            .metadata
            .labels
            .get(LBPOOL_LABEL)
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        notes,
    })
}

fn family_of_k8s(name: &str) -> Option<Family> {
    Family::BOTH.into_iter().find(|f| f.k8s_name() == name)
}

/// `spec.ipFamilies` (or the families of `spec.clusterIPs`), only the first for
/// `SingleStack`.
fn families(
    spec: &ServiceSpec,
    policy: IpFamilyPolicy,
    notes: &mut Vec<String>,
) -> Result<Vec<Family>, SpecError> {
    let mut families: Vec<Family> = Vec::new();
    for name in &spec.ip_families {
        match family_of_k8s(name) {
            Some(f) if !families.contains(&f) => families.push(f),
            Some(_) => {}
            None => notes.push(format!(
                "spec.ipFamilies entry {name:?} is not IPv4 or IPv6"
            )),
        }
    }
    if families.is_empty() {
        for ip in &spec.cluster_ips {
            if let Ok(ip) = ip.parse::<IpAddr>()
                && !families.contains(&Family::of(ip))
            {
                families.push(Family::of(ip));
            }
        }
        if !families.is_empty() {
            notes.push("spec.ipFamilies is empty: using the families of spec.clusterIPs".into());
        }
    }
    if families.is_empty() {
        return Err(SpecError::NoFamilies);
    }
    if policy == IpFamilyPolicy::SingleStack && families.len() > 1 {
        notes.push(format!(
            "ipFamilyPolicy SingleStack: only {} is served",
            families[0].k8s_name()
        ));
        families.truncate(1);
    }
    Ok(families)
}

/// `spec.loadBalancerSourceRanges` (or the legacy annotation), normalized; a range that does
/// not parse fails the whole Service.
fn source_ranges(
    service: &Service,
    families: &[Family],
    notes: &mut Vec<String>,
) -> Result<Vec<IpNet>, SpecError> {
    let mut range_texts: Vec<String> = service
        .spec
        .load_balancer_source_ranges
        .iter()
        .map(|r| r.to_string())
        .collect();
    if range_texts.is_empty()
        && let Some(annotation) = service.metadata.annotations.get(SOURCE_RANGES_ANNOTATION)
    {
        range_texts = annotation
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect();
    }
    let mut source_ranges = Vec::new();
    for text in &range_texts {
        let net: IpNet = text
            .trim()
            .parse()
            .map_err(|_| SpecError::SourceRange(text.to_string()))?;
        source_ranges.push(net.trunc());
    }
    if source_ranges.is_empty() {
        source_ranges = vec![IpNet::V4(Default::default()), IpNet::V6(Default::default())];
    } else {
        for family in families {
            if !source_ranges.iter().any(|r| Family::of_net(*r) == *family) {
                notes.push(format!(
                    "loadBalancerSourceRanges has no {} range: every {} client is refused",
                    family.k8s_name(),
                    family.k8s_name()
                ));
            }
        }
    }
    source_ranges.sort();
    source_ranges.dedup();
    Ok(source_ranges)
}

/// One port: its protocol, label and backends.
fn port_plan(port: &ServicePort, slices: &[&SliceBackends]) -> Result<PortPlan, SpecError> {
    let proto = protocol(port.protocol.as_deref()).ok_or_else(|| SpecError::Protocol {
        port: port.port,
        protocol: port.protocol.as_deref().unwrap_or_default().to_string(),
    })?;
    let label = match port.name.as_deref() {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => port.port.to_string(),
    };
    Ok(PortPlan {
        label,
        protocol: proto,
        port: port.port,
        backends: backends(port, proto, slices),
    })
}

/// The explanation of `service` before its spec is read: class, age and policies.
pub(super) fn initial_why(service: &Service) -> ServiceWhy {
    ServiceWhy {
        load_balancer_class: service
            .spec
            .load_balancer_class
            .as_deref()
            .map(str::to_string),
        created: service.metadata.creation_timestamp,
        families: Vec::new(),
        // An unknown value is an InvalidSpec condition (from `plan`); shown as the default.
        ip_family_policy: IpFamilyPolicy::from_spec(service.spec.ip_family_policy.as_deref())
            .unwrap_or_default(),
        external_traffic_policy: TrafficPolicy::from_spec(
            service.spec.external_traffic_policy.as_deref(),
        )
        .unwrap_or_default(),
        source_ranges: Vec::new(),
        pool: None,
        ports: Vec::new(),
        nodes: Vec::new(),
        notes: Vec::new(),
        prefix_addresses: Vec::new(),
    }
}

/// Adds what the plan says to the explanation: families, ranges, pool, ports (with their
/// ready backends per family) and notes on ports nobody answers.
pub(super) fn explain_plan(plan: &Plan, why: &mut ServiceWhy) {
    why.families = plan.families.clone();
    why.source_ranges = plan.source_ranges.clone();
    why.pool = plan.pool.clone();
    why.notes = plan.notes.clone();
    why.ports.reserve_exact(plan.ports.len());
    for port in &plan.ports {
        let count = |f: Family| {
            port.backends
                .iter()
                .filter(|b| b.backend.family() == f)
                .count()
        };
        why.ports.push(PortWhy {
            name: port.label.clone(),
            protocol: port.protocol,
            port: port.port,
            ready_ipv4: count(Family::V4),
            ready_ipv6: count(Family::V6),
        });
        if port.backends.is_empty() {
            why.notes.push(format!(
                "port {} ({}/{}) has no ready endpoint: connections to it fail",
                port.label, port.port, port.protocol
            ));
        }
    }
    if plan.local
        && plan
            .ports
            .iter()
            .any(|p| p.backends.iter().any(|b| b.node.is_none()))
    {
        why.notes.push(
            "externalTrafficPolicy Local: endpoints without nodeName are on no node and are not used"
                .into(),
        );
    }
}
