//! The sync engine's logic against the in-memory fake data plane (no root): which
//! transaction each step uses, fall-backs, drift repair, and where packets go afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use dualstack_agent::{AgentError, FullReason, SyncKind, Syncer};
use dualstack_dataplane::Dataplane;
use dualstack_dataplane::fake::{Fake, Fate, Transaction};
use dualstack_ruleset::nft::Key;
use dualstack_ruleset::{Backend, Destination, Frontend, Protocol, Selection};

const NODE4: &str = "192.0.2.10";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn frontend(name: &str, port: u16, backends: &[&str]) -> Frontend {
    Frontend {
        name: name.to_string(),
        destination: Destination::Addresses(vec![ip(NODE4), ip("2001:db8::10")]),
        protocol: Protocol::Tcp,
        port,
        source_ranges: vec!["10.0.0.0/8".parse().unwrap(), "::/0".parse().unwrap()],
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

fn goes_to(fake: &Fake, port: u16) -> Fate {
    fake.route(ip("10.1.1.1"), ip(NODE4), Protocol::Tcp, port)
}

fn dnat(backends: &[&str]) -> Fate {
    Fate::Dnat {
        backends: backends
            .iter()
            .map(|b| Backend {
                addr: b.parse().unwrap(),
                port: 8080,
            })
            .collect(),
        masquerade: true,
    }
}

#[test]
fn full_unchanged_incremental_fallback_and_drift_repair() {
    let fake = Fake::new("dualstack", [ip(NODE4)]);
    let mut syncer = Syncer::new(fake.clone(), "node-a");
    let a = frontend("ns/a:http", 80, &["10.42.0.5"]);
    let b = frontend("ns/b:http", 81, &["10.42.0.6", "10.42.0.7"]);

    let r = syncer.apply(vec![a.clone(), b.clone()]).unwrap();
    assert_eq!(r.kind, SyncKind::Full(FullReason::FirstSync));
    assert_eq!(goes_to(&fake, 80), dnat(&["10.42.0.5"]));
    assert_eq!(goes_to(&fake, 81), dnat(&["10.42.0.6", "10.42.0.7"]));
    // Outside the source ranges: dropped before NAT.
    assert_eq!(
        fake.route(ip("11.1.1.1"), ip(NODE4), Protocol::Tcp, 80),
        Fate::Dropped
    );

    let r = syncer.apply(vec![b.clone(), a.clone()]).unwrap();
    assert_eq!(r.kind, SyncKind::Unchanged);
    assert_eq!(fake.transactions().len(), 1, "nothing ran");

    let a2 = frontend("ns/a:http", 80, &["10.42.0.9"]);
    let r = syncer.apply(vec![a2.clone(), b.clone()]).unwrap();
    assert_eq!(
        r.kind,
        SyncKind::Incremental {
            removed: 1,
            added: 1
        }
    );
    assert_eq!(goes_to(&fake, 80), dnat(&["10.42.0.9"]));

    // A refused incremental transaction changes nothing, and the engine replaces the
    // table whole instead.
    fake.fail_next("refused");
    let c = frontend("ns/c:http", 82, &["10.42.0.8"]);
    let r = syncer
        .apply(vec![a2.clone(), b.clone(), c.clone()])
        .unwrap();
    assert!(matches!(
        r.kind,
        SyncKind::Full(FullReason::IncrementalFailed(_))
    ));
    let log = fake.transactions();
    assert_eq!(
        &log[log.len() - 2..],
        &[
            Transaction::Changes {
                removed: 0,
                added: 1
            },
            Transaction::Full { frontends: 3 }
        ]
    );
    assert_eq!(goes_to(&fake, 82), dnat(&["10.42.0.8"]));

    // No drift: nothing runs. An element removed behind our back: a full repair.
    let before = fake.transactions().len();
    let r = syncer.resync().unwrap().unwrap();
    assert_eq!(r.kind, SyncKind::Unchanged);
    assert_eq!(fake.transactions().len(), before);
    fake.tamper_remove_element(
        "dnat-masq-addr4",
        Key::Address(ip(NODE4), Protocol::Tcp, 82),
    );
    assert_eq!(goes_to(&fake, 82), Fate::NotOurs);
    let r = syncer.resync().unwrap().unwrap();
    assert!(matches!(r.kind, SyncKind::Full(FullReason::Drift(_))));
    assert_eq!(goes_to(&fake, 82), dnat(&["10.42.0.8"]));
    fake.tamper_delete_table();
    let r = syncer.resync().unwrap().unwrap();
    assert!(matches!(r.kind, SyncKind::Full(FullReason::Drift(_))));
    assert_eq!(goes_to(&fake, 81), dnat(&["10.42.0.6", "10.42.0.7"]));
}

#[test]
fn many_changes_send_the_difference_only_while_the_table_is_untouched() {
    let fake = Fake::new("dualstack", [ip(NODE4)]);
    let mut syncer = Syncer::new(fake.clone(), "node-a").with_max_incremental(1);
    let a = frontend("ns/a:http", 80, &["10.42.0.5"]);
    let b = frontend("ns/b:http", 81, &["10.42.0.6"]);
    let c = frontend("ns/c:http", 82, &["10.42.0.7"]);
    let d = frontend("ns/d:http", 83, &["10.42.0.4"]);
    syncer.apply(vec![a.clone(), d.clone()]).unwrap();
    // Two changes, over the limit of one, on a table as the syncer left it: the difference.
    let r = syncer
        .apply(vec![a.clone(), b.clone(), c.clone(), d.clone()])
        .unwrap();
    assert_eq!(
        r.kind,
        SyncKind::Difference {
            removed: 0,
            added: 2
        }
    );
    assert!(r.to_string().contains("difference sync"), "{r}");
    assert_eq!(
        fake.transactions().last(),
        Some(&Transaction::Changes {
            removed: 0,
            added: 2
        })
    );
    assert_eq!(goes_to(&fake, 82), dnat(&["10.42.0.7"]));
    // A difference that would more than double the table is a full sync (it would not
    // fit the maps' capacity).
    let mut grown = Syncer::new(fake.clone(), "node-a").with_max_incremental(1);
    grown.apply(vec![a.clone()]).unwrap();
    let r = grown.apply(vec![a.clone(), b.clone(), c.clone()]).unwrap();
    assert_eq!(r.kind, SyncKind::Full(FullReason::ManyChanges));
    syncer.invalidate();
    syncer
        .apply(vec![a.clone(), b.clone(), c.clone(), d.clone()])
        .unwrap();

    // Someone else removed an element: the table is not provably ours any more, so many
    // changes replace it whole (which also repairs it).
    fake.tamper_remove_element(
        "dnat-masq-addr4",
        Key::Address(ip(NODE4), Protocol::Tcp, 80),
    );
    let b2 = frontend("ns/b:http", 81, &["10.42.0.8"]);
    let c2 = frontend("ns/c:http", 82, &["10.42.0.9"]);
    let r = syncer
        .apply(vec![a.clone(), b2.clone(), c2.clone()])
        .unwrap();
    assert_eq!(r.kind, SyncKind::Full(FullReason::ManyChanges));
    assert_eq!(
        fake.transactions().last(),
        Some(&Transaction::Full { frontends: 3 })
    );
    assert_eq!(goes_to(&fake, 80), dnat(&["10.42.0.5"]));

    // With no incremental transactions at all, many changes are always a full one.
    let mut full_only = Syncer::new(fake.clone(), "node-a").with_max_incremental(0);
    full_only
        .apply(vec![a.clone(), b2.clone(), c2.clone()])
        .unwrap();
    let r = full_only.apply(vec![a.clone(), b.clone()]).unwrap();
    assert_eq!(r.kind, SyncKind::Full(FullReason::ManyChanges));

    // Through a box or a reference (how the agent holds the plane it probed), the same.
    let boxed: Box<dyn Dataplane> = Box::new(fake.clone());
    for plane in [boxed, Box::new(&fake) as Box<dyn Dataplane + '_>] {
        let mut syncer = Syncer::new(plane, "node-a").with_max_incremental(1);
        syncer.apply(vec![a.clone(), d.clone()]).unwrap();
        let r = syncer
            .apply(vec![a.clone(), b.clone(), c.clone(), d.clone()])
            .unwrap();
        assert_eq!(
            r.kind,
            SyncKind::Difference {
                removed: 0,
                added: 2
            }
        );
    }
}

#[test]
fn a_failed_full_transaction_forgets_the_past() {
    let fake = Fake::new("dualstack", [ip(NODE4)]);
    let mut syncer = Syncer::new(fake.clone(), "node-a").with_max_incremental(1);
    let a = frontend("ns/a:http", 80, &["10.42.0.5"]);
    let b = frontend("ns/b:http", 81, &["10.42.0.6"]);
    let c = frontend("ns/c:http", 82, &["10.42.0.7"]);
    syncer.apply(vec![a.clone(), b.clone(), c.clone()]).unwrap();
    // Not provably untouched (an element gone), so the next many changes need a full one.
    fake.tamper_remove_element(
        "dnat-masq-addr4",
        Key::Address(ip(NODE4), Protocol::Tcp, 80),
    );
    fake.fail_next("kernel says no");
    let err = syncer.apply(vec![a.clone()]).unwrap_err();
    assert!(matches!(err, AgentError::Dataplane { .. }), "{err}");
    assert!(syncer.applied().is_none());
    // The table is still the last good one.
    assert_eq!(goes_to(&fake, 82), dnat(&["10.42.0.7"]));
    let r = syncer.apply(vec![a.clone()]).unwrap();
    assert_eq!(r.kind, SyncKind::Full(FullReason::FirstSync));
    assert_eq!(goes_to(&fake, 82), Fate::NotOurs);
}

#[test]
fn invalid_frontends_are_refused_before_the_data_plane_is_asked() {
    let fake = Fake::new("dualstack", [ip(NODE4)]);
    let mut syncer = Syncer::new(fake.clone(), "node-a");
    let a = frontend("ns/a:http", 80, &["10.42.0.5"]);
    let clash = frontend("ns/z:http", 80, &["10.42.0.6"]);
    let err = syncer.apply(vec![a, clash]).unwrap_err();
    assert!(matches!(err, AgentError::Invalid { .. }), "{err}");
    assert!(fake.transactions().is_empty());
    assert!(!fake.has_table());
}

/// The hash the agent publishes for what it wants, recomputed from the table's read-back.
fn kernel_hash(fake: &Fake) -> String {
    use dualstack_dataplane::Dataplane as _;
    let o = fake.observe().unwrap().unwrap();
    let elements = o
        .elements
        .iter()
        .map(|(m, k, c)| (m.clone(), k.clone(), format!("goto {c}")))
        .chain(o.other_elements.iter().cloned());
    dualstack_ruleset::canonical::Canonical::of_table(o.chains.iter().map(String::as_str), elements)
        .hash()
}

#[test]
fn wanted_is_published_even_when_the_kernel_refuses_and_hashes_like_the_readback() {
    use dualstack_ruleset::canonical::Canonical;
    let fake = Fake::new("dualstack", [ip(NODE4)]);
    let mut syncer = Syncer::new(fake.clone(), "node-a");
    assert!(syncer.wanted().is_none());
    let a = frontend("ns/a:http", 80, &["10.42.0.5"]);
    let b = frontend("ns/b:http", 81, &["10.42.0.6", "10.42.0.7"]);
    syncer.apply(vec![b.clone(), a.clone()]).unwrap();
    let want = |s: &Syncer<Fake>| Canonical::of_ruleset(s.wanted().unwrap()).unwrap().hash();
    assert_eq!(
        syncer.wanted().unwrap().frontends,
        vec![a.clone(), b.clone()]
    );
    assert_eq!(kernel_hash(&fake), want(&syncer));

    // An incremental change ends in the same hash as a full sync of the same frontends.
    let a2 = frontend("ns/a:http", 80, &["10.42.0.9"]);
    let r = syncer.apply(vec![a2.clone(), b.clone()]).unwrap();
    assert!(matches!(r.kind, SyncKind::Incremental { .. }), "{r:?}");
    let full = Fake::new("dualstack", [ip(NODE4)]);
    Syncer::new(full.clone(), "node-a")
        .apply(vec![a2.clone(), b.clone()])
        .unwrap();
    assert_eq!(kernel_hash(&fake), kernel_hash(&full));
    assert_eq!(kernel_hash(&fake), want(&syncer));

    // Refused: the kernel keeps the old table, the agent still wants the new one.
    let mut syncer = Syncer::new(fake.clone(), "node-a");
    fake.fail_next("kernel says no");
    let c = frontend("ns/c:http", 82, &["10.42.0.8"]);
    syncer.apply(vec![a2, b, c.clone()]).unwrap_err();
    assert!(syncer.wanted().unwrap().frontends.contains(&c));
    assert_ne!(kernel_hash(&fake), want(&syncer));
}

/// Two Service names (valid Kubernetes names, one namespace) whose generated chain ids
/// collide: the same first 40 characters and a 32-bit hash found equal by a birthday
/// search, as anyone allowed to create two Services could do offline.
fn colliding_names() -> (String, String) {
    let prefix = format!("tenant/{}", "a".repeat(33));
    let mut seen = std::collections::HashMap::new();
    for i in 0u32..2_000_000 {
        let name = format!("{prefix}-{i}:http");
        let id = dualstack_ruleset::names::frontend_id(&name);
        if let Some(first) = seen.insert(id, name.clone()) {
            return (first, name);
        }
    }
    panic!("no 32-bit collision among 2,000,000 names");
}

#[test]
fn frontends_whose_chain_names_collide_are_left_out_and_the_rest_programmed() {
    let (first, second) = colliding_names();
    let fake = Fake::new("dualstack", [ip(NODE4)]);
    let mut syncer = Syncer::new(fake.clone(), "node-a");
    let web = frontend("prod/web:http", 80, &["10.42.0.5", "10.42.0.6"]);
    let x = frontend(&first, 81, &["10.42.1.5", "10.42.1.6"]);
    let y = frontend(&second, 82, &["10.42.2.5", "10.42.2.6"]);
    let all = vec![x.clone(), web.clone(), y.clone()];
    // The data plane's own check refuses the pair: without leaving them out, no sync at all.
    let whole = dualstack_ruleset::Ruleset {
        table: "dualstack".into(),
        guard: Vec::new(),
        frontends: all.clone(),
    };
    assert!(dualstack_ruleset::validate(&whole).is_err());

    let r = syncer.apply(all.clone()).unwrap();
    assert_eq!(r.kind, SyncKind::Full(FullReason::FirstSync));
    assert_eq!(r.frontends, vec![web.clone()]);
    assert_eq!(r.excluded.len(), 1, "{:?}", r.excluded);
    assert!(
        r.excluded[0].contains(&first) && r.excluded[0].contains(&second),
        "{:?}",
        r.excluded
    );
    let text = r.to_string();
    assert!(text.contains("left out"), "{text}");
    assert_eq!(goes_to(&fake, 80), dnat(&["10.42.0.5", "10.42.0.6"]));
    assert_ne!(goes_to(&fake, 81), dnat(&["10.42.1.5", "10.42.1.6"]));
    assert_ne!(goes_to(&fake, 82), dnat(&["10.42.2.5", "10.42.2.6"]));

    // Still left out, and said, on the next sync (nothing changed for the kernel).
    let r = syncer.apply(all).unwrap();
    assert_eq!(r.kind, SyncKind::Unchanged);
    assert_eq!(r.excluded.len(), 1);
    // One of them renamed: both are programmed.
    let y2 = frontend("tenant/y:http", 82, &["10.42.2.5", "10.42.2.6"]);
    let r = syncer.apply(vec![x, web, y2]).unwrap();
    assert!(r.excluded.is_empty(), "{:?}", r.excluded);
    assert_eq!(r.frontends.len(), 3);
    assert_eq!(goes_to(&fake, 81), dnat(&["10.42.1.5", "10.42.1.6"]));
    assert_eq!(goes_to(&fake, 82), dnat(&["10.42.2.5", "10.42.2.6"]));
}
