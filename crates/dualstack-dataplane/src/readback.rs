//! Reading our table back (`nft -j list table inet T`) and comparing it with what a ruleset
//! should have put there (drift detection). Parsing only; no processes.

use std::collections::BTreeSet;

use dualstack_ruleset::nft::{Element, Expected, Present, is_shared_chain};
use serde_json::Value;

use crate::DataplaneError;

/// The parts of our table that carry frontends, as the kernel reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Every chain in the table (base chains included).
    pub chains: BTreeSet<String>,
    /// Every `goto`/`jump` element of a verdict map as `(map, key text, target chain)`, key
    /// text like `10.0.0.1 . tcp . 80`.
    pub elements: BTreeSet<(String, String, String)>,
    /// Every other element as `(map, key text, value text)`: another verdict (`drop`), a
    /// data-map value (`10.42.0.7 . 8443`), or an empty value for a set member.
    pub other_elements: BTreeSet<(String, String, String)>,
}

/// Differences between what we expect and what the kernel has. Empty means no drift.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    /// Chains the ruleset needs (base chains included) that the table lacks.
    pub missing_chains: Vec<String>,
    /// Chains in the table the ruleset does not have, except a shared range chain no
    /// element jumps to (left behind by incremental changes, inert).
    pub unexpected_chains: Vec<String>,
    /// Map elements the ruleset needs that the table lacks, as `map: key : value` (or
    /// `map: key` for a set member).
    pub missing_elements: Vec<String>,
    /// Map elements in the table the ruleset does not have, in the same form; a changed
    /// value shows as one missing and one unexpected element.
    pub unexpected_elements: Vec<String>,
}

impl Drift {
    /// True when the kernel matches the ruleset.
    pub fn is_empty(&self) -> bool {
        self.missing_chains.is_empty()
            && self.unexpected_chains.is_empty()
            && self.missing_elements.is_empty()
            && self.unexpected_elements.is_empty()
    }
}

fn bad(detail: String) -> DataplaneError {
    DataplaneError::BadJson { detail }
}

/// The items of `nft -j` output (the top-level `nftables` array).
fn nftables_items(json: &str) -> Result<Vec<Value>, DataplaneError> {
    let root: Value = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    match root {
        Value::Object(mut map) => match map.remove("nftables") {
            Some(Value::Array(items)) => Ok(items),
            _ => Err(bad("no top-level \"nftables\" array".into())),
        },
        _ => Err(bad("no top-level \"nftables\" array".into())),
    }
}

/// Adds the chains (from `nft -j list chains inet`) or maps (from `nft -t -j list maps inet`)
/// of `table` to `present`: what a full sync replacing the table in place needs.
pub fn parse_present(json: &str, table: &str, present: &mut Present) -> Result<(), DataplaneError> {
    let items = nftables_items(json)?;
    let ours = |o: &Value| {
        o.get("family").and_then(Value::as_str) == Some("inet")
            && o.get("table").and_then(Value::as_str) == Some(table)
    };
    for item in &items {
        if let Some(chain) = item.get("chain").filter(|c| ours(c)) {
            let name = chain.get("name").and_then(Value::as_str);
            let name = name.ok_or_else(|| bad(format!("chain without a name: {chain}")))?;
            present.chains.insert(name.to_string());
        } else if let Some(map) = item.get("map").filter(|m| ours(m)) {
            let name = map.get("name").and_then(Value::as_str);
            let name = name.ok_or_else(|| bad(format!("map without a name: {map}")))?;
            let size = map.get("size").and_then(Value::as_u64).unwrap_or(0);
            present
                .maps
                .insert(name.to_string(), u32::try_from(size).unwrap_or(u32::MAX));
        }
    }
    Ok(())
}

