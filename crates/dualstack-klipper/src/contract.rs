//! Parsing and validating the klipper-lb environment variables.
//!
//! Lists (`SRC_RANGES`, `DEST_IPS`) accept commas, spaces, tabs and newlines as separators in
//! any mix, and both families in one list, as K3s and hand-written DaemonSets produce them.
//! Every error names the variable and the value it could not use.

use std::collections::BTreeSet;
use std::net::IpAddr;

use dualstack_addr::Family;
use dualstack_ruleset::Protocol;
use ipnet::IpNet;
use thiserror::Error;

/// The variables this contract reads, in the order they are checked.
pub const VARIABLES: [&str; 7] = [
    "SRC_PORT",
    "SRC_RANGES",
    "DEST_PROTO",
    "DEST_PORT",
    "DEST_IPS",
    "DEST_IP",
    "DEST_IP6",
];

/// A valid klipper-lb configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KlipperConfig {
    /// The port traffic arrives on inside the pod (the container and host port).
    pub src_port: u16,
    /// Allowed client ranges, both families. `0.0.0.0/0` and `::/0` when `SRC_RANGES` is empty.
    pub src_ranges: Vec<IpNet>,
    /// `DEST_PROTO`: the protocol forwarded.
    pub protocol: Protocol,
    /// The port to forward to (the Service port, or the NodePort for ETP=Local).
    pub dest_port: u16,
    /// Every destination from `DEST_IPS`, `DEST_IP` and `DEST_IP6`, de-duplicated and sorted
    /// (IPv4 first).
    pub destinations: Vec<IpAddr>,
}

impl KlipperConfig {
    /// The destinations of one family.
    pub fn destinations_of(&self, family: Family) -> impl Iterator<Item = IpAddr> + '_ {
        self.destinations
            .iter()
            .copied()
            .filter(move |ip| Family::of(*ip) == family)
    }
}

/// Why the environment cannot be used. Each variant names the variable and the value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ContractError {
    /// A port variable is unset or empty.
    #[error("{var} is not set; it must be a port number from 1 to 65535")]
    MissingPort {
        /// The variable (`SRC_PORT`, `DEST_PORT`).
        var: &'static str,
    },
    /// A port variable is not a number from 1 to 65535.
    #[error("{var}={value:?} is not a port number from 1 to 65535")]
    BadPort {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// A port written with a sign or leading zeros, which Go's klipper-lb reads differently.
    #[error(
        "{var}={value:?} is not a plain port number: write it as digits only, without a sign \
         or leading zeros ({plain})"
    )]
    PortNotPlain {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// The same port written plainly.
        plain: String,
    },
    /// `DEST_PROTO` is unset or empty.
    #[error("DEST_PROTO is not set; it must be TCP, UDP or SCTP")]
    MissingProtocol,
    /// `DEST_PROTO` is not TCP, UDP or SCTP.
    #[error("DEST_PROTO={value:?} is not a protocol we forward; use TCP, UDP or SCTP")]
    BadProtocol {
        /// Its value.
        value: String,
    },
    /// An entry of a destination list is not an address.
    #[error("{var} entry {entry:?} is not an IP address")]
    BadAddress {
        /// The variable (`DEST_IPS`, `DEST_IP`, `DEST_IP6`).
        var: &'static str,
        /// The entry.
        entry: String,
    },
    /// An IPv4 address in `DEST_IP6`.
    #[error("DEST_IP6 entry {entry:?} is an IPv4 address; put it in DEST_IPS or DEST_IP")]
    WrongFamily {
        /// The entry.
        entry: String,
    },
    /// A destination address nothing can be forwarded to (unspecified, multicast, loopback, …).
    #[error(
        "{var} entry {entry:?} cannot be a destination ({why}); \
         destinations are Service ClusterIPs or node addresses"
    )]
    UnusableDestination {
        /// The variable.
        var: &'static str,
        /// The entry.
        entry: String,
        /// What kind of address it is.
        why: &'static str,
    },
    /// An IPv4-mapped IPv6 destination (`::ffff:a.b.c.d`).
    #[error(
        "{var} entry {entry:?} is an IPv4-mapped IPv6 address, which never appears on the \
         wire; write the IPv4 address {ipv4} instead"
    )]
    Ipv4Mapped {
        /// The variable.
        var: &'static str,
        /// The entry.
        entry: String,
        /// The IPv4 address it maps.
        ipv4: std::net::Ipv4Addr,
    },
    /// An entry of `SRC_RANGES` is neither an address nor a CIDR range.
    #[error("SRC_RANGES entry {entry:?} is not an address or CIDR range")]
    BadRange {
        /// The entry.
        entry: String,
    },
    /// No destination in any of the destination variables.
    #[error("no destination: DEST_IPS, DEST_IP and DEST_IP6 are all empty or unset")]
    NoDestination,
}

