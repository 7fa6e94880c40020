//! The in-cluster agent's runtime (`dualstack agent` without `--snapshot`): [`run`] with
//! [`Options`]; the binary only parses its flags into them.
//!
//! Why a crate of its own, beside the controller's runtime in `dualstack_kube::controller`:
//! the agent runtime needs both the Kubernetes client (`dualstack-kube`: reflectors, Leases,
//! health and metrics) and the data plane (`dualstack-agent`, `dualstack-dataplane`,
//! `dualstack-announce`). As a module of `dualstack-kube` it would make the controller's
//! crate, and every build of its tests, depend on the netlink and nf_tables code; inside
//! `dualstack-agent` it would give the sync engine a Kubernetes client, which it has none of
//! by design (the demo and the offline agent use it without a cluster). On top of both, it
//! creates no cycle and rebuilds only when either side changes.
//!
//! Three loops, one process:
//! * **addresses**: rtnetlink dump + watch of this node's addresses and on-link IPv6
//!   prefixes (`dualstack_agent::netlink`), restarted with backoff if the socket fails;
//! * **Lease**: renews `<lease namespace>/dualstack-agent-<node>` every 10 s and at once
//!   when the addresses change (`dualstack_kube::lease`), with the identity of the ruleset
//!   the sync wants (annotation `dualstack.io/ruleset`; a new one is renewed at once);
//! * **sync** (`nftables` mode only): reflectors on Services, EndpointSlices, Nodes and
//!   agent Leases; on any change (debounced) the decision runs and this node's frontends
//!   are programmed — full at start, incremental for small changes — and every
//!   `--resync-seconds` the table is read back and drift repaired
//!   (`dualstack_agent::Syncer`). In `kube-proxy` mode nothing is programmed. After every
//!   sync the ruleset it wanted — whether or not the kernel took it — is published on the
//!   health endpoint (`GET /ruleset`) and in the Lease, for `dualstack doctor node`.
//! * **announce** (both modes): on every change and every second (an announcer's Lease can
//!   expire without any object changing), the decision runs and this node's pool addresses
//!   go to the ARP/NDP announcer (`dualstack_agent::announce`); gratuitous ARP / unsolicited
//!   NAs on takeover and every `--announce-interval-seconds`. Without pools nothing is
//!   announced.
//!
//! SIGTERM/SIGINT stop the loops and leave the rules in place, so a rolling update drops
//! no traffic; `dualstack agent --cleanup` removes them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dualstack_agent::announce::AnnounceStep;
use dualstack_agent::{AgentError, SyncKind, SyncReport, Syncer};
use dualstack_dataplane::Dataplane;
use dualstack_kube::cluster::{self, Cluster};
use dualstack_kube::convert::ConvertError;
use dualstack_kube::health::{self, Health, HealthError};
use dualstack_kube::lease;
use dualstack_lb::live::NodeReport;
use dualstack_lb::time::{ClockError, clock};
use dualstack_lb::{Config, Mode};
use tokio::sync::watch;

/// Wait this long after a change for more before syncing.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Everything one run of the agent needs; the binary fills it from `dualstack agent`'s flags.
pub struct Options {
    /// This node's name, as in `kubectl get nodes`: whose frontends to program, whose Lease
    /// to renew and whose pool addresses to announce.
    pub node: String,
    /// The data plane programming our table (chosen by probing the kernel).
    pub dataplane: Box<dyn Dataplane>,
    /// The decision's settings (class, mode, pools, Lease namespace).
    pub config: Config,
    /// Where `/healthz`, `/readyz`, `/metrics` and `/ruleset` are served.
    pub health_addr: SocketAddr,
    /// How long the agent's Lease stays valid without a renewal (renewed 4 times as often).
    pub lease_duration_seconds: i32,
    /// How often the table is read back and drift repaired (at least 1 s).
    pub resync: Duration,
    /// Interfaces whose addresses are not node addresses (trailing `*` = prefix).
    pub exclude_interfaces: Vec<String>,
    /// How often this node's pool addresses are re-announced; zero: only on takeover.
    pub announce_interval: Duration,
}

