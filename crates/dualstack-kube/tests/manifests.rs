//! The manifests under `deploy/`: every document parses into its `k8s-openapi` type and
//! survives a round trip unchanged (so a misspelt field fails here, not in the cluster), and
//! RBAC is exactly the least privilege the controller and the agent need.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use dualstack_testbed::integral_numbers;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, PodSpec, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

#[derive(Default)]
struct Objects {
    namespaces: Vec<Namespace>,
    priority_classes: Vec<PriorityClass>,
    service_accounts: Vec<ServiceAccount>,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    deployments: Vec<Deployment>,
    daemon_sets: Vec<DaemonSet>,
    config_maps: Vec<ConfigMap>,
    admission_policies: Vec<ValidatingAdmissionPolicy>,
    admission_policy_bindings: Vec<ValidatingAdmissionPolicyBinding>,
}

/// Parses into `T` and checks nothing was lost or misspelt (a round trip gives the input).
fn typed<T: DeserializeOwned + Serialize>(file: &str, doc: &Value) -> T {
    let object: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{file}: {} does not parse: {e}", doc["kind"]));
    let back = serde_json::to_value(&object).unwrap();
    assert_eq!(
        integral_numbers(back),
        integral_numbers(doc.clone()),
        "{file}: {} {} has fields its type does not know (typo?)",
        doc["kind"],
        doc["metadata"]["name"]
    );
    object
}

fn load() -> Objects {
    let kustomization: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(deploy_dir().join("kustomization.yaml")).unwrap(),
    )
    .unwrap();
    let listed: BTreeSet<String> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(deploy_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, on_disk, "kustomization.yaml lists every manifest");

    let mut objects = Objects::default();
    for file in &listed {
        let text = std::fs::read_to_string(deploy_dir().join(file)).unwrap();
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{file}: not YAML: {e}"));
        for doc in docs.iter().filter(|d| !d.is_null()) {
            match doc["kind"].as_str().unwrap_or_default() {
                "Namespace" => objects.namespaces.push(typed(file, doc)),
                "PriorityClass" => objects.priority_classes.push(typed(file, doc)),
                "ServiceAccount" => objects.service_accounts.push(typed(file, doc)),
                "ClusterRole" => objects.cluster_roles.push(typed(file, doc)),
                "ClusterRoleBinding" => objects.cluster_role_bindings.push(typed(file, doc)),
                "Role" => objects.roles.push(typed(file, doc)),
                "RoleBinding" => objects.role_bindings.push(typed(file, doc)),
                "Deployment" => objects.deployments.push(typed(file, doc)),
                "DaemonSet" => objects.daemon_sets.push(typed(file, doc)),
                "ConfigMap" => objects.config_maps.push(typed(file, doc)),
                "ValidatingAdmissionPolicy" => objects.admission_policies.push(typed(file, doc)),
                "ValidatingAdmissionPolicyBinding" => {
                    objects.admission_policy_bindings.push(typed(file, doc))
                }
                "CustomResourceDefinition" => {
                    typed::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>(file, doc);
                }
                other => panic!("{file}: unexpected kind {other:?}"),
            }
        }
    }
    objects
}

/// Rules as `group/resource -> verbs`.
fn grants(rules: &[PolicyRule]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rule in rules {
        assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none());
        for group in rule.api_groups.as_deref().unwrap_or_default() {
            for resource in rule.resources.as_deref().unwrap_or_default() {
                out.entry(format!("{group}/{resource}"))
                    .or_default()
                    .extend(rule.verbs.iter().cloned());
            }
        }
    }
    out
}

fn expect(pairs: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect()
}

const READ: &[&str] = &["get", "list", "watch"];

