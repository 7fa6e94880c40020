//! `LoadBalancerPool` (`dualstack.io/v1alpha1`, cluster-scoped): dedicated addresses for
//! Services, per family, and which nodes may announce them.
//!
//! `spec.addresses` entries are a CIDR (`192.0.2.0/28`, `2001:db8:1::/120`), a range
//! `first-last` of one family (`192.0.2.100-192.0.2.110`), or one address. A pool may hold
//! both families or one. In a CIDR the addresses that clients commonly refuse are left out:
//! for IPv4 shorter than /31 the network and broadcast addresses, for IPv6 shorter than /127
//! the Subnet-Router anycast address (host part zero). Ranges and single addresses are taken
//! as written. A CIDR with host bits set is an error (the intent is unclear), and so is a
//! range whose ends differ in family or are reversed: a pool with any bad entry is not used
//! at all (fail closed) and the decision reports why.
//!
//! `spec.nodeSelector` (label → value, all must match; empty selects every node) limits which
//! nodes may announce the pool's addresses; `spec.interfaces` names the interfaces to announce
//! on (default: the interface that holds the node's address of that family);
//! `spec.autoAssign` (default true) lets Services without a pool annotation draw from it.
//!
//! `spec.ipv6Prefix` makes the pool's IPv6 addresses follow the prefix the nodes learn from
//! the router (an ISP that renumbers daily): instead of fixed IPv6 addresses, a range of host
//! parts (the low 64 bits) combined with the current prefix. Such a pool lists no IPv6
//! entries in `spec.addresses` (IPv4 ones are fine). The rules are in [`crate::prefix_pool`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dualstack_addr::Family;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::label_map::LabelMap;
use crate::objects::ObjectMeta;

/// API group/version of the pool kind.
pub const POOL_API_VERSION: &str = "dualstack.io/v1alpha1";
/// Kind name.
pub const POOL_KIND: &str = "LoadBalancerPool";

/// `dualstack.io/v1alpha1 LoadBalancerPool`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LoadBalancerPool {
    /// `metadata` (the pool's name is `metadata.name`).
    pub metadata: ObjectMeta,
    /// `spec`.
    pub spec: PoolSpec,
}

/// Coarse shape of a `spec.addresses` entry, for the CRD schema (the API server rejects what
/// is plainly not an address; [`parse_entry`] decides the rest and names the problem).
pub const ADDRESS_ENTRY_PATTERN: &str =
    r"^\s*[0-9A-Fa-f:.]+(/[0-9]{1,3}|\s*-\s*[0-9A-Fa-f:.]+)?\s*$";
/// A Linux interface name: 1 to 15 bytes, no slash, colon or white space.
pub const INTERFACE_PATTERN: &str = r"^[^/:\s]{1,15}$";

/// The pool's dedicated LoadBalancer addresses, of either family, and the nodes that may
/// announce them (ARP for IPv4, NDP for IPv6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(transform = require_addresses)
)]
#[serde(rename_all = "camelCase", default)]
pub struct PoolSpec {
    /// CIDRs (`192.0.2.0/28`, `2001:db8:1::/120`), `first-last` ranges of one family
    /// (`192.0.2.100-192.0.2.110`) or single addresses. A pool may hold both families.
    #[cfg_attr(
        feature = "schema",
        schemars(
            transform = no_default,
            length(min = 1, max = 256),
            inner(regex(pattern = ADDRESS_ENTRY_PATTERN))
        )
    )]
    pub addresses: Vec<String>,
    /// Nodes that may announce the pool's addresses: every label must match. Empty: all
    /// nodes.
    pub node_selector: BTreeMap<String, String>,
    /// Interfaces to announce on. Empty: the interface that holds the node's address of the
    /// address's family.
    #[cfg_attr(
        feature = "schema",
        schemars(length(max = 32), inner(regex(pattern = INTERFACE_PATTERN)))
    )]
    pub interfaces: Vec<String>,
    /// Whether Services that name no pool draw from this one. Default true.
    #[cfg_attr(feature = "schema", schemars(extend("default" = true)))]
    pub auto_assign: Option<bool>,
    /// IPv6 addresses that follow the prefix the nodes learn from router advertisements:
    /// a fixed host part per Service, combined with the current prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_prefix: Option<Ipv6PrefixSpec>,
}

