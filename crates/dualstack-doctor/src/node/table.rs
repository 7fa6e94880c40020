//! Our own `table inet dualstack`, if installed: compared with what the agent programs.
//!
//! What is compared here is self-consistency of what the kernel holds (the comparison with
//! what the agent publishes is `node.table.desired`, [`super::desired`]): every base chain and map the renderer
//! creates is present ([`dualstack_ruleset::nft::skeleton`]), every element sits in one of
//! our maps, and every jump element targets a chain that exists. A half-applied or
//! hand-edited table fails here.

use super::{NodeFacts, TableState};
use crate::Check;

const ID: &str = "node.table";

pub fn check(f: &NodeFacts) -> Check {
    let (name, chains, elements, other_elements) = match &f.table {
        TableState::NotInstalled => {
            return Check::ok(
                ID,
                "table inet dualstack not installed (no dualstack agent on this node)",
            );
        }
        TableState::Unreadable(why) => {
            return Check::warn(
                ID,
                format!("cannot read our table: {why}"),
                "run `dualstack doctor node` as root on the node itself",
            );
        }
        TableState::Present {
            name,
            chains,
            elements,
            other_elements,
        } => (name, chains, elements, other_elements),
    };
    let (base, maps) = dualstack_ruleset::nft::skeleton();
    let mut problems = Vec::new();
    let missing: Vec<&str> = base
        .iter()
        .copied()
        .filter(|c| !chains.contains(*c))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("base chain(s) missing: {}", missing.join(", ")));
    }
    for (map, key, target) in elements {
        if !maps.contains(&map.as_str()) {
            problems.push(format!("element {key} in unknown map {map}"));
        }
        if !chains.contains(target) {
            problems.push(format!("{map}: {key} jumps to missing chain {target}"));
        }
    }
    for (map, key, _) in other_elements {
        if !maps.contains(&map.as_str()) {
            problems.push(format!("element {key} in unknown map {map}"));
        }
    }
    if problems.is_empty() {
        Check::ok(
            ID,
            format!(
                "table inet {name}: {} chains, {} map elements ({} jumps, {} DNAT targets or drops); all base chains present, every jump reaches an existing chain",
                chains.len(),
                elements.len() + other_elements.len(),
                elements.len(),
                other_elements.len()
            ),
        )
    } else {
        Check::fail(
            ID,
            format!("table inet {name} is inconsistent: {}", problems.join("; ")),
            format!(
                "nft delete table inet {name}   (then restart the dualstack agent on this node; it reprograms the whole table)"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::healthy;
    use super::*;
    use crate::Status;
    use std::collections::BTreeSet;

    fn present(
        extra_chains: &[&str],
        elements: &[(&str, &str, &str)],
        drop: Option<&str>,
    ) -> TableState {
        let (base, _) = dualstack_ruleset::nft::skeleton();
        let mut chains: BTreeSet<String> = base.iter().map(|s| s.to_string()).collect();
        chains.extend(extra_chains.iter().map(|s| s.to_string()));
        if let Some(d) = drop {
            chains.remove(d);
        }
        TableState::Present {
            name: "dualstack".into(),
            chains,
            elements: elements
                .iter()
                .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
                .collect(),
            other_elements: BTreeSet::from([(
                "dnat-addr4".to_string(),
                "10.0.1.1 . tcp . 443".to_string(),
                "10.42.0.7 . 8443".to_string(),
            )]),
        }
    }

    #[test]
    fn table() {
        let (base, _) = dualstack_ruleset::nft::skeleton();
        let el = [("nat-addr4", "10.0.1.1 . tcp . 80", "fe4-web-1")];
        let cases = vec![
            (TableState::NotInstalled, Status::Ok, ""),
            (
                TableState::Unreadable("permission denied".into()),
                Status::Warn,
                "permission denied",
            ),
            (
                present(&["fe4-web-1"], &el, None),
                Status::Ok,
                "2 map elements (1 jumps, 1 DNAT targets or drops)",
            ),
            (
                present(&[], &el, None),
                Status::Fail,
                "jumps to missing chain fe4-web-1",
            ),
            (
                present(&["fe4-web-1"], &[("other", "x", "fe4-web-1")], None),
                Status::Fail,
                "unknown map other",
            ),
            (
                present(&[], &[], Some(base[0])),
                Status::Fail,
                "base chain(s) missing",
            ),
        ];
        for (state, want, text) in cases {
            let mut f = healthy();
            f.table = state;
            let c = check(&f);
            assert_eq!(c.status, want, "{c:#?}");
            assert!(c.message.contains(text), "{c:#?}");
        }
    }
}
