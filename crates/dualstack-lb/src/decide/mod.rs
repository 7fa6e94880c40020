//! The decision function: a snapshot and a configuration in, a [`Decision`] out.
//!
//! The rules are stated in plain words in the crate documentation. This module owns the
//! order: ownership, then every owned Service oldest first (so an older Service keeps a
//! contested address + protocol + port), pool allocation over all of them at once, and
//! finally the pool records and the sorted output. Each Service goes through the stages in
//! turn:
//!
//! 1. [`spec`]: the [`Plan`](spec::Plan) read from the Service's spec (families, ports,
//!    source ranges), or `InvalidSpec`;
//! 2. [`selection`]: the verdict on every node and the candidates left (pool addresses in
//!    pool mode);
//! 3. [`conflicts`]: addresses lost to older Services, and the `PortConflict` condition;
//! 4. [`status`]: families served, `LoadBalancerReady`, ingress and frontends.
//!
//! [`messages`] holds the human text the stages share.

mod conflicts;
mod messages;
mod selection;
mod spec;
mod status;

use std::collections::BTreeMap;
use std::net::IpAddr;

use dualstack_ruleset::Frontend;

use crate::allocate::{Allocation, allocate};
use crate::announce::{Announcement, PoolAddress, PoolReport};
use crate::conditions::{Condition, ConditionType, Reason};
use crate::config::{Config, Mode};
use crate::decision::{Decision, IgnoredService, NodeFrontends, ServiceDecision};
use crate::label_map::LabelMap;
use crate::nodes::{NodeFacts, allow_list_mode, node_facts};
use crate::objects::Service;
use crate::policy::SpecError;
use crate::pool::Pool;
use crate::pool_mode;
use crate::prefix_pool::{self, PrefixView};
use crate::service_key::ServiceKey;
use crate::slice_backends::SliceBackends;
use crate::snapshot::Snapshot;
use crate::time::Timestamp;

use conflicts::Claims;
use spec::Plan;
pub use spec::SOURCE_RANGES_ANNOTATION;

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

/// Node labels by node name.
type Labels<'a> = BTreeMap<&'a str, &'a LabelMap>;

/// What pool mode needs besides the node facts.
struct PoolContext<'a> {
    pools: &'a [Pool],
    labels: &'a Labels<'a>,
}

/// Decides status, conditions, Events and per-node frontends for every Service we own.
/// Pure: `now` decides which agent Leases have expired.
pub fn decide(snapshot: &Snapshot, config: &Config, now: Timestamp) -> Decision {
    let slices = Slices::Borrowed(&snapshot.endpoint_slices);
    let services = Slices::Borrowed(&snapshot.services);
    decide_with(snapshot, slices, services, Detail::Full, config, now)
}

/// [`decide`] for a snapshot nobody needs afterwards (the offline agent): its
/// EndpointSlices — half of a large dump's objects — are dropped as soon as every Service's
/// backends are read from them, before the Services are decided, and the rest of the
/// snapshot when the decision is made. The same decision as [`decide`] for a snapshot whose
/// Services have distinct namespaces and names, as every snapshot read from a dump or built
/// from the API's stores has (a second Service of the same name would find the first one's
/// slices already emptied).
pub fn decide_owned(mut snapshot: Snapshot, config: &Config, now: Timestamp) -> Decision {
    let slices = Slices::Owned(std::mem::take(&mut snapshot.endpoint_slices));
    let services = Slices::Owned(std::mem::take(&mut snapshot.services));
    decide_with(&snapshot, slices, services, Detail::Full, config, now)
}

/// [`decide_owned`] for the agent of `node`, which reads of a decision only its own node's
/// frontends, the pool ranges and announcements, [`Decision::next_change`] and — only when
/// the node programs nothing, to say why — each Service's `LoadBalancerReady` condition and
/// its verdict on this node (taken, or why not). Those are exactly [`decide`]'s. The rest is
/// not kept: the frontends of other nodes; of a Service in node mode, its whole decision as
/// soon as this node has a frontend (before that, everything but the condition and this
/// node's verdict: ingress, Events, ports, ranges, notes, the addresses and conflicts behind
/// the verdict). So 10,000 Services do not hold their explanations at once, and once read, a
/// node-mode Service keeps only the few fields its decision still reads. Pool-mode Services
/// keep everything (their pool records are built from it).
pub fn decide_for_agent(
    mut snapshot: Snapshot,
    config: &Config,
    now: Timestamp,
    node: &str,
) -> Decision {
    let slices = Slices::Owned(std::mem::take(&mut snapshot.endpoint_slices));
    let services = Slices::Owned(std::mem::take(&mut snapshot.services));
    decide_with(
        &snapshot,
        slices,
        services,
        Detail::Agent(node),
        config,
        now,
    )
}

