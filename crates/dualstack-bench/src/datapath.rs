//! `bench datapath`: what a client sees through the node — new-connection latency and
//! request rate for client → node → backend TCP, and bulk throughput — for our nft ruleset
//! and for a linear list of iptables DNAT rules, at each N (the other N−1 frontends present
//! but idle), against the direct routed path without NAT.
//!
//! Every scenario is its own test-bed lab (client, node, backend namespaces). Scenarios are
//! measured in interleaved rounds, so a burst of load from elsewhere on the machine spreads
//! over all of them instead of skewing one. All traffic stays between the lab's namespaces.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use dualstack_addr::Family;
use dualstack_dataplane::{Nft, Runner};
use dualstack_ruleset::{Backend, Destination, Frontend, Protocol, Ruleset, Selection};
use dualstack_testbed::{EchoServer, Lab, Netns};
use serde::Serialize;

use crate::inside::inside;
use crate::machine::Machine;
use crate::sink::Sink;
use crate::stats::{Latency, median_f64, ratio};
use crate::workload::{BACKEND_PORT, Backends, Workload, default_ranges};
use crate::{BenchError, check_services};

/// The table the bench programs in each lab's node.
const TABLE: &str = "dualstack-bench";
/// Port of the bulk-throughput sink on the backend, and of its frontend on the node.
const SINK_PORT: u16 = 9000;
/// New connections made and thrown away before each measured batch.
const WARMUP: usize = 50;
/// How long one connection attempt or read may take before the bench gives up.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Bulk transfers per path and family (after one warm-up transfer).
const BULK_ROUNDS: usize = 3;

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatapathOptions {
    /// The Ns (numbers of programmed Services) to measure at, ascending.
    pub services: Vec<usize>,
    /// Measured connections per scenario and family, spread over the rounds.
    pub connections: usize,
    /// How many rounds the connections are spread over (each starts with a warm-up).
    pub rounds: usize,
    /// Bytes per bulk transfer; 0 skips the bulk test.
    pub bulk_bytes: u64,
}

/// Which data plane a scenario's node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Plane {
    /// No rules at all: the client talks to the backend's own address, routed by the node.
    Direct,
    /// The same direct path, through a node that has our table (one frontend) loaded: the
    /// connection is tracked but not NATed. Separates the cost of conntrack from ours.
    Routed,
    /// Our nft table (verdict-map dispatch).
    Nft,
    /// One iptables DNAT rule per Service in `nat PREROUTING`, the measured one last.
    IptablesLinear,
}

/// Latency and rate for one scenario and family.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionResult {
    /// Which data plane the node ran.
    pub plane: Plane,
    /// Frontends programmed (`null` for the direct path).
    pub services: Option<usize>,
    /// Which family the connections used.
    pub family: Family,
    /// Time for `connect()` to complete: SYN out, SYN-ACK back through the node.
    pub connect: Latency,
    /// Sequential requests per second from one client thread (connect, read the reply,
    /// close), median over rounds.
    pub requests_per_sec: f64,
}

/// Bulk throughput for one path and family.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BulkResult {
    /// Which path the transfer took.
    pub plane: Plane,
    /// Frontends programmed (`null` for the direct path).
    pub services: Option<usize>,
    /// Which family the transfer used.
    pub family: Family,
    /// Bytes per transfer.
    pub bytes: u64,
    /// Median over transfers.
    pub gbit_per_sec: f64,
}

/// The ratios the targets are stated in, per family.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatapathRatios {
    /// Which family the ratios are for.
    pub family: Family,
    /// The N the ratios are for.
    pub services: usize,
    /// Median connect latency, nft at this N ÷ nft at the smallest N measured.
    pub nft_over_nft_smallest: Option<f64>,
    /// Median connect latency, nft at this N ÷ direct.
    pub nft_over_direct: Option<f64>,
    /// Median connect latency, nft at this N ÷ the routed path (conntrack on, no NAT).
    pub nft_over_routed: Option<f64>,
    /// Median connect latency, linear iptables at this N ÷ direct.
    pub iptables_linear_over_direct: Option<f64>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatapathReport {
    /// Which bench wrote the report (`datapath`).
    pub bench: &'static str,
    /// The machine it ran on.
    pub machine: Machine,
    /// Measured connections per scenario and family.
    pub connections: usize,
    /// Rounds the connections were spread over.
    pub rounds: usize,
    /// Connections thrown away before each round.
    pub warmup_per_round: usize,
    /// Latency and rate per scenario and family.
    pub results: Vec<ConnectionResult>,
    /// The ratios the targets are stated in.
    pub ratios: Vec<DatapathRatios>,
    /// Bulk throughput per path and family.
    pub bulk: Vec<BulkResult>,
    /// Bulk throughput through DNAT ÷ direct, per family.
    pub bulk_ratios: Vec<BulkRatio>,
}

