//! `k8s-openapi` objects to the decision core's own types, by a serde round trip (the core's
//! types mirror the API's JSON field for field, see [`dualstack_lb::objects`]).

use serde::Serialize;
use serde::de::DeserializeOwned;

/// An object that could not be converted (a bug: the core's types do not match the API).
#[derive(Debug, thiserror::Error)]
#[error("converting {kind} {name} for the decision: {source}")]
pub struct ConvertError {
    /// The object's kind (`Service`, `Node`, …).
    pub kind: &'static str,
    /// Its `namespace/name` or name.
    pub name: String,
    /// Why its JSON did not fit the core's type.
    pub source: serde_json::Error,
}

/// Converts one API object into the matching core type.
pub fn convert<From: Serialize + kube::Resource, To: DeserializeOwned>(
    object: &From,
    kind: &'static str,
) -> Result<To, ConvertError> {
    let name = match object.meta().namespace.as_deref() {
        Some(ns) => format!("{ns}/{}", object.meta().name.as_deref().unwrap_or_default()),
        None => object.meta().name.clone().unwrap_or_default(),
    };
    serde_json::to_value(object)
        .and_then(serde_json::from_value)
        .map_err(|source| ConvertError { kind, name, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Service;

    #[test]
    fn a_dual_stack_service_keeps_every_field_the_decision_reads() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default",
                         "creationTimestamp": "2025-01-02T03:04:05Z",
                         "labels": {"svccontroller.k3s.cattle.io/lbpool": "edge"}},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": "dualstack.io/lb",
                     "ipFamilies": ["IPv6", "IPv4"], "ipFamilyPolicy": "RequireDualStack",
                     "clusterIPs": ["fd43::1", "10.43.0.1"], "externalTrafficPolicy": "Local",
                     "loadBalancerSourceRanges": ["192.0.2.0/24", "2001:db8::/32"],
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": "websecure"}]}
        }))
        .unwrap();
        let ours: dualstack_lb::objects::Service = convert(&svc, "Service").unwrap();
        assert_eq!(ours.metadata.name, "web");
        assert_eq!(
            ours.metadata.labels["svccontroller.k3s.cattle.io/lbpool"],
            "edge"
        );
        assert_eq!(ours.spec.ip_families, ["IPv6", "IPv4"]);
        assert_eq!(
            ours.spec.ip_family_policy.as_deref(),
            Some("RequireDualStack")
        );
        assert_eq!(ours.spec.external_traffic_policy.as_deref(), Some("Local"));
        assert_eq!(ours.spec.load_balancer_source_ranges.len(), 2);
        assert_eq!(ours.spec.ports[0].port, 443);
        assert_eq!(
            ours.spec.ports[0].target_port,
            Some(dualstack_lb::objects::IntOrString::String(
                "websecure".into()
            ))
        );
        assert_eq!(
            ours.metadata.creation_timestamp,
            Some("2025-01-02T03:04:05Z".parse().unwrap())
        );
    }
}
