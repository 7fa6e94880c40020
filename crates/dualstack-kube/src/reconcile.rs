//! The controller's reconcile function: one Service in, the API writes that make it match
//! the decision out (finalizer, status, Events), and a retry policy with backoff.
//!
//! For each Service the controller is asked about:
//! 1. **Not ours** (another type or class, or being deleted): if *we* added our finalizer
//!    (see [`crate::finalizer`]), clear the status we wrote, then remove the finalizer.
//!    Otherwise nothing — not a single request for a Service we do not own.
//! 2. **Ours**: add our finalizer if missing; take the cluster-wide decision (port conflicts
//!    and node choice depend on every Service) from the [`DecisionCache`], which decides
//!    anew only when something it read changed; patch `status` only when it differs; record
//!    an Event for every problem condition and a `Normal` one when the addresses changed.
//!
//! Errors (API refusals, 409 Conflict after a concurrent change, 5xx) are returned;
//! [`error_policy`] requeues the Service with exponential backoff per Service, and the next
//! reconcile works from the freshly watched object.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dualstack_lb::{Config, Timestamp, ownership};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Client, Resource, ResourceExt};

use crate::cluster::{Cluster, Fingerprint as _};
use crate::convert::{ConvertError, convert};
use crate::decision_cache::{Cached, DecisionCache, ServiceKey};
use crate::finalizer;
use crate::status;

/// Requeue owned Services this often even without changes (agent Leases expire with time).
pub const RESYNC: Duration = Duration::from_secs(60);
/// Backoff after the first failure; doubled per consecutive failure, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest backoff between retries of one failing Service.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Why a reconcile failed. All of these are retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("failed to {action} Service {service}: {source}")]
    Api {
        /// What was being done (`patch the status of`, `add our finalizer to`, …).
        action: &'static str,
        /// The Service's `namespace/name`.
        service: String,
        /// The client's error.
        source: kube::Error,
    },
    /// A cluster object did not convert for the decision.
    #[error(transparent)]
    Convert(#[from] ConvertError),
}

impl Error {
    /// True for 409 Conflict (the Service changed since we read it).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Api { source: kube::Error::Api(s), .. } if s.code == 409)
    }

    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Api { .. } if self.is_conflict() => "conflict",
            Error::Api { .. } => "api",
            Error::Convert(_) => "convert",
        }
    }
}

/// What a reconcile did (for logs, metrics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not ours and nothing of ours on it: no request made.
    Ignored,
    /// Not ours any more (or deleted): status cleared and finalizer removed.
    Released,
    /// Ours: finalizer/status made to match the decision (possibly with no request).
    Synced,
    /// Ours, but the decision does not know it yet (the store lags): retried soon.
    NotInStore,
}

