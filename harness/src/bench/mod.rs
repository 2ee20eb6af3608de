//! `harness bench`: how fast runtimes start containers and what their
//! isolation costs the workload inside, measured so that runtimes can be
//! compared on a noisy machine: the runtimes take turns, in orders where each
//! goes after each other equally often, so drift and one runtime's
//! aftermath hit all alike, every figure keeps its raw samples, and the
//! summaries are order statistics with bootstrap intervals.
//!
//! Four phases, each in its own module: `lifecycle` (each verb timed, and
//! `run` end to end), `density` (many containers at once, and what each
//! costs in memory), `overhead` (the probe's workloads in a container
//! against the same on the host), and `cri` (pods and containers through
//! CRI endpoints rather than OCI runtimes). `timed` is the precise
//! invocation the first three share.

mod cri;
mod density;
mod lifecycle;
mod overhead;
pub mod results;
pub mod timed;
mod warm;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::Spec;

use crate::bundle::{self, Bundle, SpecExt};
use crate::cleanup::{self, MARKER};
use crate::runtime::{Driver, Runtime};
pub use cri::{CriOptions, CriTarget, OPS as CRI_OPS, POD_START as CRI_POD_START};
pub use overhead::{workload as overhead_workload, Place, Workload, WORKLOADS};
use results::{BenchResults, Leftover, Machine, Metric, Missing, Phase, RuntimeEntry, Settings, Unit};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The probe or the work directory, as for `conform`.
    #[error(transparent)]
    Setup(#[from] crate::runner::Error),
    #[error("bundle for {runtime}: {source}")]
    Bundle { runtime: String, source: bundle::Error },
}

/// A runtime to measure, under the name its figures carry.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub runtime: Runtime,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub phases: Vec<Phase>,
    /// Measured lifecycle iterations per runtime, after `warmup` unmeasured ones.
    pub iterations: usize,
    pub warmup: usize,
    /// Containers started at once in a density round.
    pub density: usize,
    pub density_rounds: usize,
    pub workloads: Vec<Workload>,
    pub overhead_rounds: usize,
    /// Batches per workload run, and the time each batch aims at.
    pub batches: usize,
    pub batch_ms: u64,
    pub probe: PathBuf,
    pub workdir: PathBuf,
    /// Recorded in the results: the command line that made them.
    pub command: Vec<String>,
    pub hybrid_as_v1: bool,
    /// The CRI endpoints of the `cri` phase.
    pub cri: Option<CriOptions>,
}

/// A directory or file under the work directory could not be made.
pub(crate) fn workdir_error(path: &Path, source: std::io::Error) -> Error {
    Error::Setup(crate::runner::Error::Workdir {
        path: path.to_path_buf(),
        source,
    })
}

/// Progress after each step: steps done, steps in all, what just ran.
#[derive(Debug, Clone)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub what: String,
}

/// Consecutive failures after which a runtime is no longer measured in a
/// phase (a runtime that cannot create containers would otherwise spend
/// every iteration's timeout).
const GIVE_UP_AFTER: usize = 3;

/// How long a turn's leftovers get to go away before the next turn.
const QUIESCE: Duration = Duration::from_secs(5);

/// One runtime inside a run: its driver (private `--root`, marked
/// environment), its directory, and the prefix its container ids and
/// cgroups carry so that anything left behind can be found.
pub(crate) struct Subject {
    pub name: String,
    pub driver: Driver,
    pub dir: PathBuf,
    pub prefix: String,
    /// Where the runtime's stderr goes (a file: a container that inherits
    /// it blocks no one).
    pub err_file: PathBuf,
    seq: u64,
}

impl Subject {
    /// A fresh container id carrying the prefix.
    pub fn id(&mut self, tag: &str) -> String {
        self.seq += 1;
        format!("{}-{tag}{}", self.prefix, self.seq)
    }

    /// The default config with the marker, running `args`.
    pub fn spec(&self, args: &[&str]) -> Spec {
        let mut spec = bundle::default_spec();
        spec.set_args(args);
        let env = spec.process_mut_or_default().env_mut().get_or_insert_with(Vec::new);
        env.push(format!("{MARKER}={}", self.prefix));
        spec
    }

