//! What changed between two results files of one kind: for conform, the
//! cases whose status moved, the cases added and removed, and coverage; for
//! bench, each figure's median before and after with the bootstrap interval
//! of their ratio.

use std::collections::HashMap;

use super::bench::ratio_ci;
use super::doc::{Block, Cell, Inline, Table, Tone};
use super::{machine, shell_join, Error, Input, Result};
use crate::bench::results::{BenchResults, Metric, Phase, HOST};
use crate::load::{self, Loaded};
use crate::render::bench::value;
use crate::results::{CaseResult, Results, Status};
use crate::stats;

fn status(s: Status) -> &'static str {
    match s {
        Status::Passed => "passed",
        Status::Failed => "failed",
        Status::Skipped => "skipped",
    }
}

/// The two files side by side: when, which harness, which runtimes, which
/// machine, how.
fn header(old: &Input, new: &Input) -> Vec<Block> {
    let mut t = Table::text(&["", "old", "new"]);
    let both = |f: &dyn Fn(&Input) -> Cell| [f(old), f(new)];
    let rows = [
        ("file", both(&|i| Cell::code(i.path.display().to_string()))),
        ("started", both(&|i| i.started_at().into())),
        ("harness", both(&|i| i.harness_version().into())),
        ("runtimes", both(&|i| runtimes(i).into())),
        (
            "machine",
            both(&|i| {
                let m = machine(i);
                let mut s = format!("linux {}, cgroups {}", m.kernel, m.cgroups);
                if let (Some(c), Some(k)) = (m.cpus, m.memory_kib) {
                    s.push_str(&format!(", {c} CPUs, {:.1} GiB", k as f64 / 1048576.0));
                }
                s.into()
            }),
        ),
        (
            "command",
            both(&|i| match i.command() {
                [] => Cell::text("not recorded").tone(Tone::Faint),
                c => Cell::code(shell_join(c)),
            }),
        ),
    ];
    for (what, [a, b]) in rows {
        t.rows.push(vec![what.into(), a, b]);
    }
    let mut doc = vec![
        Block::heading(1, format!("What changed: {} → {}", old.name(), new.name())),
        Block::Table(t),
    ];
    let (a, b) = (machine(old), machine(new));
    if a.kernel != b.kernel || a.cpus != b.cpus || a.memory_kib != b.memory_kib || a.cgroups != b.cgroups {
        doc.push(Block::para(
            "The two files come from different machines or host setups: a change may be the machine's.",
        ));
    }
    doc
}

