//! Snapshot and property tests of the nft renderer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};

use dualstack_ruleset::nft::{self, Key, MapKind, Value};
use dualstack_ruleset::{Destination, Frontend, Protocol, Ruleset, Selection};
use proptest::prelude::*;

#[test]
fn full_sync_snapshot() {
    insta::assert_snapshot!(nft::render_full(&common::sample()).unwrap());
}

/// The common shape (one backend per family): elements only, plus the shared range
/// chains. The map blocks are what matter here.
#[test]
fn single_backend_elements_snapshot() {
    let rs = Ruleset {
        table: "dualstack".into(),
        guard: Vec::new(),
        frontends: vec![
            Frontend {
                name: "default/web:https".into(),
                destination: Destination::Addresses(vec![
                    "192.0.2.10".parse().unwrap(),
                    "2001:db8::10".parse().unwrap(),
                ]),
                protocol: Protocol::Tcp,
                port: 443,
                source_ranges: vec!["10.0.0.0/8".parse().unwrap()],
                backends: vec![
                    common::backend("10.42.0.7:8443"),
                    common::backend("[fd00:42::7]:8443"),
                ],
                selection: Selection::Random,
                masquerade: true,
            },
            Frontend {
                name: "kube-system/dns:udp".into(),
                destination: Destination::AnyLocal,
                protocol: Protocol::Udp,
                port: 53,
                source_ranges: vec!["10.0.0.0/8".parse().unwrap(), "::/0".parse().unwrap()],
                backends: vec![
                    common::backend("10.43.0.10:53"),
                    common::backend("[fd00:43::10]:53"),
                ],
                selection: Selection::Random,
                masquerade: true,
            },
        ],
    };
    let text = nft::render_full(&rs).unwrap();
    let maps: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("\tmap "))
        .take_while(|l| !l.starts_with("\tchain "))
        .chain(text.lines().skip_while(|l| !l.starts_with("\tchain allow")))
        .collect();
    insta::assert_snapshot!(maps.join("\n"));
}

#[test]
fn incremental_snapshot() {
    let rs = common::sample();
    let old = rs.frontends[0].clone();
    let mut new = old.clone();
    new.backends.truncate(1);
    new.source_ranges.clear();
    insta::assert_snapshot!(nft::render_changes("dualstack", &[old], &[new]).unwrap());
}

#[test]
fn delete_snapshot() {
    insta::assert_snapshot!(nft::render_delete("dualstack").unwrap());
}

#[test]
fn invalid_rulesets_are_not_rendered() {
    let mut rs = common::sample();
    rs.frontends[1].port = 0;
    let err = nft::render_full(&rs).unwrap_err().to_string();
    assert!(err.contains("\"kube-system/dns:udp\": port 0"), "{err}");
    assert!(nft::render_delete("bad name").is_err());
    let mut bad = rs.frontends[0].clone();
    bad.backends[0].port = 0;
    assert!(nft::render_changes("dualstack", &[], &[bad]).is_err());
}

#[test]
fn expected_state_matches_the_rendered_elements() {
    let exp = nft::expected(&common::sample()).unwrap();
    let text = nft::render_full(&common::sample()).unwrap();
    for chain in &exp.chains {
        assert!(text.contains(&format!("chain {chain} {{")), "{chain}");
    }
    for e in &exp.elements {
        assert!(text.contains(&format!("\t\t\t{}", e.nft_text())), "{e:?}");
    }
    let count = |prefix: &str| {
        exp.elements
            .iter()
            .filter(|e| e.map.starts_with(prefix))
            .count()
    };
    // traefik (two backends per family, masquerade, ranges in both families): nat + fw per
    // family; dns (one backend per family, no masquerade, ranges allow all): dnat per
    // family; shop (three IPv4 backends, masquerade, IPv4 allows all): nat.
    assert_eq!(
        (
            count("dnat-masq-"),
            count("dnat-"),
            count("nat-"),
            count("fw-")
        ),
        (0, 2, 3, 2)
    );
    assert_eq!(exp.elements.len(), 7);
    // fe4/fe6 for traefik, fe4 for shop, and traefik's two range chains.
    assert_eq!(exp.chains.len(), 5);
    assert_eq!(
        exp.chains
            .iter()
            .filter(|c| nft::is_shared_chain(c))
            .count(),
        2
    );
    let key = Key::Local(dualstack_addr::Family::V6, Protocol::Udp, 53);
    assert_eq!(key.map_name(MapKind::Nat), "nat-local");
    assert_eq!(key.map_name(MapKind::Dnat), "dnat-local6");
    assert_eq!(key.nft_text(), "ipv6 . udp . 53");
    let dns6 = exp
        .elements
        .iter()
        .find(|e| e.map == "dnat-local6")
        .unwrap();
    assert_eq!(dns6.nft_text(), "udp . 53 : fd00:43::10 . 53");
}

