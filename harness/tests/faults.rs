//! Proof that the checks can fail: wrappers around runc that each break one
//! behaviour must be caught by exactly the cases that cover it, and a
//! runtime that hangs must not hang the harness or leave anything behind.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;
use harness::results::Status;

/// The groups the fault runs are limited to, to keep them quick.
const GROUPS: &str = "lifecycle,state,create,kill,delete";

/// A wrapper that finds the verb, lets `BODY` act on it, and otherwise
/// passes everything to runc unchanged.
fn wrapper(dir: &Path, name: &str, body: &str) -> PathBuf {
    let runc = installed("runc").expect("runc installed");
    let text = format!(
        r#"#!/bin/bash
RUNC={runc}
verb=""
for a in "$@"; do
  case "$a" in
    create|start|state|kill|delete|run|features) verb="$a"; break;;
  esac
done
{body}
exec "$RUNC" "$@"
"#,
        runc = runc.display()
    );
    script(dir, name, &text)
}

/// Failures of plain runc on GROUPS, computed once.
fn baseline() -> &'static Vec<String> {
    static B: OnceLock<Vec<String>> = OnceLock::new();
    B.get_or_init(|| {
        let runc = installed("runc").expect("runc installed");
        let (_, r) = conform(runc.to_str().unwrap(), &["--only", GROUPS]);
        failed_ids(&r)
    })
}

/// Runs GROUPS on the wrapper; returns the cases failing beyond runc's own.
fn new_failures(rt: &Path) -> Vec<String> {
    let (_, r) = conform(rt.to_str().unwrap(), &["--only", GROUPS]);
    assert_eq!(harness_errors(&r), Vec::<String>::new());
    let base = baseline();
    failed_ids(&r).into_iter().filter(|id| !base.contains(id)).collect()
}

fn skip_unless_root() -> bool {
    if !is_root() {
        eprintln!("skipping: fault runs drive runc, which needs root");
        return true;
    }
    false
}

#[test]
fn state_lies_about_the_id() {
    if skip_unless_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let rt = wrapper(
        t.path(),
        "lying-state",
        r#"if [ "$verb" = state ]; then
  out=$("$RUNC" "$@"); rc=$?
  printf '%s\n' "$out" | sed -E 's/"id": *"[^"]*"/"id": "somebody-else"/'
  exit $rc
fi"#,
    );
    assert_eq!(new_failures(&rt), vec!["state::created_fields".to_string()]);
}

#[test]
fn create_swallows_errors() {
    if skip_unless_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let rt = wrapper(
        t.path(),
        "accepting-create",
        r#"if [ "$verb" = create ]; then "$RUNC" "$@"; exit 0; fi"#,
    );
    let mut want: Vec<String> = [
        "create::duplicate_id",
        "create::malformed_json",
        "create::missing_bundle",
        "create::missing_config",
        "create::missing_rootfs",
        "create::no_id",
        "create::unknown_namespace_type",
    ]
    .map(String::from)
    .to_vec();
    want.sort();
    assert_eq!(new_failures(&rt), want);
}

#[test]
fn kill_drops_catchable_signals() {
    if skip_unless_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    // Every signal but KILL is acknowledged and dropped; so is a kill with
    // no id at all, which kill::no_id_error covers.
    let rt = wrapper(
        t.path(),
        "deaf-kill",
        r#"if [ "$verb" = kill ]; then
  last="${@: -1}"
  case "$last" in KILL|SIGKILL|9) ;; *) exit 0;; esac
fi"#,
    );
    assert_eq!(
        new_failures(&rt),
        ["kill::no_id_error", "kill::term_delivered", "kill::usr1_by_number"].map(String::from)
    );
}

#[test]
fn delete_forgets_to_delete() {
    if skip_unless_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    // A plain delete says yes and does nothing, whatever the container's
    // state (or with no id at all); --force still works, so the harness's own
    // teardown can clean up.
    let rt = wrapper(
        t.path(),
        "lazy-delete",
        r#"if [ "$verb" = delete ]; then
  case " $* " in *" --force "*) ;; *) exit 0;; esac
fi"#,
    );
    assert_eq!(
        new_failures(&rt),
        [
            "delete::id_reuse",
            "delete::no_id_error",
            "delete::running_error",
            "delete::stopped_removes",
        ]
        .map(String::from)
    );
}

