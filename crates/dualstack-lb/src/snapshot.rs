//! The decision's input: a cluster snapshot, and parsing one from `kubectl … -o yaml|json` text.
//!
//! Accepted text: one JSON document, or a YAML stream of one or more documents. Each document
//! is a single object or a `List` (`kind: List`, or any `…List` kind) whose `items` are
//! objects. Objects whose `kind` is `Service`, `Node`, `EndpointSlice`, `Lease` or
//! `LoadBalancerPool` are kept;
//! every other kind (Pods, ConfigMaps, …) is ignored, and so are empty documents. An object
//! that appears twice (same kind, namespace and name) is an error, as is text that is not
//! YAML/JSON or an object of a kind we read whose fields have the wrong type.

use std::borrow::Cow;
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader, Read};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::objects::{Lease, Node, Service};
use crate::pool::LoadBalancerPool;
use crate::slice_backends::SliceBackends;

/// Everything the decision reads about a cluster. Order does not matter: the decision sorts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Every Service (ours or not: the decision checks ownership).
    pub services: Vec<Service>,
    /// Every Node.
    pub nodes: Vec<Node>,
    /// Every EndpointSlice, reduced as it was read to what the decision reads of it.
    pub endpoint_slices: Vec<SliceBackends>,
    /// The agent Leases (others are ignored by name).
    pub leases: Vec<Lease>,
    /// `dualstack.io/v1alpha1 LoadBalancerPool`s; none: node mode for every Service.
    pub pools: Vec<LoadBalancerPool>,
}

/// Why a text could not be read as a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read the input: {0}")]
    /// The input could not be read ([`Snapshot::read`]).
    Io(std::io::Error),
    #[error("not valid JSON: {0}")]
    /// The input looks like JSON and does not parse.
    Json(serde_json::Error),
    #[error("not valid YAML: {0}")]
    /// The input is not valid YAML.
    Yaml(serde_saphyr::Error),
    #[error("document {document}: expected an object or a List, found {found}")]
    /// A document (or List item) that is not an object.
    NotAnObject {
        /// The document's number in the input, from 1.
        document: usize,
        /// What it is instead (`a sequence`, `a string`, …).
        found: &'static str,
    },
    #[error("document {document}: {kind} {name}: {error}")]
    /// An object of a kind we read that does not have the shape we expect.
    BadObject {
        /// The document's number in the input, from 1.
        document: usize,
        /// Its `kind`.
        kind: String,
        /// Its `namespace/name` (or name).
        name: String,
        /// What does not fit.
        error: serde_json::Error,
    },
    #[error(
        "no Kubernetes object in the input (nothing has a `kind`): expected the output of \
         `kubectl get svc,endpointslices,nodes,leases -A -o yaml`"
    )]
    /// Nothing in the input has a `kind`.
    NoObjects,
    #[error("{kind} {name} appears more than once in the input")]
    /// The same object twice.
    Duplicate {
        /// Its `kind`.
        kind: String,
        /// Its `namespace/name` (or name).
        name: String,
    },
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "an object",
    }
}

impl Snapshot {
    /// When the dump was taken, as far as it tells: the newest `renewTime` of any Lease in it
    /// (node heartbeats and agents renew every few seconds). Offline tools decide "as of the
    /// dump" with it, so an hour-old dump does not read as "every agent Lease expired".
    pub fn taken_at(&self) -> Option<crate::time::Timestamp> {
        self.leases.iter().filter_map(|l| l.spec.renew_time).max()
    }

    /// Parses `kubectl get svc,endpointslices,nodes,leases -A -o yaml` (or `-o json`) output.
    pub fn parse(text: &str) -> Result<Snapshot, SnapshotError> {
        let trimmed = text.trim_start();
        let mut builder = Builder::default();
        if trimmed.starts_with('{') {
            builder.json_document(trimmed)?;
        } else {
            // YAML 1.2 booleans only: a node named `y` or a label value `on` stays a string.
            let options = serde_saphyr::options! { strict_booleans: true };
            let documents: Vec<Value> = serde_saphyr::from_multiple_with_options(text, options)
                .map_err(SnapshotError::Yaml)?;
            for (index, document) in documents.into_iter().enumerate() {
                builder.document(index + 1, document)?;
            }
        }
        builder.finish()
    }

