//! The reconcile loop against a mock API server (tower-test): every request the controller
//! makes is checked (method, path, body) and answered the way the API server would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use dualstack_kube::cluster::Cluster;
use dualstack_kube::finalizer::{FINALIZER, OWNER_ANNOTATION};
use dualstack_kube::reconcile::{
    Context, FIRST_BACKOFF, Outcome, RESYNC, error_policy, reconcile, reconcile_inner,
};
use dualstack_lb::{Config, Timestamp};
use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use serde_json::{Value, json};
use tower_test::mock::Handle;

const NOW: &str = "2026-01-01T00:00:10Z";

type Mock = Handle<Request<Body>, Response<Body>>;

fn store<K>(objects: Vec<K>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let (reader, mut writer) = reflector::store();
    for o in objects {
        writer.apply_watcher_event(&watcher::Event::Apply(o));
    }
    reader
}

fn object<K: serde::de::DeserializeOwned>(v: Value) -> K {
    serde_json::from_value(v).unwrap()
}

fn node() -> Node {
    object(json!({
        "metadata": {"name": "node-a"},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "192.0.2.10"},
                          {"type": "InternalIP", "address": "2001:db8::10"}],
            "conditions": [{"type": "Ready", "status": "True"}]
        }
    }))
}

fn lease() -> Lease {
    object(json!({
        "metadata": {"name": "dualstack-agent-node-a", "namespace": "dualstack-system"},
        "spec": {"holderIdentity": "node-a", "leaseDurationSeconds": 40,
                 "renewTime": "2026-01-01T00:00:05.000000Z"}
    }))
}

fn slices() -> Vec<EndpointSlice> {
    ["IPv4", "IPv6"]
        .iter()
        .map(|family| {
            let addr = if *family == "IPv4" { "10.42.0.5" } else { "fd42::5" };
            object(json!({
                "metadata": {"name": format!("web-{family}"), "namespace": "default",
                             "labels": {"kubernetes.io/service-name": "web"}},
                "addressType": family,
                "endpoints": [{"addresses": [addr], "conditions": {"ready": true}, "nodeName": "node-a"}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
            }))
        })
        .collect()
}

fn web(extra_meta: Value, class: &str, status: Value) -> Service {
    let mut meta = json!({"name": "web", "namespace": "default", "resourceVersion": "1",
                          "generation": 3, "uid": "u-web",
                          "creationTimestamp": "2025-12-01T00:00:00Z"});
    for (k, v) in extra_meta.as_object().unwrap() {
        meta[k] = v.clone();
    }
    object(json!({
        "metadata": meta,
        "spec": {"type": "LoadBalancer", "loadBalancerClass": class,
                 "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "RequireDualStack",
                 "clusterIPs": ["10.43.0.80", "fd43::80"],
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]},
        "status": status,
    }))
}

fn owned_meta() -> Value {
    json!({"finalizers": [FINALIZER], "annotations": {OWNER_ANNOTATION: "dualstack.io/lb"}})
}

fn ready_status() -> Value {
    json!({
        "loadBalancer": {"ingress": [{"ip": "192.0.2.10", "ipMode": "Proxy"},
                                     {"ip": "2001:db8::10", "ipMode": "Proxy"}]},
        "conditions": [
            {"type": "example.com/Other", "status": "True", "reason": "X", "message": "kept",
             "lastTransitionTime": "2025-01-01T00:00:00Z"},
            {"type": "dualstack.io/LoadBalancerReady", "status": "True", "reason": "Ready",
             "message": "served on 1 node(s) for IPv4 and IPv6 with ipMode Proxy", "observedGeneration": 3,
             "lastTransitionTime": "2025-06-01T00:00:00Z"},
            {"type": "dualstack.io/PortConflict", "status": "False", "reason": "NoConflict",
             "message": "no older Service claims the same node address, protocol and port", "observedGeneration": 3,
             "lastTransitionTime": "2025-06-01T00:00:00Z"}
        ]
    })
}

