//! The decision function: a snapshot and a configuration in, a [`Decision`] out.
//!
//! The rules are stated in plain words in the crate documentation; this module implements
//! them in that order: ownership, families, per-node verdicts, port conflicts (oldest Service
//! first), then status, conditions and frontends.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use dualstack_addr::Family;
use dualstack_ruleset::{Destination, Frontend, Protocol, Selection};
use ipnet::IpNet;

use crate::allocate::{Allocation, allocate};
use crate::conditions::{Condition, ConditionType, Reason, events_for};
use crate::config::{Config, Mode};
use crate::decision::{
    Conflict, Decision, DropReason, IgnoredService, Ingress, NodeFrontends, NodeVerdict, PortWhy,
    ServiceDecision, ServiceWhy,
};
use crate::endpoints::{Located, SERVICE_NAME_LABEL, backends, protocol};
use crate::nodes::{LBPOOL_LABEL, NodeFacts, allow_list_mode, node_facts};
use crate::objects::{EndpointSlice, Service};
use crate::policy::{IpFamilyPolicy, SpecError, TrafficPolicy};
use crate::pool::Pool;
use crate::pool_mode;
use crate::prefix_pool::{self, PrefixView};
use crate::service_key::ServiceKey;
use crate::snapshot::Snapshot;
use crate::time::Timestamp;

/// Legacy annotation read when `spec.loadBalancerSourceRanges` is empty.
pub const SOURCE_RANGES_ANNOTATION: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";

/// At most this many items are listed in a condition message.
const MESSAGE_ITEMS: usize = 5;

/// Whether we own a Service; `Err` says why not (for explanations).
pub fn ownership(service: &Service, config: &Config) -> Result<(), String> {
    let type_ = service.spec.type_.as_deref().unwrap_or("ClusterIP");
    if type_ != "LoadBalancer" {
        return Err(format!("type {type_} is not LoadBalancer"));
    }
    match service.spec.load_balancer_class.as_deref() {
        Some(class) if class == config.class => Ok(()),
        Some(class) => Err(format!(
            "loadBalancerClass {class:?} is not ours ({:?})",
            config.class
        )),
        None if config.default_class => Ok(()),
        None => Err(format!(
            "no loadBalancerClass and we are not the default class (ours is {:?})",
            config.class
        )),
    }
}

