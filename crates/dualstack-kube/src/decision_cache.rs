//! The controller decides once per change, not once per Service.
//!
//! [`decide`] looks at the whole cluster (port conflicts and node choice depend on every
//! Service), so running it inside each Service's reconcile makes a resync round O(N²). The
//! cache keeps the latest [`Decision`] together with what it was computed from:
//!
//! * the cluster change counter of the Node, EndpointSlice and Lease reflectors
//!   ([`crate::cluster`]), which is bumped only by changes the decision reads;
//! * for every Service, the [`Fingerprint`] of the core's view of it (spec, our annotations,
//!   status — not a `resourceVersion`, which moves with every unrelated write);
//! * the first instant at which time alone changes the decision: the next agent Lease
//!   expiry ([`next_expiry`]) or the end of a prefix's lifetime or grace time in a pool
//!   that follows the nodes' prefix (`Decision::next_change`).
//!
//! Each computation also compares the settings every agent publishes in its Lease
//! ([`crate::lease::CONFIG_ANNOTATION`]) with the controller's own, and logs a warning when
//! the set of agents that disagree changes ([`Cached::config_mismatches`]).
//!
//! A reconcile reuses the decision when all three still hold for its Service, and otherwise
//! recomputes it once under a lock, so a burst of reconciles after one change shares a single
//! recomputation. [`DecisionCache::invalidate`] forces the next one (a Service was released:
//! its ports are free for the others).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use dualstack_lb::decision::ServiceDecision;
use dualstack_lb::{Config, Decision, Snapshot, Timestamp, decide};
use tokio::sync::Mutex;

use crate::cluster::Fingerprint;
use crate::lease::{CONFIG_ANNOTATION, config_summary};

pub use dualstack_lb::ServiceKey;

/// The decision and what it was computed from.
#[derive(Debug)]
pub struct Cached {
    /// The decision itself.
    pub decision: Decision,
    index: HashMap<ServiceKey, usize>,
    prints: HashMap<ServiceKey, u64>,
    cluster_generation: u64,
    valid_until: Option<Timestamp>,
    /// Agents whose Lease says they run with other settings than ours: `node: settings`.
    pub config_mismatches: Vec<String>,
    /// Services whose published outcome (ingress or conditions) differs from the decision
    /// before this one: they, and only they, need a reconcile because of this computation.
    pub changed: Vec<ServiceKey>,
}

/// Agents whose Lease carries settings other than `config`'s (`node: their settings`), sorted.
/// Leases without the annotation (agents older than it) are not reported.
pub fn config_mismatches(snapshot: &Snapshot, config: &Config) -> Vec<String> {
    let ours = config_summary(config);
    let mut out: Vec<String> = snapshot
        .leases
        .iter()
        .filter_map(|l| {
            let theirs = l.metadata.annotations.get(CONFIG_ANNOTATION)?;
            (*theirs != ours).then(|| {
                let node = l
                    .spec
                    .holder_identity
                    .as_deref()
                    .unwrap_or(&l.metadata.name);
                format!("{node}: {theirs}")
            })
        })
        .collect();
    out.sort();
    out
}

