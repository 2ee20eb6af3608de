//! A conformance case is data plus a check: an id `group::case`, the catalog
//! clauses it enforces, what it needs from the host and the runtime, and the
//! function that drives the runtime and judges what it saw.

use std::fmt;

use crate::ctx::Ctx;

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The runtime departed from the clause.
    Fail(Failure),
    /// The case could not be judged here, and why.
    Skip(String),
}

/// What was expected, what was seen, and which clause says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub clause: String,
    pub expected: String,
    pub observed: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] expected {}, observed {}",
            self.clause, self.expected, self.observed
        )
    }
}

/// `Ok(())` is a pass.
pub type CaseResult = Result<(), Verdict>;

/// A failure of `clause`: the case-writer's main tool.
pub fn fail(clause: &str, expected: impl fmt::Display, observed: impl fmt::Display) -> Verdict {
    Verdict::Fail(Failure {
        clause: clause.to_string(),
        expected: expected.to_string(),
        observed: observed.to_string(),
    })
}

pub fn skip(reason: impl Into<String>) -> Verdict {
    Verdict::Skip(reason.into())
}

/// Passes when `ok`, else fails `clause`.
pub fn check(ok: bool, clause: &str, expected: impl fmt::Display, observed: impl fmt::Display) -> CaseResult {
    if ok {
        Ok(())
    } else {
        Err(fail(clause, expected, observed))
    }
}

/// Passes when `expected == observed`, naming `what` in the failure.
pub fn check_eq<T: PartialEq + fmt::Debug>(clause: &str, what: &str, expected: T, observed: T) -> CaseResult {
    if expected == observed {
        Ok(())
    } else {
        Err(fail(
            clause,
            format!("{what} = {expected:?}"),
            format!("{what} = {observed:?}"),
        ))
    }
}

/// A precondition a case has on the host or the runtime; unmet, the case is
/// skipped with the reason, before it creates anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// /proc/self/ns/<name> exists (e.g. "time", "cgroup").
    Namespace(&'static str),
    /// A cgroup controller is available, on v1 or v2.
    CgroupController(&'static str),
    /// The unified (v2) hierarchy is mounted (hybrid or pure v2).
    CgroupV2,
    /// The kernel supports seccomp filters.
    Seccomp,
    /// The kernel supports SECCOMP_RET_USER_NOTIF.
    SeccompNotify,
    /// A file exists on the host (a sysctl, a device, a kernel interface).
    HostPath(&'static str),
    /// The runtime's `features` output does not deny this (a JSON pointer
    /// into the features document whose value must not be `false`).
    Feature(&'static str),
    /// The harness runs with CAP_SYS_RESOURCE (raising hard rlimits, lowering
    /// oom_score_adj below the parent's).
    CapSysResource,
    /// Something a runtime may change by design, and declare so: the case
    /// is skipped, with the runtime's reason, when its `features`
    /// annotations hold `org.ociharness.by-design.<key>`. Keys: `host-pid`
    /// (the state's pid is a host process standing for a container that runs
    /// elsewhere), `host-cgroup` (the container's cgroups are not in the
    /// host's hierarchy), `host-files` (the container's writes and mounts do
    /// not reach host paths), `host-namespaces` (the container's namespaces
    /// are not the host kernel's), `host-kernel` (the host's kernel log does
    /// not see the container's kernel events).
    Unchanged(&'static str),
}

/// The `features` annotation with which a runtime declares `key` changed by
/// design (see [`Need::Unchanged`]).
pub fn by_design_annotation(key: &str) -> String {
    format!("org.ociharness.by-design.{key}")
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Need::Namespace(n) => write!(f, "{n} namespace"),
            Need::CgroupController(c) => write!(f, "cgroup controller {c}"),
            Need::CgroupV2 => write!(f, "cgroup v2"),
            Need::Seccomp => write!(f, "seccomp"),
            Need::SeccompNotify => write!(f, "seccomp user notification"),
            Need::HostPath(p) => write!(f, "host path {p}"),
            Need::Feature(p) => write!(f, "runtime feature {p}"),
            Need::CapSysResource => write!(f, "CAP_SYS_RESOURCE"),
            Need::Unchanged(k) => write!(f, "{k} as the host has it (not changed by design)"),
        }
    }
}

/// One case of the suite.
#[derive(Clone, Copy)]
pub struct Case {
    /// `group::case`.
    pub id: &'static str,
    /// Catalog ids (see `specs/catalog.toml`) this case enforces.
    pub clauses: &'static [&'static str],
    pub needs: &'static [Need],
    /// One line: what the case checks.
    pub summary: &'static str,
    pub run: fn(&mut Ctx) -> CaseResult,
}

impl Case {
    pub fn group(&self) -> &'static str {
        self.id.split("::").next().unwrap_or(self.id)
    }

    pub fn name(&self) -> &'static str {
        self.id.split("::").nth(1).unwrap_or(self.id)
    }
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case")
            .field("id", &self.id)
            .field("clauses", &self.clauses)
            .field("needs", &self.needs)
            .finish()
    }
}
