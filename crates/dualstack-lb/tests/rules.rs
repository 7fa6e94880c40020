//! Every decision rule, each on realistic objects (the shapes `kubectl get -o json` prints).

// Test helpers may panic on fixtures they build themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dualstack_lb::conditions::ConditionType;
use dualstack_lb::decision::{AddressSource, DropReason, ServiceDecision};
use dualstack_lb::{Config, Decision, Mode, Snapshot, Timestamp, decide};
use dualstack_ruleset::{Destination, Protocol};
use serde_json::{Value, json};

const NOW: &str = "2025-04-10T10:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

/// A Ready node with the given `status.addresses` and labels.
fn node(name: &str, addresses: &[(&str, &str)], labels: Value) -> Value {
    let mut all: Vec<Value> = addresses
        .iter()
        .map(|(t, a)| json!({"type": t, "address": a}))
        .collect();
    all.push(json!({"type": "Hostname", "address": name}));
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "creationTimestamp": "2025-04-10T07:50:00Z",
                     "labels": labels, "resourceVersion": "1000"},
        "spec": {"podCIDRs": ["10.42.0.0/24", "2001:db8:42::/64"]},
        "status": {"addresses": all, "conditions": [
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
            {"type": "Ready", "status": "True", "reason": "KubeletReady",
             "message": "kubelet is posting ready status"}]}
    })
}

/// A dual-stack node `name` with InternalIPs 10.0.0.<n> and 2001:db8::<n>.
fn dual_node(name: &str, n: u8) -> Value {
    node(
        name,
        &[
            ("InternalIP", &format!("10.0.0.{n}")),
            ("InternalIP", &format!("2001:db8::{n}")),
        ],
        json!({"kubernetes.io/hostname": name}),
    )
}

/// The node's agent Lease, renewed 5 s before NOW for 15 s.
fn lease(node: &str, addresses: Option<&str>) -> Value {
    let mut meta = json!({"name": format!("dualstack-agent-{node}"), "namespace": "dualstack-system",
                          "labels": {"app.kubernetes.io/name": "dualstack-agent"}});
    if let Some(a) = addresses {
        meta["annotations"] = json!({"dualstack.io/addresses": a});
    }
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
           "spec": {"holderIdentity": node, "leaseDurationSeconds": 15,
                    "renewTime": "2025-04-10T09:59:55.000000Z"}})
}

/// A `type: LoadBalancer` Service of our class; `spec` fields override the defaults.
fn service(ns: &str, name: &str, created: &str, spec: Value) -> Value {
    let mut s = json!({
        "type": "LoadBalancer", "loadBalancerClass": "dualstack.io/lb",
        "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack",
        "clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20", "2001:db8:43::20"],
        "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
        "selector": {"app": name}, "sessionAffinity": "None",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http", "nodePort": 30080}]
    });
    for (k, v) in spec.as_object().unwrap() {
        if v.is_null() {
            s.as_object_mut().unwrap().remove(k);
        } else {
            s[k] = v.clone();
        }
    }
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
           "spec": s, "status": {"loadBalancer": {}}})
}

/// An EndpointSlice of `service` with (address, node, ready, serving, terminating) endpoints.
fn slice(
    ns: &str,
    service: &str,
    family: &str,
    endpoints: &[(&str, Option<&str>, bool, bool, bool)],
    ports: Value,
) -> Value {
    let eps: Vec<Value> = endpoints
        .iter()
        .map(|(a, n, r, s, t)| {
            let mut e = json!({"addresses": [a],
                               "conditions": {"ready": r, "serving": s, "terminating": t}});
            if let Some(n) = n {
                e["nodeName"] = json!(n);
            }
            e
        })
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": family,
           "metadata": {"name": format!("{service}-{}", family.to_lowercase()), "namespace": ns,
                        "labels": {"kubernetes.io/service-name": service,
                                   "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
           "endpoints": eps, "ports": ports})
}

fn http_port(port: u16) -> Value {
    json!([{"name": "http", "port": port, "protocol": "TCP"}])
}

/// Two ready endpoints of `app` (one per family) on `node`.
fn ready_on(ns: &str, app: &str, node: &str, v4: &str, v6: &str) -> Vec<Value> {
    vec![
        slice(
            ns,
            app,
            "IPv4",
            &[(v4, Some(node), true, true, false)],
            http_port(8080),
        ),
        slice(
            ns,
            app,
            "IPv6",
            &[(v6, Some(node), true, true, false)],
            http_port(8080),
        ),
    ]
}

fn snapshot(items: Vec<Value>) -> Snapshot {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}});
    Snapshot::parse(&list.to_string()).unwrap()
}

fn run(items: Vec<Value>, config: &Config) -> Decision {
    decide(&snapshot(items), config, now())
}

fn run_default(items: Vec<Value>) -> Decision {
    run(items, &Config::default())
}

fn ingress(s: &ServiceDecision) -> Vec<String> {
    s.ingress.iter().map(|i| i.ip.to_string()).collect()
}