/// How much of each Service's explanation a decision keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Detail<'n> {
    /// Everything ([`decide`]).
    Full,
    /// What the agent of this node reads ([`decide_for_agent`]).
    Agent(&'n str),
}

/// The snapshot's EndpointSlices or Services, borrowed or handed over (then dropped, or
/// thinned, once read).
enum Slices<'a, T> {
    Borrowed(&'a [T]),
    Owned(Vec<T>),
}

impl<T> Slices<'_, T> {
    fn as_slice(&self) -> &[T] {
        match self {
            Slices::Borrowed(slices) => slices,
            Slices::Owned(slices) => slices,
        }
    }
}

/// [`decide`], with the EndpointSlices and Services passed apart from the rest of the
/// snapshot (whose own `endpoint_slices` and `services` are not read).
fn decide_with(
    snapshot: &Snapshot,
    endpoint_slices: Slices<'_, SliceBackends>,
    mut services_in: Slices<'_, Service>,
    detail: Detail<'_>,
    config: &Config,
    now: Timestamp,
) -> Decision {
    let leases: Vec<_> = snapshot.leases.iter().collect();
    let mut nodes: Vec<NodeFacts> = snapshot
        .nodes
        .iter()
        .map(|n| node_facts(n, &leases, config, now))
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let allow_list = allow_list_mode(&nodes);

    // The owned Services, by index into `services_in`.
    let (mut order, mut ignored) = owned_services(services_in.as_slice(), config);
    // Oldest first: an older Service keeps a contested address + protocol + port.
    {
        let all = services_in.as_slice();
        order.sort_by(|a, b| priority(&all[*a]).cmp(&priority(&all[*b])));
    }
    let plans = plan_all(services_in.as_slice(), &order, endpoint_slices);

    // Pool mode: allocation over every owned Service at once (no pool: nothing changes).
    let mut pools: Vec<Pool> = snapshot.pools.iter().map(Pool::from_object).collect();
    pools.sort_by(|a, b| a.name.cmp(&b.name));
    let labels: Labels<'_> = snapshot
        .nodes
        .iter()
        .map(|n| (n.metadata.name.as_str(), &n.metadata.labels))
        .collect();
    let views = prefix_views(&pools, &nodes, &labels, now);
    let (allocations, statuses) = {
        let all = services_in.as_slice();
        let owned: Vec<&Service> = order.iter().map(|&i| &all[i]).collect();
        allocate_pools(&owned, &plans, &pools, &views)
    };
    if let (Detail::Agent(_), Slices::Owned(all)) = (detail, &mut services_in) {
        for (&i, allocation) in order.iter().zip(&allocations) {
            if allocation.is_none() {
                thin_for_agent(&mut all[i]);
            }
        }
    }
    let all = services_in.as_slice();
    let owned: Vec<&Service> = order.iter().map(|&i| &all[i]).collect();
    let pool_context = PoolContext {
        pools: &pools,
        labels: &labels,
    };

    let inputs = Inputs {
        detail,
        nodes: &nodes,
        allow_list,
        config,
        pools: &pool_context,
    };
    let decided = decide_in_order(owned, plans, &allocations, &inputs);
    let (mut services, frontends) = (decided.services, decided.frontends);
    let (pool_addresses, announcements, pool_reports) = finish_pools(
        &mut services,
        &kept(&decided.kept, &allocations),
        decided.pool_programmed,
        &kept(&decided.kept, &statuses),
        &PoolsSeen {
            pools: &pools,
            nodes: &nodes,
            views: &views,
        },
    );
    services.extend(decided.idle);
    let next_change = views.values().filter_map(|v| v.next_change).min();

    services.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    ignored.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let nodes = frontends
        .into_iter()
        .map(|(name, mut frontends)| {
            frontends.sort();
            frontends.shrink_to_fit();
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

/// What every Service is decided against.
struct Inputs<'a> {
    detail: Detail<'a>,
    nodes: &'a [NodeFacts],
    allow_list: bool,
    config: &'a Config,
    pools: &'a PoolContext<'a>,
}

/// The frontends of every node, by node name.
type NodeMap = BTreeMap<String, Vec<Frontend>>;

/// What one Service programs: `(node, frontend)`.
type Programmed = Vec<(String, Frontend)>;

/// The items of `all` at the indexes `kept`.
fn kept<'a, T>(kept: &[usize], all: &'a [T]) -> Vec<&'a T> {
    kept.iter().map(|&i| &all[i]).collect()
}

