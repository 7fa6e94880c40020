//! Churn under load (issue #18): Services added and removed continuously on a node, by the
//! agent's own sync engine (`dualstack_agent::Syncer`) fed a changing snapshot, while held
//! TCP connections and a stream of new TCP connections and UDP requests (both families) go
//! to a Service that never changes. Not one TCP connection may fail. Root only.
//!
//! Run with every applier the agent can choose (`dualstack_dataplane::connect` probes them
//! in this order): netlink batches, `nft -f`, and the `iptables-restore` fallback; the two
//! nf_tables appliers both with incremental transactions (the agent's default) and with full
//! ones only (`with_max_incremental(0)`, what a resync or a large change does); netlink also
//! with a limit of one change (`with_max_incremental(1)`), so that every add-and-remove is
//! a "many changes" sync sent as the difference the kernel proves safe.
//! `iptables-restore` has no incremental path: every change is a full sync.
//!
//! Target rate: 20 changes per second (each change adds one Service and, once 20 churned
//! Services exist, removes the oldest). Duration: `DUALSTACK_CHURN_SECONDS`, else 60 s with
//! `DUALSTACK_RELIABILITY_LONG=1`, else 3 s (the `cargo test` version). The tests of this
//! file run one at a time (a lock), so that each measures its own applier.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reliability;

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dualstack_agent::{SyncKind, Syncer};
use dualstack_dataplane::{Dataplane, IptablesRestore, Netlink, Nft, Runner};
use dualstack_lb::{Config, Snapshot, Timestamp};
use dualstack_testbed::kernel_tests_enabled;
use reliability::{Bed, Prober, broken, connections, hold, long_run, snapshot};

const STABLE_PORT: u16 = 90;
/// Churned Services live on ports from here on, at most `LIVE` of them at a time.
const CHURN_BASE: u16 = 2000;
const LIVE: usize = 20;
const CHANGES_PER_SECOND: u64 = 20;
const NOW: &str = "2026-01-01T00:00:10Z";

/// One churn test at a time: each holds 1,000 connections and measures its own applier.
static SERIAL: Mutex<()> = Mutex::new(());

fn run_for() -> Duration {
    let seconds = std::env::var("DUALSTACK_CHURN_SECONDS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(if long_run() { 60 } else { 3 });
    Duration::from_secs(seconds)
}

#[derive(Debug, Clone, Copy)]
enum Applier {
    Netlink,
    Nft,
    IptablesRestore,
}

impl Applier {
    fn plane(self, netns: &str) -> Box<dyn Dataplane> {
        let runner = Runner::in_netns(netns);
        match self {
            Applier::Netlink => Box::new(Netlink::new(runner, "dualstack").unwrap()),
            Applier::Nft => Box::new(Nft::new(runner, "dualstack").unwrap()),
            Applier::IptablesRestore => Box::new(IptablesRestore::with_table(runner, "dualstack")),
        }
    }
}

#[derive(Debug, Default)]
struct ChurnFigures {
    /// Syncs that changed the table (one Service added, at most one removed).
    changes: usize,
    added: usize,
    removed: usize,
    full: usize,
    incremental: usize,
    /// Many-change syncs sent as the difference the kernel proved safe.
    difference: usize,
    /// Per change: `Syncer::sync` (decide, render or encode, apply, conntrack flush), ms.
    sync_ms: Vec<f64>,
    elapsed: Duration,
}

impl ChurnFigures {
    fn percentile(&self, p: f64) -> f64 {
        let mut v = self.sync_ms.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() - 1) as f64 * p).round() as usize;
        v[i]
    }

    fn mean(&self) -> f64 {
        self.sync_ms.iter().sum::<f64>() / self.sync_ms.len().max(1) as f64
    }

    fn rate(&self) -> f64 {
        self.changes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for ChurnFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} changes in {:.1} s ({:.1}/s; {} Services added, {} removed), {} full / {} incremental / {} difference; \
             sync mean {:.1} ms, p50 {:.1}, p99 {:.1}, max {:.1}",
            self.changes,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.added,
            self.removed,
            self.full,
            self.incremental,
            self.difference,
            self.mean(),
            self.percentile(0.5),
            self.percentile(0.99),
            self.percentile(1.0),
        )
    }
}