    /// A bundle under this runtime's directory.
    pub fn bundle(&self, name: &str, spec: &Spec, probe: &Path) -> Result<Bundle, Error> {
        let b = Bundle::prepare(&self.dir.join(name), probe).map_err(|source| Error::Bundle {
            runtime: self.name.clone(),
            source,
        })?;
        b.write_spec(spec).map_err(|source| Error::Bundle {
            runtime: self.name.clone(),
            source,
        })?;
        Ok(b)
    }

    /// Kills and force-deletes `id`, whatever state it is in; for the
    /// paths where something already went wrong.
    pub fn discard(&self, id: &str) {
        let _ = self.driver.delete(id, true);
    }
}

/// What a run collects: samples keyed by (metric, runtime), in the order
/// first seen, and what could not be measured.
pub(crate) struct Recorder {
    metrics: Vec<Metric>,
    index: HashMap<(String, String), usize>,
    pub missing: Vec<Missing>,
    pub leftovers: Vec<Leftover>,
    /// Processes that outlived a `quiesce`.
    lingering: HashSet<i32>,
    progress_done: usize,
    progress_total: usize,
    progress: Box<dyn FnMut(Progress)>,
    pub options: Options,
    warmer: warm::CgroupWarmer,
}

impl Recorder {
    pub fn push(&mut self, id: &str, phase: Phase, runtime: &str, unit: Unit, what: &str, sample: f64) {
        let key = (id.to_string(), runtime.to_string());
        let i = *self.index.entry(key).or_insert_with(|| {
            self.metrics.push(Metric {
                id: id.to_string(),
                phase,
                runtime: runtime.to_string(),
                unit,
                what: what.to_string(),
                samples: Vec::new(),
                summary: None,
                ratio: None,
            });
            self.metrics.len() - 1
        });
        self.metrics[i].samples.push(sample);
    }

    pub fn missing(&mut self, runtime: &str, phase: Phase, what: impl Into<String>, reason: impl Into<String>) {
        self.missing.push(Missing {
            runtime: runtime.to_string(),
            phase,
            what: what.into(),
            reason: reason.into(),
        });
    }

