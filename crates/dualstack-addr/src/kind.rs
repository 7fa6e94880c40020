//! Special-purpose classification of addresses and prefixes, for both families.
//!
//! The table follows the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890
//! created them; the registries, not RFC 6890, are current — e.g. `3fff::/20`, RFC 9637),
//! the IANA IPv6 Address Space registry (`2000::/3` global unicast, `fc00::/7` unique local,
//! `fe80::/10` link-local, `ff00::/8` multicast, the rest reserved by the IETF) and RFC 5771
//! for IPv4 multicast. See `reference/dualstack-planning.md` §4.3.
//!
//! An address has exactly one kind: that of the most specific table entry holding it. A
//! prefix may straddle several kinds (`0.0.0.0/0`, `2001::/16`, `fc00::/7`); [`classify`]
//! then says so and lists every special range inside it rather than picking one.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Serialize, Serializer};

use crate::Family;
use crate::prefix::{addr_to_u128, host_net};

/// What an address is for, per the special-purpose registries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// Ordinary global unicast: IPv4 outside every special range; IPv6 in `2000::/3`.
    GlobalUnicast,
    /// RFC 1918 private IPv4: `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// RFC 6598 shared address space `100.64.0.0/10` (carrier-grade NAT; also Tailscale).
    SharedAddress,
    /// RFC 4193 unique local, locally assigned (L = 1): `fd00::/8`.
    UniqueLocal,
    /// RFC 4193 unique local with L = 0: `fc00::/8`, "may be defined in the future"; not for use.
    UniqueLocalL0,
    /// Loopback: `127.0.0.0/8` (RFC 1122), `::1/128` (RFC 4291 §2.5.3).
    Loopback,
    /// The unspecified address: `0.0.0.0/32` (RFC 1122), `::/128` (RFC 4291 §2.5.2).
    Unspecified,
    /// "This network" `0.0.0.0/8` (RFC 791), excluding `0.0.0.0` itself.
    ThisNetwork,
    /// Link-local: `169.254.0.0/16` (RFC 3927), `fe80::/10` (RFC 4291 §2.5.6).
    LinkLocal,
    /// Deprecated IPv6 site-local `fec0::/10` (RFC 3879).
    SiteLocal,
    /// Multicast: `224.0.0.0/4` (RFC 5771), `ff00::/8` (RFC 4291 §2.7).
    Multicast,
    /// IPv4 limited broadcast `255.255.255.255/32` (RFC 919, RFC 8190).
    Broadcast,
    /// Documentation: `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24` (RFC 5737),
    /// `2001:db8::/32` (RFC 3849), `3fff::/20` (RFC 9637).
    Documentation,
    /// Benchmarking: `198.18.0.0/15` (RFC 2544), `2001:2::/48` (RFC 5180).
    Benchmarking,
    /// IETF protocol assignments: `192.0.0.0/24` (RFC 6890), `2001::/23` (RFC 2928).
    IetfProtocol,
    /// Deprecated 6to4 relay anycast `192.88.99.0/24` (RFC 7526).
    SixToFourRelay,
    /// Reserved: IPv4 `240.0.0.0/4` (RFC 1112); IPv6 space the IETF has not assigned.
    Reserved,
    /// IPv4-mapped IPv6 `::ffff:0:0/96` (RFC 4291 §2.5.5.2).
    Ipv4Mapped,
    /// NAT64: `64:ff9b::/96` (RFC 6052) and local-use `64:ff9b:1::/48` (RFC 8215).
    Nat64,
    /// Discard-only `100::/64` (RFC 6666).
    Discard,
    /// Dummy prefix `100:0:0:1::/64` (IANA IPv6 special-purpose registry).
    Dummy,
    /// Teredo `2001::/32` (RFC 4380).
    Teredo,
    /// ORCHID `2001:10::/28` (RFC 4843, deprecated) and ORCHIDv2 `2001:20::/28` (RFC 7343).
    Orchid,
    /// 6to4 `2002::/16` (RFC 3056).
    SixToFour,
    /// SRv6 SIDs `5f00::/16` (RFC 9602).
    Srv6Sid,
}

