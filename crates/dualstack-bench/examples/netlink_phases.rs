//! Phase timings of a netlink full sync and one change at N Services (release build, as
//! root, in a throwaway namespace): the encoding alone; `Netlink::apply` (generation +
//! encode + send + every ack); the kernel's part alone (a batch sent on a socket of its
//! own, timed from the end of its encoding: into an empty namespace, and over the table in
//! use — the in-place replace, after reading what the table has); then one frontend added
//! and removed, `ADDS` times (default: `runs`); then a sync in which `CHANGED` frontends
//! (default: a tenth) move to another backend, back and forth, both as a full sync in place
//! and as the difference sent while the kernel is provably untouched
//! (`Netlink::apply_changes_if_untouched`). Every figure is a median, as wall time and as the calling
//! thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`: the kernel processes a batch inside the
//! `sendmsg` of the sending thread, so this counts our code and the kernel's work for us,
//! but not the time other processes hold the CPU — the figure to compare on a loaded
//! machine).
//!
//! `cargo run --release -p dualstack-bench --example netlink_phases -- 10000 7`; with
//! `PAUSE_MS=500` every timed batch waits that long first, so that the kernel's deferred
//! release of what the previous batch replaced (run on another CPU after the commit) does
//! not overlap the next one.

use std::time::Instant;

use dualstack_bench::workload::Workload;
use dualstack_dataplane::{Netlink, NftSocket, Runner};
use dualstack_testbed::Netns;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn cpu_ms() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map_or(0.0, |t| t.tv_sec() as f64 * 1e3 + t.tv_nsec() as f64 / 1e6)
}

/// Wall and thread-CPU samples of one measurement.
struct Samples {
    wall: Vec<f64>,
    cpu: Vec<f64>,
    pause: std::time::Duration,
}

impl Samples {
    fn new(pause: std::time::Duration) -> Samples {
        Samples {
            wall: Vec::new(),
            cpu: Vec::new(),
            pause,
        }
    }

    fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        std::thread::sleep(self.pause);
        let (t, c) = (Instant::now(), cpu_ms());
        let out = f();
        self.cpu.push(cpu_ms() - c);
        self.wall.push(t.elapsed().as_secs_f64() * 1e3);
        out
    }

    fn show(&self, what: &str) -> String {
        format!(
            "{what}={:.3}ms (cpu {:.3})",
            median(self.wall.clone()),
            median(self.cpu.clone())
        )
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(Ok(10_000), |s| s.parse())?;
    let runs: usize = args.get(2).map_or(Ok(7), |s| s.parse())?;
    let adds: usize = std::env::var("ADDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(runs);
    // A pause before every timed batch (`PAUSE_MS`, default 0: back to back), so that the
    // kernel's deferred release of what the previous batch replaced is not in the timing.
    let pause = std::time::Duration::from_millis(
        std::env::var("PAUSE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    );
    let w = Workload::sync("10.0.1.1".parse()?, "fd00:1::1".parse()?);
    let ruleset = w.ruleset("bench", n).ok_or("n")?;
    let extra = w.frontend(n).ok_or("n")?;
    let changed: usize = std::env::var("CHANGED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n / 10);
    let moved = Workload::with_moved_backends(&ruleset, changed);
    let there = Workload::difference(&ruleset.frontends, &moved.frontends);
    let back = Workload::difference(&moved.frontends, &ruleset.frontends);
    let ns = Netns::new("phases")?;
    ns.run_in(move || -> Result<(), String> {
        let e = |x: &dyn std::fmt::Display| x.to_string();
        let nl = Netlink::new(Runner::host(), "bench").map_err(|x| e(&x))?;
        let mut enc = Samples::new(pause);
        let mut full = Samples::new(pause);
        let mut add = Samples::new(pause);
        let mut rem = Samples::new(pause);
        let mut kern = Samples::new(pause);
        let mut bytes = 0;
        for _ in 0..runs {
            let b = enc
                .time(|| dualstack_nftnl::full(&ruleset, 1, 0))
                .map_err(|x| e(&x))?;
            bytes = b.bytes.len();
            drop(b);
            full.time(|| nl.apply(&ruleset)).map_err(|x| e(&x))?;
        }
        for _ in 0..adds {
            add.time(|| nl.apply_changes(&[], std::slice::from_ref(&extra)))
                .map_err(|x| e(&x))?;
            rem.time(|| nl.apply_changes(std::slice::from_ref(&extra), &[]))
                .map_err(|x| e(&x))?;
        }
        // Many changes: the full sync in place, then the proven difference.
        let mut many_full = Samples::new(pause);
        let mut many_diff = Samples::new(pause);
        for _ in 0..runs {
            many_full.time(|| nl.apply(&moved)).map_err(|x| e(&x))?;
            many_full.time(|| nl.apply(&ruleset)).map_err(|x| e(&x))?;
        }
        for _ in 0..runs {
            let sent = many_diff
                .time(|| nl.apply_changes_if_untouched(&ruleset.frontends, &there.0, &there.1))
                .map_err(|x| e(&x))?;
            let sent_back = many_diff
                .time(|| nl.apply_changes_if_untouched(&moved.frontends, &back.0, &back.1))
                .map_err(|x| e(&x))?;
            if !(sent && sent_back) {
                return Err("the difference was not sent: something else committed".into());
            }
        }
        nl.cleanup().map_err(|x| e(&x))?;
        // The kernel's part alone: timed from the end of the encoding to the last ack. Into
        // an empty namespace (the table deleted before each run: a first sync), and over the
        // table in use (what `apply` sends after the first sync: the in-place replace).
        let mut sock = NftSocket::open().map_err(|x| e(&x))?;
        let mut dump = Samples::new(pause);
        let mut kern_in_place = Samples::new(pause);
        for _ in 0..runs {
            sock.transact(|seq, genid| dualstack_nftnl::delete("bench", seq, genid))
                .map_err(|x| e(&x))?;
            let mut pre = None;
            std::thread::sleep(pause);
            sock.transact(|seq, genid| {
                let b = dualstack_nftnl::full(&ruleset, seq, genid);
                pre = Some((Instant::now(), cpu_ms()));
                b
            })
            .map_err(|x| e(&x))?;
            if let Some((wall, c)) = pre {
                kern.cpu.push(cpu_ms() - c);
                kern.wall.push(wall.elapsed().as_secs_f64() * 1e3);
            }
        }
        for _ in 0..runs {
            dump.time(|| sock.present("bench")).map_err(|x| e(&x))?;
            let mut pre = None;
            std::thread::sleep(pause);
            sock.transact_over("bench", |seq, genid, present| {
                let b = match present {
                    Some(p) => dualstack_nftnl::full_in_place(&ruleset, p, seq, genid),
                    None => dualstack_nftnl::full(&ruleset, seq, genid),
                };
                pre = Some((Instant::now(), cpu_ms()));
                b
            })
            .map_err(|x| e(&x))?;
            if let Some((wall, c)) = pre {
                kern_in_place.cpu.push(cpu_ms() - c);
                kern_in_place.wall.push(wall.elapsed().as_secs_f64() * 1e3);
            }
        }
        sock.transact(|seq, genid| dualstack_nftnl::delete("bench", seq, genid))
            .map_err(|x| e(&x))?;
        println!(
            "n={n} runs={runs} adds={adds} changed={} {} {} {} {} {} {} {} {} {} batch={bytes}B",
            there.1.len(),
            enc.show("encode"),
            full.show("full"),
            kern.show("kernel-fresh"),
            dump.show("read-present"),
            kern_in_place.show("kernel-in-place"),
            add.show("add"),
            rem.show("remove"),
            many_full.show("many-full-in-place"),
            many_diff.show("many-difference"),
        );
        Ok(())
    })??;
    Ok(())
}
