//! The Helm chart `charts/dualstack/` against `deploy/`: `helm lint --strict` passes; with
//! default values `helm template` renders exactly the objects of `deploy/` (compared as
//! `k8s-openapi` objects, so formatting and key order do not matter but every field does);
//! non-default values (class, default class, image, tolerations, lease namespace) reach the
//! objects that carry them; and the rendered chart is accepted by a real kube-apiserver.
//!
//! `helm` is built from its Go module by `tests/helm/build` (pinned in `tests/helm/go.mod`).
//! Without Go (and no helm built already) the tests skip with the reason, or fail when
//! `DUALSTACK_REQUIRE_KUBE_TESTS=1` (CI).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use dualstack_testbed::{KubeApi, REQUIRE_KUBE_ENV, integral_numbers, repo_root};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PodTemplateSpec, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One build of helm per test process (the build script also locks across processes).
static BUILD: Mutex<Option<PathBuf>> = Mutex::new(None);

fn chart_dir() -> PathBuf {
    repo_root().join("charts/dualstack")
}

fn go_available() -> bool {
    Command::new("go")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The helm binary, built by `tests/helm/build` if needed; `None` (with the reason printed)
/// when it cannot be built here, or a panic when `DUALSTACK_REQUIRE_KUBE_TESTS=1`.
fn helm(test_name: &str) -> Option<PathBuf> {
    let mut built = BUILD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(path) = built.as_ref() {
        return Some(path.clone());
    }
    let binary = repo_root().join("target/helm/bin/helm");
    if !go_available() && !binary.exists() {
        let reason = format!("{test_name}: needs Go to build helm from its module (tests/helm/)");
        if std::env::var(REQUIRE_KUBE_ENV).ok().as_deref() == Some("1") {
            panic!("{REQUIRE_KUBE_ENV}=1 but cannot run {reason}");
        }
        eprintln!("skipping {reason}");
        return None;
    }
    if go_available() {
        let status = Command::new(repo_root().join("tests/helm/build"))
            .status()
            .expect("run tests/helm/build");
        assert!(status.success(), "tests/helm/build failed: {status}");
    }
    *built = Some(binary.clone());
    Some(binary)
}

fn run_helm(helm: &Path, args: &[&str]) -> String {
    let out = Command::new(helm)
        .args(args)
        // No user configuration or caches of this machine take part.
        .env(
            "HELM_CACHE_HOME",
            repo_root().join("target/helm/home/cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            repo_root().join("target/helm/home/config"),
        )
        .env("HELM_DATA_HOME", repo_root().join("target/helm/home/data"))
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "helm {}: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("helm output is UTF-8")
}

/// `helm template` of the chart with extra arguments (`--set …`), as YAML text.
fn template(helm: &Path, extra: &[&str]) -> String {
    let chart = chart_dir();
    // Without a cluster helm assumes Kubernetes 1.20; the chart needs 1.30+ (its
    // kubeVersion), and the test API server is 1.36.
    let mut args = vec![
        "template",
        "dualstack",
        chart.to_str().unwrap(),
        "--kube-version",
        "1.36.0",
        "--include-crds",
    ];
    args.extend_from_slice(extra);
    run_helm(helm, &args)
}

fn documents(what: &str, text: &str) -> Vec<Value> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).unwrap_or_else(|e| panic!("{what}: not YAML: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// Parses into `T` (failing on a field the type does not know) and back: the canonical form
/// both sides are compared in.
fn canonical<T: DeserializeOwned + Serialize>(what: &str, doc: &Value) -> Value {
    let object: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{what}: {} does not parse: {e}", doc["kind"]));
    let back = integral_numbers(serde_json::to_value(&object).unwrap());
    assert_eq!(
        back,
        integral_numbers(doc.clone()),
        "{what}: {} {} has fields its type does not know (typo?)",
        doc["kind"],
        doc["metadata"]["name"]
    );
    back
}

type Key = (String, String, String);

/// Every object by (kind, namespace, name), each checked against its `k8s-openapi` type.
fn typed_objects(what: &str, docs: &[Value]) -> BTreeMap<Key, Value> {
    let mut out = BTreeMap::new();
    for doc in docs {
        let kind = doc["kind"].as_str().unwrap_or_default().to_string();
        let value = match kind.as_str() {
            "Namespace" => canonical::<Namespace>(what, doc),
            "PriorityClass" => canonical::<PriorityClass>(what, doc),
            "ConfigMap" => canonical::<ConfigMap>(what, doc),
            "ServiceAccount" => canonical::<ServiceAccount>(what, doc),
            "ClusterRole" => canonical::<ClusterRole>(what, doc),
            "ClusterRoleBinding" => canonical::<ClusterRoleBinding>(what, doc),
            "Role" => canonical::<Role>(what, doc),
            "RoleBinding" => canonical::<RoleBinding>(what, doc),
            "Deployment" => canonical::<Deployment>(what, doc),
            "DaemonSet" => canonical::<DaemonSet>(what, doc),
            "ValidatingAdmissionPolicy" => canonical::<ValidatingAdmissionPolicy>(what, doc),
            "CustomResourceDefinition" => canonical::<
                k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
            >(what, doc),
            "ValidatingAdmissionPolicyBinding" => {
                canonical::<ValidatingAdmissionPolicyBinding>(what, doc)
            }
            other => panic!("{what}: unexpected kind {other:?}"),
        };
        let key = (
            kind,
            doc["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            doc["metadata"]["name"].as_str().unwrap().to_string(),
        );
        assert!(
            out.insert(key.clone(), value).is_none(),
            "{what}: {key:?} twice"
        );
    }
    out
}

/// The objects of `deploy/` as `kubectl apply -k deploy/` sees them (the kustomization's
/// resources, its image tag applied).
fn deploy_objects() -> BTreeMap<Key, Value> {
    let dir = repo_root().join("deploy");
    let kustomization: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap())
            .unwrap();
    let mut docs = Vec::new();
    for file in kustomization["resources"].as_array().unwrap() {
        let file = file.as_str().unwrap();
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        docs.extend(documents(file, &text));
    }
    let images = kustomization["images"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for doc in &mut docs {
        for container in containers_mut(doc) {
            for image in &images {
                let name = image["name"].as_str().unwrap();
                let current = container["image"].as_str().unwrap().to_string();
                if current.split(':').next() == Some(name)
                    && let Some(tag) = image["newTag"].as_str()
                {
                    container["image"] = Value::from(format!("{name}:{tag}"));
                }
            }
        }
    }
    typed_objects("deploy/", &docs)
}

fn containers_mut(doc: &mut Value) -> Vec<&mut Value> {
    // `pointer_mut`, not indexing: indexing a missing key would insert it.
    match doc
        .pointer_mut("/spec/template/spec/containers")
        .and_then(Value::as_array_mut)
    {
        Some(list) => list.iter_mut().collect(),
        None => Vec::new(),
    }
}

/// What the chart adds on purpose and `deploy/` leaves to defaults: the `checksum/config`
/// Pod annotation (restarts on a config change) and `imagePullPolicy: IfNotPresent`
/// (the API server's default for a tagged image). Removed before comparing.
fn strip_chart_additions(objects: &mut BTreeMap<Key, Value>) {
    for doc in objects.values_mut() {
        if let Some(meta) = doc.pointer_mut("/spec/template/metadata") {
            let annotations = meta
                .get_mut("annotations")
                .and_then(Value::as_object_mut)
                .expect("the chart's Pod templates carry annotations");
            let checksum = annotations.remove("checksum/config");
            assert!(
                checksum
                    .as_ref()
                    .and_then(Value::as_str)
                    .is_some_and(|c| c.len() == 64),
                "Pod template carries a sha256 checksum/config, got {checksum:?}"
            );
            if annotations.is_empty() {
                meta.as_object_mut().unwrap().remove("annotations");
            }
        }
        for container in containers_mut(doc) {
            let policy = container.as_object_mut().unwrap().remove("imagePullPolicy");
            assert_eq!(
                policy.as_ref().and_then(Value::as_str),
                Some("IfNotPresent")
            );
        }
    }
}

fn rendered(helm: &Path, extra: &[&str]) -> BTreeMap<Key, Value> {
    typed_objects(
        "helm template",
        &documents("helm template", &template(helm, extra)),
    )
}

fn object<'a>(objects: &'a BTreeMap<Key, Value>, kind: &str, ns: &str, name: &str) -> &'a Value {
    objects
        .get(&(kind.to_string(), ns.to_string(), name.to_string()))
        .unwrap_or_else(|| panic!("no {kind} {ns}/{name} among {:?}", objects.keys()))
}

fn pod_template(doc: &Value) -> PodTemplateSpec {
    serde_json::from_value(doc["spec"]["template"].clone()).unwrap()
}

#[test]
fn chart_lints_strict() {
    let Some(helm) = helm("chart_lints_strict") else {
        return;
    };
    let chart = chart_dir();
    let out = run_helm(&helm, &["lint", "--strict", chart.to_str().unwrap()]);
    assert!(out.contains("0 chart(s) failed"), "helm lint: {out}");
}

#[test]
fn default_values_render_deploy() {
    let Some(helm) = helm("default_values_render_deploy") else {
        return;
    };
    let mut chart = rendered(&helm, &[]);
    strip_chart_additions(&mut chart);
    let deploy = deploy_objects();
    let chart_keys: BTreeSet<&Key> = chart.keys().collect();
    let deploy_keys: BTreeSet<&Key> = deploy.keys().collect();
    assert_eq!(
        chart_keys, deploy_keys,
        "the chart renders the same kinds, names and namespaces as deploy/"
    );
    for (key, expected) in &deploy {
        // Whole objects: RBAC rules, ConfigMap data, container args/env/securityContext,
        // probes, tolerations, affinity, labels, policy expressions.
        assert_eq!(
            &chart[key],
            expected,
            "{key:?} differs between the chart and deploy/:\nchart:  {}\ndeploy: {}",
            serde_json::to_string_pretty(&chart[key]).unwrap(),
            serde_json::to_string_pretty(expected).unwrap()
        );
    }
}

#[test]
fn non_default_values_reach_the_objects() {
    let Some(helm) = helm("non_default_values_reach_the_objects") else {
        return;
    };
    let defaults = rendered(&helm, &[]);
    let objects = rendered(
        &helm,
        &[
            "--set",
            "class=example.com/lb",
            "--set",
            "defaultClass=false",
            "--set",
            "mode=kube-proxy",
            "--set",
            "leaseNamespace=dualstack-leases",
            "--set",
            "image.repository=registry.example/dualstack",
            "--set",
            "image.tag=9.9.9",
            "--set",
            "image.pullPolicy=Always",
            "--set-json",
            r#"agent.tolerations=[{"key":"example.com/edge","operator":"Exists","effect":"NoSchedule"}]"#,
            "--set-json",
            r#"controller.tolerations=[{"key":"example.com/ctl","operator":"Equal","value":"yes"}]"#,
            "--set",
            "controller.resources.limits.memory=256Mi",
        ],
    );
    let ns = "dualstack-system";
    let config = object(&objects, "ConfigMap", ns, "dualstack-config");
    assert_eq!(config["data"]["DUALSTACK_CLASS"], "example.com/lb");
    assert_eq!(config["data"]["DUALSTACK_DEFAULT_CLASS"], "false");
    assert_eq!(config["data"]["DUALSTACK_MODE"], "kube-proxy");
    assert_eq!(
        config["data"]["DUALSTACK_LEASE_NAMESPACE"],
        "dualstack-leases"
    );

    // The Lease RBAC follows the lease namespace; the ServiceAccounts stay.
    for who in ["dualstack-controller", "dualstack-agent"] {
        object(&objects, "Role", "dualstack-leases", who);
        let binding = object(&objects, "RoleBinding", "dualstack-leases", who);
        assert_eq!(binding["subjects"][0]["namespace"], ns);
        object(&objects, "ServiceAccount", ns, who);
    }

    let controller = pod_template(object(&objects, "Deployment", ns, "dualstack-controller"));
    let agent = pod_template(object(&objects, "DaemonSet", ns, "dualstack-agent"));
    for template in [&controller, &agent] {
        let spec = template.spec.as_ref().unwrap();
        let c = &spec.containers[0];
        assert_eq!(c.image.as_deref(), Some("registry.example/dualstack:9.9.9"));
        assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
    }
    let tolerations = |t: &PodTemplateSpec| -> Vec<(Option<String>, Option<String>)> {
        t.spec
            .as_ref()
            .unwrap()
            .tolerations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.key, t.operator))
            .collect()
    };
    assert_eq!(
        tolerations(&agent),
        vec![(Some("example.com/edge".into()), Some("Exists".into()))]
    );
    assert_eq!(
        tolerations(&controller),
        vec![(Some("example.com/ctl".into()), Some("Equal".into()))]
    );
    let limits = controller.spec.as_ref().unwrap().containers[0]
        .resources
        .as_ref()
        .unwrap()
        .limits
        .clone()
        .unwrap();
    assert_eq!(limits["memory"].0, "256Mi");

    // A changed ConfigMap changes the Pod templates, so `helm upgrade` restarts both.
    let checksum = |objects: &BTreeMap<Key, Value>, kind: &str, name: &str| {
        object(objects, kind, ns, name)["spec"]["template"]["metadata"]["annotations"]
            ["checksum/config"]
            .clone()
    };
    for (kind, name) in [
        ("Deployment", "dualstack-controller"),
        ("DaemonSet", "dualstack-agent"),
    ] {
        assert_ne!(
            checksum(&objects, kind, name),
            checksum(&defaults, kind, name)
        );
    }
}