    /// Reads a dump from `reader` (a file, standard input), with the result of
    /// [`Snapshot::parse`] on the same text. JSON is decoded as it is read, a List item by
    /// item, so the text is never held whole; YAML is read whole and parsed.
    pub fn read<R: Read>(reader: R) -> Result<Snapshot, SnapshotError> {
        let mut reader = BufReader::new(reader);
        // Peek at the first byte that is not ASCII whitespace (consumed whitespace is kept
        // for YAML, where indentation counts).
        let mut skipped = Vec::new();
        let first = loop {
            let buf = reader.fill_buf().map_err(SnapshotError::Io)?;
            let Some(&byte) = buf.first() else {
                break None;
            };
            if !byte.is_ascii_whitespace() {
                break Some(byte);
            }
            skipped.push(byte);
            reader.consume(1);
        };
        if first == Some(b'{') {
            let mut builder = Builder::default();
            crate::snapshot_stream::json_document(reader, &mut builder).map_err(|e| match e {
                SnapshotError::Json(e) if e.is_io() => SnapshotError::Io(e.into()),
                other => other,
            })?;
            return builder.finish();
        }
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).map_err(SnapshotError::Io)?;
        skipped.extend_from_slice(&rest);
        drop(rest);
        let text = String::from_utf8(skipped).map_err(|e| {
            SnapshotError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })?;
        Snapshot::parse(&text)
    }
}

/// Whether a document of this kind is a List (`List`, `ServiceList`, …) when it has `items`.
pub(crate) fn is_list_kind(kind: &str) -> bool {
    kind.ends_with("List")
}

/// The outline of a JSON document: its kind and, for a List, its items as unparsed slices of
/// the input. Each item is decoded from its slice straight into its type
/// ([`Builder::object_text`]), without a tree of values unless it must go the tree's way (a
/// whole-document `Value` tree is ~15× the text).
#[derive(serde::Deserialize)]
struct JsonOutline<'a> {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default, borrow)]
    items: Option<Vec<&'a serde_json::value::RawValue>>,
}

/// Collects the objects of a dump into a [`Snapshot`], refusing duplicates.
#[derive(Default)]
pub(crate) struct Builder {
    snapshot: Snapshot,
    /// A 64-bit hash of the kind and `namespace/name` of every object kept, to refuse
    /// duplicates without a second copy of every name (60,000 strings in a 10,000-Service
    /// dump). A hash seen before is confirmed against the objects of that kind.
    seen: HashSet<u64>,
    /// Whether any document or item had a `kind` (an empty `List` counts): text without one
    /// is not a Kubernetes dump at all (a K3s config, `{}`), and is refused.
    pub(crate) saw_kind: bool,
}

impl Builder {
    /// The snapshot, with no spare capacity kept (a 10,000-Service dump's vectors would
    /// otherwise hold up to twice what they use for as long as the snapshot lives).
    fn finish(self) -> Result<Snapshot, SnapshotError> {
        if !self.saw_kind {
            return Err(SnapshotError::NoObjects);
        }
        let mut snapshot = self.snapshot;
        snapshot.services.shrink_to_fit();
        snapshot.nodes.shrink_to_fit();
        snapshot.endpoint_slices.shrink_to_fit();
        snapshot.leases.shrink_to_fit();
        snapshot.pools.shrink_to_fit();
        Ok(snapshot)
    }

