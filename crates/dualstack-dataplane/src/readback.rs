//! Reading our table back (`nft -j list table inet T`) and comparing it with what a ruleset
//! should have put there (drift detection). Parsing only; no processes.

use std::collections::BTreeSet;

use dualstack_ruleset::nft::{Element, Expected};
use serde_json::Value;

use crate::DataplaneError;

/// The parts of our table that carry frontends, as the kernel reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Every chain in the table (base chains included).
    pub chains: BTreeSet<String>,
    /// Every map element as `(map, key text, target chain)`, key text like `10.0.0.1 . tcp . 80`.
    pub elements: BTreeSet<(String, String, String)>,
}

/// Differences between what we expect and what the kernel has. Empty means no drift.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    pub missing_chains: Vec<String>,
    pub unexpected_chains: Vec<String>,
    pub missing_elements: Vec<String>,
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

/// Parses `nft -j list table …` output. Checks `json_schema_version` is 1.
pub fn parse(json: &str) -> Result<Observed, DataplaneError> {
    let bad = |detail: String| DataplaneError::BadJson { detail };
    let root: Value = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let items = root
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no top-level \"nftables\" array".into()))?;
    let mut observed = Observed::default();
    for item in items {
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
        } else if let Some(map) = item.get("map") {
            let name = map
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("map without a name".into()))?;
            for elem in map
                .get("elem")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (key, target) = match elem.as_array().map(Vec::as_slice) {
                    Some([key, verdict]) => (key_text(key), target_of(verdict)),
                    _ => (None, None),
                };
                match (key, target) {
                    (Some(key), Some(target)) => {
                        observed.elements.insert((name.to_string(), key, target));
                    }
                    _ => return Err(bad(format!("unexpected element in map {name}: {elem}"))),
                }
            }
        }
    }
    Ok(observed)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn key_text(key: &Value) -> Option<String> {
    let parts = key.get("concat")?.as_array()?;
    let texts: Option<Vec<String>> = parts.iter().map(scalar).collect();
    Some(texts?.join(" . "))
}

fn target_of(verdict: &Value) -> Option<String> {
    let inner = verdict.get("goto").or_else(|| verdict.get("jump"))?;
    Some(inner.get("target")?.as_str()?.to_string())
}

/// Compares expected and observed state. Base chains are expected too.
pub fn diff(expected: &Expected, base_chains: &[&str], observed: &Observed) -> Drift {
    let want_chains: BTreeSet<String> = expected
        .chains
        .iter()
        .cloned()
        .chain(base_chains.iter().map(|c| c.to_string()))
        .collect();
    let want_elements: BTreeSet<(String, String, String)> =
        expected.elements.iter().map(element_tuple).collect();
    let show = |(m, k, c): &(String, String, String)| format!("{m}: {k} : goto {c}");
    Drift {
        missing_chains: want_chains.difference(&observed.chains).cloned().collect(),
        unexpected_chains: observed.chains.difference(&want_chains).cloned().collect(),
        missing_elements: want_elements
            .difference(&observed.elements)
            .map(show)
            .collect(),
        unexpected_elements: observed
            .elements
            .difference(&want_elements)
            .map(show)
            .collect(),
    }
}

fn element_tuple(e: &Element) -> (String, String, String) {
    (e.map.to_string(), e.key.nft_text(), e.chain.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
      {"table": {"family": "inet", "name": "t", "handle": 1}},
      {"map": {"family": "inet", "name": "nat-addr4", "table": "t", "type": ["ipv4_addr", "inet_proto", "inet_service"], "handle": 2, "map": "verdict",
        "elem": [[{"concat": ["10.0.1.1", "tcp", 80]}, {"goto": {"target": "fe4-web-1"}}]]}},
      {"map": {"family": "inet", "name": "nat-local", "table": "t", "type": ["nf_proto", "inet_proto", "inet_service"], "handle": 3, "map": "verdict"}},
      {"chain": {"family": "inet", "table": "t", "name": "fe4-web-1", "handle": 4}}]}"#;

    #[test]
    fn parses_chains_and_elements() {
        let o = parse(SAMPLE).unwrap();
        assert_eq!(o.chains, BTreeSet::from(["fe4-web-1".to_string()]));
        assert_eq!(
            o.elements,
            BTreeSet::from([(
                "nat-addr4".to_string(),
                "10.0.1.1 . tcp . 80".to_string(),
                "fe4-web-1".to_string()
            )])
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
    }

    #[test]
    fn diff_reports_both_directions() {
        let o = parse(SAMPLE).unwrap();
        let d = diff(&Expected::default(), &["nat-prerouting"], &o);
        assert_eq!(d.missing_chains, vec!["nat-prerouting".to_string()]);
        assert_eq!(d.unexpected_chains, vec!["fe4-web-1".to_string()]);
        assert_eq!(
            d.unexpected_elements,
            vec!["nat-addr4: 10.0.1.1 . tcp . 80 : goto fe4-web-1".to_string()]
        );
        assert!(!d.is_empty());
    }
}
