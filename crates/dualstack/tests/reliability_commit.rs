//! Packets that cross a commit: full syncs of an unchanged table, back to back, while a
//! client opens new TCP connections as fast as it can (RELIABILITY.md § 3, "A first packet
//! crossing a commit"). Root only.
//!
//! A full sync replaces every chain's rules in place. The kernel runs a packet through the
//! rules of the generation in force when it entered the base chain, but looks sets up in
//! the generation in force at the lookup; a connection's first packet that enters just
//! before the flip and looks up just after it therefore runs the old rules against the new
//! generation. Anonymous sets of replaced rules are empty there, so before the rules were
//! written for it a frontend chain's `numgen … map { … }` found no backend (the node
//! answered with a reset: a refused connection) and an allow chain's `saddr != { … } drop`
//! dropped an allowed client (a SYN sent again a second later). Every connection here is a
//! first packet and the syncs commit as fast as they can, so such a hole shows within
//! seconds. Checked by breaking it: without the fallback rule netlink's 4 s refused 39
//! connections and `nft`'s 3; with the allow chain's set back, 4 SYNs were dropped.
//!
//! The frontends: one with random selection and one with hashed selection, both with two
//! backends per family and two allowed source ranges per family (the client's and another),
//! dual-stack, masquerade on. Duration: `DUALSTACK_CROSSING_SECONDS`, else 4 s for
//! netlink and 10 s for `nft`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reliability;

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dualstack_addr::Family;
use dualstack_dataplane::{Dataplane, Netlink, Nft, Runner};
use dualstack_ruleset::{Backend, Destination, Frontend, Protocol, Ruleset, Selection};
use dualstack_testbed::{Lab, Netns, kernel_tests_enabled};
use reliability::{netns_counter, syn_retransmitted};

const RANDOM_PORT: u16 = 90;
const HASH_PORT: u16 = 91;
const BACKEND_PORT: u16 = 9100;

/// One test at a time: each measures its own applier's commits.
static SERIAL: Mutex<()> = Mutex::new(());

/// `DUALSTACK_CROSSING_SECONDS`, else `default`.
fn run_for(default: u64) -> Duration {
    let seconds = std::env::var("DUALSTACK_CROSSING_SECONDS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(default);
    Duration::from_secs(seconds)
}

/// `[::]:BACKEND_PORT` with a deep accept queue: the client completes handshakes faster
/// than a busy machine may schedule the accept thread, and a full queue drops SYNs.
fn listen() -> std::io::Result<TcpListener> {
    let any = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, BACKEND_PORT, 0, 0));
    let socket = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None)?;
    socket.set_only_v6(false)?;
    socket.set_reuse_address(true)?;
    socket.bind(&any.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// A client and two backends that accept connections and close them at once.
struct Bed {
    lab: Lab,
}

impl Bed {
    fn new() -> Bed {
        let mut lab = Lab::new().unwrap();
        lab.add_host("client").unwrap();
        lab.add_hosts("backend", 2).unwrap();
        for host in &lab.hosts()[1..] {
            let listener = host.ns.run_in(listen).unwrap().unwrap();
            // Blocks in `accept` until the test process exits (the listener keeps its
            // namespace alive until then; nothing else runs in it).
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    drop(conn);
                }
            });
        }
        Bed { lab }
    }

    /// SYNs the backends dropped because their accept queue was full.
    fn listen_drops(&self) -> u64 {
        self.lab.hosts()[1..]
            .iter()
            .map(|h| {
                h.ns.run_in(|| netns_counter("netstat", "TcpExt", "ListenDrops").unwrap_or(0))
                    .unwrap()
            })
            .sum()
    }

    fn client(&self) -> &Netns {
        &self.lab.hosts()[0].ns
    }

    fn targets(&self) -> Vec<SocketAddr> {
        let client = &self.lab.hosts()[0];
        [RANDOM_PORT, HASH_PORT]
            .into_iter()
            .flat_map(|port| Family::BOTH.map(|f| SocketAddr::new(client.node_addr(f), port)))
            .collect()
    }

    fn ruleset(&self) -> Ruleset {
        let client = &self.lab.hosts()[0];
        let backends: Vec<Backend> = self.lab.hosts()[1..]
            .iter()
            .flat_map(|h| {
                Family::BOTH.map(|f| Backend {
                    addr: h.addr(f),
                    port: BACKEND_PORT,
                })
            })
            .collect();
        let frontend = |name: &str, port, selection| Frontend {
            name: name.to_string(),
            destination: Destination::Addresses(Family::BOTH.map(|f| client.node_addr(f)).to_vec()),
            protocol: Protocol::Tcp,
            port,
            source_ranges: [
                "10.0.1.0/24",
                "192.0.2.0/24",
                "fd00:1::/64",
                "2001:db8:9::/48",
            ]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect(),
            backends: backends.clone(),
            selection,
            masquerade: true,
        };
        Ruleset {
            table: "dualstack".into(),
            guard: Vec::new(),
            frontends: vec![
                frontend("default/random:tcp", RANDOM_PORT, Selection::Random),
                frontend("default/hash:tcp", HASH_PORT, Selection::Hash),
            ],
        }
    }
}

#[derive(Debug, Default)]
struct Connects {
    ok: u64,
    refused: u64,
    other: Vec<String>,
    /// Connections that took [`LATE`] or longer: their first SYN was lost.
    late: Vec<String>,
    slowest: Duration,
    /// SYNs the client sent again (`TcpExt: TCPSynRetrans` of its namespace).
    syn_retransmits: u64,
}

