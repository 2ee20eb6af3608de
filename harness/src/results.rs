//! The JSON results: the single source of truth that every rendering (table,
//! JUnit, TAP, reports, the CI gate) is made from. Versioned by `schema`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Bump when a field changes meaning or is removed.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeInfo {
    pub path: String,
    pub version: String,
    /// Global flags passed through (`--runtime-arg`).
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseResult {
    pub id: String,
    pub group: String,
    pub status: Status,
    pub clauses: Vec<String>,
    pub duration_ms: u64,
    /// One line: the failure (`[clause] expected ..., observed ...`) or the
    /// skip reason; empty for a pass.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureDetail>,
    /// Runtime operations of a failed case, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailureDetail {
    pub clause: String,
    pub expected: String,
    pub observed: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Catalog clauses cited by at least one case that ran (not skipped).
    pub clauses_covered: usize,
    /// Catalog clauses observable by a black-box test.
    pub clauses_total: usize,
    /// The same two counts for MUST clauses alone.
    pub must_covered: usize,
    pub must_total: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub schema: u32,
    pub harness_version: String,
    pub runtime: RuntimeInfo,
    pub host: serde_json::Value,
    pub started_at: String,
    /// The command line that produced these results (absent in files
    /// written before it was recorded).
    #[serde(default)]
    pub command: Vec<String>,
    pub duration_ms: u64,
    pub cases: Vec<CaseResult>,
    pub summary: Summary,
}

impl Results {
    /// Counts and coverage from the cases, against the clause catalog.
    pub fn summarize(cases: &[CaseResult], catalog: &specs::Catalog) -> Summary {
        let mut s = Summary::default();
        let mut covered: BTreeSet<&str> = BTreeSet::new();
        for c in cases {
            match c.status {
                Status::Passed => s.passed += 1,
                Status::Failed => s.failed += 1,
                Status::Skipped => s.skipped += 1,
            }
            if c.status != Status::Skipped {
                covered.extend(c.clauses.iter().map(String::as_str));
            }
        }
        for cl in catalog.observable() {
            let must = cl.level == specs::Level::Must;
            s.clauses_total += 1;
            s.must_total += usize::from(must);
            if covered.contains(cl.id.as_str()) {
                s.clauses_covered += 1;
                s.must_covered += usize::from(must);
            }
        }
        s
    }

    /// Per group: (passed, failed, skipped), in group order of appearance.
    pub fn by_group(&self) -> Vec<(String, [usize; 3])> {
        let mut order: Vec<String> = Vec::new();
        let mut m: BTreeMap<String, [usize; 3]> = BTreeMap::new();
        for c in &self.cases {
            if !m.contains_key(&c.group) {
                order.push(c.group.clone());
            }
            let e = m.entry(c.group.clone()).or_default();
            e[match c.status {
                Status::Passed => 0,
                Status::Failed => 1,
                Status::Skipped => 2,
            }] += 1;
        }
        order
            .into_iter()
            .map(|g| {
                let v = m[&g];
                (g, v)
            })
            .collect()
    }

    /// The exit code the CLI returns: 0 all passed or skipped, 1 a failure.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.summary.failed > 0)
    }
}
