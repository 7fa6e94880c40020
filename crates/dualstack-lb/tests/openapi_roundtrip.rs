//! Every field our mirror types read arrives from what the API server writes.
//!
//! Each kind the decision reads is built as a fully populated `k8s-openapi` object (every
//! field we mirror set, plus fields we do not read), serialized with serde_json as the API
//! server and kube-rs would, read through [`Snapshot::parse`], and compared field by field:
//! our object, serialized again, must carry no empty or default field (so a field whose
//! name we spell differently from the API — `clusterIps` for `clusterIPs` — shows up as
//! missing), and every field in it must sit at the same path with the same value in the
//! API server's JSON. A field added to `objects.rs` later is covered without changing this
//! test, once the fixtures below set it.

// Test helpers may panic on fixtures they build themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use dualstack_lb::objects::ANNOTATION_PREFIXES;
use dualstack_lb::{Snapshot, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, Service, ServicePort, ServiceSpec,
    ServiceStatus, Taint,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff;
use serde_json::Value;

fn time(text: &str) -> Time {
    Time(text.parse::<jiff::Timestamp>().unwrap())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn map(items: &[(&str, &str)]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Metadata with every field we read, one annotation we keep and one we drop.
fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(str::to_string),
        creation_timestamp: Some(time("2025-04-10T07:50:00Z")),
        deletion_timestamp: Some(time("2025-04-10T09:58:00Z")),
        labels: Some(map(&[("app.kubernetes.io/name", name)])),
        annotations: Some(map(&[
            ("dualstack.io/addresses", "10.0.0.1, 2001:db8::1;temporary"),
            ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
        ])),
        uid: Some("6f1c2a4e-0000-4000-8000-000000000001".into()),
        resource_version: Some("1000".into()),
        finalizers: Some(strings(&["example.com/keep"])),
        ..ObjectMeta::default()
    }
}

fn service() -> Service {
    Service {
        metadata: meta("web", Some("shop")),
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            load_balancer_class: Some("dualstack.io/lb".into()),
            ip_families: Some(strings(&["IPv6", "IPv4"])),
            ip_family_policy: Some("RequireDualStack".into()),
            cluster_ip: Some("2001:db8:43::20".into()),
            cluster_ips: Some(strings(&["2001:db8:43::20", "10.43.0.20"])),
            external_ips: Some(strings(&["192.0.2.7"])),
            load_balancer_ip: Some("192.0.2.8".into()),
            ports: Some(vec![
                ServicePort {
                    name: Some("http".into()),
                    protocol: Some("TCP".into()),
                    port: 80,
                    target_port: Some(IntOrString::String("http".into())),
                    node_port: Some(30080),
                    app_protocol: Some("http".into()),
                },
                ServicePort {
                    name: Some("dns".into()),
                    protocol: Some("UDP".into()),
                    port: 53,
                    target_port: Some(IntOrString::Int(5353)),
                    node_port: Some(30053),
                    ..ServicePort::default()
                },
            ]),
            external_traffic_policy: Some("Local".into()),
            internal_traffic_policy: Some("Cluster".into()),
            load_balancer_source_ranges: Some(strings(&["192.0.2.0/24", "2001:db8:1::/48"])),
            allocate_load_balancer_node_ports: Some(true),
            selector: Some(map(&[("app", "web")])),
            ..ServiceSpec::default()
        }),
        // The published status is the pool allocation's record: read too.
        status: Some(ServiceStatus {
            load_balancer: Some(k8s_openapi::api::core::v1::LoadBalancerStatus {
                ingress: Some(vec![k8s_openapi::api::core::v1::LoadBalancerIngress {
                    ip: Some("192.0.2.240".into()),
                    ..Default::default()
                }]),
            }),
            ..ServiceStatus::default()
        }),
    }
}