fn condition(s: &ServiceDecision, type_: ConditionType) -> (&str, &str, &str) {
    let c = s.conditions.iter().find(|c| c.type_ == type_).unwrap();
    (c.status.as_str(), c.reason.as_str(), &c.message)
}

fn drop_of(s: &ServiceDecision, node: &str) -> Option<DropReason> {
    s.why
        .nodes
        .iter()
        .find(|v| v.node == node)
        .unwrap()
        .dropped
        .clone()
}

/// Two dual-stack nodes with live agents, and the `web` app ready on node-a.
fn two_nodes() -> Vec<Value> {
    let mut items = vec![
        dual_node("node-a", 1),
        dual_node("node-b", 2),
        lease("node-a", Some("10.0.0.1,2001:db8::1")),
        lease("node-b", Some("10.0.0.2,2001:db8::2")),
    ];
    items.extend(ready_on(
        "shop",
        "web",
        "node-a",
        "10.42.0.5",
        "2001:db8:42::5",
    ));
    items
}

// ---------------------------------------------------------------- ownership

#[test]
fn ownership_type_and_class() {
    let mut items = two_nodes();
    items.push(service("shop", "web", "2025-04-10T08:00:00Z", json!({})));
    items.push(service(
        "shop",
        "other-class",
        "2025-04-10T08:00:00Z",
        json!({"loadBalancerClass": "metallb.io/metallb"}),
    ));
    items.push(service(
        "shop",
        "classless",
        "2025-04-10T08:00:00Z",
        json!({"loadBalancerClass": null}),
    ));
    items.push(service(
        "shop",
        "cluster-ip",
        "2025-04-10T08:00:00Z",
        json!({"type": "ClusterIP", "loadBalancerClass": null}),
    ));

    let d = run_default(items.clone());
    let names: Vec<&str> = d.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["web"]);
    assert!(
        d.nodes
            .iter()
            .flat_map(|n| &n.frontends)
            .all(|f| f.name.starts_with("shop/web:"))
    );
    let ignored: Vec<&str> = d.ignored.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(ignored, ["classless", "other-class"]);

    let d = run(
        items,
        &Config {
            default_class: true,
            ..Config::default()
        },
    );
    let names: Vec<&str> = d.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["classless", "web"]);

    let d = run(
        two_nodes()
            .into_iter()
            .chain([service("shop", "web", "2025-04-10T08:00:00Z", json!({}))])
            .collect(),
        &Config {
            class: "example.com/lb".into(),
            ..Config::default()
        },
    );
    assert!(d.services.is_empty());
    assert!(d.nodes.iter().all(|n| n.frontends.is_empty()));
}

// ---------------------------------------------------------------- families

#[test]
fn ingress_follows_ip_families_order() {
    let mut items = two_nodes();
    items.push(service(
        "shop",
        "web",
        "2025-04-10T08:00:00Z",
        json!({"ipFamilies": ["IPv6", "IPv4"], "clusterIPs": ["2001:db8:43::20", "10.43.0.20"]}),
    ));
    let d = run_default(items);
    let s = d.service("shop", "web").unwrap();
    assert_eq!(
        ingress(s),
        ["2001:db8::1", "2001:db8::2", "10.0.0.1", "10.0.0.2"]
    );
    assert!(s.ingress.iter().all(|i| i.ip_mode == "Proxy"));
}

#[test]
fn single_stack_never_gets_the_other_family() {
    for (families, expected) in [
        (json!(["IPv4"]), vec!["10.0.0.1", "10.0.0.2"]),
        (json!(["IPv6"]), vec!["2001:db8::1", "2001:db8::2"]),
        // Inconsistent object: SingleStack with two families serves only the first.
        (json!(["IPv6", "IPv4"]), vec!["2001:db8::1", "2001:db8::2"]),
    ] {
        let mut items = two_nodes();
        items.push(service(
            "shop",
            "web",
            "2025-04-10T08:00:00Z",
            json!({"ipFamilies": families, "ipFamilyPolicy": "SingleStack"}),
        ));
        let d = run_default(items);
        let s = d.service("shop", "web").unwrap();
        assert_eq!(ingress(s), expected, "{families}");
        for f in d.nodes.iter().flat_map(|n| &n.frontends) {
            let Destination::Addresses(addrs) = &f.destination else {
                panic!()
            };
            assert!(
                addrs
                    .iter()
                    .all(|a| expected.contains(&a.to_string().as_str()))
            );
            assert!(
                f.backends
                    .iter()
                    .all(|b| s.why.families.contains(&b.family()))
            );
        }
    }
}

