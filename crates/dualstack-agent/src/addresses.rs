//! Which interface addresses a node reports as live in its Lease (pure).
//!
//! The agent reads every address of every interface (over rtnetlink with the `netlink`
//! feature, see `crate::netlink`) and [`live_addresses`] keeps the ones a client could reach the node on:
//!
//! * not link-local, loopback, multicast, unspecified or IPv4-mapped;
//! * not tentative (duplicate address detection still running) and not DAD-failed;
//! * not on an interface of the CNI, kube-proxy or container runtime ([`DEFAULT_EXCLUDED_INTERFACES`]:
//!   their addresses — pod gateways, ClusterIPs on `kube-ipvs0` — are not node addresses);
//! * flagged `temporary` (RFC 8981 privacy address) and `deprecated` (preferred lifetime
//!   over) as the kernel reports them, so the decision prefers stable addresses and never
//!   advertises deprecated ones.
//!
//! The result is sorted (IPv4 first, then by address) and has each address once, so the
//! Lease annotation only changes when the addresses do.

use std::collections::BTreeMap;
use std::net::IpAddr;

use dualstack_addr::Family;
use dualstack_lb::live::LiveAddress;

/// Interfaces whose addresses are never node addresses. A trailing `*` matches any suffix.
pub const DEFAULT_EXCLUDED_INTERFACES: &[&str] = &[
    "lo",
    "cni0",
    "flannel*",
    "cali*",
    "vxlan.calico",
    "tunl0",
    "kube-ipvs0",
    "kube-bridge",
    "nodelocaldns",
    "docker0",
    "veth*",
    "cilium_*",
    "lxc*",
];

/// Kernel flags of one address that matter here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressFlags {
    /// `IFA_F_TEMPORARY`: an RFC 8981 privacy address.
    pub temporary: bool,
    /// `IFA_F_DEPRECATED`, or a preferred lifetime of 0.
    pub deprecated: bool,
    /// `IFA_F_TENTATIVE`: duplicate address detection has not finished.
    pub tentative: bool,
    /// `IFA_F_DADFAILED`: duplicate address detection failed.
    pub dad_failed: bool,
}

/// Lifetimes the kernel reports for one address (`IFA_CACHEINFO`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifetimes {
    /// Remaining valid lifetime in seconds; `None`: forever.
    pub valid_seconds: Option<u32>,
    /// Remaining preferred lifetime in seconds; `None`: forever.
    pub preferred_seconds: Option<u32>,
    /// Creation time, in hundredths of a second since boot.
    pub created_centis: Option<u32>,
}

/// One address of one interface, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    /// The interface's name.
    pub interface: String,
    /// The address.
    pub addr: IpAddr,
    /// Its on-link prefix length.
    pub prefix_len: u8,
    /// The kernel flags that decide whether it is usable.
    pub flags: AddressFlags,
    /// Remaining lifetimes and creation time (for the prefixes of [`crate::prefixes`]).
    pub lifetimes: Lifetimes,
}

/// Whether `interface` matches one of `patterns` (exact, or prefix with a trailing `*`).
pub fn interface_excluded(interface: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => interface.starts_with(prefix),
        None => interface == p,
    })
}

/// Whether an address can ever be a node's reachable address (independent of interface and flags).
pub fn reachable(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => {
            !(a.is_loopback()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_unspecified()
                || a.is_broadcast())
        }
        IpAddr::V6(a) => {
            !(a.is_loopback()
                || a.is_unicast_link_local()
                || a.is_multicast()
                || a.is_unspecified()
                || a.to_ipv4_mapped().is_some())
        }
    }
}

/// The live addresses to report (see the module docs for the rules). When the same address
/// is on several interfaces, it is temporary/deprecated only if it is on all of them.
pub fn live_addresses(addresses: &[InterfaceAddress], excluded: &[String]) -> Vec<LiveAddress> {
    let mut kept: BTreeMap<(Family, IpAddr), LiveAddress> = BTreeMap::new();
    for a in addresses {
        if !reachable(a.addr)
            || a.flags.tentative
            || a.flags.dad_failed
            || interface_excluded(&a.interface, excluded)
        {
            continue;
        }
        let live = LiveAddress {
            addr: a.addr,
            temporary: a.flags.temporary,
            deprecated: a.flags.deprecated,
        };
        kept.entry((Family::of(a.addr), a.addr))
            .and_modify(|known| {
                known.temporary &= live.temporary;
                known.deprecated &= live.deprecated;
            })
            .or_insert(live);
    }
    kept.into_values().collect()
}