fn context(services: Vec<Service>) -> (Arc<Context>, Mock, tokio::sync::watch::Receiver<u64>) {
    let (mock, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(mock, "default");
    let cluster = Cluster {
        services: store(services),
        slices: store(slices()),
        nodes: store(vec![node()]),
        leases: store(vec![lease()]),
        pools: dualstack_kube::cluster::no_pools(),
    };
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "dualstack-controller".into(),
            instance: Some("test".into()),
        },
    );
    let now: Timestamp = NOW.parse().unwrap();
    let mut ctx = Context::new(
        client,
        Config::default(),
        cluster,
        recorder,
        Arc::new(move || now),
    );
    let (kick_tx, kick_rx) = tokio::sync::watch::channel(0);
    ctx.others_affected = Some(kick_tx);
    (Arc::new(ctx), handle, kick_rx)
}

/// One expected request: method, path (without query), a check on the JSON body, and the
/// answer (status and JSON body).
struct Expect {
    method: Method,
    path: &'static str,
    body: Box<dyn Fn(&Value) + Send>,
    status: StatusCode,
    answer: Value,
}

fn serve(mut handle: Mock, expected: Vec<Expect>) -> tokio::task::JoinHandle<Vec<Value>> {
    tokio::spawn(async move {
        let mut bodies = Vec::new();
        for e in expected {
            let (request, send) = handle.next_request().await.expect("a request");
            assert_eq!(request.method(), e.method, "{}", request.uri());
            assert_eq!(request.uri().path(), e.path);
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            (e.body)(&body);
            bodies.push(body);
            send.send_response(
                Response::builder()
                    .status(e.status)
                    .body(Body::from(serde_json::to_vec(&e.answer).unwrap()))
                    .unwrap(),
            );
        }
        bodies
    })
}

async fn finish(server: tokio::task::JoinHandle<Vec<Value>>) -> Vec<Value> {
    tokio::time::timeout(Duration::from_secs(2), server)
        .await
        .expect("every expected request was made")
        .unwrap()
}

fn status_error(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": reason,
           "reason": reason, "code": code})
}

fn event_answer() -> Value {
    json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
           "metadata": {"name": "web.1", "namespace": "default"}, "eventTime": null})
}

#[tokio::test]
async fn a_new_service_gets_the_finalizer_then_its_status_then_an_event() {
    let svc = web(json!({}), "dualstack.io/lb", json!({"loadBalancer": {}}));
    let (ctx, handle, kick) = context(vec![svc.clone()]);
    let with_finalizer = web(
        json!({"resourceVersion": "2", "finalizers": [FINALIZER],
               "annotations": {OWNER_ANNOTATION: "dualstack.io/lb"}}),
        "dualstack.io/lb",
        json!({"loadBalancer": {}}),
    );
    let server = serve(
        handle,
        vec![
            Expect {
                method: Method::PATCH,
                path: "/api/v1/namespaces/default/services/web",
                body: Box::new(|b| {
                    assert_eq!(
                        b,
                        &json!({"metadata": {"resourceVersion": "1", "finalizers": [FINALIZER],
                                             "annotations": {OWNER_ANNOTATION: "dualstack.io/lb"}}})
                    );
                }),
                status: StatusCode::OK,
                answer: serde_json::to_value(&with_finalizer).unwrap(),
            },
            Expect {
                method: Method::PATCH,
                path: "/api/v1/namespaces/default/services/web/status",
                body: Box::new(|b| {
                    assert_eq!(
                        b["metadata"]["resourceVersion"], "2",
                        "uses the new version"
                    );
                    assert_eq!(
                        b["status"]["loadBalancer"]["ingress"],
                        json!([{"ip": "192.0.2.10", "ipMode": "Proxy"},
                               {"ip": "2001:db8::10", "ipMode": "Proxy"}])
                    );
                    let conditions = b["status"]["conditions"].as_array().unwrap();
                    assert_eq!(conditions.len(), 2, "{conditions:?}");
                    assert_eq!(conditions[0]["type"], "dualstack.io/LoadBalancerReady");
                    assert_eq!(conditions[0]["status"], "True");
                    assert_eq!(conditions[0]["reason"], "Ready");
                    assert_eq!(conditions[0]["observedGeneration"], 3);
                    assert_eq!(conditions[0]["lastTransitionTime"], NOW);
                    assert_eq!(conditions[1]["type"], "dualstack.io/PortConflict");
                    assert_eq!(conditions[1]["status"], "False");
                }),
                status: StatusCode::OK,
                answer: serde_json::to_value(&with_finalizer).unwrap(),
            },
            Expect {
                method: Method::POST,
                path: "/apis/events.k8s.io/v1/namespaces/default/events",
                body: Box::new(|b| {
                    assert_eq!(b["type"], "Normal");
                    assert_eq!(b["reason"], "IngressUpdated");
                    assert_eq!(b["note"], "ingress: 192.0.2.10, 2001:db8::10");
                    assert_eq!(b["regarding"]["name"], "web");
                    assert_eq!(b["regarding"]["kind"], "Service");
                }),
                status: StatusCode::CREATED,
                answer: event_answer(),
            },
        ],
    );
    let action = reconcile(Arc::new(svc), Arc::clone(&ctx)).await.unwrap();
    assert_eq!(action, Action::requeue(RESYNC));
    finish(server).await;
    assert!(
        !kick.has_changed().unwrap(),
        "new addresses taken: only the Services whose outcome changed are reconsidered \
         (DecisionCache: Cached::changed), not every Service"
    );
}

