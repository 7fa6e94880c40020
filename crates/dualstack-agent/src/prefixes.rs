//! Which on-link IPv6 prefixes the agent reports in its Lease (pure): the input of pools that
//! follow the ISP's prefix (`dualstack_lb::prefix_pool`).
//!
//! From the node's addresses ([`crate::addresses::InterfaceAddress`], read over rtnetlink),
//! [`reported_prefixes`] keeps each address that carries a prefix a router handed out:
//!
//! * global unicast only ([`dualstack_lb::prefixes::followable`]): never a ULA, link-local,
//!   site-local, loopback, multicast or IPv4-mapped address;
//! * never a temporary (RFC 8981 privacy) address, one still in duplicate address detection
//!   or one that failed it, and never on an excluded (CNI, kube-proxy, runtime) interface;
//! * a prefix length of 1 to 64 (a DHCPv6 `/128` says nothing about the on-link prefix).
//!
//! The prefix is the address's network; addresses of one prefix on one interface (SLAAC
//! EUI-64 and a static token, say) are merged: longest lifetimes, earliest creation. Times
//! are absolute: `since` is the address's creation (`IFA_CACHEINFO.cstamp`, hundredths of a
//! second since boot, plus the boot time), `preferred`/`valid` are now plus the remaining
//! lifetimes, in whole seconds. [`stabilize`] keeps the previous report's times when they
//! differ only by rounding, so the Lease does not change on every dump.

use std::collections::BTreeMap;
use std::net::IpAddr;

use dualstack_lb::Timestamp;
use dualstack_lb::prefixes::{ReportedPrefix, followable};
use ipnet::Ipv6Net;

pub use crate::addresses::Lifetimes;
use crate::addresses::{InterfaceAddress, interface_excluded};

/// Times that differ by at most this many seconds are the same (rounding of a dump).
pub const JITTER_SECONDS: i64 = 2;

fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_unix_micros(t.unix_micros() - t.unix_micros().rem_euclid(1_000_000))
}

/// The prefixes to report, sorted by prefix and interface (see the module docs).
/// `boot` is when the machine booted (for `since`); `None` leaves `since` unknown.
pub fn reported_prefixes(
    addresses: &[InterfaceAddress],
    excluded: &[String],
    now: Timestamp,
    boot: Option<Timestamp>,
) -> Vec<ReportedPrefix> {
    let now = whole_seconds(now);
    let mut merged: BTreeMap<(Ipv6Net, String), ReportedPrefix> = BTreeMap::new();
    for a in addresses {
        let IpAddr::V6(v6) = a.addr else { continue };
        if !followable(v6)
            || a.flags.temporary
            || a.flags.tentative
            || a.flags.dad_failed
            || !(1..=64).contains(&a.prefix_len)
            || interface_excluded(&a.interface, excluded)
        {
            continue;
        }
        let Ok(net) = Ipv6Net::new(v6, a.prefix_len) else {
            continue;
        };
        let prefix = net.trunc();
        let until = |s: Option<u32>| s.map(|s| now.plus_seconds(i64::from(s)));
        let fresh = ReportedPrefix {
            prefix,
            interface: a.interface.clone(),
            since: match (boot, a.lifetimes.created_centis) {
                (Some(boot), Some(c)) => Some(whole_seconds(Timestamp::from_unix_micros(
                    boot.unix_micros() + i64::from(c) * 10_000,
                ))),
                _ => None,
            },
            preferred_until: until(a.lifetimes.preferred_seconds),
            valid_until: until(a.lifetimes.valid_seconds),
        };
        merged
            .entry((prefix, a.interface.clone()))
            .and_modify(|known| {
                known.since = match (known.since, fresh.since) {
                    (Some(x), Some(y)) => Some(x.min(y)),
                    (x, y) => x.or(y),
                };
                known.preferred_until = longest(known.preferred_until, fresh.preferred_until);
                known.valid_until = longest(known.valid_until, fresh.valid_until);
            })
            .or_insert(fresh);
    }
    merged.into_values().collect()
}

/// The later of two ends, `None` meaning forever.
fn longest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    }
}

fn close(a: Option<Timestamp>, b: Option<Timestamp>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            (a.unix_micros() - b.unix_micros()).abs() <= JITTER_SECONDS * 1_000_000
        }
        _ => false,
    }
}

