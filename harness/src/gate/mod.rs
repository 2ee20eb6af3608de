//! The CI gate: new results against a baseline's, check by check, with a
//! verdict a build can fail on. Conformance: a case that passed in the
//! baseline and fails now fails the gate. Benchmarks: a figure fails it when
//! it moved beyond its tolerance *and* the move is significant, so noise
//! alone does not fail a build ([`judge`] has the rule). Pure functions over
//! loaded results; the CLI loads, calls, renders and writes.

mod bench;
mod conform;
pub mod render;
mod tolerance;

use std::fmt;

pub use bench::{judge, Figures, Shift, MIN_SAMPLES, UNGATED};
pub use tolerance::{Tolerance, Tolerances, DEFAULT_TOLERANCES};

use crate::load::Loaded;
use crate::results::{FailureDetail, Status};

/// The significance level of the Mann–Whitney test unless `--alpha` says.
pub const DEFAULT_ALPHA: f64 = 0.01;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{baseline} holds {baseline_kind} results and {results} holds {results_kind} results: \
         the gate compares conform with conform and bench with bench"
    )]
    KindMismatch {
        baseline: String,
        baseline_kind: Kind,
        results: String,
        results_kind: Kind,
    },
    #[error("{flag} {name:?}: no such runtime in {file} (it has: {})", .known.join(", "))]
    UnknownRuntime {
        flag: &'static str,
        name: String,
        file: String,
        known: Vec<String>,
    },
    #[error(
        "no runtime is in both files ({baseline}: {}; {results}: {}): name the two to compare with \
         --baseline-runtime and --runtime",
        .baseline_has.join(", "),
        .results_has.join(", ")
    )]
    NoCommonRuntime {
        baseline: String,
        baseline_has: Vec<String>,
        results: String,
        results_has: Vec<String>,
    },
    #[error("--tolerance: bad value {value:?}: {reason}")]
    BadTolerance { value: String, reason: String },
    #[error("--alpha must be above 0 and below 1, got {0}")]
    BadAlpha(f64),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Which harness verb made the results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Conform,
    Bench,
}

impl Kind {
    pub fn of(l: &Loaded) -> Kind {
        match l {
            Loaded::Conform(_) => Kind::Conform,
            Loaded::Bench(_) => Kind::Bench,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Conform => "conform",
            Kind::Bench => "bench",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One side of the comparison: loaded results and what to call them in
/// messages (their path).
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub label: &'a str,
    pub loaded: &'a Loaded,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// The runtime whose figures in the baseline are compared (default:
    /// `runtime`, else every name in both files).
    pub baseline_runtime: Option<String>,
    /// The runtime whose figures in the new results are compared (default:
    /// `baseline_runtime`).
    pub runtime: Option<String>,
    pub tolerances: Tolerances,
    /// Significance level of the one-sided Mann–Whitney test.
    pub alpha: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            baseline_runtime: None,
            runtime: None,
            tolerances: Tolerances::default(),
            alpha: DEFAULT_ALPHA,
        }
    }
}

/// The runtime in the baseline and the one in the new results whose
/// results are compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub baseline: String,
    pub results: String,
}

