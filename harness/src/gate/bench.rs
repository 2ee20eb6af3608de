//! The gate over `harness bench` results: per metric, a midpoint (the
//! baseline's median) and a tolerance, as Kata's checkmetrics does, and two
//! tests that the move is more than noise.

use std::collections::BTreeMap;

use super::tolerance::{self, Tolerances};
use super::{Detail, Options, Outcome, Pair, Verdict};
use crate::bench::results::{BenchResults, Unit};
use crate::render::bench::value;
use crate::stats;

/// Fewer samples a side and the figure is not judged: the rank test's
/// normal approximation needs about this many, and so does a bootstrap.
pub const MIN_SAMPLES: usize = 5;

/// Metrics the gate reports as skipped, and why (an id, or a prefix ending
/// in `*`).
pub const UNGATED: &[(&str, &str)] = &[
    (
        "harness.*",
        "the harness's own cost, a yardstick for the other figures rather than a property of the runtime",
    ),
    (
        "density.host",
        "the drop in the host's MemAvailable is too noisy to gate (it goes negative between runs)",
    ),
];

/// Which way a figure moved, judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shift {
    /// Beyond tolerance the bad way, and significant: fails the gate.
    Regressed,
    /// Beyond tolerance the good way, and significant.
    Improved,
    /// Beyond tolerance the bad way, but not significant: noise, or too
    /// few samples to tell.
    Unconfirmed,
    /// Within tolerance (or beyond it the good way without significance).
    Within,
}

/// What the decision was made from.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub unit: Unit,
    pub n_baseline: usize,
    pub n_results: usize,
    pub baseline_median: f64,
    pub results_median: f64,
    /// New median over baseline median, with its 95% bootstrap interval.
    pub ratio: f64,
    pub ratio_ci95: (f64, f64),
    /// One-sided Mann–Whitney p-values: that the new samples are worse
    /// (slower, or fewer containers per second), and that they are better.
    pub p_worse: f64,
    pub p_better: f64,
    pub tolerance_pct: f64,
    /// The `--tolerance` pattern or default it came from.
    pub tolerance_from: String,
}

impl Figures {
    pub fn change_pct(&self) -> f64 {
        (self.ratio - 1.0) * 100.0
    }

    /// Whether the new median is on the bad side of the baseline's.
    pub fn worse(&self) -> bool {
        if self.unit.higher_is_better() {
            self.ratio < 1.0
        } else {
            self.ratio > 1.0
        }
    }

    /// The p-value of the direction the median moved in.
    pub fn p(&self) -> f64 {
        if self.worse() {
            self.p_worse
        } else {
            self.p_better
        }
    }
}

/// The decision rule. A figure REGRESSES when all three hold:
///
/// 1. the new median is beyond the tolerance: new/base above `1 + tol` when
///    lower is better, below `1 - tol` when higher is better (containers
///    per second);
/// 2. the 95% bootstrap interval of that ratio ([`stats::ratio`]) lies
///    wholly beyond the tolerance the bad way: the move is beyond tolerance
///    with confidence, not only its midpoint (with a dozen samples a side,
///    an interval merely clear of 1 let noise fail a build of the same
///    binary);
/// 3. a one-sided Mann–Whitney U test on the raw samples rejects "no shift"
///    the bad way at `alpha`.
///
/// The first says the move matters, the other two that it is not noise.
/// [`Shift::Improved`] is the same three the good way. `Err` with the
/// reason when the figure cannot be judged: fewer than [`MIN_SAMPLES`] a
/// side, or a median that is not positive.
pub fn judge(
    baseline: &[f64],
    results: &[f64],
    unit: Unit,
    tolerance_pct: f64,
    alpha: f64,
) -> Result<(Shift, Figures), String> {
    let (nb, nr) = (baseline.len(), results.len());
    if nb < MIN_SAMPLES || nr < MIN_SAMPLES {
        return Err(format!(
            "too few samples to judge: {nb} in the baseline, {nr} new (at least {MIN_SAMPLES} a side)"
        ));
    }
    let (mb, mr) = (stats::median(baseline), stats::median(results));
    let Some((ratio, ci)) = stats::ratio(results, baseline) else {
        return Err(format!(
            "a median is not positive (baseline {}, new {}): their ratio means nothing",
            value(mb, unit),
            value(mr, unit)
        ));
    };
    let hib = unit.higher_is_better();
    let tol = tolerance_pct / 100.0;
    let (p_worse, p_better) = if hib {
        (
            stats::mann_whitney_greater(baseline, results),
            stats::mann_whitney_greater(results, baseline),
        )
    } else {
        (
            stats::mann_whitney_greater(results, baseline),
            stats::mann_whitney_greater(baseline, results),
        )
    };
    let (beyond_worse, beyond_better) = if hib {
        (ratio < 1.0 - tol, ratio > 1.0 + tol)
    } else {
        (ratio > 1.0 + tol, ratio < 1.0 - tol)
    };
    let (ci_worse, ci_better) = if hib {
        (ci.1 < 1.0 - tol, ci.0 > 1.0 + tol)
    } else {
        (ci.0 > 1.0 + tol, ci.1 < 1.0 - tol)
    };
    let shift = if beyond_worse && ci_worse && p_worse < alpha {
        Shift::Regressed
    } else if beyond_better && ci_better && p_better < alpha {
        Shift::Improved
    } else if beyond_worse {
        Shift::Unconfirmed
    } else {
        Shift::Within
    };
    let figures = Figures {
        unit,
        n_baseline: nb,
        n_results: nr,
        baseline_median: mb,
        results_median: mr,
        ratio,
        ratio_ci95: ci,
        p_worse,
        p_better,
        tolerance_pct,
        tolerance_from: String::new(),
    };
    Ok((shift, figures))
}

