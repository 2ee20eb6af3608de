//! Runs a selection of cases against one runtime, in parallel, each in its
//! own directory and state root, with a leak sweep after every case.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::case::{Case, Need, Verdict};
use crate::ctx::{Ctx, Shared};
use crate::host::Host;
use crate::results::{self, CaseResult, FailureDetail, Results, Status};
use crate::runtime::Runtime;

/// The clause a leak is charged to: deleting a container must remove what
/// its creation made.
pub const LEAK_CLAUSE: &str = "runtime.delete.remove-resources";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("work directory {path}: {source}")]
    Workdir { path: PathBuf, source: std::io::Error },
    #[error("probe {path}: {reason}")]
    Probe { path: PathBuf, reason: String },
}

#[derive(Debug, Clone)]
pub struct Options {
    pub jobs: usize,
    /// Where case directories go (a fresh directory is made inside).
    pub workdir: PathBuf,
    /// Per runtime operation and per container wait.
    pub timeout: Duration,
    /// Recorded in the results: the command line that made them.
    pub command: Vec<String>,
}

/// What the progress callback is told.
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    pub done: usize,
    pub total: usize,
    pub last: &'a CaseResult,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether ^C, SIGTERM or SIGHUP arrived since the handler was installed.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// ^C and SIGTERM stop taking new cases; running ones still clean up.
pub fn install_interrupt_handler() {
    let handler: extern "C" fn(libc::c_int) = on_interrupt;
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; the function pointer lives for the program.
        unsafe { libc::signal(sig, handler as libc::sighandler_t) };
    }
}

/// Why a case cannot run here, or `None`.
pub fn unmet_need(needs: &[Need], host: &Host, features: Option<&serde_json::Value>) -> Option<String> {
    for n in needs {
        let ok = match n {
            Need::Namespace(ns) => host.namespaces.iter().any(|h| h == ns),
            Need::CgroupController(c) => host.has_controller(c),
            Need::CgroupV2 => host.cgroup_v2.is_some(),
            Need::Seccomp => host.seccomp,
            Need::SeccompNotify => host.seccomp_notify,
            Need::HostPath(p) => Path::new(p).exists(),
            Need::CapSysResource => host.cap_sys_resource,
            Need::Feature(ptr) => {
                if let Some(v) = features.and_then(|f| f.pointer(ptr)) {
                    if v == &serde_json::Value::Bool(false) {
                        return Some(format!("the runtime's features say {ptr} is false"));
                    }
                }
                true
            }
            Need::Unchanged(key) => {
                let ann = crate::case::by_design_annotation(key);
                if let Some(why) = features.and_then(|f| f.pointer(&format!("/annotations/{ann}"))) {
                    return Some(format!(
                        "by design in this runtime ({ann}): {}",
                        why.as_str().unwrap_or("declared in its features")
                    ));
                }
                true
            }
        };
        if !ok {
            return Some(format!("needs {n}, which this host lacks"));
        }
    }
    None
}

/// A short token unique to this run, for directory names and id prefixes.
pub fn token() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    format!("{:x}{:x}", std::process::id() & 0xfff, (t & 0xffffff) as u32)
}

/// The current UTC time as RFC 3339 (`2026-11-29T09:20:15Z`).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// The runtime's `features` document, if it has the command.
pub fn features(runtime: &Runtime, root: &Path) -> Option<serde_json::Value> {
    let out = runtime.driver(root).features().ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_str(&out.stdout).ok()
}

/// Checks that `probe` is there and is a regular file, before anything is
/// made.
pub fn check_probe(probe: &Path) -> Result<(), Error> {
    let meta = std::fs::metadata(probe).map_err(|e| Error::Probe {
        path: probe.to_path_buf(),
        reason: e.to_string(),
    })?;
    if !meta.is_file() {
        return Err(Error::Probe {
            path: probe.to_path_buf(),
            reason: "not a regular file".into(),
        });
    }
    Ok(())
}

