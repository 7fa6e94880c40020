//! Prometheus metrics of the controller and the agent (one registry, prefix `dualstack`),
//! served as OpenMetrics or, to clients that do not ask for it, text format 0.0.4.
//! Meanings in detail: `docs/metrics.md`.
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `dualstack_reconciles_total` | counter | `outcome` (`synced`, `ignored`, `released`, `not-in-store`, `conflict`, `api`, `convert`) | controller reconciles |
//! | `dualstack_reconcile_duration_seconds` | histogram | | time per reconcile |
//! | `dualstack_leader` | gauge | | 1 while this controller replica leads |
//! | `dualstack_syncs_total` | counter | `kind` (`full`, `incremental`, `difference`, `unchanged`, `not-programmed`, `error`) | agent data-plane syncs |
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

/// Label of `dualstack_reconciles_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// How the reconcile ended (`synced`, `ignored`, `released`, …; see the module table).
    pub outcome: String,
}

/// Label of the agent's sync counter and histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// What the sync did (`full`, `incremental`, `difference`, `unchanged`,
    /// `not-programmed`, `error`).
    pub kind: String,
}

/// Label of `dualstack_programmed_frontends`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FamilyLabel {
    /// `ipv4` or `ipv6`.
    pub family: String,
}

/// Label of `dualstack_lease_renewals_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `ok` or `error`.
    pub result: String,
}

fn seconds_histogram() -> Histogram {
    // 1 ms … ~32 s
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric, registered in [`Metrics::registry`].
pub struct Metrics {
    /// Holds every metric below under the `dualstack` prefix; what `/metrics` encodes.
    pub registry: Registry,
    /// `dualstack_reconciles_total`: controller reconciles by outcome.
    pub reconciles: Family<OutcomeLabel, Counter>,
    /// `dualstack_reconcile_duration_seconds`: time per controller reconcile.
    pub reconcile_duration: Histogram,
    /// `dualstack_leader`: 1 while this controller replica holds the leader Lease.
    pub leader: Gauge,
    /// `dualstack_syncs_total`: agent data-plane syncs by kind.
    pub syncs: Family<KindLabel, Counter>,
    /// `dualstack_sync_duration_seconds`: time per agent sync, by kind.
    pub sync_duration: Family<KindLabel, Histogram>,
    /// `dualstack_programmed_frontends`: frontends serving each family on this node.
    pub frontends: Family<FamilyLabel, Gauge>,
    /// `dualstack_last_sync_error_timestamp_seconds`: Unix time of the last failed sync.
    pub last_sync_error: Gauge,
    /// `dualstack_lease_renewals_total`: agent Lease renewals by result.
    pub lease_renewals: Family<ResultLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered under the `dualstack` prefix.
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

    /// Counts one controller reconcile ending in `outcome` and records how long it took.
    pub fn reconciled(&self, outcome: &str, took: Duration) {
        self.reconciles
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    /// Counts one agent sync of `kind` (`error` for a failed one) and records its duration.
    pub fn synced(&self, kind: &str, took: Duration) {
        let label = KindLabel {
            kind: kind.to_string(),
        };
        self.syncs.get_or_create(&label).inc();
        self.sync_duration
            .get_or_create(&label)
            .observe(took.as_secs_f64());
    }

    /// Sets how many frontends serve each family on this node after a sync.
    pub fn programmed(&self, ipv4: usize, ipv6: usize) {
        for (family, n) in [("ipv4", ipv4), ("ipv6", ipv6)] {
            self.frontends
                .get_or_create(&FamilyLabel {
                    family: family.to_string(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Counts one agent Lease renewal attempt, successful or not.
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

    /// The registry in the classic Prometheus text format 0.0.4, for clients that do not ask
    /// for OpenMetrics (`curl`, `promtool check metrics`, older scrapers).
    pub fn encode_text(&self) -> String {
        openmetrics_to_text(&self.encode())
    }
}

/// Content type of [`Metrics::encode`].
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of [`Metrics::encode_text`].
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Rewrites OpenMetrics text (as `prometheus_client` writes it: no exemplars, no `_created`
/// samples, counters, gauges and histograms only) as text format 0.0.4. The samples stay
/// as they are; what differs is the metadata: a counter family is named after its samples
/// (`dualstack_reconciles_total`, where OpenMetrics says `dualstack_reconciles`), `# UNIT`
/// does not exist and there is no `# EOF`.
fn openmetrics_to_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|prefix| line.strip_prefix(prefix).map(|rest| (prefix, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(prefix);
                out.push_str(name);
                if counters.contains(name) && !name.ends_with("_total") {
                    out.push_str("_total");
                }
                if !tail.is_empty() {
                    out.push(' ');
                    out.push_str(tail);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    /// Every metric with samples in every label value the code records.
    fn populated() -> Metrics {
        let m = Metrics::new();
        for outcome in [
            "synced",
            "ignored",
            "released",
            "not-in-store",
            "conflict",
            "api",
            "convert",
        ] {
            m.reconciled(outcome, Duration::from_millis(3));
        }
        for kind in [
            "full",
            "incremental",
            "difference",
            "unchanged",
            "not-programmed",
            "error",
        ] {
            m.synced(kind, Duration::from_millis(20));
        }
        m.programmed(2, 3);
        m.leader.set(1);
        m.last_sync_error.set(1_700_000_000);
        m.lease_renewed(true);
        m.lease_renewed(false);
        m
    }

    fn samples(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn text_format_keeps_every_sample_and_names_counters_after_them() {
        let m = populated();
        let open = m.encode();
        let text = m.encode_text();
        assert_eq!(samples(&open), samples(&text));
        assert!(open.ends_with("# EOF\n"));
        assert!(!text.contains("# EOF"));
        for counter in ["reconciles", "syncs", "lease_renewals"] {
            assert!(open.contains(&format!("# TYPE dualstack_{counter} counter\n")));
            assert!(text.contains(&format!("# TYPE dualstack_{counter}_total counter\n")));
            assert!(text.contains(&format!("# HELP dualstack_{counter}_total ")));
        }
        assert!(text.contains("# TYPE dualstack_reconcile_duration_seconds histogram\n"));
        assert!(text.contains("# TYPE dualstack_leader gauge\n"));
    }

    /// `promtool check metrics` (Debian package `prometheus`) accepts the text rendering
    /// with no lint finding. Skips without promtool, unless `CI` is set (`.ci/run`).
    #[test]
    fn promtool_accepts_the_metrics() {
        let child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI is set but promtool cannot run: {e}"
                );
                eprintln!("skipping promtool_accepts_the_metrics: promtool: {e}");
                return;
            }
        };
        let text = populated().encode_text();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && report.trim().is_empty(),
            "promtool check metrics: {} {report}\n{text}",
            out.status
        );
    }
}
