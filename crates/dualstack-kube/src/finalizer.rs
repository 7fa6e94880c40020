//! Our finalizer on the Services we own (pure): the merge patches that add and remove it.
//!
//! `service.kubernetes.io/load-balancer-cleanup` is the conventional LoadBalancer finalizer,
//! and other LoadBalancer implementations (the cloud service controller, K3s ServiceLB) use
//! the same name. So that we never remove one that another controller put there, we record
//! who added it in the annotation [`OWNER_ANNOTATION`] (value: our class), in the same
//! patch; we only ever remove the finalizer when that annotation names our class. Both
//! patches carry `metadata.resourceVersion` (409 Conflict when the Service changed since we
//! read it) and replace the finalizer list with the one we computed from what we read.

use k8s_openapi::api::core::v1::Service;
use serde_json::{Value, json};

/// The finalizer we add to the Services we own.
pub const FINALIZER: &str = "service.kubernetes.io/load-balancer-cleanup";
/// Annotation recording that *we* added [`FINALIZER`] (value: our `loadBalancerClass`).
pub const OWNER_ANNOTATION: &str = "dualstack.io/finalizer-owner";

fn finalizers(svc: &Service) -> &[String] {
    svc.metadata.finalizers.as_deref().unwrap_or_default()
}

/// Whether the Service carries our finalizer *and* our ownership mark for `class`.
pub fn added_by_us(svc: &Service, class: &str) -> bool {
    finalizers(svc).iter().any(|f| f == FINALIZER)
        && svc
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(OWNER_ANNOTATION))
            .is_some_and(|v| v == class)
}

/// Adds our finalizer and mark, or `None` when both are there.
pub fn add_patch(svc: &Service, class: &str) -> Option<Value> {
    if added_by_us(svc, class) {
        return None;
    }
    let mut list = finalizers(svc).to_vec();
    if !list.iter().any(|f| f == FINALIZER) {
        list.push(FINALIZER.to_string());
    }
    Some(json!({
        "metadata": {
            "resourceVersion": svc.metadata.resource_version,
            "finalizers": list,
            "annotations": {OWNER_ANNOTATION: class},
        }
    }))
}

/// Removes our finalizer and mark, or `None` when we did not add it (then it is not ours
/// to remove, even if a finalizer of that name is there).
pub fn remove_patch(svc: &Service, class: &str) -> Option<Value> {
    if !added_by_us(svc, class) {
        return None;
    }
    let list: Vec<&String> = finalizers(svc).iter().filter(|f| *f != FINALIZER).collect();
    Some(json!({
        "metadata": {
            "resourceVersion": svc.metadata.resource_version,
            "finalizers": if list.is_empty() { Value::Null } else { json!(list) },
            "annotations": {OWNER_ANNOTATION: Value::Null},
        }
    }))
}
