//! The controller's wiring: reflectors, leader election, `kube::runtime::Controller`.
//!
//! Every replica keeps its reflectors warm; only the replica holding the Lease
//! `<namespace>/dualstack-controller` (kube-lease-manager) runs the reconciler. Losing the
//! Lease stops the reconciler gracefully; winning it again starts a new one.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

use crate::cluster::{self, Cluster};
use crate::reconcile::{self, Context, Observer};

/// The leader-election Lease name.
pub const LEADER_LEASE: &str = "dualstack-controller";

/// How many Services are reconciled at once. Unbounded (kube-runtime's default), a change
/// that touches every Service starts one reconcile per Service at the same moment, each with
/// its own status PATCH on its own HTTP/1.1 connection: at 1,000 Services that was about 500
/// connections to the API server at once, and their buffers and tasks were most of the
/// controller's memory. A reconcile that reuses the cached decision costs one PATCH, so a
/// few at a time keep the API server as busy as it can usefully be.
pub const RECONCILE_CONCURRENCY: u16 = 16;

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// Electing or renewing the leader Lease failed.
    #[error("leader election failed: {0}")]
    Leader(#[from] kube_lease_manager::LeaseManagerError),
    /// The leader-election task ended while the controller still ran.
    #[error("leader election stopped unexpectedly")]
    LeaderTaskEnded,
}

/// Settings of a controller run.
pub struct Settings {
    /// The decision's settings (class, mode, pools).
    pub config: dualstack_lb::Config,
    /// Namespace of the leader-election Lease (the controller's own namespace).
    pub namespace: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// The decision's `now` (a function so tests can fix it).
    pub clock: Arc<dyn Fn() -> dualstack_lb::Timestamp + Send + Sync>,
    /// Called after every reconcile with its outcome and duration (the metrics).
    pub observer: Option<Observer>,
    /// Receives `true` while this replica leads.
    pub leader: Option<watch::Sender<bool>>,
    /// How long the leader Lease lasts without renewal: a standby replica takes over this
    /// long after the leader died.
    pub leader_lease_seconds: u64,
}