/// Runs `cases` and returns the results; `progress` is called after each.
pub fn run(
    cases: &[Case],
    runtime: &Runtime,
    probe: &Path,
    opts: &Options,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Results, Error> {
    check_probe(probe)?;
    crate::reaper::start();
    install_interrupt_handler();
    let started_at = now_rfc3339();
    let start = Instant::now();
    let token = token();
    let work = opts.workdir.join(format!("oci-harness-{token}"));
    std::fs::create_dir_all(&work).map_err(|e| Error::Workdir {
        path: work.clone(),
        source: e,
    })?;
    let host = Host::detect();
    let features = features(runtime, &work.join("features-root"));
    let shared = Arc::new(Shared {
        host,
        features,
        probe: probe.to_path_buf(),
        timeout: opts.timeout,
        host_name: crate::cleanup::host_name(),
    });

    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<CaseResult>>> = Mutex::new(vec![None; cases.len()]);
    let jobs = opts.jobs.max(1).min(cases.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= cases.len() {
                    break;
                }
                let r = if INTERRUPTED.load(Ordering::SeqCst) {
                    skipped(&cases[i], "interrupted".into(), Duration::ZERO)
                } else {
                    run_one(&cases[i], i, &token, runtime, &shared, &work)
                };
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                progress(Progress {
                    done: n,
                    total: cases.len(),
                    last: &r,
                });
                slots.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
            });
        }
    });
    let _ = std::fs::remove_dir_all(&work);
    let cases: Vec<CaseResult> = slots
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect();
    let summary = Results::summarize(&cases, specs::catalog());
    Ok(Results {
        schema: results::SCHEMA,
        harness_version: env!("CARGO_PKG_VERSION").to_string(),
        runtime: runtime.info(),
        host: serde_json::to_value(&shared.host).unwrap_or_default(),
        started_at,
        command: opts.command.clone(),
        duration_ms: start.elapsed().as_millis() as u64,
        cases,
        summary,
    })
}

/// Runs `cases`, then once more the failed ones that `expected` does not
/// excuse (two cases read the kernel log, whose rate limit the host
/// shares: a failure must repeat to count). Returns the first run's results
/// and the cases that failed both times, as `id: message`.
pub fn run_confirming_failures(
    cases: &[Case],
    runtime: &Runtime,
    probe: &Path,
    opts: &Options,
    expected: &dyn Fn(&str) -> bool,
) -> Result<(Results, Vec<String>), Error> {
    let r = run(cases, runtime, probe, opts, &|_| {})?;
    let failed: Vec<&str> = r
        .cases
        .iter()
        .filter(|c| c.status == Status::Failed && !expected(&c.id))
        .map(|c| c.id.as_str())
        .collect();
    if failed.is_empty() {
        return Ok((r, Vec::new()));
    }
    let again: Vec<Case> = cases.iter().filter(|c| failed.contains(&c.id)).cloned().collect();
    let r2 = run(&again, runtime, probe, opts, &|_| {})?;
    let still = r2
        .cases
        .iter()
        .filter(|c| c.status == Status::Failed)
        .map(|c| format!("{}: {}", c.id, c.message))
        .collect();
    Ok((r, still))
}

fn skipped(case: &Case, reason: String, d: Duration) -> CaseResult {
    CaseResult {
        id: case.id.to_string(),
        group: case.group().to_string(),
        status: Status::Skipped,
        clauses: case.clauses.iter().map(|c| c.to_string()).collect(),
        duration_ms: d.as_millis() as u64,
        message: reason,
        failure: None,
        log: Vec::new(),
    }
}