/// Decides status, conditions, Events and per-node frontends for every Service we own.
/// Pure: `now` decides which agent Leases have expired.
pub fn decide(snapshot: &Snapshot, config: &Config, now: Timestamp) -> Decision {
    let leases: Vec<_> = snapshot.leases.iter().collect();
    let mut nodes: Vec<NodeFacts> = snapshot
        .nodes
        .iter()
        .map(|n| node_facts(n, &leases, config, now))
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let allow_list = allow_list_mode(&nodes);

    let mut slices: BTreeMap<(&str, &str), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in &snapshot.endpoint_slices {
        if let Some(service) = slice.metadata.labels.get(SERVICE_NAME_LABEL) {
            slices
                .entry((slice.metadata.namespace.as_str(), service.as_str()))
                .or_default()
                .push(slice);
        }
    }
    // Same input in any order: slices sorted by name before use.
    for list in slices.values_mut() {
        list.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    }

    let mut owned = Vec::new();
    let mut ignored = Vec::new();
    for service in &snapshot.services {
        match ownership(service, config) {
            Ok(()) => owned.push(service),
            Err(reason) if service.spec.type_.as_deref() == Some("LoadBalancer") => {
                ignored.push(IgnoredService {
                    namespace: service.metadata.namespace.clone(),
                    name: service.metadata.name.clone(),
                    reason,
                });
            }
            Err(_) => {}
        }
    }
    // Oldest first: an older Service keeps a contested address + protocol + port.
    owned.sort_by(|a, b| priority(a).cmp(&priority(b)));
    let plans: Vec<Result<Plan, SpecError>> = owned
        .iter()
        .map(|s| {
            let key = (s.metadata.namespace.as_str(), s.metadata.name.as_str());
            plan(s, slices.get(&key).map(Vec::as_slice).unwrap_or_default())
        })
        .collect();

    // Pool mode: allocation over every owned Service at once (no pool: nothing changes).
    let mut pools: Vec<Pool> = snapshot.pools.iter().map(Pool::from_object).collect();
    pools.sort_by(|a, b| a.name.cmp(&b.name));
    let labels: BTreeMap<&str, &BTreeMap<String, String>> = snapshot
        .nodes
        .iter()
        .map(|n| (n.metadata.name.as_str(), &n.metadata.labels))
        .collect();
    // Pools that follow the nodes' IPv6 prefix: what their nodes report now.
    let views: BTreeMap<String, PrefixView> = pools
        .iter()
        .filter(|p| p.usable())
        .filter_map(|p| {
            let follow = p.follows()?;
            Some((
                p.name.clone(),
                prefix_pool::view(p, follow, &nodes, &labels, now),
            ))
        })
        .collect();
    let mut allocations: Vec<Option<Allocation>> = vec![None; owned.len()];
    let mut statuses: Vec<Vec<IpAddr>> = vec![Vec::new(); owned.len()];
    if !pools.is_empty() {
        let mut requests = Vec::new();
        let mut index = Vec::new();
        for (i, (service, plan)) in owned.iter().zip(&plans).enumerate() {
            let Ok(plan) = plan else { continue };
            let ports = plan.ports.iter().map(|p| (p.protocol, p.port)).collect();
            let request = pool_mode::request(service, &plan.families, ports, plan.local);
            if request.uses_pools(&pools) {
                requests.push(request);
                index.push(i);
            }
        }
        for ((i, mut allocation), request) in index
            .into_iter()
            .zip(allocate(&requests, &pools))
            .zip(&requests)
        {
            if !views.is_empty() {
                prefix_pool::expand(&mut allocation, &pools, &views);
                statuses[i] = request.status.clone();
            }
            allocations[i] = Some(allocation);
        }
    }
    let pool_context = PoolContext {
        pools: &pools,
        labels: &labels,
    };

    let mut claims: BTreeMap<(IpAddr, Protocol, u16), ServiceKey> = BTreeMap::new();
    let mut frontends: BTreeMap<String, Vec<Frontend>> =
        nodes.iter().map(|n| (n.name.clone(), Vec::new())).collect();
    let mut services = Vec::new();
    let mut pool_programmed = Vec::new();
    for ((service, plan), allocation) in owned.into_iter().zip(plans).zip(&allocations) {
        let pool_mode = allocation.as_ref().map(|a| (a, &pool_context));
        let (decision, programmed) = decide_service(
            service,
            plan,
            pool_mode,
            &nodes,
            allow_list,
            config,
            &mut claims,
        );
        if allocation.is_some() {
            pool_programmed.push(programmed.clone());
        }
        if config.mode == Mode::Nftables {
            for (node, frontend) in programmed {
                frontends.entry(node).or_default().push(frontend);
            }
        }
        services.push(decision);
    }
    let served: Vec<pool_mode::Served> = services
        .iter()
        .zip(&allocations)
        .filter_map(|(decision, allocation)| allocation.as_ref().map(|a| (decision, a)))
        .zip(pool_programmed)
        .map(|((decision, allocation), programmed)| pool_mode::Served {
            allocation,
            decision,
            programmed,
        })
        .collect();
    let (pool_addresses, announcements, pool_reports) =
        pool_mode::finish(served, &pools, &nodes, &views);
    pool_mode::label_verdicts(&mut services, &pool_addresses);
    if !views.is_empty() {
        for ((service, allocation), status) in services.iter_mut().zip(&allocations).zip(&statuses)
        {
            if let Some(allocation) = allocation {
                pool_mode::prefix_outcome(service, allocation, status, &pools, &views);
            }
        }
    }
    let next_change = views.values().filter_map(|v| v.next_change).min();

    services.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    ignored.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let nodes = frontends
        .into_iter()
        .map(|(name, mut frontends)| {
            frontends.sort();
            NodeFrontends { name, frontends }
        })
        .collect();
    Decision {
        services,
        nodes,
        ignored,
        pool_addresses,
        announcements,
        pools: pool_reports,
        next_change,
    }
}

