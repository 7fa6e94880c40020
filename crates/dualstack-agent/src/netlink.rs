//! The node's addresses over rtnetlink (adapter): a dump (`ip -o addr`), and a watch that
//! re-reads them whenever the kernel announces an address or IPv6 prefix change (`ip
//! monitor address prefix`), and every [`REDUMP`] anyway, so a new global IPv6 prefix after
//! an ISP renumbering reaches the Lease within seconds. What to report is decided by the
//! pure [`crate::addresses`] (live addresses) and [`crate::prefixes`] (on-link prefixes with
//! their lifetimes).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use dualstack_lb::Timestamp;
use dualstack_lb::live::{LiveAddress, NodeReport};
use futures::StreamExt;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags as KernelFlags, AddressMessage,
};
use netlink_packet_route::link::LinkAttribute;
use rtnetlink::{Handle, MulticastGroup};
use tokio::sync::watch;

use crate::addresses::{AddressFlags, InterfaceAddress, live_addresses};
use crate::prefixes::{Lifetimes, reported_prefixes, stabilize};

/// After an announcement, wait this long for more before re-reading (a prefix change
/// announces several addresses at once).
pub const SETTLE: Duration = Duration::from_millis(200);
/// Re-read this often even without an announcement (a missed one costs at most this much).
pub const REDUMP: Duration = Duration::from_secs(30);

/// Why reading addresses failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The rtnetlink socket could not be opened (no permission, no netlink in this namespace).
    #[error("could not open a netlink socket: {0}")]
    Socket(std::io::Error),
    /// The kernel refused a dump request.
    #[error("netlink {what} dump failed: {source}")]
    Dump {
        /// What was being dumped (`link` or `address`).
        what: &'static str,
        /// The rtnetlink error.
        source: rtnetlink::Error,
    },
    /// The kernel closed the netlink connection while the watch ran.
    #[error("the netlink connection closed")]
    Closed,
}

/// Every address of every interface, with its interface name and kernel flags.
pub async fn dump(handle: &Handle) -> Result<Vec<InterfaceAddress>, NetlinkError> {
    let mut names: HashMap<u32, String> = HashMap::new();
    let mut links = handle.link().get().execute();
    while let Some(link) = links.next().await {
        let link = link.map_err(|source| NetlinkError::Dump {
            what: "link",
            source,
        })?;
        for attr in &link.attributes {
            if let LinkAttribute::IfName(name) = attr {
                names.insert(link.header.index, name.clone());
            }
        }
    }
    let mut out = Vec::new();
    let mut addresses = handle.address().get().execute();
    while let Some(msg) = addresses.next().await {
        let msg = msg.map_err(|source| NetlinkError::Dump {
            what: "address",
            source,
        })?;
        if let Some(a) = interface_address(&msg, &names) {
            out.push(a);
        }
    }
    Ok(out)
}

fn interface_address(
    msg: &AddressMessage,
    names: &HashMap<u32, String>,
) -> Option<InterfaceAddress> {
    let mut local = None;
    let mut address = None;
    let mut flags = KernelFlags::from_bits_retain(u32::from(msg.header.flags.bits()));
    let mut preferred_over = false;
    let mut lifetimes = Lifetimes::default();
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            // The 32-bit attribute supersedes the 8-bit header field when present.
            AddressAttribute::Flags(f) => flags = *f,
            AddressAttribute::CacheInfo(c) => {
                preferred_over = c.ifa_preferred == 0;
                // INFINITY_LIFE_TIME (all ones) is "forever".
                let finite = |s: u32| (s != u32::MAX).then_some(s);
                lifetimes = Lifetimes {
                    valid_seconds: finite(c.ifa_valid),
                    preferred_seconds: finite(c.ifa_preferred),
                    created_centis: Some(c.cstamp),
                };
            }
            _ => {}
        }
    }
    // IPv4: IFA_LOCAL is the address (IFA_ADDRESS is the peer on point-to-point links).
    let addr: IpAddr = local.or(address)?;
    Some(InterfaceAddress {
        interface: names
            .get(&msg.header.index)
            .cloned()
            .unwrap_or_else(|| format!("if{}", msg.header.index)),
        addr,
        prefix_len: msg.header.prefix_len,
        flags: AddressFlags {
            // IFA_F_TEMPORARY has the value of IFA_F_SECONDARY, and means it for IPv6 only.
            temporary: addr.is_ipv6() && flags.contains(KernelFlags::Secondary),
            deprecated: flags.contains(KernelFlags::Deprecated) || preferred_over,
            tentative: flags.contains(KernelFlags::Tentative),
            dad_failed: flags.contains(KernelFlags::Dadfailed),
        },
        lifetimes,
    })
}