/// A p-value for reading: `0.034`, `1.8e-5`.
pub fn p_text(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// `14.6 ms → 35.2 ms (+141.0%, tolerance 15%), ratio 95% CI 2.29–2.52, p = 1.8e-5`.
pub fn describe(f: &Figures) -> String {
    format!(
        "median {} → {} ({:+.1}%, tolerance {}%), 95% CI of the ratio {:.3}–{:.3}, one-sided Mann–Whitney p = {}",
        value(f.baseline_median, f.unit),
        value(f.results_median, f.unit),
        f.change_pct(),
        f.tolerance_pct,
        f.ratio_ci95.0,
        f.ratio_ci95.1,
        p_text(f.p())
    )
}

fn ungated(id: &str) -> Option<&'static str> {
    UNGATED.iter().find_map(|(pat, why)| {
        let hit = match pat.strip_suffix('*') {
            Some(prefix) => id.starts_with(prefix),
            None => *pat == id,
        };
        hit.then_some(*why)
    })
}

/// Whether the new run was asked to measure what `m` is, and finished:
/// its phase ran, its workload (for overhead) was selected, and no ^C
/// stopped it.
fn set_out_to_measure(n: &BenchResults, m: &crate::bench::results::Metric) -> bool {
    if n.interrupted || !n.settings.phases.contains(&m.phase) {
        return false;
    }
    match m.id.strip_prefix("overhead.") {
        Some(w) => n.settings.workloads.iter().any(|x| x == w),
        None => true,
    }
}

