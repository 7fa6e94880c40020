//! `dualstack doctor cluster`: lists nodes, Services, a sample of running pods, the DNS
//! Service and Calico IPPools (when the CRD exists) and runs the cluster checks.
//!
//! Objects are fetched with `k8s-openapi` types and converted to `dualstack-doctor`'s
//! minimal ones through their JSON (the same field names), so the checks stay pure.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use dualstack_doctor::cluster::{self, ClusterFacts};
use dualstack_lb::config::DEFAULT_CLASS;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::api::{Api, DynamicObject, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::ApiResource;
use kube::{Client, Config};
use serde::de::DeserializeOwned;

use super::{k3s, print};
use crate::exit::{Outcome, usage};
use crate::output::Format;

/// K3s writes the admin kubeconfig here; tried when nothing else is configured.
const K3S_KUBECONFIG: &str = "/etc/rancher/k3s/k3s.yaml";

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Kubeconfig file. Default: $KUBECONFIG, ~/.kube/config, the in-cluster service
    /// account, then /etc/rancher/k3s/k3s.yaml.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current one).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// The cluster CIDRs (K3s `cluster-cidr`) Calico pools must sit inside, e.g.
    /// 10.42.0.0/16,fd12:3456:789a::/56. Default: from the K3s config if readable.
    #[arg(long, value_name = "CIDR[,CIDR]")]
    cluster_cidr: Vec<String>,
    /// K3s config file to read `cluster-cidr` from. Default: /etc/rancher/k3s/config.yaml
    /// when it exists.
    #[arg(long, value_name = "FILE")]
    k3s_config: Option<PathBuf>,
    /// Our `spec.loadBalancerClass`.
    #[arg(long, default_value = DEFAULT_CLASS)]
    class: String,
    /// We also own LoadBalancer Services that set no `loadBalancerClass`.
    #[arg(long)]
    default_class: bool,
    /// How many running pods to sample.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pod_sample: u32,
    /// Output format: a checklist with the fix under every problem, or `{"checks":[…]}`.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    output: Format,
}

pub fn run(args: ClusterArgs) -> anyhow::Result<Outcome> {
    let mut cluster_cidrs = k3s::parse_cidrs(&args.cluster_cidr, "--cluster-cidr")?;
    if cluster_cidrs.is_empty()
        && let Some(k) = k3s::find(args.k3s_config.as_deref())?
        && !k.pod_cidrs.source.starts_with("K3s default")
    {
        cluster_cidrs = k.pod_cidrs.cidrs;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let facts = runtime.block_on(async {
        let client = client(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
        let mut facts = fetch(client, args.pod_sample).await?;
        facts.cluster_cidrs = cluster_cidrs;
        facts.lb_class = args.class.clone();
        facts.default_class = args.default_class;
        anyhow::Ok(facts)
    })?;
    print(&cluster::check(&facts), args.output)
}

async fn client(kubeconfig: Option<&Path>, context: Option<&str>) -> anyhow::Result<Client> {
    let options = KubeConfigOptions {
        context: context.map(String::from),
        ..KubeConfigOptions::default()
    };
    let from_file = |path: &Path| {
        Kubeconfig::read_from(path)
            .map_err(|e| usage(format!("--kubeconfig: {}: {e}", path.display())))
    };
    let config = match kubeconfig {
        Some(path) => Config::from_custom_kubeconfig(from_file(path)?, &options)
            .await
            .map_err(|e| usage(format!("--kubeconfig: {}: {e}", path.display())))?,
        None if context.is_some() => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| usage(format!("--context: {e}")))?,
        None => match Config::infer().await {
            Ok(c) => c,
            Err(e) if Path::new(K3S_KUBECONFIG).is_file() => {
                Config::from_custom_kubeconfig(from_file(Path::new(K3S_KUBECONFIG))?, &options)
                    .await
                    .with_context(|| format!("no kubeconfig found ({e}); {K3S_KUBECONFIG}"))?
            }
            Err(e) => {
                return Err(usage(format!(
                    "no kubeconfig: {e}; pass --kubeconfig FILE or set KUBECONFIG"
                )));
            }
        },
    };
    Ok(Client::try_from(config)?)
}

/// Converts a k8s-openapi object to the doctor's minimal type through its JSON.
fn convert<T: serde::Serialize, U: DeserializeOwned>(objects: Vec<T>) -> anyhow::Result<Vec<U>> {
    objects
        .into_iter()
        .map(|o| Ok(serde_json::from_value(serde_json::to_value(o)?)?))
        .collect()
}

fn calico_ippools() -> ApiResource {
    ApiResource {
        group: "crd.projectcalico.org".into(),
        version: "v1".into(),
        api_version: "crd.projectcalico.org/v1".into(),
        kind: "IPPool".into(),
        plural: "ippools".into(),
    }
}

fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404)
}