/// Runs until `shutdown` resolves.
pub async fn run(
    client: Client,
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ControllerError> {
    let watches = cluster::start(&client, &settings.config.lease_namespace, false);
    let manager = LeaseManagerBuilder::new(client.clone(), LEADER_LEASE)
        .with_namespace(settings.namespace.clone())
        .with_identity(settings.identity.clone())
        .with_duration(settings.leader_lease_seconds.max(2))
        .with_grace((settings.leader_lease_seconds / 6).clamp(1, 5))
        .build()
        .await?;
    let (mut leading, lease_task) = manager.watch().await;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let reporter = Reporter {
        controller: "dualstack-controller".to_string(),
        instance: Some(settings.identity.clone()),
    };
    loop {
        // Wait until we lead (or are asked to stop).
        let mut stop = stop_rx.clone();
        let mut announced = false;
        while !*leading.borrow_and_update() && !*stop.borrow() {
            if !announced {
                tracing::info!("standing by: another replica leads");
                announced = true;
            }
            tokio::select! {
                r = leading.changed() => if r.is_err() {
                    // The lease manager gave up: report why instead of leading blindly.
                    return match lease_task.await {
                        Ok(Err(e)) => Err(ControllerError::Leader(e)),
                        _ => Err(ControllerError::LeaderTaskEnded),
                    };
                },
                _ = stop.changed() => {},
            }
        }
        if *stop_rx.borrow() {
            break;
        }
        if let Some(tx) = &settings.leader {
            let _ = tx.send(true);
        }
        tracing::info!(identity = %settings.identity, "leading: starting the reconciler");
        // `Controller::new`'s own watch, with its store trimmed like the other reflectors'.
        let services: Api<Service> = Api::all(client.clone());
        let (reader, writer) = reflector::store();
        let trigger = crate::cluster::cached(watcher(services, watcher::Config::default()), writer)
            .applied_objects();
        let ctrl = Controller::for_stream(trigger, reader).with_config(
            controller::Config::default()
                .debounce(Duration::from_millis(500))
                .concurrency(RECONCILE_CONCURRENCY),
        );
        let cluster = Cluster {
            services: ctrl.store(),
            slices: watches.slices.clone(),
            nodes: watches.nodes.clone(),
            leases: watches.leases.clone(),
            pools: watches.pools.clone(),
        };
        let mut ctx = Context::new(
            client.clone(),
            settings.config.clone(),
            cluster,
            Recorder::new(client.clone(), reporter.clone()),
            Arc::clone(&settings.clock),
        );
        ctx.observer = settings.observer.clone();
        ctx.cluster_generation = Some(watches.changes.clone());
        let (kick_tx, kick_rx) = watch::channel(0u64);
        ctx.others_affected = Some(kick_tx.clone());
        let (retrigger_tx, retrigger_rx) = tokio::sync::mpsc::unbounded_channel();
        ctx.retrigger = Some(retrigger_tx);
        // Time alone changes the decision when an agent Lease expires: reconcile every
        // Service then (the first one decides anew, the others reuse it).
        let expiry = tokio::spawn(wake_at_expiry(
            watches.leases.clone(),
            Arc::clone(&ctx.decisions),
            Arc::clone(&settings.clock),
            kick_tx,
        ));
        let mut lost = leading.clone();
        let mut stop = stop_rx.clone();
        let until = async move {
            tokio::select! {
                _ = async { while lost.changed().await.is_ok() { if !*lost.borrow() { break } } } => {},
                _ = stop.changed() => {},
            }
        };
        let triggers = futures::stream::select(
            cluster::change_stream(watches.changes.clone()),
            cluster::change_stream(kick_rx),
        );
        let affected = futures::stream::unfold(retrigger_rx, |mut rx| async move {
            let key: dualstack_lb::ServiceKey = rx.recv().await?;
            Some((ObjectRef::new(&key.name).within(&key.namespace), rx))
        });
        ctrl.reconcile_all_on(triggers)
            .reconcile_on(affected)
            .graceful_shutdown_on(until)
            .run(reconcile::reconcile, reconcile::error_policy, Arc::new(ctx))
            .for_each(|result| async move {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "reconcile round");
                }
            })
            .await;
        expiry.abort();
        if let Some(tx) = &settings.leader {
            let _ = tx.send(false);
        }
        if *stop_rx.borrow() {
            break;
        }
        tracing::warn!("lost the leader Lease: reconciler stopped");
    }
    // Dropping the receiver makes the lease manager release the Lease.
    drop(leading);
    let _ = lease_task.await;
    Ok(())
}

/// Bumps `kick` whenever the set of expired agent Leases changes — time alone changes the
/// decision then (a node's agent stopped renewing, or renews again after a gap) and no watch
/// event says so — and when the cached decision's own deadline passes (a prefix's lifetime
/// or grace time ends). Checked twice a second against the Lease store; renewals of live
/// Leases wake nobody.
async fn wake_at_expiry(
    leases: kube::runtime::reflector::Store<k8s_openapi::api::coordination::v1::Lease>,
    decisions: Arc<crate::decision_cache::DecisionCache>,
    clock: Arc<dyn Fn() -> dualstack_lb::Timestamp + Send + Sync>,
    kick: watch::Sender<u64>,
) {
    let mut expired_before: Option<Vec<String>> = None;
    let mut kicked_for: Option<dualstack_lb::Timestamp> = None;
    loop {
        let at = clock();
        if let Some(deadline) = decisions.valid_until().await
            && deadline <= at
            && kicked_for != Some(deadline)
        {
            kicked_for = Some(deadline);
            kick.send_modify(|n| *n = n.wrapping_add(1));
        }
        let now = at.unix_micros();
        let mut expired: Vec<String> = leases
            .state()
            .iter()
            .filter(|l| {
                let spec = l.spec.as_ref();
                let renewed = spec
                    .and_then(|s| s.renew_time.as_ref())
                    .map(|t| t.0.as_microsecond());
                let seconds = spec.and_then(|s| s.lease_duration_seconds);
                match (renewed, seconds) {
                    (Some(r), Some(d)) => r + i64::from(d) * 1_000_000 < now,
                    _ => true,
                }
            })
            .filter_map(|l| l.metadata.name.clone())
            .collect();
        expired.sort();
        if expired_before.as_ref().is_some_and(|b| *b != expired) {
            kick.send_modify(|n| *n = n.wrapping_add(1));
        }
        expired_before = Some(expired);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
