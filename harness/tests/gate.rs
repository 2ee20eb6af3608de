//! `harness gate` as CI runs it: the published back-to-back bench runs pass,
//! bad input is refused naming it, and regressions seeded with runc wrappers
//! (a `create` 20 ms slower, a `state` that lies about the id) fail the gate
//! while the same binary under two labels passes.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use common::*;

/// Bench runs time the machine, and the gate's bootstraps would load it:
/// one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn report(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../reports")
        .join(rel)
        .display()
        .to_string()
}

struct Gated {
    run: Run,
    summary: String,
    junit: String,
}

/// `harness gate ARGS --summary ... --junit ...` in `dir`.
fn gate(dir: &Path, args: &[&str]) -> Gated {
    let (md, xml) = (dir.join("summary.md"), dir.join("junit.xml"));
    let mut all = vec!["gate"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--summary", md.to_str().unwrap(), "--junit", xml.to_str().unwrap()]);
    let run = harness(&all);
    Gated {
        summary: std::fs::read_to_string(&md).unwrap_or_default(),
        junit: std::fs::read_to_string(&xml).unwrap_or_default(),
        run,
    }
}

#[test]
fn the_published_back_to_back_runs_pass() {
    let _g = serial();
    let t = tempfile::tempdir().unwrap();
    let (run1, run2) = (
        report("bench/2026-11-29-run1.json"),
        report("bench/2026-11-29-run2.json"),
    );
    let g = gate(t.path(), &["--baseline", &run1, "--results", &run2]);
    assert_eq!(g.run.code, 0, "{}{}", g.run.stdout, g.run.stderr);
    assert!(g.summary.starts_with("### ✅ PASS: 0 regressions in "), "{}", g.summary);
    assert_eq!(g.run.stdout, g.summary, "stdout gets the summary too");
    assert!(
        g.summary.contains("runtimes: native, runc, crun, runsc."),
        "{}",
        g.summary
    );
    for rt in ["native", "runc", "crun", "runsc"] {
        for id in ["lifecycle.create", "density.start", "overhead.getpid"] {
            let row = format!("| `{id}` | {rt} | pass |");
            assert!(g.summary.contains(&row), "{row} not in {}", g.summary);
        }
        let row = format!("| `harness.overhead` | {rt} | skipped: not gated");
        assert!(g.summary.contains(&row), "{row}");
    }
    assert!(!g.junit.contains("<failure"), "{}", g.junit);
    assert!(g.junit.contains("<testsuite name=\"gate.bench\""), "{}", g.junit);
    assert_eq!(g.junit.matches("<testcase ").count(), 84, "{}", g.junit);
}

#[test]
fn the_published_conform_runs_gate_by_case() {
    let _g = serial();
    let t = tempfile::tempdir().unwrap();
    let (runc, crun) = (report("conform/runc.json"), report("conform/crun.json"));
    let g = gate(t.path(), &["--baseline", &runc, "--results", &runc]);
    assert_eq!(g.run.code, 0, "{}{}", g.run.stdout, g.run.stderr);
    // runc against crun: one runtime each, so those two; every case runc
    // passes and crun fails is a failure of the gate, and only those.
    let load =
        |p: &str| -> harness::results::Results { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let (b, n) = (load(&runc), load(&crun));
    use harness::results::Status;
    let want: Vec<&str> = b
        .cases
        .iter()
        .filter(|c| c.status == Status::Passed)
        .filter(|c| n.cases.iter().any(|x| x.id == c.id && x.status == Status::Failed))
        .map(|c| c.id.as_str())
        .collect();
    let g = gate(t.path(), &["--baseline", &runc, "--results", &crun]);
    assert_eq!(
        g.run.code,
        i32::from(!want.is_empty()),
        "{}{}",
        g.run.stdout,
        g.run.stderr
    );
    assert!(g.summary.contains("runtime: runc → crun."), "{}", g.summary);
    assert_eq!(
        g.junit.matches("<failure ").count(),
        want.len(),
        "{want:?}\n{}",
        g.junit
    );
    for id in &want {
        assert!(
            g.summary.contains(&format!("| `{id}` | runc → crun | `")),
            "{id} not in {}",
            g.summary
        );
    }
}

#[test]
fn bad_input_is_named_with_exit_2() {
    let _g = serial();
    let t = tempfile::tempdir().unwrap();
    let (run1, run2) = (
        report("bench/2026-11-29-run1.json"),
        report("bench/2026-11-29-run2.json"),
    );
    let conform = report("conform/runc.json");
    for (args, needles) in [
        (
            vec!["--baseline", conform.as_str(), "--results", run1.as_str()],
            vec![conform.as_str(), run1.as_str(), "conform results", "bench results"],
        ),
        (
            vec![
                "--baseline",
                &run1,
                "--results",
                &run2,
                "--tolerance",
                "lifecycle.create=abc",
            ],
            vec!["--tolerance", "\"lifecycle.create=abc\"", "\"abc\""],
        ),
        (
            vec!["--baseline", &run1, "--results", &run2, "--runtime", "youki"],
            vec!["--runtime \"youki\"", "native, runc, crun, runsc"],
        ),
        (
            vec![
                "--baseline",
                &run1,
                "--results",
                &run2,
                "--baseline-runtime",
                "kata",
                "--runtime",
                "runc",
            ],
            vec!["--baseline-runtime \"kata\"", run1.as_str()],
        ),
        (
            vec!["--baseline", &run1, "--results", &run2, "--alpha", "1.5"],
            vec!["--alpha", "1.5"],
        ),
        (
            vec!["--baseline", &run1, "--results", &run2, "--alpha", "abc"],
            vec!["--alpha", "abc"],
        ),
        (
            vec!["--baseline", "/no/such.json", "--results", &run2],
            vec!["/no/such.json"],
        ),
    ] {
        let g = gate(t.path(), &args);
        assert_eq!(g.run.code, 2, "{args:?}: {}{}", g.run.stdout, g.run.stderr);
        for n in needles {
            assert!(g.run.stderr.contains(n), "{args:?}: {n:?} not in {}", g.run.stderr);
        }
        assert!(
            g.run.stdout.is_empty() && g.summary.is_empty(),
            "{args:?}: {}",
            g.run.stdout
        );
    }
}

/// Root and runc; says why not otherwise.
fn can_run() -> Option<PathBuf> {
    let runc = installed("runc").filter(|_| is_root());
    if runc.is_none() {
        eprintln!("skipping: needs root and runc");
    }
    runc
}

/// A runc wrapper whose `BODY` runs first (with `$verb` set).
fn runc_wrapper(dir: &Path, runc: &Path, name: &str, body: &str) -> PathBuf {
    script(
        dir,
        name,
        &format!(
            "#!/bin/bash\nRUNC={}\nverb=\"\"\nfor a in \"$@\"; do case \"$a\" in create|start|state|kill|delete|run|features) verb=\"$a\"; break;; esac; done\n{body}\nexec \"$RUNC\" \"$@\"\n",
            runc.display()
        ),
    )
}

/// One interleaved lifecycle bench of `base` and `pr` into `dir/bench.json`.
fn ab_bench(dir: &Path, base: &str, pr: &str) -> String {
    let out = dir.join("bench.json");
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let (b, p) = (format!("base={base}"), format!("pr={pr}"));
    let r = harness(&[
        "bench",
        "--runtime",
        &b,
        "--runtime",
        &p,
        "--phases",
        "lifecycle",
        "-n",
        "12",
        "--warmup",
        "2",
        "--format",
        "json",
        "--output",
        out.to_str().unwrap(),
        "--workdir",
        work.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "harness bench: {}", r.stderr);
    out.display().to_string()
}

fn ab_gate(dir: &Path, results: &str) -> Gated {
    gate(
        dir,
        &[
            "--baseline",
            results,
            "--results",
            results,
            "--baseline-runtime",
            "base",
            "--runtime",
            "pr",
        ],
    )
}

#[test]
fn a_seeded_create_regression_fails_the_gate() {
    let Some(runc) = can_run() else { return };
    let _g = serial();
    let t = tempfile::tempdir().unwrap();
    // 20 ms more in creating a container: `create`, and `run`, which
    // creates one (runc's own `run` does not go through its `create` verb,
    // so the wrapper slows both, as a slower create path would).
    let slow = runc_wrapper(
        t.path(),
        &runc,
        "slow-create",
        "case \"$verb\" in create|run) sleep 0.02;; esac",
    );
    let x = ab_bench(t.path(), runc.to_str().unwrap(), slow.to_str().unwrap());
    let g = ab_gate(t.path(), &x);
    eprintln!("{}", g.summary);
    assert_eq!(g.run.code, 1, "{}{}", g.run.stdout, g.run.stderr);
    assert!(g.summary.starts_with("### ❌ FAIL"), "{}", g.summary);
    let regressions = g.summary.split("#### Regressions").nth(1).expect("a regressions table");
    let regressions = regressions.split("####").next().unwrap();
    for id in ["lifecycle.create", "lifecycle.run"] {
        assert!(
            regressions.contains(&format!("| `{id}` | base → pr |")),
            "{id} not in {regressions}"
        );
    }
    assert!(
        g.junit
            .contains("<failure message=\"lifecycle.create (base → pr) regressed:"),
        "{}",
        g.junit
    );
}

#[test]
fn the_same_binary_under_two_labels_passes() {
    let Some(runc) = can_run() else { return };
    let _g = serial();
    let t = tempfile::tempdir().unwrap();
    let x = ab_bench(t.path(), "runc", runc.to_str().unwrap());
    let g = ab_gate(t.path(), &x);
    eprintln!("{}", g.summary);
    assert_eq!(g.run.code, 0, "{}{}", g.run.stdout, g.run.stderr);
    assert!(
        g.summary
            .starts_with("### ✅ PASS: 0 regressions in 7 benchmark checks (6 passed, 1 skipped)"),
        "{}",
        g.summary
    );
    assert!(!g.junit.contains("<failure"), "{}", g.junit);
}

#[test]
fn a_seeded_conformance_regression_fails_the_gate() {
    let Some(runc) = can_run() else { return };
    let _g = serial();
    let t = tempfile::tempdir().unwrap();
    let lying = runc_wrapper(
        t.path(),
        &runc,
        "lying-state",
        r#"if [ "$verb" = state ]; then
  out=$("$RUNC" "$@"); rc=$?
  printf '%s\n' "$out" | sed -E 's/"id": *"[^"]*"/"id": "somebody-else"/'
  exit $rc
fi"#,
    );
    let results = |rt: &Path, name: &str| {
        let out = t.path().join(name);
        let r = harness(&[
            "conform",
            "--runtime",
            rt.to_str().unwrap(),
            "--only",
            "lifecycle,state",
            "--format",
            "json",
            "--output",
            out.to_str().unwrap(),
        ]);
        assert!(r.code == 0 || r.code == 1, "harness conform: {}", r.stderr);
        out.display().to_string()
    };
    let (good, bad) = (results(&runc, "runc.json"), results(&lying, "lying.json"));
    let g = gate(t.path(), &["--baseline", &good, "--results", &bad]);
    eprintln!("{}", g.summary);
    assert_eq!(g.run.code, 1, "{}{}", g.run.stdout, g.run.stderr);
    assert!(
        g.summary.contains("| `state::created_fields` | runc → lying-state | `"),
        "{}",
        g.summary
    );
    assert!(
        g.junit.contains("name=\"state::created_fields\">\n      <failure "),
        "{}",
        g.junit
    );
    let g = gate(t.path(), &["--baseline", &good, "--results", &good]);
    assert_eq!(g.run.code, 0, "{}{}", g.run.stdout, g.run.stderr);
}
