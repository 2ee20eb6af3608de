//! The conformance part of the report: a matrix of case groups against
//! runtimes, clause coverage, and every failure with its clause.

use super::doc::{Block, Cell, Table, Tone};
use super::Input;
use crate::load;
use crate::results::{Results, Status};

/// Column labels: the runtime's name, with the file's when two files
/// name the same runtime.
fn labels(cols: &[(&Input, &Results)]) -> Vec<String> {
    let names: Vec<String> = cols.iter().map(|(_, r)| load::conform_name(r)).collect();
    names
        .iter()
        .zip(cols)
        .map(|(n, (i, _))| {
            if names.iter().filter(|m| *m == n).count() > 1 {
                format!("{n} ({})", i.name())
            } else {
                n.clone()
            }
        })
        .collect()
}

fn pct(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

/// Groups (in case order, the first file's first) against runtimes, each
/// cell `passed/failed/skipped`; totals and clause coverage underneath.
pub(super) fn matrix(labels: &[String], results: &[&Results]) -> Table {
    let mut groups: Vec<String> = Vec::new();
    for r in results {
        for c in &r.cases {
            if !groups.contains(&c.group) {
                groups.push(c.group.clone());
            }
        }
    }
    let per: Vec<Vec<(String, [usize; 3])>> = results.iter().map(|r| r.by_group()).collect();
    let mut head = vec!["group".to_string()];
    head.extend(labels.iter().cloned());
    let mut t = Table::new(head);
    let mut totals = vec![[0usize; 3]; results.len()];
    for g in &groups {
        let mut row = vec![Cell::code(g.as_str())];
        for (col, counts) in per.iter().enumerate() {
            row.push(match counts.iter().find(|(name, _)| name == g) {
                Some((_, [p, f, s])) => {
                    for (t, v) in totals[col].iter_mut().zip([p, f, s]) {
                        *t += v;
                    }
                    let tone = if *f > 0 {
                        Tone::Bad
                    } else if *p > 0 {
                        Tone::Good
                    } else {
                        Tone::Plain
                    };
                    Cell::text(format!("{p}/{f}/{s}")).tone(tone)
                }
                None => Cell::text("–").tone(Tone::Faint),
            });
        }
        t.rows.push(row);
    }
    let mut total = vec![Cell::text("total")];
    total.extend(totals.iter().map(|[p, f, s]| Cell::text(format!("{p}/{f}/{s}"))));
    let mut covered = vec![Cell::text("clauses covered")];
    let mut must = vec![Cell::text("MUST clauses covered")];
    for r in results {
        let s = &r.summary;
        covered.push(Cell::text(format!(
            "{}/{} ({:.0}%)",
            s.clauses_covered,
            s.clauses_total,
            pct(s.clauses_covered, s.clauses_total)
        )));
        must.push(Cell::text(format!(
            "{}/{} ({:.0}%)",
            s.must_covered,
            s.must_total,
            pct(s.must_covered, s.must_total)
        )));
    }
    t.foot = vec![total, covered, must];
    t
}

/// Each failure of one runtime (case, clause, expected, observed), then
/// each skip with its reason.
fn failures(label: &str, r: &Results) -> Block {
    let failed: Vec<_> = r.cases.iter().filter(|c| c.status == Status::Failed).collect();
    let skipped: Vec<_> = r.cases.iter().filter(|c| c.status == Status::Skipped).collect();
    let mut body = Vec::new();
    if !failed.is_empty() {
        let mut t = Table::text(&["case", "clause", "expected", "observed"]);
        for c in &failed {
            t.rows.push(match &c.failure {
                Some(f) => vec![
                    Cell::code(c.id.as_str()),
                    Cell::code(f.clause.as_str()),
                    f.expected.as_str().into(),
                    f.observed.as_str().into(),
                ],
                // A failure without detail (a crash, a timeout) has a message.
                None => vec![
                    Cell::code(c.id.as_str()),
                    Cell::text("–").tone(Tone::Faint),
                    Cell::text("–").tone(Tone::Faint),
                    c.message.as_str().into(),
                ],
            });
        }
        body.push(Block::Table(t));
    }
    if !skipped.is_empty() {
        body.push(Block::para(format!("Skipped on {label}:")));
        let mut t = Table::text(&["case", "reason"]);
        for c in &skipped {
            t.rows.push(vec![Cell::code(c.id.as_str()), c.message.as_str().into()]);
        }
        body.push(Block::Table(t));
    }
    Block::Details {
        summary: format!(
            "{label}: {} failed, {} skipped of {} cases",
            failed.len(),
            skipped.len(),
            r.cases.len()
        ),
        body,
    }
}

pub(super) fn section(cols: &[(&Input, &Results)]) -> Vec<Block> {
    let labels = labels(cols);
    let results: Vec<&Results> = cols.iter().map(|(_, r)| *r).collect();
    let mut doc = vec![
        Block::heading(2, "Conformance"),
        Block::para(
            "Cases per group as passed/failed/skipped, runtimes in columns. Clause coverage counts the \
             catalog clauses observable by a black-box test that at least one case which ran (not skipped) \
             cites.",
        ),
        Block::Table(matrix(&labels, &results)),
        Block::heading(3, "Failures"),
    ];
    for (label, r) in labels.iter().zip(&results) {
        if r.cases.iter().all(|c| c.status == Status::Passed) {
            doc.push(Block::para(format!("{label}: every case passed.")));
        } else {
            doc.push(failures(label, r));
        }
    }
    doc
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::results::{CaseResult, FailureDetail, RuntimeInfo, Summary};

    pub fn case(id: &str, status: Status) -> CaseResult {
        CaseResult {
            id: id.into(),
            group: id.split("::").next().unwrap().into(),
            status,
            clauses: vec!["runtime.state.id".into()],
            duration_ms: 1,
            message: if status == Status::Skipped {
                "no seccomp".into()
            } else {
                String::new()
            },
            failure: (status == Status::Failed).then(|| FailureDetail {
                clause: "runtime.state.id".into(),
                expected: "id = \"a|b\"".into(),
                observed: "id = \"<b>\"".into(),
            }),
            log: vec![],
        }
    }

    pub fn results(path: &str, cases: Vec<CaseResult>) -> Results {
        let count = |s| cases.iter().filter(|c| c.status == s).count();
        Results {
            schema: 1,
            harness_version: "0".into(),
            runtime: RuntimeInfo {
                path: path.into(),
                version: "1".into(),
                args: vec![],
            },
            host: serde_json::json!({"kernel": "6.1", "cgroup_mode": "unified"}),
            started_at: "2026-01-01T00:00:00Z".into(),
            command: vec![],
            duration_ms: 1,
            summary: Summary {
                passed: count(Status::Passed),
                failed: count(Status::Failed),
                skipped: count(Status::Skipped),
                clauses_covered: 3,
                clauses_total: 4,
                must_covered: 1,
                must_total: 2,
            },
            cases,
        }
    }

    fn texts(row: &[Cell]) -> Vec<String> {
        row.iter().map(Cell::plain).collect()
    }

    #[test]
    fn matrix_counts_groups_in_case_order() {
        let a = results(
            "/bin/a",
            vec![
                case("state::id", Status::Failed),
                case("state::pid", Status::Passed),
                case("hooks::x", Status::Skipped),
                case("state::status", Status::Passed),
            ],
        );
        let b = results(
            "/bin/b",
            vec![case("state::id", Status::Passed), case("kill::sig", Status::Failed)],
        );
        let t = matrix(&["a".into(), "b".into()], &[&a, &b]);
        assert_eq!(t.head, vec!["group", "a", "b"]);
        assert_eq!(t.rows.len(), 3);
        assert_eq!(texts(&t.rows[0]), vec!["state", "2/1/0", "1/0/0"]);
        assert_eq!(texts(&t.rows[1]), vec!["hooks", "0/0/1", "–"]);
        assert_eq!(texts(&t.rows[2]), vec!["kill", "–", "0/1/0"]);
        assert_eq!((t.rows[0][1].tone, t.rows[0][2].tone), (Tone::Bad, Tone::Good));
        assert_eq!(t.rows[1][2].tone, Tone::Faint);
        assert_eq!(texts(&t.foot[0]), vec!["total", "2/1/1", "1/1/0"]);
        assert_eq!(texts(&t.foot[1]), vec!["clauses covered", "3/4 (75%)", "3/4 (75%)"]);
        assert_eq!(
            texts(&t.foot[2]),
            vec!["MUST clauses covered", "1/2 (50%)", "1/2 (50%)"]
        );
    }

    #[test]
    fn two_files_of_one_runtime_are_told_apart() {
        let r = results("/usr/bin/runc", vec![]);
        let input = |p: &str| Input {
            path: p.into(),
            results: load::Loaded::Conform(Box::new(r.clone())),
        };
        let (x, y, z) = (input("old/runc.json"), input("new/runc2.json"), input("crun.json"));
        let zr = results("/usr/bin/crun", vec![]);
        let l = labels(&[(&x, &r), (&y, &r), (&z, &zr)]);
        assert_eq!(l, vec!["runc (runc.json)", "runc (runc2.json)", "crun"]);
    }

    #[test]
    fn failures_carry_clause_expected_observed() {
        let r = results(
            "/bin/a",
            vec![case("state::id", Status::Failed), case("hooks::x", Status::Skipped)],
        );
        let Block::Details { summary, body } = failures("a", &r) else {
            panic!("details")
        };
        assert_eq!(summary, "a: 1 failed, 1 skipped of 2 cases");
        let Block::Table(t) = &body[0] else { panic!("table") };
        assert_eq!(
            texts(&t.rows[0]),
            vec!["state::id", "runtime.state.id", "id = \"a|b\"", "id = \"<b>\""]
        );
    }
}
