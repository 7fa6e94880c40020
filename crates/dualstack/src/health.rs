//! The health and metrics server of `controller` and `agent`, on one port:
//! `/healthz` (the process runs), `/readyz` (200 once ready: the agent after its first
//! successful sync, the controller once connected to the API server), `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

/// Shared between the server and the loops that report readiness and metrics.
#[derive(Default)]
pub struct Health {
    ready: AtomicBool,
    pub metrics: Metrics,
}

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(health): State<Arc<Health>>) -> impl IntoResponse {
    if health.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(health): State<Arc<Health>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        health.metrics.encode(),
    )
}

/// The routes (separate from [`serve`] so tests can call them without a socket).
pub fn router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

/// Binds `addr` (an error names it) and serves in the background.
pub async fn serve(addr: SocketAddr, health: Arc<Health>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the health server to --health-addr {addr}"))?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(health)).await {
            tracing::error!(error = %e, "health server stopped");
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readyz_follows_readiness_and_metrics_lists_every_family() {
        let health = Arc::new(Health::default());
        let status = |h: &Arc<Health>| {
            let h = Arc::clone(h);
            async move { readyz(State(h)).await.into_response().status() }
        };
        assert_eq!(status(&health).await, StatusCode::SERVICE_UNAVAILABLE);
        health.set_ready(true);
        assert_eq!(status(&health).await, StatusCode::OK);

        health
            .metrics
            .reconciled("synced", std::time::Duration::from_millis(3));
        health
            .metrics
            .synced("full", std::time::Duration::from_millis(20));
        health.metrics.programmed(2, 3);
        health.metrics.leader.set(1);
        let text = health.metrics.encode();
        for line in [
            "dualstack_reconciles_total{outcome=\"synced\"} 1",
            "dualstack_reconcile_duration_seconds_count 1",
            "dualstack_syncs_total{kind=\"full\"} 1",
            "dualstack_sync_duration_seconds_count{kind=\"full\"} 1",
            "dualstack_programmed_frontends{family=\"ipv4\"} 2",
            "dualstack_programmed_frontends{family=\"ipv6\"} 3",
            "dualstack_leader 1",
            "dualstack_last_sync_error_timestamp_seconds 0",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
