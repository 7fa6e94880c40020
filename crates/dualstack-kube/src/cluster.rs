//! Reflectors on what the decision reads — Services, EndpointSlices, Nodes and our agent
//! Leases — and the [`Snapshot`] built from their stores.
//!
//! Every watcher restarts with kube-runtime's default exponential backoff after API errors
//! or watch expiry. A change counter, which the controller and the agent use as "something
//! may have changed, decide again", is bumped by a re-list, a deletion, and an update that
//! changes what the decision reads ([`Fingerprint`]) — not by an agent renewing its Lease
//! every few seconds or a kubelet heartbeat, which would otherwise make the controller
//! reconcile every Service several times a minute per node. Lease expiry, which no event
//! announces, is caught by the controller's periodic requeue.
//!
//! The stores keep each object without what nothing here reads ([`trim_for_cache`]): its
//! `managedFields`, which the API server adds to every object and which is often larger
//! than the rest of it, and the annotations the decision core drops anyway (kubectl's
//! `last-applied-configuration` is a whole second copy of the object).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use dualstack_lb::Snapshot;
use dualstack_lb::config::LEASE_LABEL;
use dualstack_lb::objects::ANNOTATION_PREFIXES;
use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::convert::{ConvertError, convert};

/// Stores of everything the decision reads.
#[derive(Clone)]
pub struct Cluster {
    /// Services (every namespace).
    pub services: Store<Service>,
    /// EndpointSlices (every namespace): the ready endpoints per Service.
    pub slices: Store<EndpointSlice>,
    /// Nodes: addresses, labels and conditions.
    pub nodes: Store<Node>,
    /// Our agents' Leases (in the Lease namespace): which nodes run an agent, and their live addresses.
    pub leases: Store<Lease>,
    /// `LoadBalancerPool`s (cluster-scoped, `dualstack.io/v1alpha1`); empty while the CRD is
    /// not installed, which leaves every Service in node mode.
    pub pools: Store<DynamicObject>,
}

/// The `LoadBalancerPool` resource, for the dynamic API.
pub fn pool_resource() -> ApiResource {
    ApiResource {
        group: crate::crd::GROUP.to_string(),
        version: "v1alpha1".to_string(),
        api_version: dualstack_lb::pool::POOL_API_VERSION.to_string(),
        kind: dualstack_lb::pool::POOL_KIND.to_string(),
        plural: crate::crd::POOL_PLURAL.to_string(),
    }
}

/// A pool store nothing writes (tests, benches): no pools.
pub fn no_pools() -> Store<DynamicObject> {
    reflector::store::Writer::new(pool_resource()).as_reader()
}