/// Bulk throughput through DNAT ÷ direct for one family.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BulkRatio {
    /// Which family.
    pub family: Family,
    /// Throughput through DNAT ÷ direct; `None` when either was not measured.
    pub dnat_over_direct: Option<f64>,
}

/// One lab and what runs in it.
struct Scenario {
    plane: Plane,
    services: Option<usize>,
    lab: Lab,
    _echo: EchoServer,
    sink: Option<Sink>,
}

impl Scenario {
    fn client(&self) -> Result<&Netns, BenchError> {
        self.lab
            .hosts()
            .first()
            .map(|h| &h.ns)
            .ok_or_else(|| BenchError::internal("lab without client"))
    }

    /// Where the client connects for the request test.
    fn target(&self, family: Family) -> Result<SocketAddr, BenchError> {
        let [client, backend] = self.lab.hosts() else {
            return Err(BenchError::internal("lab without two hosts"));
        };
        Ok(match (self.plane, self.services) {
            (Plane::Direct | Plane::Routed, _) | (_, None) => backend.socket(family, BACKEND_PORT),
            (_, Some(n)) => SocketAddr::new(
                client.node_addr(family),
                Workload::port(n - 1).ok_or(BenchError::Services(n))?,
            ),
        })
    }

    /// Where the client connects for the bulk test.
    fn bulk_target(&self, family: Family) -> Result<SocketAddr, BenchError> {
        let [client, backend] = self.lab.hosts() else {
            return Err(BenchError::internal("lab without two hosts"));
        };
        Ok(match self.plane {
            Plane::Direct => backend.socket(family, SINK_PORT),
            _ => SocketAddr::new(client.node_addr(family), SINK_PORT),
        })
    }
}

/// Builds a lab: client on link 1, backend on link 2, echo server (and sink) on the backend.
fn lab(plane: Plane, services: Option<usize>, sink: bool) -> Result<Scenario, BenchError> {
    let mut lab = Lab::new()?;
    lab.add_host("client")?;
    lab.add_host("backend")?;
    let [client, backend] = lab.hosts() else {
        return Err(BenchError::internal("lab without two hosts"));
    };
    let echo = EchoServer::start(&backend.ns, "backend", BACKEND_PORT)?;
    let sink = if sink {
        Some(Sink::start(&backend.ns, SINK_PORT)?)
    } else {
        None
    };
    let workload = Workload {
        node_v4: client.node_addr(Family::V4),
        node_v6: client.node_addr(Family::V6),
        backends: Backends::Shared {
            v4: backend.addr(Family::V4),
            v6: backend.addr(Family::V6),
        },
        source_ranges: default_ranges(),
        masquerade: false,
    };
    match (plane, services) {
        (Plane::Nft, Some(n)) => {
            let mut ruleset = workload.ruleset(TABLE, n).ok_or(BenchError::Services(n))?;
            ruleset.frontends.push(bulk_frontend(&workload));
            program_nft(&lab.node, ruleset)?;
        }
        (Plane::Routed, _) => {
            program_nft(
                &lab.node,
                workload.ruleset(TABLE, 1).ok_or(BenchError::Services(1))?,
            )?;
        }
        (Plane::IptablesLinear, Some(n)) => {
            for family in Family::BOTH {
                let text = workload
                    .linear_dnat(family, n)
                    .ok_or(BenchError::Services(n))?;
                let restore = match family {
                    Family::V4 => "iptables-restore",
                    Family::V6 => "ip6tables-restore",
                };
                inside(&lab.node, move || {
                    Runner::host().run(restore, &[], &text)?;
                    Ok(())
                })?;
            }
        }
        _ => {}
    }
    Ok(Scenario {
        plane,
        services,
        lab,
        _echo: echo,
        sink,
    })
}