/// The handful of list calls the cluster checks need.
pub async fn fetch(client: Client, pod_sample: u32) -> anyhow::Result<ClusterFacts> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .context("listing nodes")?;
    let services = Api::<Service>::all(client.clone())
        .list(&ListParams::default())
        .await
        .context("listing services")?;
    let dns = Api::<Service>::namespaced(client.clone(), "kube-system")
        .get_opt("kube-dns")
        .await
        .context("reading service kube-system/kube-dns")?;
    let pods = Api::<Pod>::all(client.clone())
        .list(
            &ListParams::default()
                .fields("status.phase=Running")
                .limit(pod_sample),
        )
        .await
        .context("listing pods")?;
    let pools = match Api::<DynamicObject>::all_with(client, &calico_ippools())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => Some(convert(list.items)?),
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(e).context("listing Calico IPPools"),
    };
    Ok(ClusterFacts {
        nodes: convert(nodes.items)?,
        dns: convert(dns.into_iter().collect())?.pop(),
        services: convert(services.items)?,
        pods: convert(pods.items)?,
        ip_pools: pools,
        ..ClusterFacts::default()
    })
}

#[cfg(test)]
mod tests {
    //! The fetch against kube-rs's tower-test mock API server: requests in, responses out.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use dualstack_doctor::Status;
    use http::{Request, Response};
    use kube::client::Body;
    use serde_json::{Value, json};

