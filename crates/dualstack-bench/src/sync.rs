//! `bench sync`: how long programming N dual-stack Services takes — our netlink applier
//! (full sync and incremental change on one long-lived socket), the same table through
//! `nft -f`, klipper-lb's one-process-per-rule `iptables`, and our `iptables-restore`
//! fallback — each inside its own throwaway namespace, in one run.

use std::time::{Duration, Instant};

use dualstack_dataplane::{IptablesRestore, Netlink, Nft, Runner};
use dualstack_ruleset::nft as render;
use dualstack_testbed::Netns;
use serde::Serialize;

use crate::inside::inside;
use crate::machine::Machine;
use crate::stats::{Runs, ms, ratio};
use crate::workload::Workload;
use crate::{BenchError, check_services};

/// The table the bench programs (inside its namespace).
const TABLE: &str = "dualstack-bench";

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOptions {
    /// The Ns (numbers of Services) to measure at.
    pub services: Vec<usize>,
    /// Repetitions of each measurement (medians are reported).
    pub runs: usize,
    /// Time allowed per N for each of the process-heavy baselines (klipper-style, and the
    /// runs of `iptables-restore` after the first), all runs together.
    pub budget: Duration,
}

/// Everything measured for one N.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncResult {
    /// The N measured.
    pub services: usize,
    /// Median full sync (render + `nft -f -`, replacing the table).
    pub full_sync_ms: f64,
    /// Every full-sync run.
    pub full_sync: Runs,
    /// Median render time alone (pure, no process), included in `full_sync_ms`.
    pub render_ms: f64,
    /// The slower of the add and remove medians.
    pub incremental_ms: f64,
    /// Adding one Service to N, every run.
    pub incremental_add: Runs,
    /// Removing one Service from N + 1, every run.
    pub incremental_remove: Runs,
    /// Median klipper-style time; `null` when over budget (see `klipper_style`).
    pub klipper_style_ms: Option<f64>,
    /// The klipper-lb baseline: one `iptables` process per rule.
    pub klipper_style: KlipperStyle,
    /// Median `iptables-restore` fallback sync (save + restore, both families); fewer runs
    /// than asked when they exceed the budget (see `restore.runs`).
    pub restore_ms: f64,
    /// Every `iptables-restore` run.
    pub restore: Runs,
    /// The same table and changes over netlink.
    pub netlink: NetlinkSync,
    /// The ratios the targets are stated in.
    pub ratios: SyncRatios,
}

/// The netlink applier for one N: one socket kept open, one batch per sync.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetlinkSync {
    /// Median full sync (encode + send + every ack) over the table in use: replaced in
    /// place (every chain and map flushed and refilled, hooks kept).
    pub full_sync_ms: f64,
    /// Every full-sync run.
    pub full_sync: Runs,
    /// The first sync: the same ruleset into a namespace without our table (deleted before
    /// each run), as at an agent's start on a fresh node.
    pub first_sync: Runs,
    /// How many frontends [`NetlinkSync::many_changes`] changes (a tenth of N, at least 1).
    pub changed: usize,
    /// A sync in which `changed` frontends move to other backends, sent as the difference
    /// while the kernel proves nothing else committed
    /// (`Netlink::apply_changes_if_untouched`), there and back in turns.
    pub many_changes: Runs,
    /// Median encoding time alone (pure, bytes out), included in `full_sync_ms`.
    pub encode_ms: f64,
    /// Size of the full-sync batch.
    pub batch_bytes: usize,
    /// The slower of the add and remove medians.
    pub incremental_ms: f64,
    /// Adding one Service, every run.
    pub incremental_add: Runs,
    /// Removing one Service, every run.
    pub incremental_remove: Runs,
}

/// The klipper-style baseline for one N.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KlipperStyle {
    /// `iptables` processes klipper-lb runs per Service.
    pub commands_per_service: usize,
    /// Completed runs (absent when the first run went over budget).
    pub runs: Option<Runs>,
    /// Whether the first run went over the budget (then `runs` is absent).
    pub over_budget: bool,
    /// Services programmed in the run that hit the budget (or N when none did).
    pub services_done: usize,
    /// Linear extrapolation to N from the services done: a lower bound, since each
    /// `iptables` process reads the whole ruleset and so gets slower as it grows.
    /// `null` only when not a single Service fit in the budget.
    pub extrapolated_ms: Option<f64>,
}