/// What pool mode needs besides the node facts.
struct PoolContext<'a> {
    pools: &'a [Pool],
    labels: &'a BTreeMap<&'a str, &'a BTreeMap<String, String>>,
}

fn priority(service: &Service) -> (bool, Option<Timestamp>, &str, &str) {
    let created = service.metadata.creation_timestamp;
    (
        created.is_none(),
        created,
        &service.metadata.namespace,
        &service.metadata.name,
    )
}

struct PortPlan {
    label: String,
    protocol: Protocol,
    port: u16,
    backends: Vec<Located>,
}

/// A Service whose spec we could read.
struct Plan {
    families: Vec<Family>,
    policy: IpFamilyPolicy,
    local: bool,
    source_ranges: Vec<IpNet>,
    ports: Vec<PortPlan>,
    pool: Option<String>,
    notes: Vec<String>,
}

fn family_of_k8s(name: &str) -> Option<Family> {
    Family::BOTH.into_iter().find(|f| f.k8s_name() == name)
}

fn plan(service: &Service, slices: &[&EndpointSlice]) -> Result<Plan, SpecError> {
    let spec = &service.spec;
    let mut notes = Vec::new();
    let policy = IpFamilyPolicy::from_spec(spec.ip_family_policy.as_deref())?;
    let traffic = TrafficPolicy::from_spec(spec.external_traffic_policy.as_deref())?;
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

    let mut range_texts: Vec<String> = spec.load_balancer_source_ranges.clone();
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
        for family in &families {
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

    if spec.ports.is_empty() {
        return Err(SpecError::NoPorts);
    }
    let mut ports = Vec::new();
    for port in &spec.ports {
        let proto = protocol(port.protocol.as_deref()).ok_or_else(|| SpecError::Protocol {
            port: port.port,
            protocol: port.protocol.clone().unwrap_or_default(),
        })?;
        let label = match port.name.as_deref() {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => port.port.to_string(),
        };
        ports.push(PortPlan {
            label,
            protocol: proto,
            port: port.port,
            backends: backends(port, proto, slices),
        });
    }
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
            .cloned(),
        notes,
    })
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    let mut text = items
        .iter()
        .take(MESSAGE_ITEMS)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > MESSAGE_ITEMS {
        text.push_str(&format!("; and {} more", items.len() - MESSAGE_ITEMS));
    }
    text
}

fn family_names(families: &[Family]) -> String {
    families
        .iter()
        .map(|f| f.k8s_name())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// A per-node candidate: the node and its addresses for this Service.
struct Candidate<'a> {
    node: &'a NodeFacts,
    addresses: Vec<IpAddr>,
    conflicts: Vec<Conflict>,
}

