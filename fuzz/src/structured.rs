//! A cluster dump built from fuzz bytes: every byte picks a choice from small pools of
//! realistic values (node names, addresses of every kind, families, policies, ports, labels,
//! Lease states), so that almost every input is a valid snapshot and the fuzzer spends its
//! time in the decision's rules (families, conflicts, ETP Local, pools, Lease expiry) rather
//! than in the YAML reader. The dump is JSON text, read back with `Snapshot::parse`.

use serde_json::{Value, json};

/// Reads choices from the fuzz input; past its end every choice is 0.
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n.max(1)
    }

    fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }
}

const NODES: [&str; 4] = ["node-a", "node-b", "node-c", "y"];
const V4: [&str; 8] = [
    "10.0.1.1",
    "10.0.1.2",
    "192.0.2.10",
    "203.0.113.7",
    "169.254.1.1",
    "127.0.0.1",
    "0.0.0.0",
    "10.0.1.1",
];
const V6: [&str; 9] = [
    "fd00:1::1",
    "fd00:1::2",
    "2001:db8:1::5",
    "2003:e9:f74a:ecf8::1",
    "fe80::1",
    "::1",
    "::ffff:10.0.1.1",
    "ff02::1",
    "not-an-ip",
];
const ADDRESS_TYPES: [&str; 3] = ["InternalIP", "ExternalIP", "Hostname"];
const READY: [&str; 4] = ["True", "False", "Unknown", ""];
const LABELS: [(&str, &str); 6] = [
    (
        "node.kubernetes.io/exclude-from-external-load-balancers",
        "",
    ),
    ("svccontroller.k3s.cattle.io/enablelb", "true"),
    ("svccontroller.k3s.cattle.io/enablelb", "false"),
    ("svccontroller.k3s.cattle.io/lbpool", "a"),
    ("pool.dualstack.io/b", "true"),
    ("pool.dualstack.io/a", "true"),
];
const TAINTS: [(&str, &str); 3] = [
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ("ToBeDeletedByClusterAutoscaler", "NoSchedule"),
    ("example.com/evict", "NoExecute"),
];
const RENEW: [&str; 4] = [
    "2026-01-01T00:00:00.000000Z",
    "2025-12-31T23:59:00Z",
    "2026-01-01T00:00:00Z",
    "2020-01-01T00:00:00Z",
];
const LIVE: [&str; 6] = [
    "",
    "2001:db8:1::5, 192.0.2.10",
    "2001:db8:1::5;temporary, fd00:1::1",
    "2001:db8:0:1::5;deprecated,2001:db8:1::6",
    "10.0.1.1;future-flag",
    "bogus",
];
const CLASSES: [Option<&str>; 3] = [Some("dualstack.io/lb"), Some("example.com/other"), None];
const TYPES: [&str; 3] = ["LoadBalancer", "LoadBalancer", "ClusterIP"];
const FAMILIES: [&[&str]; 5] = [
    &["IPv4", "IPv6"],
    &["IPv6", "IPv4"],
    &["IPv4"],
    &["IPv6"],
    &[],
];
const POLICIES: [Option<&str>; 4] = [
    Some("SingleStack"),
    Some("PreferDualStack"),
    Some("RequireDualStack"),
    None,
];
const PORTS: [u16; 5] = [80, 443, 53, 8080, 0];
const PROTOCOLS: [Option<&str>; 4] = [Some("TCP"), Some("UDP"), Some("SCTP"), None];
const RANGES: [&str; 5] = [
    "10.0.0.0/8",
    "2001:db8::/32",
    "0.0.0.0/0",
    "::/0",
    "bad-range",
];
const TIMES: [&str; 3] = [
    "2025-12-01T00:00:00Z",
    "2025-12-01T00:00:00Z",
    "2025-12-02T00:00:00Z",
];

fn node(b: &mut Bytes, name: &str) -> Value {
    let mut addresses = Vec::new();
    for _ in 0..b.below(4) {
        let type_ = ADDRESS_TYPES[b.below(ADDRESS_TYPES.len())];
        let address = match type_ {
            "Hostname" => name.to_string(),
            _ if b.flag() => V6[b.below(V6.len())].to_string(),
            _ => V4[b.below(V4.len())].to_string(),
        };
        addresses.push(json!({"type": type_, "address": address}));
    }
    let mut conditions = Vec::new();
    let ready = READY[b.below(READY.len())];
    if !ready.is_empty() {
        conditions.push(json!({"type": "Ready", "status": ready}));
    }
    let mut labels = serde_json::Map::new();
    for _ in 0..b.below(3) {
        let (k, v) = LABELS[b.below(LABELS.len())];
        labels.insert(k.to_string(), json!(v));
    }
    let taints: Vec<Value> = (0..b.below(2))
        .map(|_| {
            let (key, effect) = TAINTS[b.below(TAINTS.len())];
            json!({"key": key, "effect": effect})
        })
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {"unschedulable": b.flag(), "taints": taints},
        "status": {"addresses": addresses, "conditions": conditions},
    })
}