impl Kind {
    /// Stable machine name used in output and JSON, e.g. `unique-local`, `6to4`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::GlobalUnicast => "global-unicast",
            Kind::Private => "private",
            Kind::SharedAddress => "cgnat",
            Kind::UniqueLocal => "unique-local",
            Kind::UniqueLocalL0 => "unique-local-l0",
            Kind::Loopback => "loopback",
            Kind::Unspecified => "unspecified",
            Kind::ThisNetwork => "this-network",
            Kind::LinkLocal => "link-local",
            Kind::SiteLocal => "site-local",
            Kind::Multicast => "multicast",
            Kind::Broadcast => "broadcast",
            Kind::Documentation => "documentation",
            Kind::Benchmarking => "benchmarking",
            Kind::IetfProtocol => "ietf-protocol",
            Kind::SixToFourRelay => "6to4-relay",
            Kind::Reserved => "reserved",
            Kind::Ipv4Mapped => "ipv4-mapped",
            Kind::Nat64 => "nat64",
            Kind::Discard => "discard",
            Kind::Dummy => "dummy",
            Kind::Teredo => "teredo",
            Kind::Orchid => "orchid",
            Kind::SixToFour => "6to4",
            Kind::Srv6Sid => "srv6-sid",
        }
    }

    /// A short phrase for humans saying what the range is for.
    pub fn description(self) -> &'static str {
        match self {
            Kind::GlobalUnicast => "ordinary globally routed unicast",
            Kind::Private => "private-use IPv4, not routed on the internet",
            Kind::SharedAddress => "shared address space for carrier-grade NAT (also Tailscale)",
            Kind::UniqueLocal => "unique local, locally assigned (fd00::/8, L=1)",
            Kind::UniqueLocalL0 => "unique local with L=0 (fc00::/8): undefined, use fd00::/8",
            Kind::Loopback => "this host only",
            Kind::Unspecified => "no address; a wildcard, never a destination",
            Kind::ThisNetwork => "\"this network\", not a valid destination",
            Kind::LinkLocal => "valid on one link only, never routed",
            Kind::SiteLocal => "deprecated site-local",
            Kind::Multicast => "one-to-many group addresses",
            Kind::Broadcast => "limited broadcast",
            Kind::Documentation => "for examples in documentation only",
            Kind::Benchmarking => "for benchmarking network devices",
            Kind::IetfProtocol => "IETF protocol assignments",
            Kind::SixToFourRelay => "deprecated 6to4 relay anycast",
            Kind::Reserved => "reserved, not assigned for use",
            Kind::Ipv4Mapped => "an IPv4 address in IPv6 notation, never on the wire",
            Kind::Nat64 => "NAT64 translation to IPv4",
            Kind::Discard => "discard-only (remote black hole)",
            Kind::Dummy => "dummy prefix, for use where an address is required but none exists",
            Kind::Teredo => "Teredo tunnelling",
            Kind::Orchid => "ORCHID cryptographic identifiers",
            Kind::SixToFour => "6to4 tunnelling",
            Kind::Srv6Sid => "SRv6 segment identifiers",
        }
    }

    /// Where the range is defined, e.g. `RFC 4193`.
    pub fn source(self) -> &'static str {
        match self {
            Kind::GlobalUnicast => "RFC 4291, IANA address registries",
            Kind::Private => "RFC 1918",
            Kind::SharedAddress => "RFC 6598",
            Kind::UniqueLocal | Kind::UniqueLocalL0 => "RFC 4193",
            Kind::Loopback | Kind::Unspecified => "RFC 1122, RFC 4291",
            Kind::ThisNetwork => "RFC 791",
            Kind::LinkLocal => "RFC 3927, RFC 4291",
            Kind::SiteLocal => "RFC 3879",
            Kind::Multicast => "RFC 5771, RFC 4291",
            Kind::Broadcast => "RFC 919, RFC 8190",
            Kind::Documentation => "RFC 5737, RFC 3849, RFC 9637",
            Kind::Benchmarking => "RFC 2544, RFC 5180",
            Kind::IetfProtocol => "RFC 6890, RFC 2928",
            Kind::SixToFourRelay => "RFC 7526",
            Kind::Reserved => "IPv4 240/4: RFC 1112; IPv6: IANA address space",
            Kind::Ipv4Mapped => "RFC 4291",
            Kind::Nat64 => "RFC 6052, RFC 8215",
            Kind::Discard => "RFC 6666",
            Kind::Dummy => "IANA IPv6 special-purpose registry",
            Kind::Teredo => "RFC 4380",
            Kind::Orchid => "RFC 4843, RFC 7343",
            Kind::SixToFour => "RFC 3056",
            Kind::Srv6Sid => "RFC 9602",
        }
    }

    /// Ordinary globally routed unicast.
    pub fn is_global_unicast(self) -> bool {
        self == Kind::GlobalUnicast
    }

    /// Private-use unicast meant for one site: RFC 1918, unique local (either L bit) and
    /// the CGNAT shared space.
    pub fn is_private(self) -> bool {
        matches!(
            self,
            Kind::Private | Kind::UniqueLocal | Kind::UniqueLocalL0 | Kind::SharedAddress
        )
    }

    /// Link-local unicast (`169.254/16`, `fe80::/10`): never advertise these.
    pub fn is_link_local(self) -> bool {
        self == Kind::LinkLocal
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> IpNet {
    IpNet::new_assert(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), len)
}