fn node() -> Node {
    Node {
        metadata: meta("node-a", None),
        spec: Some(NodeSpec {
            unschedulable: Some(true),
            taints: Some(vec![Taint {
                key: "ToBeDeletedByClusterAutoscaler".into(),
                value: Some("1744279200".into()),
                effect: "NoSchedule".into(),
                time_added: Some(time("2025-04-10T09:57:00Z")),
            }]),
            pod_cidrs: Some(strings(&["10.42.0.0/24", "2001:db8:42::/64"])),
            ..NodeSpec::default()
        }),
        status: Some(NodeStatus {
            addresses: Some(vec![
                NodeAddress {
                    type_: "InternalIP".into(),
                    address: "10.0.0.1".into(),
                },
                NodeAddress {
                    type_: "ExternalIP".into(),
                    address: "2001:db8::1".into(),
                },
            ]),
            conditions: Some(vec![
                NodeCondition {
                    type_: "NetworkUnavailable".into(),
                    status: "True".into(),
                    reason: Some("NoRouteCreated".into()),
                    message: Some("Node created without a route".into()),
                    last_transition_time: Some(time("2025-04-10T07:50:00Z")),
                    ..NodeCondition::default()
                },
                NodeCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    reason: Some("KubeletReady".into()),
                    ..NodeCondition::default()
                },
            ]),
            ..NodeStatus::default()
        }),
    }
}

fn endpoint_slice() -> EndpointSlice {
    let mut metadata = meta("web-abcde", Some("shop"));
    metadata
        .labels
        .get_or_insert_default()
        .insert("kubernetes.io/service-name".into(), "web".into());
    EndpointSlice {
        metadata,
        address_type: "IPv6".into(),
        endpoints: Some(vec![Endpoint {
            addresses: strings(&["2001:db8:42::5"]),
            // All true, so that a condition that does not arrive (None) shows as missing.
            conditions: Some(EndpointConditions {
                ready: Some(true),
                serving: Some(true),
                terminating: Some(true),
            }),
            node_name: Some("node-a".into()),
            hostname: Some("web-0".into()),
            zone: Some("zone-a".into()),
            ..Endpoint::default()
        }]),
        ports: Some(vec![EndpointPort {
            name: Some("http".into()),
            protocol: Some("TCP".into()),
            port: Some(8080),
            app_protocol: Some("http".into()),
        }]),
    }
}

fn lease() -> Lease {
    Lease {
        metadata: meta("dualstack-agent-node-a", Some("dualstack-system")),
        spec: Some(LeaseSpec {
            holder_identity: Some("node-a".into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(
                "2025-04-10T09:59:55.123456Z"
                    .parse::<jiff::Timestamp>()
                    .unwrap(),
            )),
            acquire_time: Some(MicroTime(
                "2025-04-10T07:50:01Z".parse::<jiff::Timestamp>().unwrap(),
            )),
            lease_transitions: Some(3),
            ..LeaseSpec::default()
        }),
    }
}

