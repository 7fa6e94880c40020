//! The announcer runtime: one worker thread per interface that answers ARP requests and
//! Neighbor Solicitations for the addresses it is given, joins their solicited-node groups,
//! announces each new address at once (gratuitous ARP / unsolicited NA, repeated `burst`
//! times `burst_gap` apart, so a lost frame does not leave clients on the old node) and
//! every `interval` after that (switch MAC tables and client caches age out).
//!
//! It only carries out what it is told ([`Announcer::set`]); which addresses this node
//! announces is the decision's business. Addresses are never added to an interface.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::frame::{self, Request};
use crate::link::{Link, links};
use crate::resolve::Target;
use crate::socket::{Filter, Membership, PacketSocket};

/// Timing of announcements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Re-announce every address this often (0: never).
    pub interval: Duration,
    /// Announcements sent when an address is taken over.
    pub burst: u32,
    /// Gap between them.
    pub burst_gap: Duration,
    /// How long a worker waits for a frame before doing its timed work.
    pub poll: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            interval: Duration::from_secs(30),
            burst: 3,
            burst_gap: Duration::from_millis(500),
            poll: Duration::from_millis(50),
        }
    }
}

/// What one interface's worker reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceStatus {
    /// The interface the worker answers on.
    pub interface: String,
    /// The addresses it answers ARP/NDP for there.
    pub addresses: BTreeSet<IpAddr>,
    /// Solicited-node groups joined.
    pub groups: BTreeSet<std::net::Ipv6Addr>,
    /// Requests answered so far (ARP replies and solicited NAs).
    pub answered: u64,
    /// Unsolicited announcements sent so far (gratuitous ARP, unsolicited NAs).
    pub announced: u64,
    /// The last error (socket, send, membership), if any.
    pub error: Option<String>,
}

#[derive(Default)]
struct Desired {
    addresses: BTreeSet<IpAddr>,
    generation: u64,
}

struct Worker {
    desired: Arc<Mutex<Desired>>,
    status: Arc<Mutex<InterfaceStatus>>,
    handle: Option<JoinHandle<()>>,
}