#[tokio::test]
async fn a_service_already_in_sync_costs_no_request() {
    let svc = web(owned_meta(), "dualstack.io/lb", ready_status());
    let (ctx, _handle, _kick) = context(vec![svc.clone()]);
    // Any request would wait forever for an answer: the timeout catches it.
    let outcome = tokio::time::timeout(Duration::from_secs(1), reconcile_inner(&svc, &ctx))
        .await
        .expect("no request made")
        .unwrap();
    assert_eq!(outcome, Outcome::Synced);
}

#[tokio::test]
async fn services_of_another_class_or_type_get_no_request_at_all() {
    // Another controller's finalizer of the same name, and its own status: not ours.
    let other_class = web(
        json!({"finalizers": [FINALIZER]}),
        "example.com/other",
        json!({"loadBalancer": {"ingress": [{"ip": "198.51.100.1"}]}}),
    );
    let mut cluster_ip = web(json!({}), "dualstack.io/lb", json!({}));
    cluster_ip.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
    cluster_ip.spec.as_mut().unwrap().load_balancer_class = None;
    let no_class = web(json!({}), "x", json!({}));
    let mut no_class = no_class;
    no_class.spec.as_mut().unwrap().load_balancer_class = None;
    for svc in [other_class, cluster_ip, no_class] {
        let (ctx, _handle, _kick) = context(vec![svc.clone()]);
        let action = tokio::time::timeout(Duration::from_secs(1), reconcile(Arc::new(svc), ctx))
            .await
            .expect("no request made")
            .unwrap();
        assert_eq!(action, Action::await_change());
    }
}

fn release_expectations() -> Vec<Expect> {
    let cleared = web(
        json!({"resourceVersion": "7", "finalizers": ["example.com/keep", FINALIZER],
               "annotations": {OWNER_ANNOTATION: "dualstack.io/lb"}}),
        "example.com/other",
        json!({}),
    );
    vec![
        Expect {
            method: Method::PATCH,
            path: "/api/v1/namespaces/default/services/web/status",
            body: Box::new(|b| {
                assert_eq!(b["status"]["loadBalancer"]["ingress"], Value::Null);
                let conditions = b["status"]["conditions"].as_array().unwrap();
                assert_eq!(
                    conditions.len(),
                    1,
                    "only the other controller's condition stays"
                );
                assert_eq!(conditions[0]["type"], "example.com/Other");
                assert_eq!(b["metadata"]["resourceVersion"], "1");
            }),
            status: StatusCode::OK,
            answer: serde_json::to_value(&cleared).unwrap(),
        },
        Expect {
            method: Method::PATCH,
            path: "/api/v1/namespaces/default/services/web",
            body: Box::new(|b| {
                assert_eq!(
                    b,
                    &json!({"metadata": {"resourceVersion": "7",
                                         "finalizers": ["example.com/keep"],
                                         "annotations": {OWNER_ANNOTATION: null}}})
                );
            }),
            status: StatusCode::OK,
            answer: serde_json::to_value(&cleared).unwrap(),
        },
    ]
}