    /// The objects of a doctor fixture (a kubectl `List`), by kind.
    fn fixture(name: &str) -> Vec<Value> {
        let path = format!(
            "{}/../dualstack-doctor/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let list: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        list["items"].as_array().unwrap().clone()
    }

    fn list_of(items: &[Value], kind: &str, api_version: &str) -> Value {
        json!({
            "apiVersion": api_version,
            "kind": format!("{kind}List"),
            "metadata": {"resourceVersion": "1"},
            "items": items.iter().filter(|i| i["kind"] == kind).cloned().collect::<Vec<_>>(),
        })
    }

    fn not_found(what: &str) -> (u16, Value) {
        (
            404,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": format!("{what} not found"), "reason": "NotFound", "code": 404}),
        )
    }

    /// Answers every request from `items`, the way the API server would; Calico's CRD is
    /// served only when `calico` is set. Returns the paths it was asked for.
    async fn serve(
        mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
        items: Vec<Value>,
        calico: bool,
    ) -> Vec<String> {
        let mut seen = Vec::new();
        while let Some((request, send)) = handle.next_request().await {
            assert_eq!(request.method(), http::Method::GET);
            let uri = request.uri().clone();
            seen.push(uri.to_string());
            let (code, body) = match uri.path() {
                "/api/v1/nodes" => (200, list_of(&items, "Node", "v1")),
                "/api/v1/services" => (200, list_of(&items, "Service", "v1")),
                "/api/v1/pods" => {
                    let q = uri.query().unwrap_or("");
                    assert!(q.contains("fieldSelector=status.phase%3DRunning"), "{q}");
                    assert!(q.contains("limit=200"), "{q}");
                    (200, list_of(&items, "Pod", "v1"))
                }
                "/api/v1/namespaces/kube-system/services/kube-dns" => items
                    .iter()
                    .find(|i| i["kind"] == "Service" && i["metadata"]["name"] == "kube-dns")
                    .map(|s| (200, s.clone()))
                    .unwrap_or_else(|| not_found("services \"kube-dns\"")),
                "/apis/crd.projectcalico.org/v1/ippools" if calico => {
                    (200, list_of(&items, "IPPool", "crd.projectcalico.org/v1"))
                }
                "/apis/crd.projectcalico.org/v1/ippools" => {
                    not_found("the server could not find the requested resource")
                }
                other => panic!("unexpected request {other}"),
            };
            send.send_response(
                Response::builder()
                    .status(code)
                    .body(Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap(),
            );
        }
        seen
    }

    async fn run_against(items: Vec<Value>, calico: bool) -> (ClusterFacts, Vec<String>) {
        let (mock, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = tokio::spawn(serve(handle, items, calico));
        let client = Client::new(mock, "default");
        let facts = fetch(client, 200).await.unwrap();
        // dropping the client closes the mock, which ends the server loop
        let seen = tokio::time::timeout(std::time::Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        (facts, seen)
    }

    fn with_class(mut f: ClusterFacts) -> ClusterFacts {
        f.lb_class = DEFAULT_CLASS.into();
        f
    }

    #[tokio::test]
    async fn a_dual_stack_cluster_with_calico() {
        let (facts, seen) = run_against(fixture("dual-stack-calico.json"), true).await;
        assert_eq!(seen.len(), 5, "{seen:?}");
        assert_eq!(facts.nodes.len(), 2);
        assert_eq!(facts.ip_pools.as_ref().map(Vec::len), Some(2));
        assert_eq!(facts.dns.as_ref().unwrap().spec.cluster_ips.len(), 2);
        let report = cluster::check(&with_class(facts));
        assert!(
            report.checks.iter().all(|c| c.status == Status::Ok),
            "{}",
            report.to_text()
        );
    }

    #[tokio::test]
    async fn a_cluster_without_the_calico_crd() {
        let (facts, _) = run_against(fixture("dual-stack-calico.json"), false).await;
        assert_eq!(facts.ip_pools, None);
        let report = cluster::check(&with_class(facts));
        let pools = report.get("cluster.calico.ippools").unwrap();
        assert_eq!(pools.status, Status::Ok);
        assert!(pools.message.contains("not installed"), "{}", pools.message);
    }

    #[tokio::test]
    async fn a_cluster_with_a_single_stack_node() {
        let (facts, _) = run_against(fixture("single-stack-node.json"), true).await;
        let report = cluster::check(&with_class(facts));
        for id in [
            "cluster.nodes.pod-cidrs",
            "cluster.nodes.internal-ips",
            "cluster.dns",
            "cluster.services.lb",
            "cluster.pods.dual-stack",
        ] {
            assert_eq!(
                report.get(id).unwrap().status,
                Status::Fail,
                "{}",
                report.to_text()
            );
        }
        assert!(
            report
                .get("cluster.nodes.pod-cidrs")
                .unwrap()
                .message
                .contains("k3s-agent-2")
        );
    }

    #[tokio::test]
    async fn a_missing_dns_service_is_a_warning_not_an_error() {
        let items: Vec<Value> = fixture("dual-stack-calico.json")
            .into_iter()
            .filter(|i| i["metadata"]["name"] != "kube-dns")
            .collect();
        let (facts, _) = run_against(items, false).await;
        assert_eq!(facts.dns, None);
        let report = cluster::check(&with_class(facts));
        assert_eq!(report.get("cluster.dns").unwrap().status, Status::Warn);
    }

    #[tokio::test]
    async fn api_errors_other_than_404_are_errors() {
        let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = tokio::spawn(async move {
            let (_, send) = handle.next_request().await.unwrap();
            send.send_response(
                Response::builder()
                    .status(403)
                    .body(Body::from(
                        serde_json::to_vec(&json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "message": "nodes is forbidden: User \"x\" cannot list resource \"nodes\"",
                            "reason": "Forbidden", "code": 403}))
                        .unwrap(),
                    ))
                    .unwrap(),
            );
        });
        let err = fetch(Client::new(mock, "default"), 200).await.unwrap_err();
        assert!(format!("{err:#}").contains("listing nodes"), "{err:#}");
        assert!(format!("{err:#}").contains("forbidden"), "{err:#}");
        server.await.unwrap();
    }
}