#[test]
fn empty_ip_families_take_the_families_of_the_cluster_ips() {
    // An object written by hand or by an old client: no ipFamilies, the ClusterIPs (IPv6
    // primary) say which families it has.
    let mut items = two_nodes();
    items.push(service(
        "shop",
        "web",
        "2025-04-10T08:00:00Z",
        json!({"ipFamilies": null, "clusterIP": "2001:db8:43::20",
               "clusterIPs": ["2001:db8:43::20", "10.43.0.20"]}),
    ));
    let d = run_default(items);
    let s = d.service("shop", "web").unwrap();
    assert_eq!(condition(s, ConditionType::LoadBalancerReady).1, "Ready");
    assert_eq!(
        ingress(s),
        ["2001:db8::1", "2001:db8::2", "10.0.0.1", "10.0.0.2"]
    );
    assert!(
        s.why
            .notes
            .iter()
            .any(|n| n == "spec.ipFamilies is empty: using the families of spec.clusterIPs"),
        "{:?}",
        s.why.notes
    );

    // SingleStack keeps only the primary ClusterIP's family; `ipFamilies: null` too.
    let mut items = two_nodes();
    items.push(service(
        "shop",
        "web",
        "2025-04-10T08:00:00Z",
        json!({"ipFamilies": [], "ipFamilyPolicy": "SingleStack",
               "clusterIPs": ["10.43.0.20"]}),
    ));
    let d = run_default(items);
    assert_eq!(
        ingress(d.service("shop", "web").unwrap()),
        ["10.0.0.1", "10.0.0.2"]
    );

    // Neither: the spec is unusable, and the condition says which fields.
    let mut items = two_nodes();
    items.push(service(
        "shop",
        "web",
        "2025-04-10T08:00:00Z",
        json!({"ipFamilies": null, "clusterIP": null, "clusterIPs": null}),
    ));
    let d = run_default(items);
    let s = d.service("shop", "web").unwrap();
    assert_eq!(
        condition(s, ConditionType::LoadBalancerReady),
        (
            "False",
            "InvalidSpec",
            "spec.ipFamilies is empty and spec.clusterIPs has no address"
        )
    );
    assert!(d.nodes.iter().all(|n| n.frontends.is_empty()));
}

fn v4_only_cluster(agent_v6: &str) -> Vec<Value> {
    let mut items = vec![
        node("node-a", &[("InternalIP", "10.0.0.1")], json!({})),
        lease("node-a", Some(&format!("10.0.0.1{agent_v6}"))),
    ];
    items.extend(ready_on(
        "shop",
        "web",
        "node-a",
        "10.42.0.5",
        "2001:db8:42::5",
    ));
    items
}

#[test]
fn prefer_dual_stack_takes_what_exists() {
    let mut items = v4_only_cluster("");
    items.push(service("shop", "web", "2025-04-10T08:00:00Z", json!({})));
    let d = run_default(items);
    let s = d.service("shop", "web").unwrap();
    assert_eq!(ingress(s), ["10.0.0.1"]);
    assert_eq!(condition(s, ConditionType::LoadBalancerReady).0, "True");
    assert!(
        s.why
            .notes
            .iter()
            .any(|n| n.contains("IPv6 not served: no eligible node has a usable IPv6 address")),
        "{:?}",
        s.why.notes
    );
    assert!(s.events.is_empty());
}

#[test]
fn require_dual_stack_with_a_family_missing_is_a_condition_and_event_not_a_half_status() {
    for (agent_v6, why) in [
        (
            "",
            "node-a: agent reports no ipv6 address, and no usable ipv6 ExternalIP or InternalIP",
        ),
        (
            ",fe80::1,2001:db8::9;deprecated",
            "agent reports only unusable ipv6 addresses (fe80::1 link-local, 2001:db8::9 deprecated)",
        ),
    ] {
        let mut items = v4_only_cluster(agent_v6);
        items.push(service(
            "shop",
            "web",
            "2025-04-10T08:00:00Z",
            json!({"ipFamilyPolicy": "RequireDualStack"}),
        ));
        let d = run_default(items);
        let s = d.service("shop", "web").unwrap();
        assert!(s.ingress.is_empty());
        let (status, reason, message) = condition(s, ConditionType::LoadBalancerReady);
        assert_eq!((status, reason), ("False", "FamilyUnavailable"));
        assert!(
            message.contains("RequireDualStack and IPv6 is unavailable"),
            "{message}"
        );
        assert!(message.contains(why), "{message}");
        assert_eq!(s.events.len(), 1);
        assert_eq!(
            (s.events[0].type_.as_str(), s.events[0].reason.as_str()),
            ("Warning", "FamilyUnavailable")
        );
        assert!(d.frontends_for("node-a").is_empty());
    }
}

// ---------------------------------------------------------------- addresses