/// `spec.ipv6Prefix`: IPv6 addresses made of the nodes' current prefix and a host part.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(transform = require_hosts)
)]
#[serde(rename_all = "camelCase", default)]
pub struct Ipv6PrefixSpec {
    /// Host parts (the low 64 bits) to hand out: a range `::f0-::ff`, a CIDR `::f0/124` or
    /// one `::f5`.
    #[cfg_attr(
        feature = "schema",
        schemars(transform = no_default, regex(pattern = ADDRESS_ENTRY_PATTERN))
    )]
    pub hosts: String,
    /// Learn the prefix only on this interface. Empty: on any interface (not the CNI's).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = INTERFACE_PATTERN)))]
    pub interface: Option<String>,
    /// Use the first this many bits of the learned prefix (1 to 64, default 64), and
    /// `subnetId` for the bits up to /64: for a delegated prefix the nodes route.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 64)))]
    pub prefix_length: Option<u8>,
    /// Hexadecimal subnet id placed after `prefixLength` bits (default 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    /// After a newer prefix appears, keep addresses in the old one at most this long
    /// (seconds). Default: as long as the old prefix is valid on a node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_seconds: Option<u32>,
}

/// A required list has no default in the schema (an empty default would break `minItems`).
#[cfg(feature = "schema")]
fn no_default(schema: &mut schemars::Schema) {
    schema.remove("default");
}

/// `spec.addresses` or `spec.ipv6Prefix` is required by the API (the decision also refuses
/// a pool with neither).
#[cfg(feature = "schema")]
fn require_addresses(schema: &mut schemars::Schema) {
    schema.insert(
        "x-kubernetes-validations".into(),
        serde_json::json!([{
            "rule": "has(self.addresses) || has(self.ipv6Prefix)",
            "message": "spec.addresses or spec.ipv6Prefix is required"
        }]),
    );
}

/// `spec.ipv6Prefix.hosts` is required.
#[cfg(feature = "schema")]
fn require_hosts(schema: &mut schemars::Schema) {
    schema.insert("required".into(), serde_json::json!(["hosts"]));
}

/// An inclusive run of addresses of one family, as integers (IPv4 in the low 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Span {
    /// The family of every address in it.
    pub family: Family,
    /// The first address.
    pub first: u128,
    /// The last address (inclusive).
    pub last: u128,
}

impl Span {
    /// Number of addresses in the span (never zero).
    pub fn count(&self) -> u128 {
        self.last - self.first + 1
    }

    /// Whether `ip` lies in the span.
    pub fn contains(&self, ip: IpAddr) -> bool {
        Family::of(ip) == self.family && (self.first..=self.last).contains(&to_int(ip))
    }

    /// The span's first address.
    pub fn first_addr(&self) -> IpAddr {
        from_int(self.family, self.first)
    }

    /// The span's last address.
    pub fn last_addr(&self) -> IpAddr {
        from_int(self.family, self.last)
    }
}

/// An address as an integer (IPv4 in the low 32 bits).
pub fn to_int(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address of `family` with integer value `n` (IPv4 uses the low 32 bits).
pub fn from_int(family: Family, n: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(n as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

/// Why a `spec.addresses` entry is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("{0:?} is not a CIDR, a first-last range or an address")]
    /// Not a CIDR, range or address (the entry).
    Unparsable(String),
    #[error("{text:?} has host bits set (did you mean {network}?)")]
    /// A CIDR with host bits set.
    HostBits {
        /// The entry.
        text: String,
        /// The network it probably means.
        network: IpNet,
    },
    #[error("{0:?} mixes IPv4 and IPv6")]
    /// A range from one family to the other (the entry).
    MixedFamilies(String),
    #[error("{0:?} ends before it starts")]
    /// A range whose end is before its start (the entry).
    Reversed(String),
    #[error("{0:?} holds no usable address")]
    /// An entry without a usable address (the entry).
    Empty(String),
    #[error("spec.addresses is empty and there is no spec.ipv6Prefix")]
    /// No `spec.addresses` and no `spec.ipv6Prefix`.
    NoAddresses,
    #[error("spec.ipv6Prefix.hosts {0:?} is not a range, CIDR or address of IPv6 host parts")]
    /// `spec.ipv6Prefix.hosts` does not parse (the value).
    BadHosts(String),
    #[error(
        "spec.ipv6Prefix.hosts {0:?} sets bits of the prefix: host parts are the low 64 bits (like ::f0-::ff)"
    )]
    /// `spec.ipv6Prefix.hosts` reaches into the prefix bits (the value).
    HostsNotHostPart(String),
    #[error(
        "spec.addresses lists IPv6 entry {0:?} although spec.ipv6Prefix gives the pool's IPv6 addresses"
    )]
    /// Fixed IPv6 addresses in a pool that follows the prefix (the entry).
    FixedAndFollowing(String),
    #[error("spec.ipv6Prefix.prefixLength {0} is not 1 to 64")]
    /// `spec.ipv6Prefix.prefixLength` out of 1 to 64 (the value).
    PrefixLength(u8),
    #[error(
        "spec.ipv6Prefix.subnetId {id:?} is not a hexadecimal number of at most {bits} bits (64 - prefixLength)"
    )]
    /// `spec.ipv6Prefix.subnetId` is not hexadecimal or too long.
    SubnetId {
        /// The value.
        id: String,
        /// The bits it may use (64 - prefixLength).
        bits: u8,
    },
}

