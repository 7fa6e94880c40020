//! Reading a JSON cluster dump as it streams in ([`Snapshot::read`](crate::Snapshot::read)):
//! the top-level object is decoded key by key and a List's `items` one at a time, each from
//! its own text straight into its type, so a 10,000-Service dump never sits in memory as
//! text (12.5 MB) or as a tree of values, whole or per item (see `Builder::object_text`
//! for the one leniency of reading an item from its text).
//!
//! The result is the one [`Snapshot::parse`](crate::Snapshot::parse) gives for the same text
//! (same objects, same order, same first error). `kubectl` prints `items` before `kind`, so
//! items are taken while the document's kind is not known yet: should the document turn
//! out not to be a List after all, what its items gave is thrown away and the document is
//! read as one object, as `parse` reads it — except that its items were read as List items
//! are, so JSON that only skipping lets pass (that leniency) passes in them here and is an
//! error in `parse`, which reads such a document whole as a tree.

use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::snapshot::{Builder, SnapshotError, is_list_kind};

/// Decodes one JSON document (an object) from `reader` into `builder`.
pub(crate) fn json_document<R: Read>(
    reader: R,
    builder: &mut Builder,
) -> Result<(), SnapshotError> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut state = State {
        builder,
        failed: None,
    };
    // As in `parse`, text that is not JSON to its end is a JSON error before anything else.
    (&mut state)
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(SnapshotError::Json)?;
    state.failed.map_or(Ok(()), Err)
}

/// The builder, and the error the document's objects gave (kept aside: serde's own error
/// type cannot carry it, and a JSON error later in the text takes precedence).
struct State<'b> {
    builder: &'b mut Builder,
    failed: Option<SnapshotError>,
}

/// What the top-level object's `items` gave.
enum Items {
    /// No `items` key.
    None,
    /// Read as a List's items, before or after the kind was known.
    Streamed(Streamed),
    /// The kind was known not to be a List: the value, kept for the whole-object path.
    Kept(Value),
}

/// Items decoded while the document's kind may still be unknown.
#[derive(Default)]
struct Streamed {
    /// Items kept as text, in order, from the first one without a `kind` read before
    /// the document's kind was known (they need the List's kind as their default).
    pending: Vec<Box<RawValue>>,
    /// The first error an item gave (the items after it are not decoded).
    error: Option<SnapshotError>,
}

impl<'de> DeserializeSeed<'de> for &mut State<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for &mut State<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes object or List")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut rest = Map::new();
        let mut kind: Option<String> = None;
        let mut items = Items::None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "kind" => {
                    if rest.contains_key("kind") {
                        return Err(de::Error::duplicate_field("kind"));
                    }
                    kind = map.next_value::<Option<String>>()?;
                    let value = kind.clone().map_or(Value::Null, Value::String);
                    rest.insert(key, value);
                }
                "items" => {
                    if !matches!(items, Items::None) {
                        return Err(de::Error::duplicate_field("items"));
                    }
                    let known = kind.as_deref();
                    items = if known.is_some_and(|k| !is_list_kind(k)) {
                        let kept: Option<Vec<Value>> = map.next_value()?;
                        Items::Kept(kept.map_or(Value::Null, Value::Array))
                    } else {
                        let default_kind = known.map(item_kind);
                        let mut streamed = Streamed::default();
                        map.next_value_seed(ItemsSeed {
                            builder: self.builder,
                            default_kind,
                            streamed: &mut streamed,
                        })?;
                        Items::Streamed(streamed)
                    };
                }
                _ => {
                    rest.insert(key, map.next_value()?);
                }
            }
        }
        let kind = kind.unwrap_or_default();
        let result = match items {
            Items::Streamed(streamed) if is_list_kind(&kind) => {
                self.builder.saw_kind = true;
                match streamed.error {
                    Some(error) => Err(error),
                    None => streamed.pending.into_iter().try_for_each(|item| {
                        self.builder.object_text(1, item.get(), &item_kind(&kind))
                    }),
                }
            }
            Items::Streamed(_) => {
                // Not a List after all: what the items gave does not count.
                *self.builder = Builder::default();
                self.builder.document(1, Value::Object(rest))
            }
            Items::Kept(value) => {
                rest.insert("items".to_string(), value);
                self.builder.document(1, Value::Object(rest))
            }
            Items::None => self.builder.document(1, Value::Object(rest)),
        };
        self.failed = result.err();
        Ok(())
    }
}

