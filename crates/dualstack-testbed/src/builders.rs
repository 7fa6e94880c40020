//! Typed builders for the Kubernetes objects tests feed to the decision, the agent and the
//! doctor, instead of cluster dumps pasted into each test file (feature `builders`).
//!
//! Every builder produces a real Kubernetes object as a `serde_json` [`Value`], with the
//! fields the API server would show (`kubectl get … -o json`), and nothing this crate does
//! not set on purpose: each builder's doc names the API fields it sets. [`Cluster`] collects
//! them into a `kind: List` and prints it as JSON ([`Cluster::to_json`]) or block YAML
//! ([`Cluster::to_yaml`], keys sorted like `kubectl -o yaml`); both parse into the same
//! [`dualstack_lb::Snapshot`].
//!
//! ```
//! use dualstack_testbed::builders::*;
//!
//! let dump = cluster()
//!     .node(node("node-a").internal(["10.0.1.1", "fd00:1::1"]).ready())
//!     .lease(agent_lease("node-a").renewed("2026-01-01T00:00:00Z"))
//!     .service(
//!         svc("default", "web")
//!             .lb()
//!             .dual_stack()
//!             .port("http", Tcp, 80, 8080)
//!             .cluster_ips(["10.43.0.10", "fd00:43::10"]),
//!     )
//!     .slices(slice_for("default", "web").endpoint("10.42.0.7", "node-a").endpoint("fd00:42::7", "node-a"))
//!     .to_yaml();
//! let snapshot = dualstack_lb::Snapshot::parse(&dump).unwrap();
//! assert_eq!(snapshot.endpoint_slices.len(), 2); // one per family, like the slice controller
//! ```
//!
//! Anything the builders do not cover goes in as a raw object ([`Cluster::object`]) or a raw
//! field (`.spec(key, value)` / `.metadata(key, value)` on each builder).

use std::fmt::Write as _;

use dualstack_lb::config::{DEFAULT_CLASS, DEFAULT_LEASE_NAMESPACE, LEASE_NAME_PREFIX};
use dualstack_lb::{POOL_ANNOTATION, SERVICE_NAME_LABEL};
use serde_json::{Map, Value, json};

/// `kube-controller-manager`'s default for Leases we write: the agent's
/// `leaseDurationSeconds` (`dualstack_kube::lease::LEASE_DURATION_SECONDS`, not a dependency
/// of this crate).
pub const AGENT_LEASE_SECONDS: i64 = 40;

/// The Lease annotation the agent publishes its ruleset summary in
/// (`dualstack_kube::lease::RULESET_ANNOTATION`, not a dependency of this crate).
pub const RULESET_ANNOTATION: &str = "dualstack.io/ruleset";

/// A port protocol (`protocol` of a Service or EndpointSlice port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `TCP`
    Tcp,
    /// `UDP`
    Udp,
    /// `SCTP`
    Sctp,
}
pub use Protocol::{Sctp, Tcp, Udp};

impl Protocol {
    /// The API spelling: `TCP`, `UDP`, `SCTP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tcp => "TCP",
            Udp => "UDP",
            Sctp => "SCTP",
        }
    }
}

/// Sets `key` in `map` to `value`, or removes it when `value` is `null`.
fn set(map: &mut Map<String, Value>, key: &str, value: Value) {
    if value.is_null() {
        map.remove(key);
    } else {
        map.insert(key.to_string(), value);
    }
}

/// The value under `key` in `map`, replaced by `empty` if missing or of another type.
fn slot<'a>(map: &'a mut Map<String, Value>, key: &str, empty: Value) -> &'a mut Value {
    let entry = map.entry(key.to_string()).or_insert(Value::Null);
    if std::mem::discriminant(entry) != std::mem::discriminant(&empty) {
        *entry = empty;
    }
    entry
}

/// The object under `key` in `map`, created empty if missing.
fn child<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    match slot(map, key, Value::Object(Map::new())) {
        Value::Object(m) => m,
        _ => unreachable!("slot gives an object"),
    }
}

/// The array under `key` in `map`, created empty if missing.
fn list<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    match slot(map, key, Value::Array(Vec::new())) {
        Value::Array(v) => v,
        _ => unreachable!("slot gives an array"),
    }
}

