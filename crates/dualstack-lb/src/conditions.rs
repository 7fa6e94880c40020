//! Service conditions and Events with stable `type`/`reason` strings (the table is in the
//! crate docs). Events mirror the conditions that are not OK.

use serde::Serialize;

/// Condition type: is the Service served (status published, frontends programmed)?
pub const TYPE_READY: &str = "dualstack.io/LoadBalancerReady";
/// Condition type: did the Service lose a node address + protocol + port to an older one?
pub const TYPE_PORT_CONFLICT: &str = "dualstack.io/PortConflict";

/// `LoadBalancerReady=True`: served on at least one node for every family it gets.
pub const REASON_READY: &str = "Ready";
/// `LoadBalancerReady=False`: a spec field we cannot use (no families, bad source range,
/// unknown protocol, no ports).
pub const REASON_INVALID_SPEC: &str = "InvalidSpec";
/// `LoadBalancerReady=False`: node selection (readiness, agent Lease, labels, pools) left no node.
pub const REASON_NO_ELIGIBLE_NODES: &str = "NoEligibleNodes";
/// `LoadBalancerReady=False`: `externalTrafficPolicy: Local` and no eligible node has a ready endpoint.
pub const REASON_NO_LOCAL_ENDPOINTS: &str = "NoLocalEndpoints";
/// `LoadBalancerReady=False`: a required family (or every family) has no address on any eligible node.
pub const REASON_FAMILY_UNAVAILABLE: &str = "FamilyUnavailable";
/// `LoadBalancerReady=False` when every candidate address was lost to older Services;
/// `PortConflict=True` when at least one was.
pub const REASON_PORT_CONFLICT: &str = "PortConflict";
/// `LoadBalancerReady=False`: `dualstack.io/pool` names a pool that does not exist or is unusable.
pub const REASON_POOL_NOT_FOUND: &str = "PoolNotFound";
/// `LoadBalancerReady=False`: a requested address is in no (or not the named) pool.
pub const REASON_ADDRESS_NOT_IN_POOL: &str = "AddressNotInPool";
/// `LoadBalancerReady=False`: a requested address is held by a Service that does not share.
pub const REASON_ADDRESS_IN_USE: &str = "AddressInUse";
/// `LoadBalancerReady=False`: same sharing key, but a port overlaps or traffic policy is Local.
pub const REASON_SHARING_CLASH: &str = "SharingClash";
/// `LoadBalancerReady=False`: every address of the Service's pools for a family is in use.
pub const REASON_POOL_EXHAUSTED: &str = "PoolExhausted";
/// `LoadBalancerReady=False` (or the IPv6 family not served): a pool that follows the
/// nodes' IPv6 prefix has no node that reports one.
pub const REASON_NO_PREFIX: &str = "NoPrefix";
/// Condition type (Services of prefix-following pools only): do the pool's nodes report the
/// same prefixes?
pub const TYPE_PREFIX_MISMATCH: &str = "dualstack.io/PrefixMismatch";
/// `PrefixMismatch=True`: the pool's nodes report different prefixes (named).
pub const REASON_PREFIX_MISMATCH: &str = "PrefixMismatch";
/// `PrefixMismatch=False`.
pub const REASON_PREFIXES_AGREE: &str = "PrefixesAgree";
/// `PortConflict=False`.
pub const REASON_NO_CONFLICT: &str = "NoConflict";

/// One entry of the Service's `status.conditions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True` or `False`.
    pub status: String,
    pub reason: String,
    pub message: String,
}

impl Condition {
    pub(crate) fn new(type_: &str, ok: bool, reason: &str, message: String) -> Condition {
        Condition {
            type_: type_.to_string(),
            status: if ok { "True" } else { "False" }.to_string(),
            reason: reason.to_string(),
            message,
        }
    }

    /// Whether this condition reports a problem (`Ready` False, `PortConflict` True).
    pub fn is_problem(&self) -> bool {
        match self.type_.as_str() {
            TYPE_PORT_CONFLICT | TYPE_PREFIX_MISMATCH => self.status == "True",
            _ => self.status != "True",
        }
    }
}

/// An Event to record on the Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// `Warning` (every Event we emit mirrors a problem).
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
}

/// The Events that mirror the problem conditions.
pub(crate) fn events_for(conditions: &[Condition]) -> Vec<Event> {
    conditions
        .iter()
        .filter(|c| c.is_problem())
        .map(|c| Event {
            type_: "Warning".to_string(),
            reason: c.reason.clone(),
            message: c.message.clone(),
        })
        .collect()
}
