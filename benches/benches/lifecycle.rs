//! Container lifecycle for the native runtime and each peer installed, in
//! one run: `run` of `/probe true`, and a `probe sleep inf` container through
//! create, start, kill and delete. Criterion gives each runtime its own
//! timing, back to back; before it, an interleaved pass of each operation
//! (in `harness bench`'s balanced turn order) prints medians, ratios to native and peak memory, so
//! machine drift, and what each runtime leaves the kernel to clean up, hit
//! every runtime alike. Every invocation goes through
//! `harness::bench::timed`, as in `harness bench`.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use benches::{probe, runtimes, Contender, Failure};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use harness::bench::timed::{self, Stdout};
use harness::bench::turn_order;
use harness::stats::{median, ratio, summarize};

const ROUNDS: usize = 40;
/// Unrecorded rounds first: the first invocations fault in each runtime's
/// binary and the bundles' pages.
const WARMUP_ROUNDS: usize = 2;

/// One operation of the interleaved pass: its wall time and peak RSS (KiB).
type Op = fn(&mut Contender) -> Result<(Duration, i64), Failure>;

fn run_op(c: &mut Contender) -> Result<(Duration, i64), Failure> {
    c.run().map(|t| (t.wall, t.maxrss_kib))
}

fn cycle_op(c: &mut Contender) -> Result<(Duration, i64), Failure> {
    c.cycle().map(|y| (y.runtime, y.maxrss_kib))
}

/// The peak RSS that wait4 reports for any child of this process: a child
/// starts as a copy of (or, spawned with vfork, sharing) this process's
/// memory, and the kernel carries that high-water mark across exec. A
/// runtime's figure at this floor says only that its own peak is no higher.
fn rss_floor_kib(dir: &Path, probe: &Path) -> i64 {
    let args = [OsString::from("true")];
    timed::run(
        probe,
        &args,
        &[],
        Stdout::Null,
        &dir.join("floor.err"),
        Duration::from_secs(10),
    )
    .map(|t| t.maxrss_kib)
    .unwrap_or(0)
}

/// Runtimes take turns at `op`, each following each other equally often
/// (`benches::turns`). Prints medians, ratios to the first runtime and peak
/// RSS.
fn interleaved(cs: &mut [Contender], what: &str, op: Op, scratch: &Path, probe: &Path) {
    let n = cs.len();
    let mut ms: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut rss: Vec<Vec<f64>> = vec![Vec::new(); n];
    let floor_before = rss_floor_kib(scratch, probe);
    for round in 0..WARMUP_ROUNDS + ROUNDS {
        for i in turn_order(n, round) {
            let (took, kib) = op(&mut cs[i]).unwrap_or_else(|e| panic!("{e}"));
            if round >= WARMUP_ROUNDS {
                ms[i].push(took.as_secs_f64() * 1e3);
                rss[i].push(kib as f64);
            }
        }
    }
    // A high-water mark: it rises during the pass as this process grows.
    let floor_kib = rss_floor_kib(scratch, probe);
    eprintln!("interleaved, {ROUNDS} rounds after {WARMUP_ROUNDS} warm-up: {what}");
    eprintln!(
        "  median [95% CI], ratio to {} [95% CI], peak RSS (floor {floor_before}..{floor_kib} KiB: see rss_floor_kib)",
        cs[0].name
    );
    for (i, c) in cs.iter().enumerate() {
        let Some(s) = summarize(&ms[i]) else {
            continue;
        };
        let (lo, hi) = s.median_ci95;
        let vs = match ratio(&ms[i], &ms[0]) {
            Some((x, (rlo, rhi))) if i > 0 => format!("{x:.2}x [{rlo:.2}, {rhi:.2}]"),
            _ => "-".into(),
        };
        let kib = median(&rss[i]);
        let at_floor = if kib <= floor_kib as f64 { "<= " } else { "" };
        eprintln!(
            "  {:<8} {:7.2} ms [{lo:.2}, {hi:.2}]  {vs:<20}  peak RSS {at_floor}{kib:.0} KiB",
            c.name, s.median
        );
    }
}

fn lifecycle(c: &mut Criterion) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: containers need root");
        return;
    }
    // Before any thread: the new mount namespace is the calling thread's.
    match harness::host::hide_hybrid_cgroup2() {
        Ok(true) => eprintln!("hybrid cgroup host: cgroup2 mount hidden, every runtime sees v1 only"),
        Ok(false) => {}
        Err(e) => eprintln!("could not hide the hybrid cgroup2 mount ({e}); crun 1.8 may fail"),
    }
    // A subreaper: killed container inits come back to us to be reaped, as
    // under containerd's shim (a zombie init reads as `running` to some
    // runtimes).
    harness::reaper::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = probe();
    let mut cs: Vec<Contender> = Vec::new();
    for (i, t) in runtimes().iter().enumerate() {
        let mut c = Contender::new(t, &dir.path().join(format!("rt{i}")), &probe)
            .unwrap_or_else(|e| panic!("bundles for {}: {e}", t.name));
        eprintln!(
            "runtime {}: {} ({})",
            t.name,
            t.runtime.path.display(),
            t.runtime.version()
        );
        // One container each way first: a runtime that cannot run here is
        // left out with its reason rather than failing the others' figures.
        match c.run().and_then(|_| c.cycle()) {
            Ok(_) => cs.push(c),
            Err(e) if i > 0 => eprintln!("  left out: {e}"),
            Err(e) => panic!("{e}"),
        }
    }
    // One operation at a time, so that each figure's neighbours do the same.
    interleaved(&mut cs, "run of /probe true", run_op, dir.path(), &probe);
    interleaved(
        &mut cs,
        "create + start + kill + delete of probe sleep inf (invocations summed)",
        cycle_op,
        dir.path(),
        &probe,
    );

    timed_group(c, "run", &mut cs, |cn| cn.run().unwrap_or_else(|e| panic!("{e}")).wall);
    timed_group(c, "create_start_delete", &mut cs, |cn| {
        cn.cycle().unwrap_or_else(|e| panic!("{e}")).runtime
    });

    for cn in &cs {
        for leak in cn.sweep() {
            eprintln!("{} left behind: {leak}", cn.name);
        }
    }
}

criterion_group!(benches, lifecycle);
criterion_main!(benches);

/// One criterion group timing `op` for each contender. A container start
/// takes milliseconds: a fixed count per sample, and few samples, keep the
/// whole bench to a couple of minutes.
fn timed_group(c: &mut Criterion, name: &str, cs: &mut [Contender], op: fn(&mut Contender) -> Duration) {
    let mut g = c.benchmark_group(name);
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for cn in cs.iter_mut() {
        let id = cn.name.clone();
        g.bench_function(id.as_str(), |b| b.iter_custom(|iters| (0..iters).map(|_| op(cn)).sum()));
    }
    g.finish();
}
