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

/// One-sided Mann–Whitney U test: the p-value of "values of `a` tend to be
/// larger than values of `b`" against "no shift" (a rank test: no
/// assumption of normality, and one wild sample moves it by one rank).
///
/// `U_a = R_a - n_a(n_a+1)/2`, where `R_a` is the sum of `a`'s ranks in the
/// pooled samples and tied values share the average of their ranks. `U_a`
/// is taken as normal with mean `n_a n_b / 2` and variance
/// `n_a n_b / 12 * ((N + 1) - Σ(t³ - t) / (N (N - 1)))` (each `t` the size
/// of a group of ties, `N = n_a + n_b`), and `z = (U_a - mean - 0.5) / σ`
/// with the 0.5 a continuity correction; the p-value is `1 - Φ(z)`.
///
/// The normal approximation, not the exact distribution of `U`. Checked
/// against the exact distribution (no ties, equal sizes): in the tail that
/// matters (exact p below 0.1) it is off by less than 0.004 from 5 samples
/// a side and less than 0.002 from 12, and on the side of a larger p-value
/// around 0.01, so it errs towards not rejecting. Below 5 a side the exact
/// test is the one to use; callers that decide on this one should require
/// that many. `1.0` (no evidence) when either side is empty or every value
/// is tied (`σ = 0`).
pub fn mann_whitney_greater(a: &[f64], b: &[f64]) -> f64 {
    let (na, nb) = (a.len(), b.len());
    if na == 0 || nb == 0 {
        return 1.0;
    }
    let mut pooled: Vec<(f64, bool)> = a
        .iter()
        .map(|&v| (v, true))
        .chain(b.iter().map(|&v| (v, false)))
        .collect();
    pooled.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = pooled.len();
    let (mut rank_sum_a, mut ties) = (0.0, 0.0);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && pooled[j + 1].0 == pooled[i].0 {
            j += 1;
        }
        // Ranks are 1-based: positions i..=j share (i + 1 + j + 1) / 2.
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_a += rank * pooled[i..=j].iter().filter(|p| p.1).count() as f64;
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        i = j + 1;
    }
    let (na, nb, nf) = (na as f64, nb as f64, n as f64);
    let u = rank_sum_a - na * (na + 1.0) / 2.0;
    let var = na * nb / 12.0 * ((nf + 1.0) - ties / (nf * (nf - 1.0)));
    if var.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return 1.0;
    }
    let z = (u - na * nb / 2.0 - 0.5) / var.sqrt();
    normal_sf(z)
}

/// `1 - Φ(z)`, the upper tail of the standard normal distribution.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function: the Chebyshev fit of Numerical
/// Recipes (`erfcc`), relative error below 1.2e-7 everywhere, so even the
/// small tail probabilities a test compares with alpha keep their digits.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
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
    fn close(x: f64, want: f64, tol: f64) -> bool {
        (x - want).abs() <= tol
    }

    #[test]
    fn normal_tail() {
        assert!(close(normal_sf(0.0), 0.5, 1e-7));
        assert!(close(normal_sf(1.959_964), 0.025, 1e-6));
        assert!(close(normal_sf(-1.959_964), 0.975, 1e-6));
        // The far tail keeps its relative precision.
        let p = normal_sf(5.0);
        assert!((p / 2.866_515_7e-7 - 1.0).abs() < 1e-5, "{p}");
    }

    #[test]
    fn mann_whitney_small_cases_by_hand() {
        // a = [3, 4, 5] above b = [1, 2]: ranks 3 + 4 + 5 = 12, U = 12 - 6 = 6,
        // mean 3, variance 3 * 2 / 12 * 6 = 3, z = (6 - 3 - 0.5) / √3 = 1.4434.
        let p = mann_whitney_greater(&[3.0, 4.0, 5.0], &[1.0, 2.0]);
        assert!(close(p, 0.074_457, 1e-5), "{p}");
        // Ties: pooled 1b 2a 2b 2b 3a 3b 4a 4a, ranks 1, 3 3 3, 5.5 5.5, 7.5 7.5;
        // R_a = 3 + 5.5 + 7.5 + 7.5 = 23.5, U = 13.5, mean 8; tie groups of
        // 3, 2, 2 give Σ(t³ - t) = 36, variance 16 / 12 * (9 - 36 / 56) = 11.142857,
        // z = (13.5 - 8 - 0.5) / 3.33809 = 1.49786.
        let (a, b) = ([2.0, 3.0, 4.0, 4.0], [1.0, 2.0, 2.0, 3.0]);
        let p = mann_whitney_greater(&a, &b);
        assert!(close(p, 0.067_085, 1e-5), "{p}");
        // The other direction: U = 16 - 13.5 = 2.5, z = -1.79743.
        let q = mann_whitney_greater(&b, &a);
        assert!(close(q, 0.963_867, 1e-5), "{q}");
    }

    #[test]
    fn mann_whitney_identical_and_separated() {
        let low: Vec<f64> = (1..=10).map(f64::from).collect();
        let high: Vec<f64> = (11..=20).map(f64::from).collect();
        // No shift: just above one half (the continuity correction).
        let p = mann_whitney_greater(&low, &low);
        assert!(p > 0.5 && p < 0.52, "{p}");
        // Fully separated, 10 a side: U = 100, z = 49.5 / √175 = 3.7418.
        let p = mann_whitney_greater(&high, &low);
        assert!(p < 0.001 && close(p, 9.1336e-5, 1e-8), "{p}");
        assert!(mann_whitney_greater(&low, &high) > 0.999);
        // The test is on ranks: scaling or one wild value changes nothing.
        let mut wild = high.clone();
        wild[9] = 1e12;
        assert_eq!(mann_whitney_greater(&wild, &low), p);
        // No evidence either way.
        assert_eq!(mann_whitney_greater(&[], &low), 1.0);
        assert_eq!(mann_whitney_greater(&[3.0; 6], &[3.0; 6]), 1.0);
    }
}