    /// One JSON document: a List is decoded item by item, anything else as one object.
    fn json_document(&mut self, text: &str) -> Result<(), SnapshotError> {
        let outline: JsonOutline = serde_json::from_str(text).map_err(SnapshotError::Json)?;
        let kind = outline.kind.unwrap_or_default();
        match outline.items {
            Some(items) if kind == "List" || kind.ends_with("List") => {
                self.saw_kind = true;
                // A typed list (`ServiceList`) may omit each item's kind.
                let item_kind = kind.strip_suffix("List").unwrap_or_default().to_string();
                for item in items {
                    self.object_text(1, item.get(), &item_kind)?;
                }
                Ok(())
            }
            _ => self.document(1, serde_json::from_str(text).map_err(SnapshotError::Json)?),
        }
    }

    pub(crate) fn document(&mut self, document: usize, value: Value) -> Result<(), SnapshotError> {
        match value {
            Value::Null => Ok(()),
            Value::Object(mut map) => {
                let kind = map
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if kind == "List" || (kind.ends_with("List") && map.contains_key("items")) {
                    self.saw_kind = true;
                    // Moved out, not cloned: a 10,000-Service dump is a large tree.
                    let items = match map.remove("items") {
                        Some(Value::Array(items)) => items,
                        Some(Value::Null) | None => Vec::new(),
                        Some(other) => {
                            return Err(SnapshotError::NotAnObject {
                                document,
                                found: type_name(&other),
                            });
                        }
                    };
                    // A typed list (`ServiceList`) may omit each item's kind.
                    let item_kind = kind.strip_suffix("List").unwrap_or_default().to_string();
                    for item in items {
                        self.object(document, item, &item_kind)?;
                    }
                    Ok(())
                } else {
                    self.object(document, Value::Object(map), "")
                }
            }
            other => Err(SnapshotError::NotAnObject {
                document,
                found: type_name(&other),
            }),
        }
    }

    pub(crate) fn object(
        &mut self,
        document: usize,
        value: Value,
        default_kind: &str,
    ) -> Result<(), SnapshotError> {
        let Value::Object(map) = &value else {
            return Err(SnapshotError::NotAnObject {
                document,
                found: type_name(&value),
            });
        };
        let kind = map
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or(default_kind)
            .to_string();
        let meta = map.get("metadata");
        let field = |key: &str| {
            meta.and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (namespace, name) = (field("namespace"), field("name"));
        self.add(document, &kind, &namespace, &name, Input::Tree(value))
            .map(|_| ())
    }

    /// [`Builder::object`] for an object given as its JSON text (a List item): it is decoded
    /// straight into its type, without the tree of values `object` reads, which would be
    /// built and dropped again for every one of a large dump's objects. Text that does not
    /// decode that way — not an object, an error, or JSON that only the tree reads the same
    /// (a repeated key, `metadata` that is not an object) — goes the tree's way, so the
    /// objects and every error are those of `object`, with one leniency: what is skipped
    /// unread (a field we do not read, an object of a kind we do not read) is only checked
    /// to be well-formed JSON as `serde_json` skips it, which lets a lone surrogate escape
    /// (`"\ud800"`) or nesting deeper than 128 levels pass there.
    pub(crate) fn object_text(
        &mut self,
        document: usize,
        text: &str,
        default_kind: &str,
    ) -> Result<(), SnapshotError> {
        if let Some(peeked) = peek(text) {
            let kind = peeked.kind.as_deref().unwrap_or(default_kind);
            let (namespace, name) = (&peeked.namespace, &peeked.name);
            if self.add(document, kind, namespace, name, Input::Text(text))? == Kept::Added {
                return Ok(());
            }
        }
        let value = serde_json::from_str(text).map_err(SnapshotError::Json)?;
        self.object(document, value, default_kind)
    }

    /// Adds the object of kind `kind` named `namespace/name`, if it is of a kind we read;
    /// one of the same kind and name already there is an error.
    fn add(
        &mut self,
        document: usize,
        kind: &str,
        namespace: &str,
        name: &str,
        input: Input<'_>,
    ) -> Result<Kept, SnapshotError> {
        self.saw_kind |= !kind.is_empty();
        let display = if namespace.is_empty() {
            name.to_string()
        } else {
            format!("{namespace}/{name}")
        };
        let key = (kind, display.as_str());
        let (seen, snapshot, at) = (&mut self.seen, &mut self.snapshot, document);
        let kept = match kind {
            "Service" => keep(seen, at, key, input, &mut snapshot.services)?,
            "Node" => keep(seen, at, key, input, &mut snapshot.nodes)?,
            "EndpointSlice" => keep(seen, at, key, input, &mut snapshot.endpoint_slices)?,
            "Lease" => keep(seen, at, key, input, &mut snapshot.leases)?,
            crate::pool::POOL_KIND => keep(seen, at, key, input, &mut snapshot.pools)?,
            _ => Kept::Added,
        };
        if kept == Kept::Duplicate {
            return Err(SnapshotError::Duplicate {
                kind: kind.to_string(),
                name: display,
            });
        }
        Ok(kept)
    }
}

/// The kind, namespace and name of the object `text`, read without building anything
/// (strings are borrowed from the text unless they hold escapes); `None` when the text is
/// not an object whose `metadata`, if any, is an object or `null` — the tree reads those
/// differently (serde reads a struct from an array too).
fn peek(text: &str) -> Option<Peeked<'_>> {
    if !text.starts_with('{') {
        return None;
    }
    let peek: Peek = serde_json::from_str(text).ok()?;
    let meta = match peek.metadata {
        None => PeekMeta::default(),
        Some(raw) if raw.get() == "null" => PeekMeta::default(),
        Some(raw) if raw.get().starts_with('{') => serde_json::from_str(raw.get()).ok()?,
        Some(_) => return None,
    };
    Some(Peeked {
        kind: peek.kind,
        namespace: meta.namespace.unwrap_or_default(),
        name: meta.name.unwrap_or_default(),
    })
}

