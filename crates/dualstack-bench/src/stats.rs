//! Summaries of measured durations: median, min/max, 99th percentile (pure).

use std::time::Duration;

use serde::Serialize;

/// Median, minimum and maximum of a few runs, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Runs {
    /// The median run.
    pub median_ms: f64,
    /// The fastest run.
    pub min_ms: f64,
    /// The slowest run.
    pub max_ms: f64,
    /// How many runs there were.
    pub runs: usize,
}

impl Runs {
    /// Summarises `samples`; `None` when there are none.
    pub fn of(samples: &[Duration]) -> Option<Runs> {
        let sorted = sorted(samples);
        Some(Runs {
            median_ms: ms(median(&sorted)?),
            min_ms: ms(*sorted.first()?),
            max_ms: ms(*sorted.last()?),
            runs: sorted.len(),
        })
    }
}

/// Median and 99th percentile of many samples, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// The median sample.
    pub median_us: f64,
    /// The 99th percentile.
    pub p99_us: f64,
    /// How many samples there were.
    pub samples: usize,
}

impl Latency {
    /// Summarises `samples`; `None` when there are none.
    pub fn of(samples: &[Duration]) -> Option<Latency> {
        let sorted = sorted(samples);
        Some(Latency {
            median_us: us(median(&sorted)?),
            p99_us: us(percentile(&sorted, 99)?),
            samples: sorted.len(),
        })
    }
}

fn sorted(samples: &[Duration]) -> Vec<Duration> {
    let mut v = samples.to_vec();
    v.sort_unstable();
    v
}

/// The median of sorted samples (the mean of the two middle ones for an even count).
pub fn median(sorted: &[Duration]) -> Option<Duration> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

/// The nearest-rank percentile `p` (1..=100) of sorted samples.
pub fn percentile(sorted: &[Duration], p: usize) -> Option<Duration> {
    if sorted.is_empty() || p == 0 || p > 100 {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100);
    sorted.get(rank.saturating_sub(1)).copied()
}

/// The median of plain numbers (rates); `None` when empty or when a value is NaN.
pub fn median_f64(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    if v.iter().any(|x| x.is_nan()) {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Milliseconds, rounded to microseconds.
pub fn ms(d: Duration) -> f64 {
    round3(d.as_secs_f64() * 1e3)
}

/// Microseconds, rounded to nanoseconds.
pub fn us(d: Duration) -> f64 {
    round3(d.as_secs_f64() * 1e6)
}

/// `a / b` rounded to three decimals; `None` when `b` is zero.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b != 0.0).then(|| round3(a / b))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(us: u64) -> Duration {
        Duration::from_micros(us)
    }

    #[test]
    fn medians_and_percentiles() {
        let cases: &[(&[u64], Option<u64>, Option<u64>)] = &[
            (&[], None, None),
            (&[5], Some(5), Some(5)),
            (&[1, 3], Some(2), Some(3)),
            (&[1, 2, 9], Some(2), Some(9)),
        ];
        for (input, med, p99) in cases {
            let v: Vec<Duration> = input.iter().map(|x| d(*x)).collect();
            assert_eq!(median(&v), med.map(d), "median of {input:?}");
            assert_eq!(percentile(&v, 99), p99.map(d), "p99 of {input:?}");
        }
        let hundred: Vec<Duration> = (1..=100).map(d).collect();
        assert_eq!(percentile(&hundred, 99), Some(d(99)));
        assert_eq!(percentile(&hundred, 50), Some(d(50)));
        assert_eq!(percentile(&hundred, 0), None);
    }

    #[test]
    fn summaries() {
        let r = Runs::of(&[d(3000), d(1000), d(2000)]).unwrap();
        assert_eq!(
            (r.median_ms, r.min_ms, r.max_ms, r.runs),
            (2.0, 1.0, 3.0, 3)
        );
        assert!(Runs::of(&[]).is_none());
        let l = Latency::of(&[d(30), d(10), d(20)]).unwrap();
        assert_eq!((l.median_us, l.p99_us, l.samples), (20.0, 30.0, 3));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(2.0, 3.0), Some(0.667));
        assert_eq!(median_f64(&[3.0, 1.0]), Some(2.0));
        assert_eq!(median_f64(&[f64::NAN]), None);
    }

    proptest! {
        #[test]
        fn order_statistics_lie_within_the_samples(v in proptest::collection::vec(0u64..1_000_000, 1..200)) {
            let samples: Vec<Duration> = v.iter().map(|x| d(*x)).collect();
            let r = Runs::of(&samples).unwrap();
            let l = Latency::of(&samples).unwrap();
            prop_assert!(r.min_ms <= r.median_ms && r.median_ms <= r.max_ms);
            prop_assert!(l.median_us <= l.p99_us);
            prop_assert!(l.p99_us <= r.max_ms * 1000.0 + 1e-6);
            prop_assert_eq!(r.runs, samples.len());
        }
    }
}