/// Ratios a reader wants first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncRatios {
    /// klipper-style (or its extrapolation) ÷ our full sync.
    pub klipper_style_over_full_sync: Option<f64>,
    /// iptables-restore fallback ÷ our full sync.
    pub restore_over_full_sync: Option<f64>,
    /// `nft -f` full sync ÷ netlink full sync.
    pub nft_over_netlink_full_sync: Option<f64>,
    /// klipper-style (or its extrapolation) ÷ netlink full sync.
    pub klipper_style_over_netlink_full_sync: Option<f64>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncReport {
    /// Which bench wrote the report (`sync`).
    pub bench: &'static str,
    /// The machine it ran on.
    pub machine: Machine,
    /// Repetitions asked for per measurement.
    pub runs: usize,
    /// The time allowed per N for each process-heavy baseline, in seconds.
    pub budget_secs: f64,
    /// Everything measured, per N.
    pub results: Vec<SyncResult>,
}

/// Runs the sync bench for every N, in order.
pub fn run(options: &SyncOptions) -> Result<SyncReport, BenchError> {
    check_services(&options.services)?;
    let runs = options.runs.max(1);
    let machine = Machine::describe();
    let mut results = Vec::new();
    for &n in &options.services {
        results.push(one(n, runs, options.budget)?);
    }
    Ok(SyncReport {
        bench: "sync",
        machine,
        runs,
        budget_secs: options.budget.as_secs_f64(),
        results,
    })
}

fn workload() -> Result<Workload, BenchError> {
    let v4 = "10.0.1.1"
        .parse()
        .map_err(|_| BenchError::internal("address"))?;
    let v6 = "fd00:1::1"
        .parse()
        .map_err(|_| BenchError::internal("address"))?;
    Ok(Workload::sync(v4, v6))
}

fn one(n: usize, runs: usize, budget: Duration) -> Result<SyncResult, BenchError> {
    let w = workload()?;
    let netlink = netlink_runs(&w, n, runs)?;
    let (full, render_times, add, remove) = nft_runs(&w, n, runs)?;
    let restore = restore_runs(&w, n, runs, budget)?;
    let klipper = klipper_runs(&w, n, runs, budget)?;

    let full = Runs::of(&full).ok_or_else(|| BenchError::internal("no full-sync sample"))?;
    let render_ms = Runs::of(&render_times).map_or(0.0, |r| r.median_ms);
    let add = Runs::of(&add).ok_or_else(|| BenchError::internal("no add sample"))?;
    let remove = Runs::of(&remove).ok_or_else(|| BenchError::internal("no remove sample"))?;
    let restore = Runs::of(&restore).ok_or_else(|| BenchError::internal("no restore sample"))?;
    let klipper_ms = klipper
        .runs
        .filter(|_| !klipper.over_budget)
        .map(|r| r.median_ms);
    let klipper_for_ratio = klipper_ms.or(klipper.extrapolated_ms);
    Ok(SyncResult {
        services: n,
        full_sync_ms: full.median_ms,
        full_sync: full,
        render_ms,
        incremental_ms: add.median_ms.max(remove.median_ms),
        incremental_add: add,
        incremental_remove: remove,
        klipper_style_ms: klipper_ms,
        ratios: SyncRatios {
            klipper_style_over_full_sync: klipper_for_ratio.and_then(|k| ratio(k, full.median_ms)),
            restore_over_full_sync: ratio(restore.median_ms, full.median_ms),
            nft_over_netlink_full_sync: ratio(full.median_ms, netlink.full_sync_ms),
            klipper_style_over_netlink_full_sync: klipper_for_ratio
                .and_then(|k| ratio(k, netlink.full_sync_ms)),
        },
        netlink,
        klipper_style: klipper,
        restore_ms: restore.median_ms,
        restore,
    })
}

type NftSamples = (Vec<Duration>, Vec<Duration>, Vec<Duration>, Vec<Duration>);