/// What [`decide_in_order`] decided.
struct Decided {
    /// The decisions kept, in the order of the owned Services: all of them, except for an
    /// agent, which keeps here only those of pool-mode Services.
    services: Vec<ServiceDecision>,
    /// For each of `services`, its index among the owned Services.
    kept: Vec<usize>,
    /// An agent's node-mode decisions, trimmed: kept only while its node has no frontend
    /// (they say why it programs nothing).
    idle: Vec<ServiceDecision>,
    /// The frontends per node: every node listed (an agent's only), none in `kube-proxy`
    /// mode.
    frontends: NodeMap,
    /// What each pool-mode Service programs, in order.
    pool_programmed: Vec<Programmed>,
}

/// Decides the owned Services in order (oldest first: the claims of each constrain the
/// next).
fn decide_in_order(
    owned: Vec<&Service>,
    plans: Vec<Result<Plan, SpecError>>,
    allocations: &[Option<Allocation>],
    inputs: &Inputs<'_>,
) -> Decided {
    let agent = match inputs.detail {
        Detail::Agent(node) => Some(node),
        Detail::Full => None,
    };
    let mut claims = Claims::new();
    let mut frontends: NodeMap = inputs
        .nodes
        .iter()
        .filter(|n| agent.is_none_or(|node| n.name == node))
        .map(|n| (n.name.clone(), Vec::new()))
        .collect();
    let mut decided = Decided {
        services: Vec::with_capacity(if agent.is_some() { 0 } else { owned.len() }),
        kept: Vec::new(),
        idle: Vec::new(),
        frontends: NodeMap::new(),
        pool_programmed: Vec::new(),
    };
    // An agent's node has a frontend: why it programs nothing is no longer asked.
    let mut serving = false;
    let items = owned.into_iter().zip(plans).zip(allocations).enumerate();
    for (i, ((service, plan), allocation)) in items {
        let pool_mode = allocation.as_ref().map(|a| (a, inputs.pools));
        let (mut decision, programmed) =
            decide_service(service, plan, pool_mode, inputs, &mut claims);
        if allocation.is_some() {
            decided.pool_programmed.push(programmed.clone());
        }
        if inputs.config.mode == Mode::Nftables {
            for (node, frontend) in programmed {
                if agent.is_none_or(|mine| node == mine) {
                    frontends.entry(node).or_default().push(frontend);
                }
            }
        }
        match agent {
            Some(node) if allocation.is_none() => {
                serving = serving || frontends.get(node).is_some_and(|f| !f.is_empty());
                if serving {
                    decided.idle = Vec::new();
                } else {
                    trim_for_agent(&mut decision, node);
                    decided.idle.push(decision);
                }
            }
            _ => {
                decided.services.push(decision);
                decided.kept.push(i);
            }
        }
    }
    decided.frontends = frontends;
    decided
}

/// Drops what a node-mode Service's decision no longer reads once its plan is made and the
/// pools are allocated ([`decide_for_agent`]): it keeps the name, namespace and creation
/// time, and the spec fields its explanation starts from (type, class, policies).
fn thin_for_agent(service: &mut Service) {
    let meta = &mut service.metadata;
    meta.labels = LabelMap::new();
    meta.annotations = BTreeMap::new();
    let spec = &mut service.spec;
    spec.ip_families = Vec::new();
    spec.cluster_ips = Vec::new();
    spec.ports = Vec::new();
    spec.load_balancer_source_ranges = Vec::new();
    spec.allocate_load_balancer_node_ports = None;
    service.status = Default::default();
}

