//! Which address ranges may carry cluster addresses: special-purpose classification
//! (IANA special-purpose registries, `dualstack-planning.md` §4.3) and node capacity maths
//! (kube-controller-manager `cidr_set.go`, §1.5).

use dualstack_addr::{Family, Kind, classify};
use ipnet::IpNet;

use crate::code::Code;
use crate::finding::{Finding, Severity};

/// The severity of using a range of `kind` for pods or services, with the reason; `None` when
/// it is a normal choice.
pub fn range_severity(kind: Kind, family: Family) -> Option<(Severity, &'static str)> {
    match kind {
        Kind::Private | Kind::UniqueLocal => None,
        Kind::GlobalUnicast if family == Family::V6 => Some((
            Severity::Info,
            "global unicast: fine when this prefix is delegated to you and routed to the nodes; otherwise use a ULA",
        )),
        Kind::GlobalUnicast => Some((
            Severity::Warning,
            "public IPv4 space you probably do not own; pods would shadow those hosts",
        )),
        Kind::SharedAddress => Some((
            Severity::Warning,
            "RFC 6598 shared space: collides with carrier-grade NAT and Tailscale",
        )),
        Kind::Benchmarking => Some((Severity::Warning, "benchmarking space (RFC 2544/5180)")),
        Kind::UniqueLocalL0 => Some((
            Severity::Warning,
            "fc00::/8 has L=0, which RFC 4193 leaves undefined; generate an fd00::/8 prefix",
        )),
        _ => Some((
            Severity::Error,
            "special-purpose space that must not carry cluster traffic",
        )),
    }
}

/// Findings for a pod or service range that lies in special-purpose space.
pub fn check_range_kind(
    name: &str,
    net: &IpNet,
    source: Option<String>,
    findings: &mut Vec<Finding>,
) {
    let family = Family::of_net(*net);
    for kind in classify(net).kinds() {
        let Some((severity, why)) = range_severity(kind, family) else {
            continue;
        };
        let code = if severity == Severity::Error {
            Code::SpecialPurposeRange
        } else {
            Code::DiscouragedRange
        };
        let doc = if kind == Kind::Documentation {
            " (the K3s docs' examples use 2001:db8::/32; never copy them into a real cluster)"
        } else {
            ""
        };
        findings.push(
            Finding::new(
                severity,
                code,
                format!("{name} {net} is {} ({}): {why}{doc}", kind.name(), kind.description()),
                match family {
                    Family::V4 => "use RFC 1918 space such as 10.42.0.0/16 (pods) and 10.43.0.0/16 (services)".to_owned(),
                    Family::V6 => "use a generated ULA /48 (`dualstack ip ula` or `dualstack plan`) or a prefix delegated to you".to_owned(),
                },
            )
            .at(source.clone()),
        );
    }
}

/// How many node pod ranges a cluster CIDR yields with a node mask: `2^(mask - prefix)`,
/// saturating; `0` when the mask is shorter than the prefix.
pub fn node_count(cluster: &IpNet, node_mask: u8) -> u128 {
    let prefix = cluster.prefix_len();
    if node_mask < prefix {
        return 0;
    }
    let bits = u32::from(node_mask - prefix);
    1u128.checked_shl(bits).unwrap_or(u128::MAX)
}

/// Usable pod addresses per node range (flannel/host-local: minus network, gateway and, for
/// IPv4, broadcast), saturating.
pub fn pods_per_node(family: Family, node_mask: u8) -> u128 {
    let host_bits = u32::from(family.bits().saturating_sub(node_mask));
    let total = 1u128.checked_shl(host_bits).unwrap_or(u128::MAX);
    let reserved = match family {
        Family::V4 => 3,
        Family::V6 => 2,
    };
    total.saturating_sub(reserved)
}

/// A count in words: exact below a million, else the nearest power of two (2^64 − 2
/// pod addresses in a /64 read "about 2^64", not 2^63).
pub fn human_count(n: u128) -> String {
    if n == u128::MAX {
        "more than 2^127".to_owned()
    } else if n < 1_000_000 {
        group_thousands(n)
    } else {
        // Exact enough: f64 keeps 53 bits, far more than the rounding needs.
        #[allow(clippy::cast_precision_loss)]
        let log2 = (n as f64).log2().round();
        format!("about 2^{log2}")
    }
}

fn group_thousands(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_maths() {
        let v4: IpNet = "10.42.0.0/16".parse().unwrap();
        assert_eq!(node_count(&v4, 24), 256);
        assert_eq!(node_count(&v4, 16), 1);
        assert_eq!(node_count(&v4, 15), 0);
        assert_eq!(pods_per_node(Family::V4, 24), 253);
        assert_eq!(pods_per_node(Family::V6, 64), (1u128 << 64) - 2);
        assert_eq!(human_count(65536), "65,536");
        assert_eq!(human_count(1u128 << 64), "about 2^64");
        assert_eq!(human_count((1u128 << 64) - 2), "about 2^64");
        assert_eq!(human_count((1u128 << 20) + 1), "about 2^20");
        assert_eq!(human_count(3 << 20), "about 2^22");
    }

    #[test]
    fn documentation_and_link_local_ranges_are_errors() {
        let table = [
            ("2001:db8:42::/56", Some(Severity::Error)),
            ("fe80::/64", Some(Severity::Error)),
            ("192.0.2.0/24", Some(Severity::Error)),
            ("100.64.0.0/16", Some(Severity::Warning)),
            ("fc00:42::/56", Some(Severity::Warning)),
            ("2003:e9:f74a:ecf8::/64", Some(Severity::Info)),
            ("10.42.0.0/16", None),
            ("fd12:3456:789a::/56", None),
        ];
        for (net, want) in table {
            let mut f = Vec::new();
            check_range_kind("cluster-cidr", &net.parse().unwrap(), None, &mut f);
            assert_eq!(f.first().map(|f| f.severity), want, "{net}");
        }
    }
}