#[allow(clippy::too_many_arguments)]
const fn v6(g: [u16; 4], len: u8) -> IpNet {
    IpNet::new_assert(
        IpAddr::V6(Ipv6Addr::new(g[0], g[1], g[2], g[3], 0, 0, 0, 0)),
        len,
    )
}

/// The special ranges. Order does not matter; the most specific match wins.
const TABLE: &[(IpNet, Kind)] = &[
    // IPv4: IANA IPv4 Special-Purpose Address Registry, RFC 5771 for multicast.
    (v4(0, 0, 0, 0, 8), Kind::ThisNetwork),
    (v4(0, 0, 0, 0, 32), Kind::Unspecified),
    (v4(10, 0, 0, 0, 8), Kind::Private),
    (v4(100, 64, 0, 0, 10), Kind::SharedAddress),
    (v4(127, 0, 0, 0, 8), Kind::Loopback),
    (v4(169, 254, 0, 0, 16), Kind::LinkLocal),
    (v4(172, 16, 0, 0, 12), Kind::Private),
    (v4(192, 0, 0, 0, 24), Kind::IetfProtocol),
    (v4(192, 0, 2, 0, 24), Kind::Documentation),
    (v4(192, 88, 99, 0, 24), Kind::SixToFourRelay),
    (v4(192, 168, 0, 0, 16), Kind::Private),
    (v4(198, 18, 0, 0, 15), Kind::Benchmarking),
    (v4(198, 51, 100, 0, 24), Kind::Documentation),
    (v4(203, 0, 113, 0, 24), Kind::Documentation),
    (v4(224, 0, 0, 0, 4), Kind::Multicast),
    (v4(240, 0, 0, 0, 4), Kind::Reserved),
    (v4(255, 255, 255, 255, 32), Kind::Broadcast),
    // IPv6: IANA IPv6 Special-Purpose Address Registry and IPv6 Address Space registry.
    (v6([0, 0, 0, 0], 128), Kind::Unspecified),
    (
        IpNet::new_assert(IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
        Kind::Loopback,
    ),
    (
        IpNet::new_assert(IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0)), 96),
        Kind::Ipv4Mapped,
    ),
    (v6([0x64, 0xff9b, 0, 0], 96), Kind::Nat64),
    (v6([0x64, 0xff9b, 1, 0], 48), Kind::Nat64),
    (v6([0x100, 0, 0, 0], 64), Kind::Discard),
    (v6([0x100, 0, 0, 1], 64), Kind::Dummy),
    (v6([0x2000, 0, 0, 0], 3), Kind::GlobalUnicast),
    (v6([0x2001, 0, 0, 0], 23), Kind::IetfProtocol),
    (v6([0x2001, 0, 0, 0], 32), Kind::Teredo),
    (v6([0x2001, 2, 0, 0], 48), Kind::Benchmarking),
    (v6([0x2001, 0x10, 0, 0], 28), Kind::Orchid),
    (v6([0x2001, 0x20, 0, 0], 28), Kind::Orchid),
    (v6([0x2001, 0xdb8, 0, 0], 32), Kind::Documentation),
    (v6([0x2002, 0, 0, 0], 16), Kind::SixToFour),
    (v6([0x3fff, 0, 0, 0], 20), Kind::Documentation),
    (v6([0x5f00, 0, 0, 0], 16), Kind::Srv6Sid),
    (v6([0xfc00, 0, 0, 0], 8), Kind::UniqueLocalL0),
    (v6([0xfd00, 0, 0, 0], 8), Kind::UniqueLocal),
    (v6([0xfe80, 0, 0, 0], 10), Kind::LinkLocal),
    (v6([0xfec0, 0, 0, 0], 10), Kind::SiteLocal),
    (v6([0xff00, 0, 0, 0], 8), Kind::Multicast),
];

