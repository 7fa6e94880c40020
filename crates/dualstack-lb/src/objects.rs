//! Minimal Kubernetes object types: exactly the fields the decision reads.
//!
//! They mirror `v1 Service`, `v1 Node`, `discovery.k8s.io/v1 EndpointSlice` and
//! `coordination.k8s.io/v1 Lease` field for field (camelCase names, unknown fields ignored,
//! missing or `null` optional fields defaulted), so the YAML or JSON `kubectl get … -o yaml`
//! prints deserializes straight into them, and so does the JSON of the corresponding
//! `k8s-openapi` types (which is how the in-cluster controller converts its objects).
//! We do not depend on `k8s-openapi`/`kube` here: they are heavy and change major version
//! every few months, and the decision needs only a few dozen fields.
//!
//! Field names: `rename_all = "camelCase"` derives `clusterIps` from `cluster_ips`, but the
//! API spells acronyms in capitals (`clusterIPs`, `podCIDRs`, `externalIPs`, `ipMode`), so
//! every field whose Kubernetes name holds an acronym carries an explicit `rename`. The
//! test `tests/openapi_roundtrip.rs` serializes fully populated `k8s-openapi` objects and
//! checks that every field mirrored here arrives, so a wrong name cannot go unnoticed.
//!
//! Strings are [`CompactString`]s: up to 24 bytes live inside the field itself, with no heap
//! allocation. Almost every string of these objects is that short — names, namespaces,
//! families, protocols, policies, addresses — and a 10,000-Service dump holds about 300,000
//! of them, each of which would otherwise be its own allocation of 32 bytes or more (the
//! offline agent's peak at 10,000 Services fell by 9 MiB, see BENCHMARKS.md). A
//! `CompactString` reads as a `&str` (`as_str`, `Deref`), compares with `&str`, and is built
//! from `&str` or `String` with `into()`.

use std::collections::BTreeMap;

use compact_str::CompactString;
use serde::{Deserialize, Deserializer, Serialize};

pub use crate::label_map::LabelMap;
use crate::time::Timestamp;

/// Deserializes `null` as the type's default (kubectl prints `null` for some empty fields).
/// Public for other crates' object types that mirror the API the same way (the doctor's).
pub fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Deserializes a list, `null` as empty, with no spare capacity. Decoded from JSON text
/// (a streamed dump), a list's length is not known up front and its vector takes room for
/// four entries at the first: 4.4 MiB more at the offline agent's peak at 10,000 Services,
/// whose every Service has one port, two families and two ClusterIPs.
pub fn null_default_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let mut list: Vec<T> = null_default(deserializer)?;
    list.shrink_to_fit();
    Ok(list)
}

/// `metadata` of any object (the subset we read).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectMeta {
    /// `metadata.name`.
    #[serde(deserialize_with = "null_default")]
    pub name: CompactString,
    /// `metadata.namespace` (empty for cluster-scoped objects).
    #[serde(deserialize_with = "null_default")]
    pub namespace: CompactString,
    /// `metadata.creationTimestamp` (older Services win port conflicts).
    pub creation_timestamp: Option<Timestamp>,
    /// Set once the object is being deleted (finalizers may keep it visible for a while).
    pub deletion_timestamp: Option<Timestamp>,
    /// `metadata.labels` (a compact sorted map: see [`LabelMap`]).
    #[serde(deserialize_with = "null_default")]
    pub labels: LabelMap,
    /// Only the annotations the decision reads ([`ANNOTATION_PREFIXES`]); others — such as
    /// kubectl's `last-applied-configuration`, often kilobytes per object — are dropped while
    /// reading, so a large cluster does not cost memory for text nobody looks at.
    #[serde(deserialize_with = "read_annotations")]
    pub annotations: BTreeMap<String, String>,
}

/// Annotation key prefixes kept by [`ObjectMeta`]: ours, and the Service annotations of the
/// Kubernetes cloud-provider contract (`service.beta.kubernetes.io/…`).
pub const ANNOTATION_PREFIXES: [&str; 2] = ["dualstack.io/", "service.beta.kubernetes.io/"];

fn read_annotations<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: Deserializer<'de>,
{
    struct Keep;
    impl<'de> serde::de::Visitor<'de> for Keep {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map of annotation strings, or null")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut kept = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if ANNOTATION_PREFIXES.iter().any(|p| key.starts_with(p)) {
                    kept.insert(key, map.next_value::<String>()?);
                } else {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
            Ok(kept)
        }
    }
    deserializer.deserialize_option(Keep)
}

