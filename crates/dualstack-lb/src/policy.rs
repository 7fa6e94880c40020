//! The Service fields the decision branches on, as types: `spec.ipFamilyPolicy`,
//! `spec.externalTrafficPolicy` and the `ipMode` we publish. Each reads and writes exactly the
//! API's strings; a value the API would not accept is a [`SpecError`] naming the field, as is
//! every other spec the decision cannot use (the `InvalidSpec` condition's message).

use std::fmt;

use serde::Serialize;

/// Why a Service's spec cannot be used (the `InvalidSpec` condition says this).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("spec.ipFamilyPolicy {0:?} is not SingleStack, PreferDualStack or RequireDualStack")]
    /// An unknown `spec.ipFamilyPolicy` (the value).
    FamilyPolicy(String),
    #[error("spec.externalTrafficPolicy {0:?} is not Cluster or Local")]
    /// An unknown `spec.externalTrafficPolicy` (the value).
    TrafficPolicy(String),
    #[error("spec.ipFamilies is empty and spec.clusterIPs has no address")]
    /// Neither `spec.ipFamilies` nor `spec.clusterIPs` names a family.
    NoFamilies,
    #[error("loadBalancerSourceRanges entry {0:?} is not a CIDR")]
    /// A source range that does not parse (the entry).
    SourceRange(String),
    #[error("spec.ports is empty")]
    /// No ports.
    NoPorts,
    #[error("port {port} has protocol {protocol:?}, not TCP, UDP or SCTP")]
    /// A port with an unknown protocol.
    Protocol {
        /// The port number.
        port: u16,
        /// The protocol as written.
        protocol: String,
    },
}

/// `spec.ipFamilyPolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum IpFamilyPolicy {
    /// The API default: only the first family is served.
    #[default]
    SingleStack,
    /// Each family that has an address is served; a missing one is a note.
    PreferDualStack,
    /// Both families or nothing.
    RequireDualStack,
}

impl IpFamilyPolicy {
    /// Reads the field; absent means the API default (`SingleStack`).
    pub fn from_spec(value: Option<&str>) -> Result<IpFamilyPolicy, SpecError> {
        match value {
            None | Some("SingleStack") => Ok(IpFamilyPolicy::SingleStack),
            Some("PreferDualStack") => Ok(IpFamilyPolicy::PreferDualStack),
            Some("RequireDualStack") => Ok(IpFamilyPolicy::RequireDualStack),
            Some(other) => Err(SpecError::FamilyPolicy(other.to_string())),
        }
    }

    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            IpFamilyPolicy::SingleStack => "SingleStack",
            IpFamilyPolicy::PreferDualStack => "PreferDualStack",
            IpFamilyPolicy::RequireDualStack => "RequireDualStack",
        }
    }
}

/// `spec.externalTrafficPolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum TrafficPolicy {
    /// The API default: any node, masqueraded.
    #[default]
    Cluster,
    /// Only nodes with a ready endpoint; the client's source address is kept.
    Local,
}

impl TrafficPolicy {
    /// Reads the field; absent means the API default (`Cluster`).
    pub fn from_spec(value: Option<&str>) -> Result<TrafficPolicy, SpecError> {
        match value {
            None | Some("Cluster") => Ok(TrafficPolicy::Cluster),
            Some("Local") => Ok(TrafficPolicy::Local),
            Some(other) => Err(SpecError::TrafficPolicy(other.to_string())),
        }
    }

    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TrafficPolicy::Cluster => "Cluster",
            TrafficPolicy::Local => "Local",
        }
    }
}

/// `status.loadBalancer.ingress[].ipMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum IpMode {
    /// Our agent's data plane takes the traffic (nftables mode).
    Proxy,
    /// kube-proxy takes it (kube-proxy mode).
    #[serde(rename = "VIP")]
    Vip,
}

impl IpMode {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            IpMode::Proxy => "Proxy",
            IpMode::Vip => "VIP",
        }
    }
}

macro_rules! text_like {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    )*};
}
text_like!(IpFamilyPolicy, TrafficPolicy, IpMode);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_strings_round_trip_and_others_name_the_field() {
        for p in [
            IpFamilyPolicy::SingleStack,
            IpFamilyPolicy::PreferDualStack,
            IpFamilyPolicy::RequireDualStack,
        ] {
            assert_eq!(IpFamilyPolicy::from_spec(Some(p.as_str())), Ok(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        assert_eq!(
            IpFamilyPolicy::from_spec(None),
            Ok(IpFamilyPolicy::SingleStack)
        );
        assert!(
            IpFamilyPolicy::from_spec(Some("Dual"))
                .unwrap_err()
                .to_string()
                .contains("spec.ipFamilyPolicy \"Dual\"")
        );
        assert_eq!(
            TrafficPolicy::from_spec(Some("Local")),
            Ok(TrafficPolicy::Local)
        );
        assert!(
            TrafficPolicy::from_spec(Some("local"))
                .unwrap_err()
                .to_string()
                .contains("spec.externalTrafficPolicy \"local\"")
        );
        assert_eq!(serde_json::to_value(IpMode::Vip).unwrap(), "VIP");
        assert_eq!(IpMode::Proxy, "Proxy");
    }
}

#[cfg(test)]
mod decided {
    #![allow(clippy::unwrap_used)]
    use crate::{Config, Snapshot, decide};

    #[test]
    fn a_service_with_a_policy_the_api_would_refuse_is_invalid_spec_naming_the_field() {
        let snapshot = Snapshot::parse(
            "kind: Service\nmetadata: {name: web, namespace: default}\nspec: {type: LoadBalancer, loadBalancerClass: dualstack.io/lb, ipFamilies: [IPv4], externalTrafficPolicy: local, ports: [{port: 80}]}\n",
        )
        .unwrap();
        let d = decide(
            &snapshot,
            &Config::default(),
            "2026-01-01T00:00:00Z".parse().unwrap(),
        );
        let ready = &d.services[0].conditions[0];
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "InvalidSpec")
        );
        assert!(
            ready
                .message
                .contains("spec.externalTrafficPolicy \"local\" is not Cluster or Local"),
            "{}",
            ready.message
        );
    }
}
