//! Encodes the full-sync batch for N Services `runs` times and prints the median
//! (pure CPU; for profiling the encoder with `perf record`).

use std::time::Instant;

use dualstack_bench::workload::Workload;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(Ok(10_000), |s| s.parse())?;
    let runs: usize = args.get(2).map_or(Ok(21), |s| s.parse())?;
    let w = Workload::sync("10.0.1.1".parse()?, "fd00:1::1".parse()?);
    let ruleset = w.ruleset("bench", n).ok_or("n")?;
    let mut v = Vec::new();
    let mut vv = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        dualstack_ruleset::validate(&ruleset)?;
        vv.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let b = dualstack_nftnl::full(&ruleset, 1, 0)?;
        v.push(t.elapsed().as_secs_f64() * 1e3);
        drop(b);
    }
    v.sort_by(f64::total_cmp);
    vv.sort_by(f64::total_cmp);
    println!(
        "n={n} encode median {:.2} ms (min {:.2}); validate alone {:.2} ms",
        v[runs / 2],
        v[0],
        vv[runs / 2]
    );
    Ok(())
}