#[test]
fn hanging_create_times_out_and_leaves_nothing() {
    if skip_unless_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let rt = wrapper(
        t.path(),
        "hanging-create",
        r#"if [ "$verb" = create ]; then sleep 300; fi"#,
    );
    let work = t.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let (run, r) = conform(
        rt.to_str().unwrap(),
        &[
            "--only",
            "lifecycle",
            "--timeout",
            "1",
            "--workdir",
            work.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 1);
    // Every case that creates a container fails on the timeout; the ones
    // that never call create (no-id errors, `run`) still pass.
    for c in &r.cases {
        if c.id.ends_with("_no_id_error") || c.id == "lifecycle::run_foreground" {
            assert_eq!(c.status, harness::results::Status::Passed, "{}: {}", c.id, c.message);
        } else {
            assert_eq!(c.status, harness::results::Status::Failed, "{} did not fail", c.id);
            assert!(c.message.contains("timed out"), "{}: {}", c.id, c.message);
        }
    }
    // No sleeping wrapper survives, and the work directory is empty.
    let procs = std::process::Command::new("pgrep")
        .args(["-f", "sleep 300"])
        .output()
        .unwrap();
    assert!(
        procs.stdout.is_empty(),
        "left: {}",
        String::from_utf8_lossy(&procs.stdout)
    );
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
}

// `harness faults`: the fault suite itself, against the bundled runtime.

/// The bundled native runtime, built beside the harness.
fn native() -> Option<PathBuf> {
    let p = Path::new(HARNESS).parent()?.join("native");
    p.is_file().then_some(p)
}

fn faults_json(runtime: &str, extra: &[&str]) -> (Run, harness::results::Results) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("faults.json");
    let out_s = out.display().to_string();
    let mut args = vec!["faults", "--runtime", runtime, "--format", "json", "--output", &out_s];
    args.extend_from_slice(extra);
    let run = harness(&args);
    assert!(
        run.code == 0 || run.code == 1,
        "faults exited {}: {}",
        run.code,
        run.stderr
    );
    let text = std::fs::read_to_string(&out).expect("results written");
    (run, serde_json::from_str(&text).expect("results parse"))
}

fn skip_unless_native() -> bool {
    if !is_root() {
        eprintln!("skipping: the fault suite runs containers, which needs root");
        return true;
    }
    if native().is_none() {
        eprintln!("skipping: the native runtime is not built beside the harness (cargo build --workspace)");
        return true;
    }
    false
}

#[test]
fn fault_suite_passes_against_native() {
    if skip_unless_native() {
        return;
    }
    let (run, r) = faults_json("native", &[]);
    assert_eq!(failed_ids(&r), Vec::<String>::new(), "{}", run.stdout);
    assert_eq!(run.code, 0);
    // A case skips only when its kill came after the verb had ended, three
    // times; every group must have had faults that landed.
    for g in [
        "sigkill_create",
        "sigkill_start",
        "sigkill_delete",
        "delete_races_start",
        "kill_gone",
        "root_disk_full",
        "bundle_removed",
    ] {
        assert!(
            r.cases.iter().any(|c| c.group == g && c.status == Status::Passed),
            "no fault of {g} landed: {}",
            run.stdout
        );
    }
}

#[test]
fn fault_suite_catches_a_runtime_that_leaves_things_behind() {
    if skip_unless_native() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    // Wraps native; `delete --force` leaves a directory in --root and a
    // process carrying the case's marker (inherited from its environment).
    let body = format!(
        r#"#!/bin/bash
root=""; prev=""; force=""
for a in "$@"; do
  [ "$prev" = --root ] && root="$a"
  [ "$a" = --force ] && force=1
  prev="$a"
done
if [ -n "$force" ]; then
  {native} "$@"; rc=$?
  mkdir -p "$root/left-${{@: -1}}"
  setsid sleep 300 </dev/null >/dev/null 2>&1 &
  exit $rc
fi
exec {native} "$@"
"#,
        native = native().unwrap().display()
    );
    let rt = script(t.path(), "leaky", &body);
    let (run, r) = faults_json(rt.to_str().unwrap(), &["--only", "kill_gone::stopped,bundle_removed"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(r.cases.len(), 2);
    for c in &r.cases {
        let f = c.failure.as_ref().unwrap_or_else(|| panic!("{} passed", c.id));
        assert_eq!(f.clause, "runtime.delete.remove-resources", "{}", c.message);
        assert!(
            f.observed.contains("state ") && f.observed.contains("process "),
            "{}: {}",
            c.id,
            f.observed
        );
    }
}
