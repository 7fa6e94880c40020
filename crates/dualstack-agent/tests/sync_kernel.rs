//! The sync engine against a real nft table in a throwaway namespace (root only): full,
//! unchanged, incremental, fall-back and drift repair, and `kube-proxy` mode touching nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dualstack_agent::{FullReason, SyncKind, Syncer};
use dualstack_dataplane::{Nft, Runner};
use dualstack_lb::{Config, Mode, Snapshot};
use dualstack_ruleset::{Backend, Destination, Frontend, Protocol, Selection};
use dualstack_testbed::{Netns, kernel_tests_enabled};

fn frontend(name: &str, port: u16, backends: &[&str]) -> Frontend {
    Frontend {
        name: name.to_string(),
        destination: Destination::Addresses(vec![
            "192.0.2.10".parse().unwrap(),
            "2001:db8::10".parse().unwrap(),
        ]),
        protocol: Protocol::Tcp,
        port,
        source_ranges: vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()],
        backends: backends
            .iter()
            .map(|b| Backend {
                addr: b.parse().unwrap(),
                port: 8080,
            })
            .collect(),
        selection: Selection::Random,
        masquerade: true,
    }
}

#[test]
fn full_then_unchanged_then_incremental_then_drift_repair() {
    if !kernel_tests_enabled("full_then_unchanged_then_incremental_then_drift_repair") {
        return;
    }
    let ns = Netns::new("sync").unwrap();
    let nft = Nft::new(Runner::in_netns(ns.name()), "dualstack").unwrap();
    let mut syncer = Syncer::new(nft.clone(), "node-a");
    let web = frontend("default/web:http", 80, &["10.42.0.5", "fd42::5"]);
    let api = frontend("default/api:https", 443, &["10.42.0.6", "fd42::6"]);

    let first = syncer.apply(vec![web.clone(), api.clone()]).unwrap();
    assert_eq!(first.kind, SyncKind::Full(FullReason::FirstSync));
    assert_eq!(
        (
            first.serving(dualstack_addr::Family::V4),
            first.serving(dualstack_addr::Family::V6)
        ),
        (2, 2)
    );
    assert!(nft.drift(&ruleset(&[&web, &api])).unwrap().is_empty());

    let same = syncer.apply(vec![api.clone(), web.clone()]).unwrap();
    assert_eq!(same.kind, SyncKind::Unchanged);

    // One endpoint more for web, api gone: one incremental transaction.
    let web2 = frontend(
        "default/web:http",
        80,
        &["10.42.0.5", "10.42.0.7", "fd42::5"],
    );
    let inc = syncer.apply(vec![web2.clone()]).unwrap();
    assert_eq!(
        inc.kind,
        SyncKind::Incremental {
            removed: 2,
            added: 1
        }
    );
    assert!(
        nft.drift(&ruleset(&[&web2])).unwrap().is_empty(),
        "kernel matches after incremental"
    );

    // Nothing changed in the kernel: the periodic check does nothing.
    assert_eq!(syncer.resync().unwrap().unwrap().kind, SyncKind::Unchanged);

    // Someone deletes one of our map elements: the periodic check repairs it.
    nft.run_script("delete element inet dualstack nat-addr4 { 192.0.2.10 . tcp . 80 }\n")
        .unwrap();
    assert!(!nft.drift(&ruleset(&[&web2])).unwrap().is_empty());
    let repaired = syncer.resync().unwrap().unwrap();
    assert!(
        matches!(repaired.kind, SyncKind::Full(FullReason::Drift(ref d)) if d.contains("1 elements missing")),
        "{:?}",
        repaired.kind
    );
    assert!(nft.drift(&ruleset(&[&web2])).unwrap().is_empty());

    // The table is deleted behind our back: an incremental update is refused, and the
    // engine falls back to a full transaction.
    nft.cleanup().unwrap();
    let web3 = frontend("default/web:http", 80, &["10.42.0.5", "fd42::5"]);
    let fallback = syncer.apply(vec![web3.clone()]).unwrap();
    assert!(
        matches!(
            fallback.kind,
            SyncKind::Full(FullReason::IncrementalFailed(_))
        ),
        "{:?}",
        fallback.kind
    );
    assert!(nft.drift(&ruleset(&[&web3])).unwrap().is_empty());
}