/// Parses one `spec.addresses` entry.
pub fn parse_entry(text: &str) -> Result<Span, PoolError> {
    let t = text.trim();
    if let Some((a, b)) = t.split_once('-') {
        let a: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| PoolError::Unparsable(t.into()))?;
        let b: IpAddr = b
            .trim()
            .parse()
            .map_err(|_| PoolError::Unparsable(t.into()))?;
        if Family::of(a) != Family::of(b) {
            return Err(PoolError::MixedFamilies(t.into()));
        }
        if to_int(b) < to_int(a) {
            return Err(PoolError::Reversed(t.into()));
        }
        return Ok(Span {
            family: Family::of(a),
            first: to_int(a),
            last: to_int(b),
        });
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(Span {
            family: Family::of(ip),
            first: to_int(ip),
            last: to_int(ip),
        });
    }
    let net: IpNet = t.parse().map_err(|_| PoolError::Unparsable(t.into()))?;
    if net != net.trunc() {
        return Err(PoolError::HostBits {
            text: t.into(),
            network: net.trunc(),
        });
    }
    let family = Family::of_net(net);
    let (mut first, mut last) = (to_int(net.network()), to_int(net.broadcast()));
    match net {
        IpNet::V4(v4) if v4.prefix_len() < 31 => {
            first += 1;
            last -= 1;
        }
        IpNet::V6(v6) if v6.prefix_len() < 127 => first += 1,
        _ => {}
    }
    if last < first {
        return Err(PoolError::Empty(t.into()));
    }
    Ok(Span {
        family,
        first,
        last,
    })
}

/// `spec.ipv6Prefix` read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follow {
    /// The host parts, as a span of IPv6 "addresses" below 2^64 (`::f0` to `::ff`).
    pub hosts: Span,
    /// `spec.ipv6Prefix.interface`: only prefixes the nodes report on this interface.
    pub interface: Option<String>,
    /// Bits kept from the learned prefix (1 to 64).
    pub prefix_length: u8,
    /// Placed in the bits between `prefix_length` and 64.
    pub subnet_id: u64,
    /// `spec.ipv6Prefix.graceSeconds`: how long an old prefix's address stays published
    /// after a newer prefix appears (`None`: while the old prefix is valid).
    pub grace_seconds: Option<u32>,
}

/// The low 64 bits of every IPv6 address: the host part.
pub const HOST_MASK: u128 = (1u128 << 64) - 1;

