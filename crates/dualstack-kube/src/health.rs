//! The health and metrics server of `controller` and `agent`, on one port:
//! `/healthz` (the process runs), `/readyz` (200 once ready: the agent after its first
//! successful sync, the controller once connected to the API server), `/metrics`, and on
//! the agent `/ruleset`: the ruleset it wants in the kernel, as the JSON of
//! [`dualstack_ruleset::published::Published`] (503 until it has one; `dualstack doctor node
//! --agent-url` compares the kernel's table with it).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use dualstack_ruleset::Ruleset;
use dualstack_ruleset::published::{Published, Summary};

use crate::metrics::{Metrics, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};

/// The health server could not start.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The listen address is taken, not local, or needs a privilege we lack.
    #[error("binding the health server to --health-addr {addr}")]
    Bind {
        /// The address asked for (`--health-addr`).
        addr: SocketAddr,
        /// Why the kernel refused it.
        #[source]
        source: std::io::Error,
    },
}

/// Shared between the server and the loops that report readiness and metrics.
#[derive(Default)]
pub struct Health {
    ready: AtomicBool,
    /// The counters and gauges `/metrics` serves; the loops record into them directly.
    pub metrics: Metrics,
    /// The agent's wanted ruleset (`/ruleset`, Lease annotation `dualstack.io/ruleset`).
    ruleset: Mutex<Option<Published>>,
    /// Woken when a new generation is published (the Lease loop renews at once).
    pub ruleset_changed: tokio::sync::Notify,
}

impl Health {
    /// Sets what `/readyz` answers: the agent after its first successful sync (or, in
    /// kube-proxy mode, its first Lease renewal), the controller once the API server answers.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Records that `node` wants `ruleset` at `now` (RFC 3339): a new generation when it
    /// differs from the last one. An invalid ruleset (which the sync engine never hands
    /// out) is not published.
    pub fn publish(&self, node: &str, ruleset: &Ruleset, now: &str) {
        let mut current = self.ruleset.lock().unwrap_or_else(PoisonError::into_inner);
        if let Ok(next) = Published::next(current.as_ref(), node, ruleset.clone(), now) {
            let changed = current.as_ref() != Some(&next);
            *current = Some(next);
            if changed {
                self.ruleset_changed.notify_one();
            }
        }
    }

    /// What `/ruleset` serves.
    pub fn published(&self) -> Option<Published> {
        self.ruleset
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The Lease annotation value, once something is published.
    pub fn ruleset_summary(&self) -> Option<Summary> {
        self.ruleset
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(Published::summary)
    }
}

/// `/ruleset`: the published ruleset as JSON, or 503 before the first sync.
async fn ruleset(State(health): State<Arc<Health>>) -> axum::response::Response {
    match health.published().map(|p| serde_json::to_string_pretty(&p)) {
        Some(Ok(json)) => {
            ([(header::CONTENT_TYPE, "application/json")], json + "\n").into_response()
        }
        Some(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no ruleset published yet (no sync has run; the controller has none)\n",
        )
            .into_response(),
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

/// OpenMetrics when the client asks for it (Prometheus does), else text format 0.0.4.
async fn metrics(State(health): State<Arc<Health>>, headers: HeaderMap) -> impl IntoResponse {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
            health.metrics.encode(),
        )
    } else {
        (
            [(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)],
            health.metrics.encode_text(),
        )
    }
}

/// The routes (separate from [`serve`] so tests can call them without a socket).
pub fn router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/ruleset", get(ruleset))
        .with_state(health)
}

/// Binds `addr` (an error names it) and serves in the background.
pub async fn serve(addr: SocketAddr, health: Arc<Health>) -> Result<(), HealthError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HealthError::Bind { addr, source })?;
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

    #[tokio::test]
    async fn metrics_negotiates_openmetrics_or_text() {
        let health = Arc::new(Health::default());
        health
            .metrics
            .reconciled("synced", std::time::Duration::from_millis(3));
        let get = |accept: Option<&'static str>| {
            let h = Arc::clone(&health);
            async move {
                let mut headers = HeaderMap::new();
                if let Some(a) = accept {
                    headers.insert(header::ACCEPT, a.parse().unwrap());
                }
                let response = metrics(State(h), headers).await.into_response();
                let content_type = response.headers()[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .to_string();
                let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .unwrap();
                (content_type, String::from_utf8(body.to_vec()).unwrap())
            }
        };
        // What Prometheus sends.
        let (ct, body) = get(Some(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        ))
        .await;
        assert_eq!(ct, OPENMETRICS_CONTENT_TYPE);
        assert!(body.contains("# TYPE dualstack_reconciles counter") && body.ends_with("# EOF\n"));
        for accept in [None, Some("text/plain"), Some("*/*")] {
            let (ct, body) = get(accept).await;
            assert_eq!(ct, TEXT_CONTENT_TYPE, "Accept: {accept:?}");
            assert!(body.contains("# TYPE dualstack_reconciles_total counter"));
            assert!(!body.contains("# EOF"));
        }
    }
}
