//! The stable finding codes of `plan check`, each with a one-line description.
//!
//! Codes never change meaning once released; scripts may match on them. The list is
//! [`Code::ALL`]; `CODES.md` in this crate is generated from it ([`markdown_table`]) and a test
//! keeps the two equal.

use serde::{Serialize, Serializer};

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal : $desc:literal, )*) => {
        /// A stable identifier for a kind of finding.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $( $(#[$doc])* #[doc = $desc] $variant, )*
        }

        impl Code {
            /// Every code, in documentation order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The stable text of the code, e.g. `too-many-cidrs`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $text,)* }
            }

            /// One line saying what the code is about.
            pub fn description(self) -> &'static str {
                match self { $(Code::$variant => $desc,)* }
            }
        }
    };
}

codes! {
    SystemdContinuationBroken = "systemd-continuation-broken":
        "an ExecStart= line does not end in `\\` (a space or a comment after it), so systemd ends the command there and drops the flag lines after it",
    SystemdStrayArgument = "systemd-stray-argument":
        "systemd passes K3s words that are neither flags nor flag values (`#`, `\\ #`, a comment's text); after a flag without a value K3s stops reading flags there",
    SystemdMultipleExecStart = "systemd-multiple-exec-start":
        "more than one ExecStart= command (a drop-in without an empty `ExecStart=` first) for a service that is not Type=oneshot; systemd refuses to start it",
    SystemdUnknownEscape = "systemd-unknown-escape":
        "an escape systemd does not know in ExecStart=, passed to K3s verbatim, backslash and all",
    SystemdUnsetVariable = "systemd-unset-variable":
        "a `$VAR`/`${VAR}` in ExecStart= that no Environment= or environment file read here sets; systemd substitutes nothing",
    InvalidValue = "invalid-value":
        "a CIDR or address that does not parse",
    ListWhitespace = "list-whitespace":
        "whitespace inside a comma-separated list",
    TooManyEntries = "too-many-entries":
        "more than two entries in a cluster-cidr/service-cidr/node-ip/cluster-dns list",
    SameFamilyPair = "same-family-pair":
        "two entries of one list are of the same family",
    FamilyOrderMismatch = "family-order-mismatch":
        "the lists do not agree on the primary family (which family comes first)",
    HostBitsSet = "host-bits-set":
        "a CIDR has bits set after its prefix length",
    NotCanonical = "not-canonical":
        "an IPv6 value is not in RFC 5952 canonical text",
    SpecialPurposeRange = "special-purpose-range":
        "a reserved, documentation, loopback, link-local or multicast range used for cluster addresses",
    DiscouragedRange = "discouraged-range":
        "a range that works but collides with common uses (CGNAT, benchmarking, fc00::/8, GUA you may not own)",
    RangesOverlap = "ranges-overlap":
        "pod, service and node networks overlap",
    ServiceRangeTooLarge = "service-range-too-large":
        "service CIDR larger than /12 (IPv4) or /108 (IPv6); kube-apiserver refuses to start",
    ServiceRangeClamped = "service-range-clamped":
        "IPv6 service CIDR larger than /112; the bitmap allocator uses only 65,536 addresses of it",
    ServiceRangeTooSmall = "service-range-too-small":
        "service CIDR too small to hold the cluster DNS address (index 10)",
    ClusterDnsOutsideServiceCidr = "cluster-dns-outside-service-cidr":
        "a cluster-dns address is not inside the service CIDR of its family",
    ClusterDnsMissingFamily = "cluster-dns-missing-family":
        "dual-stack service CIDR but cluster DNS in one family only",
    NodeMaskShorterThanCidr = "node-mask-shorter-than-cidr":
        "node CIDR mask shorter than the cluster CIDR prefix; no node can get a pod range",
    NodeMaskOneNode = "node-mask-one-node":
        "node CIDR mask equal to the cluster CIDR prefix; only one node can ever get a pod range",
    NodeMaskDiffTooLarge = "node-mask-diff-too-large":
        "node mask minus cluster prefix exceeds 16 bits (IPv6: K3s exits at startup)",
    NodeMaskUnsuffixed = "node-mask-unsuffixed":
        "`node-cidr-mask-size` without -ipv4/-ipv6 on a dual-stack cluster",
    NodeMaskWrongFamily = "node-mask-wrong-family":
        "a node mask for a family the cluster CIDR does not have",
    Capacity = "capacity":
        "how many nodes, pods per node and services the ranges allow",
    FewPodsPerNode = "few-pods-per-node":
        "the IPv4 node mask leaves fewer addresses than the kubelet's default 110 pods",
    ObsoleteFeatureGate = "obsolete-feature-gate":
        "the IPv6DualStack feature gate (GA in 1.23, removed in 1.25)",
    ObsoleteFlag = "obsolete-flag":
        "a removed or deprecated K3s flag such as --no-flannel",
    PerComponentFlag = "per-component-flag":
        "a dual-stack setting passed to one component where K3s has a top-level option",
    ComponentMismatch = "component-mismatch":
        "a component gets a different value than the rest of the cluster (e.g. kube-proxy cluster-cidr)",
    NodeIpSingleFamily = "node-ip-single-family":
        "a dual-stack cluster without a dual-stack node-ip",
    NodeIpInvalidKind = "node-ip-invalid-kind":
        "a link-local, loopback, multicast or unspecified node-ip",
    FlannelIpv6NoMasq = "flannel-ipv6-no-masq":
        "flannel with an IPv6 pod range that is not routed (ULA) and no flannel-ipv6-masq",
    Ipv6FirstUnsupported = "ipv6-first-unsupported":
        "IPv6-first family order on K3s releases that did not honour it",
    DualStackUnsupported = "dual-stack-unsupported":
        "dual-stack on a K3s release before dual-stack support",
    CalicoWithFlannel = "calico-with-flannel":
        "Calico configured while K3s still runs flannel",
    CalicoPoolOutsideClusterCidr = "calico-pool-outside-cluster-cidr":
        "a Calico pool that is not inside the cluster CIDR of its family",
    CalicoMissingPool = "calico-missing-pool":
        "a cluster CIDR family without a Calico pool",
    CalicoBlockSize = "calico-block-size":
        "a Calico block size outside 20-32 (IPv4) / 116-128 (IPv6) or larger than its pool",
    CalicoPoolNotMasked = "calico-pool-not-masked":
        "a Calico pool CIDR with host bits set (Calico rejects it)",
    CalicoTooManyPools = "calico-too-many-pools":
        "more than one pool per family in an operator Installation",
    CalicoIpv6Disabled = "calico-ipv6-disabled":
        "an IPv6 pool while FELIX_IPV6SUPPORT or CNI assign_ipv6 is not \"true\"",
    CalicoIpv6NoNatOutgoing = "calico-ipv6-no-nat-outgoing":
        "an IPv6 ULA pool without NAT outgoing",
    CalicoEncapsulation = "calico-encapsulation":
        "Calico encapsulation the family or version does not support (IPIP on IPv6, IPv6 VXLAN before 3.23, IPIP+VXLAN)",
    CalicoIp6Autodetect = "calico-ip6-autodetect":
        "BGP with an IPv6 pool but no IPv6 node address autodetection",
    TraefikKeyIgnored = "traefik-key-ignored":
        "a Traefik dual-stack value key the chart version ignores or duplicates",
    TraefikNoIpFamilyPolicy = "traefik-no-ip-family-policy":
        "no (or a single-stack) ipFamilyPolicy for Traefik on a dual-stack cluster",
}

/// The documented code table (Markdown), one row per code.
pub fn markdown_table() -> String {
    let mut out = String::from("| code | what it reports |\n|---|---|\n");
    for code in Code::ALL {
        out.push_str(&format!(
            "| `{}` | {} |\n",
            code.as_str(),
            code.description().replace('|', "\\|")
        ));
    }
    out
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_md_lists_every_code() {
        let doc = include_str!("../CODES.md");
        assert!(
            doc.contains(&markdown_table()),
            "CODES.md is out of date; paste in code::markdown_table()"
        );
    }

    #[test]
    fn codes_are_unique_kebab_case() {
        let mut seen = HashSet::new();
        for code in Code::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(
                s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{s} is not kebab-case"
            );
            assert!(!code.description().is_empty());
        }
    }
}
