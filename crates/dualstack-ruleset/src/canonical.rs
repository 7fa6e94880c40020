//! The canonical form of what our table holds, and its hash: the stable, compact identity of
//! a ruleset that the agent publishes and the doctor recomputes from the kernel.
//!
//! The form is a sorted set of lines, one per object the read-back of our table reports
//! (`nft -j list table`, or the netlink dump — both give the same view):
//!
//! ```text
//! chain fe4-default_web_http-1a2b3c4d
//! element dnat-addr6 fd00:1::1 . tcp . 80 : fd00:2::2 . 8080
//! element fw-addr4 10.0.1.1 . tcp . 80 : goto allow4-00ab…
//! ```
//!
//! * every chain except the base chains (they are always there; `node.table` checks them),
//!   and except a shared source-range chain (`allow4-…`/`allow6-…`) that no element jumps to
//!   (incremental removals leave those behind on purpose: inert, not drift);
//! * every element of our maps as `map key : value`, in nft's own spelling.
//!
//! Sets have no order and handles are not part of it, so two tables that hold the same
//! things hash equal however they were built (one full transaction, or many incremental
//! ones). The hash is `sha256:` and the lower-case hex SHA-256 of the lines, each ended by
//! `\n`, in byte order.
//!
//! What it does not cover: the rules inside chains. Those follow from the chain's name for
//! the shared range chains and the pool guard, but a frontend chain (`fe4-…`/`fe6-…`, a
//! frontend with several backends of one family) carries its backend list in its rule, which
//! the read-back does not decode yet; for such a frontend a changed backend list with the
//! same chain name hashes equal.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::model::Ruleset;
use crate::nft::{Expected, expected, is_shared_chain, skeleton};
use crate::validate::InvalidRuleset;

/// The canonical lines of a table (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Canonical {
    lines: BTreeSet<String>,
}

impl Canonical {
    /// What `ruleset` puts in the kernel, in canonical form.
    pub fn of_ruleset(ruleset: &Ruleset) -> Result<Canonical, InvalidRuleset> {
        Ok(Canonical::of_expected(&expected(ruleset)?))
    }

    /// [`Canonical::of_ruleset`] from an already computed [`Expected`].
    pub fn of_expected(exp: &Expected) -> Canonical {
        Canonical::of_table(
            exp.chains.iter().map(String::as_str),
            exp.elements
                .iter()
                .map(|e| (e.map.to_string(), e.key_text(), e.value_text())),
        )
    }

    /// A table as read back: its chain names (base chains may be included, they are
    /// dropped) and its elements as `(map, key text, value text)`, a jump's value spelled
    /// `goto <chain>`.
    pub fn of_table<'a>(
        chains: impl IntoIterator<Item = &'a str>,
        elements: impl IntoIterator<Item = (String, String, String)>,
    ) -> Canonical {
        let (base, _) = skeleton();
        let elements: Vec<(String, String, String)> = elements.into_iter().collect();
        let targets: BTreeSet<&str> = elements
            .iter()
            .filter_map(|(_, _, v)| v.strip_prefix("goto "))
            .collect();
        let mut lines: BTreeSet<String> = chains
            .into_iter()
            .filter(|c| !base.contains(c))
            .filter(|c| !is_shared_chain(c) || targets.contains(c))
            .map(|c| format!("chain {c}"))
            .collect();
        lines.extend(elements.iter().map(|(m, k, v)| element_line(m, k, v)));
        Canonical { lines }
    }

    /// The lines, sorted.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(String::as_str)
    }

    /// `sha256:<64 lower-case hex digits>` of the lines.
    pub fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        for line in &self.lines {
            hasher.update(line.as_bytes());
            hasher.update(b"\n");
        }
        let mut out = String::with_capacity(7 + 64);
        out.push_str("sha256:");
        for byte in hasher.finalize() {
            let _ = write!(out, "{byte:02x}");
        }
        out
    }
}