/// Full syncs (the first creates the table, the rest replace it), then add/remove of one
/// extra frontend at N.
fn nft_runs(w: &Workload, n: usize, runs: usize) -> Result<NftSamples, BenchError> {
    let ruleset = w.ruleset(TABLE, n).ok_or(BenchError::Services(n))?;
    let extra = w.frontend(n).ok_or(BenchError::Services(n + 1))?;
    let ns = Netns::new("bench-nft")?;
    inside(&ns, move || {
        let nft = Nft::new(Runner::host(), TABLE)?;
        let (mut full, mut renders, mut add, mut remove) = (vec![], vec![], vec![], vec![]);
        for _ in 0..runs {
            let t = Instant::now();
            let text = render::render_full(&ruleset)?;
            renders.push(t.elapsed());
            drop(text);
            let t = Instant::now();
            nft.apply(&ruleset)?;
            full.push(t.elapsed());
        }
        for _ in 0..runs {
            let t = Instant::now();
            nft.apply_changes(&[], std::slice::from_ref(&extra))?;
            add.push(t.elapsed());
            let t = Instant::now();
            nft.apply_changes(std::slice::from_ref(&extra), &[])?;
            remove.push(t.elapsed());
        }
        nft.cleanup()?;
        Ok((full, renders, add, remove))
    })
}

/// The same as [`nft_runs`] over netlink: one socket for all runs.
fn netlink_runs(w: &Workload, n: usize, runs: usize) -> Result<NetlinkSync, BenchError> {
    let ruleset = w.ruleset(TABLE, n).ok_or(BenchError::Services(n))?;
    let extra = w.frontend(n).ok_or(BenchError::Services(n + 1))?;
    let ns = Netns::new("bench-netlink")?;
    let changed = (n / 10).max(1);
    let moved = Workload::with_moved_backends(&ruleset, changed);
    let there = Workload::difference(&ruleset.frontends, &moved.frontends);
    let back = Workload::difference(&moved.frontends, &ruleset.frontends);
    let timed = inside(&ns, move || {
        let nl = Netlink::new(Runner::host(), TABLE)?;
        let mut t = NetlinkTimes::default();
        for _ in 0..runs {
            let start = Instant::now();
            let batch = dualstack_nftnl::full(&ruleset, 1, 0).map_err(|e| {
                BenchError::Dataplane(dualstack_dataplane::DataplaneError::Netlink(
                    dualstack_dataplane::NetlinkError::Encode(e),
                ))
            })?;
            t.encodes.push(start.elapsed());
            t.bytes = batch.bytes.len();
            drop(batch);
            nl.cleanup()?;
            let start = Instant::now();
            nl.apply(&ruleset)?;
            t.first.push(start.elapsed());
            let start = Instant::now();
            nl.apply(&ruleset)?;
            t.full.push(start.elapsed());
        }
        for _ in 0..runs {
            for (previous, (remove, add)) in [(&ruleset, &there), (&moved, &back)] {
                let start = Instant::now();
                if !nl.apply_changes_if_untouched(&previous.frontends, remove, add)? {
                    return Err(BenchError::Measurement(
                        "the netlink difference was refused: something else committed \
                         nf_tables changes in the bench namespace"
                            .into(),
                    ));
                }
                t.many.push(start.elapsed());
            }
        }
        for _ in 0..runs {
            let start = Instant::now();
            nl.apply_changes(&[], std::slice::from_ref(&extra))?;
            t.add.push(start.elapsed());
            let start = Instant::now();
            nl.apply_changes(std::slice::from_ref(&extra), &[])?;
            t.remove.push(start.elapsed());
        }
        nl.cleanup()?;
        Ok(t)
    })?;
    let runs_of = |samples: &[Duration], what: &str| {
        Runs::of(samples).ok_or_else(|| BenchError::internal(&format!("no netlink {what} sample")))
    };
    let full = runs_of(&timed.full, "full-sync")?;
    let add = runs_of(&timed.add, "add")?;
    let remove = runs_of(&timed.remove, "remove")?;
    Ok(NetlinkSync {
        full_sync_ms: full.median_ms,
        full_sync: full,
        first_sync: runs_of(&timed.first, "first-sync")?,
        changed,
        many_changes: runs_of(&timed.many, "many-changes")?,
        encode_ms: Runs::of(&timed.encodes).map_or(0.0, |r| r.median_ms),
        batch_bytes: timed.bytes,
        incremental_ms: add.median_ms.max(remove.median_ms),
        incremental_add: add,
        incremental_remove: remove,
    })
}

