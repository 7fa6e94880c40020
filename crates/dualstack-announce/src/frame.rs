//! Ethernet frames in and out: ARP requests and Neighbor Solicitations parsed, ARP replies,
//! gratuitous ARP and Neighbor Advertisements built — all through `smoltcp::wire`, which
//! also computes and verifies the ICMPv6 checksum. Pure: bytes in, bytes out.
//!
//! Validation follows RFC 4861 §7.1.1 for solicitations (hop limit 255, code 0, valid
//! checksum, target not multicast, a solicitation from `::` — duplicate address detection —
//! goes to the solicited-node group and carries no source link-layer option). Replies follow
//! §7.2.4: a solicitation from a unicast source is answered to that source (its link-layer
//! option, else the frame's source MAC) with Solicited=1, Override=1; one from `::` is
//! answered to all-nodes with Solicited=0 (we defend the address). Every advertisement has
//! hop limit 255 and the target link-layer address option.

use std::net::{Ipv4Addr, Ipv6Addr};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Packet, Ipv6Repr, NdiscNeighborFlags,
    NdiscRepr, RawHardwareAddress,
};

/// A 48-bit MAC address.
pub type Mac = [u8; 6];

/// The broadcast MAC.
pub const BROADCAST: Mac = [0xff; 6];
/// IPv6 all-nodes link-local multicast (`ff02::1`).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

const ETHERNET_HEADER: usize = 14;
const IPV6_HEADER: usize = 40;

/// A request we may have to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// ARP "who has `target`?".
    Arp {
        /// The asker's hardware address, where the reply goes.
        sender_mac: Mac,
        /// The asker's IPv4 address.
        sender_ip: Ipv4Addr,
        /// The address asked for.
        target: Ipv4Addr,
    },
    /// ICMPv6 Neighbor Solicitation for `target`.
    Solicit {
        /// The Ethernet source of the frame.
        frame_src: Mac,
        /// The IPv6 source (`::` during duplicate address detection).
        src: Ipv6Addr,
        /// The IPv6 destination (usually the solicited-node group).
        dst: Ipv6Addr,
        /// The address asked for.
        target: Ipv6Addr,
        /// The asker's source link-layer address option, if present.
        lladdr: Option<Mac>,
    },
}

impl Request {
    /// The address asked about.
    pub fn target(&self) -> std::net::IpAddr {
        match self {
            Request::Arp { target, .. } => (*target).into(),
            Request::Solicit { target, .. } => (*target).into(),
        }
    }
}

fn mac_of(raw: Option<RawHardwareAddress>) -> Option<Mac> {
    raw.and_then(|r| <[u8; 6]>::try_from(r.as_bytes()).ok())
}

/// Parses an Ethernet frame; `None` for anything that is not a valid ARP request or
/// Neighbor Solicitation.
pub fn parse(frame: &[u8]) -> Option<Request> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let eth_repr = EthernetRepr::parse(&eth).ok()?;
    match eth_repr.ethertype {
        EthernetProtocol::Arp => {
            let arp = ArpPacket::new_checked(eth.payload()).ok()?;
            match ArpRepr::parse(&arp).ok()? {
                ArpRepr::EthernetIpv4 {
                    operation: ArpOperation::Request,
                    source_hardware_addr,
                    source_protocol_addr,
                    target_protocol_addr,
                    ..
                } => Some(Request::Arp {
                    sender_mac: source_hardware_addr.0,
                    sender_ip: source_protocol_addr,
                    target: target_protocol_addr,
                }),
                _ => None,
            }
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
            let ip_repr = Ipv6Repr::parse(&ip).ok()?;
            if ip_repr.next_header != IpProtocol::Icmpv6 || ip_repr.hop_limit != 255 {
                return None;
            }
            let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
            if icmp.msg_code() != 0 {
                return None;
            }
            let repr = Icmpv6Repr::parse(
                &ip_repr.src_addr,
                &ip_repr.dst_addr,
                &icmp,
                &ChecksumCapabilities::default(),
            )
            .ok()?;
            let Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
                target_addr,
                lladdr,
            }) = repr
            else {
                return None;
            };
            if target_addr.is_multicast() {
                return None;
            }
            let lladdr = mac_of(lladdr);
            if ip_repr.src_addr.is_unspecified()
                && (lladdr.is_some() || ip_repr.dst_addr != solicited_node(target_addr))
            {
                return None;
            }
            Some(Request::Solicit {
                frame_src: eth_repr.src_addr.0,
                src: ip_repr.src_addr,
                dst: ip_repr.dst_addr,
                target: target_addr,
                lladdr,
            })
        }
        _ => None,
    }
}

