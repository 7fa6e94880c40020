//! Sample rulesets shared by the renderer tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dualstack_ruleset::{Backend, Destination, Frontend, Protocol, Ruleset, Selection};

pub fn backend(text: &str) -> Backend {
    let sa: std::net::SocketAddr = text.parse().unwrap();
    Backend {
        addr: sa.ip(),
        port: sa.port(),
    }
}

/// Covers every shape: dual-stack address-bound with ranges and several backends
/// (masquerade, random), `AnyLocal` UDP with one backend per family and no masquerade,
/// an IPv4-only hash frontend whose IPv6 family is denied by its ranges, and a frontend
/// with no backends (renders nothing).
pub fn sample() -> Ruleset {
    Ruleset {
        table: "dualstack".into(),
        guard: Vec::new(),
        frontends: vec![
            Frontend {
                name: "default/traefik:websecure".into(),
                destination: Destination::Addresses(vec![
                    "192.0.2.10".parse().unwrap(),
                    "2001:db8::10".parse().unwrap(),
                ]),
                protocol: Protocol::Tcp,
                port: 443,
                source_ranges: vec![
                    "10.0.0.0/8".parse().unwrap(),
                    "10.1.0.0/16".parse().unwrap(),
                    "192.168.1.77/24".parse().unwrap(),
                    "2001:db8:1::/48".parse().unwrap(),
                ],
                backends: vec![
                    backend("10.42.1.5:8443"),
                    backend("10.42.0.7:8443"),
                    backend("[fd00:42::7]:8443"),
                    backend("[fd00:42:1::5]:8443"),
                ],
                selection: Selection::Random,
                masquerade: true,
            },
            Frontend {
                name: "kube-system/dns:udp".into(),
                destination: Destination::AnyLocal,
                protocol: Protocol::Udp,
                port: 53,
                source_ranges: vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()],
                backends: vec![backend("10.43.0.10:53"), backend("[fd00:43::10]:53")],
                selection: Selection::Random,
                masquerade: false,
            },
            Frontend {
                name: "shop/api".into(),
                destination: Destination::Addresses(vec!["192.0.2.10".parse().unwrap()]),
                protocol: Protocol::Sctp,
                port: 9000,
                source_ranges: vec!["0.0.0.0/0".parse().unwrap()],
                backends: vec![
                    backend("10.42.2.1:9000"),
                    backend("10.42.2.2:9000"),
                    backend("10.42.2.3:9000"),
                ],
                selection: Selection::Hash,
                masquerade: true,
            },
            Frontend {
                name: "idle/no-endpoints".into(),
                destination: Destination::AnyLocal,
                protocol: Protocol::Tcp,
                port: 8080,
                source_ranges: vec![],
                backends: vec![],
                selection: Selection::Random,
                masquerade: true,
            },
        ],
    }
}