fn ruleset(frontends: &[&Frontend]) -> dualstack_ruleset::Ruleset {
    let mut frontends: Vec<Frontend> = frontends.iter().map(|f| (*f).clone()).collect();
    frontends.sort_by(|a, b| a.name.cmp(&b.name));
    dualstack_ruleset::Ruleset {
        table: "dualstack".into(),
        guard: Vec::new(),
        frontends,
    }
}

#[test]
fn kube_proxy_mode_programs_nothing() {
    if !kernel_tests_enabled("kube_proxy_mode_programs_nothing") {
        return;
    }
    let ns = Netns::new("kproxy").unwrap();
    let nft = Nft::new(Runner::in_netns(ns.name()), "dualstack").unwrap();
    let snapshot = Snapshot::parse("kind: Node\nmetadata: {name: node-a}\n").unwrap();
    let config = Config {
        mode: Mode::KubeProxy,
        ..Config::default()
    };
    let report = dualstack_agent::sync_once(
        &snapshot,
        &config,
        "node-a",
        "2026-01-01T00:00:00Z".parse().unwrap(),
        &nft,
    )
    .unwrap();
    assert_eq!(report.kind, SyncKind::NotProgrammed);
    assert!(report.to_string().contains("nothing programmed"));
    assert_eq!(nft.list_json().unwrap(), None, "no table created");
}

/// The canonical hash of what the kernel holds, as `dualstack doctor node` computes it.
fn kernel_hash(plane: &dyn dualstack_dataplane::Dataplane) -> String {
    let o = plane.observe().unwrap().unwrap();
    let elements = o
        .elements
        .iter()
        .map(|(m, k, c)| (m.clone(), k.clone(), format!("goto {c}")))
        .chain(o.other_elements.iter().cloned());
    dualstack_ruleset::canonical::Canonical::of_table(o.chains.iter().map(String::as_str), elements)
        .hash()
}

/// What the agent publishes (the hash of the ruleset it wants) equals the hash of the
/// kernel's read-back, after a full sync and after incremental ones, with netlink and with
/// `nft -f`, read back by netlink and by `nft -j` alike: the doctor's comparison holds
/// however the table was built.
#[test]
fn the_published_hash_is_the_kernels_after_full_and_incremental_syncs() {
    if !kernel_tests_enabled("the_published_hash_is_the_kernels_after_full_and_incremental_syncs") {
        return;
    }
    use dualstack_ruleset::canonical::Canonical;
    let ns = Netns::new("hash").unwrap();
    let runner = Runner::in_netns(ns.name());
    let nft = Nft::new(runner.clone(), "dualstack").unwrap();
    let netlink = dualstack_dataplane::Netlink::new(runner, "dualstack").unwrap();
    let planes: [Box<dyn dualstack_dataplane::Dataplane>; 2] =
        [Box::new(netlink), Box::new(nft.clone())];
    for plane in planes {
        let kind = plane.kind();
        let mut syncer = Syncer::new(plane, "node-a");
        let web = frontend("default/web:http", 80, &["10.42.0.5", "fd42::5"]);
        let api = frontend(
            "default/api:https",
            443,
            &["10.42.0.6", "10.42.0.7", "fd42::6"],
        );
        let mut open = frontend("default/dns:udp", 53, &["10.42.0.8"]);
        open.source_ranges = vec!["10.0.0.0/8".parse().unwrap()];
        let steps = [
            vec![web.clone(), api.clone()],
            vec![web.clone(), api.clone(), open.clone()],
            vec![api.clone(), open.clone()],
            vec![open.clone()],
            // Removing the only user of a shared range chain leaves the chain behind
            // (inert until the next full sync): not part of the hash.
            vec![web.clone()],
        ];
        let mut incremental = 0;
        for (i, frontends) in steps.into_iter().enumerate() {
            let report = syncer.apply(frontends).unwrap();
            incremental += usize::from(matches!(report.kind, SyncKind::Incremental { .. }));
            let want = Canonical::of_ruleset(syncer.wanted().unwrap())
                .unwrap()
                .hash();
            for (reader, hash) in [
                (kind, kernel_hash(syncer.plane())),
                ("nft -j", kernel_hash(&nft)),
            ] {
                assert_eq!(
                    hash, want,
                    "{kind} step {i} ({:?}), read by {reader}",
                    report.kind
                );
            }
        }
        assert_eq!(
            incremental, 4,
            "{kind}: every step after the first is incremental"
        );
        syncer.plane().cleanup().unwrap();
    }
}

