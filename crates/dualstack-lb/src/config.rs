//! What the operator configures: our class, whether we are the default, the data-plane mode,
//! where agent Leases live, and node-selection switches.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Our `spec.loadBalancerClass` unless configured otherwise.
pub const DEFAULT_CLASS: &str = "dualstack.io/lb";
/// Namespace of the per-node agent Leases unless configured otherwise.
pub const DEFAULT_LEASE_NAMESPACE: &str = "dualstack-system";
/// Name prefix of a node's agent Lease: `dualstack-agent-<node>`.
pub const LEASE_NAME_PREFIX: &str = "dualstack-agent-";
/// Label on every agent Lease (for watching them with a selector).
pub const LEASE_LABEL: (&str, &str) = ("app.kubernetes.io/name", "dualstack-agent");

/// Who carries the traffic to the backends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Our agent programs nftables on each node; `ipMode: Proxy`.
    #[default]
    Nftables,
    /// kube-proxy handles the ingress addresses; we program nothing; `ipMode: VIP`.
    KubeProxy,
}

impl Mode {
    /// The `status.loadBalancer.ingress[].ipMode` this mode publishes.
    pub fn ip_mode(self) -> crate::policy::IpMode {
        match self {
            Mode::Nftables => crate::policy::IpMode::Proxy,
            Mode::KubeProxy => crate::policy::IpMode::Vip,
        }
    }

    /// The flag value: `nftables` or `kube-proxy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Nftables => "nftables",
            Mode::KubeProxy => "kube-proxy",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mode name that is neither `nftables` nor `kube-proxy`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mode {0:?} is not one of: nftables, kube-proxy")]
pub struct ModeError(pub String);

impl FromStr for Mode {
    type Err = ModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "nftables" => Ok(Mode::Nftables),
            "kube-proxy" => Ok(Mode::KubeProxy),
            other => Err(ModeError(other.to_string())),
        }
    }
}

/// The decision's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// Our `spec.loadBalancerClass`.
    pub class: String,
    /// Also handle `type: LoadBalancer` Services with no `loadBalancerClass`.
    pub default_class: bool,
    /// Who carries the traffic: our agent (`nftables`) or kube-proxy.
    pub mode: Mode,
    /// Namespace of the per-node agent Leases.
    pub lease_namespace: String,
    /// Ignore `node.kubernetes.io/exclude-from-external-load-balancers` (single-node labs
    /// where the label was set by an installer).
    pub ignore_exclusion_label: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            class: DEFAULT_CLASS.to_string(),
            default_class: false,
            mode: Mode::Nftables,
            lease_namespace: DEFAULT_LEASE_NAMESPACE.to_string(),
            ignore_exclusion_label: false,
        }
    }
}

impl Config {
    /// The name of `node`'s agent Lease.
    pub fn lease_name(node: &str) -> String {
        format!("{LEASE_NAME_PREFIX}{node}")
    }
}
