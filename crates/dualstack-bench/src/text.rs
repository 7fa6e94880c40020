//! Plain-text rendering of the reports (pure): one table per bench, then the ratios.

use std::fmt::Write as _;

use crate::datapath::{DatapathReport, Plane};
use crate::machine::Machine;
use crate::memory::MemoryReport;
use crate::sync::SyncReport;

fn header(out: &mut String, title: &str, m: &Machine) {
    let _ = writeln!(out, "{title}");
    let _ = writeln!(
        out,
        "machine: {} CPUs, kernel {}, {}, {}, load {}",
        m.nproc, m.kernel, m.nft, m.iptables, m.loadavg
    );
}

fn opt(v: Option<f64>, suffix: &str) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x}{suffix}"))
}

/// The sync report as text.
pub fn sync(r: &SyncReport) -> String {
    let mut out = String::new();
    header(
        &mut out,
        &format!(
            "bench sync: {} run(s) per measurement, klipper-style budget {} s per N",
            r.runs, r.budget_secs
        ),
        &r.machine,
    );
    let _ = writeln!(
        out,
        "{:>8}  {:>22}  {:>9}  {:>16}  {:>22}  {:>26}  {:>8}",
        "services",
        "full sync ms (min-max)",
        "render ms",
        "incr add/rm ms",
        "restore ms (min-max)",
        "klipper-style ms",
        "klip/ours"
    );
    for x in &r.results {
        let klipper = match (x.klipper_style_ms, x.klipper_style.extrapolated_ms) {
            (Some(ms), _) => format!("{ms}"),
            (None, Some(e)) => format!(
                "over budget ({}/{}), ~{e}",
                x.klipper_style.services_done, x.services
            ),
            (None, None) => "over budget".to_string(),
        };
        let _ = writeln!(
            out,
            "{:>8}  {:>22}  {:>9}  {:>16}  {:>22}  {:>26}  {:>8}",
            x.services,
            format!(
                "{} ({}-{})",
                x.full_sync_ms, x.full_sync.min_ms, x.full_sync.max_ms
            ),
            x.render_ms,
            format!(
                "{}/{}",
                x.incremental_add.median_ms, x.incremental_remove.median_ms
            ),
            format!(
                "{} ({}-{})",
                x.restore_ms, x.restore.min_ms, x.restore.max_ms
            ),
            klipper,
            opt(x.ratios.klipper_style_over_full_sync, "x"),
        );
    }
    let _ = writeln!(out, "netlink (one socket, one batch per sync):");
    let _ = writeln!(
        out,
        "{:>8}  {:>22}  {:>14}  {:>9}  {:>10}  {:>22}  {:>16}  {:>9}  {:>10}",
        "services",
        "full sync ms (min-max)",
        "first sync ms",
        "encode ms",
        "batch KiB",
        "many changes ms (n)",
        "incr add/rm ms",
        "nft/netl",
        "klip/netl"
    );
    for x in &r.results {
        let n = &x.netlink;
        let _ = writeln!(
            out,
            "{:>8}  {:>22}  {:>14}  {:>9}  {:>10}  {:>22}  {:>16}  {:>9}  {:>10}",
            x.services,
            format!(
                "{} ({}-{})",
                n.full_sync_ms, n.full_sync.min_ms, n.full_sync.max_ms
            ),
            n.first_sync.median_ms,
            n.encode_ms,
            n.batch_bytes / 1024,
            format!("{} ({})", n.many_changes.median_ms, n.changed),
            format!(
                "{}/{}",
                n.incremental_add.median_ms, n.incremental_remove.median_ms
            ),
            opt(x.ratios.nft_over_netlink_full_sync, "x"),
            opt(x.ratios.klipper_style_over_netlink_full_sync, "x"),
        );
    }
    let _ = writeln!(
        out,
        "  full sync: over the table in use, replaced in place; first sync: into a namespace \
         without it; many changes: a tenth of the Services on new backends, sent as the \
         difference while the kernel proves nothing else committed"
    );
    out
}

fn plane(p: Plane) -> &'static str {
    match p {
        Plane::Direct => "direct (no NAT)",
        Plane::Routed => "routed+conntrack",
        Plane::Nft => "nft (ours)",
        Plane::IptablesLinear => "iptables linear",
    }
}