fn conform(old: &Results, new: &Results) -> Vec<Block> {
    let before: HashMap<&str, &CaseResult> = old.cases.iter().map(|c| (c.id.as_str(), c)).collect();
    let after: HashMap<&str, &CaseResult> = new.cases.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut changed = Table::text(&["case", "old", "new", "clause: observed, or why skipped"]);
    let mut added = Table::text(&["case", "status", "clause: observed, or why skipped"]);
    // What a case says now: the failure's clause and observation, or the
    // reason for a skip.
    let now = |c: &CaseResult| match (&c.failure, c.status) {
        (Some(f), _) => vec![
            Inline::Code(f.clause.clone()),
            Inline::Text(format!(": {}", f.observed)),
        ],
        (None, Status::Passed) => vec![],
        (None, _) => vec![Inline::Text(c.message.clone())],
    };
    for c in &new.cases {
        match before.get(c.id.as_str()) {
            Some(o) if o.status != c.status => {
                let tone = match (o.status, c.status) {
                    (_, Status::Failed) => Tone::Bad,
                    (Status::Failed, Status::Passed) => Tone::Good,
                    _ => Tone::Plain,
                };
                changed.rows.push(vec![
                    Cell::code(c.id.as_str()),
                    status(o.status).into(),
                    Cell::text(status(c.status)).tone(tone),
                    Cell {
                        spans: now(c),
                        tone: Tone::Plain,
                    },
                ]);
            }
            Some(_) => {}
            None => added.rows.push(vec![
                Cell::code(c.id.as_str()),
                status(c.status).into(),
                Cell {
                    spans: now(c),
                    tone: Tone::Plain,
                },
            ]),
        }
    }
    let removed: Vec<Vec<Inline>> = old
        .cases
        .iter()
        .filter(|c| !after.contains_key(c.id.as_str()))
        .map(|c| {
            vec![
                Inline::Code(c.id.clone()),
                Inline::Text(format!(" (was {})", status(c.status))),
            ]
        })
        .collect();
    let mut totals = Table::new(vec!["".into(), "old".into(), "new".into()]);
    let (a, b) = (&old.summary, &new.summary);
    let frac = |x: usize, y: usize| Cell::text(format!("{x}/{y}"));
    for (what, x, y) in [
        ("passed", a.passed, b.passed),
        ("failed", a.failed, b.failed),
        ("skipped", a.skipped, b.skipped),
    ] {
        totals
            .rows
            .push(vec![what.into(), x.to_string().into(), y.to_string().into()]);
    }
    totals.rows.push(vec![
        "clauses covered".into(),
        frac(a.clauses_covered, a.clauses_total),
        frac(b.clauses_covered, b.clauses_total),
    ]);
    totals.rows.push(vec![
        "MUST clauses covered".into(),
        frac(a.must_covered, a.must_total),
        frac(b.must_covered, b.must_total),
    ]);
    let mut doc = vec![Block::heading(2, "Cases whose status changed")];
    if changed.rows.is_empty() {
        doc.push(Block::para("None."));
    } else {
        doc.push(Block::Table(changed));
    }
    doc.push(Block::heading(2, "New cases"));
    if added.rows.is_empty() {
        doc.push(Block::para("None."));
    } else {
        doc.push(Block::Table(added));
    }
    doc.push(Block::heading(2, "Removed cases"));
    if removed.is_empty() {
        doc.push(Block::para("None."));
    } else {
        doc.push(Block::List(removed));
    }
    doc.push(Block::heading(2, "Totals and coverage"));
    doc.push(Block::Table(totals));
    doc
}

const PHASES: [Phase; 4] = [Phase::Lifecycle, Phase::Density, Phase::Overhead, Phase::Harness];

/// Metrics of `b` in reading order: by phase, then by first appearance of
/// the id, then by runtime (the runtimes in file order, then the host).
fn ordered(b: &BenchResults) -> Vec<&Metric> {
    let mut names: Vec<&str> = b.runtimes.iter().map(|r| r.name.as_str()).collect();
    names.push(HOST);
    let mut v = Vec::new();
    for p in PHASES {
        for id in b.ids(p) {
            for n in &names {
                v.extend(b.metric(id, n));
            }
        }
    }
    // Anything under a runtime name the runtimes list lacks, last.
    for m in &b.metrics {
        if !v.iter().any(|x| std::ptr::eq(*x, m)) {
            v.push(m);
        }
    }
    v
}

