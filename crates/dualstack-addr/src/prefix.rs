//! Operations on prefixes and addresses: host prefixes, first/last address, counts,
//! containment, overlap, host-bit detection, and the fully expanded text form.
//!
//! Canonical text is simply `Display` of [`IpAddr`]/[`IpNet`]: the standard library
//! documents `Ipv6Addr`'s `Display` as RFC 5952 canonical (lower case, leading zeros
//! dropped, the longest — first on a tie — run of two or more zero groups shown as `::`,
//! IPv4-mapped addresses in mixed notation per RFC 5952 §5).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::{Count, Family};

/// The prefix holding exactly one address: `/32` for IPv4, `/128` for IPv6.
pub fn host_net(addr: IpAddr) -> IpNet {
    match addr {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::from(a)),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::from(a)),
    }
}

/// The number of addresses in `net`: 2^(bits − prefix length), exact (2^128 for `::/0`).
pub fn count(net: &IpNet) -> Count {
    // bits - prefix_len is at most 128, so pow2 always succeeds; MAX is the honest fallback.
    Count::pow2(net.max_prefix_len() - net.prefix_len()).unwrap_or(Count::MAX)
}

/// The first address of `net` (its network address, host bits cleared).
pub fn first(net: &IpNet) -> IpAddr {
    net.network()
}

/// The last address of `net` (host bits set; the broadcast address for IPv4 /0–/30).
pub fn last(net: &IpNet) -> IpAddr {
    net.broadcast()
}

/// True when `net` has bits set beyond its prefix length (e.g. `10.0.0.1/8`).
pub fn has_host_bits(net: &IpNet) -> bool {
    net.addr() != net.network()
}

/// True when every address of `inner` is in `outer`. Prefixes of different families never
/// contain each other.
pub fn contains(outer: &IpNet, inner: &IpNet) -> bool {
    outer.contains(inner)
}

/// True when `addr` is in `net` (false across families).
pub fn contains_addr(net: &IpNet, addr: IpAddr) -> bool {
    net.contains(&addr)
}

/// True when `a` and `b` share at least one address. CIDR prefixes either nest or are
/// disjoint, so they overlap exactly when one contains the other.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    contains(a, b) || contains(b, a)
}

/// The addresses `a` and `b` have in common (the longer of the two when they overlap).
pub fn intersection(a: &IpNet, b: &IpNet) -> Option<IpNet> {
    let (a, b) = (a.trunc(), b.trunc());
    if contains(&a, &b) {
        Some(b)
    } else if contains(&b, &a) {
        Some(a)
    } else {
        None
    }
}

/// The address as an integer (IPv4 addresses in the low 32 bits).
pub fn addr_to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address of `family` whose integer value is `value` (for IPv4 only the low 32 bits
/// are used).
pub fn addr_from_u128(family: Family, value: u128) -> IpAddr {
    match family {
        // Truncation to the low 32 bits is the documented behaviour.
        Family::V4 => IpAddr::V4(Ipv4Addr::from((value & u128::from(u32::MAX)) as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

/// Fully expanded text: IPv6 as eight groups of four hex digits
/// (`2001:0db8:0000:0000:0000:0000:0000:0001`); IPv4 unchanged (`192.0.2.1`).
pub fn expanded(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => {
            let groups: Vec<String> = a.segments().iter().map(|g| format!("{g:04x}")).collect();
            groups.join(":")
        }
    }
}

/// Fully expanded text of a prefix: `expanded(addr)/len`.
pub fn expanded_net(net: &IpNet) -> String {
    format!("{}/{}", expanded(net.addr()), net.prefix_len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn counts_first_last() {
        let cases: &[(&str, &str, &str, &str)] = &[
            ("10.0.0.0/8", "16777216", "10.0.0.0", "10.255.255.255"),
            ("192.0.2.7/32", "1", "192.0.2.7", "192.0.2.7"),
            ("0.0.0.0/0", "4294967296", "0.0.0.0", "255.255.255.255"),
            (
                "2003:e9:f74a:ecf8::/64",
                "18446744073709551616",
                "2003:e9:f74a:ecf8::",
                "2003:e9:f74a:ecf8:ffff:ffff:ffff:ffff",
            ),
            (
                "::/0",
                "340282366920938463463374607431768211456",
                "::",
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            ),
            ("fd00::1/128", "1", "fd00::1", "fd00::1"),
        ];
        for &(n, c, f, l) in cases {
            let n = net(n);
            assert_eq!(count(&n).to_string(), c, "{n}");
            assert_eq!(first(&n).to_string(), f, "{n}");
            assert_eq!(last(&n).to_string(), l, "{n}");
        }
    }

    #[test]
    fn containment_and_overlap() {
        // (a, b, a contains b, overlap)
        let cases: &[(&str, &str, bool, bool)] = &[
            ("10.0.0.0/8", "10.1.0.0/16", true, true),
            ("10.1.0.0/16", "10.0.0.0/8", false, true),
            ("10.0.0.0/8", "10.0.0.0/8", true, true),
            ("10.0.0.0/8", "11.0.0.0/8", false, false),
            ("10.0.0.0/24", "10.0.1.0/24", false, false),
            ("fd00::/8", "fd12:3456::/32", true, true),
            ("fd00::/8", "fc00::/8", false, false),
            ("::/0", "0.0.0.0/0", false, false),
            ("::ffff:0:0/96", "10.0.0.0/8", false, false),
        ];
        for &(a, b, c, o) in cases {
            let (a, b) = (net(a), net(b));
            assert_eq!(contains(&a, &b), c, "{a} contains {b}");
            assert_eq!(overlaps(&a, &b), o, "{a} overlaps {b}");
            assert_eq!(overlaps(&b, &a), o, "overlap is symmetric");
            assert_eq!(intersection(&a, &b).is_some(), o);
        }
        assert_eq!(
            intersection(&net("10.0.0.0/8"), &net("10.1.0.0/16")),
            Some(net("10.1.0.0/16"))
        );
        assert!(contains_addr(&net("fd00::/8"), "fd00::1".parse().unwrap()));
        assert!(!contains_addr(&net("0.0.0.0/0"), "::1".parse().unwrap()));
    }

    #[test]
    fn expanded_text() {
        let cases: &[(&str, &str)] = &[
            (
                "2001:db8::1/128",
                "2001:0db8:0000:0000:0000:0000:0000:0001/128",
            ),
            ("::/0", "0000:0000:0000:0000:0000:0000:0000:0000/0"),
            (
                "::ffff:192.0.2.1/128",
                "0000:0000:0000:0000:0000:ffff:c000:0201/128",
            ),
            ("192.0.2.0/24", "192.0.2.0/24"),
        ];
        for &(n, e) in cases {
            assert_eq!(expanded_net(&net(n)), e);
        }
    }

    #[test]
    fn host_bits_and_integers() {
        assert!(has_host_bits(&net("10.0.0.1/8")));
        assert!(!has_host_bits(&net("10.0.0.0/8")));
        assert!(!has_host_bits(&net("10.0.0.1/32")));
        let a: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(addr_to_u128(a), 0x0a01_0203);
        assert_eq!(addr_from_u128(Family::V4, 0x0a01_0203), a);
        assert_eq!(host_net(a).to_string(), "10.1.2.3/32");
        let b: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(addr_from_u128(Family::V6, addr_to_u128(b)), b);
    }
}
