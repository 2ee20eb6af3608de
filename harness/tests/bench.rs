//! `harness bench` as a user runs it: bad input is refused naming the
//! value, a small run against real runtimes yields every figure with its
//! samples, the overhead figures tell a sandbox from a native runtime, and a
//! runtime that fails midway, a workload that crashes and a ^C each leave
//! partial results that say what is missing, and nothing behind.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use harness::bench::results::{BenchResults, Phase, HOST};

/// The runs share the machine's cgroups and process table, and the checks
/// for leftovers look at all of it: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Small settings: enough samples to compute everything, quick to run.
const SMALL: &[&str] = &[
    "-n",
    "3",
    "--warmup",
    "1",
    "--density",
    "3",
    "--density-rounds",
    "1",
    "--rounds",
    "1",
    "--batches",
    "3",
    "--batch-ms",
    "5",
];

/// Processes still carrying a bench marker (`OCI_HARNESS_CASE=hb...`).
fn marked_bench_processes() -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
            if env.split(|&b| b == 0).any(|kv| kv.starts_with(b"OCI_HARNESS_CASE=hb")) {
                v.push(pid);
            }
        }
    }
    v
}

fn assert_nothing_left(workdir: &Path) {
    let left: Vec<_> = std::fs::read_dir(workdir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left in the work directory: {left:?}");
    assert_eq!(marked_bench_processes(), Vec::<i32>::new(), "marked processes left");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let wd = workdir.display().to_string();
    assert!(!mounts.contains(&wd), "mounts left under {wd}");
}

/// Runs `harness bench` with JSON into a file; the exit code, the run and
/// the parsed results.
fn bench(workdir: &Path, args: &[&str]) -> (Run, BenchResults) {
    let out = workdir.parent().unwrap().join("results.json");
    let mut all = vec![
        "bench",
        "--format",
        "json",
        "--output",
        out.to_str().unwrap(),
        "--workdir",
        workdir.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let run = harness(&all);
    let text = std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("no results ({e}): {}", run.stderr));
    (run, serde_json::from_str(&text).expect("results parse"))
}

/// Root and `runtime` installed; says why not otherwise.
fn can_run(runtime: &str) -> bool {
    let ok = is_root() && installed(runtime).is_some();
    if !ok {
        eprintln!("skipping: needs root and {runtime}");
    }
    ok
}

fn dirs() -> (tempfile::TempDir, std::path::PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let w = t.path().join("work");
    std::fs::create_dir(&w).unwrap();
    (t, w)
}

#[test]
fn bad_input_is_named_and_nothing_is_left() {
    let _g = serial();
    let (_t, w) = dirs();
    let wd = w.to_str().unwrap();
    for (args, needle) in [
        (vec!["--runtime", "/no/such/runtime"], "/no/such/runtime"),
        (
            vec!["--runtime", "runc", "--iterations", "0"],
            "--iterations must be at least 1, got 0",
        ),
        (vec!["--runtime", "runc", "--workloads", "getpid,warp"], "\"warp\""),
        (vec!["--runtime", "runc", "--phases", "speed"], "\"speed\""),
        (
            vec!["--runtime", "runc", "--runtime", "/usr/sbin/runc"],
            "two runtimes are named \"runc\"",
        ),
        (vec!["--runtime", "host=runc"], "\"host\" is reserved"),
        (
            vec!["--runtime", "runc", "--timeout", "-1"],
            "--timeout must be a positive number of seconds, got -1",
        ),
        (
            vec!["--runtime", "runc", "--batches", "1"],
            "--batches must be at least 2, got 1",
        ),
        (vec!["--runtime", "runc start"], "\"start\" does not start with `-`"),
    ] {
        let mut all = vec!["bench", "--workdir", wd];
        all.extend_from_slice(&args);
        let r = harness(&all);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{args:?}: {needle:?} not in {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
    let r = harness(&["bench"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--runtime"), "{}", r.stderr);
    assert_nothing_left(&w);
}

#[test]
fn native_and_runc_every_figure_with_its_samples() {
    if !can_run("runc") {
        return;
    }
    let _g = serial();
    let (_t, w) = dirs();
    let mut args = vec![
        "--runtime",
        "native",
        "--runtime",
        "runc",
        "--workloads",
        "getpid,file-io-bind,cpu",
    ];
    args.extend_from_slice(SMALL);
    let (run, r) = bench(&w, &args);
    assert_eq!(run.code, 0, "{}\n{:?}", run.stderr, r.missing);
    assert!(r.missing.is_empty() && r.leftovers.is_empty() && !r.interrupted);
    assert_eq!(r.kind, "bench");
    let names: Vec<&str> = r.runtimes.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(names, ["native", "runc"]);
    for op in ["create", "start", "state", "kill", "delete", "run"] {
        let id = format!("lifecycle.{op}");
        let n = r.metric(&id, "native").unwrap();
        let c = r.metric(&id, "runc").unwrap();
        assert_eq!((n.samples.len(), c.samples.len()), (3, 3), "{id}");
        assert!(n.samples.iter().all(|v| *v > 0.0), "{id}: {:?}", n.samples);
        assert!(n.ratio.is_none());
        let ratio = c.ratio.as_ref().expect("runc has a ratio to native");
        assert_eq!(ratio.baseline, "native");
        assert!(ratio.ci95.0 <= ratio.value && ratio.value <= ratio.ci95.1);
    }
    for id in ["density.throughput", "density.pss", "density.cgroup"] {
        for rt in ["native", "runc"] {
            let m = r.metric(id, rt).unwrap_or_else(|| panic!("{id} {rt}"));
            assert!(m.summary.as_ref().unwrap().median > 0.0, "{id} {rt}");
        }
    }
    assert_eq!(r.metric("density.start", "runc").unwrap().samples.len(), 3);
    for wl in ["getpid", "file-io-bind", "cpu"] {
        let id = format!("overhead.{wl}");
        assert_eq!(r.metric(&id, HOST).unwrap().samples.len(), 3, "{id}");
        let m = r.metric(&id, "runc").unwrap();
        assert_eq!(m.ratio.as_ref().unwrap().baseline, HOST);
    }
    assert!(
        r.metric("overhead.stat", HOST).is_none(),
        "only the workloads asked for run"
    );
    // The harness's own time per operation, against the figures it measures.
    let own = r
        .metric("harness.overhead", "native")
        .unwrap()
        .summary
        .clone()
        .unwrap()
        .median;
    let fastest = r
        .metrics
        .iter()
        .filter(|m| m.phase == Phase::Lifecycle)
        .map(|m| m.summary.as_ref().unwrap().median)
        .fold(f64::INFINITY, f64::min);
    assert!(
        own < fastest,
        "harness {own} ns per op against the fastest figure {fastest} ns"
    );
    assert!(run.stdout.contains("lifecycle latency") && run.stdout.contains("isolation overhead"));
    assert_nothing_left(&w);
}

#[test]
fn overhead_tells_a_sandbox_from_a_native_runtime() {
    if !can_run("runsc") {
        return;
    }
    let _g = serial();
    let (_t, w) = dirs();
    let mut args = vec![
        "--runtime",
        "native",
        "--runtime",
        "runsc --network=none",
        "--phases",
        "overhead",
        "--workloads",
        "getpid,cpu",
    ];
    args.extend_from_slice(SMALL);
    let (run, r) = bench(&w, &args);
    assert_eq!(run.code, 0, "{}\n{:?}", run.stderr, r.missing);
    let ratio = |wl: &str, rt: &str| r.metric(&format!("overhead.{wl}"), rt).unwrap().ratio.clone().unwrap();
    // gVisor (ptrace) traps every syscall into its sentry: hundreds of times
    // the host's cost, where a native runtime adds nothing; a CPU loop costs
    // the same everywhere. Compared with each other rather than with fixed
    // bounds, so a busy machine (which slows every figure) cannot fail it.
    let (sandbox, native) = (ratio("getpid", "runsc"), ratio("getpid", "native"));
    assert!(sandbox.ci95.0 > 5.0 * native.ci95.1, "{sandbox:?} against {native:?}");
    let cpu = ratio("cpu", "runsc");
    assert!(cpu.ci95.1 * 5.0 < sandbox.ci95.0, "{cpu:?} against {sandbox:?}");
    assert_nothing_left(&w);
}

/// A runc wrapper whose `BODY` runs first (with `$verb` set).
fn runc_wrapper(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let runc = installed("runc").expect("runc");
    script(
        dir,
        name,
        &format!(
            "#!/bin/bash\nRUNC={}\nverb=\"\"\nfor a in \"$@\"; do case \"$a\" in create|start|state|kill|delete|run) verb=\"$a\"; break;; esac; done\n{body}\nexec \"$RUNC\" \"$@\"\n",
            runc.display()
        ),
    )
}

#[test]
fn a_runtime_failing_midway_keeps_what_was_measured() {
    if !can_run("runc") {
        return;
    }
    let _g = serial();
    let (t, w) = dirs();
    // Every other `start` fails, after `create` made the container.
    let count = t.path().join("starts");
    let flaky = runc_wrapper(
        t.path(),
        "flaky",
        &format!(
            "if [ \"$verb\" = start ]; then n=$(( $(cat {c} 2>/dev/null || echo 0) + 1 )); echo $n > {c}; if [ $((n % 2)) = 0 ]; then echo \"flaky: start refused\" >&2; exit 1; fi; fi",
            c = count.display()
        ),
    );
    // Never creates anything: given up on after three tries.
    let broken = runc_wrapper(
        t.path(),
        "broken",
        "if [ \"$verb\" = create ] || [ \"$verb\" = run ]; then echo \"broken: no containers today\" >&2; exit 1; fi",
    );
    let mut args = vec![
        "--runtime",
        "native",
        "--runtime",
        flaky.to_str().unwrap(),
        "--runtime",
        broken.to_str().unwrap(),
        "--phases",
        "lifecycle",
    ];
    args.extend_from_slice(&SMALL[2..]);
    args.extend_from_slice(&["-n", "6"]);
    let (run, r) = bench(&w, &args);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let flaky_missing: Vec<_> = r.missing.iter().filter(|m| m.runtime == "flaky").collect();
    assert!(!flaky_missing.is_empty());
    assert!(
        flaky_missing
            .iter()
            .all(|m| m.what.ends_with(": start") && m.reason.contains("flaky: start refused")),
        "{flaky_missing:?}"
    );
    let got = r.metric("lifecycle.start", "flaky").unwrap().samples.len();
    assert!((1..6).contains(&got), "flaky measured {got} of 6");
    assert_eq!(r.metric("lifecycle.start", "native").unwrap().samples.len(), 6);
    assert!(r.metric("lifecycle.create", "broken").is_none());
    let broken_missing: Vec<_> = r.missing.iter().filter(|m| m.runtime == "broken").collect();
    assert_eq!(
        broken_missing.len(),
        4,
        "three failures, then given up: {broken_missing:?}"
    );
    assert!(broken_missing[0].reason.contains("broken: no containers today"));
    assert!(broken_missing[3].reason.contains("given up"));
    assert!(r.leftovers.is_empty(), "{:?}", r.leftovers);
    assert!(run.stdout.contains("not measured:"));
    assert_nothing_left(&w);
}

#[test]
fn a_workload_that_crashes_inside_is_named() {
    if !can_run("runc") {
        return;
    }
    let _g = serial();
    let (t, w) = dirs();
    // The container's program becomes `probe exit getpid ...`, which fails.
    let crashing = runc_wrapper(
        t.path(),
        "crashing",
        "if [ \"$verb\" = run ]; then b=\"\"; prev=\"\"; for a in \"$@\"; do [ \"$prev\" = --bundle ] && b=\"$a\"; prev=\"$a\"; done; sed -i 's/\"bench\",/\"exit\",/' \"$b/config.json\"; fi",
    );
    let mut args = vec![
        "--runtime",
        "runc",
        "--runtime",
        crashing.to_str().unwrap(),
        "--phases",
        "overhead",
        "--workloads",
        "getpid",
    ];
    args.extend_from_slice(SMALL);
    let (run, r) = bench(&w, &args);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(r.missing.len(), 1, "{:?}", r.missing);
    let m = &r.missing[0];
    assert_eq!((m.runtime.as_str(), m.phase), ("crashing", Phase::Overhead));
    assert!(m.what.contains("getpid") && m.reason.contains("exit 2"), "{m:?}");
    assert!(m.reason.contains("probe: exit"), "{m:?}");
    assert_eq!(r.metric("overhead.getpid", "runc").unwrap().samples.len(), 3);
    assert_nothing_left(&w);
}

#[test]
fn an_interrupt_keeps_the_results_and_cleans_up() {
    if !can_run("runc") {
        return;
    }
    let _g = serial();
    let (t, w) = dirs();
    let out = t.path().join("results.json");
    let mut child = Command::new(HARNESS)
        .args([
            "bench",
            "--runtime",
            "runc",
            "-n",
            "100000",
            "--format",
            "json",
            "--output",
        ])
        .arg(&out)
        .arg("--workdir")
        .arg(&w)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signals the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let r: BenchResults = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(r.interrupted);
    assert!(r.missing.iter().any(|m| m.reason == "interrupted"));
    let n = r.metric("lifecycle.create", "runc").map_or(0, |m| m.samples.len());
    assert!(n > 0, "what was measured before ^C is kept");
    assert!(r.metric("density.throughput", "runc").is_none());
    assert_nothing_left(&w);
}
