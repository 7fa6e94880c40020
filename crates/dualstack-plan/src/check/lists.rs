//! Comma-separated lists of CIDRs or addresses (`cluster-cidr`, `service-cidr`, `node-ip`,
//! `cluster-dns`): parsing with findings for whitespace, bad entries, host bits and
//! non-canonical text; count and family rules (Kubernetes `validateCIDRs`, `parseNodeIP`,
//! kube-apiserver `validateClusterIPFlags`: at most two entries, one per family).

use std::net::IpAddr;

use dualstack_addr::{AddrOrPrefix, Family, ParseError, parse_addr, parse_addr_or_prefix};
use ipnet::IpNet;

use crate::code::Code;
use crate::finding::{Finding, Severity};
use crate::input::Sourced;

/// One entry of a list, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The prefix (host bits cleared, as Go's `net.ParseCIDR` does) or the address as a /32, /128.
    pub net: IpNet,
    /// The family of `net`.
    pub family: Family,
}

impl Entry {
    /// The address of the entry (the network address of a prefix).
    pub fn addr(&self) -> IpAddr {
        self.net.addr()
    }
}

/// Whether a list holds prefixes or plain addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// The list holds CIDRs (`cluster-cidr`, `service-cidr`).
    Prefix,
    /// The list holds plain addresses (`node-ip`, `cluster-dns`).
    Address,
}

/// A parsed list: its name (the option), where it came from, and its good entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    /// The option the list came from, for messages (`cluster-cidr`).
    pub name: String,
    /// Where it was written (file and line), when known.
    pub source: Option<String>,
    /// The entries that parsed; the rest became findings.
    pub entries: Vec<Entry>,
}

impl List {
    /// The entry of `family`, if any.
    pub fn of(&self, family: Family) -> Option<&Entry> {
        self.entries.iter().find(|e| e.family == family)
    }

    /// The family of the first entry.
    pub fn primary(&self) -> Option<Family> {
        self.entries.first().map(|e| e.family)
    }

    /// Whether both families are present.
    pub fn is_dual(&self) -> bool {
        self.of(Family::V4).is_some() && self.of(Family::V6).is_some()
    }
}

/// Parses `value` as the list option `name`, pushing findings about its text.
pub fn parse_list(
    name: &str,
    value: &Sourced<String>,
    kind: EntryKind,
    findings: &mut Vec<Finding>,
) -> List {
    let source = Some(value.origin.to_string());
    let at = |f: Finding| f.at(source.clone());
    let mut entries = Vec::new();
    let raw = value.value.as_str();
    if raw.split(',').any(|p| p != p.trim()) {
        findings.push(at(Finding::new(
            Severity::Error,
            Code::ListWhitespace,
            format!("{name} `{raw}` has whitespace inside the comma-separated list; Kubernetes and K3s split on `,` only and reject ` {}`", raw.split(',').map(str::trim).nth(1).unwrap_or("")),
            format!("write it without spaces: {name}: \"{}\"", raw.split(',').map(str::trim).collect::<Vec<_>>().join(",")),
        )));
    }
    for part in raw.split(',').map(str::trim) {
        let parsed = match kind {
            EntryKind::Prefix => parse_addr_or_prefix(part),
            EntryKind::Address => parse_addr(part).map(AddrOrPrefix::Addr),
        };
        let net = match parsed {
            Ok(AddrOrPrefix::Prefix(net)) => net,
            Ok(AddrOrPrefix::Addr(addr)) if kind == EntryKind::Address => IpNet::from(addr),
            Ok(AddrOrPrefix::Addr(addr)) => {
                findings.push(at(Finding::new(
                    Severity::Error,
                    Code::InvalidValue,
                    format!("{name} entry `{part}` is an address, not a CIDR"),
                    format!(
                        "add the prefix length, e.g. {addr}/{}",
                        if addr.is_ipv4() { 16 } else { 56 }
                    ),
                )));
                continue;
            }
            Err(ParseError::HostBits { suggestion, .. }) => {
                findings.push(at(Finding::new(
                    Severity::Warning,
                    Code::HostBitsSet,
                    format!(
                        "{name} entry `{part}` has host bits set; Kubernetes silently uses {suggestion} (and rejects it in ServiceCIDR objects: \"should not have any bits set beyond the prefix length\")"
                    ),
                    format!("write {suggestion}"),
                )));
                suggestion
            }
            Err(err) => {
                findings.push(at(Finding::new(
                    Severity::Error,
                    Code::InvalidValue,
                    format!("{name} entry `{part}`: {err}"),
                    format!(
                        "give {name} as {}",
                        match kind {
                            EntryKind::Prefix =>
                                "comma-separated CIDRs, e.g. 10.42.0.0/16,fd12:3456:789a::/56",
                            EntryKind::Address =>
                                "comma-separated addresses, e.g. 192.168.1.10,fd12:3456:789a:1::10",
                        }
                    ),
                )));
                continue;
            }
        };
        let canonical = match kind {
            EntryKind::Prefix => net.to_string(),
            EntryKind::Address => net.addr().to_string(),
        };
        if net.addr().is_ipv6() && canonical != part {
            findings.push(at(Finding::new(
                Severity::Info,
                Code::NotCanonical,
                format!("{name} entry `{part}` is not in canonical RFC 5952 form (`{canonical}`); Kubernetes warns about such values"),
                format!("write {canonical}"),
            )));
        }
        entries.push(Entry {
            family: Family::of_net(net),
            net,
        });
    }
    if entries.len() > 2 {
        findings.push(at(Finding::new(
            Severity::Error,
            Code::TooManyEntries,
            format!("{name} `{raw}` has {} entries; Kubernetes allows one, or two of different families", entries.len()),
            format!("keep one IPv4 and one IPv6 entry in {name}"),
        )));
    } else if entries.len() == 2 && entries[0].family == entries[1].family {
        findings.push(at(Finding::new(
            Severity::Error,
            Code::SameFamilyPair,
            format!("{name} `{raw}` has two {} entries; a dual-stack pair must be one IPv4 and one IPv6", entries[0].family.k8s_name()),
            format!("keep one entry per family in {name}"),
        )));
    }
    List {
        name: name.to_owned(),
        source,
        entries,
    }
}