/// Drops what the agent of `node` never reads of a node-mode Service's decision
/// ([`decide_for_agent`]): it keeps the `LoadBalancerReady` condition and the verdict on
/// `node` (its node, `taken` and `dropped`).
fn trim_for_agent(decision: &mut ServiceDecision, node: &str) {
    decision.ingress = Vec::new();
    decision.events = Vec::new();
    decision
        .conditions
        .retain(|c| c.type_ == ConditionType::LoadBalancerReady);
    decision.conditions.shrink_to_fit();
    let why = &mut decision.why;
    why.load_balancer_class = None;
    why.families = Vec::new();
    why.source_ranges = Vec::new();
    why.pool = None;
    why.ports = Vec::new();
    why.notes = Vec::new();
    why.prefix_addresses = Vec::new();
    why.nodes.retain(|v| v.node == node);
    why.nodes.shrink_to_fit();
    for verdict in &mut why.nodes {
        verdict.addresses = Vec::new();
        verdict.conflicts = Vec::new();
    }
}

/// The plan of every Service in `order` (indexes into `services`), read with its
/// EndpointSlices, in `order`. Borrowed, the slices are found through a sorted index.
/// Handed over, they are consumed: see [`plan_consuming`]. Each Service's `namespace/name`
/// must be unique (see [`decide_owned`]).
fn plan_all(
    services: &[Service],
    order: &[usize],
    endpoint_slices: Slices<'_, SliceBackends>,
) -> Vec<Result<Plan, SpecError>> {
    let all = match endpoint_slices {
        Slices::Owned(slices) => return plan_consuming(services, order, slices),
        Slices::Borrowed(all) => all,
    };
    let index = slices_by_service(all);
    let mut plans = Vec::with_capacity(order.len());
    for service in order.iter().map(|&i| &services[i]) {
        let key = key_of(service);
        let start = index.partition_point(|&i| service_of(&all[i]) < key);
        let end = start + index[start..].partition_point(|&i| service_of(&all[i]) == key);
        let mine: Vec<&SliceBackends> = index[start..end].iter().map(|&i| &all[i]).collect();
        plans.push(spec::plan(service, &mine));
    }
    plans
}

/// How many slices' worth of spare capacity [`plan_consuming`] lets build up before it gives
/// the memory back (about 100 KB: each shrink is a `realloc` that may copy what is left).
const SLICES_FREED_AT_ONCE: usize = 512;

/// [`plan_all`] for slices handed over: sorted by their Service in place, then the Services
/// are planned from the last key to the first, each taking its run of slices off the end of
/// the vector — so every slice is dropped right after its Service is planned, and the
/// vector's memory is given back as it empties. The slices of Services we do not own go as
/// the walk passes them. At 10,000 Services the slices (half of a dump's objects) and the
/// plans made from them are then never all held at once. The plans come back in `order`.
fn plan_consuming(
    services: &[Service],
    order: &[usize],
    mut slices: Vec<SliceBackends>,
) -> Vec<Result<Plan, SpecError>> {
    // Unstable sort: in place, no buffer of half the slices. The order of a Service's
    // slices does not matter (backends are sorted and deduplicated).
    slices.sort_unstable_by(|a, b| service_of(a).cmp(&service_of(b)));
    let mut positions: Vec<usize> = (0..order.len()).collect();
    positions
        .sort_unstable_by(|&a, &b| key_of(&services[order[b]]).cmp(&key_of(&services[order[a]])));
    let mut planned = Vec::with_capacity(order.len());
    for position in positions {
        let service = &services[order[position]];
        let key = key_of(service);
        let mut end = slices.len();
        while end > 0 && service_of(&slices[end - 1]) > key {
            end -= 1;
        }
        let mut start = end;
        while start > 0 && service_of(&slices[start - 1]) == key {
            start -= 1;
        }
        let mine: Vec<&SliceBackends> = slices[start..end].iter().collect();
        planned.push((position, spec::plan(service, &mine)));
        slices.truncate(start);
        if slices.capacity() - slices.len() >= SLICES_FREED_AT_ONCE {
            slices.shrink_to_fit();
        }
    }
    drop(slices);
    planned.sort_unstable_by_key(|(position, _)| *position);
    planned.into_iter().map(|(_, plan)| plan).collect()
}