/// The solicited-node multicast group of `ip` (`ff02::1:ffXX:XXXX`, RFC 4291 §2.7.1).
pub fn solicited_node(ip: Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet multicast MAC of an IPv6 multicast group (`33:33` + its last 32 bits).
pub fn multicast_mac(group: Ipv6Addr) -> Mac {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

fn arp_frame(src: Mac, dst: Mac, repr: ArpRepr) -> Vec<u8> {
    let eth = EthernetRepr {
        src_addr: EthernetAddress(src),
        dst_addr: EthernetAddress(dst),
        ethertype: EthernetProtocol::Arp,
    };
    let mut buf = vec![0u8; ETHERNET_HEADER + repr.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    repr.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
    buf
}

/// An ARP reply telling `to` that `ip` is at `our_mac`.
pub fn arp_reply(our_mac: Mac, ip: Ipv4Addr, to_mac: Mac, to_ip: Ipv4Addr) -> Vec<u8> {
    arp_frame(
        our_mac,
        to_mac,
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: EthernetAddress(our_mac),
            source_protocol_addr: ip,
            target_hardware_addr: EthernetAddress(to_mac),
            target_protocol_addr: to_ip,
        },
    )
}

/// A gratuitous ARP (a broadcast request for `ip` from `ip`, RFC 5227 §3): every host
/// with an entry for `ip` updates it to `our_mac`.
pub fn gratuitous_arp(our_mac: Mac, ip: Ipv4Addr) -> Vec<u8> {
    arp_frame(
        our_mac,
        BROADCAST,
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress(our_mac),
            source_protocol_addr: ip,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: ip,
        },
    )
}

/// A Neighbor Advertisement for `target` at `our_mac`, from `src` (our link-local address),
/// to `dst` at `dst_mac`; `solicited` sets S (O is always set: we take the address over).
pub fn neighbor_advert(
    our_mac: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    dst_mac: Mac,
    target: Ipv6Addr,
    solicited: bool,
) -> Vec<u8> {
    let flags = if solicited {
        NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE
    } else {
        NdiscNeighborFlags::OVERRIDE
    };
    let icmp = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
        flags,
        target_addr: target,
        lladdr: Some(RawHardwareAddress::from(EthernetAddress(our_mac))),
    });
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.buffer_len(),
        hop_limit: 255,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(our_mac),
        dst_addr: EthernetAddress(dst_mac),
        ethertype: EthernetProtocol::Ipv6,
    };
    let mut buf = vec![0u8; ETHERNET_HEADER + IPV6_HEADER + icmp.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    let mut packet = Ipv6Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut packet);
    icmp.emit(
        &src,
        &dst,
        &mut Icmpv6Packet::new_unchecked(packet.payload_mut()),
        &ChecksumCapabilities::default(),
    );
    buf
}

/// An unsolicited Neighbor Advertisement to all nodes (S=0, O=1), sent on takeover.
pub fn unsolicited_advert(our_mac: Mac, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    neighbor_advert(
        our_mac,
        src,
        ALL_NODES,
        multicast_mac(ALL_NODES),
        target,
        false,
    )
}

/// The answer to `request` when its target is ours: `our_mac` on this link and `link_local`
/// the interface's link-local address (the source of our advertisements).
pub fn answer(request: &Request, our_mac: Mac, link_local: Ipv6Addr) -> Vec<u8> {
    match request {
        Request::Arp {
            sender_mac,
            sender_ip,
            target,
        } => arp_reply(our_mac, *target, *sender_mac, *sender_ip),
        Request::Solicit {
            src,
            target,
            lladdr,
            frame_src,
            ..
        } if !src.is_unspecified() => neighbor_advert(
            our_mac,
            link_local,
            *src,
            lladdr.unwrap_or(*frame_src),
            *target,
            true,
        ),
        Request::Solicit { target, .. } => unsolicited_advert(our_mac, link_local, *target),
    }
}

/// A Neighbor Solicitation (for tests and probes): from `src` at `src_mac` to `dst` at
/// `dst_mac`, with the source link-layer option unless `src` is `::`.
pub fn neighbor_solicit(
    src_mac: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    dst_mac: Mac,
    target: Ipv6Addr,
) -> Vec<u8> {
    let icmp = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr: target,
        lladdr: (!src.is_unspecified()).then(|| RawHardwareAddress::from(EthernetAddress(src_mac))),
    });
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.buffer_len(),
        hop_limit: 255,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(src_mac),
        dst_addr: EthernetAddress(dst_mac),
        ethertype: EthernetProtocol::Ipv6,
    };
    let mut buf = vec![0u8; ETHERNET_HEADER + IPV6_HEADER + icmp.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    let mut packet = Ipv6Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut packet);
    icmp.emit(
        &src,
        &dst,
        &mut Icmpv6Packet::new_unchecked(packet.payload_mut()),
        &ChecksumCapabilities::default(),
    );
    buf
}

/// A Neighbor Advertisement as received (for probes and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advert {
    /// The address advertised.
    pub target: Ipv6Addr,
    /// The S flag.
    pub solicited: bool,
    /// The O flag.
    pub override_: bool,
    /// The target link-layer address option.
    pub lladdr: Option<Mac>,
    /// The IPv6 hop limit (255 for a valid NDP message).
    pub hop_limit: u8,
    /// The IPv6 destination.
    pub dst: Ipv6Addr,
}