impl Cached {
    /// Decides for `snapshot` and remembers its inputs.
    pub fn compute(
        snapshot: Snapshot,
        config: &Config,
        now: Timestamp,
        cluster_generation: u64,
    ) -> Cached {
        let prints = snapshot
            .services
            .iter()
            .map(|s| (ServiceKey::of(s), s.clone().fingerprint()))
            .collect();
        let config_mismatches = config_mismatches(&snapshot, config);
        let decision = decide(&snapshot, config, now);
        // Time alone changes the decision when a Lease expires or a prefix of a pool that
        // follows the nodes' prefix ends its lifetime or grace time.
        let valid_until = [next_expiry(&snapshot, now), decision.next_change]
            .into_iter()
            .flatten()
            .min();
        let index = decision
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.key(), i))
            .collect();
        Cached {
            decision,
            index,
            prints,
            cluster_generation,
            valid_until,
            config_mismatches,
            changed: Vec::new(),
        }
    }

    /// The Services whose ingress or conditions differ between `before` and this decision
    /// (new ones included; those that left it are released by their own reconcile).
    fn changed_since(&self, before: Option<&Cached>) -> Vec<ServiceKey> {
        self.decision
            .services
            .iter()
            .filter(|now| {
                let key = now.key();
                before.and_then(|b| b.service(&key)).is_none_or(|was| {
                    was.ingress != now.ingress || was.conditions != now.conditions
                })
            })
            .map(ServiceDecision::key)
            .collect()
    }

    /// Whether this decision still holds for a Service whose core view hashes to `print`.
    pub fn holds_for(&self, key: &ServiceKey, print: u64, generation: u64, now: Timestamp) -> bool {
        self.cluster_generation == generation
            && self.valid_until.is_none_or(|until| now < until)
            && self.prints.get(key) == Some(&print)
    }

    /// The decision for one Service (`None`: not ours, or not in the snapshot).
    pub fn service(&self, key: &ServiceKey) -> Option<&ServiceDecision> {
        self.index
            .get(key)
            .and_then(|&i| self.decision.services.get(i))
    }

    /// When time alone next changes this decision (an agent Lease expires).
    pub fn valid_until(&self) -> Option<Timestamp> {
        self.valid_until
    }
}

/// The first instant after `now` at which an agent Lease has expired (the decision keeps a
/// Lease live up to and including `renewTime + leaseDurationSeconds`), if any.
pub fn next_expiry(snapshot: &Snapshot, now: Timestamp) -> Option<Timestamp> {
    snapshot
        .leases
        .iter()
        .filter_map(|l| {
            let renewed = l.spec.renew_time?;
            let seconds = l.spec.lease_duration_seconds?;
            let expires = renewed.plus_seconds(seconds);
            Some(Timestamp::from_unix_micros(
                expires.unix_micros().saturating_add(1),
            ))
        })
        .filter(|expiry| *expiry > now)
        .min()
}

/// The shared cache of the leading controller.
#[derive(Debug, Default)]
pub struct DecisionCache {
    cached: Mutex<Option<Arc<Cached>>>,
    stale: AtomicBool,
    computed: AtomicU64,
}

impl DecisionCache {
    /// The decision for the Service `key` (whose core view hashes to `print`): the cached one
    /// when it still holds, else `compute()`'s snapshot decided anew (once, under the lock).
    pub async fn get<E>(
        &self,
        key: &ServiceKey,
        print: u64,
        generation: u64,
        now: Timestamp,
        config: &Config,
        compute: impl FnOnce() -> Result<Snapshot, E>,
    ) -> Result<Arc<Cached>, E> {
        self.get_fresh(key, print, generation, now, config, compute)
            .await
            .map(|(cached, _)| cached)
    }

    /// [`DecisionCache::get`], also saying whether this call computed the decision (only
    /// that caller acts on [`Cached::changed`]).
    pub async fn get_fresh<E>(
        &self,
        key: &ServiceKey,
        print: u64,
        generation: u64,
        now: Timestamp,
        config: &Config,
        compute: impl FnOnce() -> Result<Snapshot, E>,
    ) -> Result<(Arc<Cached>, bool), E> {
        let mut slot = self.cached.lock().await;
        if let Some(cached) = slot.as_ref()
            && !self.stale.load(Ordering::Acquire)
            && cached.holds_for(key, print, generation, now)
        {
            return Ok((Arc::clone(cached), false));
        }
        self.stale.store(false, Ordering::Release);
        let snapshot = compute()?;
        let mut computed = Cached::compute(snapshot, config, now, generation);
        computed.changed = computed.changed_since(slot.as_deref());
        let fresh = Arc::new(computed);
        self.computed.fetch_add(1, Ordering::Relaxed);
        let before = slot.as_ref().map(|c| c.config_mismatches.as_slice());
        if before.unwrap_or_default() != fresh.config_mismatches.as_slice() {
            if fresh.config_mismatches.is_empty() {
                tracing::info!("every agent runs with the controller's settings again");
            } else {
                tracing::warn!(
                    controller = %config_summary(config),
                    agents = %fresh.config_mismatches.join(", "),
                    "agents run with other settings than the controller: they program other Services than it publishes (give both the same dualstack-config ConfigMap)"
                );
            }
        }
        *slot = Some(Arc::clone(&fresh));
        Ok((fresh, true))
    }