/// One element's canonical line.
pub fn element_line(map: &str, key: &str, value: &str) -> String {
    if value.is_empty() {
        format!("element {map} {key}")
    } else {
        format!("element {map} {key} : {value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Backend, Destination, Frontend, Protocol};

    fn frontend(name: &str, port: u16, backends: &[&str]) -> Frontend {
        Frontend {
            name: name.into(),
            destination: Destination::Addresses(vec!["10.0.1.1".parse().unwrap()]),
            protocol: Protocol::Tcp,
            port,
            source_ranges: vec!["10.0.0.0/8".parse().unwrap(), "::/0".parse().unwrap()],
            backends: backends
                .iter()
                .map(|a| Backend {
                    addr: a.parse().unwrap(),
                    port: 8080,
                })
                .collect(),
            selection: Default::default(),
            masquerade: true,
        }
    }

    fn ruleset(frontends: Vec<Frontend>) -> Ruleset {
        Ruleset {
            table: "dualstack".into(),
            frontends,
            guard: Vec::new(),
        }
    }

    #[test]
    fn equal_contents_hash_equal_whatever_the_order() {
        let a = frontend("default/a:http", 80, &["10.42.0.1"]);
        let b = frontend("default/b:http", 81, &["10.42.0.2", "10.42.0.3"]);
        let one = Canonical::of_ruleset(&ruleset(vec![a.clone(), b.clone()])).unwrap();
        let two = Canonical::of_ruleset(&ruleset(vec![b, a])).unwrap();
        assert_eq!(one.hash(), two.hash());
        assert!(one.hash().starts_with("sha256:") && one.hash().len() == 7 + 64);

        // The same table as read back: base chains listed, elements in another order, and
        // an unreferenced shared chain left over from an incremental removal.
        let exp = expected(&ruleset(vec![frontend(
            "default/a:http",
            80,
            &["10.42.0.1"],
        )]))
        .unwrap();
        let mut chains: Vec<String> = exp.chains.iter().cloned().collect();
        chains.extend(skeleton().0.iter().map(|c| c.to_string()));
        chains.push("allow6-00000000000000ff".into());
        chains.reverse();
        let mut elements: Vec<_> = exp
            .elements
            .iter()
            .map(|e| (e.map.to_string(), e.key_text(), e.value_text()))
            .collect();
        elements.reverse();
        let read = Canonical::of_table(chains.iter().map(String::as_str), elements);
        assert_eq!(read, Canonical::of_expected(&exp));
        assert_eq!(read.hash(), Canonical::of_expected(&exp).hash());
    }

    #[test]
    fn any_difference_changes_the_hash() {
        let base = ruleset(vec![frontend("default/a:http", 80, &["10.42.0.1"])]);
        let h = |r: &Ruleset| Canonical::of_ruleset(r).unwrap().hash();
        let mut other_backend = base.clone();
        other_backend.frontends[0].backends[0].addr = "10.42.0.9".parse().unwrap();
        let mut other_port = base.clone();
        other_port.frontends[0].port = 8080;
        let mut open = base.clone();
        open.frontends[0].source_ranges = vec!["0.0.0.0/0".parse().unwrap()];
        let empty = ruleset(Vec::new());
        let hashes: BTreeSet<String> = [&base, &other_backend, &other_port, &open, &empty]
            .into_iter()
            .map(h)
            .collect();
        assert_eq!(hashes.len(), 5);
        // Known value of the empty table: the hash of no lines at all.
        assert_eq!(
            h(&empty),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn lines_spell_elements_like_nft() {
        let c = Canonical::of_ruleset(&ruleset(vec![frontend(
            "default/a:http",
            80,
            &["10.42.0.1"],
        )]))
        .unwrap();
        let lines: Vec<&str> = c.lines().collect();
        assert!(
            lines.contains(&"element dnat-masq-addr4 10.0.1.1 . tcp . 80 : 10.42.0.1 . 8080"),
            "{lines:#?}"
        );
        assert!(lines.iter().any(|l| l.starts_with("chain allow4-")));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn frontends() -> impl Strategy<Value = Vec<Frontend>> {
            proptest::collection::btree_map(1u16..2000, (1usize..4, any::<bool>()), 0..12).prop_map(
                |ports| {
                    ports
                        .into_iter()
                        .map(|(port, (n, ranged))| {
                            let backends: Vec<String> = (0..n)
                                .map(|i| format!("10.42.{}.{i}", port % 250))
                                .collect();
                            let refs: Vec<&str> = backends.iter().map(String::as_str).collect();
                            let mut fe = frontend(&format!("ns/svc-{port}:p"), port, &refs);
                            if !ranged {
                                fe.source_ranges =
                                    vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()];
                            }
                            fe
                        })
                        .collect()
                },
            )
        }

        proptest! {
            /// Equal contents hash equal in any order, from the model or from a read-back
            /// listing chains and elements in any order.
            #[test]
            fn order_never_matters(
                (list, shuffled) in frontends().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
                seed in any::<u64>(),
            ) {
                let a = Canonical::of_ruleset(&ruleset(list)).unwrap();
                let exp = expected(&ruleset(shuffled)).unwrap();
                let mut elements: Vec<_> = exp
                    .elements
                    .iter()
                    .map(|e| (e.map.to_string(), e.key_text(), e.value_text()))
                    .collect();
                let len = elements.len().max(1);
                elements.rotate_left(usize::try_from(seed).unwrap_or(0) % len);
                let read = Canonical::of_table(exp.chains.iter().map(String::as_str), elements);
                prop_assert_eq!(a.hash(), read.hash());
            }
        }
    }
}