/// The kind of addresses outside every table entry.
fn default_kind(family: Family) -> Kind {
    match family {
        Family::V4 => Kind::GlobalUnicast,
        Family::V6 => Kind::Reserved,
    }
}

/// The kind of a single address.
pub fn kind_of(addr: IpAddr) -> Kind {
    enclosing_kind(&host_net(addr))
}

/// The kind of the most specific table entry containing all of `net` (or the default).
fn enclosing_kind(net: &IpNet) -> Kind {
    TABLE
        .iter()
        .filter(|(range, _)| range.contains(net))
        .max_by_key(|(range, _)| range.prefix_len())
        .map_or(default_kind(Family::of_net(*net)), |&(_, k)| k)
}

/// A special range inside a prefix, with its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KindRange {
    /// The range.
    #[serde(rename = "prefix")]
    pub net: IpNet,
    /// What it is for.
    pub kind: Kind,
}

/// How a prefix straddles several kinds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mixed {
    /// The kind of the addresses outside every listed range, or `None` when the listed
    /// ranges cover the whole prefix.
    pub rest: Option<Kind>,
    /// The special ranges inside the prefix (nested ones included), in address order.
    pub parts: Vec<KindRange>,
}

/// The classification of a prefix: one kind, or honestly several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetKind {
    /// Every address in the prefix has this kind.
    Uniform(Kind),
    /// The prefix spans several kinds.
    Mixed(Mixed),
}

impl NetKind {
    /// The kind, when the whole prefix has one.
    pub fn uniform(&self) -> Option<Kind> {
        match self {
            NetKind::Uniform(k) => Some(*k),
            NetKind::Mixed(_) => None,
        }
    }

    /// Every kind present in the prefix, sorted, without duplicates.
    pub fn kinds(&self) -> Vec<Kind> {
        let mut kinds = match self {
            NetKind::Uniform(k) => vec![*k],
            NetKind::Mixed(m) => m
                .rest
                .into_iter()
                .chain(m.parts.iter().map(|p| p.kind))
                .collect(),
        };
        kinds.sort();
        kinds.dedup();
        kinds
    }

    /// The kind's name, or `mixed`.
    pub fn name(&self) -> &'static str {
        match self {
            NetKind::Uniform(k) => k.name(),
            NetKind::Mixed(_) => "mixed",
        }
    }
}

impl fmt::Display for NetKind {
    /// `private`, or `mixed: global-unicast, with 10.0.0.0/8 private, …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetKind::Uniform(k) => write!(f, "{k}"),
            NetKind::Mixed(m) => {
                f.write_str("mixed: ")?;
                if let Some(rest) = m.rest {
                    write!(f, "{rest}, with ")?;
                }
                let parts: Vec<String> = m
                    .parts
                    .iter()
                    .map(|p| format!("{} {}", p.net, p.kind))
                    .collect();
                f.write_str(&parts.join(", "))
            }
        }
    }
}

