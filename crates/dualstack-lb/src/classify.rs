//! Which node addresses may be advertised, and which are preferred, on top of
//! [`dualstack_addr::kind_of`] (the special-purpose registries of both families).

use std::net::IpAddr;

use dualstack_addr::{Kind, kind_of};

/// How useful an address is as a LoadBalancer ingress address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Scope {
    /// Globally routable, and anything else a node may legitimately carry: documentation
    /// and benchmarking prefixes count as global (they are what examples and labs use).
    Global,
    /// Private: IPv6 ULA `fc00::/7` or site-local `fec0::/10`; IPv4 RFC 1918 or
    /// shared address space `100.64.0.0/10`.
    Private,
    /// Never advertised; the text (the address kind) says why.
    Unusable(&'static str),
}

pub(crate) fn classify(addr: IpAddr) -> Scope {
    let kind = kind_of(addr);
    match kind {
        Kind::Unspecified
        | Kind::Loopback
        | Kind::Multicast
        | Kind::LinkLocal
        | Kind::Broadcast
        | Kind::Ipv4Mapped
        | Kind::ThisNetwork
        | Kind::Discard
        | Kind::Dummy
        | Kind::Reserved => Scope::Unusable(kind.name()),
        Kind::SiteLocal => Scope::Private,
        _ if kind.is_private() => Scope::Private,
        _ => Scope::Global,
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
            ("::ffff:192.0.2.1", Scope::Unusable("ipv4-mapped")),
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
            ("240.0.0.1", Scope::Unusable("reserved")),
            ("0.1.2.3", Scope::Unusable("this-network")),
            ("198.18.0.1", Scope::Global),
        ];
        for (text, scope) in cases {
            assert_eq!(classify(text.parse().unwrap()), scope, "{text}");
        }
    }
}