#[test]
fn address_preference_per_node_and_family() {
    // (agent annotation, node status addresses, expected IPv6, expected source)
    type Case<'a> = (
        Option<&'a str>,
        &'a [(&'a str, &'a str)],
        &'a str,
        AddressSource,
    );
    let cases: [Case; 8] = [
        (
            Some("2001:db8:1::5;temporary,2001:db8:1::4,fd00::5"),
            &[],
            "2001:db8:1::4",
            AddressSource::Agent,
        ),
        (
            Some("2001:db8:1::5;temporary,fd00::5"),
            &[],
            "2001:db8:1::5",
            AddressSource::Agent,
        ),
        (
            Some("fd00::5,2001:db8:1::4;deprecated"),
            &[],
            "fd00::5",
            AddressSource::Agent,
        ),
        (
            Some("fe80::1,::1,ff02::1"),
            &[("InternalIP", "fd00::9")],
            "fd00::9",
            AddressSource::InternalIp,
        ),
        (
            Some("10.0.0.1"),
            &[("InternalIP", "fd00::9"), ("ExternalIP", "2001:db8:ff::9")],
            "2001:db8:ff::9",
            AddressSource::ExternalIp,
        ),
        (
            None,
            &[("ExternalIP", "fe80::7"), ("InternalIP", "fd00::9")],
            "fd00::9",
            AddressSource::InternalIp,
        ),
        (
            Some("not-an-address"),
            &[("InternalIP", "fd00::9")],
            "fd00::9",
            AddressSource::InternalIp,
        ),
        (
            Some("2001:db8:2::1,2001:db8:1::1"),
            &[("InternalIP", "fd00::9")],
            "2001:db8:1::1",
            AddressSource::Agent,
        ),
    ];
    for (annotation, status, expected, source) in cases {
        let mut addrs = vec![("InternalIP", "10.0.0.1")];
        addrs.extend_from_slice(status);
        let mut items = vec![
            node("node-a", &addrs, json!({})),
            lease("node-a", annotation),
        ];
        items.extend(ready_on(
            "shop",
            "web",
            "node-a",
            "10.42.0.5",
            "2001:db8:42::5",
        ));
        items.push(service(
            "shop",
            "web",
            "2025-04-10T08:00:00Z",
            json!({"ipFamilies": ["IPv6"], "ipFamilyPolicy": "SingleStack"}),
        ));
        let d = run_default(items);
        let s = d.service("shop", "web").unwrap();
        assert_eq!(ingress(s), [expected], "{annotation:?} {status:?}");
        let chosen = &s.why.nodes[0].addresses[0];
        assert_eq!(chosen.source, source, "{annotation:?}");
    }
}