#[tokio::test]
async fn a_service_that_changed_class_is_released_status_first_then_finalizer() {
    let svc = web(
        json!({"finalizers": ["example.com/keep", FINALIZER],
               "annotations": {OWNER_ANNOTATION: "dualstack.io/lb"}}),
        "example.com/other",
        ready_status(),
    );
    let (ctx, handle, _kick) = context(vec![svc.clone()]);
    let server = serve(handle, release_expectations());
    let action = reconcile(Arc::new(svc), ctx).await.unwrap();
    assert_eq!(action, Action::await_change());
    finish(server).await;
}

#[tokio::test]
async fn a_deleted_service_is_released() {
    let svc = web(
        json!({"finalizers": ["example.com/keep", FINALIZER],
               "annotations": {OWNER_ANNOTATION: "dualstack.io/lb"},
               "deletionTimestamp": "2026-01-01T00:00:09Z"}),
        "dualstack.io/lb",
        ready_status(),
    );
    let (ctx, handle, _kick) = context(vec![svc.clone()]);
    let server = serve(handle, release_expectations());
    let outcome = reconcile_inner(&svc, &ctx).await.unwrap();
    assert_eq!(outcome, Outcome::Released);
    finish(server).await;
}

#[tokio::test]
async fn conflicts_and_server_errors_are_retried_with_backoff() {
    // Owned, finalizer in place, but the status is stale: the status patch is refused twice.
    let svc = web(owned_meta(), "dualstack.io/lb", json!({"loadBalancer": {}}));
    let (ctx, handle, _kick) = context(vec![svc.clone()]);
    let status_patch = |status: StatusCode, answer: Value| Expect {
        method: Method::PATCH,
        path: "/api/v1/namespaces/default/services/web/status",
        body: Box::new(|b| assert_eq!(b["metadata"]["resourceVersion"], "1")),
        status,
        answer,
    };
    let server = serve(
        handle,
        vec![
            status_patch(StatusCode::CONFLICT, status_error(409, "Conflict")),
            status_patch(
                StatusCode::INTERNAL_SERVER_ERROR,
                status_error(500, "InternalError"),
            ),
            status_patch(StatusCode::OK, serde_json::to_value(&svc).unwrap()),
            Expect {
                method: Method::POST,
                path: "/apis/events.k8s.io/v1/namespaces/default/events",
                body: Box::new(|b| assert_eq!(b["reason"], "IngressUpdated")),
                status: StatusCode::CREATED,
                answer: event_answer(),
            },
        ],
    );
    let svc = Arc::new(svc);
    let err = reconcile(Arc::clone(&svc), Arc::clone(&ctx))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(err.kind(), "conflict");
    assert_eq!(
        error_policy(Arc::clone(&svc), &err, Arc::clone(&ctx)),
        Action::requeue(FIRST_BACKOFF)
    );
    let err = reconcile(Arc::clone(&svc), Arc::clone(&ctx))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "api", "{err}");
    assert_eq!(
        error_policy(Arc::clone(&svc), &err, Arc::clone(&ctx)),
        Action::requeue(FIRST_BACKOFF * 2)
    );
    let action = reconcile(Arc::clone(&svc), Arc::clone(&ctx)).await.unwrap();
    assert_eq!(action, Action::requeue(RESYNC));
    finish(server).await;
    // A success resets the backoff.
    let err_again = dualstack_kube::reconcile::backoff(1);
    assert_eq!(err_again, FIRST_BACKOFF);
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    use dualstack_kube::reconcile::{MAX_BACKOFF, backoff};
    assert_eq!(backoff(1), Duration::from_millis(500));
    assert_eq!(backoff(2), Duration::from_secs(1));
    assert_eq!(backoff(4), Duration::from_secs(4));
    assert_eq!(backoff(20), MAX_BACKOFF);
    assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
}
