//! The netlink applier against the `nft -f` applier, in the kernel: the same model applied
//! both ways in two namespaces must list identically (`nft -j list table`, handles
//! removed, set elements compared as sets); a batch that fails mid-way changes nothing;
//! bad input fails before anything is sent; other tables are never touched.
//! Root only (skips with a printed reason otherwise, fails instead in CI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use dualstack_dataplane::{
    Dataplane, DataplaneError, Netlink, NetlinkError, Nft, NftSocket, Runner,
};
use dualstack_nftnl::wire::MsgType;
use dualstack_ruleset::{Backend, Destination, Frontend, Protocol, Ruleset, Selection};
use dualstack_testbed::{Netns, kernel_tests_enabled};
use proptest::prelude::*;
use serde_json::Value;

const TABLE: &str = "dualstack";

/// Two namespaces: one programmed with `nft -f`, one over netlink.
struct Pair {
    text_ns: Netns,
    nl_ns: Netns,
    nft: Nft,
    netlink: Netlink,
    /// `nft` run in the netlink namespace, only to list.
    nl_lister: Nft,
}

impl Pair {
    fn new() -> Pair {
        let text_ns = Netns::new("nlt").unwrap();
        let nl_ns = Netns::new("nln").unwrap();
        let nft = Nft::new(Runner::in_netns(text_ns.name()), TABLE).unwrap();
        let netlink = Netlink::new(Runner::in_netns(nl_ns.name()), TABLE).unwrap();
        let nl_lister = Nft::new(Runner::in_netns(nl_ns.name()), TABLE).unwrap();
        Pair {
            text_ns,
            nl_ns,
            nft,
            netlink,
            nl_lister,
        }
    }

    /// Applies `rs` both ways and compares.
    fn check(&self, rs: &Ruleset) -> Result<(), String> {
        self.nft.apply(rs).map_err(|e| format!("nft: {e}"))?;
        self.netlink
            .apply(rs)
            .map_err(|e| format!("netlink: {e}"))?;
        self.same()
    }

    fn same(&self) -> Result<(), String> {
        let a = normalized(&self.nft.list_json().unwrap());
        let b = normalized(&self.nl_lister.list_json().unwrap());
        if a == b {
            return Ok(());
        }
        let ta = self.text_ns.exec("nft", &["list", "table", "inet", TABLE]);
        let tb = self.nl_ns.exec("nft", &["list", "table", "inet", TABLE]);
        Err(format!(
            "tables differ\n--- nft -f:\n{}\n--- netlink:\n{}\n--- json nft -f:\n{a:?}\n--- json netlink:\n{b:?}",
            ta.unwrap_or_else(|e| e.to_string()),
            tb.unwrap_or_else(|e| e.to_string())
        ))
    }
}

/// The listing without handles and counters, set elements sorted (a set has no order).
/// Objects are ordered by kind and name (a table replaced in place lists its kept chains
/// and maps before new ones, a fresh table in declaration order), rules stay in their
/// chain's order.
fn normalized(json: &Option<String>) -> Option<Value> {
    let v: Value = serde_json::from_str(json.as_deref()?).unwrap();
    let mut v = strip(v);
    if let Some(items) = v.get_mut("nftables").and_then(Value::as_array_mut) {
        let key = |item: &Value| -> (u8, String) {
            let (kind, object) = item
                .as_object()
                .and_then(|o| o.iter().next())
                .map(|(k, v)| (k.as_str(), v))
                .unwrap_or(("", &Value::Null));
            let name = |field: &str| object[field].as_str().unwrap_or_default().to_string();
            match kind {
                "metainfo" => (0, String::new()),
                "table" => (1, name("name")),
                "map" | "set" => (2, name("name")),
                "chain" => (3, name("name")),
                "rule" => (4, name("chain")),
                _ => (5, item.to_string()),
            }
        };
        items.sort_by_cached_key(key);
    }
    Some(v)
}

fn strip(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                if k == "handle" || k == "counter" || k == "packets" || k == "bytes" {
                    continue;
                }
                let v = strip(v);
                let v = match (k.as_str(), v) {
                    ("elem", Value::Array(mut items)) => {
                        items.sort_by_key(|i| i.to_string());
                        Value::Array(items)
                    }
                    (_, v) => v,
                };
                out.insert(k, v);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(strip).collect()),
        other => other,
    }
}