impl Cluster {
    /// The stores' current contents as a decision input. Services being deleted are left
    /// out: they are released, and their addresses and ports are free for the others.
    pub fn snapshot(&self) -> Result<Snapshot, ConvertError> {
        Ok(Snapshot {
            services: self
                .services
                .state()
                .iter()
                .filter(|s| s.metadata.deletion_timestamp.is_none())
                .map(|s| convert(s.as_ref(), "Service"))
                .collect::<Result<_, _>>()?,
            nodes: all(&self.nodes, "Node")?,
            endpoint_slices: all(&self.slices, "EndpointSlice")?,
            leases: all(&self.leases, "Lease")?,
            pools: self
                .pools
                .state()
                .iter()
                .map(|p| convert(p.as_ref(), "LoadBalancerPool"))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Waits until every store has finished its first list.
    pub async fn wait_ready(&self) -> Result<(), reflector::store::WriterDropped> {
        self.services.wait_until_ready().await?;
        self.slices.wait_until_ready().await?;
        self.nodes.wait_until_ready().await?;
        self.leases.wait_until_ready().await
    }
}

fn all<K, T>(store: &Store<K>, kind: &'static str) -> Result<Vec<T>, ConvertError>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + 'static,
    T: DeserializeOwned,
{
    store
        .state()
        .iter()
        .map(|o| convert(o.as_ref(), kind))
        .collect()
}

/// Reflectors that are running, and the change counter they bump.
pub struct Watches {
    /// EndpointSlices (every namespace).
    pub slices: Store<EndpointSlice>,
    /// Nodes.
    pub nodes: Store<Node>,
    /// Our agents' Leases.
    pub leases: Store<Lease>,
    /// `LoadBalancerPool`s; empty while the CRD is not installed.
    pub pools: Store<DynamicObject>,
    /// Only when asked for: the controller gets its Services from its `Controller`.
    pub services: Option<Store<Service>>,
    /// Bumped on every change any reflector sees; whoever syncs waits on it.
    pub changes: watch::Receiver<u64>,
}

/// Starts the reflectors as background tasks: EndpointSlices, Nodes and Services
/// cluster-wide (read only), agent Leases in `lease_namespace` only, selected by label.
pub fn start(client: &Client, lease_namespace: &str, with_services: bool) -> Watches {
    let (tx, changes) = watch::channel(0u64);
    let tx = Arc::new(tx);
    let slices = spawn::<EndpointSlice, dualstack_lb::SliceBackends>(
        "EndpointSlice",
        Api::all(client.clone()),
        watcher::Config::default(),
        &tx,
    );
    let nodes = spawn::<Node, dualstack_lb::objects::Node>(
        "Node",
        Api::all(client.clone()),
        watcher::Config::default(),
        &tx,
    );
    let leases = spawn::<Lease, dualstack_lb::objects::Lease>(
        "Lease",
        Api::namespaced(client.clone(), lease_namespace),
        watcher::Config::default().labels(&format!("{}={}", LEASE_LABEL.0, LEASE_LABEL.1)),
        &tx,
    );
    let pools = spawn_pools(client, &tx);
    let services = with_services.then(|| {
        spawn::<Service, dualstack_lb::objects::Service>(
            "Service",
            Api::all(client.clone()),
            watcher::Config::default(),
            &tx,
        )
    });
    Watches {
        slices,
        nodes,
        leases,
        pools,
        services,
        changes,
    }
}

/// What about an object can change a decision, as a hash: the object as the decision core
/// sees it (only the fields it reads), minus what changes on every heartbeat.
pub trait Fingerprint: Serialize {
    /// Clears fields that change without changing a decision by themselves.
    fn without_heartbeat(&mut self) {}

    /// The hash of what is left.
    fn fingerprint(mut self) -> u64
    where
        Self: Sized,
    {
        self.without_heartbeat();
        let mut hasher = DefaultHasher::new();
        serde_json::to_string(&self)
            .unwrap_or_default()
            .hash(&mut hasher);
        hasher.finish()
    }
}

impl Fingerprint for dualstack_lb::objects::Service {}
impl Fingerprint for dualstack_lb::SliceBackends {}
impl Fingerprint for dualstack_lb::objects::Node {}
impl Fingerprint for dualstack_lb::objects::Lease {
    /// An agent renews every few seconds; only a change of holder, duration or reported
    /// addresses matters at once (expiry is found by the periodic requeue).
    fn without_heartbeat(&mut self) {
        self.spec.renew_time = None;
    }
}

/// Remembers each object's fingerprint and says whether an event changes anything.
#[derive(Default)]
struct Changes {
    seen: HashMap<String, u64>,
}

impl Changes {
    /// Whether `event` may change a decision. `T` is the core's view of `K`.
    fn relevant<K, T>(&mut self, kind: &'static str, event: &watcher::Event<K>) -> bool
    where
        K: Resource<DynamicType = ()> + Serialize,
        T: DeserializeOwned + Fingerprint,
    {
        match event {
            watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => {
                let key = object_key(obj);
                // An object the core cannot read still counts as a change: the decision
                // reports it.
                let print = convert::<K, T>(obj, kind)
                    .map(Fingerprint::fingerprint)
                    .unwrap_or(u64::MAX);
                let before = self.seen.insert(key, print);
                matches!(event, watcher::Event::Apply(_)) && before != Some(print)
            }
            watcher::Event::Delete(obj) => {
                self.seen.remove(&object_key(obj));
                true
            }
            watcher::Event::Init => {
                self.seen.clear();
                false
            }
            watcher::Event::InitDone => true,
        }
    }
}

fn object_key<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// What a store keeps of an object: all of it but `metadata.managedFields` and the
/// annotations outside [`ANNOTATION_PREFIXES`] (which the decision core drops on reading,
/// so nothing it decides changes). Every write we make is a patch, never the cached object.
pub fn trim_for_cache<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.retain(|key, _| ANNOTATION_PREFIXES.iter().any(|p| key.starts_with(p)));
    }
}

/// `events` into the store of `writer`, each object trimmed first ([`trim_for_cache`]).
pub(crate) fn cached<K, S>(
    events: S,
    writer: reflector::store::Writer<K>,
) -> impl Stream<Item = watcher::Result<watcher::Event<K>>>
where
    K: Resource + Clone,
    K::DynamicType: Eq + std::hash::Hash + Clone,
    S: Stream<Item = watcher::Result<watcher::Event<K>>>,
{
    events.modify(trim_for_cache).reflect(writer)
}

fn spawn<K, T>(
    kind: &'static str,
    api: Api<K>,
    config: watcher::Config,
    tx: &Arc<watch::Sender<u64>>,
) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    T: DeserializeOwned + Fingerprint,
{
    let (reader, writer) = reflector::store();
    let stream = cached(watcher(api, config).default_backoff(), writer);
    let tx = Arc::clone(tx);
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut changes = Changes::default();
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    if changes.relevant::<K, T>(kind, &event) {
                        tx.send_modify(|n| *n = n.wrapping_add(1));
                    }
                }
                Err(e) => {
                    tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying with backoff")
                }
            }
        }
    });
    reader
}