/// Parses a Neighbor Advertisement (checksum verified).
pub fn parse_advert(frame: &[u8]) -> Option<Advert> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if EthernetRepr::parse(&eth).ok()?.ethertype != EthernetProtocol::Ipv6 {
        return None;
    }
    let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
    let ip_repr = Ipv6Repr::parse(&ip).ok()?;
    let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
    match Icmpv6Repr::parse(
        &ip_repr.src_addr,
        &ip_repr.dst_addr,
        &icmp,
        &ChecksumCapabilities::default(),
    )
    .ok()?
    {
        Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
            flags,
            target_addr,
            lladdr,
        }) => Some(Advert {
            target: target_addr,
            solicited: flags.contains(NdiscNeighborFlags::SOLICITED),
            override_: flags.contains(NdiscNeighborFlags::OVERRIDE),
            lladdr: mac_of(lladdr),
            hop_limit: ip_repr.hop_limit,
            dst: ip_repr.dst_addr,
        }),
        _ => None,
    }
}

/// A parsed ARP reply or gratuitous ARP (for tests): (operation is reply, sender MAC,
/// sender IP, target IP).
pub fn parse_arp(frame: &[u8]) -> Option<(bool, Mac, Ipv4Addr, Ipv4Addr)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let arp = ArpPacket::new_checked(eth.payload()).ok()?;
    match ArpRepr::parse(&arp).ok()? {
        ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        } => Some((
            operation == ArpOperation::Reply,
            source_hardware_addr.0,
            source_protocol_addr,
            target_protocol_addr,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const OURS: Mac = [0x02, 0, 0, 0, 0, 0x0a];
    const CLIENT: Mac = [0x02, 0, 0, 0, 0, 0x01];

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn multicast_and_unicast_solicitations_get_a_solicited_override_advert() {
        let vip = v6("2001:db8::100");
        let client = v6("2001:db8::1");
        for (dst, dst_mac) in [
            (solicited_node(vip), multicast_mac(solicited_node(vip))),
            (vip, OURS),
        ] {
            let ns = neighbor_solicit(CLIENT, client, dst, dst_mac, vip);
            let request = parse(&ns).unwrap();
            assert_eq!(request.target(), std::net::IpAddr::V6(vip));
            let na = answer(&request, OURS, v6("fe80::a"));
            let a = parse_advert(&na).unwrap();
            assert_eq!(
                a,
                Advert {
                    target: vip,
                    solicited: true,
                    override_: true,
                    lladdr: Some(OURS),
                    hop_limit: 255,
                    dst: client
                }
            );
            assert_eq!(&na[0..6], &CLIENT, "unicast to the solicitor");
        }
        assert_eq!(solicited_node(vip), v6("ff02::1:ff00:100"));
    }

    #[test]
    fn duplicate_address_detection_is_defended_to_all_nodes() {
        let vip = v6("2001:db8::100");
        let dad = neighbor_solicit(
            CLIENT,
            Ipv6Addr::UNSPECIFIED,
            solicited_node(vip),
            multicast_mac(solicited_node(vip)),
            vip,
        );
        let na = answer(&parse(&dad).unwrap(), OURS, v6("fe80::a"));
        let a = parse_advert(&na).unwrap();
        assert_eq!((a.solicited, a.override_, a.dst), (false, true, ALL_NODES));
        assert_eq!(&na[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
    }

    #[test]
    fn invalid_solicitations_are_ignored() {
        let vip = v6("2001:db8::100");
        let mut ns = neighbor_solicit(CLIENT, v6("2001:db8::1"), vip, OURS, vip);
        ns[14 + 7] = 64; // hop limit: routed from elsewhere
        assert_eq!(parse(&ns), None);
        let mut ns = neighbor_solicit(CLIENT, v6("2001:db8::1"), vip, OURS, vip);
        let last = ns.len() - 1;
        ns[last] ^= 0xff; // checksum no longer matches
        assert_eq!(parse(&ns), None);
        // DAD probe sent to the target itself instead of its solicited-node group.
        let ns = neighbor_solicit(CLIENT, Ipv6Addr::UNSPECIFIED, vip, OURS, vip);
        assert_eq!(parse(&ns), None);
        assert_eq!(parse(&[0u8; 10]), None);
    }

    #[test]
    fn arp_requests_get_replies_and_takeover_is_gratuitous() {
        let vip: Ipv4Addr = "192.0.2.100".parse().unwrap();
        let client: Ipv4Addr = "192.0.2.1".parse().unwrap();
        let request = arp_frame(
            CLIENT,
            BROADCAST,
            ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Request,
                source_hardware_addr: EthernetAddress(CLIENT),
                source_protocol_addr: client,
                target_hardware_addr: EthernetAddress([0; 6]),
                target_protocol_addr: vip,
            },
        );
        let parsed = parse(&request).unwrap();
        let reply = answer(&parsed, OURS, Ipv6Addr::UNSPECIFIED);
        assert_eq!(parse_arp(&reply), Some((true, OURS, vip, client)));
        assert_eq!(&reply[0..6], &CLIENT);
        let garp = gratuitous_arp(OURS, vip);
        assert_eq!(parse_arp(&garp), Some((false, OURS, vip, vip)));
        assert_eq!(&garp[0..6], &BROADCAST);
        // A reply is not a request: never answered (no loops between announcers).
        assert_eq!(parse(&reply), None);
    }
}