impl Follow {
    fn read(spec: &Ipv6PrefixSpec) -> Result<Follow, PoolError> {
        let text = spec.hosts.trim();
        let mut hosts = parse_entry(text)
            .ok()
            .filter(|s| s.family == Family::V6)
            .ok_or_else(|| PoolError::BadHosts(text.into()))?;
        if hosts.last > HOST_MASK {
            return Err(PoolError::HostsNotHostPart(text.into()));
        }
        // Host part zero is the subnet's Subnet-Router anycast address.
        hosts.first = hosts.first.max(1);
        if hosts.last < hosts.first {
            return Err(PoolError::Empty(text.into()));
        }
        let prefix_length = spec.prefix_length.unwrap_or(64);
        if !(1..=64).contains(&prefix_length) {
            return Err(PoolError::PrefixLength(prefix_length));
        }
        let bits = 64 - prefix_length;
        let subnet_id = match spec.subnet_id.as_deref().map(str::trim) {
            None | Some("") => 0,
            Some(id) => u64::from_str_radix(id.trim_start_matches("0x"), 16)
                .ok()
                .filter(|n| bits == 64 || *n < (1u64 << bits))
                .ok_or_else(|| PoolError::SubnetId {
                    id: id.into(),
                    bits,
                })?,
        };
        Ok(Follow {
            hosts,
            interface: spec
                .interface
                .as_deref()
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(str::to_string),
            prefix_length,
            subnet_id,
            grace_seconds: spec.grace_seconds,
        })
    }

    /// The /64 this pool makes addresses in for a learned prefix.
    pub fn subnet(&self, learned: ipnet::Ipv6Net) -> ipnet::Ipv6Net {
        let keep = u32::from(self.prefix_length);
        let mask: u128 = if keep == 0 { 0 } else { !0u128 << (128 - keep) };
        let bits = (u128::from(learned.network()) & mask) | (u128::from(self.subnet_id) << 64);
        ipnet::Ipv6Net::new(Ipv6Addr::from(bits & !HOST_MASK), 64)
            .unwrap_or_else(|_| ipnet::Ipv6Net::default())
    }

    /// The host part of `ip` (an IPv6 "address" below 2^64), if it is one of ours.
    pub fn host_of(&self, ip: IpAddr) -> Option<IpAddr> {
        let IpAddr::V6(v6) = ip else { return None };
        let host = IpAddr::V6(Ipv6Addr::from(u128::from(v6) & HOST_MASK));
        self.hosts.contains(host).then_some(host)
    }
}

/// The address with `host`'s low 64 bits in `subnet`.
pub fn combine(subnet: ipnet::Ipv6Net, host: IpAddr) -> Ipv6Addr {
    Ipv6Addr::from((u128::from(subnet.network()) & !HOST_MASK) | (to_int(host) & HOST_MASK))
}

/// A pool read and checked: its spans per family, or why it is unusable.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// `metadata.name`.
    pub name: String,
    /// Spans in `spec.addresses` order; for a pool with `spec.ipv6Prefix`, its IPv6 span is
    /// the span of host parts ([`Follow::hosts`]), which allocation hands out like
    /// addresses and [`crate::prefix_pool`] combines with the current prefixes.
    pub spans: Vec<Span>,
    /// `spec.nodeSelector`: the labels a node needs to announce the pool's addresses.
    pub node_selector: BTreeMap<String, String>,
    /// `spec.interfaces` to announce on (empty: the one holding the node's address).
    pub interfaces: Vec<String>,
    /// `spec.autoAssign`: Services that ask for nothing get addresses here.
    pub auto_assign: bool,
    /// `spec.ipv6Prefix`, when the pool follows the nodes' prefix.
    pub follow: Option<Follow>,
    /// Every entry that is wrong; a pool with errors hands out nothing.
    pub errors: Vec<String>,
}

impl Pool {
    /// Reads a pool object.
    pub fn from_object(object: &LoadBalancerPool) -> Pool {
        let mut spans = Vec::new();
        let mut errors = Vec::new();
        let follow = match object.spec.ipv6_prefix.as_ref().map(Follow::read) {
            None => None,
            Some(Ok(follow)) => Some(follow),
            Some(Err(err)) => {
                errors.push(err.to_string());
                None
            }
        };
        for entry in &object.spec.addresses {
            match parse_entry(entry) {
                Ok(span) if span.family == Family::V6 && object.spec.ipv6_prefix.is_some() => {
                    errors.push(PoolError::FixedAndFollowing(entry.trim().into()).to_string());
                }
                Ok(span) => spans.push(span),
                Err(err) => errors.push(err.to_string()),
            }
        }
        if let Some(follow) = &follow {
            spans.push(follow.hosts);
        }
        if object.spec.addresses.is_empty() && object.spec.ipv6_prefix.is_none() {
            errors.push(PoolError::NoAddresses.to_string());
        }
        Pool {
            name: object.metadata.name.to_string(),
            spans,
            node_selector: object.spec.node_selector.clone(),
            interfaces: object.spec.interfaces.clone(),
            auto_assign: object.spec.auto_assign.unwrap_or(true),
            follow,
            errors,
        }
    }