fn strings<I, S>(items: I) -> Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    Value::Array(items.into_iter().map(|s| json!(s.as_ref())).collect())
}

/// A fresh object: `apiVersion`, `kind`, `metadata.name` and, if not empty,
/// `metadata.namespace`.
fn object(api_version: &str, kind: &str, namespace: &str, name: &str) -> Map<String, Value> {
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(name));
    if !namespace.is_empty() {
        metadata.insert("namespace".into(), json!(namespace));
    }
    let mut map = Map::new();
    map.insert("apiVersion".into(), json!(api_version));
    map.insert("kind".into(), json!(kind));
    map.insert("metadata".into(), Value::Object(metadata));
    map
}

/// The `metadata`/`spec`/labels/annotations setters every builder has.
macro_rules! common {
    () => {
        /// Sets `metadata.labels[key]`.
        pub fn label(mut self, key: &str, value: &str) -> Self {
            child(child(&mut self.0, "metadata"), "labels").insert(key.into(), json!(value));
            self
        }
        /// Sets `metadata.annotations[key]`.
        pub fn annotation(mut self, key: &str, value: &str) -> Self {
            child(child(&mut self.0, "metadata"), "annotations").insert(key.into(), json!(value));
            self
        }
        /// Sets `metadata.creationTimestamp` (RFC 3339, e.g. `2025-12-01T00:00:00Z`).
        pub fn created(self, time: &str) -> Self {
            self.metadata("creationTimestamp", json!(time))
        }
        /// Sets (or, with `null`, removes) any `metadata` field.
        pub fn metadata(mut self, key: &str, value: Value) -> Self {
            set(child(&mut self.0, "metadata"), key, value);
            self
        }
        /// Sets (or, with `null`, removes) any `spec` field.
        pub fn spec(mut self, key: &str, value: Value) -> Self {
            set(child(&mut self.0, "spec"), key, value);
            self
        }
        /// The object as built.
        pub fn build(self) -> Value {
            Value::Object(self.0)
        }
    };
}

/// A `v1 Node` named `name`, with no addresses or conditions yet.
pub fn node(name: &str) -> NodeBuilder {
    NodeBuilder(object("v1", "Node", "", name))
}

/// A `v1 Node`: see [`node`].
#[derive(Debug, Clone)]
pub struct NodeBuilder(Map<String, Value>);

impl NodeBuilder {
    common!();

    fn address(mut self, kind: &str, address: &str) -> Self {
        list(child(&mut self.0, "status"), "addresses")
            .push(json!({"type": kind, "address": address}));
        self
    }

    /// Appends `status.addresses` entries of type `InternalIP`.
    pub fn internal<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, addresses: I) -> Self {
        for a in addresses {
            self = self.address("InternalIP", a.as_ref());
        }
        self
    }

    /// Appends `status.addresses` entries of type `ExternalIP`.
    pub fn external<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, addresses: I) -> Self {
        for a in addresses {
            self = self.address("ExternalIP", a.as_ref());
        }
        self
    }

    /// Appends a `status.addresses` entry of type `Hostname`: the node's name.
    pub fn hostname(self) -> Self {
        let name = self.0["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.address("Hostname", &name)
    }

    /// Sets the `status.conditions` entry of type `kind` to `status` (`True`, `False`,
    /// `Unknown`), replacing one of that type.
    pub fn condition(mut self, kind: &str, status: &str) -> Self {
        let conditions = list(child(&mut self.0, "status"), "conditions");
        conditions.retain(|c| c["type"] != kind);
        conditions.push(json!({"type": kind, "status": status}));
        self
    }

    /// `status.conditions`: `Ready` is `True`.
    pub fn ready(self) -> Self {
        self.condition("Ready", "True")
    }

    /// `status.conditions`: `Ready` is `False`.
    pub fn not_ready(self) -> Self {
        self.condition("Ready", "False")
    }

    /// Appends a `spec.taints` entry (`effect` e.g. `NoSchedule`).
    pub fn taint(mut self, key: &str, effect: &str) -> Self {
        list(child(&mut self.0, "spec"), "taints").push(json!({"key": key, "effect": effect}));
        self
    }

    /// `spec.unschedulable: true` (cordoned).
    pub fn unschedulable(self) -> Self {
        self.spec("unschedulable", json!(true))
    }
}