impl Pair {
    /// `runc`, or `base → pr` when the names differ.
    pub fn label(&self) -> String {
        if self.baseline == self.results {
            self.baseline.clone()
        } else {
            format!("{} → {}", self.baseline, self.results)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Passed,
    /// A regression, in one line.
    Failed(String),
    /// Not judged, and why.
    Skipped(String),
}

/// What a check compared, for the tables.
#[derive(Debug, Clone)]
pub enum Detail {
    /// A conformance case's status in each file, and the new failure.
    Case {
        was: Status,
        now: Status,
        failure: Option<FailureDetail>,
    },
    Metric(Figures),
}

/// One case or one figure of one runtime pair.
#[derive(Debug, Clone)]
pub struct Check {
    /// The case id or metric id.
    pub id: String,
    /// [`Pair::label`].
    pub runtime: String,
    pub outcome: Outcome,
    pub detail: Option<Detail>,
}

/// Something worth a reader's eye that does not fail the gate: a case
/// that fails in both, an improvement, a move beyond tolerance that is not
/// significant, a case or figure in one file only.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub id: String,
    pub runtime: String,
    pub text: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

#[derive(Debug, Clone)]
pub struct Verdict {
    pub kind: Kind,
    pub baseline: String,
    pub results: String,
    pub pairs: Vec<Pair>,
    pub alpha: f64,
    pub checks: Vec<Check>,
    pub notes: Vec<Note>,
}

impl Verdict {
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for ch in &self.checks {
            match ch.outcome {
                Outcome::Passed => c.passed += 1,
                Outcome::Failed(_) => c.failed += 1,
                Outcome::Skipped(_) => c.skipped += 1,
            }
        }
        c
    }

    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| matches!(c.outcome, Outcome::Failed(_)))
    }

    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }

    /// 0 pass, 1 fail (2, bad input, is the CLI's on an [`Error`]).
    pub fn exit_code(&self) -> i32 {
        i32::from(!self.passed())
    }

    fn check(&mut self, id: &str, pair: &Pair, outcome: Outcome, detail: Option<Detail>) {
        self.checks.push(Check {
            id: id.to_string(),
            runtime: pair.label(),
            outcome,
            detail,
        });
    }

    fn note(&mut self, id: &str, pair: &Pair, text: String) {
        self.notes.push(Note {
            id: id.to_string(),
            runtime: pair.label(),
            text,
        });
    }
}

/// Gates `results` against `baseline`.
pub fn gate(baseline: Input, results: Input, opts: &Options) -> Result<Verdict> {
    if !(opts.alpha > 0.0 && opts.alpha < 1.0) {
        return Err(Error::BadAlpha(opts.alpha));
    }
    let (bk, rk) = (Kind::of(baseline.loaded), Kind::of(results.loaded));
    if bk != rk {
        return Err(Error::KindMismatch {
            baseline: baseline.label.to_string(),
            baseline_kind: bk,
            results: results.label.to_string(),
            results_kind: rk,
        });
    }
    let pairs = pairs(baseline, results, opts)?;
    let mut v = Verdict {
        kind: bk,
        baseline: baseline.label.to_string(),
        results: results.label.to_string(),
        pairs: pairs.clone(),
        alpha: opts.alpha,
        checks: Vec::new(),
        notes: Vec::new(),
    };
    match (baseline.loaded, results.loaded) {
        (Loaded::Conform(b), Loaded::Conform(n)) => {
            for p in &pairs {
                conform::compare(b, n, p, &mut v);
            }
        }
        (Loaded::Bench(b), Loaded::Bench(n)) => {
            for p in &pairs {
                bench::compare(b, n, p, opts, &mut v);
            }
            bench::unused_tolerances(&opts.tolerances, &mut v);
        }
        // The kinds were matched above.
        _ => {}
    }
    Ok(v)
}