fn bench(old: &BenchResults, new: &BenchResults) -> Vec<Block> {
    let mut t = Table::new(
        [
            "metric",
            "runtime",
            "old median",
            "new median",
            "new/old [95% CI]",
            "change",
        ]
        .map(String::from)
        .to_vec(),
    );
    t.numeric[1] = false;
    t.numeric[5] = false;
    let key = |m: &Metric| (m.id.clone(), m.runtime.clone());
    let olds: HashMap<(String, String), &Metric> = old.metrics.iter().map(|m| (key(m), m)).collect();
    let news: HashMap<(String, String), &Metric> = new.metrics.iter().map(|m| (key(m), m)).collect();
    let mut only_new = Vec::new();
    for m in ordered(new) {
        let Some(o) = olds.get(&key(m)) else {
            only_new.push(m);
            continue;
        };
        let med = |x: &Metric| {
            x.summary
                .as_ref()
                .map(|s| value(s.median, x.unit))
                .unwrap_or_else(|| "–".into())
        };
        let (ratio, change) = match stats::ratio(&m.samples, &o.samples) {
            Some((r, (lo, hi))) => {
                let significant = lo > 1.0 || hi < 1.0;
                let change = if !significant {
                    Cell::default()
                } else if (r > 1.0) == m.unit.higher_is_better() {
                    Cell::text("better").tone(Tone::Good)
                } else {
                    Cell::text("worse").tone(Tone::Bad)
                };
                let star = if significant { " *" } else { "" };
                (Cell::text(format!("{}{star}", ratio_ci(r, (lo, hi)))), change)
            }
            None => (Cell::text("–").tone(Tone::Faint), Cell::default()),
        };
        t.rows.push(vec![
            Cell::code(m.id.as_str()),
            m.runtime.as_str().into(),
            med(o).into(),
            med(m).into(),
            ratio,
            change,
        ]);
    }
    let only_old: Vec<&Metric> = ordered(old)
        .into_iter()
        .filter(|m| !news.contains_key(&key(m)))
        .collect();
    let list = |ms: &[&Metric]| {
        Block::List(
            ms.iter()
                .map(|m| vec![Inline::Code(m.id.clone()), Inline::Text(format!(" ({})", m.runtime))])
                .collect(),
        )
    };
    let mut doc = vec![
        Block::heading(2, "Figures in both"),
        Block::para(
            "Medians before and after, and the ratio of the new median to the old with its 95% bootstrap \
             interval. * the interval excludes 1: the change is larger than resampling the same samples \
             explains. Lower is better except for containers/s.",
        ),
    ];
    if t.rows.is_empty() {
        doc.push(Block::para("No figure is in both files."));
    } else {
        doc.push(Block::Table(t));
    }
    doc.push(Block::heading(2, "Figures only in one file"));
    if only_old.is_empty() && only_new.is_empty() {
        doc.push(Block::para("None: both files measured the same figures."));
    }
    if !only_old.is_empty() {
        doc.push(Block::para("Only in the old file:"));
        doc.push(list(&only_old));
    }
    if !only_new.is_empty() {
        doc.push(Block::para("Only in the new file:"));
        doc.push(list(&only_new));
    }
    doc
}