/// `fresh`, with each entry's times replaced by `previous`'s when they differ only by
/// rounding (at most [`JITTER_SECONDS`]), keeping the later of the two ends: the report
/// changes when a router advertisement refreshes a lifetime, not on every dump.
pub fn stabilize(previous: &[ReportedPrefix], fresh: Vec<ReportedPrefix>) -> Vec<ReportedPrefix> {
    fresh
        .into_iter()
        .map(|mut p| {
            if let Some(old) = previous
                .iter()
                .find(|o| o.prefix == p.prefix && o.interface == p.interface)
                && close(old.since, p.since)
                && close(old.preferred_until, p.preferred_until)
                && close(old.valid_until, p.valid_until)
            {
                p.since = old.since;
                p.preferred_until = longest(old.preferred_until, p.preferred_until);
                p.valid_until = longest(old.valid_until, p.valid_until);
            }
            p
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addresses::{AddressFlags, default_excluded};

    fn t(s: i64) -> Timestamp {
        Timestamp::from_unix_micros(1_800_000_000_000_000 + s * 1_000_000)
    }

    fn addr(
        interface: &str,
        ip: &str,
        len: u8,
        flags: AddressFlags,
        life: Lifetimes,
    ) -> InterfaceAddress {
        InterfaceAddress {
            interface: interface.to_string(),
            addr: ip.parse().unwrap(),
            prefix_len: len,
            flags,
            lifetimes: life,
        }
    }

    const SLAAC: Lifetimes = Lifetimes {
        valid_seconds: Some(86_400),
        preferred_seconds: Some(14_400),
        created_centis: Some(50_000),
    };

    #[test]
    fn a_home_lab_node_reports_its_isp_prefix_only() {
        let none = AddressFlags::default();
        let temporary = AddressFlags {
            temporary: true,
            ..none
        };
        let tentative = AddressFlags {
            tentative: true,
            ..none
        };
        let input = [
            addr("eth0", "192.168.1.20", 24, none, Lifetimes::default()),
            addr("eth0", "2001:db8:1:0:5054:ff:fe12:3456", 64, none, SLAAC),
            // A static token in the same prefix, created earlier, lifetimes shorter.
            addr(
                "eth0",
                "2001:db8:1::20",
                64,
                none,
                Lifetimes {
                    valid_seconds: Some(3_600),
                    preferred_seconds: Some(1_800),
                    created_centis: Some(10_000),
                },
            ),
            addr(
                "eth0",
                "2001:db8:2:0:a1b2:c3d4:e5f6:1",
                64,
                temporary,
                SLAAC,
            ),
            addr("eth0", "2001:db8:3::9", 64, tentative, SLAAC),
            addr("eth0", "fd00:1::20", 64, none, SLAAC),
            addr(
                "eth0",
                "fe80::5054:ff:fe12:3456",
                64,
                none,
                Lifetimes::default(),
            ),
            addr("eth0", "2001:db8:4::99", 128, none, SLAAC),
            addr("cni0", "2001:db8:42::1", 64, none, Lifetimes::default()),
            addr("eth1", "2001:db8:5::1", 48, none, Lifetimes::default()),
        ];
        let reported = reported_prefixes(&input, &default_excluded(), t(0), Some(t(-1000)));
        let text = dualstack_lb::prefixes::format_prefixes(&reported);
        assert_eq!(
            text,
            format!(
                "2001:db8:1::/64;dev=eth0;since={};preferred={};valid={},2001:db8:5::/48;dev=eth1;preferred=forever;valid=forever",
                t(-900),
                t(14_400),
                t(86_400)
            )
        );
    }

    #[test]
    fn rounding_does_not_change_the_report_but_a_refresh_does() {
        let first = vec![ReportedPrefix {
            prefix: "2001:db8:1::/64".parse().unwrap(),
            interface: "eth0".into(),
            since: Some(t(0)),
            preferred_until: Some(t(100)),
            valid_until: Some(t(200)),
        }];
        let mut jitter = first.clone();
        jitter[0].valid_until = Some(t(199));
        assert_eq!(stabilize(&first, jitter), first);
        let mut refreshed = first.clone();
        refreshed[0].preferred_until = Some(t(130));
        refreshed[0].valid_until = Some(t(230));
        assert_eq!(stabilize(&first, refreshed.clone()), refreshed);
    }
}
