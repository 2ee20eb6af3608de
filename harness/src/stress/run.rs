//! `harness stress`: many container lifecycles (create, start, the probe's
//! exit, delete) in parallel workers sharing one state root, for a count or
//! a time, with leak accounting around the whole run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::leaks::{self, Leftover, Scope, Snapshot};
use crate::bundle::{self, Bundle, SpecExt};
use crate::cleanup::MARKER;
use crate::results::RuntimeInfo;
use crate::runtime::{CreateOpts, Driver, Runtime, State};

/// Bump when a field of [`Report`] changes meaning or is removed.
pub const SCHEMA: u32 = 1;

/// Examples kept per error kind.
const EXAMPLES: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("work directory {path}: {source}")]
    Workdir { path: PathBuf, source: std::io::Error },
    #[error("bundle for worker {worker}: {source}")]
    Bundle { worker: usize, source: bundle::Error },
    #[error(transparent)]
    Probe(#[from] crate::runner::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// When the run stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// This many lifecycles in all.
    Count(u64),
    /// Lifecycles begun until this much time has passed.
    Duration(Duration),
}

#[derive(Debug, Clone)]
pub struct Options {
    pub parallel: usize,
    pub limit: Limit,
    pub workdir: PathBuf,
    /// Per runtime operation, and for the container's exit.
    pub timeout: Duration,
    pub command: Vec<String>,
}

/// Latency of one verb over the run, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub n: usize,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// `None` for no samples.
    pub fn of(samples_ms: &[f64]) -> Option<Latency> {
        if samples_ms.is_empty() {
            return None;
        }
        let mut s = samples_ms.to_vec();
        s.sort_by(|a, b| a.total_cmp(b));
        let q = |p| crate::stats::quantile(&s, p);
        Some(Latency {
            n: s.len(),
            mean: s.iter().sum::<f64>() / s.len() as f64,
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            max: s[s.len() - 1],
        })
    }
}

/// Failures of one kind (`create: exit 1`, `start: timed out`...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorKind {
    pub kind: String,
    pub count: u64,
    /// The first few, as `id: reason`.
    pub examples: Vec<String>,
}

/// The results of one stress run: the source of every rendering.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema: u32,
    pub harness_version: String,
    pub runtime: RuntimeInfo,
    pub started_at: String,
    pub command: Vec<String>,
    pub parallel: usize,
    /// The count asked for, or the time asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_limit_s: Option<f64>,
    /// Lifecycles begun, and how they ended.
    pub lifecycles: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub duration_ms: u64,
    /// Lifecycles completed per second of the run.
    pub throughput_per_s: f64,
    /// Per verb (`create`, `start`, `exit` (start to the probe's exit),
    /// `delete`, `lifecycle`), in milliseconds.
    pub latency_ms: BTreeMap<String, Latency>,
    pub errors: Vec<ErrorKind>,
    /// What the run left behind (before vs after), each named.
    pub leaks: Vec<Leftover>,
    /// Whether the runtime's state root was empty at the end.
    pub state_root_empty: bool,
}

impl Report {
    /// 0 clean, 1 an error or a leak.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.failed > 0 || !self.leaks.is_empty() || !self.state_root_empty)
    }
}

/// What one lifecycle measured.
#[derive(Debug, Default)]
pub(crate) struct Timings {
    pub create: f64,
    pub start: f64,
    pub exit: f64,
    pub delete: f64,
    pub total: f64,
}

/// A lifecycle that went wrong: the kind it is counted under and the detail.
#[derive(Debug)]
pub(crate) struct Failure {
    pub kind: String,
    pub detail: String,
}

