//! Statistics that hold on a noisy machine (for `harness bench`): order
//! statistics rather than means, and bootstrap confidence intervals for a
//! median and for the ratio of two medians. The resampling is seeded, so a
//! report recomputed from the same raw samples gives the same interval.

use serde::{Deserialize, Serialize};

/// Summary of one series of samples (any unit; benches use nanoseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub min: f64,
    pub median: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    /// 95% bootstrap confidence interval of the median.
    pub median_ci95: (f64, f64),
}

/// Linear-interpolated quantile `q` in 0..=1 of sorted `v` (non-empty).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s
}

pub fn median(v: &[f64]) -> f64 {
    quantile(&sorted(v), 0.5)
}

/// xorshift64*: small, seeded, good enough to pick resample indices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn index(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const RESAMPLES: usize = 2000;
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

fn resample_median(v: &[f64], rng: &mut Rng, buf: &mut Vec<f64>) -> f64 {
    buf.clear();
    buf.extend((0..v.len()).map(|_| v[rng.index(v.len())]));
    buf.sort_by(|a, b| a.total_cmp(b));
    quantile(buf, 0.5)
}

/// Summary of `v`; `None` for an empty series.
pub fn summarize(v: &[f64]) -> Option<Summary> {
    if v.is_empty() {
        return None;
    }
    let s = sorted(v);
    let mut rng = Rng(SEED);
    let mut buf = Vec::with_capacity(v.len());
    let mut meds: Vec<f64> = (0..RESAMPLES).map(|_| resample_median(v, &mut rng, &mut buf)).collect();
    meds.sort_by(|a, b| a.total_cmp(b));
    Some(Summary {
        n: v.len(),
        min: s[0],
        median: quantile(&s, 0.5),
        p95: quantile(&s, 0.95),
        p99: quantile(&s, 0.99),
        max: s[s.len() - 1],
        median_ci95: (quantile(&meds, 0.025), quantile(&meds, 0.975)),
    })
}

/// The ratio of medians `a / b` with its 95% bootstrap interval (each
/// series resampled independently); `None` if either is empty or a median
/// is not positive (a ratio of a difference that can be negative, such as
/// a memory delta, means nothing).
pub fn ratio(a: &[f64], b: &[f64]) -> Option<(f64, (f64, f64))> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let (ma, mb) = (median(a), median(b));
    let point = ma / mb;
    if !(ma > 0.0 && mb > 0.0 && point.is_finite()) {
        return None;
    }
    let mut rng = Rng(SEED ^ 0xabcdef);
    let (mut ba, mut bb) = (Vec::new(), Vec::new());
    let mut rs: Vec<f64> = (0..RESAMPLES)
        .map(|_| resample_median(a, &mut rng, &mut ba) / resample_median(b, &mut rng, &mut bb))
        .filter(|r| r.is_finite())
        .collect();
    rs.sort_by(|x, y| x.total_cmp(y));
    Some((point, (quantile(&rs, 0.025), quantile(&rs, 0.975))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&s, 0.0), 1.0);
        assert_eq!(quantile(&s, 1.0), 4.0);
        assert_eq!(quantile(&s, 0.5), 2.5);
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
    }

    #[test]
    fn summary_of_a_series_with_an_outlier() {
        let mut v: Vec<f64> = (1..=99).map(f64::from).collect();
        v.push(10_000.0);
        let s = summarize(&v).unwrap();
        assert_eq!(s.n, 100);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.max, 10_000.0);
        assert!((s.median - 50.5).abs() < 1e-9);
        // The outlier moves the tail, not the median's interval.
        assert!(s.median_ci95.0 > 40.0 && s.median_ci95.1 < 61.0, "{:?}", s.median_ci95);
        assert!(s.median_ci95.0 <= s.median && s.median <= s.median_ci95.1);
        assert!(s.p99 > s.p95 && s.p95 > s.median);
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn intervals_are_reproducible() {
        let v: Vec<f64> = (0..50).map(|i| f64::from((i * 37) % 23)).collect();
        assert_eq!(summarize(&v), summarize(&v));
    }

    #[test]
    fn ratio_of_medians_with_interval() {
        let a: Vec<f64> = (0..40).map(|i| 20.0 + f64::from(i % 5)).collect();
        let b: Vec<f64> = (0..40).map(|i| 10.0 + f64::from(i % 3)).collect();
        let (r, (lo, hi)) = ratio(&a, &b).unwrap();
        assert!((r - 22.0 / 11.0).abs() < 1e-9, "{r}");
        assert!(lo <= r && r <= hi && lo > 1.5 && hi < 2.5, "{lo} {r} {hi}");
        assert!(ratio(&a, &[]).is_none());
        assert!(ratio(&a, &[0.0]).is_none());
        assert!(ratio(&[-5.0], &b).is_none());
    }
}