/// A `coordination.k8s.io/v1 Lease` as the agent on `node` writes it: `metadata.name`
/// `dualstack-agent-<node>` in namespace `dualstack-system`, `spec.holderIdentity` `node`,
/// `spec.leaseDurationSeconds` 40. No `renewTime` until [`LeaseBuilder::renewed`].
pub fn agent_lease(node: &str) -> LeaseBuilder {
    let mut map = object(
        "coordination.k8s.io/v1",
        "Lease",
        DEFAULT_LEASE_NAMESPACE,
        &format!("{LEASE_NAME_PREFIX}{node}"),
    );
    map.insert(
        "spec".into(),
        json!({"holderIdentity": node, "leaseDurationSeconds": AGENT_LEASE_SECONDS}),
    );
    LeaseBuilder(map)
}

/// A `coordination.k8s.io/v1 Lease`: see [`agent_lease`].
#[derive(Debug, Clone)]
pub struct LeaseBuilder(Map<String, Value>);

impl LeaseBuilder {
    common!();

    /// Sets `spec.renewTime` (a MicroTime as written, e.g. `2026-01-01T00:00:00.000000Z`).
    pub fn renewed(self, time: &str) -> Self {
        self.spec("renewTime", json!(time))
    }

    /// Sets `spec.leaseDurationSeconds`.
    pub fn duration(self, seconds: i64) -> Self {
        self.spec("leaseDurationSeconds", json!(seconds))
    }

    /// Moves it to `metadata.namespace` `namespace`.
    pub fn namespace(self, namespace: &str) -> Self {
        self.metadata("namespace", json!(namespace))
    }

    /// Sets the `dualstack.io/ruleset` annotation (the agent's published summary).
    pub fn ruleset(self, summary: &str) -> Self {
        self.annotation(RULESET_ANNOTATION, summary)
    }
}

/// A `v1 Service` `namespace/name` with an empty `spec`.
pub fn svc(namespace: &str, name: &str) -> ServiceBuilder {
    let mut map = object("v1", "Service", namespace, name);
    map.insert("spec".into(), json!({}));
    ServiceBuilder(map)
}

/// A `v1 Service`: see [`svc`].
#[derive(Debug, Clone)]
pub struct ServiceBuilder(Map<String, Value>);

impl ServiceBuilder {
    common!();

    /// `spec.type: LoadBalancer`, `spec.loadBalancerClass: dualstack.io/lb` (ours) and
    /// `spec.externalTrafficPolicy: Cluster` (the API server's default for it).
    pub fn lb(self) -> Self {
        self.spec("type", json!("LoadBalancer"))
            .spec("loadBalancerClass", json!(DEFAULT_CLASS))
            .spec("externalTrafficPolicy", json!("Cluster"))
    }

    /// Sets `spec.loadBalancerClass`.
    pub fn class(self, class: &str) -> Self {
        self.spec("loadBalancerClass", json!(class))
    }

    /// `spec.ipFamilies: [IPv4, IPv6]`, `spec.ipFamilyPolicy: RequireDualStack`.
    pub fn dual_stack(self) -> Self {
        self.families(["IPv4", "IPv6"]).policy("RequireDualStack")
    }

    /// Sets `spec.ipFamilies` (`IPv4`/`IPv6`, primary first).
    pub fn families<I: IntoIterator<Item = S>, S: AsRef<str>>(self, families: I) -> Self {
        self.spec("ipFamilies", strings(families))
    }

    /// Sets `spec.ipFamilyPolicy` (`SingleStack`, `PreferDualStack`, `RequireDualStack`).
    pub fn policy(self, policy: &str) -> Self {
        self.spec("ipFamilyPolicy", json!(policy))
    }

    /// Sets `spec.clusterIPs` (in `ipFamilies` order).
    pub fn cluster_ips<I: IntoIterator<Item = S>, S: AsRef<str>>(self, ips: I) -> Self {
        self.spec("clusterIPs", strings(ips))
    }