#[test]
fn external_or_internal_is_chosen_per_node_not_cluster_wide() {
    let mut items = vec![
        node(
            "node-a",
            &[("InternalIP", "10.0.0.1"), ("ExternalIP", "203.0.113.1")],
            json!({}),
        ),
        node("node-b", &[("InternalIP", "10.0.0.2")], json!({})),
        lease("node-a", None),
        lease("node-b", None),
    ];
    items.push(service(
        "shop",
        "web",
        "2025-04-10T08:00:00Z",
        json!({"ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}),
    ));
    let d = run_default(items);
    assert_eq!(
        ingress(d.service("shop", "web").unwrap()),
        ["10.0.0.2", "203.0.113.1"]
    );
}

// ---------------------------------------------------------------- node selection

fn labelled(name: &str, n: u8, labels: Value) -> Value {
    node(name, &[("InternalIP", &format!("10.0.0.{n}"))], labels)
}

fn v4_service(labels: Value) -> Value {
    let mut s = service(
        "shop",
        "web",
        "2025-04-10T08:00:00Z",
        json!({"ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}),
    );
    s["metadata"]["labels"] = labels;
    s
}

fn served_nodes(items: Vec<Value>, config: &Config) -> Vec<String> {
    let d = run(items, config);
    d.services[0]
        .why
        .nodes
        .iter()
        .filter(|v| v.taken)
        .map(|v| v.node.clone())
        .collect()
}

#[test]
fn enablelb_allow_list_and_pools() {
    let enable = "svccontroller.k3s.cattle.io/enablelb";
    let pool = "svccontroller.k3s.cattle.io/lbpool";
    let leases = || vec![lease("a", None), lease("b", None), lease("c", None)];
    // (node labels a, b, c; Service labels; expected nodes)
    let cases: Vec<(Value, Value, Value, Value, Vec<&str>)> = vec![
        (
            json!({}),
            json!({}),
            json!({}),
            json!({}),
            vec!["a", "b", "c"],
        ),
        // allow-list as soon as one node has the label
        (
            json!({enable: "true"}),
            json!({}),
            json!({}),
            json!({}),
            vec!["a"],
        ),
        // any value switches the mode; only "true" serves
        (
            json!({enable: "false"}),
            json!({enable: "true"}),
            json!({}),
            json!({}),
            vec!["b"],
        ),
        // removing the last label restores all nodes (same as the first case)
        // K3s single-value pool
        (
            json!({enable: "true", pool: "public"}),
            json!({enable: "true", pool: "lan"}),
            json!({}),
            json!({pool: "public"}),
            vec!["a"],
        ),
        // our multi-pool labels: b is in two pools
        (
            json!({enable: "true", pool: "public"}),
            json!({enable: "true", "pool.dualstack.io/lan": "true", "pool.dualstack.io/public": "true"}),
            json!({"pool.dualstack.io/public": "false"}),
            json!({pool: "public"}),
            vec!["a", "b"],
        ),
        // pools also apply without enablelb anywhere
        (
            json!({}),
            json!({"pool.dualstack.io/lan": "true"}),
            json!({}),
            json!({pool: "lan"}),
            vec!["b"],
        ),
        // newer K3s: one `lbpool.svccontroller.k3s.cattle.io/<pool>=true` label per pool, so
        // b is in two pools; c's label is not "true"; a has the single-value form
        (
            json!({enable: "true", pool: "public"}),
            json!({enable: "true", "lbpool.svccontroller.k3s.cattle.io/lan": "true",
                   "lbpool.svccontroller.k3s.cattle.io/public": "true"}),
            json!({enable: "true", "lbpool.svccontroller.k3s.cattle.io/public": "false"}),
            json!({pool: "public"}),
            vec!["a", "b"],
        ),
        (
            json!({enable: "true", pool: "public"}),
            json!({enable: "true", "lbpool.svccontroller.k3s.cattle.io/lan": "true",
                   "lbpool.svccontroller.k3s.cattle.io/public": "true"}),
            json!({enable: "true"}),
            json!({pool: "lan"}),
            vec!["b"],
        ),
    ];
    for (a, b, c, svc_labels, expected) in cases {
        let mut items = vec![
            labelled("a", 1, a.clone()),
            labelled("b", 2, b.clone()),
            labelled("c", 3, c.clone()),
        ];
        items.extend(leases());
        items.push(v4_service(svc_labels.clone()));
        assert_eq!(
            served_nodes(items, &Config::default()),
            expected,
            "{a} {b} {c} {svc_labels}"
        );
    }
}

#[test]
fn exclusion_label_is_honoured_and_reported_loudly_when_it_leaves_no_node() {
    let exclude = json!({"node.kubernetes.io/exclude-from-external-load-balancers": ""});
    let items = vec![
        labelled("k3s-server", 1, exclude),
        lease("k3s-server", None),
        v4_service(json!({})),
    ];
    let d = run_default(items.clone());
    let s = &d.services[0];
    let (status, reason, message) = condition(s, ConditionType::LoadBalancerReady);
    assert_eq!((status, reason), ("False", "NoEligibleNodes"));
    assert_eq!(
        message,
        "no eligible node: all 1 node(s) carry label node.kubernetes.io/exclude-from-external-load-balancers (k3s-server)"
    );
    assert_eq!(s.events[0].reason, "NoEligibleNodes");
    let config = Config {
        ignore_exclusion_label: true,
        ..Config::default()
    };
    assert_eq!(served_nodes(items, &config), ["k3s-server"]);
}

#[test]
fn unready_draining_and_agentless_nodes_leave_the_status() {
    let mut not_ready = labelled("not-ready", 1, json!({}));
    not_ready["status"]["conditions"][1] =
        json!({"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"});
    let mut cordoned = labelled("cordoned", 2, json!({}));
    cordoned["spec"]["unschedulable"] = json!(true);
    cordoned["spec"]["taints"] =
        json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]);
    let mut draining = labelled("draining", 3, json!({}));
    draining["spec"]["unschedulable"] = json!(true);
    draining["spec"]["taints"] = json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                                        {"key": "ToBeDeletedByClusterAutoscaler", "value": "1744279200", "effect": "NoSchedule"}]);
    let mut expired = lease("expired", None);
    expired["spec"]["renewTime"] = json!("2025-04-10T09:59:44.999999Z");
    let mut foreign = lease("foreign", None);
    foreign["spec"]["holderIdentity"] = json!("someone-else");
    let items = vec![
        not_ready,
        cordoned,
        draining,
        labelled("expired", 4, json!({})),
        labelled("no-lease", 5, json!({})),
        labelled("foreign", 6, json!({})),
        lease("not-ready", None),
        lease("cordoned", None),
        lease("draining", None),
        expired,
        foreign,
        v4_service(json!({})),
    ];
    let d = run_default(items.clone());
    let s = &d.services[0];
    assert_eq!(
        ingress(s),
        ["10.0.0.2"],
        "cordoned without a draining taint still serves"
    );
    assert_eq!(
        drop_of(s, "not-ready").unwrap().to_string(),
        "not Ready (Ready=Unknown, NodeStatusUnknown)"
    );
    assert_eq!(
        drop_of(s, "draining").unwrap().to_string(),
        "cordoned and draining (taint ToBeDeletedByClusterAutoscaler:NoSchedule)"
    );
    assert_eq!(
        drop_of(s, "expired").unwrap().to_string(),
        "agent Lease dualstack-system/dualstack-agent-expired expired at 2025-04-10T09:59:59.999999Z"
    );
    assert!(matches!(
        drop_of(s, "no-lease"),
        Some(DropReason::NoAgentLease { .. })
    ));
    assert!(matches!(
        drop_of(s, "foreign"),
        Some(DropReason::LeaseHolderMismatch { .. })
    ));

    // kube-proxy mode needs no agent on the node, but an expired agent still removes it.
    let config = Config {
        mode: Mode::KubeProxy,
        ..Config::default()
    };
    let d = run(items, &config);
    assert_eq!(ingress(&d.services[0]), ["10.0.0.2", "10.0.0.5"]);
    assert!(d.services[0].ingress.iter().all(|i| i.ip_mode == "VIP"));
    assert!(d.nodes.iter().all(|n| n.frontends.is_empty()));
}