    /// The next reconcile decides anew.
    pub fn invalidate(&self) {
        self.stale.store(true, Ordering::Release);
    }

    /// How many times the decision was computed (for metrics and tests).
    pub fn computations(&self) -> u64 {
        self.computed.load(Ordering::Relaxed)
    }

    /// When time alone next changes the cached decision.
    pub async fn valid_until(&self) -> Option<Timestamp> {
        self.cached
            .lock()
            .await
            .as_ref()
            .and_then(|c| c.valid_until())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn snapshot(port: u16, renew: &str) -> Snapshot {
        Snapshot::parse(&format!(
            r#"apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata: {{name: n1}}
  status:
    addresses: [{{type: InternalIP, address: 192.0.2.1}}]
    conditions: [{{type: Ready, status: "True"}}]
- apiVersion: coordination.k8s.io/v1
  kind: Lease
  metadata: {{name: dualstack-agent-n1, namespace: dualstack-system}}
  spec: {{holderIdentity: n1, leaseDurationSeconds: 40, renewTime: "{renew}"}}
- apiVersion: v1
  kind: Service
  metadata: {{name: web, namespace: default, creationTimestamp: "2025-12-01T00:00:00Z"}}
  spec:
    type: LoadBalancer
    loadBalancerClass: dualstack.io/lb
    ipFamilies: [IPv4]
    ipFamilyPolicy: SingleStack
    ports: [{{name: http, port: {port}, protocol: TCP}}]
"#
        ))
        .unwrap()
    }

    fn key() -> ServiceKey {
        ServiceKey::new("default", "web")
    }

    fn print(s: &Snapshot) -> u64 {
        s.services[0].clone().fingerprint()
    }

    #[tokio::test]
    async fn a_new_decision_names_exactly_the_services_whose_outcome_changed() {
        let config = Config::default();
        let now: Timestamp = "2026-01-01T00:00:10Z".parse().unwrap();
        let one = snapshot(80, "2026-01-01T00:00:00.000000Z");
        // A younger Service on the same port loses it to `web` (PortConflict).
        let mut two = one.clone();
        let mut younger = two.services[0].clone();
        younger.metadata.name = "younger".into();
        younger.metadata.creation_timestamp = Some("2025-12-02T00:00:00Z".parse().unwrap());
        two.services.push(younger.clone());
        let cache = DecisionCache::default();
        let (first, fresh) = cache
            .get_fresh(&key(), print(&one), 1, now, &config, || {
                Ok::<_, ()>(one.clone())
            })
            .await
            .unwrap();
        assert!(fresh);
        assert_eq!(
            first.changed,
            vec![key()],
            "everything is new the first time"
        );
        let younger_key = ServiceKey::new("default", "younger");
        let (second, _) = cache
            .get_fresh(
                &younger_key,
                younger.clone().fingerprint(),
                1,
                now,
                &config,
                || Ok::<_, ()>(two.clone()),
            )
            .await
            .unwrap();
        assert_eq!(
            second.changed,
            vec![younger_key.clone()],
            "web keeps its port"
        );
        // `web` moves to another port: the younger one gets port 80 back.
        let mut moved = two.clone();
        moved.services[0] = snapshot(81, "2026-01-01T00:00:00.000000Z").services[0].clone();
        let (third, _) = cache
            .get_fresh(&key(), print(&moved), 1, now, &config, || {
                Ok::<_, ()>(moved.clone())
            })
            .await
            .unwrap();
        assert_eq!(
            third.changed,
            vec![younger_key],
            "web's addresses and conditions stay; only the younger one's outcome changed"
        );
    }

    #[test]
    fn the_end_of_a_prefix_grace_time_is_a_deadline_like_a_lease_expiry() {
        // A prefix pool whose old prefix's grace ends at 00:00:20, before the Lease expires
        // (00:00:40): the decision holds until then and no longer.
        let mut snap = snapshot(80, "2026-01-01T00:00:00.000000Z");
        let pool: dualstack_lb::pool::LoadBalancerPool =
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "home"},
                "spec": {"ipv6Prefix": {"hosts": "::f0-::ff", "graceSeconds": 15}}
            }))
            .unwrap();
        snap.pools.push(pool);
        snap.leases[0].metadata.annotations.insert(
            dualstack_lb::prefixes::PREFIXES_ANNOTATION.into(),
            "2001:db8:a::/64;dev=eth0;since=2025-12-01T00:00:00Z;preferred=2026-01-02T00:00:00Z;valid=2026-01-03T00:00:00Z,\
             2001:db8:b::/64;dev=eth0;since=2026-01-01T00:00:05Z;preferred=2026-01-04T00:00:00Z;valid=2026-01-05T00:00:00Z"
                .into(),
        );
        let now: Timestamp = "2026-01-01T00:00:10Z".parse().unwrap();
        let cached = Cached::compute(snap, &Config::default(), now, 1);
        assert_eq!(
            cached.valid_until(),
            Some("2026-01-01T00:00:20Z".parse().unwrap())
        );
    }

    #[test]
    fn agents_with_other_settings_are_named() {
        let mut snap = snapshot(80, "2026-01-01T00:00:00.000000Z");
        let config = Config::default();
        assert!(
            config_mismatches(&snap, &config).is_empty(),
            "no annotation: not reported"
        );
        snap.leases[0]
            .metadata
            .annotations
            .insert(CONFIG_ANNOTATION.into(), config_summary(&config));
        assert!(config_mismatches(&snap, &config).is_empty());
        let other = Config {
            default_class: true,
            ..Config::default()
        };
        snap.leases[0]
            .metadata
            .annotations
            .insert(CONFIG_ANNOTATION.into(), config_summary(&other));
        assert_eq!(
            config_mismatches(&snap, &config),
            vec![
                "n1: class=dualstack.io/lb;default-class=true;mode=nftables;ignore-exclusion-label=false"
                    .to_string()
            ]
        );
    }

    #[tokio::test]
    async fn reused_until_the_service_the_cluster_or_the_clock_moves() {
        let config = Config::default();
        let now: Timestamp = "2026-01-01T00:00:10Z".parse().unwrap();
        let renew = "2026-01-01T00:00:00.000000Z";
        let cache = DecisionCache::default();
        let s80 = snapshot(80, renew);
        let p80 = print(&s80);
        let first = cache
            .get(&key(), p80, 1, now, &config, || Ok::<_, ()>(s80.clone()))
            .await
            .unwrap();
        assert_eq!(cache.computations(), 1);
        assert!(first.service(&key()).is_some());
        assert_eq!(
            first.valid_until(),
            Some(Timestamp::from_unix_micros(
                "2026-01-01T00:00:40Z"
                    .parse::<Timestamp>()
                    .unwrap()
                    .unix_micros()
                    + 1
            ))
        );

        // Same Service, same cluster, before the Lease expires: no new decision.
        let again = cache
            .get(&key(), p80, 1, now, &config, || Err(()))
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(cache.computations(), 1);

        // The Service changed.
        let s81 = snapshot(81, renew);
        cache
            .get(&key(), print(&s81), 1, now, &config, || {
                Ok::<_, ()>(s81.clone())
            })
            .await
            .unwrap();
        assert_eq!(cache.computations(), 2);
        // A node, slice or Lease changed.
        cache
            .get(&key(), print(&s81), 2, now, &config, || {
                Ok::<_, ()>(s81.clone())
            })
            .await
            .unwrap();
        assert_eq!(cache.computations(), 3);
        // The agent Lease expired: the node leaves the decision.
        let later: Timestamp = "2026-01-01T00:00:41Z".parse().unwrap();
        let expired = cache
            .get(&key(), print(&s81), 2, later, &config, || {
                Ok::<_, ()>(s81.clone())
            })
            .await
            .unwrap();
        assert_eq!(cache.computations(), 4);
        assert!(
            expired
                .service(&key())
                .map(|s| s.ingress.is_empty())
                .unwrap()
        );
        assert_eq!(expired.valid_until(), None);
        // Invalidated by hand.
        cache.invalidate();
        cache
            .get(&key(), print(&s81), 2, later, &config, || {
                Ok::<_, ()>(s81.clone())
            })
            .await
            .unwrap();
        assert_eq!(cache.computations(), 5);
    }
}
