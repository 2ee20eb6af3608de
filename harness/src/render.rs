//! Renderings of `Results`: a terminal table, JSON, JUnit XML and TAP. Each
//! is made from the JSON results alone.

pub mod bench;

use std::fmt::Write;

use crate::results::{Results, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Junit,
    Tap,
}

pub fn render(r: &Results, f: Format) -> String {
    match f {
        Format::Table => table(r),
        Format::Json => serde_json::to_string_pretty(r).unwrap_or_default() + "\n",
        Format::Junit => junit(r),
        Format::Tap => tap(r),
    }
}

/// Per-group counts, then each failure with clause, expected and observed,
/// then the totals and clause coverage.
pub fn table(r: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "runtime: {} ({})", r.runtime.path, r.runtime.version);
    let width = r.by_group().iter().map(|(g, _)| g.len()).max().unwrap_or(5).max(5);
    let _ = writeln!(
        s,
        "{:<width$}  {:>6}  {:>6}  {:>7}",
        "group", "passed", "failed", "skipped"
    );
    for (g, [p, f, k]) in r.by_group() {
        let _ = writeln!(s, "{g:<width$}  {p:>6}  {f:>6}  {k:>7}");
    }
    let failures: Vec<_> = r.cases.iter().filter(|c| c.status == Status::Failed).collect();
    if !failures.is_empty() {
        let _ = writeln!(s, "\nfailures:");
        for c in failures {
            let _ = writeln!(s, "  {}", c.id);
            match &c.failure {
                Some(f) => {
                    let _ = writeln!(s, "    clause:   {}", f.clause);
                    let _ = writeln!(s, "    expected: {}", f.expected);
                    let _ = writeln!(s, "    observed: {}", f.observed);
                }
                None => {
                    let _ = writeln!(s, "    {}", c.message);
                }
            }
        }
    }
    let sm = &r.summary;
    let _ = writeln!(
        s,
        "\n{} passed, {} failed, {} skipped in {:.1}s",
        sm.passed,
        sm.failed,
        sm.skipped,
        r.duration_ms as f64 / 1000.0
    );
    let pct = |a: usize, b: usize| if b == 0 { 0.0 } else { 100.0 * a as f64 / b as f64 };
    let _ = writeln!(
        s,
        "clause coverage: {}/{} observable clauses ({:.0}%), MUST {}/{} ({:.0}%)",
        sm.clauses_covered,
        sm.clauses_total,
        pct(sm.clauses_covered, sm.clauses_total),
        sm.must_covered,
        sm.must_total,
        pct(sm.must_covered, sm.must_total)
    );
    s
}

/// Text for XML: escaped, control characters other than tab and newline
/// dropped (XML 1.0 cannot carry them); in attributes a newline or tab is
/// kept as a character reference.
pub fn xml(s: &str, attribute: bool) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\n' if attribute => o.push_str("&#10;"),
            '\t' if attribute => o.push_str("&#9;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => o.push(c),
        }
    }
    o
}

/// One `<testsuite>` per group.
pub fn junit(r: &Results) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let sm = &r.summary;
    let _ = writeln!(
        s,
        "<testsuites name=\"oci-conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        r.cases.len(),
        sm.failed,
        sm.skipped,
        r.duration_ms as f64 / 1000.0
    );
    for (g, [p, f, k]) in r.by_group() {
        let _ = writeln!(
            s,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" skipped=\"{k}\">",
            xml(&g, true),
            p + f + k
        );
        for c in r.cases.iter().filter(|c| c.group == g) {
            let _ = write!(
                s,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                xml(&g, true),
                xml(&c.id, true),
                c.duration_ms as f64 / 1000.0
            );
            match c.status {
                Status::Passed => s.push_str("/>\n"),
                Status::Skipped => {
                    let _ = writeln!(
                        s,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml(&c.message, true)
                    );
                }
                Status::Failed => {
                    let body = c.log.join("\n");
                    let _ = writeln!(
                        s,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        xml(&c.message, true),
                        xml(&body, false)
                    );
                }
            }
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}

/// TAP version 13, one test point per case.
pub fn tap(r: &Results) -> String {
    let mut s = format!("TAP version 13\n1..{}\n", r.cases.len());
    for (i, c) in r.cases.iter().enumerate() {
        let n = i + 1;
        let one_line = c.message.replace('\n', " ");
        match c.status {
            Status::Passed => {
                let _ = writeln!(s, "ok {n} - {}", c.id);
            }
            Status::Skipped => {
                let _ = writeln!(s, "ok {n} - {} # SKIP {one_line}", c.id);
            }
            Status::Failed => {
                let _ = writeln!(s, "not ok {n} - {}", c.id);
                if let Some(f) = &c.failure {
                    let _ = writeln!(s, "  ---");
                    let _ = writeln!(s, "  clause: {:?}", f.clause);
                    let _ = writeln!(s, "  expected: {:?}", f.expected);
                    let _ = writeln!(s, "  observed: {:?}", f.observed);
                    let _ = writeln!(s, "  ...");
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{CaseResult, FailureDetail, RuntimeInfo, Summary};

    fn sample() -> Results {
        let case = |id: &str, status, msg: &str| CaseResult {
            id: id.into(),
            group: id.split("::").next().unwrap().into(),
            status,
            clauses: vec!["runtime.state.id".into()],
            duration_ms: 3,
            message: msg.into(),
            failure: (status == Status::Failed).then(|| FailureDetail {
                clause: "runtime.state.id".into(),
                expected: "id = \"a\"".into(),
                observed: "id = \"<b>\"".into(),
            }),
            log: vec![],
        };
        Results {
            schema: 1,
            harness_version: "0".into(),
            runtime: RuntimeInfo {
                path: "/bin/rt".into(),
                version: "1".into(),
                args: vec![],
            },
            host: serde_json::Value::Null,
            command: vec![],
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_ms: 10,
            cases: vec![
                case(
                    "state::id",
                    Status::Failed,
                    "[runtime.state.id] expected a, observed <b>",
                ),
                case("state::pid", Status::Passed, ""),
                case("hooks::x", Status::Skipped, "no seccomp"),
            ],
            summary: Summary {
                passed: 1,
                failed: 1,
                skipped: 1,
                clauses_covered: 1,
                clauses_total: 2,
                must_covered: 1,
                must_total: 1,
            },
        }
    }

    #[test]
    fn table_lists_groups_failures_and_coverage() {
        let t = table(&sample());
        assert!(t.contains("state"), "{t}");
        assert!(t.contains("clause:   runtime.state.id"), "{t}");
        assert!(t.contains("1 passed, 1 failed, 1 skipped"), "{t}");
        assert!(t.contains("1/2 observable clauses (50%)"), "{t}");
    }

    #[test]
    fn tap_marks_skips_and_failures() {
        let t = tap(&sample());
        assert!(t.starts_with("TAP version 13\n1..3\n"));
        assert!(t.contains("not ok 1 - state::id"));
        assert!(t.contains("ok 3 - hooks::x # SKIP no seccomp"));
    }

    #[test]
    fn junit_escapes_and_counts() {
        let j = junit(&sample());
        assert!(j.contains("tests=\"3\" failures=\"1\" skipped=\"1\""));
        assert!(j.contains("&lt;b&gt;"), "{j}");
        assert!(!j.contains("<b>"));
    }

    #[test]
    fn json_round_trips() {
        let r = sample();
        let text = render(&r, Format::Json);
        let back: Results = serde_json::from_str(&text).unwrap();
        assert_eq!(back.summary, r.summary);
        assert_eq!(back.cases.len(), 3);
    }
}