#[test]
fn deleting_and_network_unavailable_nodes_are_not_served() {
    // A node being drained away by the cluster autoscaler: deletionTimestamp set, still
    // Ready while its finalizers run. K3s treats it as gone.
    let mut deleting = dual_node("node-a", 1);
    deleting["metadata"]["deletionTimestamp"] = json!("2025-04-10T09:58:00Z");
    deleting["metadata"]["finalizers"] = json!(["example.com/drain"]);
    // A node whose CNI has not configured its pod network yet: Ready, but
    // NetworkUnavailable=True (as Calico and cloud route controllers set it).
    let mut no_network = dual_node("node-b", 2);
    no_network["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .insert(
            0,
            json!({"type": "NetworkUnavailable", "status": "True", "reason": "NoRouteCreated",
                   "message": "Node created without a route"}),
        );
    // Calico's healthy form: NetworkUnavailable=False.
    let mut healthy = dual_node("node-c", 3);
    healthy["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .insert(
            0,
            json!({"type": "NetworkUnavailable", "status": "False", "reason": "CalicoIsUp",
                   "message": "Calico is running on this node"}),
        );
    let items = vec![
        deleting,
        no_network,
        healthy,
        lease("node-a", None),
        lease("node-b", None),
        lease("node-c", None),
        service("shop", "web", "2025-04-10T08:00:00Z", json!({})),
    ];
    let d = run_default(items.clone());
    let s = d.service("shop", "web").unwrap();
    assert_eq!(ingress(s), ["10.0.0.3", "2001:db8::3"]);
    assert_eq!(
        drop_of(s, "node-a").unwrap().to_string(),
        "being deleted (deletionTimestamp 2025-04-10T09:58:00Z)"
    );
    assert_eq!(
        drop_of(s, "node-b").unwrap().to_string(),
        "NetworkUnavailable=True (NoRouteCreated): its pod network is not set up"
    );
    assert!(d.frontends_for("node-a").is_empty());
    assert!(d.frontends_for("node-b").is_empty());
    assert_eq!(d.frontends_for("node-c").len(), 1);

    // Without node-c, nothing is left, and the condition names both reasons.
    let items: Vec<Value> = items
        .into_iter()
        .filter(|i| i["metadata"]["name"] != "node-c")
        .collect();
    let d = run_default(items);
    let (status, reason, message) = condition(
        d.service("shop", "web").unwrap(),
        ConditionType::LoadBalancerReady,
    );
    assert_eq!((status, reason), ("False", "NoEligibleNodes"));
    assert_eq!(
        message,
        "no eligible node: node-a: being deleted (deletionTimestamp 2025-04-10T09:58:00Z); \
         node-b: NetworkUnavailable=True (NoRouteCreated): its pod network is not set up"
    );
}

#[test]
fn lease_namespace_is_configurable() {
    let mut l = lease("node-a", None);
    l["metadata"]["namespace"] = json!("lb");
    let items = vec![labelled("node-a", 1, json!({})), l, v4_service(json!({}))];
    assert!(served_nodes(items.clone(), &Config::default()).is_empty());
    let config = Config {
        lease_namespace: "lb".into(),
        ..Config::default()
    };
    assert_eq!(served_nodes(items, &config), ["node-a"]);
}

// ---------------------------------------------------------------- traffic policy

fn three_nodes_with_endpoints() -> Vec<Value> {
    let mut items = vec![
        dual_node("node-a", 1),
        dual_node("node-b", 2),
        dual_node("node-c", 3),
    ];
    for n in ["node-a", "node-b", "node-c"] {
        items.push(lease(n, None));
    }
    items.push(slice(
        "shop",
        "web",
        "IPv4",
        &[
            ("10.42.0.5", Some("node-a"), true, true, false),
            ("10.42.1.5", Some("node-b"), false, true, true), // terminating
            ("10.42.2.5", Some("node-c"), false, false, false), // not ready
            ("10.42.3.5", None, true, true, false),           // no nodeName
        ],
        http_port(8080),
    ));
    items.push(slice(
        "shop",
        "web",
        "IPv6",
        &[("2001:db8:42::5", Some("node-a"), true, true, false)],
        http_port(8080),
    ));
    items
}