/// The data-path report as text.
pub fn datapath(r: &DatapathReport) -> String {
    let mut out = String::new();
    header(
        &mut out,
        &format!(
            "bench datapath: {} connections per scenario and family in {} rounds (+{} warm-up each)",
            r.connections, r.rounds, r.warmup_per_round
        ),
        &r.machine,
    );
    let _ = writeln!(
        out,
        "{:<16}  {:>8}  {:>6}  {:>14}  {:>11}  {:>10}",
        "plane", "services", "family", "connect p50 us", "p99 us", "req/s"
    );
    for x in &r.results {
        let _ = writeln!(
            out,
            "{:<16}  {:>8}  {:>6}  {:>14}  {:>11}  {:>10}",
            plane(x.plane),
            x.services
                .map_or_else(|| "-".to_string(), |n| n.to_string()),
            x.family.as_str(),
            x.connect.median_us,
            x.connect.p99_us,
            x.requests_per_sec
        );
    }
    let _ = writeln!(out, "ratios of median connect latency:");
    for x in &r.ratios {
        let _ = writeln!(
            out,
            "  {} N={}: nft/nft(smallest N) {}, nft/direct {}, nft/routed {}, iptables-linear/direct {}",
            x.family.as_str(),
            x.services,
            opt(x.nft_over_nft_smallest, ""),
            opt(x.nft_over_direct, ""),
            opt(x.nft_over_routed, ""),
            opt(x.iptables_linear_over_direct, "")
        );
    }
    if !r.bulk.is_empty() {
        let _ = writeln!(out, "bulk throughput (median of transfers):");
        for b in &r.bulk {
            let _ = writeln!(
                out,
                "  {:<16} {:>6} services {:>6}: {} Gbit/s ({} MiB each)",
                plane(b.plane),
                b.family.as_str(),
                b.services
                    .map_or_else(|| "-".to_string(), |n| n.to_string()),
                b.gbit_per_sec,
                b.bytes >> 20
            );
        }
        for b in &r.bulk_ratios {
            let _ = writeln!(
                out,
                "  {} DNAT/direct: {}",
                b.family.as_str(),
                opt(b.dnat_over_direct, "")
            );
        }
    }
    out
}

/// The memory report as text.
pub fn memory(r: &MemoryReport) -> String {
    let mut out = String::new();
    header(
        &mut out,
        "bench memory: peak RSS of the offline agent",
        &r.machine,
    );
    for x in &r.results {
        let _ = writeln!(
            out,
            "{:>8} services: agent {} MiB max RSS ({} KiB; its nft child {} KiB), dump {} bytes, {} ms\n          {}",
            x.services,
            x.max_rss_mib,
            x.max_rss_kib,
            x.nft_child_max_rss_kib,
            x.snapshot_bytes,
            x.wall_ms,
            x.command
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Runs;
    use crate::sync::{KlipperStyle, NetlinkSync, SyncRatios, SyncResult};

    fn machine() -> Machine {
        Machine {
            nproc: 2,
            kernel: "6.1.0".into(),
            nft: "nftables v1.0.6".into(),
            iptables: "iptables v1.8.9 (nf_tables)".into(),
            loadavg: "0.10 0.20 0.30 1/100 42".into(),
        }
    }

    fn runs(median_ms: f64) -> Runs {
        Runs {
            median_ms,
            min_ms: median_ms - 1.0,
            max_ms: median_ms + 1.0,
            runs: 3,
        }
    }

    #[test]
    fn sync_table_shows_budget_and_ratios() {
        let within = SyncResult {
            services: 100,
            full_sync_ms: 30.0,
            full_sync: runs(30.0),
            render_ms: 0.5,
            incremental_ms: 15.0,
            incremental_add: runs(4.0),
            incremental_remove: runs(15.0),
            klipper_style_ms: Some(900.0),
            klipper_style: KlipperStyle {
                commands_per_service: 8,
                runs: Some(runs(900.0)),
                over_budget: false,
                services_done: 100,
                extrapolated_ms: Some(900.0),
            },
            restore_ms: 100.0,
            restore: runs(100.0),
            netlink: NetlinkSync {
                full_sync_ms: 3.0,
                full_sync: runs(3.0),
                first_sync: runs(2.5),
                changed: 10,
                many_changes: runs(0.9),
                encode_ms: 0.2,
                batch_bytes: 40_960,
                incremental_ms: 0.2,
                incremental_add: runs(0.1),
                incremental_remove: runs(0.2),
            },
            ratios: SyncRatios {
                klipper_style_over_full_sync: Some(30.0),
                restore_over_full_sync: Some(3.333),
                nft_over_netlink_full_sync: Some(10.0),
                klipper_style_over_netlink_full_sync: Some(300.0),
            },
        };
        let over = SyncResult {
            services: 10_000,
            klipper_style_ms: None,
            klipper_style: KlipperStyle {
                commands_per_service: 8,
                runs: None,
                over_budget: true,
                services_done: 1200,
                extrapolated_ms: Some(125_000.0),
            },
            ..within.clone()
        };
        let report = SyncReport {
            bench: "sync",
            machine: machine(),
            runs: 3,
            budget_secs: 15.0,
            results: vec![within, over],
        };
        insta::assert_snapshot!(sync(&report));
    }
}