/// `v1 Service`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Service {
    /// `metadata`.
    pub metadata: ObjectMeta,
    /// `spec`.
    pub spec: ServiceSpec,
    /// The published status: pool allocation keeps the addresses recorded here.
    pub status: ServiceStatus,
}

/// `v1 ServiceStatus` (the subset we read).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceStatus {
    /// `status.loadBalancer`.
    #[serde(deserialize_with = "null_default")]
    pub load_balancer: LoadBalancerStatus,
}

/// `v1 LoadBalancerStatus`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LoadBalancerStatus {
    /// `status.loadBalancer.ingress`.
    #[serde(deserialize_with = "null_default_list")]
    pub ingress: Vec<LoadBalancerIngress>,
}

/// `v1 LoadBalancerIngress` (the subset we read).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LoadBalancerIngress {
    /// `ip` (hostname-only entries have none).
    pub ip: Option<CompactString>,
}

/// `v1 ServiceSpec` (the subset we read).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceSpec {
    /// `ClusterIP` (the API default), `NodePort`, `LoadBalancer`, `ExternalName`.
    #[serde(rename = "type")]
    pub type_: Option<CompactString>,
    /// `spec.loadBalancerClass`: who implements the Service (ours is configured).
    pub load_balancer_class: Option<CompactString>,
    /// Allocated families in order (`IPv4`, `IPv6`); the first is the primary.
    #[serde(deserialize_with = "null_default_list")]
    pub ip_families: Vec<CompactString>,
    /// `SingleStack` (the API default), `PreferDualStack`, `RequireDualStack`.
    pub ip_family_policy: Option<CompactString>,
    /// `spec.clusterIPs`: the allocated ClusterIPs, primary first (`None` for headless).
    #[serde(rename = "clusterIPs", deserialize_with = "null_default_list")]
    pub cluster_ips: Vec<CompactString>,
    /// `spec.ports`.
    #[serde(deserialize_with = "null_default_list")]
    pub ports: Vec<ServicePort>,
    /// `Cluster` (the API default) or `Local`.
    pub external_traffic_policy: Option<CompactString>,
    /// `spec.loadBalancerSourceRanges`: CIDRs allowed to connect (empty: everyone).
    #[serde(deserialize_with = "null_default_list")]
    pub load_balancer_source_ranges: Vec<CompactString>,
    /// `spec.allocateLoadBalancerNodePorts` (read, never needed: we do not use node ports).
    pub allocate_load_balancer_node_ports: Option<bool>,
}

/// `v1 ServicePort`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServicePort {
    /// `name` (required when the Service has several ports).
    pub name: Option<CompactString>,
    /// `TCP` (the API default), `UDP` or `SCTP`.
    pub protocol: Option<CompactString>,
    /// `port`: what clients connect to.
    pub port: u16,
    /// `targetPort`: the backend's port number or name.
    pub target_port: Option<IntOrString>,
    /// `nodePort` (not used).
    pub node_port: Option<u16>,
}

/// `intstr.IntOrString`: a port number or a port name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    /// A port number.
    Int(i64),
    /// A port name.
    String(CompactString),
}

/// `v1 Node`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Node {
    /// `metadata`.
    pub metadata: ObjectMeta,
    /// `spec`.
    pub spec: NodeSpec,
    /// `status`.
    pub status: NodeStatus,
}

/// `v1 NodeSpec` (the subset we read).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeSpec {
    /// `spec.unschedulable`: cordoned.
    #[serde(deserialize_with = "null_default")]
    pub unschedulable: bool,
    /// `spec.taints`.
    #[serde(deserialize_with = "null_default_list")]
    pub taints: Vec<Taint>,
}

/// `v1 Taint`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Taint {
    /// `key`.
    #[serde(deserialize_with = "null_default")]
    pub key: CompactString,
    /// `value`.
    pub value: Option<CompactString>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    #[serde(deserialize_with = "null_default")]
    pub effect: CompactString,
}

/// `v1 NodeStatus` (the subset we read).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeStatus {
    /// `status.addresses`.
    #[serde(deserialize_with = "null_default_list")]
    pub addresses: Vec<NodeAddress>,
    /// `status.conditions`.
    #[serde(deserialize_with = "null_default_list")]
    pub conditions: Vec<NodeCondition>,
}

/// `v1 NodeAddress`: `type` is `InternalIP`, `ExternalIP`, `Hostname`, …
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeAddress {
    /// `type`.
    #[serde(rename = "type")]
    pub type_: CompactString,
    /// `address`.
    pub address: CompactString,
}

/// `v1 NodeCondition` (the subset we read).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeCondition {
    /// `type` (`Ready`, `NetworkUnavailable`, …).
    #[serde(rename = "type")]
    pub type_: CompactString,
    /// `True`, `False` or `Unknown`.
    pub status: CompactString,
    /// `reason`, when set.
    pub reason: Option<CompactString>,
}