fn runtimes(i: &Input) -> String {
    match &i.results {
        Loaded::Conform(r) => format!("{} ({})", load::conform_name(r), r.runtime.version),
        Loaded::Bench(b) => b
            .runtimes
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// What changed from `old` to `new`; both must be conform results or
/// both bench results.
pub fn document(old: &Input, new: &Input) -> Result<Vec<Block>> {
    let mut doc = header(old, new);
    match (&old.results, &new.results) {
        (Loaded::Conform(a), Loaded::Conform(b)) => doc.extend(conform(a, b)),
        (Loaded::Bench(a), Loaded::Bench(b)) => doc.extend(bench(a, b)),
        _ => {
            return Err(Error::Mismatch {
                old: old.path.clone(),
                old_kind: old.kind(),
                new: new.path.clone(),
                new_kind: new.kind(),
            })
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::super::conform::tests::{case, results};
    use super::*;
    use crate::bench::results::{Machine, RuntimeEntry, Settings, Unit};

    fn input(path: &str, results: Loaded) -> Input {
        Input {
            path: path.into(),
            results,
        }
    }

    fn texts(t: &Table) -> Vec<Vec<String>> {
        t.rows.iter().map(|r| r.iter().map(Cell::plain).collect()).collect()
    }

    fn tables(doc: &[Block]) -> Vec<&Table> {
        doc.iter()
            .filter_map(|b| match b {
                Block::Table(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn conform_status_changes_new_and_removed_cases() {
        let old = results(
            "/bin/rt",
            vec![
                case("state::id", Status::Passed),
                case("state::pid", Status::Failed),
                case("kill::gone", Status::Passed),
                case("hooks::x", Status::Passed),
            ],
        );
        let new = results(
            "/bin/rt",
            vec![
                case("state::id", Status::Failed),
                case("state::pid", Status::Passed),
                case("hooks::x", Status::Passed),
                case("mounts::new", Status::Skipped),
            ],
        );
        let doc = document(
            &input("a.json", Loaded::Conform(Box::new(old))),
            &input("b.json", Loaded::Conform(Box::new(new))),
        )
        .unwrap();
        let t = tables(&doc);
        // [0] is the header.
        assert_eq!(
            texts(t[1]),
            vec![
                vec!["state::id", "passed", "failed", "runtime.state.id: id = \"<b>\""],
                vec!["state::pid", "failed", "passed", ""],
            ]
        );
        assert_eq!((t[1].rows[0][2].tone, t[1].rows[1][2].tone), (Tone::Bad, Tone::Good));
        assert_eq!(texts(t[2]), vec![vec!["mounts::new", "skipped", "no seccomp"]]);
        assert!(doc.contains(&Block::List(vec![vec![
            Inline::Code("kill::gone".into()),
            Inline::Text(" (was passed)".into())
        ]])));
        assert_eq!(texts(t[3])[1], vec!["failed", "1", "1"]);
    }

    fn bench_results(metrics: Vec<Metric>) -> BenchResults {
        BenchResults {
            schema: 1,
            kind: "bench".into(),
            harness_version: "0".into(),
            command: vec![],
            started_at: String::new(),
            duration_ms: 0,
            machine: Machine {
                kernel: "6.1".into(),
                cpus: 2,
                memory_kib: 1 << 20,
                cgroup_mode: "unified".into(),
            },
            settings: Settings {
                iterations: 1,
                ..Settings::default()
            },
            runtimes: vec![RuntimeEntry {
                name: "a".into(),
                path: "/bin/a".into(),
                args: vec![],
                version: "1".into(),
            }],
            metrics,
            missing: vec![],
            leftovers: vec![],
            interrupted: false,
        }
    }

    fn metric(id: &str, unit: Unit, samples: Vec<f64>) -> Metric {
        Metric {
            id: id.into(),
            phase: Phase::Lifecycle,
            runtime: "a".into(),
            unit,
            what: String::new(),
            samples,
            summary: None,
            ratio: None,
        }
    }

    #[test]
    fn bench_ratios_star_only_what_the_interval_separates_from_one() {
        let noisy = |base: f64| (0..30).map(|i| base + f64::from(i % 7)).collect::<Vec<_>>();
        let mut old = bench_results(vec![
            metric("lifecycle.create", Unit::Ns, noisy(100.0)),
            metric("lifecycle.start", Unit::Ns, noisy(100.0)),
            metric("density.throughput", Unit::ContainersPerSec, noisy(100.0)),
            metric("lifecycle.gone", Unit::Ns, noisy(1.0)),
        ]);
        let mut new = bench_results(vec![
            metric("lifecycle.create", Unit::Ns, noisy(150.0)),
            metric("lifecycle.start", Unit::Ns, noisy(100.5)),
            metric("density.throughput", Unit::ContainersPerSec, noisy(150.0)),
            metric("lifecycle.fresh", Unit::Ns, noisy(1.0)),
        ]);
        old.finalize();
        new.finalize();
        let doc = document(
            &input("a.json", Loaded::Bench(Box::new(old))),
            &input("b.json", Loaded::Bench(Box::new(new))),
        )
        .unwrap();
        let rows = texts(tables(&doc)[1]);
        assert_eq!(rows.len(), 3, "{rows:?}");
        let row = |id: &str| rows.iter().find(|r| r[0] == id).unwrap().clone();
        let create = row("lifecycle.create");
        assert!(
            create[4].starts_with("1.49x [") && create[4].ends_with(" *"),
            "{create:?}"
        );
        assert_eq!(create[5], "worse");
        let start = row("lifecycle.start");
        assert!(!start[4].ends_with('*') && start[5].is_empty(), "{start:?}");
        assert_eq!(row("density.throughput")[5], "better");
        assert!(doc.contains(&Block::List(vec![vec![
            Inline::Code("lifecycle.gone".into()),
            Inline::Text(" (a)".into())
        ]])));
        assert!(doc.contains(&Block::List(vec![vec![
            Inline::Code("lifecycle.fresh".into()),
            Inline::Text(" (a)".into())
        ]])));
    }

    #[test]
    fn kinds_must_match() {
        let c = input("c.json", Loaded::Conform(Box::new(results("/bin/rt", vec![]))));
        let b = input("b.json", Loaded::Bench(Box::new(bench_results(vec![]))));
        let e = document(&c, &b).unwrap_err().to_string();
        assert!(
            e.contains("c.json") && e.contains("b.json") && e.contains("conform") && e.contains("bench"),
            "{e}"
        );
    }
}
