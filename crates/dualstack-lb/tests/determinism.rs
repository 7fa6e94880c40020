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
            slice.endpoints = permute(&slice.endpoints, &k(4));
            slice.ports = permute(&slice.ports, &k(5));
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

/// `decide_owned` (the offline agent's: drops the EndpointSlices once read) decides what
/// `decide` decides, on every fixture, in both modes.
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

/// `decide_for_agent` keeps, exactly as `decide` decides them, everything an agent reads:
/// every node's frontends, the pool ranges and announcements, the next change, and per
/// Service its `LoadBalancerReady` condition and per-node
/// verdicts (taken, or why not).
#[test]
fn decide_for_agent_keeps_what_agents_read() {
    let now: Timestamp = "2025-04-10T10:00:00Z".parse().unwrap();
    let read = |d: &dualstack_lb::Decision| {
        let services: Vec<_> = d
            .services
            .iter()
            .map(|s| {
                let verdicts: Vec<_> = s
                    .why
                    .nodes
                    .iter()
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
            d.nodes.clone(),
            d.pool_ranges(),
            d.announcements.clone(),
            d.next_change,
            d.ignored.clone(),
            services,
        )
    };
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
            let agent = dualstack_lb::decide_for_agent(snapshot.clone(), &config, now);
            let full = decide(&snapshot, &config, now);
            assert_eq!(read(&agent), read(&full), "{name} {mode:?}");
        }
    }
}