fn bulk_frontend(w: &Workload) -> Frontend {
    Frontend {
        name: "bench/bulk:tcp".to_string(),
        destination: Destination::Addresses(vec![w.node_v4, w.node_v6]),
        protocol: Protocol::Tcp,
        port: SINK_PORT,
        source_ranges: w.source_ranges.clone(),
        backends: Family::BOTH
            .into_iter()
            .map(|f| Backend {
                addr: w.backend(0, f),
                port: SINK_PORT,
            })
            .collect(),
        selection: Selection::Random,
        masquerade: w.masquerade,
    }
}

fn program_nft(node: &Netns, ruleset: Ruleset) -> Result<(), BenchError> {
    inside(node, move || {
        Nft::new(Runner::host(), TABLE)?.apply(&ruleset)?;
        Ok(())
    })
}

/// Runs the data-path bench.
pub fn run(options: &DatapathOptions) -> Result<DatapathReport, BenchError> {
    check_services(&options.services)?;
    let mut counts = options.services.clone();
    counts.sort_unstable();
    counts.dedup();
    let rounds = options.rounds.max(1);
    let per_round = options.connections.div_ceil(rounds).max(1);
    let machine = Machine::describe();
    let largest = counts.last().copied().ok_or(BenchError::NoServices)?;
    let bulk = options.bulk_bytes > 0;

    let mut scenarios = vec![
        lab(Plane::Direct, None, bulk)?,
        lab(Plane::Routed, None, false)?,
    ];
    for &n in &counts {
        scenarios.push(lab(Plane::Nft, Some(n), bulk && n == largest)?);
        scenarios.push(lab(Plane::IptablesLinear, Some(n), false)?);
    }

    // Connection latency and rate, interleaved by round.
    let mut samples: Vec<Vec<(Vec<Duration>, Vec<f64>)>> =
        vec![vec![(Vec::new(), Vec::new()); 2]; scenarios.len()];
    for _ in 0..rounds {
        for (s, scenario) in scenarios.iter().enumerate() {
            for (f, family) in Family::BOTH.into_iter().enumerate() {
                let batch = requests(scenario.client()?, scenario.target(family)?, per_round)?;
                samples[s][f].0.extend(batch.connect);
                samples[s][f].1.push(batch.per_sec);
            }
        }
    }
    let mut results = Vec::new();
    for (s, scenario) in scenarios.iter().enumerate() {
        for (f, family) in Family::BOTH.into_iter().enumerate() {
            let (connect, rates) = &samples[s][f];
            results.push(ConnectionResult {
                plane: scenario.plane,
                services: scenario.services,
                family,
                connect: Latency::of(connect)
                    .ok_or_else(|| BenchError::internal("no connection sample"))?,
                requests_per_sec: median_f64(rates).unwrap_or(0.0).round(),
            });
        }
    }
    let ratios = ratios(&results, &counts);

    // Bulk throughput: direct vs through DNAT at the largest N.
    let mut bulk_results = Vec::new();
    let mut bulk_ratio = Vec::new();
    if bulk {
        let paths: Vec<&Scenario> = scenarios.iter().filter(|s| s.sink.is_some()).collect();
        for family in Family::BOTH {
            let mut rates: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
            for (p, path) in paths.iter().enumerate() {
                // Warm-up: an eighth of the volume, not measured.
                bulk_send(
                    path.client()?,
                    path.bulk_target(family)?,
                    options.bulk_bytes / 8 + 1,
                )?;
                rates[p].clear();
            }
            for _ in 0..BULK_ROUNDS {
                for (p, path) in paths.iter().enumerate() {
                    let took = bulk_send(
                        path.client()?,
                        path.bulk_target(family)?,
                        options.bulk_bytes,
                    )?;
                    rates[p].push(options.bulk_bytes as f64 * 8.0 / took.as_secs_f64() / 1e9);
                }
            }
            let mut direct = None;
            let mut dnat = None;
            for (p, path) in paths.iter().enumerate() {
                let gbit = median_f64(&rates[p]).unwrap_or(0.0);
                let gbit = (gbit * 1000.0).round() / 1000.0;
                match path.plane {
                    Plane::Direct => direct = Some(gbit),
                    _ => dnat = Some(gbit),
                }
                bulk_results.push(BulkResult {
                    plane: path.plane,
                    services: path.services,
                    family,
                    bytes: options.bulk_bytes,
                    gbit_per_sec: gbit,
                });
            }
            bulk_ratio.push(BulkRatio {
                family,
                dnat_over_direct: direct.zip(dnat).and_then(|(d, n)| ratio(n, d)),
            });
        }
    }

    Ok(DatapathReport {
        bench: "datapath",
        machine,
        connections: per_round * rounds,
        rounds,
        warmup_per_round: WARMUP,
        results,
        ratios,
        bulk: bulk_results,
        bulk_ratios: bulk_ratio,
    })
}

