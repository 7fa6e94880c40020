//! The same snapshot in any object order gives byte-identical output.

// Test helpers may panic on fixtures they build themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dualstack_lb::conditions::ConditionType;
use dualstack_lb::{Config, Mode, Snapshot, Timestamp, decide, explain};
use proptest::prelude::*;

const FIXTURES: [(&str, &str); 6] = [
    (
        "pools-three-nodes.yaml",
        include_str!("fixtures/pools-three-nodes.yaml"),
    ),
    (
        "k3s-single-node-traefik.yaml",
        include_str!("fixtures/k3s-single-node-traefik.yaml"),
    ),
    (
        "three-nodes-etp-local.json",
        include_str!("fixtures/three-nodes-etp-local.json"),
    ),
    (
        "ipv6-primary.yaml",
        include_str!("fixtures/ipv6-primary.yaml"),
    ),
    (
        "ula-internal-live-global.yaml",
        include_str!("fixtures/ula-internal-live-global.yaml"),
    ),
    (
        "port-443-conflict.yaml",
        include_str!("fixtures/port-443-conflict.yaml"),
    ),
];

fn render(snapshot: &Snapshot, mode: Mode) -> String {
    let config = Config {
        default_class: true,
        mode,
        ..Config::default()
    };
    let now: Timestamp = "2025-04-10T10:00:00Z".parse().unwrap();
    let decision = decide(snapshot, &config, now);
    format!(
        "{}\n{}",
        serde_json::to_string(&decision).unwrap(),
        explain(&decision, &config, now)
    )
}