    /// Waits (bounded) until no process of the previous turn is left: a
    /// runtime's teardown can go on after its `delete` returned (gVisor's
    /// sandbox and gofer exit in the background), and the next runtime's
    /// figures must not pay for it. Zombies among our children are reaped on
    /// the way. A process that outlives the wait is not waited for again
    /// (the final sweep deals with it).
    pub fn quiesce(&mut self) {
        let deadline = Instant::now() + QUIESCE;
        loop {
            let left: Vec<i32> = descendants().difference(&self.lingering).copied().collect();
            if left.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                self.lingering.extend(left);
                return;
            }
            for pid in left {
                crate::reaper::wait_exit(pid, Duration::ZERO);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Puts the kernel's cgroup migration lock in its busy state, right
    /// before a runtime's turn (see `warm`).
    pub fn warm(&self) {
        self.warmer.warm();
    }

    pub fn step(&mut self, what: String) {
        self.progress_done += 1;
        let p = Progress {
            done: self.progress_done,
            total: self.progress_total,
            what,
        };
        (self.progress)(p);
    }
}

/// Whether ^C (or SIGTERM) asked the run to stop.
pub fn interrupted() -> bool {
    crate::runner::interrupted()
}

fn machine() -> Machine {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let host = crate::host::Host::detect();
    Machine {
        kernel: host.kernel.clone(),
        cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        memory_kib: meminfo_kib(&meminfo, "MemTotal").unwrap_or(0),
        cgroup_mode: serde_json::to_value(host.cgroup_mode)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    }
}

/// A `Key:   N kB` line of /proc/meminfo, in KiB.
pub(crate) fn meminfo_kib(meminfo: &str, key: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn steps(o: &Options, runtimes: usize) -> usize {
    let mut n = 0;
    for p in &o.phases {
        n += match p {
            Phase::Lifecycle => (o.warmup + o.iterations) * runtimes,
            Phase::Density => o.density_rounds * runtimes,
            Phase::Overhead => o.overhead_rounds * o.workloads.len() * (runtimes + 1),
            Phase::Harness => 0,
            Phase::Cri => o.cri.as_ref().map_or(0, |c| cri::steps(c, o.warmup, o.iterations)),
        };
    }
    n
}

/// Measures `targets` as `opts` says. What fails midway is recorded in the
/// results' `missing`; an interrupt ends the run early with what was
/// measured. Every container is deleted and swept for before returning.
pub fn run(targets: &[Target], opts: &Options, progress: Box<dyn FnMut(Progress)>) -> Result<BenchResults, Error> {
    crate::runner::check_probe(&opts.probe)?;
    crate::reaper::start();
    crate::runner::install_interrupt_handler();
    let started_at = crate::runner::now_rfc3339();
    let start = Instant::now();
    let token = crate::runner::token();
    let work = opts.workdir.join(format!("oci-bench-{token}"));
    let mkdir = |p: &Path| std::fs::create_dir_all(p).map_err(|source| workdir_error(p, source));
    mkdir(&work)?;
    let mut subjects = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let dir = work.join(format!("rt{i}"));
        mkdir(&dir.join("root"))?;
        // The prefix ends in `x` so that runtime 1's does not match runtime 10's.
        let prefix = format!("hb{token}r{i}x");
        let mut driver = t.runtime.driver(&dir.join("root"));
        driver.env.push((MARKER.to_string(), prefix.clone()));
        subjects.push(Subject {
            name: t.name.clone(),
            driver,
            err_file: dir.join("stderr"),
            dir,
            prefix,
            seq: 0,
        });
    }
    let mut rec = Recorder {
        metrics: Vec::new(),
        index: HashMap::new(),
        missing: Vec::new(),
        leftovers: Vec::new(),
        lingering: HashSet::new(),
        progress_done: 0,
        progress_total: steps(opts, targets.len()),
        progress,
        options: opts.clone(),
        warmer: warm::CgroupWarmer::new(&crate::host::Host::detect(), &format!("hb{token}warm"), &opts.probe),
    };
    let mut endpoints = Vec::new();
    let result = (|| -> Result<(), Error> {
        for phase in &opts.phases {
            if interrupted() {
                break;
            }
            match phase {
                Phase::Lifecycle => lifecycle::run(&mut subjects, &mut rec, &work)?,
                Phase::Density => density::run(&mut subjects, &mut rec)?,
                Phase::Overhead => overhead::run(&mut subjects, &mut rec, &work)?,
                Phase::Cri => endpoints = cri::run(&mut rec, &work)?,
                Phase::Harness => {}
            }
            sweep(&subjects, &mut rec);
        }
        Ok(())
    })();
    sweep(&subjects, &mut rec);
    let _ = std::fs::remove_dir_all(&work);
    result?;
    let was_interrupted = interrupted();
    if was_interrupted {
        rec.missing("*", Phase::Harness, "the rest of the run", "interrupted");
    }
    let cri_settings = opts
        .cri
        .as_ref()
        .filter(|_| opts.phases.contains(&Phase::Cri))
        .map(|c| results::CriSettings {
            endpoints: c.targets.iter().map(|t| t.name.clone()).collect(),
            runtime_handler: c.handler.clone(),
            parallel_pods: c.parallel_pods,
            parallel_rounds: c.parallel_rounds,
            host_network: c.host_network,
        });
    let runtimes = targets
        .iter()
        .map(|t| RuntimeEntry {
            name: t.name.clone(),
            path: t.runtime.path.display().to_string(),
            args: t.runtime.global_args.clone(),
            version: t.runtime.version(),
        })
        .chain(endpoints)
        .collect();
    let mut results = BenchResults {
        schema: results::SCHEMA,
        kind: "bench".into(),
        harness_version: env!("CARGO_PKG_VERSION").to_string(),
        command: opts.command.clone(),
        started_at,
        duration_ms: start.elapsed().as_millis() as u64,
        machine: machine(),
        settings: Settings {
            iterations: opts.iterations,
            warmup: opts.warmup,
            density: opts.density,
            density_rounds: opts.density_rounds,
            overhead_rounds: opts.overhead_rounds,
            batches: opts.batches,
            batch_ms: opts.batch_ms,
            workloads: opts.workloads.iter().map(|w| w.name.to_string()).collect(),
            phases: opts.phases.clone(),
            hybrid_as_v1: opts.hybrid_as_v1,
            cgroup_warmup: rec.warmer.active(),
            cri: cri_settings,
        },
        runtimes,
        metrics: rec.metrics,
        missing: rec.missing,
        leftovers: rec.leftovers,
        interrupted: was_interrupted,
    };
    results.finalize();
    Ok(results)
}

/// Removes whatever the runtimes left (processes, mounts, cgroups, state)
/// and records it against the runtime that made it.
fn sweep(subjects: &[Subject], rec: &mut Recorder) {
    for s in subjects {
        for leak in cleanup::sweep(&s.prefix, &s.dir, &s.driver.root, &[]) {
            let l = Leftover {
                runtime: s.name.clone(),
                kind: leak.kind.to_string(),
                what: leak.what,
            };
            if !rec.leftovers.contains(&l) {
                rec.leftovers.push(l);
            }
        }
    }
}

/// Pids of this process's descendants (not itself), from /proc.
pub fn descendants() -> HashSet<i32> {
    let me = std::process::id() as i32;
    let mut parent = std::collections::HashMap::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if let Some((_, ppid)) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| crate::reaper::parse_stat(&s))
            {
                parent.insert(pid, ppid);
            }
        }
    }
    let mut out = HashSet::new();
    for &pid in parent.keys() {
        let mut p = pid;
        // Bounded walk: pid 1's parent is 0.
        for _ in 0..64 {
            match parent.get(&p) {
                Some(&pp) if pp == me => {
                    out.insert(pid);
                    break;
                }
                Some(&pp) if pp > 0 => p = pp,
                _ => break,
            }
        }
    }
    out
}