/// The objects of one Service (its Service and EndpointSlices), parsed once.
fn service_objects(name: &str, port: u16) -> Snapshot {
    let mut one = Snapshot::parse(&snapshot(&[(name.to_string(), port)])).unwrap();
    one.nodes.clear();
    one.leases.clear();
    one
}

/// Adds one Service and removes the oldest, `CHANGES_PER_SECOND` times a second, for
/// `run_for`. Each Service's objects are parsed before its step's clock starts, so the
/// step measures the sync engine, not the test's YAML.
fn churn<D: Dataplane>(syncer: &mut Syncer<D>, base: &Snapshot, run_for: Duration) -> ChurnFigures {
    let config = Config::default();
    let now: Timestamp = NOW.parse().unwrap();
    let mut live: VecDeque<Snapshot> = VecDeque::new();
    let mut figures = ChurnFigures::default();
    let period = Duration::from_millis(1000 / CHANGES_PER_SECOND);
    let started = Instant::now();
    let mut next = 0u16;
    let mut tick = Instant::now();
    while started.elapsed() < run_for {
        live.push_back(service_objects(
            &format!("churn-{next}"),
            CHURN_BASE + next % 1000,
        ));
        next = next.wrapping_add(1);
        figures.added += 1;
        if live.len() > LIVE {
            live.pop_front();
            figures.removed += 1;
        }
        let mut snap = base.clone();
        for s in &live {
            snap.services.extend(s.services.iter().cloned());
            snap.endpoint_slices
                .extend(s.endpoint_slices.iter().cloned());
        }
        let t = Instant::now();
        let report = syncer.sync(&snap, &config, now).unwrap();
        figures.sync_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        match report.kind {
            SyncKind::Full(_) => figures.full += 1,
            SyncKind::Incremental { .. } => figures.incremental += 1,
            SyncKind::Difference { .. } => figures.difference += 1,
            other => panic!("every change is applied, got {other:?}"),
        }
        figures.changes += 1;
        // A fixed schedule: a late step is followed by the next at once, not by a full period.
        tick += period;
        match tick.checked_duration_since(Instant::now()) {
            Some(rest) => std::thread::sleep(rest),
            None => tick = Instant::now(),
        }
    }
    figures.elapsed = started.elapsed();
    figures
}

