//! Snapshot and property tests of the nft renderer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};

use dualstack_ruleset::nft::{self, Key, MapKind};
use dualstack_ruleset::{Destination, Frontend, Protocol, Ruleset, Selection};
use proptest::prelude::*;

#[test]
fn full_sync_snapshot() {
    insta::assert_snapshot!(nft::render_full(&common::sample()).unwrap());
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
        assert!(text.contains(&format!("{} : goto {}", e.key.nft_text(), e.chain)));
    }
    // traefik: nat + fw per family; dns: nat per family (ranges allow all); shop: v4 nat.
    assert_eq!(exp.elements.len(), 4 + 2 + 1);
    let key = Key::Local(dualstack_addr::Family::V6, Protocol::Udp, 53);
    assert_eq!(key.map_name(MapKind::Nat), "nat-local");
    assert_eq!(key.nft_text(), "ipv6 . udp . 53");
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
    /// Rendering is deterministic and independent of backend order; every served family
    /// gets exactly one nat chain and every key one nat element.
    #[test]
    fn render_is_deterministic_and_complete(fe in arb_frontend(), seed in any::<u64>()) {
        let rs = Ruleset { table: "t".into(), frontends: vec![fe.clone()] };
        let text = nft::render_full(&rs).unwrap();
        let mut shuffled = fe.clone();
        let n = shuffled.backends.len().max(1);
        shuffled.backends.rotate_left((seed as usize) % n);
        let rs2 = Ruleset { table: "t".into(), frontends: vec![shuffled] };
        prop_assert_eq!(&text, &nft::render_full(&rs2).unwrap());
        let exp = nft::expected(&rs).unwrap();
        let families = fe.served_families().len();
        prop_assert_eq!(exp.chains.iter().filter(|c| c.starts_with("fe")).count(), families);
        let nat_elems = exp.elements.iter().filter(|e| e.map.starts_with("nat-")).count();
        prop_assert_eq!(nat_elems, families);
        // IPv6 has no range listed, so every served IPv6 family is firewalled with a drop.
        if fe.backends.iter().any(|b| b.addr.is_ipv6()) {
            prop_assert!(text.contains("\t\tdrop\n"));
        }
    }
}