/// The order in which runtimes take their turn in round `round`: the rows
/// of a Williams design, so that over `n` rounds (`2n` when `n` is odd)
/// every runtime goes right after every other one equally often. What a
/// runtime leaves the kernel to finish after its turn (gVisor's teardown
/// slows whoever comes next for a while) then weighs on all alike, where a
/// plain rotation would always put the same runtime after it.
pub fn turn_order(n: usize, round: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    // 0, n-1, 1, n-2, 2, ...
    let mut first = Vec::with_capacity(n);
    let (mut lo, mut hi) = (0, n);
    for i in 0..n {
        if i.is_multiple_of(2) {
            first.push(lo);
            lo += 1;
        } else {
            hi -= 1;
            first.push(hi);
        }
    }
    let rows = if n.is_multiple_of(2) { n } else { 2 * n };
    let r = round % rows;
    let mut row: Vec<usize> = first.iter().map(|x| (x + r % n) % n).collect();
    if r >= n {
        row.reverse();
    }
    row
}

pub(crate) fn ns(d: Duration) -> f64 {
    d.as_nanos() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_balance_who_goes_after_whom() {
        for n in 1..=6usize {
            let rows = if n.is_multiple_of(2) { n } else { 2 * n };
            let mut after = vec![vec![0; n]; n];
            for r in 0..rows {
                let row = turn_order(n, r);
                let mut sorted = row.clone();
                sorted.sort();
                assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "n={n} round {r}: {row:?}");
                for w in row.windows(2) {
                    after[w[0]][w[1]] += 1;
                }
            }
            let want = if n.is_multiple_of(2) { 1 } else { 2 };
            for (a, row) in after.iter().enumerate() {
                for (b, &count) in row.iter().enumerate() {
                    assert_eq!(count, if a == b { 0 } else { want }, "n={n}: {b} after {a}");
                }
            }
        }
        assert_eq!(turn_order(4, 0), vec![0, 3, 1, 2]);
        assert_eq!(turn_order(4, 5), turn_order(4, 1));
        assert!(turn_order(0, 2).is_empty());
    }

    #[test]
    fn meminfo_lines() {
        let m = "MemTotal:       24684400 kB\nMemFree:        21928412 kB\nMemAvailable:   24200000 kB\n";
        assert_eq!(meminfo_kib(m, "MemTotal"), Some(24684400));
        assert_eq!(meminfo_kib(m, "MemAvailable"), Some(24200000));
        assert_eq!(meminfo_kib(m, "Mem"), None);
        assert_eq!(meminfo_kib(m, "Swap"), None);
    }

    #[test]
    fn descendants_include_a_child_and_its_child() {
        let mut c = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 5 & wait"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let d = descendants();
        assert!(d.contains(&(c.id() as i32)), "{d:?}");
        assert!(d.len() >= 2, "{d:?}");
        assert!(!d.contains(&(std::process::id() as i32)));
        let _ = c.kill();
        let _ = c.wait();
    }
}
