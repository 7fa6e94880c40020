//! Backends of a Service port, read from its EndpointSlices.
//!
//! A slice belongs to the Service named by its `kubernetes.io/service-name` label in the same
//! namespace; this covers slices the EndpointSlice controller writes for selector Services
//! and slices written by hand for Services without a selector. A Service port matches the
//! slice port with the same name (both empty for a single unnamed port) and protocol; the
//! slice port's number is the resolved target port, so named `targetPort`s work. Which
//! endpoints are usable, and which address of each is used, was settled when the slice was
//! read ([`crate::slice_backends`]).

use compact_str::CompactString;
use dualstack_ruleset::{Backend, Protocol};

use crate::objects::{IntOrString, ServicePort};
use crate::slice_backends::SliceBackends;

/// Label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A usable backend and the node it runs on (if the slice says).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Located {
    pub node: Option<CompactString>,
    pub backend: Backend,
}

/// Parses a Kubernetes protocol name; `None` (unset) is TCP.
pub(crate) fn protocol(name: Option<&str>) -> Option<Protocol> {
    match name.unwrap_or("TCP") {
        "TCP" => Some(Protocol::Tcp),
        "UDP" => Some(Protocol::Udp),
        "SCTP" => Some(Protocol::Sctp),
        _ => None,
    }
}

/// Usable backends for one Service port, sorted and without duplicates.
pub(crate) fn backends(
    port: &ServicePort,
    proto: Protocol,
    slices: &[&SliceBackends],
) -> Vec<Located> {
    let port_name = port.name.as_deref().unwrap_or_default();
    let mut out = Vec::new();
    for slice in slices {
        let Some(slice_port) = slice
            .ports
            .iter()
            .find(|p| p.name == port_name && p.protocol == proto)
        else {
            continue;
        };
        let target = match (slice_port.port, &port.target_port) {
            (Some(n), _) => n,
            (None, Some(IntOrString::Int(n))) => match u16::try_from(*n) {
                Ok(n) if n > 0 => n,
                _ => continue,
            },
            (None, None) => port.port,
            (None, Some(IntOrString::String(_))) => continue,
        };
        out.extend(slice.endpoints.iter().map(|endpoint| Located {
            node: endpoint.node.clone(),
            backend: Backend {
                addr: endpoint.addr,
                port: target,
            },
        }));
    }
    out.sort();
    out.dedup();
    // Kept for the whole decision: no spare capacity (pushes leave up to twice the length).
    out.shrink_to_fit();
    out
}