    /// `spec.externalTrafficPolicy: Local`.
    pub fn etp_local(self) -> Self {
        self.spec("externalTrafficPolicy", json!("Local"))
    }

    /// Appends a `spec.ports` entry `{name, protocol, port, targetPort}`.
    pub fn port(mut self, name: &str, protocol: Protocol, port: u16, target_port: u16) -> Self {
        list(child(&mut self.0, "spec"), "ports").push(json!({
            "name": name,
            "protocol": protocol.as_str(),
            "port": port,
            "targetPort": target_port,
        }));
        self
    }

    /// Appends a `spec.ports` entry with only `protocol` and `port`.
    pub fn bare_port(mut self, protocol: Protocol, port: u16) -> Self {
        list(child(&mut self.0, "spec"), "ports")
            .push(json!({"protocol": protocol.as_str(), "port": port}));
        self
    }

    /// Sets `spec.loadBalancerSourceRanges`.
    pub fn source_ranges<I: IntoIterator<Item = S>, S: AsRef<str>>(self, ranges: I) -> Self {
        self.spec("loadBalancerSourceRanges", strings(ranges))
    }

    /// Sets the `dualstack.io/pool` annotation.
    pub fn pool(self, pool: &str) -> Self {
        self.annotation(POOL_ANNOTATION, pool)
    }

