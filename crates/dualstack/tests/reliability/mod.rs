//! Traffic for the reliability tests (issue #18): byte-echo backends, many held-open TCP
//! connections, and a prober that opens new TCP connections and sends UDP requests in a
//! steady stream, counting every failure.
//!
//! Every socket is created on a thread that entered the right namespace (`Netns::run_in`),
//! so it belongs to that namespace for its whole life.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use dualstack_addr::Family;
use dualstack_testbed::{Lab, Netns};

/// Where the backends listen (`snapshot` targets it).
pub const BACKEND_PORT: u16 = 9000;

/// How long one probe or one held-connection check may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Number of held connections: `DUALSTACK_RELIABILITY_CONNECTIONS`, else `default`, capped
/// (with a note) so that the process's open-file limit holds both ends of every connection
/// for two tests at once.
pub fn connections(default: usize) -> usize {
    let wanted = std::env::var("DUALSTACK_RELIABILITY_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let cap = open_file_limit().map_or(usize::MAX, |l| l.saturating_sub(256) / 4);
    if wanted > cap {
        eprintln!("note: holding {cap} connections, not {wanted}: the open-file limit is too low");
    }
    wanted.min(cap)
}

/// The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits`.
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// True for the long runs (`DUALSTACK_RELIABILITY_LONG=1`).
pub fn long_run() -> bool {
    std::env::var("DUALSTACK_RELIABILITY_LONG").is_ok_and(|v| v == "1")
}

/// A backend answering on one port, both families: TCP echoes every byte back for as long
/// as the connection stays open (one small thread per connection), UDP echoes datagrams.
pub struct Backend {
    stop: Arc<AtomicBool>,
    pub accepted: Arc<AtomicU64>,
    _threads: Vec<JoinHandle<()>>,
}

impl Backend {
    pub fn start(ns: &Netns, port: u16) -> Backend {
        let any = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0));
        let (tcp, udp) = ns
            .run_in(move || {
                (
                    TcpListener::bind(any).unwrap(),
                    UdpSocket::bind(any).unwrap(),
                )
            })
            .unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let (s, a) = (stop.clone(), accepted.clone());
        let tcp_thread = std::thread::spawn(move || {
            for conn in tcp.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                a.fetch_add(1, Ordering::SeqCst);
                let _ = std::thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        let mut buf = [0u8; 64];
                        while let Ok(n) = conn.read(&mut buf) {
                            if n == 0 || conn.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    });
            }
        });
        let s = stop.clone();
        let udp_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while !s.load(Ordering::SeqCst) {
                if let Ok((n, peer)) = udp.recv_from(&mut buf) {
                    let _ = udp.send_to(&buf[..n], peer);
                }
            }
        });
        Backend {
            stop,
            accepted,
            _threads: vec![tcp_thread, udp_thread],
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        // The accept thread ends with the namespace (its listener is closed then); the UDP
        // thread sees the flag within 100 ms. Threads are not joined: a test that panicked
        // must not hang here.
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One round trip on an open connection: a byte out, the same byte back.
fn ping(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    stream.write_all(b"h").is_ok() && stream.read_exact(&mut byte).is_ok() && byte == *b"h"
}

/// Opens `n` TCP connections from `ns`, spread round-robin over `targets`, each checked
/// with one round trip. Panics if one cannot be opened (the baseline must be clean).
pub fn hold(ns: &Netns, targets: &[SocketAddr], n: usize) -> Vec<TcpStream> {
    let targets = targets.to_vec();
    ns.run_in(move || {
        (0..n)
            .map(|i| {
                let to = targets[i % targets.len()];
                let mut s = TcpStream::connect_timeout(&to, PROBE_TIMEOUT)
                    .unwrap_or_else(|e| panic!("held connection {i} to {to}: {e}"));
                s.set_read_timeout(Some(PROBE_TIMEOUT)).unwrap();
                s.set_nodelay(true).unwrap();
                assert!(ping(&mut s), "held connection {i} to {to}: no echo");
                s
            })
            .collect()
    })
    .unwrap()
}

/// How many held connections no longer complete a round trip.
pub fn broken(held: &mut [TcpStream]) -> usize {
    held.iter_mut().map(ping).filter(|ok| !ok).count()
}

/// What a prober saw.
#[derive(Debug, Default, Clone)]
pub struct ProbeStats {
    pub tcp_ok: u64,
    pub tcp_failed: u64,
    pub udp_ok: u64,
    pub udp_failed: u64,
    /// Milliseconds since the prober started, of every failure.
    pub failures_at_ms: Vec<u128>,
    pub elapsed: Duration,
}

impl ProbeStats {
    pub fn failed(&self) -> u64 {
        self.tcp_failed + self.udp_failed
    }

    /// The longest run of consecutive failure timestamps less than `gap` ms apart, in ms:
    /// roughly how long new connections were refused.
    pub fn longest_outage_ms(&self, gap: u128) -> u128 {
        let mut best = 0;
        let mut start = None;
        let mut prev = 0;
        for &t in &self.failures_at_ms {
            match start {
                Some(s) if t - prev <= gap => best = best.max(t - s),
                _ => start = Some(t),
            }
            prev = t;
        }
        best.max(u128::from(!self.failures_at_ms.is_empty()))
    }
}

impl std::fmt::Display for ProbeStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "new TCP connections {} ok / {} failed, UDP requests {} ok / {} failed in {:.1} s",
            self.tcp_ok,
            self.tcp_failed,
            self.udp_ok,
            self.udp_failed,
            self.elapsed.as_secs_f64()
        )
    }
}