/// Parses `nft -j list table …` output. Checks `json_schema_version` is 1.
pub fn parse(json: &str) -> Result<Observed, DataplaneError> {
    let items = nftables_items(json)?;
    let mut observed = Observed::default();
    for item in &items {
        if let Some(meta) = item.get("metainfo") {
            let version = meta.get("json_schema_version").and_then(Value::as_u64);
            if version != Some(1) {
                return Err(bad(format!(
                    "json_schema_version is {version:?}, expected 1"
                )));
            }
        } else if let Some(chain) = item.get("chain") {
            if let Some(name) = chain.get("name").and_then(Value::as_str) {
                observed.chains.insert(name.to_string());
            }
        } else if let Some(store) = item.get("map").or_else(|| item.get("set")) {
            let is_map = item.get("map").is_some();
            let name = store
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("map or set without a name".into()))?;
            for elem in store
                .get("elem")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let unexpected = || bad(format!("unexpected element in {name}: {elem}"));
                if !is_map {
                    let key = value_text(elem).ok_or_else(unexpected)?;
                    observed
                        .other_elements
                        .insert((name.to_string(), key, String::new()));
                    continue;
                }
                let Some([key, value]) = elem.as_array().map(Vec::as_slice) else {
                    return Err(unexpected());
                };
                let key = value_text(key).ok_or_else(unexpected)?;
                if let Some(target) = jump_target(value) {
                    observed.elements.insert((name.to_string(), key, target));
                } else {
                    let value = verdict_text(value)
                        .or_else(|| value_text(value))
                        .ok_or_else(unexpected)?;
                    observed
                        .other_elements
                        .insert((name.to_string(), key, value));
                }
            }
        }
    }
    Ok(observed)
}

/// A key or data value as nft prints it: a scalar, or a concatenation joined by ` . `.
/// Elements with options (timeout, comment) come wrapped as `{"elem": {"val": …}}`.
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => {
            if let Some(inner) = o.get("elem").and_then(|e| e.get("val")) {
                return value_text(inner);
            }
            let parts = o.get("concat")?.as_array()?;
            let texts: Option<Vec<String>> = parts.iter().map(value_text).collect();
            Some(texts?.join(" . "))
        }
        _ => None,
    }
}

fn jump_target(verdict: &Value) -> Option<String> {
    let inner = verdict.get("goto").or_else(|| verdict.get("jump"))?;
    Some(inner.get("target")?.as_str()?.to_string())
}

/// A verdict without a target (`{"drop": null}`) as its keyword.
fn verdict_text(verdict: &Value) -> Option<String> {
    let object = verdict.as_object()?;
    match object.iter().collect::<Vec<_>>().as_slice() {
        [(word, Value::Null)]
            if matches!(word.as_str(), "accept" | "drop" | "continue" | "return") =>
        {
            Some(word.to_string())
        }
        _ => None,
    }
}

/// Compares expected and observed state. Base chains are expected too. A shared range
/// chain that is not expected and that no element jumps to is not drift: incremental
/// changes leave it behind on purpose, it is inert, and the next full sync drops it.
pub fn diff(expected: &Expected, base_chains: &[&str], observed: &Observed) -> Drift {
    let want_chains: BTreeSet<String> = expected
        .chains
        .iter()
        .cloned()
        .chain(base_chains.iter().map(|c| c.to_string()))
        .collect();
    let want_elements: BTreeSet<(String, String, String)> =
        expected.elements.iter().map(element_tuple).collect();
    let have_elements: BTreeSet<(String, String, String)> = observed
        .elements
        .iter()
        .map(|(m, k, c)| (m.clone(), k.clone(), format!("goto {c}")))
        .chain(observed.other_elements.iter().cloned())
        .collect();
    let targets: BTreeSet<&str> = observed
        .elements
        .iter()
        .map(|(_, _, c)| c.as_str())
        .collect();
    let show = |(m, k, v): &(String, String, String)| {
        if v.is_empty() {
            format!("{m}: {k}")
        } else {
            format!("{m}: {k} : {v}")
        }
    };
    Drift {
        missing_chains: want_chains.difference(&observed.chains).cloned().collect(),
        unexpected_chains: observed
            .chains
            .difference(&want_chains)
            .filter(|c| !is_shared_chain(c) || targets.contains(c.as_str()))
            .cloned()
            .collect(),
        missing_elements: want_elements.difference(&have_elements).map(show).collect(),
        unexpected_elements: have_elements.difference(&want_elements).map(show).collect(),
    }
}

