//! CPU cost of one controller resync round: every owned Service reconciled once while nothing
//! changed (what the periodic requeue does every 60 s), at N Services.
//!
//! * **per change** (today): the cached decision ([`decision_for`]) is reused by every
//!   reconcile after the first; each reconcile costs a conversion, a fingerprint and the
//!   status comparison.
//! * **per Service** (before): each reconcile decided over the whole cluster; timed on a
//!   sample of reconciles and multiplied by N.
//!
//! Single-threaded, so wall time is CPU time. `cargo bench -p dualstack-kube --bench resync`
//! (`-- 1000,10000` for other sizes). Results in BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use dualstack_kube::cluster::Cluster;
use dualstack_kube::convert::convert;
use dualstack_kube::decision_cache::DecisionCache;
use dualstack_kube::reconcile::decision_for;
use dualstack_kube::status::status_patch;
use dualstack_lb::{Config, Timestamp, decide};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use serde_json::json;

const NODES: usize = 3;
const NOW: &str = "2026-01-01T00:00:10Z";

fn store<K>(objects: Vec<K>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let (reader, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for o in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(o));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    reader
}

fn cluster(n: usize) -> (Cluster, Vec<Service>) {
    let services: Vec<Service> = (0..n)
        .map(|i| {
            serde_json::from_value(json!({
                "metadata": {"name": format!("svc-{i}"), "namespace": "bench", "resourceVersion": "1",
                             "creationTimestamp": "2025-01-01T00:00:00Z"},
                "spec": {"type": "LoadBalancer", "loadBalancerClass": "dualstack.io/lb",
                         "ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv4", "IPv6"],
                         "clusterIPs": [format!("10.96.{}.{}", i / 250, i % 250 + 1), format!("fd00:10:96::{:x}", i + 1)],
                         "ports": [{"name": "http", "port": 10000 + i, "protocol": "TCP", "targetPort": 8080}]}
            }))
            .unwrap()
        })
        .collect();
    let slices: Vec<EndpointSlice> = (0..n)
        .map(|i| {
            serde_json::from_value(json!({
                "metadata": {"name": format!("svc-{i}-v4"), "namespace": "bench",
                             "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [format!("10.42.{}.{}", i % NODES, i % 250 + 2)],
                               "conditions": {"ready": true}, "nodeName": format!("node-{}", i % NODES)}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
            }))
            .unwrap()
        })
        .collect();
    let nodes: Vec<Node> = (0..NODES)
        .map(|i| {
            serde_json::from_value(json!({
                "metadata": {"name": format!("node-{i}")},
                "status": {"addresses": [{"type": "InternalIP", "address": format!("192.0.2.{}", i + 1)},
                                         {"type": "InternalIP", "address": format!("2001:db8::{}", i + 1)}],
                           "conditions": [{"type": "Ready", "status": "True"}]}
            }))
            .unwrap()
        })
        .collect();
    let leases: Vec<Lease> = (0..NODES)
        .map(|i| {
            serde_json::from_value(json!({
                "metadata": {"name": format!("dualstack-agent-node-{i}"), "namespace": "dualstack-system"},
                "spec": {"holderIdentity": format!("node-{i}"), "leaseDurationSeconds": 40,
                         "renewTime": "2026-01-01T00:00:00.000000Z"}
            }))
            .unwrap()
        })
        .collect();
    (
        Cluster {
            services: store(services.clone()),
            slices: store(slices),
            nodes: store(nodes),
            leases: store(leases),
            pools: dualstack_kube::cluster::no_pools(),
        },
        services,
    )
}

fn to_time(ts: Timestamp) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_microsecond(ts.unix_micros()).unwrap())
}

fn round_per_change(
    cluster: &Cluster,
    services: &[Service],
    rt: &tokio::runtime::Runtime,
) -> Duration {
    let config = Config::default();
    let now: Timestamp = NOW.parse().unwrap();
    let cache = DecisionCache::default();
    let start = Instant::now();
    rt.block_on(async {
        for svc in services {
            let (cached, key, _) = decision_for(cluster, &cache, &config, 1, now, svc)
                .await
                .unwrap();
            let decided = cached.service(&key).unwrap();
            std::hint::black_box(status_patch(svc, decided, to_time(now)));
        }
    });
    let took = start.elapsed();
    assert_eq!(cache.computations(), 1, "one decision for the whole round");
    took
}

fn reconcile_per_service(cluster: &Cluster, svc: &Service) {
    let config = Config::default();
    let now: Timestamp = NOW.parse().unwrap();
    let mut snapshot = cluster.snapshot().unwrap();
    let core: dualstack_lb::objects::Service = convert(svc, "Service").unwrap();
    snapshot
        .services
        .retain(|s| s.metadata.name != core.metadata.name);
    snapshot.services.push(core);
    let decision = decide(&snapshot, &config, now);
    let decided = decision
        .service("bench", svc.metadata.name.as_deref().unwrap())
        .unwrap();
    std::hint::black_box(status_patch(svc, decided, to_time(now)));
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.split(',').map(|n| n.parse().unwrap()).collect())
        .unwrap_or_else(|| vec![1000, 10000]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    println!("resync round: every owned Service reconciled once, nothing changed (single thread)");
    println!(
        "{:>8}  {:>22}  {:>26}  {:>7}",
        "services", "per change (median of 5)", "per Service (sampled × N)", "ratio"
    );
    for n in sizes {
        let (cluster, services) = cluster(n);
        let mut rounds: Vec<Duration> = (0..5)
            .map(|_| round_per_change(&cluster, &services, &rt))
            .collect();
        rounds.sort();
        let new = rounds[2];
        let sample = (2000 / n.max(1)).clamp(3, 50);
        let start = Instant::now();
        for svc in services.iter().take(sample) {
            reconcile_per_service(&cluster, svc);
        }
        let per = start.elapsed() / u32::try_from(sample).unwrap();
        let old = per * u32::try_from(n).unwrap();
        println!(
            "{n:>8}  {:>22}  {:>26}  {:>6.0}×",
            format!("{:.1} ms", new.as_secs_f64() * 1e3),
            format!("{:.1} s ({sample} sampled)", old.as_secs_f64()),
            old.as_secs_f64() / new.as_secs_f64()
        );
    }
}