    /// Sets `status.loadBalancer.ingress` to one `{ip}` entry per address.
    pub fn ingress<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, ips: I) -> Self {
        let ingress: Vec<Value> = ips
            .into_iter()
            .map(|ip| json!({"ip": ip.as_ref()}))
            .collect();
        child(child(&mut self.0, "status"), "loadBalancer")
            .insert("ingress".into(), json!(ingress));
        self
    }

    fn ports(&self) -> Vec<Value> {
        self.0["spec"]["ports"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// The `discovery.k8s.io/v1 EndpointSlice`s of Service `namespace/service`, one per address
/// family like the EndpointSlice controller writes them: see [`SlicesBuilder`].
pub fn slice_for(namespace: &str, service: &str) -> SlicesBuilder {
    SlicesBuilder {
        namespace: namespace.into(),
        service: service.into(),
        endpoints: Vec::new(),
        ports: None,
    }
}

/// The EndpointSlices of one Service. Each is named `<service>-ipv4` / `<service>-ipv6`,
/// labelled `kubernetes.io/service-name: <service>`, and sets `addressType`, `endpoints`
/// (`addresses` with one address, `conditions.{ready,serving,terminating}`, `nodeName`) and
/// `ports` (`name`, `protocol`, `port`). A family without endpoints gets no slice. Without
/// [`SlicesBuilder::port`], the ports are the Service's, as the controller derives them:
/// same name and protocol, `port` = its numeric `targetPort` (the Service must be in the
/// [`Cluster`] by then).
#[derive(Debug, Clone)]
pub struct SlicesBuilder {
    namespace: String,
    service: String,
    endpoints: Vec<Value>,
    ports: Option<Vec<Value>>,
}

impl SlicesBuilder {
    fn push(mut self, address: &str, node: &str, ready: bool, terminating: bool) -> Self {
        self.endpoints.push(json!({
            "addresses": [address],
            "conditions": {"ready": ready, "serving": true, "terminating": terminating},
            "nodeName": node,
        }));
        self
    }

    /// A ready endpoint (`ready`, `serving`, not `terminating`) at `address` on `node`.
    pub fn endpoint(self, address: &str, node: &str) -> Self {
        self.push(address, node, true, false)
    }

    /// An endpoint that is not ready (`ready: false`, `serving: true`, not terminating).
    pub fn not_ready(self, address: &str, node: &str) -> Self {
        self.push(address, node, false, false)
    }

    /// A terminating endpoint (`ready: false`, `serving: true`, `terminating: true`).
    pub fn terminating(self, address: &str, node: &str) -> Self {
        self.push(address, node, false, true)
    }

    /// Appends a `ports` entry `{name, protocol, port}` (instead of the Service's).
    pub fn port(mut self, name: &str, protocol: Protocol, port: u16) -> Self {
        self.ports.get_or_insert_with(Vec::new).push(json!({
            "name": name,
            "protocol": protocol.as_str(),
            "port": port,
        }));
        self
    }

    fn build(self, service: Option<&ServiceBuilder>) -> Vec<Value> {
        let ports = self.ports.unwrap_or_else(|| {
            service
                .map(ServiceBuilder::ports)
                .unwrap_or_default()
                .into_iter()
                .map(|p| {
                    let mut port = Map::new();
                    for key in ["name", "protocol"] {
                        if let Some(v) = p.get(key) {
                            port.insert(key.into(), v.clone());
                        }
                    }
                    if let Some(target) = p.get("targetPort").filter(|t| t.is_number()) {
                        port.insert("port".into(), target.clone());
                    }
                    Value::Object(port)
                })
                .collect()
        });
        let mut out = Vec::new();
        for family in ["IPv4", "IPv6"] {
            let endpoints: Vec<Value> = self
                .endpoints
                .iter()
                .filter(|e| {
                    let v6 = e["addresses"][0].as_str().unwrap_or_default().contains(':');
                    v6 == (family == "IPv6")
                })
                .cloned()
                .collect();
            if endpoints.is_empty() {
                continue;
            }
            let name = format!("{}-{}", self.service, family.to_lowercase());
            let mut map = object(
                "discovery.k8s.io/v1",
                "EndpointSlice",
                &self.namespace,
                &name,
            );
            child(child(&mut map, "metadata"), "labels")
                .insert(SERVICE_NAME_LABEL.into(), json!(self.service));
            map.insert("addressType".into(), json!(family));
            map.insert("endpoints".into(), Value::Array(endpoints));
            map.insert("ports".into(), Value::Array(ports.clone()));
            out.push(Value::Object(map));
        }
        out
    }
}

/// A cluster dump: objects in the order added, printed as a `v1 List`.
pub fn cluster() -> Cluster {
    Cluster::default()
}

/// A cluster dump: see [`cluster`].
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    items: Vec<Value>,
    services: Vec<ServiceBuilder>,
}

impl Cluster {
    /// Adds a Node.
    pub fn node(mut self, node: NodeBuilder) -> Self {
        self.items.push(node.build());
        self
    }

    /// Adds a Lease.
    pub fn lease(mut self, lease: LeaseBuilder) -> Self {
        self.items.push(lease.build());
        self
    }

    /// Adds a Service.
    pub fn service(mut self, service: ServiceBuilder) -> Self {
        self.items.push(service.clone().build());
        self.services.push(service);
        self
    }

    /// Adds a Service's EndpointSlices (one per family with endpoints).
    pub fn slices(mut self, slices: SlicesBuilder) -> Self {
        let service = self.services.iter().rev().find(|s| {
            s.0["metadata"]["name"] == slices.service.as_str()
                && s.0["metadata"]["namespace"] == slices.namespace.as_str()
        });
        let built = slices.build(service);
        self.items.extend(built);
        self
    }

    /// Adds any object as is (a `LoadBalancerPool`, a Pod, …).
    pub fn object(mut self, object: Value) -> Self {
        self.items.push(object);
        self
    }

    /// Removes every object of `kind` named `name` (any namespace).
    pub fn without(mut self, kind: &str, name: &str) -> Self {
        self.items
            .retain(|o| !(o["kind"] == kind && o["metadata"]["name"] == name));
        self
    }

    /// The objects, in the order added.
    pub fn items(&self) -> &[Value] {
        &self.items
    }

    /// The dump: `{apiVersion: v1, kind: List, items: […]}`.
    pub fn to_value(&self) -> Value {
        json!({"apiVersion": "v1", "kind": "List", "items": self.items})
    }

    /// The dump as pretty JSON (`kubectl get … -o json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.to_value()).unwrap_or_default()
    }

    /// The dump as block YAML (`kubectl get … -o yaml`: keys sorted).
    pub fn to_yaml(&self) -> String {
        to_yaml(&self.to_value())
    }
}

/// `value` as block YAML, keys sorted, strings quoted (JSON style) unless plain is unambiguous.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => yaml_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => yaml_seq(&mut out, items, 0),
        other => {
            out += &scalar(other);
            out.push('\n');
        }
    }
    out
}