#[test]
fn rbac_is_exactly_least_privilege() {
    let o = load();
    let all_rules = o
        .cluster_roles
        .iter()
        .flat_map(|r| r.rules.clone().unwrap_or_default())
        .chain(
            o.roles
                .iter()
                .flat_map(|r| r.rules.clone().unwrap_or_default()),
        );
    for rule in all_rules {
        let words = rule
            .api_groups
            .iter()
            .flatten()
            .chain(rule.resources.iter().flatten())
            .chain(rule.verbs.iter());
        for w in words {
            assert!(!w.contains('*'), "no wildcards: {rule:?}");
            assert!(!w.contains("secret"), "nothing on Secrets: {rule:?}");
        }
    }

    let cluster_role = |name: &str| {
        let role = o
            .cluster_roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("ClusterRole {name}"));
        grants(role.rules.as_deref().unwrap_or_default())
    };
    let role = |name: &str| {
        let role = o
            .roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("Role {name}"));
        assert_eq!(role.metadata.namespace.as_deref(), Some("dualstack-system"));
        grants(role.rules.as_deref().unwrap_or_default())
    };

    assert_eq!(
        cluster_role("dualstack-controller"),
        expect(&[
            ("/services", &["get", "list", "watch", "patch"]),
            ("/services/status", &["patch"]),
            ("/nodes", READ),
            ("discovery.k8s.io/endpointslices", READ),
            ("dualstack.io/loadbalancerpools", READ),
            ("events.k8s.io/events", &["create", "patch"]),
        ])
    );
    assert_eq!(
        cluster_role("dualstack-agent"),
        expect(&[
            ("/services", READ),
            ("/nodes", READ),
            ("discovery.k8s.io/endpointslices", READ),
            ("dualstack.io/loadbalancerpools", READ),
        ])
    );
    // Leases: only in our namespace (a Role, never a ClusterRole).
    let lease_rights: &[&str] = &["get", "list", "watch", "create", "patch"];
    assert_eq!(
        role("dualstack-controller"),
        expect(&[("coordination.k8s.io/leases", lease_rights)])
    );
    assert_eq!(
        role("dualstack-agent"),
        expect(&[("coordination.k8s.io/leases", lease_rights)])
    );

    // Every binding points at the matching role and our ServiceAccount.
    let accounts: BTreeSet<(String, String)> = o
        .service_accounts
        .iter()
        .map(|sa| {
            (
                sa.metadata.namespace.clone().unwrap(),
                sa.metadata.name.clone().unwrap(),
            )
        })
        .collect();
    let bindings = o
        .cluster_role_bindings
        .iter()
        .map(|b| {
            (
                b.metadata.name.clone(),
                "ClusterRole",
                &b.role_ref,
                &b.subjects,
            )
        })
        .chain(
            o.role_bindings
                .iter()
                .map(|b| (b.metadata.name.clone(), "Role", &b.role_ref, &b.subjects)),
        );
    let mut bound = BTreeSet::new();
    for (name, kind, role_ref, subjects) in bindings {
        assert_eq!(role_ref.kind, kind);
        assert_eq!(Some(&role_ref.name), name.as_ref());
        let subjects = subjects.as_deref().unwrap_or_default();
        assert_eq!(subjects.len(), 1);
        let s = &subjects[0];
        assert_eq!(s.kind, "ServiceAccount");
        assert_eq!(
            s.name, role_ref.name,
            "{kind} {} is for its own account",
            role_ref.name
        );
        assert!(accounts.contains(&(s.namespace.clone().unwrap(), s.name.clone())));
        bound.insert((kind, role_ref.name.clone()));
    }
    assert_eq!(bound.len(), 4, "each role bound once: {bound:?}");
    assert!(
        o.namespaces
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some("dualstack-system"))
    );
}

fn pod(spec: Option<&PodSpec>) -> (&PodSpec, &Container) {
    let spec = spec.unwrap();
    assert_eq!(spec.containers.len(), 1);
    (spec, &spec.containers[0])
}

fn check_common(what: &str, spec: &PodSpec, c: &Container, priority_classes: &[PriorityClass]) {
    let resources = c
        .resources
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: resources"));
    let requests = resources.requests.as_ref().unwrap();
    assert!(
        requests.contains_key("cpu") && requests.contains_key("memory"),
        "{what}"
    );
    assert!(
        resources.limits.as_ref().unwrap().contains_key("memory"),
        "{what}"
    );
    for (probe, path) in [
        (&c.liveness_probe, "/healthz"),
        (&c.readiness_probe, "/readyz"),
    ] {
        let get = probe.as_ref().and_then(|p| p.http_get.as_ref());
        assert_eq!(get.and_then(|g| g.path.as_deref()), Some(path), "{what}");
    }
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    assert!(
        tolerations
            .iter()
            .any(|t| t.key.as_deref() == Some("node-role.kubernetes.io/control-plane")),
        "{what} tolerates control-plane nodes"
    );
    let pc = spec.priority_class_name.as_deref().unwrap();
    assert!(
        priority_classes
            .iter()
            .any(|p| p.metadata.name.as_deref() == Some(pc)),
        "{what}: priority class {pc} is defined"
    );
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false), "{what}");
    assert_eq!(
        sc.capabilities.as_ref().unwrap().drop.as_deref(),
        Some(&["ALL".to_string()][..]),
        "{what}"
    );
}