/// `n` single-backend frontends on ports from `first`.
fn many(first: u16, n: u16) -> Vec<Frontend> {
    (0..n)
        .map(|i| {
            let port = first + i;
            frontend(
                &format!("default/s{port}:tcp"),
                port,
                &[&format!("10.42.{}.{}", port / 250, port % 250 + 1)],
            )
        })
        .collect()
}

#[test]
fn a_change_past_a_maps_capacity_falls_back_to_a_full_sync_that_grows_it() {
    if !kernel_tests_enabled(
        "a_change_past_a_maps_capacity_falls_back_to_a_full_sync_that_grows_it",
    ) {
        return;
    }
    let ns = Netns::new("capacity").unwrap();
    let runner = Runner::in_netns(ns.name());
    let netlink = dualstack_dataplane::Netlink::new(runner.clone(), "dualstack").unwrap();
    let lister = Nft::new(runner, "dualstack").unwrap();
    // The declared `size` of one of our maps, from nft's listing (`size 1024;`).
    let size_of = |map: &str| -> u64 {
        let text = ns
            .exec("nft", &["list", "map", "inet", "dualstack", map])
            .unwrap();
        text.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("size ")?
                    .trim_end_matches(';')
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no size in {text}"))
    };
    for max in [usize::MAX, 1] {
        // Unlimited: a plain incremental change, refused by the kernel; limit one: many
        // changes that more than double the table, sent as a full sync at once.
        let mut syncer = Syncer::new(netlink.clone(), "node-a").with_max_incremental(max);
        let small = many(1000, 10);
        let r = syncer.apply(small.clone()).unwrap();
        assert!(matches!(r.kind, SyncKind::Full(_)), "{:?}", r.kind);
        assert_eq!(size_of("dnat-masq-addr4"), 1024);
        // 1,100 more: past the map's capacity of 1,024. Incremental: the kernel refuses
        // the batch whole (ENFILE), and the sync falls back to a full one, which declares
        // the map anew with room for them. As many changes: a full sync straight away
        // (no doomed batch).
        let mut big = small.clone();
        big.extend(many(2000, 1100));
        let r = syncer.apply(big.clone()).unwrap();
        match (&r.kind, max) {
            (SyncKind::Full(FullReason::IncrementalFailed(why)), usize::MAX) => {
                assert!(why.contains("errno 23"), "max {max}: {why}");
            }
            (SyncKind::Full(FullReason::ManyChanges), 1) => {}
            (other, _) => panic!("max {max}: expected a full sync, got {other:?}"),
        }
        assert_eq!(size_of("dnat-masq-addr4"), 4096);
        let drift = lister
            .drift(&ruleset(&big.iter().collect::<Vec<_>>()))
            .unwrap();
        assert!(drift.is_empty(), "max {max}: {drift:?}");
        netlink.cleanup().unwrap();
    }
}