fn decide_service(
    service: &Service,
    plan: Result<Plan, SpecError>,
    pool_mode: Option<(&Allocation, &PoolContext)>,
    nodes: &[NodeFacts],
    allow_list: bool,
    config: &Config,
    claims: &mut BTreeMap<(IpAddr, Protocol, u16), ServiceKey>,
) -> (ServiceDecision, Vec<(String, Frontend)>) {
    let namespace = service.metadata.namespace.clone();
    let name = service.metadata.name.clone();
    let me = ServiceKey::of(service);
    let mut why = ServiceWhy {
        load_balancer_class: service.spec.load_balancer_class.clone(),
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
    };
    let finish = |why: ServiceWhy, ingress: Vec<Ingress>, ready: Condition, conflict: Condition| {
        let conditions = vec![ready, conflict];
        ServiceDecision {
            namespace: namespace.clone(),
            name: name.clone(),
            ingress,
            events: events_for(&conditions),
            conditions,
            why,
        }
    };
    let no_conflict = || {
        Condition::new(
            ConditionType::PortConflict,
            false,
            Reason::NoConflict,
            "no older Service claims the same node address, protocol and port".into(),
        )
    };

    let mut plan = match plan {
        Ok(plan) => plan,
        Err(error) => {
            let ready = Condition::new(
                ConditionType::LoadBalancerReady,
                false,
                Reason::InvalidSpec,
                error.to_string(),
            );
            return (finish(why, Vec::new(), ready, no_conflict()), Vec::new());
        }
    };
    why.families = plan.families.clone();
    why.source_ranges = plan.source_ranges.clone();
    why.pool = plan.pool.clone();
    why.notes = plan.notes.clone();
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

    // Per-node verdicts before conflicts.
    let mut verdicts: Vec<NodeVerdict> = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    for node in nodes {
        let has_local = || {
            plan.ports.iter().any(|p| {
                p.backends
                    .iter()
                    .any(|b| b.node.as_deref() == Some(node.name.as_str()))
            })
        };
        let addresses: Vec<_> = plan
            .families
            .iter()
            .filter_map(|f| node.addresses.get(f))
            .cloned()
            .collect();
        let dropped = node
            .unavailable
            .clone()
            .or_else(|| node.excluded.then_some(DropReason::ExcludedByLabel))
            .or_else(|| {
                (allow_list && node.enablelb.as_deref() != Some("true")).then(|| {
                    DropReason::NotEnabled {
                        value: node.enablelb.clone(),
                    }
                })
            })
            .or_else(|| {
                plan.pool
                    .as_ref()
                    .filter(|pool| !node.pools.contains(*pool))
                    .map(|pool| DropReason::NotInPool { pool: pool.clone() })
            })
            .or_else(|| (plan.local && !has_local()).then_some(DropReason::NoLocalEndpoint))
            .or_else(|| {
                addresses.is_empty().then(|| DropReason::NoAddress {
                    families: family_names(&plan.families),
                })
            });
        if dropped.is_none() {
            candidates.push(Candidate {
                node,
                addresses: addresses.iter().map(|a| a.ip).collect(),
                conflicts: Vec::new(),
            });
        }
        verdicts.push(NodeVerdict {
            node: node.name.clone(),
            taken: false,
            dropped,
            addresses,
            conflicts: Vec::new(),
        });
    }

    if let Some((allocation, context)) = pool_mode {
        let served = match pool_mode::verdict(allocation, &plan.families, plan.policy) {
            Ok((served, notes)) => {
                why.notes.extend(notes);
                served
            }
            Err((reason, message)) => {
                why.notes.extend(allocation.notes.iter().cloned());
                why.nodes = verdicts;
                let ready =
                    Condition::new(ConditionType::LoadBalancerReady, false, reason, message);
                return (finish(why, Vec::new(), ready, no_conflict()), Vec::new());
            }
        };
        plan.families.retain(|f| served.contains(f));
        candidates.retain_mut(|candidate| {
            let name = candidate.node.name.as_str();
            let Some(verdict) = verdicts.iter_mut().find(|v| v.node == name) else {
                return false;
            };
            let labels = context.labels.get(name).copied();
            match pool_mode::node_addresses(
                allocation,
                &served,
                context.pools,
                candidate.node,
                labels,
            ) {
                Ok(chosen) => {
                    candidate.addresses = chosen.iter().map(|a| a.ip).collect();
                    verdict.addresses = chosen;
                    true
                }
                Err(why) => {
                    verdict.dropped = Some(DropReason::CannotAnnounce { why });
                    false
                }
            }
        });
    }

    if candidates.is_empty() {
        let (reason, message) = no_candidates_message(&plan, nodes, &verdicts);
        why.nodes = verdicts;
        let ready = Condition::new(ConditionType::LoadBalancerReady, false, reason, message);
        return (finish(why, Vec::new(), ready, no_conflict()), Vec::new());
    }

    // Port conflicts: an address is kept only if every port is free there.
    for candidate in &mut candidates {
        let mut kept = Vec::new();
        for ip in &candidate.addresses {
            let lost: Vec<Conflict> = plan
                .ports
                .iter()
                .filter_map(|p| {
                    claims
                        .get(&(*ip, p.protocol, p.port))
                        .filter(|owner| **owner != me)
                        .map(|owner| Conflict {
                            ip: *ip,
                            protocol: p.protocol,
                            port: p.port,
                            winner: owner.clone(),
                        })
                })
                .collect();
            if lost.is_empty() {
                kept.push(*ip);
            } else {
                candidate.conflicts.extend(lost);
            }
        }
        candidate.addresses = kept;
    }
    let all_conflicts: Vec<(String, Conflict)> = candidates
        .iter()
        .flat_map(|c| c.conflicts.iter().map(|x| (c.node.name.clone(), x.clone())))
        .collect();
    let conflict_condition = if all_conflicts.is_empty() {
        no_conflict()
    } else {
        Condition::new(
            ConditionType::PortConflict,
            true,
            Reason::PortConflict,
            format!(
                "not served where an older Service holds the same address, protocol and port: {}",
                list(all_conflicts.iter().map(|(node, c)| format!(
                    "{}/{} on {} (node {node}) is kept by {}",
                    c.port, c.protocol, c.ip, c.winner
                )))
            ),
        )
    };

    let served: Vec<Family> = plan
        .families
        .iter()
        .copied()
        .filter(|f| {
            candidates
                .iter()
                .any(|c| c.addresses.iter().any(|a| Family::of(*a) == *f))
        })
        .collect();
    let missing_why = |family: Family| -> String {
        let lost = candidates
            .iter()
            .any(|c| c.conflicts.iter().any(|x| Family::of(x.ip) == family));
        if lost {
            format!("every {} address lost a port conflict", family.k8s_name())
        } else {
            format!(
                "no eligible node has a usable {} address ({})",
                family.k8s_name(),
                list(candidates.iter().map(|c| format!(
                    "{}: {}",
                    c.node.name,
                    c.node.missing.get(&family).cloned().unwrap_or_default()
                )))
            )
        }
    };

    let mut required_missing: Vec<String> = Vec::new();
    if plan.policy == IpFamilyPolicy::RequireDualStack {
        if plan.families.len() < 2 {
            required_missing.push(format!(
                "RequireDualStack but spec.ipFamilies lists only {}",
                plan.families[0].k8s_name()
            ));
        }
        for family in &plan.families {
            if !served.contains(family) {
                required_missing.push(format!(
                    "RequireDualStack and {} is unavailable: {}",
                    family.k8s_name(),
                    missing_why(*family)
                ));
            }
        }
    }

    let ready = if !required_missing.is_empty() {
        Some(Condition::new(
            ConditionType::LoadBalancerReady,
            false,
            Reason::FamilyUnavailable,
            format!("not served: {}", required_missing.join("; ")),
        ))
    } else if served.is_empty() {
        Some(Condition::new(
            ConditionType::LoadBalancerReady,
            false,
            Reason::PortConflict,
            "not served: every candidate address is held by an older Service on the same protocol and port".into(),
        ))
    } else {
        None
    };
    if let Some(ready) = ready {
        // Not programmed anywhere: claims nothing, publishes nothing.
        for candidate in &candidates {
            if let Some(v) = verdicts.iter_mut().find(|v| v.node == candidate.node.name) {
                v.conflicts = candidate.conflicts.clone();
                if candidate.addresses.is_empty() && !candidate.conflicts.is_empty() {
                    v.dropped = Some(DropReason::PortConflict);
                }
            }
        }
        why.nodes = verdicts;
        return (
            finish(why, Vec::new(), ready, conflict_condition),
            Vec::new(),
        );
    }

    for family in &plan.families {
        if !served.contains(family) {
            why.notes.push(format!(
                "{} not served: {}",
                family.k8s_name(),
                missing_why(*family)
            ));
        }
    }

    // Served: claim, publish, program.
    let ip_mode = config.mode.ip_mode();
    let mut programmed = Vec::new();
    let mut taken_nodes = 0usize;
    let mut by_family: BTreeMap<Family, BTreeSet<IpAddr>> = BTreeMap::new();
    for candidate in &candidates {
        let verdict = verdicts.iter_mut().find(|v| v.node == candidate.node.name);
        let Some(verdict) = verdict else { continue };
        verdict.conflicts = candidate.conflicts.clone();
        verdict
            .addresses
            .retain(|a| candidate.addresses.contains(&a.ip));
        if candidate.addresses.is_empty() {
            verdict.dropped = Some(DropReason::PortConflict);
            continue;
        }
        verdict.taken = true;
        taken_nodes += 1;
        let mut destination = candidate.addresses.clone();
        destination.sort();
        let node_families: BTreeSet<Family> = destination.iter().map(|a| Family::of(*a)).collect();
        for ip in &destination {
            by_family.entry(Family::of(*ip)).or_default().insert(*ip);
            for port in &plan.ports {
                claims.insert((*ip, port.protocol, port.port), me.clone());
            }
        }
        for port in &plan.ports {
            let backends = port
                .backends
                .iter()
                .filter(|b| !plan.local || b.node.as_deref() == Some(candidate.node.name.as_str()))
                .filter(|b| node_families.contains(&b.backend.family()))
                .map(|b| b.backend)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            programmed.push((
                candidate.node.name.clone(),
                Frontend {
                    name: format!("{me}:{}", port.label),
                    destination: Destination::Addresses(destination.clone()),
                    protocol: port.protocol,
                    port: port.port,
                    source_ranges: plan.source_ranges.clone(),
                    backends,
                    selection: Selection::Random,
                    masquerade: !plan.local,
                },
            ));
        }
    }
    let ingress: Vec<Ingress> = plan
        .families
        .iter()
        .flat_map(|f| by_family.get(f).into_iter().flatten())
        .map(|ip| Ingress { ip: *ip, ip_mode })
        .collect();
    let ready = Condition::new(
        ConditionType::LoadBalancerReady,
        true,
        Reason::Ready,
        format!(
            "served on {taken_nodes} node(s) for {} with ipMode {ip_mode}",
            served
                .iter()
                .map(|f| f.k8s_name())
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    );
    why.nodes = verdicts;
    (finish(why, ingress, ready, conflict_condition), programmed)
}

fn no_candidates_message(
    plan: &Plan,
    nodes: &[NodeFacts],
    verdicts: &[NodeVerdict],
) -> (Reason, String) {
    if nodes.is_empty() {
        return (Reason::NoEligibleNodes, "the snapshot has no nodes".into());
    }
    let reasons: Vec<&DropReason> = verdicts.iter().filter_map(|v| v.dropped.as_ref()).collect();
    let all = |f: &dyn Fn(&DropReason) -> bool| reasons.iter().all(|r| f(r));
    let listed = || {
        list(
            verdicts
                .iter()
                .filter_map(|v| v.dropped.as_ref().map(|r| format!("{}: {r}", v.node))),
        )
    };
    if all(&|r| matches!(r, DropReason::NoAddress { .. })) {
        let families = family_names(&plan.families);
        return (
            Reason::FamilyUnavailable,
            format!(
                "no eligible node has a usable {families} address ({})",
                list(nodes.iter().map(|n| format!(
                    "{}: {}",
                    n.name,
                    plan.families
                        .iter()
                        .filter_map(|f| n.missing.get(f).cloned())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            ),
        );
    }
    if plan.local
        && all(&|r| {
            matches!(
                r,
                DropReason::NoLocalEndpoint | DropReason::NoAddress { .. }
            )
        })
    {
        let eligible: Vec<String> = verdicts
            .iter()
            .filter(|v| v.dropped == Some(DropReason::NoLocalEndpoint))
            .map(|v| v.node.clone())
            .collect();
        return (
            Reason::NoLocalEndpoints,
            format!(
                "externalTrafficPolicy is Local and no eligible node ({}) has a ready endpoint",
                eligible.join(", ")
            ),
        );
    }
    if all(&|r| matches!(r, DropReason::ExcludedByLabel)) {
        return (
            Reason::NoEligibleNodes,
            format!(
                "no eligible node: all {} node(s) carry label {} ({})",
                nodes.len(),
                crate::nodes::EXCLUDE_LABEL,
                nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    (
        Reason::NoEligibleNodes,
        format!("no eligible node: {}", listed()),
    )
}