/// The samples [`netlink_runs`] takes.
#[derive(Default)]
struct NetlinkTimes {
    encodes: Vec<Duration>,
    first: Vec<Duration>,
    full: Vec<Duration>,
    many: Vec<Duration>,
    add: Vec<Duration>,
    remove: Vec<Duration>,
    bytes: usize,
}

/// Fallback syncs (the first creates our chains, the rest resync them); at least one run,
/// further ones only while the budget lasts.
fn restore_runs(
    w: &Workload,
    n: usize,
    runs: usize,
    budget: Duration,
) -> Result<Vec<Duration>, BenchError> {
    let ruleset = w.ruleset(TABLE, n).ok_or(BenchError::Services(n))?;
    let ns = Netns::new("bench-restore")?;
    inside(&ns, move || {
        let restore = IptablesRestore::new(Runner::host());
        let mut samples = Vec::new();
        let started = Instant::now();
        for _ in 0..runs {
            let t = Instant::now();
            restore.apply(&ruleset)?;
            samples.push(t.elapsed());
            if started.elapsed() >= budget {
                break;
            }
        }
        Ok(samples)
    })
}

fn klipper_runs(
    w: &Workload,
    n: usize,
    runs: usize,
    budget: Duration,
) -> Result<KlipperStyle, BenchError> {
    let commands: Vec<Vec<(&'static str, Vec<String>)>> = (0..n)
        .map(|i| w.klipper_commands(i))
        .collect::<Option<_>>()
        .ok_or(BenchError::Services(n))?;
    let per_service = commands.first().map_or(0, Vec::len);
    let started = Instant::now();
    let mut samples = Vec::new();
    for _ in 0..runs {
        // A fresh namespace per run: klipper-lb only ever adds rules.
        let ns = Netns::new("bench-klipper")?;
        let remaining = budget.saturating_sub(started.elapsed());
        let cmds = commands.clone();
        let (elapsed, done) = inside(&ns, move || klipper_once(&cmds, remaining))?;
        if done < n && !samples.is_empty() {
            // A later run ran out of the budget: keep the complete runs.
            break;
        }
        if done < n {
            return Ok(KlipperStyle {
                commands_per_service: per_service,
                runs: Runs::of(&samples),
                over_budget: true,
                services_done: done,
                extrapolated_ms: extrapolate(elapsed, done, n),
            });
        }
        samples.push(elapsed);
        if started.elapsed() >= budget {
            break;
        }
    }
    let runs = Runs::of(&samples);
    Ok(KlipperStyle {
        commands_per_service: per_service,
        extrapolated_ms: runs.map(|r| r.median_ms),
        runs,
        over_budget: false,
        services_done: n,
    })
}

/// Runs every Service's commands, one process per rule, until done or out of time; returns
/// the time taken and the number of Services fully programmed.
fn klipper_once(
    commands: &[Vec<(&'static str, Vec<String>)>],
    budget: Duration,
) -> Result<(Duration, usize), BenchError> {
    let runner = Runner::host();
    let t = Instant::now();
    for (done, service) in commands.iter().enumerate() {
        if t.elapsed() >= budget {
            return Ok((t.elapsed(), done));
        }
        for (program, args) in service {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            runner.run(program, &args, "")?;
        }
    }
    Ok((t.elapsed(), commands.len()))
}

/// `elapsed` scaled linearly from `done` Services to `n` (ms).
pub fn extrapolate(elapsed: Duration, done: usize, n: usize) -> Option<f64> {
    (done > 0).then(|| (ms(elapsed) * n as f64 / done as f64).round())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extrapolation_is_linear() {
        assert_eq!(
            extrapolate(Duration::from_secs(2), 100, 1000),
            Some(20_000.0)
        );
        assert_eq!(extrapolate(Duration::from_millis(5), 10, 10), Some(5.0));
        assert_eq!(extrapolate(Duration::from_millis(5), 0, 10), None);
    }
}
