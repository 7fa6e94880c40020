//! Announcement of pool addresses on the LAN (adapter): ARP for IPv4, NDP for IPv6.
//!
//! The decision ([`dualstack_lb::decide`]) picks exactly one node per pool address and puts
//! it in [`Decision::announcements`](dualstack_lb::Decision::announcements); this crate only
//! carries that out on the node it runs on:
//!
//! * [`resolve`](mod@resolve): announcements → (address, interface) targets (the pool's interfaces, else
//!   the one holding the node's address of that family);
//! * [`Announcer`]: per interface, a packet socket filtered to ARP requests and Neighbor
//!   Solicitations; answers ARP requests, and solicitations sent to the solicited-node group
//!   *and* unicast ones (neighbor unreachability probes) with a Neighbor Advertisement (hop
//!   limit 255, target link-layer option, S and O); joins each address's solicited-node
//!   group (MLD reports for snooping switches); gratuitous ARP / unsolicited NAs on takeover
//!   and periodically;
//! * [`frame`]: the frames, built and parsed with `smoltcp::wire` (checksums included).
//!
//! The address is never added to an interface: no duplicate address detection to fail, and
//! the node never uses a Service address as its own source address. Needs `CAP_NET_RAW`.

pub mod announcer;
pub mod frame;
pub mod link;
pub mod resolve;
pub mod socket;

pub use announcer::{Announcer, InterfaceStatus, Options};
pub use link::{Link, LinkError, links};
pub use resolve::{Target, resolve};
pub use socket::{Filter, PacketSocket};