/// Just under the initial SYN retransmission timeout (1 s): a connection this late had its
/// first SYN dropped. (A stall of the client this long is not: even on a loaded 2-core
/// machine the slowest connection of a run is tens of milliseconds. The namespace's
/// `TCPSynRetrans` is reported but not asserted: it also moved, once, in a run where no
/// connection took more than 10 ms.)
const LATE: Duration = Duration::from_millis(900);

/// New TCP connections to `targets` in turn until `stop`: connect, close.
fn connect_loop(targets: &[SocketAddr], stop: &AtomicBool) -> Connects {
    let mut out = Connects::default();
    let before = syn_retransmitted();
    let mut i = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let to = targets[i % targets.len()];
        i += 1;
        let t = Instant::now();
        match TcpStream::connect_timeout(&to, Duration::from_secs(3)) {
            Ok(stream) => match close_with_reset(stream) {
                Ok(()) => {
                    out.ok += 1;
                    let took = t.elapsed();
                    out.slowest = out.slowest.max(took);
                    if took >= LATE {
                        out.late.push(format!("{to}: {} ms", took.as_millis()));
                    }
                }
                Err(e) => out.other.push(format!("{to}: after connecting: {e}")),
            },
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => out.refused += 1,
            Err(e) => out.other.push(format!("{to}: {e}")),
        }
    }
    out.syn_retransmits = syn_retransmitted() - before;
    out
}

/// Closes with a reset: no side keeps a TIME_WAIT, so the client's ports and the
/// backends' sockets last for any number of connections, and a port used again meets no
/// remnant of its last connection (when the backend closed first, about one connection in
/// 65,000 met its TIME_WAIT there and waited a second, syncs or not).
fn close_with_reset(stream: TcpStream) -> std::io::Result<()> {
    socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO))
}

fn full_syncs_back_to_back(label: &str, plane: &dyn Dataplane, bed: &Bed, run_for: Duration) {
    let ruleset = bed.ruleset();
    plane.apply(&ruleset).unwrap();
    let targets = bed.targets();
    // Served before the syncs start.
    for to in &targets {
        bed.client()
            .run_in({
                let to = *to;
                move || TcpStream::connect_timeout(&to, Duration::from_secs(3))
            })
            .unwrap()
            .unwrap_or_else(|e| panic!("{label}: {to} not served before the syncs: {e}"));
    }
    let drops_before = bed.listen_drops();
    let stop = Arc::new(AtomicBool::new(false));
    let (syncs, connects) = std::thread::scope(|scope| {
        let client = scope.spawn(|| {
            let (targets, stop) = (targets.clone(), stop.clone());
            bed.client()
                .run_in(move || connect_loop(&targets, &stop))
                .unwrap()
        });
        let started = Instant::now();
        let mut syncs = 0u64;
        while started.elapsed() < run_for {
            plane.apply(&ruleset).unwrap();
            syncs += 1;
        }
        stop.store(true, Ordering::SeqCst);
        (syncs, client.join().unwrap())
    });
    let listen_drops = bed.listen_drops() - drops_before;
    eprintln!(
        "{label}: {syncs} full syncs in {:.1} s; {} connections, {} refused, {} other errors, \
         {} late, {} SYNs sent again, slowest {:.1} ms; backends' accept queues dropped \
         {listen_drops}{}",
        run_for.as_secs_f64(),
        connects.ok,
        connects.refused,
        connects.other.len(),
        connects.late.len(),
        connects.syn_retransmits,
        connects.slowest.as_secs_f64() * 1000.0,
        connects
            .other
            .iter()
            .chain(&connects.late)
            .take(5)
            .map(|e| format!("\n  {e}"))
            .collect::<String>()
    );
    assert!(
        syncs >= 20 && connects.ok >= 1000,
        "{label}: too little happened to tell: {syncs} syncs, {} connections",
        connects.ok
    );
    // A full accept queue drops SYNs too; that would be the bed's fault, not the commit's.
    assert_eq!(listen_drops, 0, "{label}: the backends could not keep up");
    assert_eq!(
        (connects.refused, connects.other.len(), connects.late.len()),
        (0, 0, 0),
        "{label}: connections refused, failed, or late (a SYN dropped) while {syncs} full \
         syncs committed"
    );
}

#[test]
fn netlink_full_syncs_serve_every_first_packet_that_crosses_a_commit() {
    if !kernel_tests_enabled("netlink_full_syncs_serve_every_first_packet_that_crosses_a_commit") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bed = Bed::new();
    let plane = Netlink::new(Runner::in_netns(bed.lab.node.name()), "dualstack").unwrap();
    full_syncs_back_to_back("netlink", &plane, &bed, run_for(4));
}

#[test]
fn nft_full_syncs_serve_every_first_packet_that_crosses_a_commit() {
    if !kernel_tests_enabled("nft_full_syncs_serve_every_first_packet_that_crosses_a_commit") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bed = Bed::new();
    let plane = Nft::new(Runner::in_netns(bed.lab.node.name()), "dualstack").unwrap();
    // `nft` commits about 30 times a second, netlink hundreds: a longer run for as many
    // chances (without the fix, 4 s refused 3 connections here and netlink's 39).
    full_syncs_back_to_back("nft", &plane, &bed, run_for(10));
}