impl KlipperConfig {
    /// Reads the contract through `var`, which returns a variable's value if it is set
    /// (for example `|name| std::env::var(name).ok()`).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ContractError> {
        let src_port = port(&var, "SRC_PORT")?;
        let src_ranges = ranges(var("SRC_RANGES").as_deref().unwrap_or(""))?;
        let protocol = protocol(var("DEST_PROTO").as_deref())?;
        let dest_port = port(&var, "DEST_PORT")?;

        let mut destinations = BTreeSet::new();
        for name in ["DEST_IPS", "DEST_IP", "DEST_IP6"] {
            let value = var(name).unwrap_or_default();
            for entry in split_list(&value) {
                let ip = destination(name, entry)?;
                if name == "DEST_IP6" && ip.is_ipv4() {
                    return Err(ContractError::WrongFamily {
                        entry: entry.to_owned(),
                    });
                }
                destinations.insert(ip);
            }
        }
        if destinations.is_empty() {
            return Err(ContractError::NoDestination);
        }

        Ok(KlipperConfig {
            src_port,
            src_ranges,
            protocol,
            dest_port,
            destinations: destinations.into_iter().collect(),
        })
    }
}

/// Splits a list on commas and white space, dropping empty entries.
fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

/// A port is plain decimal digits, 1 to 65535, optionally surrounded by white space. A sign
/// (`+8443`, `-1`) or leading zeros (`08443`) is refused rather than read as a number:
/// iptables and the Kubernetes API do not write ports that way, so such a value is a mistake
/// in the DaemonSet, not a port.
fn port(var: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<u16, ContractError> {
    let raw = var(name).ok_or(ContractError::MissingPort { var: name })?;
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(ContractError::MissingPort { var: name });
    }
    let bad = || ContractError::BadPort {
        var: name,
        value: raw.clone(),
    };
    let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let number = match digits.parse::<u16>() {
        Ok(p) if p != 0 => p,
        _ => return Err(bad()),
    };
    if digits != trimmed || digits.starts_with('0') {
        return Err(ContractError::PortNotPlain {
            var: name,
            value: raw.clone(),
            plain: number.to_string(),
        });
    }
    Ok(number)
}

fn protocol(raw: Option<&str>) -> Result<Protocol, ContractError> {
    let value = raw.map(str::trim).unwrap_or("");
    if value.is_empty() {
        return Err(ContractError::MissingProtocol);
    }
    match value.to_ascii_lowercase().as_str() {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        "sctp" => Ok(Protocol::Sctp),
        _ => Err(ContractError::BadProtocol {
            value: value.to_owned(),
        }),
    }
}

/// A destination is a unicast address another host can reach: a Service ClusterIP or a node
/// address. Refused before the kernel is touched: unspecified, loopback (a forwarded packet
/// DNATed to it is dropped as a martian), link-local (no interface says which link),
/// multicast, the IPv4 broadcast address, and IPv4-mapped IPv6 (`::ffff:10.43.0.10`, which
/// never appears on the wire; the IPv4 form is meant).
fn destination(var: &'static str, entry: &str) -> Result<IpAddr, ContractError> {
    let ip: IpAddr = entry.parse().map_err(|_| ContractError::BadAddress {
        var,
        entry: entry.to_owned(),
    })?;
    if let IpAddr::V6(v6) = ip
        && let Some(ipv4) = v6.to_ipv4_mapped()
    {
        return Err(ContractError::Ipv4Mapped {
            var,
            entry: entry.to_owned(),
            ipv4,
        });
    }
    let why = if ip.is_unspecified() {
        Some("unspecified address")
    } else if ip.is_loopback() {
        Some("loopback address")
    } else if ip.is_multicast() {
        Some("multicast address")
    } else if is_link_local(ip) {
        Some("link-local address")
    } else if matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()) {
        Some("broadcast address")
    } else {
        None
    };
    match why {
        Some(why) => Err(ContractError::UnusableDestination {
            var,
            entry: entry.to_owned(),
            why,
        }),
        None => Ok(ip),
    }
}