fn b(text: &str) -> Backend {
    let sa: std::net::SocketAddr = text.parse().unwrap();
    Backend {
        addr: sa.ip(),
        port: sa.port(),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Every shape the renderer has: several backends (random and hash, both families, with
/// and without masquerade), one backend (masquerade or not, address-bound and `AnyLocal`),
/// source ranges (one range, several, adjacent, open-ended, none of a family, /0), SCTP.
fn realistic() -> Ruleset {
    let fe = |name: &str,
              dest: Destination,
              protocol: Protocol,
              port: u16,
              ranges: &[&str],
              backends: &[&str],
              selection: Selection,
              masquerade: bool| Frontend {
        name: name.into(),
        destination: dest,
        protocol,
        port,
        source_ranges: ranges.iter().map(|r| r.parse().unwrap()).collect(),
        backends: backends.iter().map(|t| b(t)).collect(),
        selection,
        masquerade,
    };
    let node = || Destination::Addresses(vec![ip("192.0.2.10"), ip("2001:db8::10")]);
    Ruleset {
        guard: Vec::new(),
        table: TABLE.into(),
        frontends: vec![
            fe(
                "default/traefik:websecure",
                node(),
                Protocol::Tcp,
                443,
                &[
                    "10.0.0.0/8",
                    "10.1.0.0/16",
                    "192.168.1.77/24",
                    "2001:db8:1::/48",
                ],
                &[
                    "10.42.1.5:8443",
                    "10.42.0.7:8443",
                    "[fd00:42::7]:8443",
                    "[fd00:42:1::5]:8443",
                ],
                Selection::Random,
                true,
            ),
            fe(
                "kube-system/dns:udp",
                Destination::AnyLocal,
                Protocol::Udp,
                53,
                &["0.0.0.0/0", "::/0"],
                &["10.43.0.10:53", "[fd00:43::10]:53"],
                Selection::Random,
                false,
            ),
            fe(
                "shop/api",
                Destination::Addresses(vec![ip("192.0.2.10")]),
                Protocol::Sctp,
                9000,
                &["0.0.0.0/0"],
                &["10.42.2.1:9000", "10.42.2.2:9000", "10.42.2.3:9000"],
                Selection::Hash,
                true,
            ),
            fe(
                "shop/web6",
                node(),
                Protocol::Tcp,
                8443,
                &[
                    "11.0.0.0/8",
                    "12.0.0.0/8",
                    "fd00::/8",
                    "2001:db8::/32",
                    "10.16.0.0/12",
                ],
                &["[fd00:1::1]:443", "[fd00:1::2]:443", "10.9.9.9:443"],
                Selection::Hash,
                false,
            ),
            fe(
                "edge/open",
                Destination::AnyLocal,
                Protocol::Tcp,
                8080,
                &["0.0.0.0/1", "255.0.0.0/8", "fd00::5/128"],
                &["10.42.3.1:80", "10.42.3.2:80", "[fd00:3::1]:80"],
                Selection::Random,
                true,
            ),
            fe(
                "edge/single",
                node(),
                Protocol::Udp,
                5353,
                &["10.1.2.3/32", "2001:db8:7::/60"],
                &["10.42.4.1:53", "[fd00:4::1]:53"],
                Selection::Random,
                true,
            ),
            // Two halves of each family merge into everything: no check (a `/0`
            // comparison would have no bytes to load, and the kernel refuses that).
            fe(
                "edge/halves",
                Destination::AnyLocal,
                Protocol::Udp,
                5000,
                &["0.0.0.0/1", "128.0.0.0/1", "::/1", "8000::/1"],
                &["10.42.5.1:50", "[fd00:5::1]:50"],
                Selection::Random,
                false,
            ),
            fe(
                "idle/no-endpoints",
                Destination::AnyLocal,
                Protocol::Tcp,
                9999,
                &[],
                &[],
                Selection::Random,
                true,
            ),
        ],
    }
}

#[test]
fn netlink_table_lists_like_nft_text_for_realistic_rulesets() {
    if !kernel_tests_enabled("netlink_table_lists_like_nft_text_for_realistic_rulesets") {
        return;
    }
    let pair = Pair::new();
    let rs = realistic();
    pair.check(&rs).unwrap();
    // The comparison can fail: one frontend fewer on one side only is a difference.
    let mut fewer = rs.clone();
    fewer.frontends.remove(3);
    pair.netlink.apply(&fewer).unwrap();
    assert!(pair.same().is_err());
    // Re-applying replaces the table whole; an empty ruleset leaves the skeleton.
    pair.check(&rs).unwrap();
    pair.check(&Ruleset::new(TABLE)).unwrap();
    pair.netlink.cleanup().unwrap();
    assert_eq!(pair.nl_lister.list_json().unwrap(), None);
    pair.netlink.cleanup().unwrap();
}

#[test]
fn a_batch_failing_mid_way_changes_nothing_and_other_tables_stay() {
    if !kernel_tests_enabled("a_batch_failing_mid_way_changes_nothing_and_other_tables_stay") {
        return;
    }
    let pair = Pair::new();
    let other = "table ip other {\n\tchain c {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\ttcp dport 1 dnat to 10.0.0.1\n\t}\n}\n";
    pair.nl_ns.nft(other).unwrap();
    let other_before = pair
        .nl_ns
        .exec("nft", &["list", "table", "ip", "other"])
        .unwrap();
    let rs = realistic();
    pair.netlink.apply(&rs).unwrap();
    let before = pair.nl_lister.list_json().unwrap();

    // A batch that deletes and re-declares our table, then adds a rule to a chain that
    // does not exist: the kernel refuses it, and the whole batch is rolled back.
    let mut smaller = rs.clone();
    smaller.frontends.truncate(1);
    let err = pair
        .netlink
        .transact_raw(|seq, genid| {
            dualstack_nftnl::full_then(&smaller, None, seq, genid, |b| {
                b.begin(MsgType::NewRule, 0x400 | 0x800, || "bogus rule".into());
                b.str(1, TABLE);
                b.str(2, "no-such-chain");
                b.finish_msg();
            })
        })
        .unwrap_err();
    match &err {
        DataplaneError::Netlink(NetlinkError::Rejected { what, errno, .. }) => {
            assert_eq!(what, "bogus rule");
            assert_eq!(*errno, 2, "ENOENT expected: {err}");
        }
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(pair.nl_lister.list_json().unwrap(), before);
    // The same for the in-place replace (what a full sync over an existing table sends):
    // chains and maps flushed, some deleted, then the bogus rule.
    let present = NftSocket::open_in_netns(pair.nl_ns.name())
        .unwrap()
        .present(TABLE)
        .unwrap()
        .expect("the table exists");
    assert!(
        present.chains.len() > 4 && present.maps.len() == 14,
        "{present:?}"
    );
    let err = pair
        .netlink
        .transact_raw(|seq, genid| {
            dualstack_nftnl::full_then(&smaller, Some(&present), seq, genid, |b| {
                b.begin(MsgType::NewRule, 0x400 | 0x800, || "bogus rule".into());
                b.str(1, TABLE);
                b.str(2, "no-such-chain");
                b.finish_msg();
            })
        })
        .unwrap_err();
    assert!(err.to_string().contains("bogus rule"), "{err}");
    assert_eq!(pair.nl_lister.list_json().unwrap(), before);
    // The socket is still usable after a refused batch.
    pair.netlink.apply(&smaller).unwrap();
    pair.nft.apply(&smaller).unwrap();
    pair.same().unwrap();
    pair.netlink.cleanup().unwrap();
    let other_after = pair
        .nl_ns
        .exec("nft", &["list", "table", "ip", "other"])
        .unwrap();
    assert_eq!(other_before, other_after);
}

#[test]
fn bad_input_fails_before_anything_is_sent() {
    if !kernel_tests_enabled("bad_input_fails_before_anything_is_sent") {
        return;
    }
    let pair = Pair::new();
    pair.netlink.apply(&realistic()).unwrap();
    let before = pair.nl_lister.list_json().unwrap();
    let mut sock = NftSocket::open_in_netns(pair.nl_ns.name()).unwrap();
    let gen_before = sock.generation().unwrap();
    let mut bad = realistic();
    bad.frontends[1].port = 0;
    let dup = bad.frontends[0].clone();
    bad.frontends.push(dup);
    assert!(matches!(
        pair.netlink.apply(&bad),
        Err(DataplaneError::Invalid(_))
    ));
    assert!(matches!(
        pair.netlink.apply_changes(&[], &bad.frontends[1..2]),
        Err(DataplaneError::Invalid(_))
    ));
    let mut wrong = realistic();
    wrong.table = "other".into();
    assert!(matches!(
        pair.netlink.apply(&wrong),
        Err(DataplaneError::WrongTable { .. })
    ));
    assert_eq!(
        sock.generation().unwrap(),
        gen_before,
        "nothing was committed"
    );
    assert_eq!(pair.nl_lister.list_json().unwrap(), before);
}

// ---- random rulesets ----

fn arb_frontend(i: usize) -> impl Strategy<Value = Frontend> {
    let addrs = prop::sample::subsequence(
        vec![
            ip("192.0.2.1"),
            ip("192.0.2.2"),
            ip("2001:db8::1"),
            ip("2001:db8::2"),
        ],
        1..=4,
    );
    let dest = prop_oneof![
        Just(Destination::AnyLocal),
        addrs.prop_map(Destination::Addresses)
    ];
    let proto = prop_oneof![
        Just(Protocol::Tcp),
        Just(Protocol::Udp),
        Just(Protocol::Sctp)
    ];
    let range_pool: Vec<ipnet::IpNet> = [
        "0.0.0.0/0",
        "::/0",
        "10.0.0.0/8",
        "11.0.0.0/8",
        "12.0.0.0/8",
        "192.168.1.0/24",
        "10.16.0.0/12",
        "10.1.2.3/32",
        "0.0.0.0/1",
        "128.0.0.0/1",
        "255.0.0.0/8",
        "fd00::/8",
        "2001:db8::/32",
        "2001:db8:7::/60",
        "fd00::5/128",
        "ffff::/16",
        "8000::/1",
        "::/1",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let ranges = prop::sample::subsequence(range_pool, 0..=5);
    let v4 = prop::collection::vec((1u8..=250, 1u16..=3), 0..=3);
    let v6 = prop::collection::vec((1u16..=500, 1u16..=3), 0..=3);
    let sel = prop_oneof![Just(Selection::Random), Just(Selection::Hash)];
    (dest, proto, ranges, v4, v6, sel, any::<bool>()).prop_map(
        move |(destination, protocol, source_ranges, v4, v6, selection, masquerade)| {
            let mut backends: Vec<Backend> = v4
                .into_iter()
                .map(|(h, p)| Backend {
                    addr: IpAddr::from([10, 42, 0, h]),
                    port: 8000 + p,
                })
                .chain(v6.into_iter().map(|(h, p)| Backend {
                    addr: IpAddr::from([0xfd00, 0x42, 0, 0, 0, 0, 0, h]),
                    port: 8000 + p,
                }))
                .collect();
            backends.sort();
            backends.dedup();
            Frontend {
                name: format!("ns{i}/svc-{i}:p"),
                destination,
                protocol,
                port: 1000 + i as u16,
                source_ranges,
                backends,
                selection,
                masquerade,
            }
        },
    )
}

fn arb_ruleset() -> impl Strategy<Value = Ruleset> {
    (0usize..7)
        .prop_flat_map(|n| (0..n).map(arb_frontend).collect::<Vec<_>>())
        .prop_map(|frontends| Ruleset {
            table: TABLE.into(),
            frontends,
            guard: Vec::new(),
        })
}

#[test]
fn random_rulesets_list_identically() {
    if !kernel_tests_enabled("random_rulesets_list_identically") {
        return;
    }
    let pair = Pair::new();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 32,
        ..ProptestConfig::default()
    });
    runner
        .run(&arb_ruleset(), |rs| {
            prop_assume!(dualstack_ruleset::validate(&rs).is_ok());
            pair.check(&rs).map_err(TestCaseError::fail)?;
            let listed = pair.nl_lister.list_json().unwrap().unwrap_or_default();
            // Not a vacuous comparison: every pick chain is really there.
            for fe in &rs.frontends {
                for f in dualstack_addr::Family::BOTH {
                    if fe.backends_of(f).count() > 1 {
                        let chain = dualstack_ruleset::names::nat_chain(&fe.name, f);
                        prop_assert!(listed.contains(&chain), "{chain} missing");
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}

// ---- incremental changes ----

/// The listing with the shared `allow*` chains nothing jumps to any more removed (an
/// incremental change leaves them, inert, until the next full sync drops them).
fn without_unused_allow_chains(v: Option<Value>) -> Option<Value> {
    let v = v?;
    let text = v.to_string();
    let used = |name: &str| text.contains(&format!("\"goto\":{{\"target\":\"{name}\"}}"));
    let items = v.get("nftables")?.as_array()?.clone();
    let kept: Vec<Value> = items
        .into_iter()
        .filter(|item| {
            let chain = item
                .get("chain")
                .and_then(|c| c.get("name"))
                .or_else(|| item.get("rule").and_then(|r| r.get("chain")))
                .and_then(Value::as_str);
            match chain {
                Some(name) if name.starts_with("allow") => used(name),
                _ => true,
            }
        })
        .collect();
    // Chains an incremental change adds are listed after the others; order among chains
    // (and maps) means nothing, order of rules within a chain does (the sort is stable).
    let mut kept = kept;
    kept.sort_by_key(|item| {
        let name = |k: &str, f: &str| {
            item.get(k)
                .and_then(|o| o.get(f))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        if let Some(n) = name("map", "name") {
            (1, n)
        } else if let Some(n) = name("chain", "name") {
            (2, n)
        } else if let Some(n) = name("rule", "chain") {
            (3, n)
        } else {
            (0, String::new())
        }
    });
    Some(serde_json::json!({ "nftables": kept }))
}

/// Old versions out, new versions in (what the agent's planner produces).
fn diff(old: &[Frontend], new: &[Frontend]) -> (Vec<Frontend>, Vec<Frontend>) {
    let remove = old.iter().filter(|f| !new.contains(f)).cloned().collect();
    let add = new.iter().filter(|f| !old.contains(f)).cloned().collect();
    (remove, add)
}

fn arb_steps() -> impl Strategy<Value = Vec<Ruleset>> {
    let pool = (0usize..5)
        .map(|i| (arb_frontend(i), arb_frontend(i)))
        .collect::<Vec<_>>();
    let choices = prop::collection::vec(prop::collection::vec(0u8..3, 5), 2..7);
    (pool, choices).prop_map(|(pool, steps)| {
        steps
            .into_iter()
            .map(|choice| Ruleset {
                table: TABLE.into(),
                frontends: pool
                    .iter()
                    .zip(choice)
                    .filter_map(|((a, b), c)| match c {
                        1 => Some(a.clone()),
                        2 => Some(b.clone()),
                        _ => None,
                    })
                    .collect(),
                guard: Vec::new(),
            })
            .collect()
    })
}

#[test]
fn random_change_sequences_end_like_a_fresh_full_sync() {
    if !kernel_tests_enabled("random_change_sequences_end_like_a_fresh_full_sync") {
        return;
    }
    let pair = Pair::new();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 16,
        ..ProptestConfig::default()
    });
    runner
        .run(&arb_steps(), |steps| {
            let steps: Vec<Ruleset> = steps
                .into_iter()
                .filter(|rs| dualstack_ruleset::validate(rs).is_ok())
                .collect();
            prop_assume!(steps.len() >= 2);
            pair.netlink.apply(&steps[0]).unwrap();
            pair.nft.apply(&steps[0]).unwrap();
            for pair_of in steps.windows(2) {
                let (remove, add) = diff(&pair_of[0].frontends, &pair_of[1].frontends);
                pair.netlink
                    .apply_changes(&remove, &add)
                    .map_err(|e| TestCaseError::fail(format!("netlink: {e}")))?;
                pair.nft
                    .apply_changes(&remove, &add)
                    .map_err(|e| TestCaseError::fail(format!("nft: {e}")))?;
                // Step by step, the netlink batch does what the nft text does.
                pair.same().map_err(TestCaseError::fail)?;
            }
            // And the end is a fresh full sync of the last ruleset (inert shared chains
            // aside).
            let last = steps.last().unwrap();
            let incremental =
                without_unused_allow_chains(normalized(&pair.nl_lister.list_json().unwrap()));
            pair.nft.apply(last).unwrap();
            let fresh = without_unused_allow_chains(normalized(&pair.nft.list_json().unwrap()));
            prop_assert_eq!(incremental, fresh);
            Ok(())
        })
        .unwrap();
}

#[test]
fn netlink_is_probed_first_and_the_probe_changes_nothing() {
    if !kernel_tests_enabled("netlink_is_probed_first_and_the_probe_changes_nothing") {
        return;
    }
    let ns = Netns::new("nlp").unwrap();
    let runner = Runner::in_netns(ns.name());
    let before = ns.exec("nft", &["list", "ruleset"]).unwrap();
    let mut sock = NftSocket::open_in_netns(ns.name()).unwrap();
    let generation = sock.generation().unwrap();
    dualstack_dataplane::probe_netlink(&runner).unwrap();
    let (plane, backend) = dualstack_dataplane::connect(&runner, TABLE).unwrap();
    assert_eq!(backend, dualstack_dataplane::Backend::Netlink);
    assert_eq!(plane.kind(), "netlink");
    assert_eq!(ns.exec("nft", &["list", "ruleset"]).unwrap(), before);
    assert_eq!(
        sock.generation().unwrap(),
        generation,
        "a dry run commits nothing"
    );
    // A dry run the kernel refuses is reported.
    let err = sock
        .check(|seq, genid| {
            let mut b = dualstack_nftnl::Batch::new(seq, genid);
            b.begin(MsgType::NewTable, 0x400, || "add table".into());
            b.str(1, "probe-bad");
            b.finish_msg();
            b.begin(MsgType::NewRule, 0x400 | 0x800, || {
                "rule in missing chain".into()
            });
            b.str(1, "probe-bad");
            b.str(2, "missing");
            b.finish_msg();
            b.finish_check()
        })
        .unwrap_err();
    assert!(matches!(err, NetlinkError::Rejected { .. }), "{err}");
}

#[test]
fn netlink_read_back_matches_nft_json_read_back_and_finds_drift() {
    if !kernel_tests_enabled("netlink_read_back_matches_nft_json_read_back_and_finds_drift") {
        return;
    }
    let pair = Pair::new();
    assert_eq!(pair.netlink.observe().unwrap(), None);
    let rs = realistic();
    pair.netlink.apply(&rs).unwrap();
    let by_netlink = pair.netlink.observe().unwrap().unwrap();
    let by_json = pair.nl_lister.observe().unwrap().unwrap();
    assert_eq!(by_netlink, by_json);
    assert!(!by_netlink.elements.is_empty() && !by_netlink.other_elements.is_empty());
    assert!(
        Dataplane::drift(&pair.netlink, &rs)
            .unwrap()
            .unwrap()
            .is_empty()
    );
    // Someone deletes an element behind our back: drift, seen over netlink.
    pair.nl_ns
        .nft(&format!(
            "delete element inet {TABLE} dnat-local4 {{ udp . 53 }}\n"
        ))
        .unwrap();
    let drift = Dataplane::drift(&pair.netlink, &rs).unwrap().unwrap();
    assert_eq!(drift.missing_elements.len(), 1, "{drift:?}");
}

/// The pool guard over netlink (no `nft` process): every shape nft encodes differently
/// (one address, one range, several ranges merged into an interval set, a range to the top
/// of the address space, one family only) lists exactly like the text path, reads back
/// without drift, survives incremental changes, and goes away with a ruleset without one.
#[test]
fn a_pool_guard_over_netlink_lists_like_the_text_path() {
    if !kernel_tests_enabled("a_pool_guard_over_netlink_lists_like_the_text_path") {
        return;
    }
    use dualstack_dataplane::Dataplane as _;
    use dualstack_ruleset::AddressRange;
    let range = |first: &str, last: &str| AddressRange {
        first: ip(first),
        last: ip(last),
    };
    let guards = vec![
        vec![
            range("192.0.2.200", "192.0.2.209"),
            range("2001:db8::200", "2001:db8::20f"),
        ],
        vec![range("192.0.2.200", "192.0.2.200")],
        vec![
            range("198.51.100.0", "198.51.100.255"),
            range("192.0.2.200", "192.0.2.209"),
            range("192.0.2.205", "192.0.2.220"),
            range("192.0.2.221", "192.0.2.221"),
            range("2001:db8::1", "2001:db8::1"),
            range("2001:db8:1::", "2001:db8:1::ff"),
        ],
        vec![
            range("255.255.255.0", "255.255.255.255"),
            range("10.1.0.0", "10.1.0.3"),
            range("ffff::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            range("::", "::ff"),
        ],
        vec![range("2001:db8::5", "2001:db8::5")],
    ];
    let pair = Pair::new();
    for guard in guards {
        let mut rs = realistic();
        rs.guard = guard.clone();
        pair.check(&rs).unwrap_or_else(|e| panic!("{guard:?}: {e}"));
        let listed = pair
            .nl_ns
            .exec("nft", &["list", "table", "inet", TABLE])
            .unwrap();
        assert!(listed.contains("pool-guard"), "{listed}");
        let drift = pair.netlink.drift(&rs).unwrap().unwrap();
        assert!(drift.is_empty(), "{drift:?}");
    }
    // Incremental changes on top of it keep the guard.
    let mut rs = realistic();
    rs.guard = vec![range("192.0.2.200", "192.0.2.209")];
    pair.check(&rs).unwrap();
    let removed = rs.frontends.remove(0);
    pair.netlink
        .apply_changes(std::slice::from_ref(&removed), &[])
        .unwrap();
    pair.nft.apply_changes(&[removed], &[]).unwrap();
    pair.same().unwrap();
    // Without a guard, the guard is gone.
    let plain = realistic();
    pair.check(&plain).unwrap();
    let listed = pair
        .nl_ns
        .exec("nft", &["list", "table", "inet", TABLE])
        .unwrap();
    assert!(!listed.contains("pool-guard"), "{listed}");
}

// ---- full syncs over a table in use ----

/// The kernel handles of our table and of its base chains (`nft -j` lists handles).
fn hooks(lister: &Nft) -> Vec<(String, u64)> {
    let json: Value = serde_json::from_str(&lister.list_json().unwrap().unwrap()).unwrap();
    let mut out = Vec::new();
    for item in json["nftables"].as_array().unwrap() {
        if let Some(t) = item.get("table") {
            out.push(("table".to_string(), t["handle"].as_u64().unwrap()));
        }
        if let Some(c) = item.get("chain").filter(|c| c.get("hook").is_some()) {
            let name = c["name"].as_str().unwrap().to_string();
            out.push((name, c["handle"].as_u64().unwrap()));
        }
    }
    out.sort();
    out
}

/// A full sync over a table in use replaces it in place — the table and its base chains
/// (the hooks packets run through) keep their kernel handles, so no packet crosses the
/// commit between an old and a new hook — and ends exactly like a fresh table, for both
/// appliers: random pairs of rulesets, each applied over the other and compared with the
/// second applied to an empty namespace. Includes a pool guard that comes and goes.
#[test]
fn a_full_sync_over_a_table_in_use_keeps_the_hooks_and_ends_like_a_fresh_table() {
    if !kernel_tests_enabled(
        "a_full_sync_over_a_table_in_use_keeps_the_hooks_and_ends_like_a_fresh_table",
    ) {
        return;
    }
    use dualstack_ruleset::AddressRange;
    let pair = Pair::new();
    let text_lister = Nft::new(Runner::in_netns(pair.text_ns.name()), TABLE).unwrap();
    let guard = vec![AddressRange {
        first: ip("192.0.2.200"),
        last: ip("192.0.2.209"),
    }];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 16,
        ..ProptestConfig::default()
    });
    let strategy = (arb_ruleset(), arb_ruleset(), any::<(bool, bool)>());
    runner
        .run(&strategy, |(mut first, mut second, (g1, g2))| {
            if g1 {
                first.guard = guard.clone();
            }
            if g2 {
                second.guard = guard.clone();
            }
            prop_assume!(dualstack_ruleset::validate(&first).is_ok());
            prop_assume!(dualstack_ruleset::validate(&second).is_ok());
            // netlink in place, nft fresh; then the other way round.
            for netlink_in_place in [true, false] {
                let (in_place, fresh): (&dyn Dataplane, &dyn Dataplane) = if netlink_in_place {
                    (&pair.netlink, &pair.nft)
                } else {
                    (&pair.nft, &pair.netlink)
                };
                let lister = if netlink_in_place {
                    &pair.nl_lister
                } else {
                    &text_lister
                };
                in_place.apply(&first).unwrap();
                let before = hooks(lister);
                in_place
                    .apply(&second)
                    .map_err(|e| TestCaseError::fail(format!("{}: {e}", in_place.kind())))?;
                let after = hooks(lister);
                // The guard is a base chain of its own: compare the four that stay.
                let common = |h: &[(String, u64)]| -> Vec<(String, u64)> {
                    h.iter()
                        .filter(|(n, _)| n != "pool-guard")
                        .cloned()
                        .collect()
                };
                prop_assert_eq!(
                    common(&before),
                    common(&after),
                    "{} replaced a hook",
                    in_place.kind()
                );
                fresh.cleanup().unwrap();
                fresh.apply(&second).unwrap();
                pair.same().map_err(TestCaseError::fail)?;
            }
            Ok(())
        })
        .unwrap();
}

/// A map that outgrows its capacity is declared anew inside the in-place replace (the
/// kernel keeps a map's `size` on re-declaration), with the table and hooks kept.
#[test]
fn a_full_sync_that_outgrows_a_map_declares_it_anew_in_place() {
    if !kernel_tests_enabled("a_full_sync_that_outgrows_a_map_declares_it_anew_in_place") {
        return;
    }
    let pair = Pair::new();
    let many = |n: u16| Ruleset {
        table: TABLE.into(),
        guard: Vec::new(),
        frontends: (0..n)
            .map(|i| Frontend {
                name: format!("default/svc-{i}"),
                destination: Destination::Addresses(vec![ip("192.0.2.10")]),
                protocol: Protocol::Tcp,
                port: 1000 + i,
                source_ranges: Vec::new(),
                backends: vec![b("10.42.0.7:8080")],
                selection: Selection::Random,
                masquerade: true,
            })
            .collect(),
    };
    let size_of = |lister: &Nft, map: &str| -> u64 {
        let json: Value = serde_json::from_str(&lister.list_json().unwrap().unwrap()).unwrap();
        json["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i.get("map"))
            .find(|m| m["name"] == map)
            .and_then(|m| m["size"].as_u64())
            .unwrap()
    };
    pair.check(&many(10)).unwrap();
    let before = hooks(&pair.nl_lister);
    assert_eq!(size_of(&pair.nl_lister, "dnat-masq-addr4"), 1024);
    // 600 elements need a capacity of 2048.
    pair.check(&many(600)).unwrap();
    assert_eq!(hooks(&pair.nl_lister), before);
    assert_eq!(size_of(&pair.nl_lister, "dnat-masq-addr4"), 2048);
    // Shrinking keeps the larger map (no new map, so no lookup can miss).
    pair.check(&many(10)).unwrap();
    assert_eq!(size_of(&pair.nl_lister, "dnat-masq-addr4"), 2048);
    assert_eq!(hooks(&pair.nl_lister), before);
}

// ---- many changes: the difference, only while the kernel is provably untouched ----

/// Frontend `i` of a simple workload, with its one backend `n` per family.
fn numbered(i: u16, n: u8) -> Frontend {
    Frontend {
        name: format!("ns/svc-{i}:http"),
        destination: Destination::Addresses(vec![ip("192.0.2.10"), ip("2001:db8::10")]),
        protocol: Protocol::Tcp,
        port: 8000 + i,
        source_ranges: vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()],
        backends: vec![b(&format!("10.42.0.{n}:80")), b(&format!("[fd42::{n}]:80"))],
        selection: Selection::Random,
        masquerade: i.is_multiple_of(2),
    }
}

#[test]
fn many_changes_are_sent_as_a_difference_only_while_nothing_else_committed() {
    if !kernel_tests_enabled(
        "many_changes_are_sent_as_a_difference_only_while_nothing_else_committed",
    ) {
        return;
    }
    let pair = Pair::new();
    let ruleset = |frontends: Vec<Frontend>| Ruleset {
        table: TABLE.into(),
        guard: Vec::new(),
        frontends,
    };
    let first: Vec<Frontend> = (0..40).map(|i| numbered(i, 1)).collect();
    // Half of them move to another backend, ten go, ten come.
    let second: Vec<Frontend> = (10..60)
        .map(|i| numbered(i, if i < 30 { 2 } else { 1 }))
        .collect();
    let third: Vec<Frontend> = (0..30).map(|i| numbered(i, 3)).collect();
    pair.netlink.apply(&ruleset(first.clone())).unwrap();
    let (remove, add) = diff(&first, &second);
    assert!(
        pair.netlink
            .apply_changes_if_untouched(&first, &remove, &add)
            .unwrap(),
        "nothing committed since the handle's own full sync: the difference is sent"
    );
    // The table is exactly the second ruleset applied fresh (text path, other namespace).
    pair.nft.apply(&ruleset(second.clone())).unwrap();
    assert_eq!(
        without_unused_allow_chains(normalized(&pair.nl_lister.list_json().unwrap())),
        without_unused_allow_chains(normalized(&pair.nft.list_json().unwrap())),
    );

    // A `previous` that is not what the handle committed: refused before anything is sent.
    let (remove, add) = diff(&second, &third);
    let before = pair.nl_lister.list_json().unwrap();
    assert!(
        !pair
            .netlink
            .apply_changes_if_untouched(&first, &remove, &add)
            .unwrap()
    );
    assert_eq!(pair.nl_lister.list_json().unwrap(), before);

    // Someone else commits anything (another table): the kernel refuses the difference
    // whole, and the table is untouched by it.
    pair.nl_ns
        .exec("nft", &["add", "table", "inet", "someone-else"])
        .unwrap();
    assert!(
        !pair
            .netlink
            .apply_changes_if_untouched(&second, &remove, &add)
            .unwrap()
    );
    assert_eq!(pair.nl_lister.list_json().unwrap(), before);

    // An unchecked incremental change after that foreign commit keeps the handle unsure.
    let (r1, a1) = diff(&second, &third);
    pair.netlink.apply_changes(&r1, &a1).unwrap();
    let back = diff(&third, &second);
    assert!(
        !pair
            .netlink
            .apply_changes_if_untouched(&third, &back.0, &back.1)
            .unwrap()
    );
    // A full sync makes it sure again.
    pair.netlink.apply(&ruleset(third.clone())).unwrap();
    assert!(
        pair.netlink
            .apply_changes_if_untouched(&third, &back.0, &back.1)
            .unwrap()
    );
    pair.nft.apply(&ruleset(second.clone())).unwrap();
    assert_eq!(
        without_unused_allow_chains(normalized(&pair.nl_lister.list_json().unwrap())),
        without_unused_allow_chains(normalized(&pair.nft.list_json().unwrap())),
    );
    // The other table is still there, as it was.
    let other = pair
        .nl_ns
        .exec("nft", &["list", "table", "inet", "someone-else"])
        .unwrap();
    assert!(other.contains("table inet someone-else"), "{other}");
}