/// What [`peek`] found.
struct Peeked<'a> {
    kind: Option<Cow<'a, str>>,
    namespace: Cow<'a, str>,
    name: Cow<'a, str>,
}

/// What [`peek`] reads of an object.
#[derive(serde::Deserialize)]
struct Peek<'a> {
    #[serde(default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    metadata: Option<&'a serde_json::value::RawValue>,
}

/// What [`peek`] reads of `metadata`.
#[derive(Default, serde::Deserialize)]
struct PeekMeta<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    namespace: Option<Cow<'a, str>>,
}

/// An object as given: a tree of values, or its JSON text.
enum Input<'t> {
    Tree(Value),
    Text(&'t str),
}

/// What [`keep`] did with an object.
#[derive(Debug, PartialEq, Eq)]
enum Kept {
    /// Added (or of a kind we do not read).
    Added,
    /// Not added: one of the same `namespace/name` is there.
    Duplicate,
    /// Its text did not decode into its type: nothing was changed.
    NotDecoded,
}

/// The objects a snapshot keeps, by their `(namespace, name)`.
trait Object {
    fn key(&self) -> (&str, &str);
}

macro_rules! object {
    ($($t:ty),*) => {$(impl Object for $t {
        fn key(&self) -> (&str, &str) {
            (&self.metadata.namespace, &self.metadata.name)
        }
    })*};
}
object!(Service, Node, Lease, LoadBalancerPool);

impl Object for SliceBackends {
    fn key(&self) -> (&str, &str) {
        (&self.namespace, &self.name)
    }
}

/// Decodes document `document`'s object `input` (`key`: its kind and `namespace/name`) and
/// adds it to `objects`, unless one there has the same `namespace/name`. The objects are
/// compared only when the hash of `key` was seen before.
fn keep<T: Object + DeserializeOwned>(
    seen: &mut HashSet<u64>,
    document: usize,
    key: (&str, &str),
    input: Input<'_>,
    objects: &mut Vec<T>,
) -> Result<Kept, SnapshotError> {
    let object = match input {
        Input::Tree(value) => decode(document, key, value)?,
        Input::Text(text) => match serde_json::from_str(text) {
            Ok(object) => object,
            Err(_) => return Ok(Kept::NotDecoded),
        },
    };
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    if !seen.insert(hasher.finish()) && objects.iter().any(|o| shown_as(o.key(), key.1)) {
        return Ok(Kept::Duplicate);
    }
    objects.push(object);
    Ok(Kept::Added)
}