/// The pool reflector (dynamic API: the kind is ours, not k8s-openapi's). Every pool event
/// counts as a change (pools change rarely). Without the CRD the watch fails and retries
/// with backoff, and the store stays empty.
fn spawn_pools(client: &Client, tx: &Arc<watch::Sender<u64>>) -> Store<DynamicObject> {
    let resource = pool_resource();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let writer = reflector::store::Writer::new(resource);
    let reader = writer.as_reader();
    let stream = cached(
        watcher(api, watcher::Config::default()).default_backoff(),
        writer,
    );
    let tx = Arc::clone(tx);
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                Ok(_) => tx.send_modify(|n| *n = n.wrapping_add(1)),
                Err(e) => {
                    tracing::debug!(error = %e, "LoadBalancerPool watch failed (CRD not installed?); retrying with backoff")
                }
            }
        }
    });
    reader
}

/// A stream that yields `()` each time the counter changes (for `reconcile_all_on`);
/// several changes between two polls yield one item.
pub fn change_stream(changes: watch::Receiver<u64>) -> impl Stream<Item = ()> + Send {
    futures::stream::unfold(changes, |mut rx| async move {
        rx.changed().await.ok()?;
        Some(((), rx))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_keep_objects_without_managed_fields_and_foreign_annotations() {
        let service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default", "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{\"kind\":\"Service\"}",
                "dualstack.io/addresses": "192.0.2.1",
                "service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0/8"},
              "managedFields": [{"manager": "kubectl", "operation": "Apply",
                                 "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}
        }))
        .unwrap();
        let (reader, writer) = reflector::store();
        let events = futures::stream::iter([
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(service.clone())),
            Ok(watcher::Event::InitDone),
        ]);
        let seen: Vec<_> = cached(events, writer).collect().await;
        assert_eq!(seen.len(), 3);
        let stored = reader.state();
        assert_eq!(stored.len(), 1);
        let meta = &stored[0].metadata;
        assert_eq!(meta.managed_fields, None);
        let kept: Vec<&str> = meta
            .annotations
            .iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(
            kept,
            [
                "dualstack.io/addresses",
                "service.beta.kubernetes.io/load-balancer-source-ranges"
            ]
        );
        // The decision core reads the trimmed object exactly as the original.
        let core = |s: &Service| convert::<Service, dualstack_lb::objects::Service>(s, "Service");
        assert_eq!(core(&stored[0]).unwrap(), core(&service).unwrap());
        assert_eq!(stored[0].spec, service.spec);
    }

    fn lease(renew: &str, addresses: &str) -> Lease {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "dualstack-agent-n1", "namespace": "dualstack-system",
                         "annotations": {"dualstack.io/addresses": addresses}},
            "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40, "renewTime": renew}
        }))
        .unwrap()
    }

    fn node(ready: &str, heartbeat: &str) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1"},
            "status": {"conditions": [{"type": "Ready", "status": ready,
                        "lastHeartbeatTime": heartbeat, "lastTransitionTime": "2025-01-01T00:00:00Z"}],
                       "addresses": [{"type": "InternalIP", "address": "192.0.2.1"}]}
        }))
        .unwrap()
    }

    #[test]
    fn lease_renewals_are_not_changes_but_new_addresses_are() {
        let mut c = Changes::default();
        type L = dualstack_lb::objects::Lease;
        let first = lease("2025-01-01T00:00:00.000000Z", "192.0.2.1");
        assert!(!c.relevant::<Lease, L>("Lease", &watcher::Event::Init));
        assert!(!c.relevant::<Lease, L>("Lease", &watcher::Event::InitApply(first.clone())));
        assert!(c.relevant::<Lease, L>("Lease", &watcher::Event::<Lease>::InitDone));
        let renewed = lease("2025-01-01T00:00:10.000000Z", "192.0.2.1");
        assert!(!c.relevant::<Lease, L>("Lease", &watcher::Event::Apply(renewed)));
        let moved = lease("2025-01-01T00:00:20.000000Z", "192.0.2.1,2001:db8::1");
        assert!(c.relevant::<Lease, L>("Lease", &watcher::Event::Apply(moved.clone())));
        assert!(c.relevant::<Lease, L>("Lease", &watcher::Event::Delete(moved)));
        // Seen again after the delete: a change.
        assert!(c.relevant::<Lease, L>("Lease", &watcher::Event::Apply(first)));
    }

    #[test]
    fn node_heartbeats_are_not_changes_but_readiness_is() {
        let mut c = Changes::default();
        type N = dualstack_lb::objects::Node;
        assert!(c.relevant::<Node, N>(
            "Node",
            &watcher::Event::Apply(node("True", "2025-01-01T00:00:00Z"))
        ));
        assert!(!c.relevant::<Node, N>(
            "Node",
            &watcher::Event::Apply(node("True", "2025-01-01T00:05:00Z"))
        ));
        assert!(c.relevant::<Node, N>(
            "Node",
            &watcher::Event::Apply(node("False", "2025-01-01T00:05:00Z"))
        ));
    }
}