/// Reorders `items` by a list of random keys (a permutation when keys are distinct).
fn permute<T: Clone>(items: &[T], keys: &[u32]) -> Vec<T> {
    let mut indexed: Vec<(u32, usize)> = (0..items.len())
        .map(|i| (keys[i % keys.len()], i))
        .collect();
    indexed.sort();
    indexed.into_iter().map(|(_, i)| items[i].clone()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_object_order_gives_identical_output(
        fixture in 0usize..FIXTURES.len(),
        kube_proxy in any::<bool>(),
        keys in proptest::collection::vec(any::<u32>(), 8..64),
    ) {
        let (name, text) = FIXTURES[fixture];
        let mode = if kube_proxy { Mode::KubeProxy } else { Mode::Nftables };
        let original = Snapshot::parse(text).unwrap();
        let k = |offset: usize| keys.iter().cycle().skip(offset * 7).take(keys.len()).copied().collect::<Vec<u32>>();
        let mut shuffled = original.clone();
        shuffled.services = permute(&original.services, &k(0));
        shuffled.nodes = permute(&original.nodes, &k(1));
        shuffled.endpoint_slices = permute(&original.endpoint_slices, &k(2));
        shuffled.leases = permute(&original.leases, &k(3));
        shuffled.pools = permute(&original.pools, &k(6));
        for slice in &mut shuffled.endpoint_slices {
            slice.endpoints = permute(&slice.endpoints, &k(4)).into();
            slice.ports = permute(&slice.ports, &k(5)).into();
        }
        prop_assert_eq!(render(&original, mode), render(&shuffled, mode), "{}", name);
    }
}

#[test]
fn reversed_order_gives_identical_output() {
    for (name, text) in FIXTURES {
        let original = Snapshot::parse(text).unwrap();
        let mut reversed = original.clone();
        reversed.services.reverse();
        reversed.nodes.reverse();
        reversed.endpoint_slices.reverse();
        reversed.leases.reverse();
        assert_eq!(
            render(&original, Mode::Nftables),
            render(&reversed, Mode::Nftables),
            "{name}"
        );
    }
}

/// `decide_owned` (the offline agent's: consumes the EndpointSlices as it plans) decides
/// what `decide` decides, on every fixture in any object order, in both modes — also with
/// slices nobody owns mixed in: one without the service-name label, and copies of a real
/// slice renamed to name a Service that sorts before every other and one that sorts after.
#[test]
fn decide_owned_is_decide() {
    let now: Timestamp = "2025-04-10T10:00:00Z".parse().unwrap();
    for (name, text) in FIXTURES {
        let snapshot = Snapshot::parse(text).unwrap();
        for mode in [Mode::Nftables, Mode::KubeProxy] {
            let config = Config {
                default_class: true,
                mode,
                ..Config::default()
            };
            let owned = dualstack_lb::decide_owned(snapshot.clone(), &config, now);
            assert_eq!(owned, decide(&snapshot, &config, now), "{name} {mode:?}");
        }
    }
}

/// Copies of the first slice that belong to no Service of the snapshot.
fn orphan_slices(snapshot: &Snapshot) -> Vec<dualstack_lb::SliceBackends> {
    let Some(first) = snapshot.endpoint_slices.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (slice_name, service) in [
        ("orphan-a", Some("!first")),
        ("orphan-z", Some("~last")),
        ("orphan-none", None),
    ] {
        let mut slice = first.clone();
        slice.name = slice_name.into();
        slice.service = service.map(Into::into);
        out.push(slice);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn decide_owned_is_decide_in_any_order(
        fixture in 0usize..FIXTURES.len(),
        kube_proxy in any::<bool>(),
        keys in proptest::collection::vec(any::<u32>(), 8..64),
    ) {
        let (name, text) = FIXTURES[fixture];
        let mode = if kube_proxy { Mode::KubeProxy } else { Mode::Nftables };
        let config = Config { default_class: true, mode, ..Config::default() };
        let now: Timestamp = "2025-04-10T10:00:00Z".parse().unwrap();
        let mut snapshot = Snapshot::parse(text).unwrap();
        let orphans = orphan_slices(&snapshot);
        snapshot.endpoint_slices.extend(orphans);
        let k = |offset: usize| keys.iter().cycle().skip(offset * 5).take(keys.len()).copied().collect::<Vec<u32>>();
        snapshot.services = permute(&snapshot.services, &k(0));
        snapshot.endpoint_slices = permute(&snapshot.endpoint_slices, &k(1));
        let owned = dualstack_lb::decide_owned(snapshot.clone(), &config, now);
        prop_assert_eq!(owned, decide(&snapshot, &config, now), "{}", name);
    }
}

/// `decide_for_agent` keeps, exactly as `decide` decides them, everything the agent of its
/// node reads: that node's frontends, the pool ranges and announcements, the next change,
/// the ignored Services and — when the node has no frontend, to say why — per Service its
/// `LoadBalancerReady` condition and its verdict on that node (taken, or why not). Run for
/// every node of every fixture.
#[test]
fn decide_for_agent_keeps_what_agents_read() {
    let now: Timestamp = "2025-04-10T10:00:00Z".parse().unwrap();
    let read = |d: &dualstack_lb::Decision, node: &str| {
        let idle = d.frontends_for(node).is_empty();
        let services: Vec<_> = d
            .services
            .iter()
            .filter(|_| idle)
            .map(|s| {
                let verdicts: Vec<_> = s
                    .why
                    .nodes
                    .iter()
                    .filter(|v| v.node == node)
                    .map(|v| (v.node.clone(), v.taken, v.dropped.clone()))
                    .collect();
                let ready = s
                    .conditions
                    .iter()
                    .find(|c| c.type_ == ConditionType::LoadBalancerReady)
                    .cloned();
                (s.namespace.clone(), s.name.clone(), ready, verdicts)
            })
            .collect();
        (
            d.frontends_for(node).to_vec(),
            d.pool_ranges(),
            d.announcements.clone(),
            d.next_change,
            d.ignored.clone(),
            services,
        )
    };
    let mut idle_nodes = 0;
    let mut serving_nodes = 0;
    for (name, text) in FIXTURES {
        let snapshot = Snapshot::parse(text).unwrap();
        for (mode, default_class) in [
            (Mode::Nftables, true),
            (Mode::Nftables, false),
            (Mode::KubeProxy, true),
        ] {
            let config = Config {
                default_class,
                mode,
                ..Config::default()
            };
            let full = decide(&snapshot, &config, now);
            for node in &snapshot.nodes {
                let node = node.metadata.name.as_str();
                let agent = dualstack_lb::decide_for_agent(snapshot.clone(), &config, now, node);
                if full.frontends_for(node).is_empty() {
                    idle_nodes += 1;
                } else {
                    serving_nodes += 1;
                    // Node-mode decisions are gone once the node serves something (pool-mode
                    // ones stay: their pool records are built from them).
                    if snapshot.pools.is_empty() {
                        assert!(agent.services.is_empty(), "{name} {node} {mode:?}");
                    }
                }
                assert_eq!(
                    read(&agent, node),
                    read(&full, node),
                    "{name} {node} {mode:?}"
                );
            }
        }
    }
    assert!(
        idle_nodes > 0 && serving_nodes > 0,
        "{idle_nodes} {serving_nodes}"
    );
}
