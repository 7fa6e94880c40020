//! What each node of a realistic cluster dump programs, as the agent reports it (pure: the
//! decision, the node's ruleset and the report text; no kernel).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dualstack_agent::{FullReason, SyncKind, SyncReport, node_ruleset, why_nothing};
use dualstack_lb::{Config, Snapshot};

fn fixture(name: &str) -> Snapshot {
    let path = format!(
        "{}/../dualstack-lb/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    Snapshot::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn reports(snapshot: &Snapshot, config: &Config, now: &str) -> String {
    let decision = dualstack_lb::decide(snapshot, config, now.parse().unwrap());
    let mut out = String::new();
    for node in &decision.nodes {
        let ruleset = node_ruleset(&decision, &node.name, "dualstack");
        dualstack_ruleset::validate(&ruleset).unwrap();
        let report = SyncReport {
            node: node.name.clone(),
            table: ruleset.table.clone(),
            kind: SyncKind::Full(FullReason::FirstSync),
            frontends: ruleset.frontends,
            idle: why_nothing(&decision, &node.name),
            excluded: Vec::new(),
        };
        out.push_str(&report.to_string());
    }
    out
}

#[test]
fn three_nodes_with_an_etp_local_service() {
    let text = reports(
        &fixture("three-nodes-etp-local.json"),
        &Config::default(),
        "2025-04-10T10:00:00Z",
    );
    insta::assert_snapshot!(text);
}

#[test]
fn k3s_single_node_with_traefik_as_default_class() {
    let config = Config {
        default_class: true,
        ..Config::default()
    };
    let text = reports(
        &fixture("k3s-single-node-traefik.yaml"),
        &config,
        "2025-03-02T10:02:30Z",
    );
    insta::assert_snapshot!(text);
}

/// `sync_owned` (the offline agent: decides with `decide_for_agent`, drops the snapshot and
/// the decision before applying) gives what `sync` gives, report (with why a node programs
/// nothing) and wanted ruleset alike, on every node of every decision fixture.
#[test]
fn sync_owned_is_sync() {
    use dualstack_agent::Syncer;
    use dualstack_dataplane::fake::Fake;
    let dir = format!(
        "{}/../dualstack-lb/tests/fixtures",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 7, "{names:?}");
    for name in &names {
        let snapshot = fixture(name);
        for (default_class, now) in [
            (false, "2025-04-10T10:00:00Z"),
            (true, "2025-04-10T10:00:00Z"),
            (true, "2025-03-02T10:02:30Z"),
        ] {
            let config = Config {
                default_class,
                ..Config::default()
            };
            let now = now.parse().unwrap();
            for node in &dualstack_lb::decide(&snapshot, &config, now).nodes {
                let plane = || Fake::new("dualstack", std::iter::empty());
                let mut by_ref = Syncer::new(plane(), node.name.clone());
                let mut owned = Syncer::new(plane(), node.name.clone());
                let a = by_ref.sync(&snapshot, &config, now).unwrap();
                let b = owned.sync_owned(snapshot.clone(), &config, now).unwrap();
                assert_eq!(a, b, "{name}, node {}", node.name);
                assert_eq!(
                    by_ref.wanted(),
                    owned.wanted(),
                    "{name}, node {}",
                    node.name
                );
                assert_eq!(by_ref.next_change(), owned.next_change());
            }
        }
    }
}