/// A steady stream of new TCP connections (connect, one round trip, close) and UDP
/// requests from `ns`, cycling over `targets`, one every `interval`.
/// It runs on a scoped thread (`std::thread::scope`), which borrows the namespace.
pub struct Prober<'scope> {
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<ProbeStats>>,
    thread: Option<ScopedJoinHandle<'scope, ()>>,
}

impl<'scope> Prober<'scope> {
    pub fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        ns: &'env Netns,
        tcp: &[SocketAddr],
        udp: &[SocketAddr],
        interval: Duration,
    ) -> Prober<'scope> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(ProbeStats::default()));
        let (s, st) = (stop.clone(), stats.clone());
        let (tcp, udp) = (tcp.to_vec(), udp.to_vec());
        // `run_in` runs the loop on a thread inside the namespace and joins it.
        let thread = scope.spawn(move || {
            ns.run_in(move || probe_loop(&s, &st, &tcp, &udp, interval))
                .unwrap();
        });
        Prober {
            stop,
            stats,
            thread: Some(thread),
        }
    }

    /// What was seen so far.
    pub fn snapshot(&self) -> ProbeStats {
        self.stats.lock().unwrap().clone()
    }

    /// Stops and returns what was seen.
    pub fn finish(mut self) -> ProbeStats {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.snapshot()
    }
}

fn probe_loop(
    s: &AtomicBool,
    st: &Mutex<ProbeStats>,
    tcp: &[SocketAddr],
    udp: &[SocketAddr],
    interval: Duration,
) {
    let started = Instant::now();
    let mut i = 0usize;
    while !s.load(Ordering::SeqCst) {
        let to = tcp[i % tcp.len()];
        let tcp_ok = TcpStream::connect_timeout(&to, PROBE_TIMEOUT)
            .is_ok_and(|mut c| c.set_read_timeout(Some(PROBE_TIMEOUT)).is_ok() && ping(&mut c));
        let to = udp[i % udp.len()];
        let udp_ok = udp_once(to);
        let mut st = st.lock().unwrap();
        let at = started.elapsed().as_millis();
        if tcp_ok {
            st.tcp_ok += 1;
        } else {
            st.tcp_failed += 1;
            st.failures_at_ms.push(at);
        }
        if udp_ok {
            st.udp_ok += 1;
        } else {
            st.udp_failed += 1;
            st.failures_at_ms.push(at);
        }
        st.elapsed = started.elapsed();
        drop(st);
        i += 1;
        std::thread::sleep(interval);
    }
}