fn run_one(case: &Case, index: usize, token: &str, runtime: &Runtime, shared: &Arc<Shared>, work: &Path) -> CaseResult {
    let start = Instant::now();
    if let Some(reason) = unmet_need(case.needs, &shared.host, shared.features.as_ref()) {
        return skipped(case, reason, start.elapsed());
    }
    let dir = work.join(format!("{index}"));
    let root = dir.join("root");
    if let Err(e) = std::fs::create_dir_all(&root) {
        let mut r = skipped(case, String::new(), start.elapsed());
        r.status = Status::Failed;
        r.message = format!("[harness] cannot create {}: {e}", root.display());
        return r;
    }
    let prefix = format!("oh{token}c{index}");
    let clause = case.clauses.first().copied().unwrap_or("harness");
    let mut ctx = Ctx::new(
        case.id,
        clause,
        shared.clone(),
        runtime.driver(&root),
        dir.clone(),
        prefix,
    );
    let outcome = catch_unwind(AssertUnwindSafe(|| (case.run)(&mut ctx)));
    let leaks: Vec<String> = ctx.teardown().iter().map(ToString::to_string).collect();
    let verdict = judge(
        outcome,
        &leaks,
        &Leak {
            clause: LEAK_CLAUSE,
            expected: "nothing left after delete",
            label: "left behind",
        },
    );
    let _ = std::fs::remove_dir_all(&dir);
    let log = ctx.log().to_vec();
    record(skipped(case, String::new(), start.elapsed()), verdict, log)
}

/// How a suite words what a case left behind.
pub(crate) struct Leak<'a> {
    /// The clause a leftover fails.
    pub clause: &'a str,
    pub expected: &'a str,
    /// Put before the list: "left behind: ...".
    pub label: &'a str,
}

/// What a case's run and its teardown add up to, in every suite: a panic is
/// the harness's failure; leftovers fail the case under `leak`, or join the
/// failure it already had. `None` is a pass.
pub(crate) fn judge(
    outcome: std::thread::Result<crate::case::CaseResult>,
    leaks: &[String],
    leak: &Leak<'_>,
) -> Option<Verdict> {
    let mut verdict = match outcome {
        Ok(r) => r.err(),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Some(crate::case::fail(
                "harness",
                "the case to run to its end",
                format!("panic: {msg}"),
            ))
        }
    };
    if !leaks.is_empty() {
        let list = leaks.join(", ");
        verdict = Some(match verdict {
            None | Some(Verdict::Skip(_)) => {
                crate::case::fail(leak.clause, leak.expected, format!("{}: {list}", leak.label))
            }
            Some(Verdict::Fail(mut f)) => {
                f.observed = format!("{}; and {}: {list}", f.observed, leak.label);
                Verdict::Fail(f)
            }
        });
    }
    verdict
}

/// `r` (a case's result, not yet judged) with `verdict` written into it; a
/// failure keeps the case's log.
pub(crate) fn record(mut r: CaseResult, verdict: Option<Verdict>, log: Vec<String>) -> CaseResult {
    match verdict {
        None => r.status = Status::Passed,
        Some(Verdict::Skip(reason)) => r.message = reason,
        Some(Verdict::Fail(f)) => {
            r.status = Status::Failed;
            r.message = f.to_string();
            r.failure = Some(FailureDetail {
                clause: f.clause,
                expected: f.expected,
                observed: f.observed,
            });
            r.log = log;
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }

    #[test]
    fn feature_false_skips_with_the_pointer() {
        let host = Host::detect();
        let f = serde_json::json!({"linux": {"seccomp": {"enabled": false}}});
        let r = unmet_need(&[Need::Feature("/linux/seccomp/enabled")], &host, Some(&f));
        assert!(r.unwrap().contains("/linux/seccomp/enabled"));
        assert_eq!(unmet_need(&[Need::Feature("/linux/absent")], &host, Some(&f)), None);
    }

    #[test]
    fn missing_host_path_skips_naming_it() {
        let host = Host::detect();
        let r = unmet_need(&[Need::HostPath("/no/such/path")], &host, None).unwrap();
        let vm = serde_json::json!({"annotations": {"org.ociharness.by-design.host-pid": "the pid is the shim's"}});
        let why = unmet_need(&[Need::Unchanged("host-pid")], &host, Some(&vm)).unwrap();
        assert!(
            why.contains("by design") && why.contains("the pid is the shim's"),
            "{why}"
        );
        assert_eq!(unmet_need(&[Need::Unchanged("host-cgroup")], &host, Some(&vm)), None);
        assert_eq!(unmet_need(&[Need::Unchanged("host-pid")], &host, None), None);
        assert!(r.contains("/no/such/path"), "{r}");
    }
}
