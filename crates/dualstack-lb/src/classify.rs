//! Which node addresses may be advertised, and which are preferred.
//!
//! Kept private and small so it can be swapped for `dualstack_addr`'s classification once
//! that lands; it uses only `std` address methods and well-known prefixes.

use std::net::IpAddr;

/// How useful an address is as a LoadBalancer ingress address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Scope {
    /// Globally routable (documentation prefixes count as global, as in examples).
    Global,
    /// Private: IPv6 ULA `fc00::/7` or site-local `fec0::/10`; IPv4 RFC 1918 or
    /// shared address space `100.64.0.0/10`.
    Private,
    /// Never advertised; the text says why.
    Unusable(&'static str),
}

pub(crate) fn classify(addr: IpAddr) -> Scope {
    if addr.is_unspecified() {
        return Scope::Unusable("unspecified");
    }
    if addr.is_loopback() {
        return Scope::Unusable("loopback");
    }
    if addr.is_multicast() {
        return Scope::Unusable("multicast");
    }
    match addr {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_link_local() {
                Scope::Unusable("link-local")
            } else if v4.is_broadcast() {
                Scope::Unusable("broadcast")
            } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
                Scope::Private
            } else {
                Scope::Global
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if first & 0xffc0 == 0xfe80 {
                Scope::Unusable("link-local")
            } else if v6.to_ipv4_mapped().is_some() {
                Scope::Unusable("IPv4-mapped")
            } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 {
                Scope::Private
            } else {
                Scope::Global
            }
        }
    }
}

impl Scope {
    /// Short word for explanations: `global`, `private`/`ULA`, or why it is unusable.
    pub(crate) fn describe(self, addr: IpAddr) -> &'static str {
        match (self, addr) {
            (Scope::Global, _) => "global",
            (Scope::Private, IpAddr::V6(_)) => "ULA",
            (Scope::Private, IpAddr::V4(_)) => "private",
            (Scope::Unusable(why), _) => why,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_addresses_nodes_report() {
        let cases = [
            ("2001:db8:1::5", Scope::Global),
            ("2a01:4f8::1", Scope::Global),
            ("fd00:10::5", Scope::Private),
            ("fec0::1", Scope::Private),
            ("fe80::1", Scope::Unusable("link-local")),
            ("febf::1", Scope::Unusable("link-local")),
            ("::1", Scope::Unusable("loopback")),
            ("ff02::1", Scope::Unusable("multicast")),
            ("::ffff:192.0.2.1", Scope::Unusable("IPv4-mapped")),
            ("::", Scope::Unusable("unspecified")),
            ("192.0.2.10", Scope::Global),
            ("203.0.113.7", Scope::Global),
            ("10.0.0.5", Scope::Private),
            ("172.31.255.1", Scope::Private),
            ("192.168.1.10", Scope::Private),
            ("100.64.0.1", Scope::Private),
            ("100.128.0.1", Scope::Global),
            ("169.254.1.1", Scope::Unusable("link-local")),
            ("127.0.0.1", Scope::Unusable("loopback")),
            ("224.0.0.1", Scope::Unusable("multicast")),
            ("255.255.255.255", Scope::Unusable("broadcast")),
        ];
        for (text, scope) in cases {
            assert_eq!(classify(text.parse().unwrap()), scope, "{text}");
        }
    }
}