/// `discovery.k8s.io/v1 EndpointSlice`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointSlice {
    /// `metadata` (the `kubernetes.io/service-name` label ties it to its Service).
    pub metadata: ObjectMeta,
    /// `IPv4`, `IPv6` or `FQDN`.
    pub address_type: CompactString,
    /// `endpoints`.
    #[serde(deserialize_with = "null_default_list")]
    pub endpoints: Vec<Endpoint>,
    /// `ports`.
    #[serde(deserialize_with = "null_default_list")]
    pub ports: Vec<EndpointPort>,
}

/// `discovery.k8s.io/v1 Endpoint`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Endpoint {
    /// `addresses` (the first is used).
    #[serde(deserialize_with = "null_default_list")]
    pub addresses: Vec<CompactString>,
    /// `conditions`.
    pub conditions: EndpointConditions,
    /// `nodeName`: where the endpoint runs (needed for `externalTrafficPolicy: Local`).
    pub node_name: Option<CompactString>,
}

/// `discovery.k8s.io/v1 EndpointConditions`; `None` means unknown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointConditions {
    /// `ready`: serving and not terminating.
    pub ready: Option<bool>,
    /// `serving`: passes its readiness probe (even while terminating).
    pub serving: Option<bool>,
    /// `terminating`.
    pub terminating: Option<bool>,
}

/// `discovery.k8s.io/v1 EndpointPort`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointPort {
    /// `name`: matches the Service port's name.
    pub name: Option<CompactString>,
    /// `protocol`.
    pub protocol: Option<CompactString>,
    /// `port`: the backend's port number.
    pub port: Option<u16>,
}

/// `coordination.k8s.io/v1 Lease`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Lease {
    /// `metadata` (`<lease namespace>/dualstack-agent-<node>` for our agents).
    pub metadata: ObjectMeta,
    /// `spec`.
    pub spec: LeaseSpec,
}

/// `coordination.k8s.io/v1 LeaseSpec` (the subset we read).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LeaseSpec {
    /// `holderIdentity`: the agent's identity (its node name).
    pub holder_identity: Option<CompactString>,
    /// `leaseDurationSeconds`.
    pub lease_duration_seconds: Option<i64>,
    /// `renewTime`: the agent's last renewal.
    pub renew_time: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_ignored_and_nulls_defaulted() {
        let json = r#"{
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default", "labels": null,
                         "creationTimestamp": "2024-05-01T12:00:00Z", "uid": "x"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "targetPort": "http"}],
                     "ipFamilies": ["IPv6", "IPv4"], "sessionAffinity": "None"},
            "status": {"loadBalancer": {}}
        }"#;
        let svc: Service = serde_json::from_str(json).unwrap();
        assert_eq!(svc.metadata.name, "web");
        assert!(svc.metadata.labels.is_empty());
        assert_eq!(svc.spec.ip_families, ["IPv6", "IPv4"]);
        assert_eq!(
            svc.spec.ports[0].target_port,
            Some(IntOrString::String("http".into()))
        );
    }

    #[test]
    fn bad_field_types_are_errors_naming_the_problem() {
        let err = serde_json::from_str::<Service>(r#"{"spec":{"ports":[{"port":"eighty"}]}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("eighty"), "{err}");
    }

    #[test]
    fn only_the_annotations_we_read_are_kept() {
        let json = r#"{"metadata": {"name": "web", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{\"huge\": true}",
            "service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0/8",
            "dualstack.io/addresses": "192.0.2.1",
            "svccontroller.k3s.cattle.io/priorityclassname": ""}}}"#;
        let svc: Service = serde_json::from_str(json).unwrap();
        let keys: Vec<&str> = svc
            .metadata
            .annotations
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "dualstack.io/addresses",
                "service.beta.kubernetes.io/load-balancer-source-ranges"
            ]
        );
        for empty in [r#"{"metadata":{"annotations":null}}"#, r#"{"metadata":{}}"#] {
            let svc: Service = serde_json::from_str(empty).unwrap();
            assert!(svc.metadata.annotations.is_empty());
        }
        let from_value: Service =
            serde_json::from_value(serde_json::from_str(json).unwrap()).unwrap();
        assert_eq!(
            from_value.metadata.annotations.len(),
            2,
            "same through a Value (YAML path)"
        );
        let bad =
            serde_json::from_str::<Service>(r#"{"metadata":{"annotations":{"dualstack.io/x":1}}}"#);
        assert!(bad.is_err(), "a kept annotation must be a string");
    }
}
