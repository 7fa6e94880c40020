//! [`SliceBackends`]: an EndpointSlice reduced, as it is read, to what the decision reads.
//!
//! The decision asks three things of an EndpointSlice: which Service it belongs to (the
//! `kubernetes.io/service-name` label, in the slice's namespace), which ports it names, and
//! which of its endpoints are usable and on which node they run. A [`SliceBackends`] keeps
//! exactly that, and nothing the decision would read past:
//! - an endpoint is usable when it is ready, or serving and not terminating (unknown `ready`
//!   counts as ready, as kube-proxy does); of its addresses the first is used, and only when
//!   it parses and is of the slice's family — the others are not kept;
//! - a slice of a type other than `IPv4` or `IPv6` (`FQDN`) keeps no endpoints;
//! - a port whose protocol is not TCP, UDP or SCTP is not kept: no Service port matches it.
//!
//! Every snapshot reads its slices this way (a dump, or the API's stores), so the decision
//! has one input. A 10,000-Service dump holds 20,000 slices; the whole API shape
//! ([`EndpointSlice`]: metadata, conditions, address lists, each list its own allocation)
//! cost about 420 bytes each there, this about 220 — see BENCHMARKS.md.

use std::net::IpAddr;

use compact_str::CompactString;
use dualstack_addr::Family;
use dualstack_ruleset::Protocol;
use serde::{Deserialize, Serialize, Serializer};
use smallvec::SmallVec;

use crate::endpoints::{SERVICE_NAME_LABEL, protocol};
use crate::objects::{Endpoint, EndpointSlice};

/// What the decision reads of one EndpointSlice (see the module documentation). Read from
/// the API's shape: it deserializes from an EndpointSlice's YAML or JSON. It serializes in
/// its own shape, which does not read back (the controller hashes that to tell a change
/// that matters from one that does not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "EndpointSlice")]
pub struct SliceBackends {
    /// `metadata.name` (duplicates are refused by it; slices are taken in its order).
    pub name: CompactString,
    /// `metadata.namespace`.
    pub namespace: CompactString,
    /// The `kubernetes.io/service-name` label: the Service in `namespace` these backends
    /// are for (`None`: the slice belongs to no Service).
    pub service: Option<CompactString>,
    /// `addressType`, when it is `IPv4` or `IPv6` (`None`: `FQDN` or unknown).
    pub family: Option<Family>,
    /// The ports, in the slice's order.
    #[serde(serialize_with = "as_slice")]
    pub ports: Few<SlicePort>,
    /// The usable endpoints, in the slice's order.
    #[serde(serialize_with = "as_slice")]
    pub endpoints: Few<UsableEndpoint>,
}

/// The ports or endpoints of a slice. A slice of a small Service has one of each: that one
/// is held in place, without an allocation of its own (two fewer per slice, 0.9 MiB less at
/// 10,000 Services); more go to the heap, with no spare room.
pub type Few<T> = SmallVec<[T; 1]>;

/// Serializes a [`Few`] as the sequence it holds.
fn as_slice<S: Serializer, T: Serialize>(few: &Few<T>, serializer: S) -> Result<S::Ok, S::Error> {
    few.as_slice().serialize(serializer)
}

/// A port of an EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlicePort {
    /// `name` (empty when unset): matches the Service port of the same name.
    pub name: CompactString,
    /// `protocol` (unset: TCP).
    pub protocol: Protocol,
    /// `port`: the backend's port number (unset: the Service port's target port).
    pub port: Option<u16>,
}

/// A usable endpoint: its address and the node it runs on (if the slice says).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsableEndpoint {
    /// The first of its `addresses`.
    pub addr: IpAddr,
    /// `nodeName` (`None` when unset or empty).
    pub node: Option<CompactString>,
}

impl From<EndpointSlice> for SliceBackends {
    fn from(slice: EndpointSlice) -> SliceBackends {
        let family = match slice.address_type.as_str() {
            "IPv4" => Some(Family::V4),
            "IPv6" => Some(Family::V6),
            _ => None,
        };
        let mut endpoints: Few<UsableEndpoint> = match family {
            Some(family) => slice
                .endpoints
                .into_iter()
                .filter_map(|e| usable(e, family))
                .collect(),
            None => Few::new(),
        };
        endpoints.shrink_to_fit();
        let mut ports: Few<SlicePort> = slice
            .ports
            .into_iter()
            .filter_map(|p| {
                Some(SlicePort {
                    protocol: protocol(p.protocol.as_deref())?,
                    name: p.name.unwrap_or_default(),
                    port: p.port,
                })
            })
            .collect();
        ports.shrink_to_fit();
        let mut meta = slice.metadata;
        SliceBackends {
            service: meta.labels.remove(SERVICE_NAME_LABEL),
            name: meta.name,
            namespace: meta.namespace,
            family,
            ports,
            endpoints,
        }
    }
}