/// [`DEFAULT_EXCLUDED_INTERFACES`] as owned strings (the agent's default flag value).
pub fn default_excluded() -> Vec<String> {
    DEFAULT_EXCLUDED_INTERFACES
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dualstack_lb::live::format_live_addresses;

    fn addr(interface: &str, ip: &str, flags: AddressFlags) -> InterfaceAddress {
        InterfaceAddress {
            interface: interface.to_string(),
            addr: ip.parse().unwrap(),
            prefix_len: 64,
            flags,
            lifetimes: Default::default(),
        }
    }

    const NONE: AddressFlags = AddressFlags {
        temporary: false,
        deprecated: false,
        tentative: false,
        dad_failed: false,
    };

    #[test]
    fn a_home_lab_node_reports_its_lan_and_isp_addresses_only() {
        let temporary = AddressFlags {
            temporary: true,
            ..NONE
        };
        let deprecated = AddressFlags {
            deprecated: true,
            ..NONE
        };
        let tentative = AddressFlags {
            tentative: true,
            ..NONE
        };
        let dad_failed = AddressFlags {
            dad_failed: true,
            ..NONE
        };
        let input = [
            addr("lo", "127.0.0.1", NONE),
            addr("lo", "::1", NONE),
            addr("eth0", "192.168.1.20", NONE),
            addr("eth0", "2001:db8:1:0:5054:ff:fe12:3456", NONE),
            addr("eth0", "2001:db8:1:0:a1b2:c3d4:e5f6:1", temporary),
            addr("eth0", "2001:db8:0:0:5054:ff:fe12:3456", deprecated),
            addr("eth0", "fd00:1::20", NONE),
            addr("eth0", "fe80::5054:ff:fe12:3456", NONE),
            addr("eth0", "2001:db8:1::99", tentative),
            addr("eth0", "2001:db8:1::98", dad_failed),
            addr("eth0", "169.254.10.1", NONE),
            addr("cni0", "10.42.0.1", NONE),
            addr("flannel.1", "10.42.0.0", NONE),
            addr("flannel-v6.1", "2001:db8:42::", NONE),
            addr("kube-ipvs0", "10.43.0.10", NONE),
            addr("cali1234abcd", "fe80::ecee:eeff:feee:eeee", NONE),
            addr("vxlan.calico", "10.42.1.0", NONE),
            addr("wlan0", "::ffff:192.0.2.1", NONE),
        ];
        let live = live_addresses(&input, &default_excluded());
        assert_eq!(
            format_live_addresses(&live),
            "192.168.1.20,2001:db8::5054:ff:fe12:3456;deprecated,\
             2001:db8:1:0:5054:ff:fe12:3456,2001:db8:1:0:a1b2:c3d4:e5f6:1;temporary,fd00:1::20"
        );
    }

    #[test]
    fn an_address_on_two_interfaces_is_reported_once_with_the_better_flags() {
        let temporary = AddressFlags {
            temporary: true,
            ..NONE
        };
        let input = [
            addr("eth1", "2001:db8::7", temporary),
            addr("eth0", "2001:db8::7", NONE),
        ];
        let live = live_addresses(&input, &[]);
        assert_eq!(
            live,
            vec![LiveAddress::stable("2001:db8::7".parse().unwrap())]
        );
    }

    #[test]
    fn interface_patterns() {
        let patterns: Vec<String> = ["lo", "veth*"].iter().map(|s| s.to_string()).collect();
        let cases = [
            ("lo", true),
            ("lo0", false),
            ("veth", true),
            ("veth12ab", true),
            ("eth0", false),
        ];
        for (name, want) in cases {
            assert_eq!(interface_excluded(name, &patterns), want, "{name}");
        }
        assert!(!interface_excluded("lo", &[]));
    }
}