/// The checks and notes of one runtime pair.
pub(super) fn compare(b: &BenchResults, n: &BenchResults, pair: &Pair, opts: &Options, v: &mut Verdict) {
    let mut ids: Vec<&str> = Vec::new();
    let ours = b
        .metrics
        .iter()
        .filter(|m| m.runtime == pair.baseline)
        .chain(n.metrics.iter().filter(|m| m.runtime == pair.results));
    for m in ours {
        if !ids.contains(&m.id.as_str()) {
            ids.push(&m.id);
        }
    }
    for id in ids {
        let (mb, mn) = match (b.metric(id, &pair.baseline), n.metric(id, &pair.results)) {
            (Some(mb), Some(mn)) => (mb, mn),
            (Some(mb), None) => {
                if ungated(id).is_none() && set_out_to_measure(n, mb) {
                    // The new run tried and could not: the runtime fails
                    // where the baseline worked, which is a regression too.
                    let why = format!(
                        "{id} ({}) was measured in the baseline and could not be measured now (see what the new run lists as missing)",
                        pair.label()
                    );
                    v.check(id, pair, Outcome::Failed(why), None);
                } else {
                    v.note(
                        id,
                        pair,
                        "measured in the baseline, not in the new results: not compared".into(),
                    );
                }
                continue;
            }
            (None, Some(_)) => {
                v.note(id, pair, "new: not in the baseline, not compared".into());
                continue;
            }
            (None, None) => continue,
        };
        if let Some(why) = ungated(id) {
            v.check(id, pair, Outcome::Skipped(format!("not gated: {why}")), None);
            continue;
        }
        if mb.unit != mn.unit {
            let why = format!("units differ: {:?} in the baseline, {:?} now", mb.unit, mn.unit);
            v.check(id, pair, Outcome::Skipped(why), None);
            continue;
        }
        let Some(tol) = opts.tolerances.for_metric(id) else {
            let why = format!("no tolerance for this metric: give one with --tolerance {id}=PCT");
            v.check(id, pair, Outcome::Skipped(why), None);
            continue;
        };
        let (shift, mut f) = match judge(&mb.samples, &mn.samples, mb.unit, tol.pct, opts.alpha) {
            Ok(j) => j,
            Err(why) => {
                v.check(id, pair, Outcome::Skipped(why), None);
                continue;
            }
        };
        f.tolerance_from = tol.pattern;
        let text = describe(&f);
        let outcome = match shift {
            Shift::Regressed => Outcome::Failed(format!("{id} ({}) regressed: {text}", pair.label())),
            Shift::Improved => {
                v.note(id, pair, format!("improved: {text}"));
                Outcome::Passed
            }
            Shift::Unconfirmed => {
                v.note(
                    id,
                    pair,
                    format!(
                        "beyond tolerance but not significant at α = {} (noise?): {text}",
                        opts.alpha
                    ),
                );
                Outcome::Passed
            }
            Shift::Within => Outcome::Passed,
        };
        v.check(id, pair, outcome, Some(Detail::Metric(f)));
    }
    // What the new run set out to measure and could not: absent figures
    // are not compared, so say so.
    let mut missing: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for m in n.missing.iter().filter(|m| m.runtime == pair.results) {
        missing
            .entry(m.phase.name())
            .or_default()
            .push(format!("{}: {}", m.what, m.reason));
    }
    for (phase, what) in missing {
        let more = match what.len() {
            1 => String::new(),
            k => format!(" (and {} more)", k - 1),
        };
        v.note(phase, pair, format!("the new run could not measure {}{more}", what[0]));
    }
    if n.interrupted {
        v.note(
            "bench",
            pair,
            "the new run was interrupted: its figures may be partial".into(),
        );
    }
}

