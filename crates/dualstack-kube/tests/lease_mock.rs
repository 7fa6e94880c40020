//! The agent's per-node Lease: its contents, and the server-side apply request that renews it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use dualstack_kube::lease::{FIELD_MANAGER, LEASE_DURATION_SECONDS, agent_lease, renew};
use dualstack_lb::Config;
use dualstack_lb::live::{LiveAddress, NodeReport, parse_live_addresses};
use dualstack_lb::prefixes::parse_prefixes;
use http::{Method, Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::Value;

fn addresses() -> Vec<LiveAddress> {
    parse_live_addresses("192.168.1.20,2001:db8:1::20,2001:db8:1::a1;temporary").unwrap()
}

const PREFIXES: &str = "2001:db8:1::/64;dev=eth0;since=2026-01-01T00:00:00Z;preferred=2026-01-01T04:00:00Z;valid=2026-01-02T00:00:00Z";

fn report() -> NodeReport {
    NodeReport {
        addresses: addresses(),
        prefixes: parse_prefixes(PREFIXES).unwrap(),
    }
}

#[test]
fn the_lease_carries_holder_renewal_label_and_live_addresses() {
    let config = Config::default();
    let now = "2026-01-01T00:00:05.250Z".parse().unwrap();
    let lease = agent_lease(&config, "node-a", &report(), now);
    let json = serde_json::to_value(&lease).unwrap();
    assert_eq!(json["apiVersion"], "coordination.k8s.io/v1");
    assert_eq!(json["kind"], "Lease");
    assert_eq!(json["metadata"]["name"], "dualstack-agent-node-a");
    assert_eq!(json["metadata"]["namespace"], "dualstack-system");
    assert_eq!(
        json["metadata"]["labels"]["app.kubernetes.io/name"],
        "dualstack-agent"
    );
    assert_eq!(
        json["metadata"]["annotations"]["dualstack.io/addresses"],
        "192.168.1.20,2001:db8:1::20,2001:db8:1::a1;temporary"
    );
    assert_eq!(
        json["metadata"]["annotations"]["dualstack.io/prefixes"],
        PREFIXES
    );
    assert_eq!(json["spec"]["holderIdentity"], "node-a");
    assert_eq!(json["spec"]["leaseDurationSeconds"], LEASE_DURATION_SECONDS);
    assert_eq!(json["spec"]["renewTime"], "2026-01-01T00:00:05.250000Z");

    // The decision core reads it back as a live agent Lease with these addresses.
    let core: dualstack_lb::objects::Lease = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(core.spec.holder_identity.as_deref(), Some("node-a"));
    assert_eq!(
        parse_live_addresses(&core.metadata.annotations["dualstack.io/addresses"]).unwrap(),
        addresses()
    );
}

#[tokio::test]
async fn renewal_is_a_forced_server_side_apply_in_the_lease_namespace() {
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(mock, "default");
    let config = Config {
        lease_namespace: "lb-system".into(),
        ..Config::default()
    };
    let now = "2026-01-01T00:00:05Z".parse().unwrap();
    let server = tokio::spawn(async move {
        let (request, send) = handle.next_request().await.unwrap();
        assert_eq!(request.method(), Method::PATCH);
        assert_eq!(
            request.uri().path(),
            "/apis/coordination.k8s.io/v1/namespaces/lb-system/leases/dualstack-agent-node-a"
        );
        let query = request.uri().query().unwrap_or_default().to_string();
        assert!(
            query.contains(&format!("fieldManager={FIELD_MANAGER}")),
            "{query}"
        );
        assert!(query.contains("force=true"), "{query}");
        assert_eq!(
            request.headers()["content-type"],
            "application/apply-patch+yaml"
        );
        let body: Value =
            serde_json::from_slice(&request.into_body().collect_bytes().await.unwrap()).unwrap();
        assert_eq!(body["metadata"]["namespace"], "lb-system");
        assert_eq!(body["spec"]["holderIdentity"], "node-a");
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        );
    });
    let lease = renew(&client, &config, "node-a", &report(), now)
        .await
        .unwrap();
    assert_eq!(
        lease.metadata.name.as_deref(),
        Some("dualstack-agent-node-a")
    );
    tokio::time::timeout(Duration::from_secs(1), server)
        .await
        .unwrap()
        .unwrap();
}