/// The `(namespace, name)` a Service's slices name it by.
fn key_of(service: &Service) -> Option<(&str, &str)> {
    Some((
        service.metadata.namespace.as_str(),
        service.metadata.name.as_str(),
    ))
}

/// The `(namespace, service name)` an EndpointSlice belongs to (`None`: no service label).
fn service_of(slice: &SliceBackends) -> Option<(&str, &str)> {
    Some((slice.namespace.as_str(), slice.service.as_deref()?))
}

/// The indexes of the EndpointSlices that name a Service, sorted by that Service
/// (`namespace`, then name), then by slice name: each Service's slices are one run, in
/// slice-name order (the same input in any order).
fn slices_by_service(endpoint_slices: &[SliceBackends]) -> Vec<usize> {
    let mut index: Vec<usize> = (0..endpoint_slices.len())
        .filter(|&i| service_of(&endpoint_slices[i]).is_some())
        .collect();
    index.sort_by(|&a, &b| {
        let (a, b) = (&endpoint_slices[a], &endpoint_slices[b]);
        (service_of(a), &a.name).cmp(&(service_of(b), &b.name))
    });
    index
}

/// The Services we own (their indices in `services`), and the LoadBalancer Services we do
/// not (with why).
fn owned_services(services: &[Service], config: &Config) -> (Vec<usize>, Vec<IgnoredService>) {
    let mut owned = Vec::new();
    let mut ignored = Vec::new();
    for (i, service) in services.iter().enumerate() {
        match ownership(service, config) {
            Ok(()) => owned.push(i),
            Err(reason) if service.spec.type_.as_deref() == Some("LoadBalancer") => {
                ignored.push(IgnoredService {
                    namespace: service.metadata.namespace.to_string(),
                    name: service.metadata.name.to_string(),
                    reason,
                });
            }
            Err(_) => {}
        }
    }
    (owned, ignored)
}

/// Pools that follow the nodes' IPv6 prefix: what their nodes report now.
fn prefix_views(
    pools: &[Pool],
    nodes: &[NodeFacts],
    labels: &Labels<'_>,
    now: Timestamp,
) -> BTreeMap<String, PrefixView> {
    pools
        .iter()
        .filter(|p| p.usable())
        .filter_map(|p| {
            let follow = p.follows()?;
            Some((
                p.name.clone(),
                prefix_pool::view(p, follow, nodes, labels, now),
            ))
        })
        .collect()
}

/// Per owned Service (in `owned` order): its pool allocation (`None`: node mode) and, with
/// prefix-following pools, the addresses its status publishes now.
fn allocate_pools(
    owned: &[&Service],
    plans: &[Result<Plan, SpecError>],
    pools: &[Pool],
    views: &BTreeMap<String, PrefixView>,
) -> (Vec<Option<Allocation>>, Vec<Vec<IpAddr>>) {
    let mut allocations: Vec<Option<Allocation>> = vec![None; owned.len()];
    let mut statuses: Vec<Vec<IpAddr>> = vec![Vec::new(); owned.len()];
    if pools.is_empty() {
        return (allocations, statuses);
    }
    let mut requests = Vec::new();
    let mut index = Vec::new();
    for (i, (service, plan)) in owned.iter().zip(plans).enumerate() {
        let Ok(plan) = plan else { continue };
        let ports = plan.ports.iter().map(|p| (p.protocol, p.port)).collect();
        let request = pool_mode::request(service, &plan.families, ports, plan.local);
        if request.uses_pools(pools) {
            requests.push(request);
            index.push(i);
        }
    }
    for ((i, mut allocation), request) in index
        .into_iter()
        .zip(allocate(&requests, pools))
        .zip(&requests)
    {
        if !views.is_empty() {
            prefix_pool::expand(&mut allocation, pools, views);
            statuses[i] = request.status.clone();
        }
        allocations[i] = Some(allocation);
    }
    (allocations, statuses)
}

/// The pools and what their nodes report, for [`finish_pools`].
struct PoolsSeen<'a> {
    pools: &'a [Pool],
    nodes: &'a [NodeFacts],
    views: &'a BTreeMap<String, PrefixView>,
}