/// The runtimes to compare: the two named, or every name in both files, or
/// the one in each when each file has one (a conform run of `main-runc` and
/// one of `pr-runc`).
fn pairs(baseline: Input, results: Input, opts: &Options) -> Result<Vec<Pair>> {
    let (bn, rn) = (baseline.loaded.runtimes(), results.loaded.runtimes());
    let (want_b, want_r) = match (&opts.baseline_runtime, &opts.runtime) {
        (None, None) => {
            let both: Vec<Pair> = bn
                .iter()
                .filter(|n| rn.contains(n))
                .map(|n| Pair {
                    baseline: n.clone(),
                    results: n.clone(),
                })
                .collect();
            if !both.is_empty() {
                return Ok(both);
            }
            if let ([b], [r]) = (bn.as_slice(), rn.as_slice()) {
                return Ok(vec![Pair {
                    baseline: b.clone(),
                    results: r.clone(),
                }]);
            }
            return Err(Error::NoCommonRuntime {
                baseline: baseline.label.to_string(),
                baseline_has: bn,
                results: results.label.to_string(),
                results_has: rn,
            });
        }
        (Some(b), None) => (("--baseline-runtime", b), ("--baseline-runtime", b)),
        (None, Some(r)) => (("--runtime", r), ("--runtime", r)),
        (Some(b), Some(r)) => (("--baseline-runtime", b), ("--runtime", r)),
    };
    for ((flag, name), side, names) in [(want_b, baseline, &bn), (want_r, results, &rn)] {
        if !names.contains(name) {
            return Err(Error::UnknownRuntime {
                flag,
                name: name.clone(),
                file: side.label.to_string(),
                known: names.clone(),
            });
        }
    }
    Ok(vec![Pair {
        baseline: want_b.1.clone(),
        results: want_r.1.clone(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::results::{BenchResults, Phase};
    use crate::results::{CaseResult, Results, RuntimeInfo, Summary};

    fn case(id: &str, status: Status) -> CaseResult {
        let failure = (status == Status::Failed).then(|| FailureDetail {
            clause: "runtime.md#state".into(),
            expected: "id \"c1\"".into(),
            observed: "id \"somebody-else\" | <b>".into(),
        });
        CaseResult {
            id: id.into(),
            group: id.split("::").next().unwrap().into(),
            status,
            clauses: vec![],
            duration_ms: 1,
            message: match status {
                Status::Skipped => "needs cgroup v2".into(),
                _ => String::new(),
            },
            failure,
            log: vec![],
        }
    }

    fn conform(path: &str, cases: Vec<CaseResult>) -> Loaded {
        Loaded::Conform(Box::new(Results {
            schema: 1,
            harness_version: "0".into(),
            runtime: RuntimeInfo {
                path: path.into(),
                version: "v".into(),
                args: vec![],
            },
            host: serde_json::Value::Null,
            started_at: String::new(),
            command: vec![],
            duration_ms: 0,
            cases,
            summary: Summary::default(),
        }))
    }

    /// Bench results of `runtimes`, with `metrics` as (id, runtime, unit, samples).
    fn bench(runtimes: &[&str], metrics: &[(&str, &str, &str, Vec<f64>)]) -> Loaded {
        let v = serde_json::json!({
            "schema": 1, "kind": "bench", "harness_version": "0", "command": [], "started_at": "",
            "duration_ms": 0,
            "machine": {"kernel": "", "cpus": 1, "memory_kib": 0, "cgroup_mode": ""},
            "settings": {"iterations": 1, "warmup": 0, "density": 0, "density_rounds": 0,
                "overhead_rounds": 0, "batches": 0, "batch_ms": 0, "workloads": [], "phases": [],
                "hybrid_as_v1": false},
            "runtimes": runtimes.iter().map(|n| serde_json::json!({"name": n, "path": n, "args": [], "version": "v"})).collect::<Vec<_>>(),
            "metrics": metrics.iter().map(|(id, rt, unit, samples)| serde_json::json!({
                "id": id, "phase": id.split('.').next().unwrap(), "runtime": rt, "unit": unit,
                "what": "", "samples": samples})).collect::<Vec<_>>(),
            "missing": [], "leftovers": [], "interrupted": false,
        });
        let mut b: BenchResults = serde_json::from_value(v).unwrap();
        b.finalize();
        Loaded::Bench(Box::new(b))
    }

    fn around(centre: f64, n: usize) -> Vec<f64> {
        (0..n).map(|i| centre * (1.0 + 0.002 * (i % 5) as f64)).collect()
    }

    fn run(b: &Loaded, n: &Loaded, opts: &Options) -> Result<Verdict> {
        gate(
            Input {
                label: "BASE.json",
                loaded: b,
            },
            Input {
                label: "NEW.json",
                loaded: n,
            },
            opts,
        )
    }

    fn outcome<'a>(v: &'a Verdict, id: &str, rt: &str) -> &'a Outcome {
        &v.checks
            .iter()
            .find(|c| c.id == id && c.runtime == rt)
            .unwrap_or_else(|| panic!("{id} {rt}"))
            .outcome
    }

    fn note<'a>(v: &'a Verdict, id: &str) -> &'a str {
        v.notes
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.text.as_str())
            .unwrap_or_else(|| panic!("no note on {id}: {:?}", v.notes))
    }

    #[test]
    fn conformance_rules() {
        use Status::*;
        let b = conform(
            "/usr/sbin/runc",
            vec![
                case("state::created_fields", Passed),
                case("state::still", Passed),
                case("kill::lost", Passed),
                case("kill::both", Failed),
                case("kill::fixed", Failed),
                case("hooks::was_skipped", Skipped),
                case("delete::removed", Passed),
            ],
        );
        let n = conform(
            "/tmp/pr/runc",
            vec![
                case("state::created_fields", Failed),
                case("state::still", Passed),
                case("kill::lost", Skipped),
                case("kill::both", Failed),
                case("kill::fixed", Passed),
                case("hooks::was_skipped", Failed),
                case("create::added", Passed),
            ],
        );
        let v = run(&b, &n, &Options::default()).unwrap();
        assert_eq!(
            v.pairs,
            vec![Pair {
                baseline: "runc".into(),
                results: "runc".into()
            }]
        );
        assert_eq!(v.exit_code(), 1);
        let failed: Vec<&str> = v.failures().map(|c| c.id.as_str()).collect();
        assert_eq!(failed, ["state::created_fields"]);
        let Outcome::Failed(msg) = outcome(&v, "state::created_fields", "runc") else {
            unreachable!()
        };
        assert!(
            msg.contains("runtime.md#state") && msg.contains("expected id \"c1\"") && msg.contains("somebody-else"),
            "{msg}"
        );
        assert_eq!(outcome(&v, "state::still", "runc"), &Outcome::Passed);
        assert!(matches!(outcome(&v, "kill::lost", "runc"), Outcome::Skipped(_)));
        assert!(note(&v, "kill::lost").contains("passed in the baseline, skipped now"));
        assert_eq!(outcome(&v, "kill::both", "runc"), &Outcome::Passed);
        assert!(note(&v, "kill::both").contains("fails in both"));
        assert!(note(&v, "kill::fixed").contains("fixed"));
        assert!(matches!(outcome(&v, "hooks::was_skipped", "runc"), Outcome::Skipped(_)));
        assert!(note(&v, "hooks::was_skipped").contains("skipped in the baseline"));
        assert!(note(&v, "delete::removed").contains("not in the new results"));
        assert!(note(&v, "create::added").contains("new case"));
        assert_eq!(
            v.counts(),
            Counts {
                passed: 3,
                failed: 1,
                skipped: 2
            }
        );
        // The same file against itself passes.
        assert_eq!(run(&n, &n, &Options::default()).unwrap().exit_code(), 0);
    }

    #[test]
    fn which_runtimes_are_compared() {
        let ab = bench(&["a", "b"], &[]);
        let bc = bench(&["b", "c"], &[]);
        let d = bench(&["d"], &[]);
        let e = bench(&["e"], &[]);
        let pair = |b: &str, r: &str| Pair {
            baseline: b.into(),
            results: r.into(),
        };
        let o = Options::default();
        assert_eq!(run(&ab, &bc, &o).unwrap().pairs, vec![pair("b", "b")]);
        assert_eq!(run(&ab, &ab, &o).unwrap().pairs, vec![pair("a", "a"), pair("b", "b")]);
        // One each, differently named: those two.
        assert_eq!(run(&d, &e, &o).unwrap().pairs, vec![pair("d", "e")]);
        let err = run(&ab, &d, &o).unwrap_err().to_string();
        assert!(
            err.contains("no runtime is in both") && err.contains("BASE.json: a, b") && err.contains("NEW.json: d"),
            "{err}"
        );
        // A/B within one file.
        let ab_mode = Options {
            baseline_runtime: Some("a".into()),
            runtime: Some("b".into()),
            ..Options::default()
        };
        let v = run(&ab, &ab, &ab_mode).unwrap();
        assert_eq!(v.pairs, vec![pair("a", "b")]);
        assert_eq!(v.pairs[0].label(), "a → b");
        // One name given: the same in both.
        let only = Options {
            runtime: Some("b".into()),
            ..Options::default()
        };
        assert_eq!(run(&ab, &bc, &only).unwrap().pairs, vec![pair("b", "b")]);
        let err = run(
            &bc,
            &ab,
            &Options {
                runtime: Some("c".into()),
                ..Options::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--runtime \"c\"") && err.contains("NEW.json (it has: a, b)"),
            "{err}"
        );
        let err = run(
            &ab,
            &ab,
            &Options {
                baseline_runtime: Some("z".into()),
                runtime: Some("a".into()),
                ..Options::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--baseline-runtime \"z\"") && err.contains("BASE.json (it has: a, b)"),
            "{err}"
        );
        // Conform files go by the binary's name.
        let c = conform("/usr/bin/crun", vec![]);
        let err = run(
            &c,
            &c,
            &Options {
                runtime: Some("runc".into()),
                ..Options::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("(it has: crun)"), "{err}");
    }

    #[test]
    fn kinds_and_alpha_are_checked() {
        let c = conform("/usr/sbin/runc", vec![]);
        let b = bench(&["runc"], &[]);
        let err = run(&c, &b, &Options::default()).unwrap_err().to_string();
        assert!(
            err.contains("BASE.json holds conform results") && err.contains("NEW.json holds bench results"),
            "{err}"
        );
        for alpha in [0.0, 1.0, -0.1, f64::NAN] {
            let err = run(
                &b,
                &b,
                &Options {
                    alpha,
                    ..Options::default()
                },
            )
            .unwrap_err()
            .to_string();
            assert!(err.starts_with("--alpha must be above 0 and below 1"), "{err}");
        }
    }

    #[test]
    fn a_figure_the_new_run_could_not_measure_fails() {
        let samples = || around(5e6, 12);
        let mut base = bench(
            &["base", "pr"],
            &[
                ("lifecycle.run", "base", "ns", samples()),
                ("lifecycle.run", "pr", "ns", samples()),
                ("lifecycle.create", "base", "ns", samples()),
                ("overhead.getpid", "base", "ns", samples()),
                ("overhead.cpu", "base", "ns", samples()),
            ],
        );
        let Loaded::Bench(b) = &mut base else { unreachable!() };
        b.settings.phases = vec![Phase::Lifecycle, Phase::Overhead];
        b.settings.workloads = vec!["cpu".into()];
        let ab = Options {
            baseline_runtime: Some("base".into()),
            runtime: Some("pr".into()),
            ..Options::default()
        };
        let v = run(&base, &base, &ab).unwrap();
        let rt = "base → pr";
        assert_eq!(outcome(&v, "lifecycle.run", rt), &Outcome::Passed);
        let Outcome::Failed(msg) = outcome(&v, "lifecycle.create", rt) else {
            panic!("{:?}", v.checks)
        };
        assert!(msg.contains("could not be measured now"), "{msg}");
        assert!(matches!(outcome(&v, "overhead.cpu", rt), Outcome::Failed(_)));
        // Not asked for in the new run: a note, not a failure.
        assert!(note(&v, "overhead.getpid").contains("not in the new results"));
        assert_eq!(v.exit_code(), 1);
        // After ^C nothing absent counts against the runtime.
        let Loaded::Bench(b) = &mut base else { unreachable!() };
        b.interrupted = true;
        let v = run(&base, &base, &ab).unwrap();
        assert_eq!(v.exit_code(), 0, "{:?}", v.checks);
    }

    #[test]
    fn bench_checks_and_notes() {
        let base = bench(
            &["base", "pr"],
            &[
                ("lifecycle.create", "base", "ns", around(10e6, 12)),
                ("lifecycle.create", "pr", "ns", around(30e6, 12)),
                ("lifecycle.state", "base", "ns", around(4e6, 12)),
                ("lifecycle.state", "pr", "ns", around(4.1e6, 12)),
                ("density.throughput", "base", "containers_per_sec", around(100.0, 12)),
                ("density.throughput", "pr", "containers_per_sec", around(150.0, 12)),
                ("density.pss", "base", "kib", around(200.0, 3)),
                ("density.pss", "pr", "kib", around(200.0, 3)),
                ("density.host", "base", "kib", around(40.0, 12)),
                ("density.host", "pr", "kib", around(4000.0, 12)),
                ("harness.overhead", "base", "ns", around(20e3, 12)),
                ("harness.overhead", "pr", "ns", around(90e3, 12)),
                ("overhead.getpid", "base", "ns", around(100.0, 12)),
                ("lifecycle.kill", "pr", "ns", around(4e6, 12)),
            ],
        );
        let ab = Options {
            baseline_runtime: Some("base".into()),
            runtime: Some("pr".into()),
            ..Options::default()
        };
        let v = run(&base, &base, &ab).unwrap();
        let rt = "base → pr";
        let Outcome::Failed(msg) = outcome(&v, "lifecycle.create", rt) else {
            panic!("{:?}", v.checks)
        };
        assert!(msg.contains("+200.0%") && msg.contains("tolerance 15%"), "{msg}");
        assert_eq!(outcome(&v, "lifecycle.state", rt), &Outcome::Passed);
        assert_eq!(outcome(&v, "density.throughput", rt), &Outcome::Passed);
        assert!(note(&v, "density.throughput").starts_with("improved"));
        for (id, why) in [
            ("density.pss", "too few samples"),
            ("density.host", "not gated"),
            ("harness.overhead", "not gated"),
        ] {
            let Outcome::Skipped(r) = outcome(&v, id, rt) else {
                panic!("{id}")
            };
            assert!(r.contains(why), "{id}: {r}");
        }
        assert!(note(&v, "overhead.getpid").contains("not in the new results"));
        assert!(note(&v, "lifecycle.kill").contains("not in the baseline"));
        assert_eq!(v.exit_code(), 1);
        // A wider tolerance for that one metric lets it through; a pattern
        // that matches nothing is pointed out.
        let loose = Options {
            tolerances: Tolerances::new(vec![
                Tolerance::parse("lifecycle.create=250").unwrap(),
                Tolerance::parse("lifecyle.*=10").unwrap(),
            ]),
            ..ab
        };
        let v = run(&base, &base, &loose).unwrap();
        assert_eq!(v.exit_code(), 0, "{:?}", v.checks);
        let Some(Detail::Metric(f)) = &v.checks[0].detail else {
            panic!()
        };
        assert_eq!(
            (f.tolerance_pct, f.tolerance_from.as_str()),
            (250.0, "lifecycle.create")
        );
        assert!(note(&v, "lifecyle.*").contains("matched no metric"));
    }

    #[test]
    fn renderings() {
        let b = conform(
            "/usr/sbin/runc",
            vec![
                case("state::created_fields", Status::Passed),
                case("kill::x", Status::Skipped),
            ],
        );
        let n = conform(
            "/usr/sbin/runc",
            vec![
                case("state::created_fields", Status::Failed),
                case("kill::x", Status::Skipped),
            ],
        );
        let v = run(&b, &n, &Options::default()).unwrap();
        let md = render::markdown(&v);
        assert!(
            md.starts_with("### ❌ FAIL: 1 new failure in 2 conformance checks (0 passed, 1 skipped)"),
            "{md}"
        );
        // A `|` or tag in what the runtime said cannot break the table.
        assert!(md.contains("| `state::created_fields` | runc | `runtime.md#state` | id \"c1\" | id \"somebody-else\" \\| &lt;b&gt; |"), "{md}");
        assert!(md.contains("<details><summary>All 2 checks</summary>"), "{md}");
        let x = render::junit(&v);
        assert!(
            x.contains("<testsuite name=\"gate.conform\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"1\">"),
            "{x}"
        );
        assert!(x.contains("<failure message=\"state::created_fields: passed in the baseline, fails now: [runtime.md#state] expected id &quot;c1&quot;, observed id &quot;somebody-else&quot; | &lt;b&gt;\" type=\"regression\">"), "{x}");
        assert!(
            x.contains("<skipped message=\"skipped in both: needs cgroup v2\"/>"),
            "{x}"
        );
        let ok = render::markdown(&run(&b, &b, &Options::default()).unwrap());
        assert!(
            ok.starts_with("### ✅ PASS: 0 new failures in 2 conformance checks"),
            "{ok}"
        );
        assert!(!ok.contains("#### New failures"), "{ok}");
    }
}
