//! [`LabelMap`]: `metadata.labels` as a small sorted vector instead of a `BTreeMap`.
//!
//! Objects carry a handful of labels, often one (an EndpointSlice's
//! `kubernetes.io/service-name`), and a `BTreeMap` allocates a whole B-tree node (~0.5 kB)
//! even for one entry: 10 MB of a 10,000-Service dump's 20,000 slices. A vector sorted by key
//! holds the same map in the same order (lookups are binary searches), and reads, iterates and
//! serializes as the map did. Keys and values are [`CompactString`]s, like the object fields
//! (see [`crate::objects`]): most label values are short enough to need no allocation, and
//! the longer keys nearly every object carries ([`WELL_KNOWN`], such as an EndpointSlice's
//! `kubernetes.io/service-name`) point at one constant instead of a copy per object.

use std::collections::BTreeMap;
use std::fmt;

use compact_str::CompactString;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::endpoints::SERVICE_NAME_LABEL;
use crate::labels::{ENABLELB_LABEL, EXCLUDE_LABEL, LBPOOL_LABEL};

/// Label keys and values longer than a [`CompactString`] holds inline (24 bytes) that many
/// objects of a large cluster carry (the first three: every EndpointSlice). Read from a dump, they are stored as references to
/// these constants: a 10,000-Service cluster's 20,000 EndpointSlices would otherwise hold
/// 20,000 heap copies of each of the first three.
pub const WELL_KNOWN: [&str; 17] = [
    SERVICE_NAME_LABEL,
    "endpointslice.kubernetes.io/managed-by",
    "endpointslice-controller.k8s.io",
    "service.kubernetes.io/headless",
    "service.kubernetes.io/service-proxy-name",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/version",
    ENABLELB_LABEL,
    LBPOOL_LABEL,
    EXCLUDE_LABEL,
    "node-role.kubernetes.io/control-plane",
    "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
];

/// `text`, as a reference to its [`WELL_KNOWN`] constant when it is one.
fn well_known(text: CompactString) -> CompactString {
    if !text.is_heap_allocated() {
        return text;
    }
    match WELL_KNOWN.iter().find(|known| **known == text) {
        Some(known) => CompactString::const_new(known),
        None => text,
    }
}

/// A string-to-string map sorted by key, with the read API of `BTreeMap<String, String>`
/// (keys and values read as `&str`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelMap(Vec<(CompactString, CompactString)>);

impl LabelMap {
    /// An empty map.
    pub fn new() -> LabelMap {
        LabelMap(Vec::new())
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.find(key).ok().map(|i| self.0[i].1.as_str())
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`; returns the value it replaces.
    pub fn insert(
        &mut self,
        key: impl Into<CompactString>,
        value: impl Into<CompactString>,
    ) -> Option<CompactString> {
        let (key, value) = (key.into(), value.into());
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<CompactString> {
        self.find(key).ok().map(|i| self.0.remove(i).1)
    }

    /// How many labels there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The labels in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// The values in key order.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(_, v)| v.as_str())
    }
}

impl std::ops::Index<&str> for LabelMap {
    type Output = CompactString;

    /// Panics when `key` is not set, as `BTreeMap`'s index does (for tests and callers that
    /// checked; input-reachable code uses [`LabelMap::get`]).
    #[allow(clippy::panic)] // the documented contract of `Index`
    fn index(&self, key: &str) -> &CompactString {
        match self.find(key) {
            Ok(i) => &self.0[i].1,
            Err(_) => panic!("no label with key {key:?}"),
        }
    }
}

impl<'a> IntoIterator for &'a LabelMap {
    type Item = (&'a str, &'a str);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (CompactString, CompactString)>,
        fn(&'a (CompactString, CompactString)) -> (&'a str, &'a str),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: Into<CompactString>, V: Into<CompactString>> FromIterator<(K, V)> for LabelMap {
    /// Later values of a repeated key win, as in a `BTreeMap`.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> LabelMap {
        let mut map = LabelMap::new();
        for (k, v) in iter {
            map.insert(k, v);
        }
        map.0.shrink_to_fit();
        map
    }
}

impl From<BTreeMap<String, String>> for LabelMap {
    fn from(map: BTreeMap<String, String>) -> LabelMap {
        LabelMap(map.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl From<LabelMap> for BTreeMap<String, String> {
    fn from(map: LabelMap) -> BTreeMap<String, String> {
        map.0
            .into_iter()
            .map(|(k, v)| (k.into_string(), v.into_string()))
            .collect()
    }
}

impl Serialize for LabelMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k.as_str(), v.as_str())?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for LabelMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<LabelMap, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = LabelMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of label strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<LabelMap, A::Error> {
                let mut map = LabelMap::new();
                while let Some((k, v)) = access.next_entry::<CompactString, CompactString>()? {
                    map.insert(well_known(k), well_known(v));
                }
                map.0.shrink_to_fit();
                Ok(map)
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_serializes_as_the_btree_map_did() {
        let json = r#"{"b": "2", "a": "1", "c": "3", "a": "again"}"#;
        let ours: LabelMap = serde_json::from_str(json).unwrap();
        let btree: BTreeMap<String, String> = serde_json::from_str(json).unwrap();
        assert_eq!(BTreeMap::from(ours.clone()), btree);
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&btree).unwrap()
        );
        assert_eq!(ours.get("a"), Some("again"));
        assert_eq!(ours["c"], "3");
        assert!(ours.contains_key("b") && !ours.contains_key("d"));
        let keys: Vec<&str> = ours.keys().collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(ours.len(), 3);
        assert!(serde_json::from_str::<LabelMap>(r#"{"a": 1}"#).is_err());
    }

    #[test]
    fn well_known_long_labels_are_not_copied_per_object() {
        let json = r#"{"kubernetes.io/service-name": "a-service-name-longer-than-24",
                       "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}"#;
        let map: LabelMap = serde_json::from_str(json).unwrap();
        assert_eq!(
            map.get("kubernetes.io/service-name"),
            Some("a-service-name-longer-than-24")
        );
        assert_eq!(
            map.get("endpointslice.kubernetes.io/managed-by"),
            Some("endpointslice-controller.k8s.io")
        );
        let heap: Vec<(bool, bool)> = map
            .0
            .iter()
            .map(|(k, v)| (k.is_heap_allocated(), v.is_heap_allocated()))
            .collect();
        // Sorted: managed-by first. Only the unknown long value is a heap copy.
        assert_eq!(heap, [(false, false), (false, true)]);
        assert!(
            WELL_KNOWN.iter().all(|k| k.len() > 24),
            "shorter ones are inline anyway"
        );
    }

    #[test]
    fn insert_and_remove_keep_it_sorted() {
        let mut map = LabelMap::new();
        assert!(map.is_empty());
        assert_eq!(map.insert("z", "1"), None);
        assert_eq!(map.insert("m", "2"), None);
        assert_eq!(map.insert("z", "3"), Some("1".into()));
        let pairs: Vec<(&str, &str)> = map.iter().collect();
        assert_eq!(pairs, [("m", "2"), ("z", "3")]);
        assert_eq!(map.remove("m"), Some("2".into()));
        assert_eq!(map.remove("m"), None);
        let collected: LabelMap = [("b".to_string(), "x".to_string()), ("a".into(), "y".into())]
            .into_iter()
            .collect();
        assert_eq!(collected.values().collect::<Vec<_>>(), ["y", "x"]);
    }
}