#[test]
fn every_map_and_set_is_declared_and_every_element_lands_in_one() {
    let (_, stores) = nft::skeleton();
    let text = nft::render_full(&common::sample()).unwrap();
    for name in &stores {
        assert!(
            text.contains(&format!("\tmap {name} {{")),
            "{name} not declared"
        );
    }
    for e in nft::expected(&common::sample()).unwrap().elements {
        assert!(stores.contains(&e.map), "{e:?}");
    }
}

/// Frontends that share source ranges share one range chain; frontends with one backend
/// per family have no chain of their own, so changing them touches only elements.
#[test]
fn single_backend_frontends_are_elements_only_and_ranges_are_shared() {
    let web = |i: u16| Frontend {
        name: format!("default/web-{i}"),
        destination: Destination::Addresses(vec![
            "192.0.2.10".parse().unwrap(),
            "2001:db8::10".parse().unwrap(),
        ]),
        protocol: Protocol::Tcp,
        port: 8000 + i,
        source_ranges: vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()],
        backends: vec![
            common::backend(&format!("10.42.0.{i}:80")),
            common::backend(&format!("[fd00:42::{i}]:80")),
        ],
        selection: Selection::Random,
        masquerade: true,
    };
    let rs = Ruleset {
        table: "t".into(),
        guard: Vec::new(),
        frontends: (1..=3).map(web).collect(),
    };
    let exp = nft::expected(&rs).unwrap();
    assert_eq!(exp.chains.len(), 2, "{:?}", exp.chains);
    assert!(exp.chains.iter().all(|c| nft::is_shared_chain(c)));
    let text = nft::render_full(&rs).unwrap();
    assert_eq!(text.matches("ip saddr 10.0.0.0/8 return").count(), 1);

    let removal = nft::render_changes("t", &[web(2)], &[]).unwrap();
    assert!(
        removal
            .lines()
            .all(|l| l.starts_with("delete element inet t ")),
        "{removal}"
    );
    assert_eq!(removal.lines().count(), 4, "dnat-masq + fw per family");
    let addition = nft::render_changes("t", &[], &[web(4)]).unwrap();
    assert!(!addition.contains("delete "), "{addition}");
    assert_eq!(addition.matches("add element ").count(), 4);
    // The shared range chains are (re)declared idempotently: created if absent, refilled.
    assert_eq!(addition.matches("add chain ").count(), 2);
    assert_eq!(addition.matches("flush chain ").count(), 2);
    // When the caller knows the shared chains are there, adding is additions only.
    let present = nft::shared_chains(&rs.frontends);
    assert_eq!(present, exp.chains);
    let known = nft::render_changes_with("t", &[], &[web(4)], &present).unwrap();
    assert!(
        known.lines().all(|l| l.starts_with("add element inet t ")),
        "{known}"
    );
    assert_eq!(known.lines().count(), 4);
    assert!(
        known.contains(
            "add element inet t dnat-masq-addr6 { 2001:db8::10 . tcp . 8004 : fd00:42::4 . 80 }"
        ),
        "{known}"
    );
}

/// The rendered text is accepted by the real `nft` parser and kernel (`nft -c`, a dry run
/// that changes nothing), when this machine can run it.
#[test]
fn rendered_text_passes_nft_check() {
    let Some(check) = nft_check() else {
        eprintln!("skipping rendered_text_passes_nft_check: nft -c not usable here (needs root)");
        return;
    };
    check(&nft::render_full(&common::sample()).unwrap());
}