/// `169.254.0.0/16` or `fe80::/10`.
fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// Parses `SRC_RANGES`. An empty list allows everything in both families, as K3s does
/// (it sends `0.0.0.0/0` plus `::/0` for Services with IPv6). A bare address is a /32 or /128;
/// host bits are cleared (`10.0.0.1/8` → `10.0.0.0/8`), as iptables and the Kubernetes API do.
fn ranges(value: &str) -> Result<Vec<IpNet>, ContractError> {
    let mut out = BTreeSet::new();
    for entry in split_list(value) {
        let net = match entry.parse::<IpNet>() {
            Ok(net) => net.trunc(),
            Err(_) => match entry.parse::<IpAddr>() {
                Ok(ip) => IpNet::from(ip),
                Err(_) => {
                    return Err(ContractError::BadRange {
                        entry: entry.to_owned(),
                    });
                }
            },
        };
        out.insert(net);
    }
    if out.is_empty() {
        out.extend(Family::BOTH.map(everything));
    }
    Ok(out.into_iter().collect())
}

/// `0.0.0.0/0` or `::/0`.
fn everything(family: Family) -> IpNet {
    match family {
        Family::V4 => IpNet::V4(ipnet::Ipv4Net::default()),
        Family::V6 => IpNet::V6(ipnet::Ipv6Net::default()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<KlipperConfig, ContractError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        KlipperConfig::from_vars(|k| map.get(k).cloned())
    }

    fn base<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut v = vec![
            ("SRC_PORT", "443"),
            ("DEST_PROTO", "TCP"),
            ("DEST_PORT", "443"),
        ];
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn k3s_dual_stack_cluster_ips_with_default_ranges() {
        let cfg = parse(&base(&[("DEST_IPS", "10.43.0.10,2001:cafe:43::a")])).unwrap();
        assert_eq!(cfg.src_port, 443);
        assert_eq!(cfg.protocol, Protocol::Tcp);
        assert_eq!(
            cfg.destinations,
            vec![
                "10.43.0.10".parse::<IpAddr>().unwrap(),
                "2001:cafe:43::a".parse().unwrap()
            ]
        );
        let ranges: Vec<String> = cfg.src_ranges.iter().map(|r| r.to_string()).collect();
        assert_eq!(ranges, ["0.0.0.0/0", "::/0"]);
    }

    #[test]
    fn lists_accept_commas_spaces_and_mixed_families_in_any_order() {
        let cfg = parse(&base(&[
            ("DEST_IPS", " 2001:cafe:43::a ,  10.43.0.10\t"),
            ("SRC_RANGES", "192.168.0.0/16 , 2001:db8::/32,10.0.0.7"),
        ]))
        .unwrap();
        assert_eq!(cfg.destinations.len(), 2);
        assert!(cfg.destinations[0].is_ipv4(), "IPv4 sorts first");
        let ranges: Vec<String> = cfg.src_ranges.iter().map(|r| r.to_string()).collect();
        assert_eq!(ranges, ["10.0.0.7/32", "192.168.0.0/16", "2001:db8::/32"]);
    }

    #[test]
    fn legacy_dest_ip_and_fork_dest_ip6_are_merged_and_deduplicated() {
        let cfg = parse(&base(&[
            ("DEST_IP", "10.43.0.10"),
            ("DEST_IP6", "2001:cafe:43::a"),
            ("DEST_IPS", "10.43.0.10"),
        ]))
        .unwrap();
        assert_eq!(cfg.destinations.len(), 2);
        assert_eq!(cfg.destinations_of(Family::V6).count(), 1);
    }

    #[test]
    fn protocols_in_any_case() {
        for (raw, want) in [
            ("tcp", Protocol::Tcp),
            ("Udp", Protocol::Udp),
            (" SCTP ", Protocol::Sctp),
        ] {
            let cfg = parse(&[
                ("SRC_PORT", "53"),
                ("DEST_PORT", "53"),
                ("DEST_PROTO", raw),
                ("DEST_IPS", "10.43.0.10"),
            ])
            .unwrap();
            assert_eq!(cfg.protocol, want, "{raw}");
        }
    }

    #[test]
    fn host_bits_in_ranges_are_cleared_like_iptables_does() {
        let cfg = parse(&base(&[
            ("DEST_IPS", "10.43.0.10"),
            ("SRC_RANGES", "10.1.2.3/8"),
        ]))
        .unwrap();
        assert_eq!(cfg.src_ranges, vec!["10.0.0.0/8".parse::<IpNet>().unwrap()]);
    }

    #[test]
    fn bad_input_names_the_variable_and_value() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[
                    ("DEST_PROTO", "TCP"),
                    ("DEST_PORT", "80"),
                    ("DEST_IPS", "10.0.0.1"),
                ],
                "SRC_PORT is not set",
            ),
            (
                &[
                    ("SRC_PORT", "http"),
                    ("DEST_PROTO", "TCP"),
                    ("DEST_PORT", "80"),
                    ("DEST_IPS", "10.0.0.1"),
                ],
                "SRC_PORT=\"http\"",
            ),
            (
                &[
                    ("SRC_PORT", "65536"),
                    ("DEST_PROTO", "TCP"),
                    ("DEST_PORT", "80"),
                    ("DEST_IPS", "10.0.0.1"),
                ],
                "SRC_PORT=\"65536\"",
            ),
            (
                &[
                    ("SRC_PORT", "0"),
                    ("DEST_PROTO", "TCP"),
                    ("DEST_PORT", "80"),
                    ("DEST_IPS", "10.0.0.1"),
                ],
                "SRC_PORT=\"0\"",
            ),
            (
                &[
                    ("SRC_PORT", "80"),
                    ("DEST_PROTO", "TCP"),
                    ("DEST_PORT", "-1"),
                    ("DEST_IPS", "10.0.0.1"),
                ],
                "DEST_PORT=\"-1\"",
            ),
            (
                &[
                    ("SRC_PORT", "80"),
                    ("DEST_PROTO", "ICMP"),
                    ("DEST_PORT", "80"),
                    ("DEST_IPS", "10.0.0.1"),
                ],
                "DEST_PROTO=\"ICMP\"",
            ),
            (
                &[
                    ("SRC_PORT", "80"),
                    ("DEST_PORT", "80"),
                    ("DEST_IPS", "10.0.0.1"),
                ],
                "DEST_PROTO is not set",
            ),
            (
                &[
                    ("SRC_PORT", "80"),
                    ("DEST_PROTO", "TCP"),
                    ("DEST_PORT", "80"),
                    ("DEST_IPS", "10.0.0.256"),
                ],
                "DEST_IPS entry \"10.0.0.256\"",
            ),
            (
                &[
                    ("SRC_PORT", "80"),
                    ("DEST_PROTO", "TCP"),
                    ("DEST_PORT", "80"),
                    ("DEST_IPS", "10.43.0.10/32"),
                ],
                "DEST_IPS entry \"10.43.0.10/32\"",
            ),
            (
                &[
                    ("SRC_PORT", "80"),
                    ("DEST_PROTO", "TCP"),
                    ("DEST_PORT", "80"),
                    ("DEST_IP6", "10.43.0.10"),
                ],
                "DEST_IP6 entry \"10.43.0.10\" is an IPv4",
            ),
            (
                &[
                    ("SRC_PORT", "80"),
                    ("DEST_PROTO", "TCP"),
                    ("DEST_PORT", "80"),
                    ("DEST_IPS", "::"),
                ],
                "unspecified",
            ),
            (
                &[
                    ("SRC_PORT", "80"),
                    ("DEST_PROTO", "TCP"),
                    ("DEST_PORT", "80"),
                    ("DEST_IPS", "10.0.0.1"),
                    ("SRC_RANGES", "10.0.0.0/33"),
                ],
                "SRC_RANGES entry \"10.0.0.0/33\"",
            ),
            (
                &[
                    ("SRC_PORT", "80"),
                    ("DEST_PROTO", "TCP"),
                    ("DEST_PORT", "80"),
                    ("DEST_IPS", " , "),
                ],
                "no destination",
            ),
            (
                &[
                    ("SRC_PORT", "80"),
                    ("DEST_PROTO", "TCP"),
                    ("DEST_PORT", "80"),
                ],
                "no destination",
            ),
        ];
        for (vars, want) in cases {
            let err = parse(vars).unwrap_err().to_string();
            assert!(err.contains(want), "{vars:?}: got {err:?}, want {want:?}");
        }
    }

    fn one_var(name: &str, value: &str) -> Result<KlipperConfig, ContractError> {
        let mut vars = vec![
            ("SRC_PORT", "443"),
            ("DEST_PROTO", "TCP"),
            ("DEST_PORT", "443"),
            ("DEST_IPS", "10.43.0.10"),
        ];
        vars.retain(|(k, _)| *k != name);
        vars.push((name, value));
        parse(&vars)
    }

    #[test]
    fn signed_and_zero_padded_ports_are_refused_with_the_plain_form() {
        let not_plain = |var: &str, value: &str, plain: &str| {
            format!(
                "{var}={value:?} is not a plain port number: write it as digits only, \
                 without a sign or leading zeros ({plain})"
            )
        };
        let not_port = |var: &str, value: &str| {
            format!("{var}={value:?} is not a port number from 1 to 65535")
        };
        for var in ["SRC_PORT", "DEST_PORT"] {
            let cases = [
                ("+8443", not_plain(var, "+8443", "8443")),
                ("08443", not_plain(var, "08443", "8443")),
                ("00080", not_plain(var, "00080", "80")),
                ("-1", not_port(var, "-1")),
                ("-8443", not_port(var, "-8443")),
                ("+0", not_port(var, "+0")),
                ("00", not_port(var, "00")),
                ("++80", not_port(var, "++80")),
                ("0x50", not_port(var, "0x50")),
                ("8 443", not_port(var, "8 443")),
                ("\u{0663}", not_port(var, "\u{0663}")),
            ];
            for (value, want) in cases {
                let err = one_var(var, value).unwrap_err();
                assert_eq!(err.to_string(), want, "{var}={value:?}");
            }
            // White space around a plain number is fine, as before.
            let cfg = one_var(var, " 8443 ").unwrap();
            assert_eq!(
                if var == "SRC_PORT" {
                    cfg.src_port
                } else {
                    cfg.dest_port
                },
                8443
            );
        }
    }

    #[test]
    fn destinations_nothing_can_reach_are_refused_naming_the_variable() {
        let v6: &[(&str, &str)] = &[
            ("::", "unspecified address"),
            ("::1", "loopback address"),
            ("ff02::1", "multicast address"),
            ("ff0e::1:3", "multicast address"),
            ("fe80::1", "link-local address"),
            ("febf::1", "link-local address"),
        ];
        let v4: &[(&str, &str)] = &[
            ("0.0.0.0", "unspecified address"),
            ("127.0.0.1", "loopback address"),
            ("127.1.2.3", "loopback address"),
            ("224.0.0.1", "multicast address"),
            ("239.255.255.250", "multicast address"),
            ("169.254.10.1", "link-local address"),
            ("255.255.255.255", "broadcast address"),
        ];
        for var in ["DEST_IPS", "DEST_IP", "DEST_IP6"] {
            let cases = v6
                .iter()
                .chain(if var == "DEST_IP6" { &[][..] } else { v4 });
            for (entry, why) in cases {
                let err = one_var(var, entry).unwrap_err();
                match &err {
                    ContractError::UnusableDestination {
                        var: got_var,
                        entry: got_entry,
                        why: got_why,
                    } => assert_eq!(
                        (*got_var, got_entry.as_str(), *got_why),
                        (var, *entry, *why)
                    ),
                    other => panic!("{var}={entry}: {other:?}"),
                }
                assert!(
                    err.to_string()
                        .starts_with(&format!("{var} entry \"{entry}\" cannot be a destination")),
                    "{err}"
                );
            }
            // IPv4-mapped: refused with the IPv4 form to write instead, inside a list too.
            let err = one_var(var, "2001:db8:43::a, ::ffff:10.43.0.10").unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "{var} entry \"::ffff:10.43.0.10\" is an IPv4-mapped IPv6 address, which \
                     never appears on the wire; write the IPv4 address 10.43.0.10 instead"
                )
            );
        }
        // Neighbours of the refused ranges stay valid destinations.
        for ok in [
            "fec0::1",
            "fe7f::1",
            "169.255.0.1",
            "126.255.255.255",
            "128.0.0.1",
            "::2",
            "::fffe:a2b:c0a",
            "64:ff9b::a2b:c0a",
        ] {
            assert!(one_var("DEST_IPS", ok).is_ok(), "{ok}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_separator_mix_gives_the_same_config(
            seps in proptest::collection::vec(proptest::sample::select(vec![",", " ", ", ", "\t", " ,", "\n"]), 3)
        ) {
            let list = format!("{}10.43.0.10{}fd00:43::a{}", seps[0], seps[1], seps[2]);
            let cfg = parse(&base(&[("DEST_IPS", list.as_str())])).unwrap();
            proptest::prop_assert_eq!(cfg.destinations.len(), 2);
        }
    }
}