#[test]
fn other_namespace_moves_everything_and_the_policy() {
    let Some(helm) = helm("other_namespace_moves_everything_and_the_policy") else {
        return;
    };
    let objects = rendered(&helm, &["--set", "namespace=lb"]);
    for ((kind, ns, name), doc) in &objects {
        let cluster_scoped = matches!(
            kind.as_str(),
            "Namespace"
                | "PriorityClass"
                | "ClusterRole"
                | "ClusterRoleBinding"
                | "ValidatingAdmissionPolicy"
                | "ValidatingAdmissionPolicyBinding"
                | "CustomResourceDefinition"
        );
        if cluster_scoped {
            assert_eq!(ns, "", "{kind} {name} is cluster-scoped");
        } else {
            assert_eq!(ns, "lb", "{kind} {name}");
        }
        for subject in doc["subjects"].as_array().into_iter().flatten() {
            assert_eq!(subject["namespace"], "lb", "{kind} {name} subjects");
        }
    }
    object(&objects, "Namespace", "", "lb");
    let policy = object(
        &objects,
        "ValidatingAdmissionPolicy",
        "",
        "dualstack-agent-own-lease",
    );
    assert_eq!(
        policy["spec"]["matchConditions"][0]["expression"],
        "request.userInfo.username == 'system:serviceaccount:lb:dualstack-agent'"
    );
    let config = object(&objects, "ConfigMap", "lb", "dualstack-config");
    assert_eq!(config["data"]["DUALSTACK_LEASE_NAMESPACE"], "lb");

    let without = rendered(&helm, &["--set", "createNamespace=false"]);
    assert!(without.keys().all(|(kind, _, _)| kind != "Namespace"));
}