/// Why the agent could not start. Once it runs, failures are retried and logged instead.
#[derive(Debug, thiserror::Error)]
pub enum AgentLiveError {
    /// The health and metrics port could not be bound.
    #[error(transparent)]
    Health(#[from] HealthError),
    /// Neither the in-cluster configuration nor `KUBECONFIG` gave a usable client.
    #[error("connecting to the Kubernetes API (in-cluster config or KUBECONFIG)")]
    Connect(#[source] kube::Error),
    /// The reflectors were started without the Service one (a bug in the wiring).
    #[error("the Service reflector did not start")]
    NoServiceReflector,
    /// A reflector ended before its first list arrived.
    #[error("waiting for the first list of Services, EndpointSlices, Nodes and Leases")]
    WaitReady(#[source] kube::runtime::reflector::store::WriterDropped),
}

/// Runs the agent until `shutdown` resolves (see the module docs), then returns, leaving
/// the rules in place.
pub async fn run(
    opts: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentLiveError> {
    let Options {
        node,
        dataplane: nft,
        config,
        health_addr,
        lease_duration_seconds,
        resync,
        exclude_interfaces: excluded,
        announce_interval,
    } = opts;
    let health = Arc::new(Health::default());
    health::serve(health_addr, Arc::clone(&health)).await?;
    let client = kube::Client::try_default()
        .await
        .map_err(AgentLiveError::Connect)?;
    tracing::info!(node = %node, mode = %config.mode, table = %nft.table(), dataplane = nft.kind(), "agent starting");

    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    // Addresses.
    let (addr_tx, addresses) = watch::channel(NodeReport::default());
    tokio::spawn(async move {
        let mut delay = Duration::from_secs(1);
        let now = || clock().unwrap_or(dualstack_lb::Timestamp::from_unix_micros(0));
        loop {
            match dualstack_agent::netlink::watch_live(excluded.clone(), now, addr_tx.clone()).await
            {
                Ok(()) => return,
                Err(e) => tracing::warn!(error = %e, retry_in = ?delay, "address watch failed"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(60));
        }
    });

    // Lease.
    let lease_task = tokio::spawn(renew_loop(
        client.clone(),
        config.clone(),
        node.clone(),
        lease_duration_seconds,
        addresses,
        Arc::clone(&health),
        stop.clone(),
    ));

    // Sync and announce read the same reflectors.
    let watches = cluster::start(&client, &config.lease_namespace, true);
    let Some(services) = watches.services.clone() else {
        return Err(AgentLiveError::NoServiceReflector);
    };
    let cluster = Cluster {
        services,
        slices: watches.slices.clone(),
        nodes: watches.nodes.clone(),
        leases: watches.leases.clone(),
        pools: watches.pools.clone(),
    };
    let mut stop_wait = stop.clone();
    tokio::select! {
        r = cluster.wait_ready() => r.map_err(AgentLiveError::WaitReady)?,
        _ = stop_wait.changed() => return Ok(()),
    }
    let announce = dualstack_announce::Options {
        interval: announce_interval,
        ..dualstack_announce::Options::default()
    };
    let announce_task = tokio::spawn(announce_loop(
        cluster.clone(),
        watches.changes.clone(),
        config.clone(),
        AnnounceStep::new(node.clone(), announce),
        stop.clone(),
    ));
    if config.mode == Mode::KubeProxy {
        tracing::info!(
            "kube-proxy mode: programming nothing, reporting addresses and announcing pool addresses"
        );
        let _ = lease_task.await;
        let _ = announce_task.await;
        return Ok(());
    }
    sync_loop(
        cluster,
        watches.changes,
        config,
        Syncer::new(nft, node),
        resync.max(Duration::from_secs(1)),
        health,
        stop,
    )
    .await;
    let _ = lease_task.await;
    let _ = announce_task.await;
    tracing::info!("stopped; rules left in place (use `dualstack agent --cleanup` to remove them)");
    Ok(())
}

async fn renew_loop(
    client: kube::Client,
    config: Config,
    node: String,
    lease_seconds: i32,
    mut addresses: watch::Receiver<NodeReport>,
    health: Arc<Health>,
    mut stop: watch::Receiver<bool>,
) {
    let kube_proxy = config.mode == Mode::KubeProxy;
    loop {
        let current = addresses.borrow_and_update().clone();
        match clock() {
            Ok(now) => {
                let ruleset = health.ruleset_summary().map(|s| s.to_string());
                let renewed = lease::renew_with_ruleset(
                    &client,
                    &config,
                    &node,
                    &current,
                    now,
                    lease_seconds,
                    ruleset.as_deref(),
                )
                .await;
                match renewed {
                    Ok(_) => {
                        health.metrics.lease_renewed(true);
                        if kube_proxy {
                            health.set_ready(true);
                        }
                    }
                    Err(e) => {
                        health.metrics.lease_renewed(false);
                        tracing::warn!(error = %e, "could not renew the agent Lease");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "no usable clock"),
        }
        tokio::select! {
            _ = tokio::time::sleep(lease::renew_every(lease_seconds)) => {},
            r = addresses.changed() => {
                if r.is_ok() {
                    let report = addresses.borrow();
                    tracing::info!(
                        addresses = %dualstack_lb::live::format_live_addresses(&report.addresses),
                        prefixes = %dualstack_lb::prefixes::format_prefixes(&report.prefixes),
                        "addresses changed"
                    );
                }
            },
            _ = health.ruleset_changed.notified() => {},
            _ = stop.changed() => return,
        }
    }
}

/// Re-decide this often even without changes: a Lease expiring changes the announcer.
const ANNOUNCE_CHECK: Duration = Duration::from_secs(1);

/// Feeds this node's pool addresses from each decision to the announcer (see module docs).
async fn announce_loop(
    cluster: Cluster,
    mut changes: watch::Receiver<u64>,
    config: Config,
    mut step: AnnounceStep,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(ANNOUNCE_CHECK);
    let mut announcing = false;
    loop {
        match cluster.snapshot() {
            Ok(snapshot) if !snapshot.pools.is_empty() || announcing => match clock() {
                Ok(now) => {
                    let decision = dualstack_lb::decide(&snapshot, &config, now);
                    let report = tokio::task::block_in_place(|| step.apply(&decision));
                    announcing = !report.targets.is_empty();
                    if report.changed || !report.problems.is_empty() {
                        tracing::info!("{}", report.to_string().trim_end());
                    }
                }
                Err(e) => tracing::error!(error = %e, "no usable clock"),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the cluster for announcements"),
        }
        tokio::select! {
            r = changes.changed() => if r.is_err() { return },
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
    }
}

async fn sync_loop(
    cluster: Cluster,
    mut changes: watch::Receiver<u64>,
    config: Config,
    mut syncer: Syncer<Box<dyn Dataplane>>,
    resync: Duration,
    health: Arc<Health>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(resync);
    ticker.tick().await;
    let mut pending = true; // full sync at start
    let mut failures: u32 = 0;
    loop {
        if pending {
            pending = false;
            let started = Instant::now();
            let result = cluster
                .snapshot()
                .map_err(SyncFailure::from)
                .and_then(|snapshot| {
                    let now = clock()?;
                    tokio::task::block_in_place(|| syncer.sync_owned(snapshot, &config, now))
                        .map_err(SyncFailure::from)
                });
            if let (Some(wanted), Ok(now)) = (syncer.wanted(), clock()) {
                health.publish(syncer.node(), wanted, &now.to_string());
            }
            if record(&health, result, started.elapsed()) {
                failures = 0;
            } else {
                failures = failures.saturating_add(1);
                pending = true;
            }
        }
        let retry = if pending {
            Duration::from_millis(500).saturating_mul(1 << failures.min(7))
        } else {
            // Time alone changes the decision at a prefix's deadline: sync again then.
            match (syncer.next_change(), clock()) {
                (Some(at), Ok(now)) => Duration::from_micros(
                    u64::try_from(at.unix_micros().saturating_sub(now.unix_micros()))
                        .unwrap_or(0)
                        .saturating_add(1),
                ),
                _ => Duration::MAX,
            }
        };
        tokio::select! {
            r = changes.changed() => {
                if r.is_err() { return; }
                tokio::time::sleep(DEBOUNCE).await;
                changes.mark_unchanged();
                pending = true;
            }
            _ = ticker.tick() => {
                let started = Instant::now();
                let result = tokio::task::block_in_place(|| syncer.resync());
                match result {
                    Ok(Some(report)) if report.kind != SyncKind::Unchanged => {
                        tracing::warn!("{}", report.to_string().trim_end());
                        record(&health, Ok(report), started.elapsed());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        record(&health, Err(SyncFailure::from(e)), started.elapsed());
                        syncer.invalidate();
                        pending = true;
                    }
                }
            }
            _ = tokio::time::sleep(retry) => pending = true,
            _ = stop.changed() => return,
        }
    }
}

/// Why one sync did not happen; each part is logged with its causes, then retried.
#[derive(Debug, thiserror::Error)]
enum SyncFailure {
    #[error(transparent)]
    Snapshot(#[from] ConvertError),
    #[error(transparent)]
    Clock(#[from] ClockError),
    #[error(transparent)]
    Sync(#[from] AgentError),
}

/// `error: cause: cause …`, one line (as `anyhow` prints with `{:#}`).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        line.push_str(": ");
        line.push_str(&e.to_string());
        cause = e.source();
    }
    line
}

/// Logs and records a sync; returns whether it succeeded.
fn record(health: &Health, result: Result<SyncReport, SyncFailure>, took: Duration) -> bool {
    match result {
        Ok(report) => {
            let kind = match &report.kind {
                SyncKind::Full(_) => "full",
                SyncKind::Incremental { .. } => "incremental",
                SyncKind::Difference { .. } => "difference",
                SyncKind::Unchanged => "unchanged",
                SyncKind::NotProgrammed => "not-programmed",
            };
            health.metrics.synced(kind, took);
            health.metrics.programmed(
                report.serving(dualstack_addr::Family::V4),
                report.serving(dualstack_addr::Family::V6),
            );
            if !report.excluded.is_empty() {
                // Frontends left out: said on every sync until renamed, unchanged or not.
                tracing::warn!(took = ?took, "{}", report.to_string().trim_end());
            } else if report.kind != SyncKind::Unchanged {
                tracing::info!(took = ?took, "{}", report.to_string().trim_end());
            }
            health.set_ready(true);
            true
        }
        Err(e) => {
            health.metrics.synced("error", took);
            if let Ok(now) = clock() {
                health
                    .metrics
                    .last_sync_error
                    .set(now.unix_micros() / 1_000_000);
            }
            tracing::error!(error = %with_causes(&e), "sync failed; the previous rules stay in force");
            false
        }
    }
}