/// `endpoint` as a backend of a slice of `family`, if it is usable.
fn usable(endpoint: Endpoint, family: Family) -> Option<UsableEndpoint> {
    let c = &endpoint.conditions;
    let ready = c.ready.unwrap_or(true);
    let serving = c.serving.unwrap_or(ready);
    let terminating = c.terminating.unwrap_or(false);
    if !(ready || (serving && !terminating)) {
        return None;
    }
    let addr = endpoint
        .addresses
        .first()
        .and_then(|a| a.trim().parse::<IpAddr>().ok())
        .filter(|a| Family::of(*a) == family)?;
    Some(UsableEndpoint {
        addr,
        node: endpoint.node_name.filter(|n| !n.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reduce(yaml: &str) -> SliceBackends {
        let options = serde_saphyr::options! { strict_booleans: true };
        let value: serde_json::Value = serde_saphyr::from_str_with_options(yaml, options).unwrap();
        serde_json::from_value(value).unwrap()
    }

    const SLICE: &str = "
metadata:
  name: web-abc12
  namespace: shop
  labels: {kubernetes.io/service-name: web, endpointslice.kubernetes.io/managed-by: x}
addressType: IPv6
endpoints:
  - {addresses: ['fd00::1', 'fd00::9'], conditions: {ready: true}, nodeName: node-a}
  - {addresses: ['fd00::2'], conditions: {ready: false, serving: true, terminating: false}}
  - {addresses: ['fd00::3'], conditions: {ready: false, serving: true, terminating: true}}
  - {addresses: ['fd00::4'], conditions: {ready: false}, nodeName: node-b}
  - {addresses: ['fd00::5'], nodeName: ''}
  - {addresses: ['10.0.0.6'], conditions: {ready: true}}
  - {addresses: [' fd00::7 '], conditions: {serving: false}}
  - {addresses: ['not-an-address'], conditions: {ready: true}}
  - {addresses: [], conditions: {ready: true}}
ports:
  - {name: http, port: 8080, protocol: TCP}
  - {port: 53, protocol: UDP}
  - {name: odd, port: 9, protocol: DCCP}
  - {name: sctp, protocol: SCTP}
  - {name: plain, port: 81}
";

    #[test]
    fn keeps_the_service_the_ports_and_the_usable_endpoints() {
        let reduced = reduce(SLICE);
        assert_eq!(
            (reduced.name.as_str(), reduced.namespace.as_str()),
            ("web-abc12", "shop")
        );
        assert_eq!(reduced.service.as_deref(), Some("web"));
        assert_eq!(reduced.family, Some(Family::V6));
        let endpoints: Vec<(String, Option<&str>)> = reduced
            .endpoints
            .iter()
            .map(|e| (e.addr.to_string(), e.node.as_deref()))
            .collect();
        // Ready (first address only); serving and not terminating; unknown `ready` counts
        // as ready, an empty nodeName as none. Not: terminating, not ready, of the other
        // family, unparsable, without addresses. `serving: false` alone leaves `ready`
        // unknown: usable.
        assert_eq!(
            endpoints,
            [
                ("fd00::1".to_string(), Some("node-a")),
                ("fd00::2".to_string(), None),
                ("fd00::5".to_string(), None),
                ("fd00::7".to_string(), None),
            ]
        );
        let ports: Vec<(&str, Protocol, Option<u16>)> = reduced
            .ports
            .iter()
            .map(|p| (p.name.as_str(), p.protocol, p.port))
            .collect();
        assert_eq!(
            ports,
            [
                ("http", Protocol::Tcp, Some(8080)),
                ("", Protocol::Udp, Some(53)),
                ("sctp", Protocol::Sctp, None),
                ("plain", Protocol::Tcp, Some(81)),
            ]
        );
    }

    #[test]
    fn one_port_and_one_endpoint_need_no_allocation_and_more_no_spare_room() {
        let small = reduce(
            "metadata: {name: a, namespace: b}\naddressType: IPv4\n\
             endpoints: [{addresses: [10.0.0.1]}]\nports: [{port: 80}]\n",
        );
        assert_eq!((small.ports.len(), small.endpoints.len()), (1, 1));
        assert!(!small.ports.spilled() && !small.endpoints.spilled());
        let large = reduce(SLICE);
        assert!(large.endpoints.spilled() && large.ports.spilled());
        assert_eq!(large.endpoints.capacity(), large.endpoints.len());
        assert_eq!(large.ports.capacity(), large.ports.len());
    }

    #[test]
    fn an_fqdn_slice_or_one_without_the_label_keeps_no_backends_or_no_service() {
        let fqdn = reduce(&SLICE.replace("addressType: IPv6", "addressType: FQDN"));
        assert_eq!(fqdn.family, None);
        assert!(fqdn.endpoints.is_empty());
        let orphan = reduce(&SLICE.replace("kubernetes.io/service-name: web, ", ""));
        assert_eq!(orphan.service, None);
        assert_eq!(orphan.endpoints.len(), 4);
    }
}