#[test]
fn external_traffic_policy_local_and_cluster() {
    let mut items = three_nodes_with_endpoints();
    items.push(service(
        "shop",
        "web",
        "2025-04-10T08:00:00Z",
        json!({"externalTrafficPolicy": "Local"}),
    ));
    let d = run_default(items);
    let s = d.service("shop", "web").unwrap();
    assert_eq!(ingress(s), ["10.0.0.1", "2001:db8::1"]);
    assert_eq!(drop_of(s, "node-b"), Some(DropReason::NoLocalEndpoint));
    let f = &d.frontends_for("node-a")[0];
    assert!(!f.masquerade);
    let backends: Vec<String> = f
        .backends
        .iter()
        .map(|b| format!("{}:{}", b.addr, b.port))
        .collect();
    assert_eq!(backends, ["10.42.0.5:8080", "2001:db8:42::5:8080"]);
    assert!(s.why.notes.iter().any(|n| n.contains("without nodeName")));

    let mut items = three_nodes_with_endpoints();
    items.push(service("shop", "web", "2025-04-10T08:00:00Z", json!({})));
    let d = run_default(items);
    let s = d.service("shop", "web").unwrap();
    assert_eq!(s.why.nodes.iter().filter(|v| v.taken).count(), 3);
    for n in ["node-a", "node-b", "node-c"] {
        let f = &d.frontends_for(n)[0];
        assert!(f.masquerade);
        let backends: Vec<String> = f.backends.iter().map(|b| b.addr.to_string()).collect();
        // ready endpoints of every node, and the one without nodeName
        assert_eq!(
            backends,
            ["10.42.0.5", "10.42.3.5", "2001:db8:42::5"],
            "{n}"
        );
    }
}

#[test]
fn local_without_any_ready_endpoint_says_so() {
    let mut items = vec![dual_node("node-a", 1), lease("node-a", None)];
    items.push(slice(
        "shop",
        "web",
        "IPv4",
        &[("10.42.0.5", Some("node-a"), false, false, true)],
        http_port(8080),
    ));
    items.push(service(
        "shop",
        "web",
        "2025-04-10T08:00:00Z",
        json!({"externalTrafficPolicy": "Local"}),
    ));
    let d = run_default(items);
    let (status, reason, message) = condition(&d.services[0], ConditionType::LoadBalancerReady);
    assert_eq!((status, reason), ("False", "NoLocalEndpoints"));
    assert_eq!(
        message,
        "externalTrafficPolicy is Local and no eligible node (node-a) has a ready endpoint"
    );
}

// ---------------------------------------------------------------- source ranges

#[test]
fn source_ranges_per_family() {
    let cases = [
        (json!([]), None, vec!["0.0.0.0/0", "::/0"], false),
        (
            json!(["192.0.2.0/24", "2001:db8:ff::/48"]),
            None,
            vec!["192.0.2.0/24", "2001:db8:ff::/48"],
            false,
        ),
        (json!(["192.0.2.7/24"]), None, vec!["192.0.2.0/24"], true),
        (
            json!([]),
            Some("198.51.100.0/24, 2001:db8:ee::/48"),
            vec!["198.51.100.0/24", "2001:db8:ee::/48"],
            false,
        ),
    ];
    for (ranges, annotation, expected, ipv6_refused) in cases {
        let mut items = two_nodes();
        let mut svc = service(
            "shop",
            "web",
            "2025-04-10T08:00:00Z",
            json!({"loadBalancerSourceRanges": ranges}),
        );
        if let Some(a) = annotation {
            svc["metadata"]["annotations"] =
                json!({"service.beta.kubernetes.io/load-balancer-source-ranges": a});
        }
        items.push(svc);
        let d = run_default(items);
        let f = &d.frontends_for("node-a")[0];
        let got: Vec<String> = f.source_ranges.iter().map(ToString::to_string).collect();
        assert_eq!(got, expected, "{ranges}");
        let note = d.services[0]
            .why
            .notes
            .iter()
            .any(|n| n.contains("no IPv6 range: every IPv6 client is refused"));
        assert_eq!(note, ipv6_refused);
    }
}

#[test]
fn an_unusable_source_range_fails_closed() {
    let mut items = two_nodes();
    items.push(service(
        "shop",
        "web",
        "2025-04-10T08:00:00Z",
        json!({"loadBalancerSourceRanges": ["192.0.2.0/33"]}),
    ));
    let d = run_default(items);
    let (status, reason, message) = condition(&d.services[0], ConditionType::LoadBalancerReady);
    assert_eq!((status, reason), ("False", "InvalidSpec"));
    assert!(message.contains("\"192.0.2.0/33\""), "{message}");
    assert!(d.nodes.iter().all(|n| n.frontends.is_empty()));
}

// ---------------------------------------------------------------- port conflicts

