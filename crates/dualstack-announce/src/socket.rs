//! The raw sockets: one `AF_PACKET` socket per interface, bound to it, with a classic BPF
//! filter so the kernel hands us only ARP requests and ICMPv6 Neighbor Solicitations (not
//! every frame of a busy link); and one IPv6 UDP socket per interface whose only job is to
//! join the solicited-node groups of our addresses (the kernel then accepts those multicast
//! frames and sends the MLD reports that snooping switches need).

use std::collections::BTreeSet;
use std::io;
use std::net::Ipv6Addr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sys::socket::{LinkAddr, MsgFlags, bind, recvfrom, send};
use socket2::{Domain, Protocol, SockFilter, Socket, Type};

use crate::link::Link;

/// `ETH_P_ALL`: every protocol (the BPF filter narrows it).
const ETH_P_ALL: u16 = 0x0003;
/// `PACKET_OUTGOING`: a frame this host sent (ours, or the kernel's).
const PACKET_OUTGOING: u8 = 4;

// Classic BPF opcodes (linux/filter.h).
const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const JEQ_K: u16 = 0x15;
const RET_K: u16 = 0x06;

/// Which frames a packet socket receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// ARP requests and Neighbor Solicitations: what an announcer answers.
    Requests,
    /// ARP replies and Neighbor Advertisements: what a prober (doctor, tests) listens for.
    Answers,
}

impl Filter {
    /// (ARP opcode, ICMPv6 type) accepted.
    fn codes(self) -> (u32, u32) {
        match self {
            Filter::Requests => (1, 135),
            Filter::Answers => (2, 136),
        }
    }
}

/// ARP requests and ICMPv6 Neighbor Solicitations (no extension header), or the matching
/// answers; all else dropped.
fn program(filter: Filter) -> Vec<SockFilter> {
    let (arp_op, icmp_type) = filter.codes();
    // Jumps are relative to the next instruction. Indices:
    // 0 ld ethertype; 1 jeq ARP ? 2 : 4; 2 ld opcode; 3 jeq 1 ? 9 : 10;
    // 4 jeq IPv6 ? 5 : 10; 5 ld nexthdr; 6 jeq 58 ? 7 : 10; 7 ld icmp type;
    // 8 jeq 135 ? 9 : 10; 9 accept; 10 drop. (2 and 136 for answers.)
    vec![
        SockFilter::new(LD_H_ABS, 0, 0, 12),
        SockFilter::new(JEQ_K, 0, 2, 0x0806),
        SockFilter::new(LD_H_ABS, 0, 0, 20),
        SockFilter::new(JEQ_K, 5, 6, arp_op),
        SockFilter::new(JEQ_K, 0, 5, 0x86dd),
        SockFilter::new(LD_B_ABS, 0, 0, 14 + 6),
        SockFilter::new(JEQ_K, 0, 3, 58),
        SockFilter::new(LD_B_ABS, 0, 0, 14 + 40),
        SockFilter::new(JEQ_K, 0, 1, icmp_type),
        SockFilter::new(RET_K, 0, 0, 0x0004_0000),
        SockFilter::new(RET_K, 0, 0, 0),
    ]
}

/// A packet socket bound to one interface.
pub struct PacketSocket {
    socket: Socket,
}

impl PacketSocket {
    /// Opens, filters and binds a packet socket on `link`.
    pub fn open(link: &Link, read_timeout: Duration, filter: Filter) -> io::Result<PacketSocket> {
        let protocol = Protocol::from(i32::from(ETH_P_ALL.to_be()));
        let socket = Socket::new(Domain::PACKET, Type::RAW, Some(protocol))?;
        socket.attach_filter(&program(filter))?;
        socket.set_read_timeout(Some(read_timeout))?;
        bind(socket.as_raw_fd(), &link.link_addr).map_err(io::Error::from)?;
        Ok(PacketSocket { socket })
    }

    /// Receives one frame that this host did not send; `Ok(None)` on timeout.
    pub fn recv<'b>(&self, buf: &'b mut [u8]) -> io::Result<Option<&'b [u8]>> {
        match recvfrom::<LinkAddr>(self.socket.as_raw_fd(), buf) {
            Ok((n, from)) => {
                if from.is_some_and(|f| f.pkttype() == PACKET_OUTGOING) {
                    return Ok(Some(&buf[..0]));
                }
                Ok(Some(&buf[..n]))
            }
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends one complete Ethernet frame.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        send(self.socket.as_raw_fd(), frame, MsgFlags::empty())
            .map(drop)
            .map_err(io::Error::from)
    }
}

/// Solicited-node group memberships on one interface.
pub struct Membership {
    socket: Socket,
    index: u32,
    joined: BTreeSet<Ipv6Addr>,
}

impl Membership {
    /// A membership socket for interface `index`.
    pub fn open(index: u32) -> io::Result<Membership> {
        let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
        Ok(Membership {
            socket,
            index,
            joined: BTreeSet::new(),
        })
    }

    /// Makes the joined groups exactly `groups`.
    pub fn set(&mut self, groups: &BTreeSet<Ipv6Addr>) -> io::Result<()> {
        for gone in self.joined.difference(groups).copied().collect::<Vec<_>>() {
            self.socket.leave_multicast_v6(&gone, self.index)?;
            self.joined.remove(&gone);
        }
        for new in groups.difference(&self.joined).copied().collect::<Vec<_>>() {
            self.socket.join_multicast_v6(&new, self.index)?;
            self.joined.insert(new);
        }
        Ok(())
    }

    /// The groups joined.
    pub fn joined(&self) -> &BTreeSet<Ipv6Addr> {
        &self.joined
    }
}
