//! Prometheus metrics of the controller and the agent (one registry, prefix `dualstack`).
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `dualstack_reconciles_total` | counter | `outcome` (`synced`, `ignored`, `released`, `not-in-store`, `conflict`, `api`, `convert`) | controller reconciles |
//! | `dualstack_reconcile_duration_seconds` | histogram | | time per reconcile |
//! | `dualstack_leader` | gauge | | 1 while this controller replica leads |
//! | `dualstack_syncs_total` | counter | `kind` (`full`, `incremental`, `unchanged`, `not-programmed`, `error`) | agent data-plane syncs |
//! | `dualstack_sync_duration_seconds` | histogram | `kind` | time per agent sync |
//! | `dualstack_programmed_frontends` | gauge | `family` (`ipv4`, `ipv6`) | frontends serving that family on this node |
//! | `dualstack_last_sync_error_timestamp_seconds` | gauge | | Unix time of the last failed sync (0: none) |
//! | `dualstack_lease_renewals_total` | counter | `result` (`ok`, `error`) | agent Lease renewals |

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FamilyLabel {
    pub family: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

fn seconds_histogram() -> Histogram {
    // 1 ms … ~32 s
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric, registered in [`Metrics::registry`].
pub struct Metrics {
    pub registry: Registry,
    pub reconciles: Family<OutcomeLabel, Counter>,
    pub reconcile_duration: Histogram,
    pub leader: Gauge,
    pub syncs: Family<KindLabel, Counter>,
    pub sync_duration: Family<KindLabel, Histogram>,
    pub frontends: Family<FamilyLabel, Gauge>,
    pub last_sync_error: Gauge,
    pub lease_renewals: Family<ResultLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("dualstack");
        let reconciles = Family::<OutcomeLabel, Counter>::default();
        let reconcile_duration = seconds_histogram();
        let leader = Gauge::default();
        let syncs = Family::<KindLabel, Counter>::default();
        let sync_duration = Family::<KindLabel, Histogram>::new_with_constructor(
            seconds_histogram as fn() -> Histogram,
        );
        let frontends = Family::<FamilyLabel, Gauge>::default();
        let last_sync_error = Gauge::default();
        let lease_renewals = Family::<ResultLabel, Counter>::default();
        registry.register(
            "reconciles",
            "Controller reconciles by outcome",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time per controller reconcile",
            reconcile_duration.clone(),
        );
        registry.register(
            "leader",
            "1 while this controller replica leads",
            leader.clone(),
        );
        registry.register("syncs", "Agent data-plane syncs by kind", syncs.clone());
        registry.register(
            "sync_duration_seconds",
            "Time per agent data-plane sync",
            sync_duration.clone(),
        );
        registry.register(
            "programmed_frontends",
            "Frontends programmed on this node per family",
            frontends.clone(),
        );
        registry.register(
            "last_sync_error_timestamp_seconds",
            "Unix time of the last failed agent sync (0: none)",
            last_sync_error.clone(),
        );
        registry.register(
            "lease_renewals",
            "Agent Lease renewals by result",
            lease_renewals.clone(),
        );
        Metrics {
            registry,
            reconciles,
            reconcile_duration,
            leader,
            syncs,
            sync_duration,
            frontends,
            last_sync_error,
            lease_renewals,
        }
    }

    pub fn reconciled(&self, outcome: &str, took: Duration) {
        self.reconciles
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    pub fn synced(&self, kind: &str, took: Duration) {
        let label = KindLabel {
            kind: kind.to_string(),
        };
        self.syncs.get_or_create(&label).inc();
        self.sync_duration
            .get_or_create(&label)
            .observe(took.as_secs_f64());
    }

    pub fn programmed(&self, ipv4: usize, ipv6: usize) {
        for (family, n) in [("ipv4", ipv4), ("ipv6", ipv6)] {
            self.frontends
                .get_or_create(&FamilyLabel {
                    family: family.to_string(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    pub fn lease_renewed(&self, ok: bool) {
        self.lease_renewals
            .get_or_create(&ResultLabel {
                result: if ok { "ok" } else { "error" }.to_string(),
            })
            .inc();
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
