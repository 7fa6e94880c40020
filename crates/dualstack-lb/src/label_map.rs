//! [`LabelMap`]: `metadata.labels` as a small sorted vector instead of a `BTreeMap`.
//!
//! Objects carry a handful of labels, often one (an EndpointSlice's
//! `kubernetes.io/service-name`), and a `BTreeMap` allocates a whole B-tree node (~0.5 kB)
//! even for one entry: 10 MB of a 10,000-Service dump's 20,000 slices. A vector sorted by key
//! holds the same map in the same order (lookups are binary searches), and reads, iterates and
//! serializes as the map did.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A string-to-string map sorted by key, with the read API of `BTreeMap<String, String>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelMap(Vec<(String, String)>);

impl LabelMap {
    /// An empty map.
    pub fn new() -> LabelMap {
        LabelMap(Vec::new())
    }

    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        String: Borrow<Q>,
    {
        self.0.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The value of `key`.
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&String>
    where
        String: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    /// Whether `key` is set.
    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        String: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`; returns the value it replaces.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.find(key.as_str()) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<String>
    where
        String: Borrow<Q>,
    {
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
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    /// The values in key order.
    pub fn values(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(_, v)| v)
    }
}

impl<Q: Ord + ?Sized> std::ops::Index<&Q> for LabelMap
where
    String: Borrow<Q>,
{
    type Output = String;

    /// Panics when `key` is not set, as `BTreeMap`'s index does (for tests and callers that
    /// checked; input-reachable code uses [`LabelMap::get`]).
    #[allow(clippy::expect_used)] // the documented contract of `Index`
    fn index(&self, key: &Q) -> &String {
        self.get(key).expect("no label with this key")
    }
}

impl<'a> IntoIterator for &'a LabelMap {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl FromIterator<(String, String)> for LabelMap {
    /// Later values of a repeated key win, as in a `BTreeMap`.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> LabelMap {
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
        LabelMap(map.into_iter().collect())
    }
}

impl From<LabelMap> for BTreeMap<String, String> {
    fn from(map: LabelMap) -> BTreeMap<String, String> {
        map.0.into_iter().collect()
    }
}

impl Serialize for LabelMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
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
                while let Some((k, v)) = access.next_entry::<String, String>()? {
                    map.insert(k, v);
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
        assert_eq!(ours.get("a").map(String::as_str), Some("again"));
        assert_eq!(ours["c"], "3");
        assert!(ours.contains_key("b") && !ours.contains_key("d"));
        let keys: Vec<&String> = ours.keys().collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(ours.len(), 3);
        assert!(serde_json::from_str::<LabelMap>(r#"{"a": 1}"#).is_err());
    }

    #[test]
    fn insert_and_remove_keep_it_sorted() {
        let mut map = LabelMap::new();
        assert!(map.is_empty());
        assert_eq!(map.insert("z".into(), "1".into()), None);
        assert_eq!(map.insert("m".into(), "2".into()), None);
        assert_eq!(map.insert("z".into(), "3".into()), Some("1".into()));
        let pairs: Vec<(&String, &String)> = map.iter().collect();
        assert_eq!(
            pairs,
            [
                (&"m".to_string(), &"2".to_string()),
                (&"z".to_string(), &"3".to_string())
            ]
        );
        assert_eq!(map.remove("m"), Some("2".into()));
        assert_eq!(map.remove("m"), None);
        let collected: LabelMap = [("b".to_string(), "x".to_string()), ("a".into(), "y".into())]
            .into_iter()
            .collect();
        assert_eq!(collected.values().collect::<Vec<_>>(), ["y", "x"]);
    }
}
