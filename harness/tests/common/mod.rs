//! Shared by the integration tests: run the built harness as a user would.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use harness::results::{Results, Status};

pub const HARNESS: &str = env!("CARGO_BIN_EXE_harness");

/// The suites drive real runtimes, which needs root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `Some(path)` when `name` is installed (ci/packages.sh installs them).
pub fn installed(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn harness(args: &[&str]) -> Run {
    let out = Command::new(HARNESS).args(args).output().expect("run harness");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `conform` with JSON output into a temp file and parses it.
pub fn conform(runtime: &str, extra: &[&str]) -> (Run, Results) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.json");
    let out_s = out.display().to_string();
    let mut args = vec!["conform", "--runtime", runtime, "--format", "json", "--output", &out_s];
    args.extend_from_slice(extra);
    let run = harness(&args);
    assert!(
        run.code == 0 || run.code == 1,
        "harness conform {runtime} exited {}: {}",
        run.code,
        run.stderr
    );
    let text = std::fs::read_to_string(&out).expect("results written");
    let results: Results = serde_json::from_str(&text).expect("results parse");
    (run, results)
}

pub fn failed_ids(r: &Results) -> Vec<String> {
    let mut v: Vec<String> = r
        .cases
        .iter()
        .filter(|c| c.status == Status::Failed)
        .map(|c| c.id.clone())
        .collect();
    v.sort();
    v
}

/// Failures the harness charged to itself: a case that could not be set up.
pub fn harness_errors(r: &Results) -> Vec<String> {
    r.cases
        .iter()
        .filter(|c| c.failure.as_ref().is_some_and(|f| f.clause == "harness"))
        .map(|c| format!("{}: {}", c.id, c.message))
        .collect()
}

/// Writes an executable script.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}