fn lease(b: &mut Bytes, node: &str) -> Value {
    let holder = if b.below(4) == 0 {
        "someone-else"
    } else {
        node
    };
    let mut spec = serde_json::Map::new();
    spec.insert("holderIdentity".into(), json!(holder));
    if b.below(5) != 0 {
        spec.insert("renewTime".into(), json!(RENEW[b.below(RENEW.len())]));
        spec.insert("leaseDurationSeconds".into(), json!(40));
    }
    let live = LIVE[b.below(LIVE.len())];
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {
            "name": format!("dualstack-agent-{node}"), "namespace": "dualstack-system",
            "annotations": {"dualstack.io/addresses": live},
        },
        "spec": spec,
    })
}

fn service(b: &mut Bytes, index: usize) -> (Value, Vec<Value>) {
    let name = format!("svc-{index}");
    let namespace = if b.below(3) == 0 { "other" } else { "default" };
    let families: Vec<&str> = FAMILIES[b.below(FAMILIES.len())].to_vec();
    let cluster_ips: Vec<String> = families
        .iter()
        .map(|f| match *f {
            "IPv4" => format!("10.43.0.{index}"),
            _ => format!("fd43::{index}"),
        })
        .collect();
    let ports: Vec<(u16, &str)> = (0..=b.below(3))
        .map(|_| {
            let port = PORTS[b.below(PORTS.len())];
            let proto = PROTOCOLS[b.below(PROTOCOLS.len())].unwrap_or("TCP");
            (port, proto)
        })
        .collect();
    let mut spec = serde_json::Map::new();
    spec.insert("type".into(), json!(TYPES[b.below(TYPES.len())]));
    if let Some(class) = CLASSES[b.below(CLASSES.len())] {
        spec.insert("loadBalancerClass".into(), json!(class));
    }
    spec.insert("ipFamilies".into(), json!(families));
    if let Some(policy) = POLICIES[b.below(POLICIES.len())] {
        spec.insert("ipFamilyPolicy".into(), json!(policy));
    }
    spec.insert("clusterIPs".into(), json!(cluster_ips));
    let local = b.flag();
    spec.insert(
        "externalTrafficPolicy".into(),
        json!(if local { "Local" } else { "Cluster" }),
    );
    let port_objects: Vec<Value> = ports
        .iter()
        .enumerate()
        .map(|(i, (port, proto))| {
            json!({"name": format!("p{i}"), "port": port, "protocol": proto, "targetPort": 8080})
        })
        .collect();
    spec.insert("ports".into(), json!(port_objects));
    if b.below(4) == 0 {
        let ranges: Vec<&str> = (0..=b.below(2))
            .map(|_| RANGES[b.below(RANGES.len())])
            .collect();
        spec.insert("loadBalancerSourceRanges".into(), json!(ranges));
    }
    let mut labels = serde_json::Map::new();
    if b.below(4) == 0 {
        let pool = if b.flag() { "a" } else { "b" };
        labels.insert("svccontroller.k3s.cattle.io/lbpool".into(), json!(pool));
    }
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {
            "name": name, "namespace": namespace, "labels": labels,
            "creationTimestamp": TIMES[b.below(TIMES.len())],
        },
        "spec": spec,
    });

    let mut slices = Vec::new();
    for family in families {
        if b.below(4) == 0 {
            continue;
        }
        let endpoints: Vec<Value> = (0..b.below(4))
            .map(|i| {
                let addr = if family == "IPv4" {
                    format!("10.42.{index}.{i}")
                } else {
                    format!("fd42:{index}::{i}")
                };
                let node = NODES[b.below(NODES.len())];
                json!({
                    "addresses": [addr],
                    "conditions": {"ready": b.below(4) != 0, "serving": b.flag(), "terminating": b.below(5) == 0},
                    "nodeName": node,
                })
            })
            .collect();
        let slice_ports: Vec<Value> = ports
            .iter()
            .enumerate()
            .map(
                |(i, (_, proto))| json!({"name": format!("p{i}"), "port": 8080, "protocol": proto}),
            )
            .collect();
        slices.push(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {
                "name": format!("{name}-{}", family.to_lowercase()), "namespace": namespace,
                "labels": {"kubernetes.io/service-name": name},
            },
            "addressType": family,
            "endpoints": endpoints,
            "ports": slice_ports,
        }));
    }
    (svc, slices)
}

/// A `kind: List` dump (JSON text) chosen by `data`.
pub fn dump(data: &[u8]) -> String {
    let mut b = Bytes { data, at: 0 };
    let mut items = Vec::new();
    let node_count = 1 + b.below(NODES.len());
    for name in &NODES[..node_count] {
        items.push(node(&mut b, name));
        if b.below(4) != 0 {
            items.push(lease(&mut b, name));
        }
    }
    for index in 0..b.below(7) {
        let (svc, slices) = service(&mut b, index);
        items.push(svc);
        items.extend(slices);
    }
    json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}
