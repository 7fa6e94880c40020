//! The Service status we write (pure): `status.loadBalancer.ingress` and our
//! `status.conditions`, as a JSON merge patch for the `status` subresource — or `None` when
//! the Service already shows exactly that, so an unchanged Service costs no request.
//!
//! * The whole `ingress` list is ours (we only write Services we own).
//! * Conditions: only types starting with [`CONDITION_PREFIX`] are ours; every other
//!   condition is kept as it is, in its place. `lastTransitionTime` changes only when a
//!   condition's `status` does; `observedGeneration` is the Service's `metadata.generation`.
//! * The patch carries `metadata.resourceVersion`, so the API server refuses it (409
//!   Conflict) when the Service changed since we read it: we never overwrite what we did
//!   not see; the reconcile is retried with the new object.

use dualstack_lb::decision::ServiceDecision;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::{Value, json};

/// Condition types we own start with this.
pub const CONDITION_PREFIX: &str = "dualstack.io/";

fn is_ours(c: &Condition) -> bool {
    c.type_.starts_with(CONDITION_PREFIX)
}

fn current_conditions(svc: &Service) -> &[Condition] {
    svc.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
}

/// The ingress entries the Service shows now, as `(ip, ipMode)`.
pub fn current_ingress(svc: &Service) -> Vec<(Option<String>, Option<String>)> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|list| {
            list.iter()
                .map(|i| (i.ip.clone(), i.ip_mode.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn desired_ingress(decision: &ServiceDecision) -> Vec<(Option<String>, Option<String>)> {
    decision
        .ingress
        .iter()
        .map(|i| (Some(i.ip.to_string()), Some(i.ip_mode.to_string())))
        .collect()
}

/// Whether the published ingress differs from the decision's.
pub fn ingress_changed(svc: &Service, decision: &ServiceDecision) -> bool {
    current_ingress(svc) != desired_ingress(decision)
}

/// The conditions list after applying the decision: others' conditions untouched and in
/// place, ours updated in place (keeping `lastTransitionTime` when the status did not
/// change), ours that the decision no longer has dropped, new ones appended.
pub fn desired_conditions(svc: &Service, decision: &ServiceDecision, now: Time) -> Vec<Condition> {
    let current = current_conditions(svc);
    let generation = svc.metadata.generation;
    let ours = |c: &dualstack_lb::conditions::Condition| {
        let since = current
            .iter()
            .find(|old| old.type_ == c.type_ && old.status == c.status)
            .map_or_else(|| now.clone(), |old| old.last_transition_time.clone());
        Condition {
            type_: c.type_.to_string(),
            status: c.status.to_string(),
            reason: c.reason.to_string(),
            message: c.message.clone(),
            observed_generation: generation,
            last_transition_time: since,
        }
    };
    let mut out = Vec::new();
    for old in current {
        if !is_ours(old) {
            out.push(old.clone());
        } else if let Some(c) = decision.conditions.iter().find(|c| c.type_ == old.type_)
            && !out.iter().any(|o: &Condition| o.type_ == c.type_)
        {
            out.push(ours(c));
        }
    }
    for c in &decision.conditions {
        if !out.iter().any(|o| o.type_ == c.type_) {
            out.push(ours(c));
        }
    }
    out
}

fn same_conditions(a: &[Condition], b: &[Condition]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.type_ == y.type_
                && x.status == y.status
                && x.reason == y.reason
                && x.message == y.message
                && x.observed_generation == y.observed_generation
        })
}

fn patch(
    svc: &Service,
    ingress: &[(Option<String>, Option<String>)],
    conditions: &[Condition],
) -> Value {
    let ingress: Value = if ingress.is_empty() {
        Value::Null
    } else {
        ingress
            .iter()
            .map(|(ip, mode)| json!({"ip": ip, "ipMode": mode}))
            .collect()
    };
    let conditions = if conditions.is_empty() {
        Value::Null
    } else {
        serde_json::to_value(conditions).unwrap_or(Value::Null)
    };
    json!({
        "metadata": {"resourceVersion": svc.metadata.resource_version},
        "status": {"loadBalancer": {"ingress": ingress}, "conditions": conditions},
    })
}

/// The merge patch that makes `svc`'s status show `decision`, or `None` when it already does.
pub fn status_patch(svc: &Service, decision: &ServiceDecision, now: Time) -> Option<Value> {
    let conditions = desired_conditions(svc, decision, now);
    if !ingress_changed(svc, decision) && same_conditions(current_conditions(svc), &conditions) {
        return None;
    }
    Some(patch(svc, &desired_ingress(decision), &conditions))
}

/// The merge patch that removes everything we wrote (all ingress entries and our
/// conditions), or `None` when there is nothing of ours left.
pub fn clear_patch(svc: &Service) -> Option<Value> {
    let current = current_conditions(svc);
    if current_ingress(svc).is_empty() && !current.iter().any(is_ours) {
        return None;
    }
    let others: Vec<Condition> = current.iter().filter(|c| !is_ours(c)).cloned().collect();
    Some(patch(svc, &[], &others))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dualstack_lb::conditions::Condition as CoreCondition;
    use dualstack_lb::decision::{Ingress, ServiceWhy};

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    fn decision(ready: bool, ingress: &[&str]) -> ServiceDecision {
        let cond = |type_: &str, status: &str, reason: &str| CoreCondition {
            type_: type_.parse().unwrap(),
            status: status.parse().unwrap(),
            reason: reason.parse().unwrap(),
            message: format!("{reason} message"),
        };
        ServiceDecision {
            namespace: "default".into(),
            name: "web".into(),
            ingress: ingress
                .iter()
                .map(|ip| Ingress {
                    ip: ip.parse().unwrap(),
                    ip_mode: dualstack_lb::policy::IpMode::Proxy,
                })
                .collect(),
            conditions: vec![
                if ready {
                    cond("dualstack.io/LoadBalancerReady", "True", "Ready")
                } else {
                    cond("dualstack.io/LoadBalancerReady", "False", "NoEligibleNodes")
                },
                cond("dualstack.io/PortConflict", "False", "NoConflict"),
            ],
            events: vec![],
            why: ServiceWhy {
                load_balancer_class: None,
                created: None,
                families: vec![],
                ip_family_policy: Default::default(),
                external_traffic_policy: Default::default(),
                source_ranges: vec![],
                pool: None,
                ports: vec![],
                nodes: vec![],
                notes: vec![],
                prefix_addresses: vec![],
            },
        }
    }

    fn service(status: Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "resourceVersion": "9", "generation": 2},
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn transition_times_move_only_when_a_status_flips_and_others_conditions_stay() {
        let old = time("2025-01-01T00:00:00Z");
        let now = time("2026-01-01T00:00:00Z");
        let svc = service(json!({
            "loadBalancer": {"ingress": [{"ip": "192.0.2.10", "ipMode": "Proxy"}]},
            "conditions": [
                {"type": "dualstack.io/LoadBalancerReady", "status": "True", "reason": "Ready",
                 "message": "Ready message", "observedGeneration": 2, "lastTransitionTime": "2025-01-01T00:00:00Z"},
                {"type": "example.com/Mine", "status": "True", "reason": "X", "message": "",
                 "lastTransitionTime": "2024-01-01T00:00:00Z"},
                {"type": "dualstack.io/PortConflict", "status": "False", "reason": "NoConflict",
                 "message": "NoConflict message", "observedGeneration": 2, "lastTransitionTime": "2025-01-01T00:00:00Z"}
            ]
        }));
        // Same decision: no patch at all.
        assert_eq!(
            status_patch(&svc, &decision(true, &["192.0.2.10"]), now.clone()),
            None
        );

        // Ready flips: only its transition time moves; every condition keeps its place.
        let conditions = desired_conditions(&svc, &decision(false, &[]), now.clone());
        let types: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            [
                "dualstack.io/LoadBalancerReady",
                "example.com/Mine",
                "dualstack.io/PortConflict"
            ]
        );
        assert_eq!(conditions[0].last_transition_time, now);
        assert_eq!(conditions[2].last_transition_time, old);
        let patch = status_patch(&svc, &decision(false, &[]), now).unwrap();
        assert_eq!(patch["status"]["loadBalancer"]["ingress"], Value::Null);
        assert_eq!(patch["metadata"]["resourceVersion"], "9");
    }

    #[test]
    fn clearing_removes_only_what_we_wrote() {
        let svc = service(json!({
            "loadBalancer": {"ingress": [{"ip": "192.0.2.10", "ipMode": "Proxy"}]},
            "conditions": [
                {"type": "example.com/Mine", "status": "True", "reason": "X", "message": "",
                 "lastTransitionTime": "2024-01-01T00:00:00Z"},
                {"type": "dualstack.io/LoadBalancerReady", "status": "True", "reason": "Ready",
                 "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z"}
            ]
        }));
        let patch = clear_patch(&svc).unwrap();
        assert_eq!(patch["status"]["loadBalancer"]["ingress"], Value::Null);
        assert_eq!(patch["status"]["conditions"].as_array().unwrap().len(), 1);
        assert_eq!(patch["status"]["conditions"][0]["type"], "example.com/Mine");
        assert_eq!(clear_patch(&service(json!({"loadBalancer": {}}))), None);
    }
}