/// Whether an object's `namespace/name` (its name alone when cluster-scoped) is `display`.
fn shown_as((namespace, name): (&str, &str), display: &str) -> bool {
    if namespace.is_empty() {
        name == display
    } else {
        display
            .strip_prefix(namespace)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|rest| rest == name)
    }
}

fn decode<T: DeserializeOwned>(
    document: usize,
    (kind, name): (&str, &str),
    value: Value,
) -> Result<T, SnapshotError> {
    serde_json::from_value(value).map_err(|error| SnapshotError::BadObject {
        document,
        kind: kind.to_string(),
        name: name.to_string(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML_LIST: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: default}
  spec: {type: LoadBalancer, ports: [{port: 80}]}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: ignored, namespace: default}
  data: {a: b}
- apiVersion: v1
  kind: Node
  metadata:
    name: n1
    labels: {"svccontroller.k3s.cattle.io/enablelb": "true"}
metadata:
  resourceVersion: ""
"#;

    #[test]
    fn reads_a_yaml_list_and_ignores_other_kinds() {
        let s = Snapshot::parse(YAML_LIST).unwrap();
        assert_eq!(s.services.len(), 1);
        assert_eq!(s.nodes.len(), 1);
        assert_eq!(
            s.nodes[0].metadata.labels["svccontroller.k3s.cattle.io/enablelb"],
            "true"
        );
    }

    #[test]
    fn reads_json_lists_typed_lists_and_multi_document_streams() {
        let json = r#"{"apiVersion":"v1","kind":"ServiceList","items":[
            {"metadata":{"name":"a","namespace":"x"},"spec":{"type":"LoadBalancer"}}]}"#;
        assert_eq!(Snapshot::parse(json).unwrap().services.len(), 1);

        let stream = "kind: Service\nmetadata: {name: a, namespace: x}\n---\n---\nkind: Lease\nmetadata: {name: l, namespace: y}\nspec: {holderIdentity: n1}\n";
        let s = Snapshot::parse(stream).unwrap();
        assert_eq!((s.services.len(), s.leases.len()), (1, 1));
    }

    #[test]
    fn taken_at_is_the_newest_lease_renewal() {
        let text = "kind: Lease\nmetadata: {name: a, namespace: x}\nspec: {renewTime: '2025-04-10T09:59:55.120433Z'}\n---\nkind: Lease\nmetadata: {name: b, namespace: x}\nspec: {renewTime: '2025-04-10T09:59:58Z'}\n---\nkind: Lease\nmetadata: {name: c, namespace: x}\nspec: {holderIdentity: n}\n";
        let s = Snapshot::parse(text).unwrap();
        assert_eq!(s.taken_at().unwrap().to_string(), "2025-04-10T09:59:58Z");
        assert_eq!(Snapshot::default().taken_at(), None);
    }

    #[test]
    fn json_lists_decoded_item_by_item_equal_the_yaml_form() {
        let yaml = Snapshot::parse(YAML_LIST).unwrap();
        let value: Value = serde_saphyr::from_str(YAML_LIST).unwrap();
        let json = Snapshot::parse(&serde_json::to_string(&value).unwrap()).unwrap();
        assert_eq!(json, yaml);
        // A single object, and a List with null items, take the whole-document path.
        let one = r#"{"kind":"Node","metadata":{"name":"n1"}}"#;
        assert_eq!(Snapshot::parse(one).unwrap().nodes.len(), 1);
        let empty = r#"{"kind":"List","items":null}"#;
        assert_eq!(Snapshot::parse(empty).unwrap(), Snapshot::default());
        // Errors inside one item still name the object.
        let bad = r#"{"kind":"List","items":[{"kind":"Service","metadata":{"name":"w","namespace":"d"},"spec":{"ports":[{"port":"huge"}]}}]}"#;
        let err = Snapshot::parse(bad).unwrap_err().to_string();
        assert!(err.contains("Service d/w"), "{err}");
    }

    #[test]
    fn only_the_same_kind_namespace_and_name_is_a_duplicate() {
        let text = "kind: Service\nmetadata: {name: web, namespace: a}\n---\n\
            kind: Service\nmetadata: {name: web, namespace: b}\n---\n\
            kind: EndpointSlice\nmetadata: {name: web, namespace: a}\n---\n\
            kind: Node\nmetadata: {name: web}\n";
        let s = Snapshot::parse(text).unwrap();
        assert_eq!(
            (s.services.len(), s.endpoint_slices.len(), s.nodes.len()),
            (2, 1, 1)
        );
        let again = format!("{text}---\nkind: Service\nmetadata: {{name: web, namespace: b}}\n");
        let err = Snapshot::parse(&again).unwrap_err().to_string();
        assert_eq!(err, "Service b/web appears more than once in the input");
    }

    #[test]
    fn a_hash_seen_before_is_checked_against_the_objects() {
        // As if `b/web` hashed like `a/web`: the names are compared, and it is kept. Both
        // inputs, tree and text, the same way.
        let object = |ns: &str| -> Value {
            serde_json::json!({"kind": "Service", "metadata": {"name": "web", "namespace": ns}})
        };
        let text = |ns: &str| object(ns).to_string();
        let added = |kept: Result<Kept, SnapshotError>| matches!(kept, Ok(Kept::Added));
        let mut seen = HashSet::new();
        let mut services: Vec<Service> = Vec::new();
        let key = |ns| ("Service", if ns == "a" { "a/web" } else { "b/web" });
        let tree = Input::Tree(object("a"));
        assert!(added(keep(&mut seen, 1, key("a"), tree, &mut services)));
        let mut hasher = DefaultHasher::new();
        ("Service", "b/web").hash(&mut hasher);
        seen.insert(hasher.finish());
        let b = text("b");
        assert!(added(keep(
            &mut seen,
            2,
            key("b"),
            Input::Text(&b),
            &mut services
        )));
        let again = keep(
            &mut seen,
            3,
            key("b"),
            Input::Tree(object("b")),
            &mut services,
        );
        assert!(matches!(again, Ok(Kept::Duplicate)));
        let again = keep(&mut seen, 4, key("b"), Input::Text(&b), &mut services);
        assert!(matches!(again, Ok(Kept::Duplicate)));
        assert_eq!(services.len(), 2);
        // Text that does not decode into the type changes nothing.
        let bad = r#"{"kind": "Service", "metadata": {"name": 5}}"#;
        let kept = keep(
            &mut seen,
            5,
            ("Service", "c"),
            Input::Text(bad),
            &mut services,
        );
        assert!(matches!(kept, Ok(Kept::NotDecoded)));
        assert_eq!((services.len(), seen.len()), (2, 2));
    }

    #[test]
    fn unreadable_input_is_an_error_that_names_the_object() {
        let cases = [
            ("{not json", "not valid JSON"),
            ("{}", "no Kubernetes object in the input"),
            (
                "cluster-cidr: 10.42.0.0/16,fd00:42::/56\nflannel-ipv6-masq: true\n",
                "no Kubernetes object in the input",
            ),
            ("a: [unclosed", "not valid YAML"),
            (
                "- 1\n- 2\n",
                "expected an object or a List, found a sequence",
            ),
            (
                "kind: Service\nmetadata: {name: web, namespace: default}\nspec: {ports: [{port: huge}]}\n",
                "Service default/web",
            ),
            (
                "kind: Node\nmetadata: {name: n1}\n---\nkind: Node\nmetadata: {name: n1}\n",
                "Node n1 appears more than once",
            ),
            (
                "kind: Lease\nmetadata: {name: l, namespace: y}\nspec: {renewTime: yesterday}\n",
                "\"yesterday\" is not RFC 3339",
            ),
        ];
        for (text, expected) in cases {
            let err = Snapshot::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }
}
