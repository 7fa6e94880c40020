//! Reflectors on what the decision reads — Services, EndpointSlices, Nodes and our agent
//! Leases — and the [`Snapshot`] built from their stores.
//!
//! Every watcher restarts with kube-runtime's default exponential backoff after API errors
//! or watch expiry; each event (including a re-list) bumps a change counter, which the
//! controller and the agent use as "something may have changed, decide again".

use std::sync::Arc;

use dualstack_lb::Snapshot;
use dualstack_lb::config::LEASE_LABEL;
use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
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
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub nodes: Store<Node>,
    pub leases: Store<Lease>,
}

impl Cluster {
    /// The stores' current contents as a decision input.
    pub fn snapshot(&self) -> Result<Snapshot, ConvertError> {
        Ok(Snapshot {
            services: all(&self.services, "Service")?,
            nodes: all(&self.nodes, "Node")?,
            endpoint_slices: all(&self.slices, "EndpointSlice")?,
            leases: all(&self.leases, "Lease")?,
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
    pub slices: Store<EndpointSlice>,
    pub nodes: Store<Node>,
    pub leases: Store<Lease>,
    /// Only when asked for: the controller gets its Services from its `Controller`.
    pub services: Option<Store<Service>>,
    pub changes: watch::Receiver<u64>,
}

/// Starts the reflectors as background tasks: EndpointSlices, Nodes and Services
/// cluster-wide (read only), agent Leases in `lease_namespace` only, selected by label.
pub fn start(client: &Client, lease_namespace: &str, with_services: bool) -> Watches {
    let (tx, changes) = watch::channel(0u64);
    let tx = Arc::new(tx);
    let slices = spawn(Api::all(client.clone()), watcher::Config::default(), &tx);
    let nodes = spawn(Api::all(client.clone()), watcher::Config::default(), &tx);
    let leases = spawn(
        Api::namespaced(client.clone(), lease_namespace),
        watcher::Config::default().labels(&format!("{}={}", LEASE_LABEL.0, LEASE_LABEL.1)),
        &tx,
    );
    let services =
        with_services.then(|| spawn(Api::all(client.clone()), watcher::Config::default(), &tx));
    Watches {
        slices,
        nodes,
        leases,
        services,
        changes,
    }
}

fn spawn<K>(api: Api<K>, config: watcher::Config, tx: &Arc<watch::Sender<u64>>) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, config).default_backoff().reflect(writer);
    let tx = Arc::clone(tx);
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => {
                    tx.send_modify(|n| *n = n.wrapping_add(1));
                }
                Err(e) => {
                    tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying with backoff")
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