/// A `--tolerance` that matched no compared metric is most likely a typo.
pub(super) fn unused_tolerances(t: &Tolerances, v: &mut Verdict) {
    for given in &t.given {
        let ids = v.checks.iter().map(|c| c.id.as_str());
        if !tolerance::matches_any(given, ids) {
            v.notes.push(super::Note {
                id: given.pattern.clone(),
                runtime: String::new(),
                text: format!("--tolerance {}={} matched no metric compared", given.pattern, given.pct),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` samples spread evenly over `centre * (1 ± spread)`, in a
    /// shuffled order (as a run would record them).
    fn series(centre: f64, spread: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let k = (i * 7) % n; // a fixed permutation (7 and n coprime)
                let u = if n > 1 { k as f64 / (n - 1) as f64 } else { 0.5 };
                centre * (1.0 + spread * (2.0 * u - 1.0))
            })
            .collect()
    }

    fn j(base: &[f64], new: &[f64], unit: Unit, tol: f64) -> (Shift, Figures) {
        judge(base, new, unit, tol, 0.01).unwrap()
    }

    #[test]
    fn a_20_percent_shift_in_tight_samples_fails() {
        let (s, f) = j(&series(100.0, 0.02, 20), &series(120.0, 0.02, 20), Unit::Ns, 15.0);
        assert_eq!(s, Shift::Regressed, "{f:?}");
        assert!((f.change_pct() - 20.0).abs() < 1.0);
        assert!(f.ratio_ci95.0 > 1.15 && f.p_worse < 1e-6, "{f:?}");
    }

    #[test]
    fn a_20_percent_shift_in_very_noisy_samples_passes() {
        // ±70% around the median, 10 a side: the interval of the ratio
        // straddles 1 and the ranks overlap, so it is not held against it.
        let (s, f) = j(&series(100.0, 0.7, 10), &series(120.0, 0.7, 10), Unit::Ns, 15.0);
        assert!(f.ratio > 1.15, "beyond tolerance: {f:?}");
        assert!(f.ratio_ci95.0 < 1.0 && f.p_worse > 0.01, "{f:?}");
        assert_eq!(s, Shift::Unconfirmed);
    }

    #[test]
    fn a_median_beyond_tolerance_whose_interval_reaches_back_inside_passes() {
        // What two runs of the same runc once gave for `start`: the new
        // samples are all slower (p tiny) and the median is 20% up, but half
        // of them only 5% up, so the interval of the ratio reaches down to
        // 1.05: the move is not beyond 15% with confidence.
        let base = series(100.0, 0.004, 12);
        let new = [vec![105.0; 6], vec![135.0; 6]].concat();
        let (s, f) = j(&base, &new, Unit::Ns, 15.0);
        assert!(f.ratio > 1.15 && f.p_worse < 0.01, "{f:?}");
        assert!(f.ratio_ci95.0 > 1.0 && f.ratio_ci95.0 < 1.15, "{f:?}");
        assert_eq!(s, Shift::Unconfirmed);
    }

    #[test]
    fn a_5_percent_shift_within_15_percent_passes() {
        // Significant by both tests, but within tolerance.
        let (s, f) = j(&series(100.0, 0.01, 30), &series(105.0, 0.01, 30), Unit::Ns, 15.0);
        assert!(f.ratio_ci95.0 > 1.0 && f.p_worse < 1e-6, "{f:?}");
        assert_eq!(s, Shift::Within);
    }

    #[test]
    fn higher_is_better_turns_the_direction() {
        let base = series(100.0, 0.02, 20);
        let (fewer, more) = (series(80.0, 0.02, 20), series(120.0, 0.02, 20));
        assert_eq!(j(&base, &fewer, Unit::ContainersPerSec, 15.0).0, Shift::Regressed);
        let (s, f) = j(&base, &more, Unit::ContainersPerSec, 15.0);
        assert_eq!(s, Shift::Improved);
        assert!(!f.worse() && f.p() == f.p_better && f.p() < 1e-6);
        // The same figures as latencies: the other way round.
        assert_eq!(j(&base, &more, Unit::Ns, 15.0).0, Shift::Regressed);
        assert_eq!(j(&base, &fewer, Unit::Ns, 15.0).0, Shift::Improved);
        // 15% fewer containers per second is within 25%.
        assert_eq!(
            j(&base, &series(85.0, 0.02, 20), Unit::ContainersPerSec, 25.0).0,
            Shift::Within
        );
    }

    #[test]
    fn each_condition_is_needed() {
        // 1 alone: a 5% shift, significant by both tests, within 15% (above).
        // 2: two-humped samples, 25% slower in both humps. The ranks shift
        // clearly, but the median can land in either hump, so the interval
        // of the ratio straddles 1.
        let humps = |lo: f64, hi: f64| [vec![lo; 11], vec![hi; 10]].concat();
        let (s, f) = j(&humps(100.0, 200.0), &humps(125.0, 250.0), Unit::Ns, 15.0);
        assert!(f.ratio > 1.15 && f.p_worse < 0.01, "{f:?}");
        assert!(f.ratio_ci95.0 < 1.0, "{f:?}");
        assert_eq!(s, Shift::Unconfirmed);
        // 3: five a side, fully apart, 20% slower: the interval lies beyond
        // 1, but five against five cannot reach p < 0.001.
        let (base, new) = (series(100.0, 0.02, 5), series(120.0, 0.02, 5));
        let (s, f) = judge(&base, &new, Unit::Ns, 15.0, 0.001).unwrap();
        assert!(f.ratio > 1.15 && f.ratio_ci95.0 > 1.0, "{f:?}");
        assert!(f.p_worse > 0.001 && f.p_worse < 0.01, "{f:?}");
        assert_eq!(s, Shift::Unconfirmed);
        assert_eq!(judge(&base, &new, Unit::Ns, 15.0, 0.01).unwrap().0, Shift::Regressed);
        // Too few samples, or a median that cannot divide: not judged.
        let e = judge(&[1.0; 4], &[2.0; 30], Unit::Ns, 15.0, 0.01).unwrap_err();
        assert!(e.contains("4 in the baseline, 30 new"), "{e}");
        let e = judge(&[0.0; 6], &[2.0; 6], Unit::Kib, 15.0, 0.01).unwrap_err();
        assert!(e.contains("not positive"), "{e}");
    }

    #[test]
    fn ungated_metrics() {
        assert!(ungated("harness.overhead").is_some());
        assert!(ungated("harness.spawn").is_some());
        assert!(ungated("density.host").is_some());
        assert!(ungated("density.pss").is_none());
        assert!(ungated("lifecycle.create").is_none());
    }
}