fn churn_under_load(applier: Applier, max_incremental: Option<usize>) {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let label = format!(
        "{applier:?}{}",
        match max_incremental {
            Some(0) => ", full transactions only",
            Some(1) => ", many changes as the proven difference",
            _ => "",
        }
    );
    let bed = Bed::new();
    let mut syncer = Syncer::new(applier.plane(bed.lab.node.name()), "node-a");
    if let Some(max) = max_incremental {
        syncer = syncer.with_max_incremental(max);
    }
    let config = Config::default();
    let now: Timestamp = NOW.parse().unwrap();
    let base = Snapshot::parse(&snapshot(&[("stable".to_string(), STABLE_PORT)])).unwrap();
    syncer.sync(&base, &config, now).unwrap();

    let targets = bed.frontends(STABLE_PORT);
    let n = connections(1000);
    let mut held = hold(bed.client(), &targets, n);
    let run_for = run_for();
    let retransmits_before = bed.backend_retransmits();
    let (figures, stats) = std::thread::scope(|scope| {
        let prober = Prober::start(
            scope,
            bed.client(),
            &targets,
            &targets,
            Duration::from_millis(5),
        );
        let figures = churn(&mut syncer, &base, run_for);
        (figures, prober.finish())
    });
    // A churned Service really is served: the last one added answers.
    let last = syncer
        .applied()
        .unwrap()
        .iter()
        .filter_map(|f| (f.port >= CHURN_BASE).then_some(f.port))
        .max()
        .unwrap();
    let one = hold(bed.client(), &bed.frontends(last), 2);
    drop(one);
    let backend_retransmits = bed.backend_retransmits() - retransmits_before;
    let lost = broken(&mut held);
    let moves = bed.sticky_moves();
    eprintln!(
        "churn ({label}): {figures}; {n} held connections: {lost} broken; {stats}; \
         the long-lived UDP flow moved between backends {moves} times; backends retransmitted \
         {backend_retransmits}; longest outage {} ms{}",
        stats.longest_outage_ms(50),
        stats.tcp_failure_lines()
    );
    assert_eq!(
        lost, 0,
        "{label}: held connections to the unchanged Service broken"
    );
    assert_eq!(stats.tcp_failed, 0, "{label}: {stats}");
    // Every applier deletes only the UDP flows of the frontends a sync changes, and a full
    // sync replaces the table in place (no moment without a rule) with rules that serve a
    // first packet crossing the commit (RELIABILITY.md § 3): the unchanged Service's
    // long-lived flow keeps its conntrack entry, so it never moves to another backend, and
    // no UDP request is lost, whatever the kind of sync.
    assert_eq!(stats.udp_failed, 0, "{label}: {stats}; {figures}");
    assert_eq!(moves, 0, "{label}: the long-lived UDP flow moved: {stats}");
    assert_eq!(stats.sticky_lost, 0, "{label}: {stats}");
    assert!(stats.tcp_ok > 0 && stats.udp_ok > 0, "{stats}");
    assert!(figures.changes > 0, "{figures}");
    match max_incremental {
        Some(0) => assert_eq!(figures.incremental, 0, "{figures}"),
        _ if !syncer.plane().incremental() => assert_eq!(figures.incremental, 0, "{figures}"),
        // Every change once 20 Services churn is an add and a remove, over the limit of
        // one: nothing else commits in the lab, so each is sent as the proven difference.
        Some(1) => assert!(figures.full == 0 && figures.difference > 0, "{figures}"),
        _ => assert!(
            figures.incremental + figures.difference > figures.full,
            "{figures}"
        ),
    }
}

#[test]
fn churn_netlink_incremental_leaves_unchanged_services_alone() {
    if !kernel_tests_enabled("churn_netlink_incremental_leaves_unchanged_services_alone") {
        return;
    }
    churn_under_load(Applier::Netlink, None);
}

#[test]
fn churn_netlink_difference_leaves_unchanged_services_alone() {
    if !kernel_tests_enabled("churn_netlink_difference_leaves_unchanged_services_alone") {
        return;
    }
    churn_under_load(Applier::Netlink, Some(1));
}

#[test]
fn churn_netlink_full_leaves_unchanged_services_alone() {
    if !kernel_tests_enabled("churn_netlink_full_leaves_unchanged_services_alone") {
        return;
    }
    churn_under_load(Applier::Netlink, Some(0));
}

#[test]
fn churn_nft_incremental_leaves_unchanged_services_alone() {
    if !kernel_tests_enabled("churn_nft_incremental_leaves_unchanged_services_alone") {
        return;
    }
    churn_under_load(Applier::Nft, None);
}

#[test]
fn churn_nft_full_leaves_unchanged_services_alone() {
    if !kernel_tests_enabled("churn_nft_full_leaves_unchanged_services_alone") {
        return;
    }
    churn_under_load(Applier::Nft, Some(0));
}

#[test]
fn churn_iptables_restore_leaves_unchanged_services_alone() {
    if !kernel_tests_enabled("churn_iptables_restore_leaves_unchanged_services_alone") {
        return;
    }
    churn_under_load(Applier::IptablesRestore, None);
}