/// Every list must put the same family first: it is the primary family of the cluster
/// (`dualstack-planning.md` §1.7; K3s docs on IPv6-primary clusters).
pub fn check_family_order(lists: &[&List], findings: &mut Vec<Finding>) {
    let mut reference: Option<(&List, Family)> = None;
    for list in lists {
        let Some(primary) = list.primary() else {
            continue;
        };
        match reference {
            None => reference = Some((list, primary)),
            Some((first, family)) if family != primary => {
                findings.push(
                    Finding::new(
                        Severity::Error,
                        Code::FamilyOrderMismatch,
                        format!(
                            "{} starts with {} but {} starts with {}: the first entry picks the primary family, and all lists must agree",
                            list.name, primary.k8s_name(), first.name, family.k8s_name()
                        ),
                        format!("list {} first in {} as well (or swap the others)", family.k8s_name(), list.name),
                    )
                    .at(list.source.clone()),
                );
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Origin;

    fn sourced(s: &str) -> Sourced<String> {
        Sourced {
            value: s.to_owned(),
            origin: Origin::new("config.yaml", Some(2)),
        }
    }

    fn codes(findings: &[Finding]) -> Vec<&'static str> {
        findings.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn list_text_rules() {
        let table: &[(&str, EntryKind, &[&str], usize)] = &[
            ("10.42.0.0/16,fd00:42::/56", EntryKind::Prefix, &[], 2),
            (
                "10.42.0.0/16, fd00:42::/56",
                EntryKind::Prefix,
                &["list-whitespace"],
                2,
            ),
            (
                "10.42.0.0/16,10.52.0.0/16",
                EntryKind::Prefix,
                &["same-family-pair"],
                2,
            ),
            (
                "10.42.0.0/16,fd00:42::/56,10.52.0.0/16",
                EntryKind::Prefix,
                &["too-many-entries"],
                3,
            ),
            ("10.42.0.1/16", EntryKind::Prefix, &["host-bits-set"], 1),
            (
                "fd45:0a71:55a6:0001::/64",
                EntryKind::Prefix,
                &["not-canonical"],
                1,
            ),
            ("10.42.0.0", EntryKind::Prefix, &["invalid-value"], 0),
            ("10.42.0.0/33", EntryKind::Prefix, &["invalid-value"], 0),
            ("192.168.1.10,2001:db8::10", EntryKind::Address, &[], 2),
            ("192.168.1.300", EntryKind::Address, &["invalid-value"], 0),
        ];
        for (text, kind, want, n) in table {
            let mut findings = Vec::new();
            let list = parse_list("cluster-cidr", &sourced(text), *kind, &mut findings);
            assert_eq!(codes(&findings), *want, "{text}");
            assert_eq!(list.entries.len(), *n, "{text}");
            assert!(
                findings
                    .iter()
                    .all(|f| f.source.as_deref() == Some("config.yaml:2"))
            );
        }
    }

    #[test]
    fn family_order_must_agree() {
        let mut f = Vec::new();
        let a = parse_list(
            "cluster-cidr",
            &sourced("fd00:42::/56,10.42.0.0/16"),
            EntryKind::Prefix,
            &mut f,
        );
        let b = parse_list(
            "service-cidr",
            &sourced("10.43.0.0/16,fd00:43::/112"),
            EntryKind::Prefix,
            &mut f,
        );
        let c = parse_list("node-ip", &sourced("fd00::1"), EntryKind::Address, &mut f);
        check_family_order(&[&a, &b, &c], &mut f);
        assert_eq!(codes(&f), ["family-order-mismatch"]);
        assert!(
            f[0].message
                .contains("service-cidr starts with IPv4 but cluster-cidr starts with IPv6")
        );
    }
}