/// The kind a List's items default to (`ServiceList` items may omit `kind: Service`).
fn item_kind(list_kind: &str) -> String {
    list_kind
        .strip_suffix("List")
        .unwrap_or_default()
        .to_string()
}

/// Decodes a List's `items` one at a time.
struct ItemsSeed<'a> {
    builder: &'a mut Builder,
    /// The items' default kind when the List's kind is known; `None`: not known yet.
    default_kind: Option<String>,
    streamed: &'a mut Streamed,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // Each item is taken as text and decoded from it straight into its type: no tree
        // of values per item (see `Builder::object_text`).
        while let Some(item) = seq.next_element::<Box<RawValue>>()? {
            if self.streamed.error.is_some() {
                continue;
            }
            let text = item.get();
            let outcome = match &self.default_kind {
                Some(default_kind) => self.builder.object_text(1, text, default_kind),
                None if self.streamed.pending.is_empty() && has_kind(text) => {
                    self.builder.object_text(1, text, "")
                }
                None => {
                    self.streamed.pending.push(item);
                    Ok(())
                }
            };
            if let Err(error) = outcome {
                self.streamed.error = Some(error);
            }
        }
        Ok(())
    }
}

/// Whether the object `text` has a string `kind` (as its tree of values would say).
fn has_kind(text: &str) -> bool {
    if !text.starts_with('{') {
        // Serde would read a struct from an array too.
        return false;
    }
    /// Only the `kind`, read without building anything.
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(default, borrow)]
        kind: Option<std::borrow::Cow<'a, str>>,
    }
    match serde_json::from_str::<Kind>(text) {
        Ok(kind) => kind.kind.is_some(),
        // Not an object, a `kind` that is not a string, a repeated key: as the tree says.
        Err(_) => serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v.get("kind").map(Value::is_string))
            .unwrap_or(false),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{Snapshot, SnapshotError};

    /// A dump like `bench memory`'s: a node, its agent Lease, and `n` Services with one
    /// EndpointSlice per family, in `kubectl`'s key order (`items` before `kind`).
    fn dump(n: usize) -> String {
        let mut items = vec![
            json!({"kind": "Node", "metadata": {"name": "n1", "labels": {"b": "2", "a": "1"}},
                   "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}}),
            json!({"kind": "Lease", "metadata": {"name": "dualstack-agent-n1", "namespace": "dualstack-system"},
                   "spec": {"holderIdentity": "n1", "renewTime": "2025-01-01T00:00:00Z"}}),
            json!({"kind": "ConfigMap", "metadata": {"name": "ignored"}, "data": {"a": "b"}}),
        ];
        for i in 0..n {
            let name = format!("svc-{i}");
            items.push(json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": "bench",
                             "annotations": {"dualstack.io/x": "y", "other": "dropped"}},
                "spec": {"type": "LoadBalancer", "ipFamilies": ["IPv4", "IPv6"],
                         "ports": [{"name": "web", "port": 10000 + i, "targetPort": 8080}]}}));
            for family in ["IPv4", "IPv6"] {
                items.push(json!({"kind": "EndpointSlice", "addressType": family,
                    "metadata": {"name": format!("{name}-{family}"), "namespace": "bench",
                                 "labels": {"kubernetes.io/service-name": name}},
                    "endpoints": [{"addresses": ["10.42.0.1"], "conditions": {"ready": true}}]}));
            }
        }
        // serde_json sorts keys: `apiVersion`, `items`, `kind`, `metadata`, as kubectl prints.
        serde_json::to_string_pretty(&json!({"apiVersion": "v1", "kind": "List", "items": items,
                                             "metadata": {"resourceVersion": ""}}))
        .unwrap()
    }

    fn both(text: &str) -> (Result<Snapshot, String>, Result<Snapshot, String>) {
        let parsed = Snapshot::parse(text).map_err(|e| e.to_string());
        let read = Snapshot::read(text.as_bytes()).map_err(|e| e.to_string());
        (parsed, read)
    }

    #[test]
    fn streamed_and_whole_text_give_the_same_snapshot() {
        let text = dump(200);
        let (parsed, read) = both(&text);
        let read = read.unwrap();
        assert_eq!(parsed.unwrap(), read);
        assert_eq!(
            (read.services.len(), read.endpoint_slices.len()),
            (200, 400)
        );
        assert_eq!(
            read.nodes[0].metadata.labels.keys().collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(read.services[7].metadata.annotations.len(), 1);
        // Leading whitespace, kind before items, typed Lists whose items omit their kind
        // (alone, and after items that have one), null items, YAML, a single object.
        let cases = [
            format!("\n  \t{text}"),
            r#"{"kind":"List","items":[{"kind":"Node","metadata":{"name":"a"}}]}"#.to_string(),
            r#"{"items":[{"metadata":{"name":"a","namespace":"x"}}],"kind":"ServiceList"}"#
                .to_string(),
            r#"{"items":[{"kind":"Node","metadata":{"name":"n"}},{"metadata":{"name":"a","namespace":"x"}},{"kind":"Lease","metadata":{"name":"l","namespace":"x"}}],"kind":"ServiceList"}"#
                .to_string(),
            r#"{"kind":"ServiceList","items":[{"metadata":{"name":"a","namespace":"x"}}]}"#
                .to_string(),
            r#"{"items":null,"kind":"List"}"#.to_string(),
            r#"{"kind":"ServiceList","items":null}"#.to_string(),
            r#"{"kind":"ServiceList"}"#.to_string(),
            "kind: Node\nmetadata: {name: n1}\n---\nkind: Lease\nmetadata: {name: l, namespace: y}\n"
                .to_string(),
            "  kind: Node\n  metadata: {name: n1}\n".to_string(),
            r#"{"kind":"Node","metadata":{"name":"n1"}}"#.to_string(),
            // Not a List: its `items` are an unknown field of one Node, before or after `kind`.
            r#"{"items":[{"kind":"Service","metadata":{"name":"s"}}],"kind":"Node","metadata":{"name":"n1"}}"#
                .to_string(),
            r#"{"kind":"Node","items":[{"kind":"Service"}],"metadata":{"name":"n1"}}"#.to_string(),
            // Items the text path hands to the tree path (a repeated key: the tree keeps the
            // last), and escapes in the kind and name the text path reads.
            r#"{"items":[{"kind":5,"metadata":{"name":"n"}}],"kind":"ServiceList"}"#.to_string(),
            // `metadata` that is not an object: the tree reads no name for the key (and
            // keeps both copies), whatever the typed objects read from it.
            r#"{"items":[{"kind":"Node","metadata":["a"]},{"kind":"Node","metadata":["a"]}],"kind":"List"}"#
                .to_string(),
            // The leniency of skipping (`Builder::object_text`), alike in both: a lone
            // surrogate in a field nobody reads.
            r#"{"items":[{"kind":"Node","metadata":{"name":"n"},"x":"\ud800"}],"kind":"List"}"#
                .to_string(),
            r#"{"items":[{"kind":"Node","metadata":{"name":"a","name":"b"}}],"kind":"List"}"#
                .to_string(),
            r#"{"items":[{"kind":"Node","kind":"Lease","metadata":{"name":"l","namespace":"x"}}],"kind":"List"}"#
                .to_string(),
            r#"{"items":[{"kind":"Node","metadata":{"name":"n\u0031"}},{"kind":"Se\u0072vice","metadata":{"name":"s","namespace":"x"}}],"kind":"List"}"#
                .to_string(),
        ];
        for case in &cases {
            let (parsed, read) = both(case);
            assert!(parsed.is_ok(), "{case}: {parsed:?}");
            assert_eq!(parsed, read, "{case}");
        }
        let (_, arrays) = both(&cases[cases.len() - 5]);
        assert_eq!(arrays.unwrap().nodes.len(), 2);
        let (_, repeated) = both(&cases[cases.len() - 3]);
        assert_eq!(repeated.unwrap().nodes[0].metadata.name, "b");
        let (_, escaped) = both(&cases[cases.len() - 1]);
        let escaped = escaped.unwrap();
        assert_eq!(escaped.nodes[0].metadata.name, "n1");
        assert_eq!(escaped.services.len(), 1);
        let (_, typed) = both(&cases[3]);
        let typed = typed.unwrap();
        assert_eq!(
            (typed.nodes.len(), typed.services.len(), typed.leases.len()),
            (1, 1, 1)
        );
    }

    #[test]
    fn streamed_errors_are_the_whole_text_errors() {
        let cases = [
            r#"{"items":[{"kind":"Service","metadata":{"name":"w","namespace":"d"},"spec":{"ports":[{"port":"huge"}]}}],"kind":"List"}"#,
            r#"{"items":[{"kind":"Node","metadata":{"name":"n"}},{"kind":"Node","metadata":{"name":"n"}}],"kind":"List"}"#,
            r#"{"items":[1],"kind":"List"}"#,
            r#"{"items":[[]],"kind":"List"}"#,
            r#"{"items":[["Pod"]],"kind":"List"}"#,
            r#"{"items":[[]],"kind":"ServiceList"}"#,
            r#"{"kind":"ServiceList","items":[[]]}"#,
            r#"{"items":[{"kind":"Node","metadata":"odd"}],"kind":"List"}"#,
            r#"{"items":[{"kind":"Service","metadata":{"name":"w","namespace":"d"},"spec":{"ports":[{"port":"huge"}]}}],"kind":"List"} trailing"#,
            r#"{"items":[{"kind":"Service","metadata":{"name":"w"}}],"kind":"List","kind":"List"}"#,
            r#"{"items":5,"kind":"List"}"#,
            r#"{"kind":5}"#,
            "{}",
            r#"{"kind":"List","items":[{"kind":"Node","metadata":{"name":"n"}}"#,
        ];
        for case in cases {
            let (parsed, read) = both(case);
            let (parsed, read) = (parsed.unwrap_err(), read.unwrap_err());
            // The same error; a JSON error's position may differ (the whole-text path
            // reports some of them inside one item).
            let stem = |e: &str| e.split(" at line ").next().unwrap_or_default().to_string();
            assert_eq!(stem(&parsed), stem(&read), "{case}");
        }
    }

    #[test]
    fn a_malformed_streamed_dump_names_the_place() {
        let mut text = dump(50);
        // Break the 30th Service's port: the error names it, and a syntax error its line.
        text = text.replace("\"port\": 10029", "\"port\": \"10029\"");
        let err = Snapshot::read(text.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("Service bench/svc-29"), "{err}");
        let cut = &dump(50)[..40_000];
        let err = Snapshot::read(cut.as_bytes()).unwrap_err();
        assert!(matches!(err, SnapshotError::Json(_)), "{err}");
        assert!(err.to_string().contains("line "), "{err}");
        let broken = dump(50).replacen("\"kind\": \"Service\"", "\"kind\" \"Service\"", 1);
        let err = Snapshot::read(broken.as_bytes()).unwrap_err().to_string();
        assert!(
            err.starts_with("not valid JSON: expected `:` at line "),
            "{err}"
        );
    }

    #[test]
    fn read_errors_are_io_errors() {
        struct Failing;
        impl std::io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk on fire"))
            }
        }
        let err = Snapshot::read(Failing).unwrap_err();
        assert!(matches!(err, SnapshotError::Io(_)), "{err}");
        let half = std::io::Read::chain(&b"{\"items\": ["[..], Failing);
        let err = Snapshot::read(half).unwrap_err();
        assert!(matches!(err, SnapshotError::Io(_)), "{err}");
        assert!(err.to_string().contains("disk on fire"), "{err}");
    }
}