/// Called after every reconcile with `ok`/`ignored`/… or the error kind, and its duration.
pub type Observer = Arc<dyn Fn(&'static str, Duration) + Send + Sync>;

/// Everything reconcile needs.
pub struct Context {
    /// The API client for patches and Events.
    pub client: Client,
    /// The decision's settings.
    pub config: Config,
    /// The reflector stores the decision reads.
    pub cluster: Cluster,
    /// Publishes the Events.
    pub recorder: Recorder,
    /// The decision's `now` (a function so tests can fix it).
    pub clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    /// Called after every reconcile with its outcome and duration.
    pub observer: Option<Observer>,
    /// Bumped when a reconcile changed what other Services may decide (an address or port
    /// freed or taken): the controller then reconciles every Service once more.
    pub others_affected: Option<tokio::sync::watch::Sender<u64>>,
    /// The cluster change counter of the Node, EndpointSlice and Lease reflectors: the
    /// cached decision holds while it stays the same.
    pub cluster_generation: Option<tokio::sync::watch::Receiver<u64>>,
    /// The latest decision, shared by all reconciles.
    pub decisions: Arc<DecisionCache>,
    /// Receives the other Services whose outcome a new decision changed, so that exactly
    /// they are reconciled (instead of every Service).
    pub retrigger: Option<tokio::sync::mpsc::UnboundedSender<ServiceKey>>,
    failures: Mutex<HashMap<ServiceKey, u32>>,
}

impl Context {
    /// A context with no observer and no cross-Service retriggering (the controller wires those in).
    pub fn new(
        client: Client,
        config: Config,
        cluster: Cluster,
        recorder: Recorder,
        clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    ) -> Context {
        Context {
            client,
            config,
            cluster,
            recorder,
            clock,
            observer: None,
            others_affected: None,
            cluster_generation: None,
            decisions: Arc::new(DecisionCache::default()),
            retrigger: None,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<ServiceKey, u32>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn key(svc: &Service) -> ServiceKey {
    ServiceKey::new(svc.namespace().unwrap_or_default(), svc.name_any())
}

fn to_time(ts: Timestamp) -> Time {
    Time(
        k8s_openapi::jiff::Timestamp::from_microsecond(ts.unix_micros())
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

/// Reconciles one Service (see the module docs), recording its outcome with the observer.
pub async fn reconcile(svc: Arc<Service>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&svc, &ctx).await;
    if let Some(observe) = &ctx.observer {
        let label = match &result {
            Ok(Outcome::Ignored) => "ignored",
            Ok(Outcome::Released) => "released",
            Ok(Outcome::Synced) => "synced",
            Ok(Outcome::NotInStore) => "not-in-store",
            Err(e) => e.kind(),
        };
        observe(label, started.elapsed());
    }
    let outcome = result?;
    ctx.failures().remove(&key(&svc));
    Ok(match outcome {
        Outcome::Ignored | Outcome::Released => Action::await_change(),
        Outcome::Synced => Action::requeue(RESYNC),
        Outcome::NotInStore => Action::requeue(Duration::from_secs(1)),
    })
}

/// Requeues a failed Service with exponential backoff (per Service; reset by a success).
pub fn error_policy(svc: Arc<Service>, err: &Error, ctx: Arc<Context>) -> Action {
    let delay = {
        let mut failures = ctx.failures();
        let n = failures.entry(key(&svc)).or_insert(0);
        *n = n.saturating_add(1);
        backoff(*n)
    };
    tracing::warn!(service = %key(&svc), error = %err, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// The delay after `failures` consecutive failures.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    FIRST_BACKOFF.saturating_mul(1 << exp).min(MAX_BACKOFF)
}

fn kick(ctx: &Context) {
    if let Some(tx) = &ctx.others_affected {
        tx.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The cluster-wide decision that holds for `current` (the newest version of one Service):
/// the cached one, or a new one decided over the stores with `current` in place of the
/// store's copy (the store may lag behind the object we were handed). Returns the key to look
/// the Service up with.
pub async fn decision_for(
    cluster: &Cluster,
    decisions: &DecisionCache,
    config: &Config,
    generation: u64,
    now: Timestamp,
    current: &Service,
) -> Result<(Arc<Cached>, ServiceKey, bool), Error> {
    let namespace = current.namespace().unwrap_or_default();
    let name = current.name_any();
    let newest: dualstack_lb::objects::Service = convert(current, "Service")?;
    let print = newest.clone().fingerprint();
    let key = ServiceKey::new(namespace, name);
    let (cached, fresh) = decisions
        .get_fresh(&key, print, generation, now, config, || {
            let mut snapshot = cluster.snapshot()?;
            snapshot
                .services
                .retain(|s| !key.is(&s.metadata.namespace, &s.metadata.name));
            snapshot.services.push(newest);
            Ok::<_, Error>(snapshot)
        })
        .await?;
    Ok((cached, key, fresh))
}

/// Takes a Service back from us: clears the status we wrote, then removes our finalizer.
/// Returns false (and sends nothing) when we never added our finalizer to it. Used by the
/// reconcile of a Service that is not ours any more and by `controller --release-all`.
pub async fn release(api: &Api<Service>, svc: &Service, class: &str) -> Result<bool, Error> {
    if !finalizer::added_by_us(svc, class) {
        return Ok(false);
    }
    let name = svc.name_any();
    let service = format!("{}/{name}", svc.namespace().unwrap_or_default());
    let api_err = |action: &'static str| {
        let service = service.clone();
        move |source| Error::Api {
            action,
            service,
            source,
        }
    };
    let mut current = svc.clone();
    if let Some(patch) = status::clear_patch(&current) {
        current = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(api_err("clear the status of"))?;
    }
    if let Some(patch) = finalizer::remove_patch(&current, class) {
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(api_err("remove our finalizer from"))?;
    }
    Ok(true)
}

/// The reconcile steps without metrics; returns what was done.
pub async fn reconcile_inner(svc: &Service, ctx: &Context) -> Result<Outcome, Error> {
    let name = svc.name_any();
    let namespace = svc.namespace().unwrap_or_default();
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), &namespace);
    let class = ctx.config.class.as_str();
    let api_err = |action: &'static str| {
        let service = format!("{namespace}/{name}");
        move |source| Error::Api {
            action,
            service,
            source,
        }
    };

    let core: dualstack_lb::objects::Service = convert(svc, "Service")?;
    let deleting = svc.metadata.deletion_timestamp.is_some();
    if deleting || ownership(&core, &ctx.config).is_err() {
        if !release(&api, svc, class).await? {
            return Ok(Outcome::Ignored);
        }
        tracing::info!(service = %format!("{namespace}/{name}"), "released: status cleared, finalizer removed");
        // Its addresses and ports are free: decide again, and let every Service see it.
        ctx.decisions.invalidate();
        kick(ctx);
        return Ok(Outcome::Released);
    }

    let mut current = svc.clone();
    if let Some(patch) = finalizer::add_patch(&current, class) {
        current = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(api_err("add our finalizer to"))?;
    }

    let now = (ctx.clock)();
    let generation = ctx.cluster_generation.as_ref().map_or(0, |rx| *rx.borrow());
    let (cached, service_key, fresh) = decision_for(
        &ctx.cluster,
        &ctx.decisions,
        &ctx.config,
        generation,
        now,
        &current,
    )
    .await?;
    if let (true, Some(tx)) = (fresh, &ctx.retrigger) {
        for other in cached.changed.iter().filter(|k| **k != service_key) {
            let _ = tx.send(other.clone());
        }
    }
    let Some(decided) = cached.service(&service_key) else {
        return Ok(Outcome::NotInStore);
    };

    if let Some(patch) = status::status_patch(&current, decided, to_time(now)) {
        // Other Services this change affects (a port freed or taken) were sent to
        // `retrigger` when the decision was computed.
        let ingress_changed = status::ingress_changed(&current, decided);
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(api_err("patch the status of"))?;
        let reference = current.object_ref(&());
        let mut events: Vec<Event> = decided
            .events
            .iter()
            .map(|e| Event {
                type_: match e.type_ {
                    dualstack_lb::conditions::EventType::Normal => EventType::Normal,
                    dualstack_lb::conditions::EventType::Warning => EventType::Warning,
                },
                reason: e.reason.to_string(),
                note: Some(e.message.clone()),
                action: "Reconcile".to_string(),
                secondary: None,
            })
            .collect();
        if ingress_changed {
            let addresses: Vec<String> = decided.ingress.iter().map(|i| i.ip.to_string()).collect();
            events.push(Event {
                type_: EventType::Normal,
                reason: "IngressUpdated".to_string(),
                note: Some(if addresses.is_empty() {
                    "no ingress address".to_string()
                } else {
                    format!("ingress: {}", addresses.join(", "))
                }),
                action: "UpdateStatus".to_string(),
                secondary: None,
            });
        }
        for event in &events {
            if let Err(e) = ctx.recorder.publish(event, &reference).await {
                // The status is written; a lost Event is not worth a retry loop.
                tracing::warn!(service = %format!("{namespace}/{name}"), error = %e, reason = %event.reason, "could not record Event");
            }
        }
    }
    Ok(Outcome::Synced)
}