fn plain_ok(s: &str) -> bool {
    let reserved = [
        "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~",
    ];
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && !reserved.contains(&s.to_ascii_lowercase().as_str())
        && s.parse::<f64>().is_err()
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) if plain_ok(s) => s.clone(),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

fn is_block(value: &Value) -> bool {
    match value {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn yaml_map(out: &mut String, map: &Map<String, Value>, indent: usize) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for (i, key) in keys.into_iter().enumerate() {
        // The first key of a sequence item follows its `- `.
        if i > 0 || out.is_empty() || out.ends_with('\n') {
            out.push_str(&" ".repeat(indent));
        }
        let value = &map[key];
        let _ = write!(out, "{}:", scalar(&json!(key)));
        match value {
            Value::Object(m) if !m.is_empty() => {
                out.push('\n');
                yaml_map(out, m, indent + 2);
            }
            // Like kubectl: a sequence under a key is not indented further.
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                yaml_seq(out, a, indent);
            }
            other => {
                let _ = writeln!(out, " {}", scalar(other));
            }
        }
    }
}

fn yaml_seq(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => yaml_map(out, m, indent + 2),
            Value::Array(a) if !a.is_empty() => {
                out.pop();
                out.push('\n');
                yaml_seq(out, a, indent + 2);
            }
            other => {
                debug_assert!(!is_block(other));
                let _ = writeln!(out, "{}", scalar(other));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use dualstack_lb::Snapshot;

    fn web() -> Cluster {
        let web = svc("default", "web")
            .pool("lab")
            .source_ranges(["10.0.0.0/8"])
            .port("http", Tcp, 80, 8080)
            .port("dns", Udp, 53, 5353)
            .lb()
            .dual_stack()
            .cluster_ips(["10.43.0.80", "fd43::80"])
            .created("2025-12-01T00:00:00Z");
        let endpoints = slice_for("default", "web")
            .endpoint("10.0.2.2", "node-a")
            .endpoint("fd00:2::2", "node-a")
            .terminating("10.0.3.2", "node-b");
        cluster()
            .lease(agent_lease("node-a").renewed("2026-01-01T00:00:00.000000Z"))
            .node(
                node("node-a")
                    .hostname()
                    .internal(["10.0.1.1"])
                    .internal(["fd00:1::1"])
                    .ready(),
            )
            .node(node("node-b").not_ready().internal(["10.9.0.2"]))
            .service(web)
            .slices(endpoints)
    }

    #[test]
    fn a_built_dump_parses_into_the_snapshot_it_describes() {
        let snapshot = Snapshot::parse(&web().to_yaml()).unwrap();
        assert_eq!(snapshot.nodes.len(), 2);
        assert_eq!(snapshot.nodes[0].status.addresses.len(), 3);
        assert_eq!(snapshot.nodes[1].status.conditions[0].status, "False");
        let lease = &snapshot.leases[0];
        assert_eq!(lease.metadata.name, "dualstack-agent-node-a");
        assert_eq!(lease.metadata.namespace, "dualstack-system");
        assert_eq!(lease.spec.holder_identity.as_deref(), Some("node-a"));
        assert_eq!(lease.spec.lease_duration_seconds, Some(40));
        assert!(lease.spec.renew_time.is_some());
        assert_eq!(snapshot.taken_at(), lease.spec.renew_time);

        let [service] = &snapshot.services[..] else {
            panic!("one Service: {:?}", snapshot.services)
        };
        assert_eq!(service.metadata.name, "web");
        assert_eq!(service.metadata.annotations[POOL_ANNOTATION], "lab");
        assert!(service.metadata.creation_timestamp.is_some());
        let spec = &service.spec;
        assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
        assert_eq!(spec.load_balancer_class.as_deref(), Some(DEFAULT_CLASS));
        assert_eq!(spec.ip_families, ["IPv4", "IPv6"]);
        assert_eq!(spec.ip_family_policy.as_deref(), Some("RequireDualStack"));
        assert_eq!(spec.cluster_ips, ["10.43.0.80", "fd43::80"]);
        assert_eq!(spec.external_traffic_policy.as_deref(), Some("Cluster"));
        assert_eq!(spec.load_balancer_source_ranges, ["10.0.0.0/8"]);
        assert_eq!(
            spec.ports.iter().map(|p| p.port).collect::<Vec<_>>(),
            [80, 53]
        );
        assert_eq!(spec.ports[0].name.as_deref(), Some("http"));
        assert_eq!(spec.ports[1].protocol.as_deref(), Some("UDP"));

        // The slices as written (the snapshot keeps them reduced: see below).
        let slices: Vec<dualstack_lb::objects::EndpointSlice> = web()
            .items()
            .iter()
            .filter(|o| o["kind"] == "EndpointSlice")
            .map(|o| serde_json::from_value(o.clone()).unwrap())
            .collect();
        assert_eq!(slices.len(), 2);
        for (slice, family, n) in [(&slices[0], "IPv4", 2), (&slices[1], "IPv6", 1)] {
            assert_eq!(slice.address_type, family);
            assert_eq!(slice.metadata.labels[SERVICE_NAME_LABEL], "web");
            assert_eq!(slice.endpoints.len(), n);
            // Derived from the Service's ports: target ports, same names and protocols.
            let ports: Vec<_> = slice
                .ports
                .iter()
                .map(|p| (p.name.as_deref(), p.protocol.as_deref(), p.port))
                .collect();
            assert_eq!(
                ports,
                [
                    (Some("http"), Some("TCP"), Some(8080)),
                    (Some("dns"), Some("UDP"), Some(5353))
                ]
            );
        }
        let gone = &slices[0].endpoints[1];
        assert_eq!(gone.conditions.ready, Some(false));
        assert_eq!(gone.conditions.terminating, Some(true));
        assert_eq!(gone.node_name.as_deref(), Some("node-b"));
        // Read into a snapshot, the terminating endpoint is not a backend.
        let usable: Vec<usize> = snapshot
            .endpoint_slices
            .iter()
            .map(|s| s.endpoints.len())
            .collect();
        assert_eq!(usable, [1, 1]);
    }

    #[test]
    fn yaml_and_json_say_the_same() {
        let dump = web();
        let yaml = dump.to_yaml();
        assert_eq!(
            Snapshot::parse(&yaml).unwrap(),
            Snapshot::parse(&dump.to_json()).unwrap()
        );
        // Strings that YAML would read as something else are quoted.
        assert!(yaml.contains("status: \"True\""), "{yaml}");
        assert!(yaml.contains("- \"fd00:1::1\"") || yaml.contains("address: \"fd00:1::1\""));
        assert!(
            yaml.starts_with("apiVersion: v1\nitems:\n- apiVersion: coordination.k8s.io/v1\n"),
            "{yaml}"
        );
    }

    #[test]
    fn yaml_quotes_what_would_not_read_back_as_a_string() {
        for s in [
            "", "true", "on", "y", "1", "1.5", "10.0.0.1", "a: b", "#x", "-x", "~",
        ] {
            let yaml = to_yaml(&json!({ "k": s }));
            assert_eq!(yaml, format!("k: {}\n", json!(s)));
        }
        assert_eq!(to_yaml(&json!({"k": "node-a"})), "k: node-a\n");
        assert_eq!(
            to_yaml(&json!({"a": [], "b": {}, "c": [[1], {"d": [2]}]})),
            "a: []\nb: {}\nc:\n-\n  - 1\n- d:\n  - 2\n"
        );
    }

    #[test]
    fn without_removes_an_object_and_explicit_slice_ports_win() {
        let dump = web().without("Lease", "dualstack-agent-node-a").slices(
            slice_for("default", "other")
                .endpoint("fd00::1", "node-a")
                .port("p", Sctp, 9),
        );
        let snapshot = Snapshot::parse(&dump.to_json()).unwrap();
        assert!(snapshot.leases.is_empty());
        let last = snapshot.endpoint_slices.last().unwrap();
        assert_eq!(last.name, "other-ipv6");
        assert_eq!(format!("{:?}", last.ports[0].protocol), "Sctp");
    }
}
