//! `harness stress` as a user runs it: a short run against the bundled
//! native runtime leaves nothing and its JSON parses; a runtime that leaves
//! things behind is caught; bad arguments exit 2 naming the value.

mod common;

use std::path::PathBuf;

use common::*;
use harness::stress::run::Report;

/// The bundled native runtime, built beside the harness.
fn native() -> Option<PathBuf> {
    let p = std::path::Path::new(HARNESS).parent()?.join("native");
    p.is_file().then_some(p)
}

fn skip_reason() -> Option<&'static str> {
    if !is_root() {
        return Some("stress runs containers, which needs root");
    }
    if native().is_none() {
        return Some("the native runtime is not built beside the harness (cargo build --workspace)");
    }
    None
}

fn stress_json(runtime: &str, extra: &[&str]) -> (Run, Report) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stress.json");
    let out_s = out.display().to_string();
    let mut args = vec!["stress", "--runtime", runtime, "--format", "json", "--output", &out_s];
    args.extend_from_slice(extra);
    let run = harness(&args);
    assert!(
        run.code == 0 || run.code == 1,
        "stress exited {}: {}",
        run.code,
        run.stderr
    );
    let text = std::fs::read_to_string(&out).expect("report written");
    (run, serde_json::from_str(&text).expect("report parses"))
}

#[test]
fn forty_lifecycles_at_four_leave_nothing() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let (run, r) = stress_json("native", &["--count", "40", "--parallel", "4"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!((r.lifecycles, r.succeeded, r.failed), (40, 40, 0), "{:?}", r.errors);
    assert!(r.leaks.is_empty(), "{:?}", r.leaks);
    assert!(r.state_root_empty);
    for verb in ["create", "start", "exit", "delete", "lifecycle"] {
        assert_eq!(r.latency_ms.get(verb).map(|l| l.n), Some(40), "{verb}");
    }
    assert!(r.throughput_per_s > 0.0);
    // The terminal still gets the table rendered from the same report.
    assert!(run.stdout.contains("40 lifecycles at 4 in parallel"), "{}", run.stdout);
}

#[test]
fn a_runtime_that_leaves_state_and_a_process_is_caught() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    // Wraps native; after one delete it leaves a directory in --root and a
    // process carrying the run's marker (inherited from its environment).
    let body = format!(
        r#"#!/bin/bash
root=""; prev=""; verb=""
for a in "$@"; do
  [ "$prev" = --root ] && root="$a"
  case "$a" in create|start|delete) [ -z "$verb" ] && verb="$a";; esac
  prev="$a"
done
if [ "$verb" = delete ]; then
  {native} "$@"; rc=$?
  id="${{@: -1}}"
  case "$id" in *-3) mkdir -p "$root/$id.left"; setsid sleep 300 </dev/null >/dev/null 2>&1 & ;; esac
  exit $rc
fi
exec {native} "$@"
"#,
        native = native().unwrap().display()
    );
    let rt = script(t.path(), "leaky", &body);
    let (run, r) = stress_json(rt.to_str().unwrap(), &["--count", "6", "--parallel", "2"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(r.failed, 0, "{:?}", r.errors);
    let kinds: Vec<&str> = r.leaks.iter().map(|l| l.kind.as_str()).collect();
    assert!(kinds.contains(&"state") && kinds.contains(&"process"), "{:?}", r.leaks);
    assert!(!r.state_root_empty);
}

#[test]
fn bad_arguments_exit_2_naming_the_value() {
    let cases: [(&[&str], &[&str]); 5] = [
        (&["--runtime", "native", "--parallel", "0"], &["--parallel", "0"]),
        (&["--runtime", "native", "--count", "0"], &["--count", "0"]),
        (&["--runtime", "native", "--duration", "soon"], &["--duration", "soon"]),
        (&["--runtime", "native", "--timeout", "-1"], &["--timeout", "-1"]),
        (&["--runtime", "/no/such/runtime"], &["/no/such/runtime"]),
    ];
    for (args, named) in cases {
        let mut a = vec!["stress"];
        a.extend_from_slice(args);
        let run = harness(&a);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        for n in named {
            assert!(run.stderr.contains(n), "{args:?} should name {n}: {}", run.stderr);
        }
    }
    let run = harness(&["stress", "--runtime", "native", "--count", "5", "--duration", "5s"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--duration"), "{}", run.stderr);
}