/// Classifies a prefix (host bits, if any, are ignored).
pub fn classify(net: &IpNet) -> NetKind {
    let net = net.trunc();
    let outer = enclosing_kind(&net);
    let mut inside: Vec<(IpNet, Kind)> = TABLE
        .iter()
        .copied()
        .filter(|(range, _)| range.prefix_len() > net.prefix_len() && net.contains(range))
        .collect();
    if inside.is_empty() {
        return NetKind::Uniform(outer);
    }
    inside.sort_by_key(|(range, _)| (addr_to_u128(range.network()), range.prefix_len()));
    // A listed range whose own sub-ranges cover it entirely has no addresses of its kind.
    let parts: Vec<KindRange> = inside
        .iter()
        .filter(|(range, _)| !covered(range, &inside))
        .map(|&(net, kind)| KindRange { net, kind })
        .collect();
    let rest = (!covered(&net, &inside)).then_some(outer);
    let m = Mixed { rest, parts };
    let nk = NetKind::Mixed(m);
    match nk.kinds().as_slice() {
        [only] => NetKind::Uniform(*only),
        _ => nk,
    }
}

/// True when the ranges strictly inside `net` (taken from `all`) cover every address of it.
fn covered(net: &IpNet, all: &[(IpNet, Kind)]) -> bool {
    let inner: Vec<&IpNet> = all
        .iter()
        .map(|(r, _)| r)
        .filter(|r| r.prefix_len() > net.prefix_len() && net.contains(*r))
        .collect();
    // Keep only the outermost ranges; they are disjoint, so walk them in address order.
    let mut top: Vec<&IpNet> = inner
        .iter()
        .copied()
        .filter(|r| {
            !inner
                .iter()
                .any(|o| o.prefix_len() < r.prefix_len() && o.contains(*r))
        })
        .collect();
    top.sort_by_key(|r| addr_to_u128(r.network()));
    let mut expect = Some(addr_to_u128(net.network()));
    for r in top {
        if expect != Some(addr_to_u128(r.network())) {
            return false;
        }
        expect = addr_to_u128(r.broadcast()).checked_add(1);
    }
    let end = addr_to_u128(net.broadcast());
    match expect {
        None => true,
        Some(next) => end.checked_add(1) == Some(next),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_of_addresses() {
        let cases: &[(&str, Kind)] = &[
            ("0.0.0.0", Kind::Unspecified),
            ("0.1.2.3", Kind::ThisNetwork),
            ("10.42.0.1", Kind::Private),
            ("172.31.255.255", Kind::Private),
            ("172.32.0.0", Kind::GlobalUnicast),
            ("192.168.1.1", Kind::Private),
            ("100.64.0.1", Kind::SharedAddress),
            ("100.128.0.1", Kind::GlobalUnicast),
            ("127.0.0.1", Kind::Loopback),
            ("169.254.169.254", Kind::LinkLocal),
            ("192.0.0.9", Kind::IetfProtocol),
            ("192.0.2.1", Kind::Documentation),
            ("198.51.100.7", Kind::Documentation),
            ("203.0.113.255", Kind::Documentation),
            ("192.88.99.1", Kind::SixToFourRelay),
            ("198.19.255.255", Kind::Benchmarking),
            ("224.0.0.251", Kind::Multicast),
            ("239.255.255.250", Kind::Multicast),
            ("240.0.0.1", Kind::Reserved),
            ("255.255.255.254", Kind::Reserved),
            ("255.255.255.255", Kind::Broadcast),
            ("1.1.1.1", Kind::GlobalUnicast),
            ("::", Kind::Unspecified),
            ("::1", Kind::Loopback),
            ("::2", Kind::Reserved),
            ("::ffff:10.0.0.1", Kind::Ipv4Mapped),
            ("64:ff9b::192.0.2.1", Kind::Nat64),
            ("64:ff9b:1::1", Kind::Nat64),
            ("100::1", Kind::Discard),
            ("100:0:0:1::1", Kind::Dummy),
            ("2001::1", Kind::Teredo),
            ("2001:2::1", Kind::Benchmarking),
            ("2001:3::1", Kind::IetfProtocol),
            ("2001:10::1", Kind::Orchid),
            ("2001:20::1", Kind::Orchid),
            ("2001:db8::1", Kind::Documentation),
            ("2002:c000:201::1", Kind::SixToFour),
            ("2003:e9:f74a:ecf8::1", Kind::GlobalUnicast),
            ("3fff:fff::1", Kind::Documentation),
            ("3fff:1000::1", Kind::GlobalUnicast),
            ("4000::1", Kind::Reserved),
            ("5f00::1", Kind::Srv6Sid),
            ("fc00::1", Kind::UniqueLocalL0),
            ("fd12:3456:789a::1", Kind::UniqueLocal),
            ("fe80::1", Kind::LinkLocal),
            ("febf::1", Kind::LinkLocal),
            ("fec0::1", Kind::SiteLocal),
            ("ff02::1", Kind::Multicast),
        ];
        for &(a, k) in cases {
            assert_eq!(kind_of(a.parse().unwrap()), k, "{a}");
        }
    }

    #[test]
    fn uniform_prefixes() {
        let cases: &[(&str, Kind)] = &[
            ("10.0.0.0/8", Kind::Private),
            ("10.42.0.0/16", Kind::Private),
            ("192.0.2.0/24", Kind::Documentation),
            ("2001:db8::/32", Kind::Documentation),
            ("2001:db8:1::/48", Kind::Documentation),
            ("fd00::/8", Kind::UniqueLocal),
            ("2003:e9:f74a:ecf8::/64", Kind::GlobalUnicast),
            ("8.0.0.0/8", Kind::GlobalUnicast),
            ("fe80::/64", Kind::LinkLocal),
            ("::1/128", Kind::Loopback),
        ];
        for &(n, k) in cases {
            assert_eq!(classify(&n.parse().unwrap()), NetKind::Uniform(k), "{n}");
        }
    }

    #[test]
    fn straddling_prefixes_are_reported_as_mixed() {
        let fc = classify(&"fc00::/7".parse().unwrap());
        assert_eq!(
            fc.to_string(),
            "mixed: fc00::/8 unique-local-l0, fd00::/8 unique-local"
        );
        assert_eq!(fc.kinds(), vec![Kind::UniqueLocal, Kind::UniqueLocalL0]);

        let v4 = classify(&"240.0.0.0/4".parse().unwrap());
        assert_eq!(
            v4.to_string(),
            "mixed: reserved, with 255.255.255.255/32 broadcast"
        );

        let s = classify(&"2001::/16".parse().unwrap());
        let NetKind::Mixed(m) = &s else { panic!("{s}") };
        assert_eq!(m.rest, Some(Kind::GlobalUnicast));
        let names: Vec<String> = m.parts.iter().map(|p| p.net.to_string()).collect();
        assert_eq!(
            names,
            [
                "2001::/23",
                "2001::/32",
                "2001:2::/48",
                "2001:10::/28",
                "2001:20::/28",
                "2001:db8::/32"
            ]
        );

        let all = classify(&"0.0.0.0/0".parse().unwrap());
        assert_eq!(all.name(), "mixed");
        assert!(all.kinds().contains(&Kind::Private));
        assert!(all.kinds().contains(&Kind::GlobalUnicast));

        let all6 = classify(&"::/0".parse().unwrap());
        assert!(all6.kinds().contains(&Kind::Reserved));
        assert!(all6.kinds().contains(&Kind::UniqueLocal));
        // 0.0.0.0/8 is "this network" except its first address.
        let z = classify(&"0.0.0.0/8".parse().unwrap());
        assert_eq!(
            z.to_string(),
            "mixed: this-network, with 0.0.0.0/32 unspecified"
        );
    }

    #[test]
    fn predicates_and_names() {
        assert!(Kind::GlobalUnicast.is_global_unicast());
        assert!(Kind::UniqueLocal.is_private());
        assert!(Kind::Private.is_private());
        assert!(!Kind::Documentation.is_private());
        assert!(Kind::LinkLocal.is_link_local());
        assert_eq!(serde_json::to_string(&Kind::SixToFour).unwrap(), "\"6to4\"");
        // Names are unique.
        let mut names: Vec<&str> = TABLE.iter().map(|(_, k)| k.name()).collect();
        names.sort();
        names.dedup();
        let kinds: std::collections::BTreeSet<Kind> = TABLE.iter().map(|(_, k)| *k).collect();
        assert_eq!(names.len(), kinds.len());
    }
}