    /// The follow spec, if this pool's IPv6 addresses follow the nodes' prefix.
    pub fn follows(&self) -> Option<&Follow> {
        self.follow.as_ref()
    }

    /// What allocation keys `ip` by: its host part in a pool that follows the prefix (the
    /// same Service keeps it whatever the prefix), else the address itself.
    pub fn key_of(&self, ip: IpAddr) -> IpAddr {
        self.follow
            .as_ref()
            .and_then(|f| f.host_of(ip))
            .unwrap_or(ip)
    }

    /// Whether the pool hands out addresses (no bad entry).
    pub fn usable(&self) -> bool {
        self.errors.is_empty()
    }

    /// Whether the pool has addresses of `family` (and is usable).
    pub fn has_family(&self, family: Family) -> bool {
        self.usable() && self.spans.iter().any(|s| s.family == family)
    }

    /// Whether `ip` is one of this pool's addresses (and the pool is usable). In a pool
    /// that follows the prefix, an IPv6 address is one of its addresses when its host part
    /// is, whatever its prefix (the published status is the record of the host part).
    pub fn contains(&self, ip: IpAddr) -> bool {
        if !self.usable() {
            return false;
        }
        match &self.follow {
            Some(follow) if ip.is_ipv6() => follow.host_of(ip).is_some(),
            _ => self.spans.iter().any(|s| s.contains(ip)),
        }
    }

    /// Number of addresses of `family` (spans may overlap; counted as written).
    pub fn size(&self, family: Family) -> u128 {
        self.spans
            .iter()
            .filter(|s| s.family == family)
            .fold(0u128, |acc, s| acc.saturating_add(s.count()))
    }

    /// Whether a node with these labels may announce this pool's addresses.
    pub fn selects(&self, labels: &LabelMap) -> bool {
        self.node_selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn span(text: &str) -> (String, String) {
        let s = parse_entry(text).unwrap();
        (s.first_addr().to_string(), s.last_addr().to_string())
    }

    #[test]
    fn entries_parse_to_spans() {
        assert_eq!(
            span("192.0.2.0/29"),
            ("192.0.2.1".into(), "192.0.2.6".into())
        );
        assert_eq!(
            span("192.0.2.8/31"),
            ("192.0.2.8".into(), "192.0.2.9".into())
        );
        assert_eq!(
            span("192.0.2.100 - 192.0.2.102"),
            ("192.0.2.100".into(), "192.0.2.102".into())
        );
        assert_eq!(
            span("2001:db8::/120"),
            ("2001:db8::1".into(), "2001:db8::ff".into())
        );
        assert_eq!(
            span("2001:db8::5"),
            ("2001:db8::5".into(), "2001:db8::5".into())
        );
        assert_eq!(
            parse_entry("2001:db8::/64").unwrap().count(),
            (1u128 << 64) - 1
        );
    }

    #[test]
    fn bad_entries_name_the_problem() {
        let cases = [
            ("192.0.2.1/24", "host bits set (did you mean 192.0.2.0/24?)"),
            ("192.0.2.1-2001:db8::1", "mixes IPv4 and IPv6"),
            ("192.0.2.9-192.0.2.1", "ends before it starts"),
            ("lan", "is not a CIDR"),
            ("192.0.2.0/33", "is not a CIDR"),
        ];
        for (text, expected) in cases {
            let err = parse_entry(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn a_pool_with_a_bad_entry_hands_out_nothing() {
        let object: LoadBalancerPool = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "lan"},
            "spec": {"addresses": ["192.0.2.0/28", "nonsense"], "nodeSelector": {"a": "b"}}
        }))
        .unwrap();
        let pool = Pool::from_object(&object);
        assert!(pool.auto_assign, "autoAssign defaults to true");
        assert!(!pool.usable());
        assert!(!pool.contains("192.0.2.1".parse().unwrap()));
        assert!(!pool.has_family(Family::V4));
        let mut labels = LabelMap::new();
        assert!(!pool.selects(&labels));
        labels.insert("a".to_string(), "b".to_string());
        assert!(pool.selects(&labels));
    }
}
