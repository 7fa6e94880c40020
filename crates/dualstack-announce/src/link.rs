//! What the announcer needs to know about this host's interfaces (index, MAC, link-local
//! IPv6 address, assigned addresses), read with `getifaddrs(3)`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

use nix::ifaddrs::getifaddrs;
use nix::sys::socket::{LinkAddr, SockaddrLike};

use crate::frame::Mac;

/// One interface.
#[derive(Debug, Clone)]
pub struct Link {
    /// The interface name.
    pub name: String,
    /// The kernel's interface index.
    pub index: u32,
    /// Its hardware address, which our replies carry.
    pub mac: Mac,
    /// The first link-local IPv6 address (source of our advertisements), if any.
    pub link_local: Option<Ipv6Addr>,
    /// Every address assigned to it.
    pub addresses: Vec<IpAddr>,
    /// The `sockaddr_ll` of the interface, to bind a packet socket to it.
    pub(crate) link_addr: LinkAddr,
}

/// Reading the interfaces failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot list interfaces: {0}")]
pub struct LinkError(#[from] nix::Error);

/// Every Ethernet-like interface with a MAC address, by name.
pub fn links() -> Result<BTreeMap<String, Link>, LinkError> {
    let mut out: BTreeMap<String, Link> = BTreeMap::new();
    let entries: Vec<_> = getifaddrs()?.collect();
    for entry in &entries {
        let Some(link) = entry.address.as_ref().and_then(|a| a.as_link_addr()) else {
            continue;
        };
        let Some(mac) = link.addr().filter(|m| *m != [0; 6]) else {
            continue;
        };
        out.insert(
            entry.interface_name.clone(),
            Link {
                name: entry.interface_name.clone(),
                index: u32::try_from(link.ifindex()).unwrap_or(0),
                mac,
                link_local: None,
                addresses: Vec::new(),
                link_addr: *link,
            },
        );
    }
    for entry in &entries {
        let Some(link) = out.get_mut(&entry.interface_name) else {
            continue;
        };
        let Some(address) = entry.address.as_ref() else {
            continue;
        };
        if let Some(v4) = address.as_sockaddr_in() {
            link.addresses.push(IpAddr::V4(v4.ip()));
        } else if let Some(v6) = address.as_sockaddr_in6() {
            let ip = v6.ip();
            if ip.is_unicast_link_local() && link.link_local.is_none() {
                link.link_local = Some(ip);
            }
            link.addresses.push(IpAddr::V6(ip));
        }
    }
    // Keep the family check honest: a LinkAddr is AF_PACKET.
    out.retain(|_, l| l.link_addr.family() == Some(nix::sys::socket::AddressFamily::Packet));
    Ok(out)
}