#[test]
fn workloads_are_deployable_as_documented() {
    let o = load();
    let [controller] = &o.deployments[..] else {
        panic!("one Deployment")
    };
    let spec = &controller.spec;
    assert_eq!(spec.replicas, Some(2));
    let (pod_spec, c) = pod(spec.template.spec.as_ref());
    assert_eq!(
        pod_spec.service_account_name.as_deref(),
        Some("dualstack-controller")
    );
    assert_eq!(c.args.as_ref().unwrap()[0], "controller");
    check_common("controller", pod_spec, c, &o.priority_classes);
    assert_eq!(pod_spec.host_network, None);
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(
        sc.capabilities.as_ref().unwrap().add,
        None,
        "the controller needs no capability"
    );
    let env: BTreeSet<&str> = c.env.iter().flatten().map(|e| e.name.as_str()).collect();
    assert!(env.contains("POD_NAME") && env.contains("POD_NAMESPACE"));

    let [agent] = &o.daemon_sets[..] else {
        panic!("one DaemonSet")
    };
    let (pod_spec, c) = pod(agent.spec.template.spec.as_ref());
    assert_eq!(
        pod_spec.service_account_name.as_deref(),
        Some("dualstack-agent")
    );
    assert_eq!(pod_spec.host_network, Some(true));
    assert_eq!(c.args.as_ref().unwrap()[0], "agent");
    check_common("agent", pod_spec, c, &o.priority_classes);
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.privileged, Some(false), "not privileged");
    assert_eq!(
        sc.capabilities.as_ref().unwrap().add.as_deref(),
        Some(&["NET_ADMIN".to_string(), "NET_RAW".to_string()][..]),
        "NET_ADMIN (nftables) and NET_RAW (ARP/NDP packet sockets for pool addresses) only"
    );
    let node_name = c
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "NODE_NAME")
        .and_then(|e| e.value_from.as_ref())
        .and_then(|v| v.field_ref.as_ref())
        .map(|f| f.field_path.as_str());
    assert_eq!(node_name, Some("spec.nodeName"));
}

/// RBAC cannot tell one agent from another (one ServiceAccount): the admission policy narrows
/// their Lease writes to their own node's (the API-server test in
/// `crates/dualstack/tests/kube_e2e.rs` proves it is enforced).
#[test]
fn agent_lease_writes_are_narrowed_by_an_enforced_admission_policy() {
    let o = load();
    let [policy] = o.admission_policies.as_slice() else {
        panic!("one ValidatingAdmissionPolicy expected");
    };
    let spec = policy.spec.as_ref().unwrap();
    assert_eq!(spec.failure_policy.as_deref(), Some("Fail"));
    let conditions = spec.match_conditions.as_ref().unwrap();
    assert!(
        conditions[0]
            .expression
            .contains("system:serviceaccount:dualstack-system:dualstack-agent")
    );
    let validation = &spec.validations.as_ref().unwrap()[0];
    assert!(
        validation
            .expression
            .contains("'dualstack-agent-' + variables.node")
    );
    let rules = spec
        .match_constraints
        .as_ref()
        .unwrap()
        .resource_rules
        .as_ref()
        .unwrap();
    assert_eq!(
        rules[0].resources.as_deref(),
        Some(&["leases".to_string()][..])
    );
    let [binding] = o.admission_policy_bindings.as_slice() else {
        panic!("one binding expected");
    };
    let bspec = &binding.spec;
    assert_eq!(Some(&bspec.policy_name), policy.metadata.name.as_ref());
    assert_eq!(bspec.validation_actions, vec!["Deny".to_string()]);
}

/// The controller and the agents read their shared settings from one ConfigMap and set none
/// of them on their own, so they cannot disagree; class-less Services are served by default.
#[test]
fn controller_and_agents_share_one_configuration_that_serves_classless_services() {
    let o = load();
    let [config] = o.config_maps.as_slice() else {
        panic!("one ConfigMap expected");
    };
    assert_eq!(config.metadata.name.as_deref(), Some("dualstack-config"));
    let data = config.data.as_ref().unwrap();
    assert_eq!(data["DUALSTACK_DEFAULT_CLASS"], "true");
    assert_eq!(data["DUALSTACK_CLASS"], "dualstack.io/lb");
    assert_eq!(data["DUALSTACK_MODE"], "nftables");
    let containers = o
        .deployments
        .iter()
        .filter_map(|d| d.spec.template.spec.as_ref())
        .chain(
            o.daemon_sets
                .iter()
                .filter_map(|d| d.spec.template.spec.as_ref()),
        )
        .flat_map(|p| p.containers.iter());
    let mut seen = 0;
    for c in containers {
        seen += 1;
        let from: Vec<_> = c
            .env_from
            .iter()
            .flatten()
            .filter_map(|e| e.config_map_ref.as_ref().map(|r| r.name.as_str()))
            .collect();
        assert_eq!(from, vec!["dualstack-config"], "{}", c.name);
        for e in c.env.iter().flatten() {
            assert!(
                !data.contains_key(&e.name),
                "{} sets {} itself instead of reading the shared ConfigMap",
                c.name,
                e.name
            );
        }
    }
    assert_eq!(seen, 2);
}
