//! `dualstack controller`: the in-cluster LoadBalancer controller.
//!
//! Runs as a Deployment with several replicas; the one holding the Lease
//! `<namespace>/dualstack-controller` reconciles, the others stand by with warm caches. It
//! writes `status.loadBalancer` and our conditions on the Services it owns, Events, and the
//! `service.kubernetes.io/load-balancer-cleanup` finalizer (see `dualstack_kube::reconcile`).
//! SIGTERM/SIGINT stop it gracefully and release the Lease.

use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use dualstack_kube::controller::{self, Settings};
use dualstack_kube::health::{self, Health};
use dualstack_signal::shutdown_signal;

use dualstack_lb::time::clock;

use super::decision_input::DecisionArgs;
use crate::exit::Outcome;
use crate::logging::{self, LogFormat};

#[derive(Debug, Args)]
pub struct ControllerArgs {
    #[command(flatten)]
    pub decision: DecisionArgs,
    /// Namespace of the leader-election Lease (the controller's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "dualstack-system")]
    pub namespace: String,
    /// This replica's identity in leader election (its pod name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Health and metrics listen address (`/healthz`, `/readyz`, `/metrics`).
    #[arg(
        long,
        env = "DUALSTACK_HEALTH_ADDR",
        default_value = "0.0.0.0:9654",
        value_name = "ADDR:PORT"
    )]
    pub health_addr: std::net::SocketAddr,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// How long the leader Lease lasts without renewal (a standby takes over this long after
    /// the leader died).
    #[arg(long, env = "DUALSTACK_LEADER_LEASE_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(2..=600), value_name = "SECONDS")]
    pub leader_lease_seconds: u64,
    /// Uninstall: clear our status and remove our finalizer on every Service of our class,
    /// then exit (stop the controller Deployment first).
    #[arg(long)]
    pub release_all: bool,
}

pub fn run(args: ControllerArgs) -> anyhow::Result<Outcome> {
    logging::init(args.log_format);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: ControllerArgs) -> anyhow::Result<Outcome> {
    if args.release_all {
        return release_all(&args).await;
    }
    let health = Arc::new(Health::default());
    health::serve(args.health_addr, Arc::clone(&health)).await?;
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in-cluster config or KUBECONFIG)")?;
    let version = client
        .apiserver_version()
        .await
        .context("reaching the Kubernetes API server")?;
    tracing::info!(server = %version.git_version, class = %args.decision.class, mode = %args.decision.mode, "connected");
    health.set_ready(true);

    let identity = args.identity.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| format!("dualstack-controller-{}", std::process::id()))
    });
    let (leader_tx, mut leader_rx) = tokio::sync::watch::channel(false);
    let gauge = Arc::clone(&health);
    tokio::spawn(async move {
        while leader_rx.changed().await.is_ok() {
            let leading = *leader_rx.borrow();
            gauge.metrics.leader.set(i64::from(leading));
        }
    });
    let observed = Arc::clone(&health);
    let settings = Settings {
        config: args.decision.config(),
        namespace: args.namespace.clone(),
        identity,
        clock: Arc::new(|| clock().unwrap_or(dualstack_lb::Timestamp::from_unix_micros(0))),
        observer: Some(Arc::new(move |outcome, took| {
            observed.metrics.reconciled(outcome, took);
        })),
        leader: Some(leader_tx),
        leader_lease_seconds: args.leader_lease_seconds,
    };
    controller::run(client, settings, shutdown_signal())
        .await
        .context("running the controller")?;
    tracing::info!("stopped");
    Ok(Outcome::Ok)
}

async fn release_all(args: &ControllerArgs) -> anyhow::Result<Outcome> {
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in-cluster config or KUBECONFIG)")?;
    let class = &args.decision.class;
    let done = dualstack_kube::uninstall::release_all(&client, class)
        .await
        .context("releasing Services")?;
    for service in &done.services {
        println!("released {service}: status cleared, finalizer removed");
    }
    println!(
        "{} of {} Service(s) released (class {class}); nothing else was changed",
        done.services.len(),
        done.seen
    );
    Ok(Outcome::Ok)
}