fn element_tuple(e: &Element) -> (String, String, String) {
    (e.map.to_string(), e.key_text(), e.value_text())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dualstack_ruleset::nft::{Key, Value as Target};
    use dualstack_ruleset::{Backend, Protocol};

    /// Trimmed from `nft -j list table inet t` (nft 1.0.6) of a table with every kind of
    /// element: a jump, a `drop` verdict, data-map values, an element with options
    /// (wrapped in `{"elem": …}`), and a set (we declare none; read anyway).
    const SAMPLE: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
      {"table": {"family": "inet", "name": "t", "handle": 1}},
      {"map": {"family": "inet", "name": "nat-addr4", "table": "t", "type": ["ipv4_addr", "inet_proto", "inet_service"], "handle": 2, "map": "verdict",
        "elem": [[{"concat": ["10.0.1.1", "tcp", 80]}, {"goto": {"target": "fe4-web-1"}}]]}},
      {"map": {"family": "inet", "name": "nat-local", "table": "t", "type": ["nf_proto", "inet_proto", "inet_service"], "handle": 3, "map": "verdict"}},
      {"map": {"family": "inet", "name": "fw-addr4", "table": "t", "type": ["ipv4_addr", "inet_proto", "inet_service"], "handle": 4, "map": "verdict",
        "elem": [[{"concat": ["10.0.1.1", "tcp", 81]}, {"drop": null}]]}},
      {"map": {"family": "inet", "name": "dnat-local6", "table": "t", "type": ["inet_proto", "inet_service"], "handle": 8, "map": "ipv6_addr . inet_service",
        "elem": [[{"concat": ["udp", 53]}, {"concat": ["fd00:43::10", 53]}]]}},
      {"map": {"family": "inet", "name": "dnat-masq-addr4", "table": "t", "type": ["ipv4_addr", "inet_proto", "inet_service"], "handle": 9, "map": "ipv4_addr . inet_service",
        "elem": [[{"concat": ["10.0.1.1", "tcp", 82]}, {"concat": ["10.42.0.1", 80]}], [{"elem": {"val": {"concat": ["10.0.1.1", "tcp", 83]}, "comment": "x"}}, {"concat": ["10.42.0.2", 80]}]]}},
      {"set": {"family": "inet", "name": "some-set", "table": "t", "type": ["ipv4_addr", "inet_proto", "inet_service"], "handle": 10,
        "elem": [{"concat": ["10.0.1.1", "tcp", 80]}]}},
      {"chain": {"family": "inet", "table": "t", "name": "fe4-web-1", "handle": 5}},
      {"chain": {"family": "inet", "table": "t", "name": "allow4-00000000000000aa", "handle": 6}}]}"#;

    fn triple(m: &str, k: &str, v: &str) -> (String, String, String) {
        (m.to_string(), k.to_string(), v.to_string())
    }

    #[test]
    fn parses_chains_and_every_kind_of_element() {
        let o = parse(SAMPLE).unwrap();
        assert_eq!(
            o.chains,
            BTreeSet::from([
                "fe4-web-1".to_string(),
                "allow4-00000000000000aa".to_string()
            ])
        );
        assert_eq!(
            o.elements,
            BTreeSet::from([triple("nat-addr4", "10.0.1.1 . tcp . 80", "fe4-web-1")])
        );
        assert_eq!(
            o.other_elements,
            BTreeSet::from([
                triple("fw-addr4", "10.0.1.1 . tcp . 81", "drop"),
                triple("dnat-local6", "udp . 53", "fd00:43::10 . 53"),
                triple("dnat-masq-addr4", "10.0.1.1 . tcp . 82", "10.42.0.1 . 80"),
                triple("dnat-masq-addr4", "10.0.1.1 . tcp . 83", "10.42.0.2 . 80"),
                triple("some-set", "10.0.1.1 . tcp . 80", ""),
            ])
        );
    }

    #[test]
    fn rejects_other_schemas_and_garbage() {
        let other = SAMPLE.replace("\"json_schema_version\": 1", "\"json_schema_version\": 2");
        assert!(
            parse(&other)
                .unwrap_err()
                .to_string()
                .contains("json_schema_version")
        );
        assert!(parse("not json").is_err());
        assert!(parse("{}").is_err());
        let odd = SAMPLE.replace("{\"drop\": null}", "{\"queue\": {\"num\": 1}}");
        assert!(parse(&odd).unwrap_err().to_string().contains("fw-addr4"));
    }

    #[test]
    fn diff_reports_both_directions() {
        let o = parse(SAMPLE).unwrap();
        let d = diff(&Expected::default(), &["nat-prerouting"], &o);
        assert_eq!(d.missing_chains, vec!["nat-prerouting".to_string()]);
        // The unreferenced shared range chain is left over from an incremental removal,
        // not drift.
        assert_eq!(d.unexpected_chains, vec!["fe4-web-1".to_string()]);
        assert_eq!(
            d.unexpected_elements,
            vec![
                "dnat-local6: udp . 53 : fd00:43::10 . 53".to_string(),
                "dnat-masq-addr4: 10.0.1.1 . tcp . 82 : 10.42.0.1 . 80".to_string(),
                "dnat-masq-addr4: 10.0.1.1 . tcp . 83 : 10.42.0.2 . 80".to_string(),
                "fw-addr4: 10.0.1.1 . tcp . 81 : drop".to_string(),
                "nat-addr4: 10.0.1.1 . tcp . 80 : goto fe4-web-1".to_string(),
                "some-set: 10.0.1.1 . tcp . 80".to_string(),
            ]
        );
        assert!(!d.is_empty());
    }

    fn backend(addr: &str, port: u16) -> Backend {
        Backend {
            addr: addr.parse().unwrap(),
            port,
        }
    }

    #[test]
    fn expected_elements_compare_equal_to_their_readback() {
        let key = |port| Key::Address("10.0.1.1".parse().unwrap(), Protocol::Tcp, port);
        let element = |map, key, value| Element { map, key, value };
        let mut expected = Expected::default();
        expected.chains.insert("fe4-web-1".into());
        expected.elements.extend([
            element("nat-addr4", key(80), Target::Goto("fe4-web-1".into())),
            element("fw-addr4", key(81), Target::Drop),
            element(
                "dnat-masq-addr4",
                key(82),
                Target::Dnat(backend("10.42.0.1", 80)),
            ),
            element(
                "dnat-masq-addr4",
                key(83),
                Target::Dnat(backend("10.42.0.2", 80)),
            ),
            element(
                "dnat-local6",
                Key::Local(dualstack_addr::Family::V6, Protocol::Udp, 53),
                Target::Dnat(backend("fd00:43::10", 53)),
            ),
        ]);
        let mut o = parse(SAMPLE).unwrap();
        o.other_elements.retain(|(m, _, _)| m != "some-set");
        assert!(
            diff(&expected, &[], &o).is_empty(),
            "{:?}",
            diff(&expected, &[], &o)
        );

        // A range chain something still jumps to is drift when not expected.
        let mut jumping = o.clone();
        jumping.elements.insert(triple(
            "fw-addr4",
            "10.0.1.1 . tcp . 83",
            "allow4-00000000000000aa",
        ));
        let d = diff(&expected, &[], &jumping);
        assert_eq!(
            d.unexpected_chains,
            vec!["allow4-00000000000000aa".to_string()]
        );
        assert_eq!(d.unexpected_elements.len(), 1);

        // A changed DNAT target is one missing and one unexpected element.
        let mut moved = o;
        moved
            .other_elements
            .remove(&triple("dnat-local6", "udp . 53", "fd00:43::10 . 53"));
        moved
            .other_elements
            .insert(triple("dnat-local6", "udp . 53", "fd00:43::11 . 53"));
        let d = diff(&expected, &[], &moved);
        assert_eq!(
            (d.missing_elements.len(), d.unexpected_elements.len()),
            (1, 1),
            "{d:?}"
        );
    }
}