fn nft_check() -> Option<impl Fn(&str)> {
    let ok = Command::new("nft")
        .args(["-c", "-f", "-"])
        .stdin(Stdio::null())
        .output()
        .ok()?
        .status
        .success();
    if !ok && std::env::var_os("DUALSTACK_REQUIRE_KERNEL_TESTS").is_none() {
        return None;
    }
    Some(|text: &str| {
        use std::io::Write;
        let mut child = Command::new("nft")
            .args(["-c", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nft -c rejected:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    })
}

fn arb_frontend() -> impl Strategy<Value = Frontend> {
    (
        "[a-z]{1,6}(/[a-z]{1,6})?",
        any::<bool>(),
        prop::collection::vec((1u8..=254, 1u16..=3), 0..4),
        prop::collection::vec((1u16..=0xffff, 1u16..=3), 0..4),
        1u16..=65535,
        prop::sample::select(vec![Protocol::Tcp, Protocol::Udp, Protocol::Sctp]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(name, local, b4, b6, port, protocol, hash, masq)| Frontend {
                name,
                destination: if local {
                    Destination::AnyLocal
                } else {
                    Destination::Addresses(vec![
                        "192.0.2.1".parse().unwrap(),
                        "2001:db8::1".parse().unwrap(),
                    ])
                },
                protocol,
                port,
                source_ranges: vec!["10.0.0.0/8".parse().unwrap()],
                backends: b4
                    .iter()
                    .map(|(h, p)| common::backend(&format!("10.0.0.{h}:{p}")))
                    .chain(
                        b6.iter()
                            .map(|(h, p)| common::backend(&format!("[fd00::{h:x}]:{p}"))),
                    )
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                selection: if hash {
                    Selection::Hash
                } else {
                    Selection::Random
                },
                masquerade: masq,
            },
        )
}

proptest! {
    /// Rendering is deterministic and independent of backend and frontend order; every
    /// served family is DNATed either by one `dnat-*` element (one backend) or by its own
    /// `fe*` chain through one `nat-*` element (several); single-backend masquerade
    /// frontends use the `dnat-masq-*` maps.
    #[test]
    fn render_is_deterministic_and_complete(fe in arb_frontend(), other in arb_frontend(), seed in any::<u64>()) {
        let rs = Ruleset { table: "t".into(), guard: Vec::new(), frontends: vec![fe.clone()] };
        let text = nft::render_full(&rs).unwrap();
        let mut shuffled = fe.clone();
        let n = shuffled.backends.len().max(1);
        shuffled.backends.rotate_left((seed as usize) % n);
        let rs2 = Ruleset { table: "t".into(), guard: Vec::new(), frontends: vec![shuffled] };
        prop_assert_eq!(&text, &nft::render_full(&rs2).unwrap());
        let exp = nft::expected(&rs).unwrap();
        let families = fe.served_families();
        let several = families.iter().filter(|f| fe.backends_of(**f).count() > 1).count();
        prop_assert_eq!(exp.chains.iter().filter(|c| c.starts_with("fe")).count(), several);
        let count = |prefix: &str| exp.elements.iter().filter(|e| e.map.starts_with(prefix)).count();
        prop_assert_eq!(count("nat-"), several);
        prop_assert_eq!(count("dnat-"), families.len() - several);
        prop_assert_eq!(count("dnat-masq-"), if fe.masquerade { families.len() - several } else { 0 });
        // IPv6 has no range listed, so every served IPv6 family is dropped by its element.
        let v6_dropped = exp.elements.iter().any(|e| e.map.starts_with("fw-") && e.value == Value::Drop);
        prop_assert_eq!(v6_dropped, fe.backends.iter().any(|b| b.addr.is_ipv6()));

        // Two frontends: the text does not depend on their order.
        let mut other = other;
        other.name = format!("{}-other", fe.name);
        other.port = fe.port.wrapping_add(1).max(1);
        let pair = Ruleset { table: "t".into(), guard: Vec::new(), frontends: vec![fe.clone(), other.clone()] };
        if dualstack_ruleset::validate(&pair).is_ok() {
            let swapped = Ruleset { table: "t".into(), guard: Vec::new(), frontends: vec![other, fe] };
            let (a, b) = (nft::render_full(&pair).unwrap(), nft::render_full(&swapped).unwrap());
            // Element blocks are sorted by key; only frontend chains follow input order.
            let elements = |t: &str| t.lines().filter(|l| l.starts_with("\t\t\t")).map(str::to_string).collect::<Vec<_>>();
            prop_assert_eq!(elements(&a), elements(&b));
        }
    }
}

/// Pool ranges: one guard chain after every DNAT, one interval lookup per family, expected
/// by the drift check; none without pools (every other rendering unchanged).
#[test]
fn the_pool_guard_drops_untaken_traffic_to_pool_ranges() {
    use dualstack_ruleset::AddressRange;
    let mut rs = common::sample();
    assert!(!nft::render_full(&rs).unwrap().contains("pool-guard"));
    assert!(!nft::expected(&rs).unwrap().chains.contains("pool-guard"));
    let range = |a: &str, b: &str| AddressRange {
        first: a.parse().unwrap(),
        last: b.parse().unwrap(),
    };
    rs.guard = vec![
        range("192.0.2.200", "192.0.2.209"),
        range("198.51.100.9", "198.51.100.9"),
        range("2001:db8:100::201", "2001:db8:100::207"),
    ];
    let text = nft::render_full(&rs).unwrap();
    let chain = text
        .split("chain pool-guard {")
        .nth(1)
        .and_then(|c| c.split("\n\t}").next())
        .unwrap();
    assert!(chain.contains("type filter hook prerouting priority dstnat + 10; policy accept;"));
    assert!(chain.contains("ip daddr { 192.0.2.200-192.0.2.209, 198.51.100.9 } counter drop"));
    assert!(chain.contains("ip6 daddr { 2001:db8:100::201-2001:db8:100::207 } counter drop"));
    assert!(nft::expected(&rs).unwrap().chains.contains("pool-guard"));
    if let Some(check) = nft_check() {
        check(&text);
    }
    rs.guard = vec![range("192.0.2.9", "2001:db8::1")];
    let err = nft::render_full(&rs).unwrap_err().to_string();
    assert!(err.contains("mixes families"), "{err}");
}