fn udp_once(to: SocketAddr) -> bool {
    let bind: SocketAddr = if to.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let Ok(sock) = UdpSocket::bind(bind) else {
        return false;
    };
    let mut buf = [0u8; 8];
    sock.set_read_timeout(Some(PROBE_TIMEOUT)).is_ok()
        && sock.send_to(b"u", to).is_ok()
        && sock
            .recv_from(&mut buf)
            .is_ok_and(|(n, _)| &buf[..n] == b"u")
}

/// A cluster dump for node `node-a` (10.0.1.1, fd00:1::1, live agent Lease) with one
/// dual-stack ETP Cluster Service per `(name, port)`, TCP and UDP on that port, whose
/// endpoints are the backends 10.0.2.2/fd00:2::2 and 10.0.3.2/fd00:3::2 on port 9000.
pub fn snapshot(services: &[(String, u16)]) -> String {
    let mut out = String::from(
        r#"apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata: {name: node-a}
  status:
    addresses:
    - {type: InternalIP, address: 10.0.1.1}
    - {type: InternalIP, address: "fd00:1::1"}
    conditions:
    - {type: Ready, status: "True"}
- apiVersion: coordination.k8s.io/v1
  kind: Lease
  metadata: {name: dualstack-agent-node-a, namespace: dualstack-system}
  spec: {holderIdentity: node-a, leaseDurationSeconds: 40, renewTime: "2026-01-01T00:00:00.000000Z"}
"#,
    );
    for (name, port) in services {
        out += &format!(
            r#"- apiVersion: v1
  kind: Service
  metadata: {{name: {name}, namespace: default, creationTimestamp: "2025-12-01T00:00:00Z"}}
  spec:
    type: LoadBalancer
    loadBalancerClass: dualstack.io/lb
    ipFamilies: [IPv4, IPv6]
    ipFamilyPolicy: RequireDualStack
    externalTrafficPolicy: Cluster
    ports:
    - {{name: tcp, port: {port}, protocol: TCP, targetPort: 9000}}
    - {{name: udp, port: {port}, protocol: UDP, targetPort: 9000}}
"#
        );
        for (family, a, b) in [
            ("IPv4", "10.0.2.2", "10.0.3.2"),
            ("IPv6", "fd00:2::2", "fd00:3::2"),
        ] {
            out += &format!(
                "- apiVersion: discovery.k8s.io/v1\n  kind: EndpointSlice\n  metadata:\n    name: {name}-{family}\n    namespace: default\n    labels: {{kubernetes.io/service-name: {name}}}\n  addressType: {family}\n  endpoints:\n  - addresses: [\"{a}\"]\n    conditions: {{ready: true}}\n    nodeName: node-a\n  - addresses: [\"{b}\"]\n    conditions: {{ready: true}}\n    nodeName: node-a\n  ports:\n  - {{name: tcp, port: 9000, protocol: TCP}}\n  - {{name: udp, port: 9000, protocol: UDP}}\n"
            );
        }
    }
    out
}

/// Client, two backends with byte-echo servers on 9000.
pub struct Bed {
    pub lab: Lab,
    _backends: Vec<Backend>,
}

impl Bed {
    pub fn new() -> Bed {
        let mut lab = Lab::new().unwrap();
        lab.add_host("client").unwrap();
        lab.add_hosts("backend", 2).unwrap();
        let backends = lab.hosts()[1..]
            .iter()
            .map(|h| Backend::start(&h.ns, BACKEND_PORT))
            .collect();
        Bed {
            lab,
            _backends: backends,
        }
    }

    pub fn client(&self) -> &Netns {
        &self.lab.hosts()[0].ns
    }

    /// The node's address on the client's link, both families, at `port`.
    pub fn frontends(&self, port: u16) -> Vec<SocketAddr> {
        Family::BOTH
            .iter()
            .map(|f| SocketAddr::new(self.lab.hosts()[0].node_addr(*f), port))
            .collect()
    }
}
