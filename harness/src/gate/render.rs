//! Renderings of a [`Verdict`]: Markdown for a GitHub step summary or a
//! pull-request comment (the verdict first, then what failed, the notes,
//! and every check folded away), and JUnit XML for CI systems that show
//! test reports.

use std::fmt::Write;

use super::bench::{describe, p_text};
use super::{Check, Detail, Kind, Outcome, Verdict};
use crate::render::bench::value;
use crate::render::xml;
use crate::results::Status;

/// Notes beyond this many are folded away too.
const NOTES_SHOWN: usize = 20;

/// A table cell: no line breaks, no `|`, no HTML.
fn cell(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '|' => o.push_str("\\|"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '\n' | '\r' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn status(s: Status) -> &'static str {
    match s {
        Status::Passed => "passed",
        Status::Failed => "failed",
        Status::Skipped => "skipped",
    }
}

/// `✅ PASS` or `❌ FAIL` with the counts: the line a reader sees first.
pub fn headline(v: &Verdict) -> String {
    let c = v.counts();
    let what = match v.kind {
        Kind::Conform => "conformance",
        Kind::Bench => "benchmark",
    };
    let mark = if v.passed() { "✅ PASS" } else { "❌ FAIL" };
    let failed = match v.kind {
        Kind::Conform => plural(c.failed, "new failure", "new failures"),
        Kind::Bench => plural(c.failed, "regression", "regressions"),
    };
    format!(
        "{mark}: {failed} in {} ({} passed, {} skipped), {}",
        plural(v.checks.len(), &format!("{what} check"), &format!("{what} checks")),
        c.passed,
        c.skipped,
        plural(v.notes.len(), "note", "notes")
    )
}

fn metric_row(f: &super::Figures) -> [String; 5] {
    [
        value(f.baseline_median, f.unit),
        value(f.results_median, f.unit),
        format!("{:+.1}%", f.change_pct()),
        format!("{:.3}–{:.3}", f.ratio_ci95.0, f.ratio_ci95.1),
        p_text(f.p()),
    ]
}

fn outcome_cell(o: &Outcome) -> String {
    match o {
        Outcome::Passed => "pass".into(),
        Outcome::Failed(_) => "**FAIL**".into(),
        Outcome::Skipped(why) => format!("skipped: {}", cell(why)),
    }
}

fn failures_table(v: &Verdict, s: &mut String) {
    let failed: Vec<&Check> = v.failures().collect();
    if failed.is_empty() {
        return;
    }
    match v.kind {
        Kind::Bench => {
            s.push_str("#### Regressions\n\n");
            s.push_str(
                "| metric | runtime | baseline median | new median | change | 95% CI of ratio | p | tolerance |\n",
            );
            s.push_str("| --- | --- | ---: | ---: | ---: | :---: | ---: | ---: |\n");
            for c in failed {
                if let Some(Detail::Metric(f)) = &c.detail {
                    let [b, n, ch, ci, p] = metric_row(f);
                    let _ = writeln!(
                        s,
                        "| `{}` | {} | {b} | {n} | {ch} | {ci} | {p} | {}% |",
                        c.id,
                        cell(&c.runtime),
                        f.tolerance_pct
                    );
                }
            }
        }
        Kind::Conform => {
            s.push_str("#### New failures\n\n");
            s.push_str("| case | runtime | clause | expected | observed |\n| --- | --- | --- | --- | --- |\n");
            for c in failed {
                let (clause, expected, observed) = match &c.detail {
                    Some(Detail::Case { failure: Some(f), .. }) => {
                        (f.clause.as_str(), f.expected.as_str(), f.observed.as_str())
                    }
                    _ => ("", "", ""),
                };
                let _ = writeln!(
                    s,
                    "| `{}` | {} | `{}` | {} | {} |",
                    c.id,
                    cell(&c.runtime),
                    cell(clause),
                    cell(expected),
                    cell(observed)
                );
            }
        }
    }
    s.push('\n');
}

fn notes(v: &Verdict, s: &mut String) {
    if v.notes.is_empty() {
        return;
    }
    s.push_str("#### Notes\n\n");
    let line = |n: &super::Note| {
        let who = if n.runtime.is_empty() {
            String::new()
        } else {
            format!(" ({})", cell(&n.runtime))
        };
        format!("- `{}`{who}: {}\n", n.id, cell(&n.text))
    };
    for n in v.notes.iter().take(NOTES_SHOWN) {
        s.push_str(&line(n));
    }
    if v.notes.len() > NOTES_SHOWN {
        let _ = writeln!(
            s,
            "\n<details><summary>{} more notes</summary>\n",
            v.notes.len() - NOTES_SHOWN
        );
        for n in &v.notes[NOTES_SHOWN..] {
            s.push_str(&line(n));
        }
        s.push_str("\n</details>\n");
    }
    s.push('\n');
}

fn all_checks(v: &Verdict, s: &mut String) {
    let _ = writeln!(
        s,
        "<details><summary>All {}</summary>\n",
        plural(v.checks.len(), "check", "checks")
    );
    match v.kind {
        Kind::Bench => {
            s.push_str(
                "| metric | runtime | result | baseline median | new median | change | 95% CI of ratio | p | tolerance | n |\n",
            );
            s.push_str("| --- | --- | --- | ---: | ---: | ---: | :---: | ---: | ---: | ---: |\n");
            for c in &v.checks {
                let (figs, tol, n) = match &c.detail {
                    Some(Detail::Metric(f)) => (
                        metric_row(f),
                        format!("{}% ({})", f.tolerance_pct, f.tolerance_from),
                        format!("{}/{}", f.n_baseline, f.n_results),
                    ),
                    _ => (Default::default(), String::new(), String::new()),
                };
                let [b, nm, ch, ci, p] = figs;
                let _ = writeln!(
                    s,
                    "| `{}` | {} | {} | {b} | {nm} | {ch} | {ci} | {p} | {} | {n} |",
                    c.id,
                    cell(&c.runtime),
                    outcome_cell(&c.outcome),
                    cell(&tol)
                );
            }
        }
        Kind::Conform => {
            s.push_str("| case | runtime | result | baseline | now |\n| --- | --- | --- | --- | --- |\n");
            for c in &v.checks {
                let (was, now) = match &c.detail {
                    Some(Detail::Case { was, now, .. }) => (status(*was), status(*now)),
                    _ => ("", ""),
                };
                let _ = writeln!(
                    s,
                    "| `{}` | {} | {} | {was} | {now} |",
                    c.id,
                    cell(&c.runtime),
                    outcome_cell(&c.outcome)
                );
            }
        }
    }
    s.push_str("\n</details>\n");
}

/// The Markdown summary.
pub fn markdown(v: &Verdict) -> String {
    let mut s = format!("### {}\n\n", headline(v));
    let runtimes: Vec<String> = v.pairs.iter().map(|p| p.label()).collect();
    let _ = writeln!(
        s,
        "`harness gate` of `{}` against the baseline `{}`; runtime{}: {}.",
        v.results,
        v.baseline,
        if runtimes.len() == 1 { "" } else { "s" },
        runtimes.join(", ")
    );
    match v.kind {
        Kind::Conform => s.push_str("A case fails the gate when it passed in the baseline and fails now.\n\n"),
        Kind::Bench => {
            let _ = writeln!(
                s,
                "A figure fails the gate when its median moved beyond its tolerance, the 95% bootstrap \
                 interval of the ratio of medians (new / baseline) lies wholly beyond the tolerance, and a one-sided \
                 Mann–Whitney U test on the raw samples gives p < {}. p is that of the direction the \
                 median moved in.\n",
                v.alpha
            );
        }
    }
    failures_table(v, &mut s);
    notes(v, &mut s);
    all_checks(v, &mut s);
    s
}

/// JUnit XML: one `<testsuite>` for the kind, one `<testcase>` per check,
/// a `<failure>` per regression and `<skipped>` per check not judged.
pub fn junit(v: &Verdict) -> String {
    let c = v.counts();
    let suite = format!("gate.{}", v.kind.name());
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"harness gate\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">",
        v.checks.len(),
        c.failed,
        c.skipped
    );
    let _ = writeln!(
        s,
        "  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">",
        v.checks.len(),
        c.failed,
        c.skipped
    );
    let _ = writeln!(
        s,
        "    <properties>\n      <property name=\"baseline\" value=\"{}\"/>\n      <property name=\"results\" value=\"{}\"/>\n    </properties>",
        xml(&v.baseline, true),
        xml(&v.results, true)
    );
    for ch in &v.checks {
        let _ = write!(
            s,
            "    <testcase classname=\"{}\" name=\"{}\"",
            xml(&format!("{suite}.{}", ch.runtime), true),
            xml(&ch.id, true)
        );
        match &ch.outcome {
            Outcome::Passed => s.push_str("/>\n"),
            Outcome::Skipped(why) => {
                let _ = writeln!(s, ">\n      <skipped message=\"{}\"/>\n    </testcase>", xml(why, true));
            }
            Outcome::Failed(msg) => {
                let body = match &ch.detail {
                    Some(Detail::Metric(f)) => describe(f),
                    Some(Detail::Case { failure: Some(f), .. }) => format!(
                        "clause: {}\nexpected: {}\nobserved: {}",
                        f.clause, f.expected, f.observed
                    ),
                    _ => msg.clone(),
                };
                let _ = writeln!(
                    s,
                    ">\n      <failure message=\"{}\" type=\"regression\">{}</failure>\n    </testcase>",
                    xml(msg, true),
                    xml(&body, false)
                );
            }
        }
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}