fn failure(verb: &str, what: impl std::fmt::Display, detail: impl Into<String>) -> Failure {
    Failure {
        kind: format!("{verb}: {what}"),
        detail: detail.into(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Reads the status the runtime reports for `id`.
fn status_of(driver: &Driver, id: &str) -> Option<String> {
    let o = driver.state(id).ok()?;
    State::parse(&o.stdout).ok()?.status
}

/// create, start, the probe's exit, delete; on a failure the container is
/// killed and force-deleted, as a client would.
pub(crate) fn lifecycle(
    driver: &Driver,
    b: &Bundle,
    dir: &Path,
    id: &str,
    timeout: Duration,
) -> std::result::Result<Timings, Failure> {
    let r = lifecycle_inner(driver, b, dir, id, timeout);
    let _ = std::fs::remove_file(dir.join(format!("{id}.pid")));
    if r.is_err() {
        let _ = driver.kill(id, "KILL", false);
        let _ = driver.delete(id, true);
    }
    r
}

fn lifecycle_inner(
    driver: &Driver,
    b: &Bundle,
    dir: &Path,
    id: &str,
    timeout: Duration,
) -> std::result::Result<Timings, Failure> {
    let t0 = Instant::now();
    let pid_file = dir.join(format!("{id}.pid"));
    let opts = CreateOpts {
        pid_file: Some(pid_file.clone()),
        ..CreateOpts::default()
    };
    let mut t = Timings::default();
    let (out, io) = driver
        .create(id, &b.dir, &opts)
        .map_err(|e| failure("create", short(&e), e.to_string()))?;
    if !out.status.success() {
        return Err(failure("create", out.status, out.reason()));
    }
    t.create = ms(out.duration);
    let out = driver
        .start(id)
        .map_err(|e| failure("start", short(&e), e.to_string()))?;
    if !out.status.success() {
        return Err(failure("start", out.status, out.reason()));
    }
    t.start = ms(out.duration);
    let started = Instant::now();
    if !io.wait_eof(timeout) {
        return Err(failure(
            "exit",
            "timed out",
            format!("probe still running after {timeout:?}"),
        ));
    }
    // The harness is the subreaper: reaping the init is what lets the
    // runtime see it stopped.
    let pid = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    if let Some(p) = pid {
        crate::reaper::wait_exit(p, timeout);
    }
    t.exit = ms(started.elapsed());
    let mut out = driver
        .delete(id, false)
        .map_err(|e| failure("delete", short(&e), e.to_string()))?;
    if !out.status.success() {
        // Only the runtime knows when it has noticed the exit: wait for
        // `stopped`, then once more.
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline && status_of(driver, id).as_deref() != Some("stopped") {
            std::thread::sleep(Duration::from_millis(5));
        }
        out = driver
            .delete(id, false)
            .map_err(|e| failure("delete", short(&e), e.to_string()))?;
        if !out.status.success() {
            return Err(failure("delete", out.status, out.reason()));
        }
    }
    t.delete = ms(out.duration);
    t.total = ms(t0.elapsed());
    Ok(t)
}

/// A driver error in a word or two, for the error kind.
fn short(e: &crate::runtime::Error) -> &'static str {
    match e {
        crate::runtime::Error::Timeout { .. } => "timed out",
        crate::runtime::Error::Spawn { .. } => "could not spawn",
        _ => "io error",
    }
}

#[derive(Default)]
struct Tally {
    samples: BTreeMap<&'static str, Vec<f64>>,
    errors: BTreeMap<String, (u64, Vec<String>)>,
    succeeded: u64,
    failed: u64,
}

/// The marker's config: `probe true`, marked so stray processes are found.
fn spec(prefix: &str) -> oci_spec::runtime::Spec {
    let mut spec = bundle::default_spec();
    spec.set_args(&[bundle::PROBE, "true"]);
    let env = spec.process_mut_or_default().env_mut().get_or_insert_with(Vec::new);
    env.push(format!("{MARKER}={prefix}"));
    spec
}

/// Runs the stress and returns its report; `progress` gets the number of
/// lifecycles finished.
pub fn run(runtime: &Runtime, probe: &Path, opts: &Options, progress: &(dyn Fn(u64) + Sync)) -> Result<Report> {
    crate::runner::check_probe(probe)?;
    crate::reaper::start();
    crate::runner::install_interrupt_handler();
    let started_at = crate::runner::now_rfc3339();
    let token = crate::runner::token();
    let prefix = format!("os{token}");
    let work = opts.workdir.join(format!("oci-stress-{token}"));
    let root = work.join("root");
    std::fs::create_dir_all(&root).map_err(|e| Error::Workdir {
        path: root.clone(),
        source: e,
    })?;
    let parallel = opts.parallel.max(1);
    let spec = spec(&prefix);
    let mut bundles = Vec::new();
    for w in 0..parallel {
        let b = Bundle::prepare(&work.join(format!("bundle-{w}")), probe)
            .and_then(|b| b.write_spec(&spec).map(|()| b))
            .map_err(|source| Error::Bundle { worker: w, source })?;
        bundles.push(b);
    }
    let mut driver = runtime.driver(&root);
    driver.env.push((MARKER.to_string(), prefix.clone()));
    let scope = Scope {
        dirs: vec![work.clone()],
        prefix: prefix.clone(),
        root: root.clone(),
        cgroup_paths: Vec::new(),
    };
    let before = Snapshot::take(&scope);

    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let tally = Mutex::new(Tally::default());
    let start = Instant::now();
    let claim = || -> Option<u64> {
        if crate::runner::interrupted() {
            return None;
        }
        match opts.limit {
            Limit::Count(n) => {
                let i = next.fetch_add(1, Ordering::SeqCst);
                (i < n).then_some(i)
            }
            Limit::Duration(d) => (start.elapsed() < d).then(|| next.fetch_add(1, Ordering::SeqCst)),
        }
    };
    std::thread::scope(|s| {
        for (w, b) in bundles.iter().enumerate() {
            let (driver, tally, done, claim, work) = (&driver, &tally, &done, &claim, &work);
            let prefix = &prefix;
            s.spawn(move || {
                while let Some(i) = claim() {
                    let id = format!("{prefix}-w{w}-{i}");
                    let r = lifecycle(driver, b, work, &id, opts.timeout);
                    let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                    match r {
                        Ok(tm) => {
                            t.succeeded += 1;
                            for (verb, v) in [
                                ("create", tm.create),
                                ("start", tm.start),
                                ("exit", tm.exit),
                                ("delete", tm.delete),
                                ("lifecycle", tm.total),
                            ] {
                                t.samples.entry(verb).or_default().push(v);
                            }
                        }
                        Err(f) => {
                            t.failed += 1;
                            let e = t.errors.entry(f.kind).or_default();
                            e.0 += 1;
                            if e.1.len() < EXAMPLES {
                                e.1.push(format!("{id}: {}", f.detail));
                            }
                        }
                    }
                    drop(t);
                    progress(done.fetch_add(1, Ordering::SeqCst) + 1);
                }
            });
        }
    });
    let elapsed = start.elapsed();
    let (_, leaks) = leaks::settle(&before, &scope, Duration::from_secs(2));
    let state_root_empty = std::fs::read_dir(&root).map(|mut d| d.next().is_none()).unwrap_or(true);
    // Leave the host as it was, whatever the runtime did.
    crate::cleanup::sweep(&prefix, &work, &root, &[]);
    let _ = std::fs::remove_dir_all(&work);

    let t = tally.into_inner().unwrap_or_else(|p| p.into_inner());
    let latency_ms = t
        .samples
        .iter()
        .filter_map(|(k, v)| Latency::of(v).map(|l| (k.to_string(), l)))
        .collect();
    let mut errors: Vec<ErrorKind> = t
        .errors
        .into_iter()
        .map(|(kind, (count, examples))| ErrorKind { kind, count, examples })
        .collect();
    errors.sort_by(|a, b| b.count.cmp(&a.count).then(a.kind.cmp(&b.kind)));
    let (count, duration_limit_s) = match opts.limit {
        Limit::Count(n) => (Some(n), None),
        Limit::Duration(d) => (None, Some(d.as_secs_f64())),
    };
    Ok(Report {
        schema: SCHEMA,
        harness_version: env!("CARGO_PKG_VERSION").to_string(),
        runtime: runtime.info(),
        started_at,
        command: opts.command.clone(),
        parallel,
        count,
        duration_limit_s,
        lifecycles: t.succeeded + t.failed,
        succeeded: t.succeeded,
        failed: t.failed,
        duration_ms: elapsed.as_millis() as u64,
        throughput_per_s: t.succeeded as f64 / elapsed.as_secs_f64().max(1e-9),
        latency_ms,
        errors,
        leaks,
        state_root_empty,
    })
}

/// The table rendering of a report.
pub fn table(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "stress: {} ({})", r.runtime.path, r.runtime.version);
    let _ = writeln!(
        s,
        "{} lifecycles at {} in parallel in {:.1}s: {} ok, {} failed; {:.1} lifecycles/s",
        r.lifecycles,
        r.parallel,
        r.duration_ms as f64 / 1000.0,
        r.succeeded,
        r.failed,
        r.throughput_per_s
    );
    let _ = writeln!(
        s,
        "\n{:<10} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "verb (ms)", "n", "mean", "p50", "p90", "p99", "max"
    );
    for verb in ["create", "start", "exit", "delete", "lifecycle"] {
        if let Some(l) = r.latency_ms.get(verb) {
            let _ = writeln!(
                s,
                "{verb:<10} {:>6} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                l.n, l.mean, l.p50, l.p90, l.p99, l.max
            );
        }
    }
    if !r.errors.is_empty() {
        let _ = writeln!(s, "\nerrors:");
        for e in &r.errors {
            let _ = writeln!(s, "  {:>5}  {}", e.count, e.kind);
            for x in &e.examples {
                let _ = writeln!(s, "         e.g. {x}");
            }
        }
    }
    if r.leaks.is_empty() && r.state_root_empty {
        let _ = writeln!(s, "\nleaks: none (state root empty)");
    } else {
        let kinds = leaks::count_by_kind(&r.leaks);
        let summary: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let _ = writeln!(s, "\nleaks: {}", summary.join(", "));
        for l in r.leaks.iter().take(20) {
            let _ = writeln!(s, "  {l}");
        }
        if r.leaks.len() > 20 {
            let _ = writeln!(s, "  ... and {} more", r.leaks.len() - 20);
        }
        if !r.state_root_empty {
            let _ = writeln!(s, "  the runtime's state root was not empty");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles_of_a_series() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let l = Latency::of(&v).unwrap();
        assert_eq!(l.n, 100);
        assert_eq!(l.max, 100.0);
        assert!((l.p50 - 50.5).abs() < 1e-9, "{l:?}");
        assert!((l.mean - 50.5).abs() < 1e-9);
        assert!(l.p90 < l.p99 && l.p99 < l.max);
        assert_eq!(Latency::of(&[]), None);
    }

    fn report() -> Report {
        Report {
            schema: SCHEMA,
            harness_version: "0".into(),
            runtime: RuntimeInfo {
                path: "/x".into(),
                version: "v".into(),
                args: vec![],
            },
            started_at: String::new(),
            command: vec![],
            parallel: 2,
            count: Some(4),
            duration_limit_s: None,
            lifecycles: 4,
            succeeded: 4,
            failed: 0,
            duration_ms: 1000,
            throughput_per_s: 4.0,
            latency_ms: BTreeMap::new(),
            errors: vec![],
            leaks: vec![],
            state_root_empty: true,
        }
    }

    #[test]
    fn exit_code_counts_errors_leaks_and_state() {
        let mut r = report();
        assert_eq!(r.exit_code(), 0);
        r.state_root_empty = false;
        assert_eq!(r.exit_code(), 1);
        r = report();
        r.failed = 1;
        assert_eq!(r.exit_code(), 1);
        r = report();
        r.leaks.push(Leftover {
            kind: "mount".into(),
            what: "/x".into(),
        });
        assert_eq!(r.exit_code(), 1);
        assert!(table(&r).contains("leaks: 1 mount"), "{}", table(&r));
    }

    #[test]
    fn report_round_trips_through_json() {
        let r = report();
        let text = serde_json::to_string(&r).unwrap();
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back.count, Some(4));
        assert!(!text.contains("duration_limit_s"));
    }
}