fn ratios(results: &[ConnectionResult], counts: &[usize]) -> Vec<DatapathRatios> {
    let median = |plane: Plane, services: Option<usize>, family: Family| {
        results
            .iter()
            .find(|r| r.plane == plane && r.services == services && r.family == family)
            .map(|r| r.connect.median_us)
    };
    let smallest = counts.first().copied();
    let mut out = Vec::new();
    for family in Family::BOTH {
        let direct = median(Plane::Direct, None, family);
        let routed = median(Plane::Routed, None, family);
        let nft_smallest = median(Plane::Nft, smallest, family);
        for &n in counts {
            let nft = median(Plane::Nft, Some(n), family);
            let linear = median(Plane::IptablesLinear, Some(n), family);
            out.push(DatapathRatios {
                family,
                services: n,
                nft_over_nft_smallest: nft.zip(nft_smallest).and_then(|(a, b)| ratio(a, b)),
                nft_over_direct: nft.zip(direct).and_then(|(a, b)| ratio(a, b)),
                nft_over_routed: nft.zip(routed).and_then(|(a, b)| ratio(a, b)),
                iptables_linear_over_direct: linear.zip(direct).and_then(|(a, b)| ratio(a, b)),
            });
        }
    }
    out
}

/// One measured batch: connect latencies and the request rate.
struct Batch {
    connect: Vec<Duration>,
    per_sec: f64,
}

/// `WARMUP` + `count` sequential requests from a thread inside `client`.
fn requests(client: &Netns, to: SocketAddr, count: usize) -> Result<Batch, BenchError> {
    inside(client, move || {
        for _ in 0..WARMUP {
            request(to)?;
        }
        let mut connect = Vec::with_capacity(count);
        let started = Instant::now();
        for _ in 0..count {
            connect.push(request(to)?);
        }
        let wall = started.elapsed().as_secs_f64();
        Ok(Batch {
            connect,
            per_sec: if wall > 0.0 { count as f64 / wall } else { 0.0 },
        })
    })
}

/// One request: connect (timed), read the echo server's reply to the end, close. The reply
/// must come from the backend, so a mis-programmed node cannot produce a fast number.
fn request(to: SocketAddr) -> Result<Duration, BenchError> {
    let failed = |source| BenchError::Io {
        what: format!("tcp request to {to}"),
        source,
    };
    let t = Instant::now();
    let mut stream = TcpStream::connect_timeout(&to, TIMEOUT).map_err(failed)?;
    let took = t.elapsed();
    stream.set_read_timeout(Some(TIMEOUT)).map_err(failed)?;
    let mut reply = Vec::with_capacity(64);
    stream.read_to_end(&mut reply).map_err(failed)?;
    if !reply.starts_with(b"backend ") {
        return Err(BenchError::Measurement(format!(
            "unexpected reply from {to}: {:?}",
            String::from_utf8_lossy(&reply)
        )));
    }
    Ok(took)
}

/// Sends `bytes` to the sink at `to` from inside `client` and waits for its count; returns
/// the time from connect to the acknowledgement.
fn bulk_send(client: &Netns, to: SocketAddr, bytes: u64) -> Result<Duration, BenchError> {
    inside(client, move || {
        let failed = |source| BenchError::Io {
            what: format!("bulk transfer to {to}"),
            source,
        };
        let chunk = vec![0x5au8; 256 * 1024];
        let t = Instant::now();
        let mut stream = TcpStream::connect_timeout(&to, TIMEOUT).map_err(failed)?;
        stream
            .set_write_timeout(Some(TIMEOUT * 5))
            .map_err(failed)?;
        stream.set_read_timeout(Some(TIMEOUT * 5)).map_err(failed)?;
        let mut left = bytes;
        while left > 0 {
            let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
            stream.write_all(&chunk[..n]).map_err(failed)?;
            left -= n as u64;
        }
        stream.shutdown(Shutdown::Write).map_err(failed)?;
        let mut ack = [0u8; 8];
        stream.read_exact(&mut ack).map_err(failed)?;
        let took = t.elapsed();
        let got = u64::from_be_bytes(ack);
        if got != bytes {
            return Err(BenchError::Measurement(format!(
                "sink at {to} received {got} bytes of {bytes}"
            )));
        }
        Ok(took)
    })
}
