//! The agent's per-node Lease: proof of life for the decision (a node without a live agent
//! Lease is not programmed in `nftables` mode) and the carrier of the node's live addresses.
//!
//! `<lease namespace>/dualstack-agent-<node>`, labelled [`LEASE_LABEL`] (the controller and
//! agents watch Leases with that selector), `holderIdentity` = the node name, renewed with a
//! server-side apply every [`RENEW_EVERY`] and whenever the addresses change. The annotation
//! [`ADDRESSES_ANNOTATION`] holds the addresses in the format of [`dualstack_lb::live`];
//! [`PREFIXES_ANNOTATION`] the on-link global IPv6 prefixes with their lifetimes in the
//! format of [`dualstack_lb::prefixes`] (for pools that follow the ISP's prefix);
//! [`RULESET_ANNOTATION`], once the agent has synced, the identity of the ruleset it wants
//! in the kernel (`sha256:…;frontends=N;generation=G;since=T`, written by
//! `dualstack_ruleset::published::Summary`), for `dualstack doctor node` to compare with.

use std::collections::BTreeMap;
use std::time::Duration;

use dualstack_lb::Timestamp;
use dualstack_lb::config::{Config, LEASE_LABEL};
use dualstack_lb::live::{ADDRESSES_ANNOTATION, NodeReport, format_live_addresses};
use dualstack_lb::prefixes::{PREFIXES_ANNOTATION, format_prefixes};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

/// How long a renewal is valid: three missed renewals and the node stops being programmed.
pub const LEASE_DURATION_SECONDS: i32 = 40;
/// How often the agent renews a Lease of the default duration.
pub const RENEW_EVERY: Duration = Duration::from_secs(10);
/// The field manager of the agent's Lease writes.
pub const FIELD_MANAGER: &str = "dualstack-agent";
/// Annotation on the agent's Lease: the decision settings the agent runs with
/// ([`config_summary`]), so the controller can report an agent that disagrees with it.
pub const CONFIG_ANNOTATION: &str = "dualstack.io/config";

/// Annotation on the agent's Lease: the ruleset the agent wants in its node's kernel, as
/// `sha256:<hex>;frontends=<count>;generation=<n>;since=<RFC 3339>` (same spelling as
/// `dualstack_ruleset::published::RULESET_ANNOTATION`, which this crate does not depend on).
pub const RULESET_ANNOTATION: &str = "dualstack.io/ruleset";

/// The settings that must be the same on the controller and every agent, as one string
/// (`class=…;default-class=…;mode=…;ignore-exclusion-label=…`). The Lease namespace is not in
/// it: an agent with another one is not seen by the controller at all.
pub fn config_summary(config: &Config) -> String {
    format!(
        "class={};default-class={};mode={};ignore-exclusion-label={}",
        config.class, config.default_class, config.mode, config.ignore_exclusion_label
    )
}

fn micro_time(ts: Timestamp) -> MicroTime {
    MicroTime(
        k8s_openapi::jiff::Timestamp::from_microsecond(ts.unix_micros())
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

/// The Lease `node`'s agent applies at `now` (pure), valid [`LEASE_DURATION_SECONDS`].
pub fn agent_lease(config: &Config, node: &str, report: &NodeReport, now: Timestamp) -> Lease {
    agent_lease_for(config, node, report, now, LEASE_DURATION_SECONDS)
}

/// How often an agent whose Lease lasts `duration_seconds` renews it: four times per
/// duration, so three renewals can fail before its node is dropped.
pub fn renew_every(duration_seconds: i32) -> Duration {
    Duration::from_millis(u64::try_from(duration_seconds.max(1)).unwrap_or(1) * 250)
}

/// [`agent_lease`] with another duration (`agent --lease-duration-seconds`).
pub fn agent_lease_for(
    config: &Config,
    node: &str,
    report: &NodeReport,
    now: Timestamp,
    duration_seconds: i32,
) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(Config::lease_name(node)),
            namespace: Some(config.lease_namespace.clone()),
            labels: Some(BTreeMap::from([(
                LEASE_LABEL.0.to_string(),
                LEASE_LABEL.1.to_string(),
            )])),
            annotations: Some(BTreeMap::from([
                (
                    ADDRESSES_ANNOTATION.to_string(),
                    format_live_addresses(&report.addresses),
                ),
                (
                    PREFIXES_ANNOTATION.to_string(),
                    format_prefixes(&report.prefixes),
                ),
                (CONFIG_ANNOTATION.to_string(), config_summary(config)),
            ])),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(node.to_string()),
            lease_duration_seconds: Some(duration_seconds),
            renew_time: Some(micro_time(now)),
            ..LeaseSpec::default()
        }),
    }
}

/// Applies the agent's Lease (server-side apply, forced: this node's agent is its only writer).
pub async fn renew(
    client: &Client,
    config: &Config,
    node: &str,
    report: &NodeReport,
    now: Timestamp,
) -> Result<Lease, kube::Error> {
    renew_for(client, config, node, report, now, LEASE_DURATION_SECONDS).await
}

/// [`renew`] with another duration.
pub async fn renew_for(
    client: &Client,
    config: &Config,
    node: &str,
    report: &NodeReport,
    now: Timestamp,
    duration_seconds: i32,
) -> Result<Lease, kube::Error> {
    renew_with_ruleset(client, config, node, report, now, duration_seconds, None).await
}

/// Adds the [`RULESET_ANNOTATION`] to an agent Lease (pure). With `None` (nothing synced
/// yet) the Lease is left as it is, so a server-side apply drops an older value.
pub fn with_ruleset(mut lease: Lease, ruleset: Option<&str>) -> Lease {
    if let Some(value) = ruleset {
        lease
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(RULESET_ANNOTATION.to_string(), value.to_string());
    }
    lease
}

/// [`renew_for`], with the ruleset the agent wants ([`with_ruleset`]).
pub async fn renew_with_ruleset(
    client: &Client,
    config: &Config,
    node: &str,
    report: &NodeReport,
    now: Timestamp,
    duration_seconds: i32,
    ruleset: Option<&str>,
) -> Result<Lease, kube::Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), &config.lease_namespace);
    let lease = with_ruleset(
        agent_lease_for(config, node, report, now, duration_seconds),
        ruleset,
    );
    api.patch(
        &Config::lease_name(node),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&lease),
    )
    .await
}

#[cfg(test)]
mod ruleset_annotation_tests {
    use super::*;

    #[test]
    fn the_ruleset_annotation_sits_beside_the_others() {
        let now: Timestamp = "2026-01-01T00:00:00Z"
            .parse()
            .unwrap_or(Timestamp::from_unix_micros(0));
        let base = agent_lease(&Config::default(), "n1", &NodeReport::default(), now);
        assert_eq!(with_ruleset(base.clone(), None), base);
        let value = "sha256:00;frontends=2;generation=1;since=2026-01-01T00:00:00Z";
        let lease = with_ruleset(base, Some(value));
        let annotations = lease.metadata.annotations.unwrap_or_default();
        assert_eq!(
            annotations.get(RULESET_ANNOTATION).map(String::as_str),
            Some(value)
        );
        assert!(annotations.contains_key(ADDRESSES_ANNOTATION));
        assert!(annotations.contains_key(CONFIG_ANNOTATION));
    }
}
