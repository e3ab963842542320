//! Latency percentiles and the median/spread of repeated runs.

use std::time::Duration;

/// Latencies of one run. Messages sent but never received (within the drain
/// time after the run) count as infinitely late, so they push the
/// percentiles up instead of vanishing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Latency {
    pub received: usize,
    pub lost: usize,
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
    pub p999: Option<Duration>,
    pub max: Option<Duration>,
}

impl Latency {
    /// From nanosecond samples; `None` in a percentile means "lost".
    pub fn new(mut samples: Vec<u64>, lost: usize) -> Self {
        samples.sort_unstable();
        let n = samples.len() + lost;
        let at = |q: f64| -> Option<Duration> {
            if n == 0 {
                return None;
            }
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
            samples.get(rank).map(|&ns| Duration::from_nanos(ns))
        };
        Self {
            received: samples.len(),
            lost,
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: if lost > 0 {
                None
            } else {
                samples.last().map(|&ns| Duration::from_nanos(ns))
            },
        }
    }
}

/// Seconds, with a lost (or missing) value as infinity so it sorts last.
pub fn secs(d: Option<Duration>) -> f64 {
    d.map_or(f64::INFINITY, |d| d.as_secs_f64())
}

/// The median and range of one number over several runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

impl Summary {
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            let (a, b) = (v[n / 2 - 1], v[n / 2]);
            if a.is_infinite() || b.is_infinite() {
                b
            } else {
                (a + b) / 2.0
            }
        };
        Some(Self {
            median,
            min: v[0],
            max: v[n - 1],
            runs: n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let l = Latency::new((1..=1000).rev().collect(), 0);
        assert_eq!(l.received, 1000);
        assert_eq!(l.p50, Some(Duration::from_nanos(500)));
        assert_eq!(l.p99, Some(Duration::from_nanos(990)));
        assert_eq!(l.p999, Some(Duration::from_nanos(999)));
        assert_eq!(l.max, Some(Duration::from_nanos(1000)));
    }

    #[test]
    fn lost_messages_are_the_slowest() {
        let l = Latency::new((1..=98).collect(), 2);
        assert_eq!(l.p50, Some(Duration::from_nanos(50)));
        assert_eq!(l.p99, None);
        assert_eq!(l.max, None);
        assert_eq!(Latency::new(Vec::new(), 0).p50, None);
    }

    #[test]
    fn summaries() {
        let s = Summary::of(&[3.0, 1.0, 2.0]).expect("some");
        assert_eq!((s.median, s.min, s.max, s.runs), (2.0, 1.0, 3.0, 3));
        assert_eq!(Summary::of(&[1.0, 3.0]).expect("some").median, 2.0);
        assert_eq!(
            Summary::of(&[1.0, f64::INFINITY]).expect("some").median,
            f64::INFINITY
        );
        assert_eq!(Summary::of(&[]), None);
    }
}