/// When the machine booted, from `/proc/uptime` (the base of `IFA_CACHEINFO.cstamp`);
/// `None` when it cannot be read.
pub fn boot_time(now: Timestamp) -> Option<Timestamp> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    let seconds: f64 = text.split_whitespace().next()?.parse().ok()?;
    let micros = (seconds * 1e6) as i64;
    Some(Timestamp::from_unix_micros(now.unix_micros() - micros))
}

/// What to report from a dump at `now`: the live addresses and the on-link prefixes.
pub fn report_of(
    addresses: &[InterfaceAddress],
    excluded: &[String],
    now: Timestamp,
) -> NodeReport {
    NodeReport {
        addresses: live_addresses(addresses, excluded),
        prefixes: reported_prefixes(addresses, excluded, now, boot_time(now)),
    }
}

/// The live addresses now (one dump on a fresh connection).
pub async fn live_now(excluded: &[String]) -> Result<Vec<LiveAddress>, NetlinkError> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
    let task = tokio::spawn(connection);
    let result = dump(&handle).await;
    task.abort();
    Ok(live_addresses(&result?, excluded))
}

/// The live addresses and prefixes now (one dump on a fresh connection).
pub async fn report_now(excluded: &[String], now: Timestamp) -> Result<NodeReport, NetlinkError> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
    let task = tokio::spawn(connection);
    let result = dump(&handle).await;
    task.abort();
    Ok(report_of(&result?, excluded, now))
}

/// Publishes the node's report (live addresses and prefixes) into `tx` now, after every
/// address or prefix announcement and every [`REDUMP`], until the netlink socket fails (the
/// caller restarts it) or every receiver is gone. `clock` gives the time of each dump.
pub async fn watch_live(
    excluded: Vec<String>,
    clock: impl Fn() -> Timestamp,
    tx: watch::Sender<NodeReport>,
) -> Result<(), NetlinkError> {
    let (connection, handle, mut messages) = rtnetlink::new_multicast_connection(&[
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
        MulticastGroup::Ipv6Prefix,
        MulticastGroup::Link,
    ])
    .map_err(NetlinkError::Socket)?;
    let task = tokio::spawn(connection);
    let result = async {
        loop {
            let mut report = report_of(&dump(&handle).await?, &excluded, clock());
            tx.send_if_modified(|current| {
                report.prefixes =
                    stabilize(&current.prefixes, std::mem::take(&mut report.prefixes));
                if *current == report {
                    false
                } else {
                    *current = std::mem::take(&mut report);
                    true
                }
            });
            tokio::select! {
                message = messages.next() => {
                    if message.is_none() {
                        return Err(NetlinkError::Closed);
                    }
                }
                () = tokio::time::sleep(REDUMP) => {}
                () = tx.closed() => return Ok(()),
            }
            // Let a burst of announcements settle, then read everything once.
            tokio::time::sleep(SETTLE).await;
            while let Ok(Some(_)) = tokio::time::timeout(Duration::ZERO, messages.next()).await {}
        }
    }
    .await;
    task.abort();
    result
}
