//! The gate over `harness conform` results: a case that passed in the
//! baseline and fails now is a regression; every other change is a note.

use std::collections::HashMap;

use super::{Detail, Outcome, Pair, Verdict};
use crate::results::{CaseResult, Results, Status};

/// `[clause] expected ..., observed ...`, else the case's message.
fn failure_text(c: &CaseResult) -> String {
    match &c.failure {
        Some(f) => format!("[{}] expected {}, observed {}", f.clause, f.expected, f.observed),
        None => c.message.clone(),
    }
}

/// The checks and notes of one runtime pair (a conform file has one).
pub(super) fn compare(b: &Results, n: &Results, pair: &Pair, v: &mut Verdict) {
    let now: HashMap<&str, &CaseResult> = n.cases.iter().map(|c| (c.id.as_str(), c)).collect();
    for was in &b.cases {
        let id = was.id.as_str();
        let Some(c) = now.get(id) else {
            v.note(
                id,
                pair,
                "in the baseline, not in the new results (removed, or left out with --only or --skip)".into(),
            );
            continue;
        };
        let outcome = match (was.status, c.status) {
            (Status::Passed, Status::Failed) => {
                Outcome::Failed(format!("{id}: passed in the baseline, fails now: {}", failure_text(c)))
            }
            (Status::Passed, Status::Skipped) => {
                let why = format!("passed in the baseline, skipped now: {}", c.message);
                v.note(id, pair, why.clone());
                Outcome::Skipped(why)
            }
            (Status::Failed, Status::Failed) => {
                v.note(
                    id,
                    pair,
                    format!("fails in both (not a regression): {}", failure_text(c)),
                );
                Outcome::Passed
            }
            (Status::Failed, Status::Passed) => {
                v.note(id, pair, "fixed: failed in the baseline, passes now".into());
                Outcome::Passed
            }
            (Status::Skipped, Status::Failed) => {
                let why = format!(
                    "skipped in the baseline, so not compared; fails now: {}",
                    failure_text(c)
                );
                v.note(id, pair, why.clone());
                Outcome::Skipped(why)
            }
            (Status::Passed | Status::Skipped, Status::Passed) => Outcome::Passed,
            (Status::Failed, Status::Skipped) => {
                Outcome::Skipped(format!("failed in the baseline, skipped now: {}", c.message))
            }
            (Status::Skipped, Status::Skipped) => Outcome::Skipped(format!("skipped in both: {}", c.message)),
        };
        let detail = Detail::Case {
            was: was.status,
            now: c.status,
            failure: c.failure.clone(),
        };
        v.check(id, pair, outcome, Some(detail));
    }
    let before: HashMap<&str, ()> = b.cases.iter().map(|c| (c.id.as_str(), ())).collect();
    for c in n.cases.iter().filter(|c| !before.contains_key(c.id.as_str())) {
        let status = match c.status {
            Status::Passed => "passes".to_string(),
            Status::Failed => format!("fails: {}", failure_text(c)),
            Status::Skipped => format!("skipped: {}", c.message),
        };
        v.note(&c.id, pair, format!("new case, not in the baseline; {status}"));
    }
}