/// Announces addresses on this host's interfaces until dropped.
pub struct Announcer {
    options: Options,
    stop: Arc<AtomicBool>,
    workers: BTreeMap<String, Worker>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Announcer {
    /// An announcer with nothing to announce yet.
    pub fn new(options: Options) -> Announcer {
        Announcer {
            options,
            stop: Arc::new(AtomicBool::new(false)),
            workers: BTreeMap::new(),
        }
    }

    /// Announces exactly `targets` from now on (new ones at once, removed ones no longer
    /// answered). Interfaces are looked up again on every call.
    pub fn set(&mut self, targets: &[Target]) {
        let mut by_interface: BTreeMap<&str, BTreeSet<IpAddr>> = BTreeMap::new();
        for t in targets {
            by_interface.entry(&t.interface).or_default().insert(t.ip);
        }
        for (name, worker) in &self.workers {
            if !by_interface.contains_key(name.as_str()) {
                let mut d = lock(&worker.desired);
                d.addresses.clear();
                d.generation += 1;
            }
        }
        let known = links().ok();
        for (name, addresses) in by_interface {
            if let Some(worker) = self.workers.get(name) {
                let mut d = lock(&worker.desired);
                if d.addresses != addresses {
                    d.addresses = addresses;
                    d.generation += 1;
                }
                continue;
            }
            let desired = Arc::new(Mutex::new(Desired {
                addresses: addresses.clone(),
                generation: 1,
            }));
            let status = Arc::new(Mutex::new(InterfaceStatus {
                interface: name.to_string(),
                ..InterfaceStatus::default()
            }));
            let link = known.as_ref().and_then(|l| l.get(name)).cloned();
            let handle = match link {
                Some(link) => {
                    let (d, s, stop, o) = (
                        desired.clone(),
                        status.clone(),
                        self.stop.clone(),
                        self.options,
                    );
                    std::thread::Builder::new()
                        .name(format!("announce-{name}"))
                        .spawn(move || run(link, d, s, stop, o))
                        .map_err(|e| lock(&status).error = Some(format!("cannot start: {e}")))
                        .ok()
                }
                None => {
                    lock(&status).error = Some(format!("interface {name} not found"));
                    None
                }
            };
            self.workers.insert(
                name.to_string(),
                Worker {
                    desired,
                    status,
                    handle,
                },
            );
        }
    }

    /// Per interface: what is announced, groups joined, counters, last error.
    pub fn status(&self) -> Vec<InterfaceStatus> {
        self.workers
            .values()
            .map(|w| lock(&w.status).clone())
            .collect()
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for worker in self.workers.values_mut() {
            if let Some(handle) = worker.handle.take() {
                let _ = handle.join();
            }
        }
    }
}

/// Sends one announcement of `ip` (gratuitous ARP or unsolicited NA).
fn announce(socket: &PacketSocket, link: &Link, ip: IpAddr) -> std::io::Result<()> {
    let bytes = match ip {
        IpAddr::V4(v4) => frame::gratuitous_arp(link.mac, v4),
        IpAddr::V6(v6) => frame::unsolicited_advert(link.mac, source(link, ip), v6),
    };
    socket.send(&bytes)
}

/// The source of our advertisements: the link-local address (RFC 4861 §7.2.2), else the
/// announced address itself.
fn source(link: &Link, ip: IpAddr) -> std::net::Ipv6Addr {
    match (link.link_local, ip) {
        (Some(ll), _) => ll,
        (None, IpAddr::V6(v6)) => v6,
        (None, IpAddr::V4(_)) => std::net::Ipv6Addr::UNSPECIFIED,
    }
}

fn run(
    link: Link,
    desired: Arc<Mutex<Desired>>,
    status: Arc<Mutex<InterfaceStatus>>,
    stop: Arc<AtomicBool>,
    options: Options,
) {
    let set_error = |e: String| {
        tracing::warn!(interface = %link.name, "announcer: {e}");
        lock(&status).error = Some(e);
    };
    let socket = match PacketSocket::open(&link, options.poll, Filter::Requests) {
        Ok(s) => s,
        Err(e) => return set_error(format!("cannot open a packet socket: {e}")),
    };
    let mut membership = match Membership::open(link.index) {
        Ok(m) => Some(m),
        Err(e) => {
            set_error(format!("cannot open the multicast socket: {e}"));
            None
        }
    };
    let mut generation = 0;
    let mut current: BTreeSet<IpAddr> = BTreeSet::new();
    // Per address: announcements still due and when the next one is.
    let mut due: BTreeMap<IpAddr, (u32, Instant)> = BTreeMap::new();
    let mut buf = vec![0u8; 2048];
    while !stop.load(Ordering::SeqCst) {
        {
            let d = lock(&desired);
            if d.generation != generation {
                generation = d.generation;
                let now = Instant::now();
                for ip in d.addresses.difference(&current) {
                    due.insert(*ip, (options.burst.max(1), now));
                }
                due.retain(|ip, _| d.addresses.contains(ip));
                current = d.addresses.clone();
                let groups: BTreeSet<_> = current
                    .iter()
                    .filter_map(|ip| match ip {
                        IpAddr::V6(v6) => Some(frame::solicited_node(*v6)),
                        IpAddr::V4(_) => None,
                    })
                    .collect();
                if let Some(m) = membership.as_mut() {
                    match m.set(&groups) {
                        Ok(()) => lock(&status).groups = m.joined().clone(),
                        Err(e) => set_error(format!("cannot join solicited-node groups: {e}")),
                    }
                }
                lock(&status).addresses = current.clone();
            }
        }
        let now = Instant::now();
        for (ip, (left, next)) in due.iter_mut() {
            if *left > 0 && *next <= now {
                match announce(&socket, &link, *ip) {
                    Ok(()) => lock(&status).announced += 1,
                    Err(e) => set_error(format!("cannot announce {ip}: {e}")),
                }
                *left -= 1;
                *next = now
                    + if *left > 0 {
                        options.burst_gap
                    } else {
                        options.interval
                    };
            } else if *left == 0 && !options.interval.is_zero() && *next <= now {
                *left = 1;
            }
        }
        match socket.recv(&mut buf) {
            Ok(Some(bytes)) if !bytes.is_empty() => {
                if let Some(request) = frame::parse(bytes)
                    && current.contains(&request.target())
                    && !matches!(&request, Request::Arp { sender_ip, target, .. } if sender_ip == target)
                {
                    let reply = frame::answer(&request, link.mac, source(&link, request.target()));
                    match socket.send(&reply) {
                        Ok(()) => lock(&status).answered += 1,
                        Err(e) => set_error(format!("cannot answer for {}: {e}", request.target())),
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                set_error(format!("receive failed: {e}"));
                std::thread::sleep(options.poll);
            }
        }
    }
}