/// After every Service is decided (in `owned` order, as `allocations`, `pool_programmed`
/// for the pool-mode ones and `statuses`): the pool address records, announcements and pool
/// reports, with the node verdicts and prefix outcomes of the pool-mode Services updated.
fn finish_pools(
    services: &mut [ServiceDecision],
    allocations: &[&Option<Allocation>],
    pool_programmed: Vec<Programmed>,
    statuses: &[&Vec<IpAddr>],
    seen: &PoolsSeen<'_>,
) -> (Vec<PoolAddress>, Vec<Announcement>, Vec<PoolReport>) {
    let served: Vec<pool_mode::Served> = services
        .iter()
        .zip(allocations)
        .filter_map(|(decision, allocation)| allocation.as_ref().map(|a| (decision, a)))
        .zip(pool_programmed)
        .map(|((decision, allocation), programmed)| pool_mode::Served {
            allocation,
            decision,
            programmed,
        })
        .collect();
    let (pool_addresses, announcements, pool_reports) =
        pool_mode::finish(served, seen.pools, seen.nodes, seen.views);
    pool_mode::label_verdicts(services, &pool_addresses);
    if !seen.views.is_empty() {
        for ((service, allocation), status) in services.iter_mut().zip(allocations).zip(statuses) {
            if let Some(allocation) = allocation {
                pool_mode::prefix_outcome(service, allocation, status, seen.pools, seen.views);
            }
        }
    }
    (pool_addresses, announcements, pool_reports)
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

/// One Service through the stages, in order; each early return is a Service not served
/// (no ingress, no frontends) with the condition that says why.
fn decide_service(
    service: &Service,
    plan: Result<Plan, SpecError>,
    pool_mode: Option<(&Allocation, &PoolContext)>,
    inputs: &Inputs<'_>,
    claims: &mut Claims,
) -> (ServiceDecision, Programmed) {
    let nodes = inputs.nodes;
    let me = std::rc::Rc::new(ServiceKey::of(service));
    let mut why = spec::initial_why(service);
    let not_ready = |reason: Reason, message: String| {
        Condition::new(ConditionType::LoadBalancerReady, false, reason, message)
    };
    let refused = |why, ready| {
        let decision = status::outcome(service, why, Vec::new(), ready, conflicts::no_conflict());
        (decision, Vec::new())
    };

    // 1. The spec.
    let mut plan = match plan {
        Ok(plan) => plan,
        Err(error) => return refused(why, not_ready(Reason::InvalidSpec, error.to_string())),
    };
    spec::explain_plan(&plan, &mut why);

    // 2. Node selection (pool addresses in pool mode).
    let (mut verdicts, mut candidates) = selection::candidates(&plan, nodes, inputs.allow_list);
    if let Some((allocation, context)) = pool_mode {
        match selection::pool_addresses(
            allocation,
            context,
            &mut plan,
            &mut verdicts,
            &mut candidates,
        ) {
            Ok(notes) => why.notes.extend(notes),
            Err((reason, message)) => {
                why.notes.extend(allocation.notes.iter().cloned());
                why.nodes = verdicts;
                return refused(why, not_ready(reason, message));
            }
        }
    }
    if candidates.is_empty() {
        let (reason, message) = messages::no_candidates_message(&plan, nodes, &verdicts);
        why.nodes = verdicts;
        return refused(why, not_ready(reason, message));
    }

    // 3. Port conflicts with older Services.
    conflicts::drop_lost(&mut candidates, &plan, claims, &me);
    let conflict = conflicts::condition(&candidates);

    // 4. Status: refused (claims nothing, publishes nothing) or served.
    let served = status::served_families(&plan, &candidates);
    if let Some(ready) = status::refusal(&plan, &served, &candidates) {
        status::record_refused(&mut verdicts, &candidates);
        why.nodes = verdicts;
        let decision = status::outcome(service, why, Vec::new(), ready, conflict);
        return (decision, Vec::new());
    }
    status::note_missing(&plan, &served, &candidates, &mut why);
    let out = status::serve(
        &plan,
        &served,
        &candidates,
        &mut verdicts,
        inputs.config,
        claims,
        &me,
    );
    why.nodes = verdicts;
    let decision = status::outcome(service, why, out.ingress, out.ready, conflict);
    (decision, out.programmed)
}
