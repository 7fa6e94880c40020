//! What `dualstack doctor cluster` checks, fetched: the handful of list calls
//! [`dualstack_doctor::cluster::check`] needs, converted to the doctor's objects (which are the
//! decision core's where they overlap) by the same serde round trip as [`crate::convert`].

use dualstack_doctor::cluster::ClusterFacts;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::convert::{ConvertError, convert};

/// A list or get that failed, or an object that did not convert.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A list or get call failed.
    #[error("{what}: {source}")]
    Api {
        /// `listing nodes`, `reading service kube-system/kube-dns`, …
        what: &'static str,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// A fetched object did not convert to the doctor's types.
    #[error(transparent)]
    Convert(#[from] ConvertError),
}

fn api(what: &'static str) -> impl FnOnce(kube::Error) -> FetchError {
    move |source| FetchError::Api { what, source }
}

fn convert_all<From: Serialize + Resource, To: DeserializeOwned>(
    objects: &[From],
    kind: &'static str,
) -> Result<Vec<To>, ConvertError> {
    objects.iter().map(|o| convert(o, kind)).collect()
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

/// Nodes, Services, `kube-system/kube-dns`, up to `pod_sample` running pods and the Calico
/// IPPools (`None` when the CRD is not installed). The caller adds what does not come from
/// the API (cluster CIDRs, our class).
pub async fn fetch(client: Client, pod_sample: u32) -> Result<ClusterFacts, FetchError> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(api("listing nodes"))?;
    let services = Api::<Service>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(api("listing services"))?;
    let dns = Api::<Service>::namespaced(client.clone(), "kube-system")
        .get_opt("kube-dns")
        .await
        .map_err(api("reading service kube-system/kube-dns"))?;
    let pods = Api::<Pod>::all(client.clone())
        .list(
            &ListParams::default()
                .fields("status.phase=Running")
                .limit(pod_sample),
        )
        .await
        .map_err(api("listing pods"))?;
    let pools = match Api::<DynamicObject>::all_with(client, &calico_ippools())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => Some(convert_all(&list.items, "IPPool")?),
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(api("listing Calico IPPools")(e)),
    };
    Ok(ClusterFacts {
        nodes: convert_all(&nodes.items, "Node")?,
        dns: dns.map(|d| convert(&d, "Service")).transpose()?,
        services: convert_all(&services.items, "Service")?,
        pods: convert_all(&pods.items, "Pod")?,
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
    use dualstack_doctor::cluster;
    use dualstack_lb::config::DEFAULT_CLASS;
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