/// A leaf we do not consider set: it would be the value of a field that never arrived.
fn unset(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Two leaves are equal, timestamps compared as instants (the API writes `…Z` or
/// `….123456Z`; we write the fraction only when it is not zero).
fn same_leaf(ours: &Value, api: &Value) -> bool {
    if ours == api {
        return true;
    }
    match (ours, api) {
        (Value::String(a), Value::String(b)) => {
            match (a.parse::<Timestamp>(), b.parse::<Timestamp>()) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            }
        }
        _ => false,
    }
}

/// Checks that every field of `ours` is set and equals the field at the same path of `api`.
fn check(path: &str, ours: &Value, api: &Value, problems: &mut Vec<String>) {
    match (ours, api) {
        (Value::Object(o), Value::Object(a)) => {
            if o.is_empty() {
                problems.push(format!("{path}: empty in our object"));
            }
            for (key, value) in o {
                let here = format!("{path}.{key}");
                match a.get(key) {
                    None => problems.push(format!(
                        "{here}: we read {key:?} but the API object has no such field \
                         (misspelled name? the API has: {})",
                        a.keys().cloned().collect::<Vec<_>>().join(", ")
                    )),
                    Some(api_value) => check(&here, value, api_value, problems),
                }
            }
        }
        (Value::Array(o), Value::Array(a)) => {
            if o.len() != a.len() || o.is_empty() {
                problems.push(format!(
                    "{path}: {} item(s) in our object, {} in the API object",
                    o.len(),
                    a.len()
                ));
            }
            for (i, (ov, av)) in o.iter().zip(a).enumerate() {
                check(&format!("{path}[{i}]"), ov, av, problems);
            }
        }
        _ if unset(ours) => problems.push(format!(
            "{path}: did not arrive (ours is {ours}, the API object has {api})"
        )),
        _ if !same_leaf(ours, api) => {
            problems.push(format!("{path}: ours is {ours}, the API object has {api}"))
        }
        _ => {}
    }
}

/// Mirrored fields a kind cannot have: `Node` is cluster-scoped, so it has no namespace.
const NOT_IN_KIND: [&str; 1] = ["Node.metadata.namespace"];

fn assert_arrives(kind: &str, ours: &impl serde::Serialize, api: &Value) {
    let ours = serde_json::to_value(ours).unwrap();
    let mut problems = Vec::new();
    check(kind, &ours, api, &mut problems);
    problems.retain(|p| {
        !NOT_IN_KIND
            .iter()
            .any(|path| p.starts_with(&format!("{path}:")))
    });
    assert!(
        problems.is_empty(),
        "{kind}: mirrored fields that did not arrive from the API server's JSON:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_mirrored_field_arrives_from_api_server_json() {
    let api: Vec<Value> = vec![
        serde_json::to_value(service()).unwrap(),
        serde_json::to_value(node()).unwrap(),
        serde_json::to_value(endpoint_slice()).unwrap(),
        serde_json::to_value(lease()).unwrap(),
    ];
    // k8s-openapi writes apiVersion and kind, as the API server does.
    let kinds: Vec<&str> = api.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Service", "Node", "EndpointSlice", "Lease"]);

    // The path the CLI and the tests read: a `kubectl get -o json` List.
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": api});
    let snapshot = Snapshot::parse(&serde_json::to_string(&list).unwrap()).unwrap();
    assert_eq!(snapshot.services.len(), 1);
    assert_eq!(snapshot.nodes.len(), 1);
    assert_eq!(snapshot.endpoint_slices.len(), 1);
    assert_eq!(snapshot.leases.len(), 1);

    assert_arrives("Service", &snapshot.services[0], &api[0]);
    assert_arrives("Node", &snapshot.nodes[0], &api[1]);
    // A snapshot keeps a slice reduced to what the decision reads; the API shape it is
    // reduced from is what mirrors the API.
    let slice: dualstack_lb::objects::EndpointSlice =
        serde_json::from_value(api[2].clone()).unwrap();
    assert_arrives("EndpointSlice", &slice, &api[2]);
    let reduced = &snapshot.endpoint_slices[0];
    assert_eq!(
        (reduced.namespace.as_str(), reduced.name.as_str()),
        ("shop", "web-abcde")
    );
    assert_eq!(reduced.service.as_deref(), Some("web"));
    assert_eq!(reduced.family, Some(dualstack_addr::Family::V6));
    let endpoints: Vec<_> = reduced
        .endpoints
        .iter()
        .map(|e| (e.addr.to_string(), e.node.as_deref()))
        .collect();
    assert_eq!(endpoints, [("2001:db8:42::5".to_string(), Some("node-a"))]);
    let ports: Vec<_> = reduced
        .ports
        .iter()
        .map(|p| (p.name.as_str(), p.protocol, p.port))
        .collect();
    assert_eq!(
        ports,
        [("http", dualstack_ruleset::Protocol::Tcp, Some(8080))]
    );
    assert_arrives("Lease", &snapshot.leases[0], &api[3]);

    // The path the in-cluster controller takes: one object's JSON value at a time.
    let svc: dualstack_lb::objects::Service = serde_json::from_value(api[0].clone()).unwrap();
    assert_eq!(svc, snapshot.services[0]);
}

#[test]
fn the_fields_that_were_misread_before_arrive() {
    // Spelled out, so a regression reads plainly in the test output.
    let text = serde_json::to_string(&serde_json::json!({"kind": "List", "items": [
        serde_json::to_value(service()).unwrap(), serde_json::to_value(node()).unwrap()]}))
    .unwrap();
    let snapshot = Snapshot::parse(&text).unwrap();
    assert_eq!(
        snapshot.services[0].spec.cluster_ips,
        ["2001:db8:43::20", "10.43.0.20"]
    );
    assert_eq!(
        snapshot.nodes[0]
            .metadata
            .deletion_timestamp
            .map(|t| t.to_string()),
        Some("2025-04-10T09:58:00Z".to_string())
    );
}

#[test]
fn only_the_annotations_we_read_are_compared() {
    // The dropped annotation is absent from ours, and that is intended: the check above is
    // "ours ⊆ API", so it does not flag it; the kept one must arrive.
    let svc = service();
    let kept: Vec<&String> = svc
        .metadata
        .annotations
        .as_ref()
        .unwrap()
        .keys()
        .filter(|k| ANNOTATION_PREFIXES.iter().any(|p| k.starts_with(p)))
        .collect();
    assert_eq!(kept, ["dualstack.io/addresses"]);
}