#[test]
fn rendered_chart_is_accepted_by_the_api_server() {
    let Some(helm) = helm("rendered_chart_is_accepted_by_the_api_server") else {
        return;
    };
    if !dualstack_testbed::kube_tests_enabled("rendered_chart_is_accepted_by_the_api_server") {
        return;
    }
    let yaml = template(&helm, &[]);
    let api = KubeApi::start().unwrap();
    // Server-side validation and admission: unknown or malformed fields are rejected.
    api.kubectl_with_input(&["apply", "--validate=strict", "-f", "-"], Some(&yaml))
        .unwrap();
    let expected = rendered(&helm, &[]);
    for (kind, ns, name) in expected.keys() {
        let mut args = vec!["get", kind.as_str(), name.as_str(), "-o", "name"];
        if !ns.is_empty() {
            args.extend(["-n", ns.as_str()]);
        }
        let out = api.kubectl(&args).unwrap();
        assert!(!out.trim().is_empty(), "{kind} {ns}/{name} stored");
    }
    // A second apply (an upgrade with the same values) is accepted too, and leaves the
    // workloads and RBAC unchanged. (Client-side apply reports the PriorityClass and the
    // admission policy "configured" again; why is not investigated yet, so they are not
    // checked here.)
    let again = api
        .kubectl_with_input(&["apply", "-f", "-"], Some(&yaml))
        .unwrap();
    for line in again.lines().filter(|l| {
        l.starts_with("deployment") || l.starts_with("daemonset") || l.contains(".rbac.")
    }) {
        assert!(line.ends_with(" unchanged"), "re-apply: {again}");
    }
}