#[test]
fn port_conflicts_the_older_service_keeps_the_port() {
    let ports = json!([{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443}]);
    let mut items = two_nodes();
    // "old" only on node-a (pool), created first; "new" on both nodes.
    items[0]["metadata"]["labels"]["pool.dualstack.io/edge"] = json!("true");
    let mut old = service(
        "shop",
        "old",
        "2025-01-01T00:00:00Z",
        json!({"ports": ports.clone()}),
    );
    old["metadata"]["labels"] = json!({"svccontroller.k3s.cattle.io/lbpool": "edge"});
    items.push(old);
    items.push(service(
        "shop",
        "new",
        "2025-02-01T00:00:00Z",
        json!({"ports": ports.clone()}),
    ));
    // UDP on the same port does not conflict.
    items.push(service(
        "shop",
        "quic",
        "2025-03-01T00:00:00Z",
        json!({"ports": [{"name": "quic", "port": 443, "protocol": "UDP", "targetPort": 8443}]}),
    ));

    let d = run_default(items);
    let old = d.service("shop", "old").unwrap();
    let new = d.service("shop", "new").unwrap();
    assert_eq!(ingress(old), ["10.0.0.1", "2001:db8::1"]);
    assert_eq!(ingress(new), ["10.0.0.2", "2001:db8::2"]);
    let (status, reason, message) = condition(new, ConditionType::PortConflict);
    assert_eq!((status, reason), ("True", "PortConflict"));
    assert!(
        message.contains("443/tcp on 10.0.0.1 (node node-a) is kept by shop/old"),
        "{message}"
    );
    assert_eq!(condition(new, ConditionType::LoadBalancerReady).0, "True");
    assert_eq!(new.events.len(), 1);
    assert_eq!(condition(old, ConditionType::PortConflict).0, "False");
    assert_eq!(ingress(d.service("shop", "quic").unwrap()).len(), 4);
    let on_a: Vec<&str> = d
        .frontends_for("node-a")
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(on_a, ["shop/old:https", "shop/quic:quic"]);
    let on_b: Vec<&str> = d
        .frontends_for("node-b")
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(on_b, ["shop/new:https", "shop/quic:quic"]);
}

#[test]
fn port_conflict_ties_break_by_name_and_a_total_loss_is_not_ready() {
    let mut items = two_nodes();
    items.push(service("b-team", "web", "2025-01-01T00:00:00Z", json!({})));
    items.push(service("a-team", "web", "2025-01-01T00:00:00Z", json!({})));
    let d = run_default(items);
    assert_eq!(ingress(d.service("a-team", "web").unwrap()).len(), 4);
    let loser = d.service("b-team", "web").unwrap();
    assert!(loser.ingress.is_empty());
    let (status, reason, _) = condition(loser, ConditionType::LoadBalancerReady);
    assert_eq!((status, reason), ("False", "PortConflict"));
    assert_eq!(drop_of(loser, "node-a"), Some(DropReason::PortConflict));
    assert_eq!(loser.events.len(), 2);
}

// ---------------------------------------------------------------- ports and endpoints

#[test]
fn named_target_ports_sctp_no_node_ports_and_services_without_selector() {
    let mut items = vec![dual_node("node-a", 1), lease("node-a", None)];
    items.push(service(
        "voip",
        "sip",
        "2025-04-10T08:00:00Z",
        json!({
        "allocateLoadBalancerNodePorts": false, "selector": null,
        "ports": [{"name": "sip", "port": 5060, "protocol": "SCTP", "targetPort": "sip"},
                  {"name": "rtp", "port": 10000, "protocol": "UDP", "targetPort": 20000}]}),
    ));
    // A hand-written slice (no selector), endpoints outside the cluster without nodeName.
    let mut manual = slice(
        "voip",
        "sip",
        "IPv6",
        &[("2001:db8:20::100", None, true, true, false)],
        json!([{"name": "sip", "port": 5080, "protocol": "SCTP"}, {"name": "rtp", "port": 20000, "protocol": "UDP"},
               {"name": "sip", "port": 9999, "protocol": "TCP"}]),
    );
    manual["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] = json!("staff");
    items.push(manual);
    let d = run_default(items);
    let frontends = d.frontends_for("node-a");
    let got: Vec<(String, Protocol, u16, String)> = frontends
        .iter()
        .map(|f| {
            (
                f.name.clone(),
                f.protocol,
                f.port,
                f.backends
                    .iter()
                    .map(|b| format!("[{}]:{}", b.addr, b.port))
                    .collect::<String>(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "voip/sip:rtp".to_string(),
                Protocol::Udp,
                10000,
                "[2001:db8:20::100]:20000".to_string()
            ),
            (
                "voip/sip:sip".to_string(),
                Protocol::Sctp,
                5060,
                "[2001:db8:20::100]:5080".to_string()
            ),
        ]
    );
}

#[test]
fn unnamed_single_port_frontend_is_named_by_number() {
    let mut items = vec![dual_node("node-a", 1), lease("node-a", None)];
    items.push(slice(
        "shop",
        "web",
        "IPv4",
        &[("10.42.0.5", Some("node-a"), true, true, false)],
        json!([{"port": 8080, "protocol": "TCP"}]),
    ));
    items.push(service(
        "shop",
        "web",
        "2025-04-10T08:00:00Z",
        json!({"ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}]}),
    ));
    let d = run_default(items);
    let f = &d.frontends_for("node-a")[0];
    assert_eq!(f.name, "shop/web:80");
    assert_eq!(f.backends[0].port, 8080);
}
