//! How far a figure may move before the gate looks at it: a percentage per
//! metric, as Kata's checkmetrics has one per metric beside its midpoint.

use super::{Error, Result};

/// Used for the metrics no `--tolerance` matches. Lifecycle latency is
/// steady enough for 15%; density and in-container workloads move more
/// between runs.
pub const DEFAULT_TOLERANCES: &[(&str, f64)] = &[("lifecycle.*", 15.0), ("density.*", 25.0), ("overhead.*", 25.0)];

/// `ID=PCT`: a metric id, or a prefix ending in `*`, and a percentage.
#[derive(Debug, Clone, PartialEq)]
pub struct Tolerance {
    pub pattern: String,
    pub pct: f64,
}

impl Tolerance {
    /// Parses `--tolerance`'s value: `lifecycle.create=10`, `overhead.*=30%`.
    pub fn parse(value: &str) -> Result<Tolerance> {
        let bad = |reason: String| Error::BadTolerance {
            value: value.to_string(),
            reason,
        };
        let Some((pattern, pct)) = value.split_once('=') else {
            return Err(bad(
                "expected ID=PCT, such as lifecycle.create=10 or lifecycle.*=10".into()
            ));
        };
        let pattern = pattern.trim();
        if pattern.is_empty() {
            return Err(bad("the metric id before `=` is empty".into()));
        }
        if pattern.trim_end_matches('*').contains('*') || pattern.ends_with("**") {
            return Err(bad(format!(
                "{pattern:?}: `*` may only end a prefix, as in lifecycle.*"
            )));
        }
        let text = pct.trim().trim_end_matches('%');
        let pct: f64 = text
            .parse()
            .map_err(|_| bad(format!("PCT must be a number of percent, got {:?}", pct.trim())))?;
        if !(pct.is_finite() && pct >= 0.0) {
            return Err(bad(format!("PCT must be a percentage of 0 or more, got {pct}")));
        }
        Ok(Tolerance {
            pattern: pattern.to_string(),
            pct,
        })
    }

    /// How specifically this matches `id`: `None` when it does not, else
    /// greater for an exact id than for any prefix, and for a longer prefix.
    fn specificity(&self, id: &str) -> Option<usize> {
        match self.pattern.strip_suffix('*') {
            Some(prefix) => id.starts_with(prefix).then_some(prefix.len()),
            None => (self.pattern == id).then_some(usize::MAX),
        }
    }
}

/// The `--tolerance` values given, over [`DEFAULT_TOLERANCES`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tolerances {
    pub given: Vec<Tolerance>,
}

impl Tolerances {
    pub fn new(given: Vec<Tolerance>) -> Self {
        Tolerances { given }
    }

    /// The tolerance for metric `id`. Among those given the most specific
    /// wins (an exact id over any prefix, a longer prefix over a shorter; of
    /// equals, the last given); a given one, even `*=30`, over a default;
    /// `None` when nothing matches.
    pub fn for_metric(&self, id: &str) -> Option<Tolerance> {
        let defaults: Vec<Tolerance> = DEFAULT_TOLERANCES
            .iter()
            .map(|(p, pct)| Tolerance {
                pattern: p.to_string(),
                pct: *pct,
            })
            .collect();
        most_specific(&self.given, id).or_else(|| most_specific(&defaults, id))
    }
}

fn most_specific(list: &[Tolerance], id: &str) -> Option<Tolerance> {
    let mut best: Option<(usize, &Tolerance)> = None;
    for t in list {
        if let Some(s) = t.specificity(id) {
            if best.is_none_or(|(b, _)| s >= b) {
                best = Some((s, t));
            }
        }
    }
    best.map(|(_, t)| t.clone())
}

/// Whether `t` matches any of `ids` (for telling a typo in `--tolerance`).
pub(super) fn matches_any<'a>(t: &Tolerance, mut ids: impl Iterator<Item = &'a str>) -> bool {
    ids.any(|id| t.specificity(id).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(v: &[&str]) -> Tolerances {
        Tolerances::new(v.iter().map(|s| Tolerance::parse(s).unwrap()).collect())
    }

    fn pct(t: &Tolerances, id: &str) -> Option<f64> {
        t.for_metric(id).map(|t| t.pct)
    }

    #[test]
    fn defaults_by_phase() {
        let t = Tolerances::default();
        assert_eq!(pct(&t, "lifecycle.create"), Some(15.0));
        assert_eq!(pct(&t, "density.start"), Some(25.0));
        assert_eq!(pct(&t, "overhead.getpid"), Some(25.0));
        assert_eq!(pct(&t, "cri.pull"), None);
    }

    #[test]
    fn exact_beats_prefix_and_longer_prefix_beats_shorter() {
        let t = given(&["lifecycle.create=5", "lifecycle.*=10", "lifecycle.c*=12"]);
        assert_eq!(pct(&t, "lifecycle.create"), Some(5.0));
        assert_eq!(pct(&t, "lifecycle.state"), Some(10.0));
        // Longer prefix, given after the exact id: the exact id still wins.
        let t = given(&["lifecycle.create=5", "lifecycle.cr*=40"]);
        assert_eq!(pct(&t, "lifecycle.create"), Some(5.0));
        assert_eq!(
            pct(&given(&["lifecycle.*=10", "lifecycle.c*=12"]), "lifecycle.create"),
            Some(12.0)
        );
        // Of two equal, the last given.
        assert_eq!(
            pct(&given(&["lifecycle.*=10", "lifecycle.*=20"]), "lifecycle.run"),
            Some(20.0)
        );
        // Given beats default, even a catch-all; untouched phases keep theirs.
        let t = given(&["*=30", "lifecycle.*=10"]);
        assert_eq!(pct(&t, "lifecycle.kill"), Some(10.0));
        assert_eq!(pct(&t, "density.pss"), Some(30.0));
        assert_eq!(pct(&given(&["lifecycle.*=10"]), "density.pss"), Some(25.0));
        // A prefix matches by prefix only, an id exactly.
        assert_eq!(pct(&given(&["lifecycle.create=5"]), "lifecycle.created"), Some(15.0));
    }

    #[test]
    fn bad_values_are_named() {
        for (v, needle) in [
            ("lifecycle.create=abc", "\"abc\""),
            ("lifecycle.create", "ID=PCT"),
            ("=10", "empty"),
            ("life*cycle=10", "`*`"),
            ("lifecycle.create=-5", "0 or more"),
            ("lifecycle.create=inf", "0 or more"),
        ] {
            let e = Tolerance::parse(v).unwrap_err().to_string();
            assert!(e.starts_with("--tolerance: bad value"), "{e}");
            assert!(e.contains(&format!("{v:?}")) && e.contains(needle), "{v}: {e}");
        }
        assert_eq!(Tolerance::parse("overhead.*=30%").unwrap().pct, 30.0);
        assert_eq!(Tolerance::parse("lifecycle.run = 7.5").unwrap().pct, 7.5);
    }
}
