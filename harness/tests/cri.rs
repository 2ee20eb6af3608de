//! `harness cri` as a user runs it, against Debian's containerd started by
//! the test with a private configuration: the run must complete and write
//! parseable JSON results. containerd's failures are findings about
//! containerd (printed, not asserted); a failure the harness charges to
//! itself is a test failure.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use harness::cri::containerd::{Containerd, Options, CONTAINERD_BIN};
use harness::cri::registry::{self, LocalRegistry};
use harness::results::{Results, Status};

fn probe() -> std::path::PathBuf {
    harness::find_probe().expect("the probe is built beside the harness (cargo build -p probe)")
}

/// Runs `harness cri` with JSON into a file; asserts it ran (exit 0 or 1)
/// and parses the results.
fn cri(endpoint: &str, extra: &[&str]) -> (Run, Results) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cri.json");
    let out_s = out.display().to_string();
    let mut args = vec!["cri", "--endpoint", endpoint, "--format", "json", "--output", &out_s];
    args.extend_from_slice(extra);
    let run = harness(&args);
    assert!(
        run.code == 0 || run.code == 1,
        "harness cri exited {}: {}",
        run.code,
        run.stderr
    );
    let text = std::fs::read_to_string(&out).expect("results written");
    let results: Results = serde_json::from_str(&text).expect("results parse");
    (run, results)
}

#[test]
fn bad_arguments_exit_2_naming_the_value() {
    let r = harness(&["cri", "--endpoint", "tcp://127.0.0.1:1"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("tcp://127.0.0.1:1"), "{}", r.stderr);
    let r = harness(&["cri", "--endpoint", "unix:///nonexistent/cri.sock", "--timeout", "2"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("/nonexistent/cri.sock"), "{}", r.stderr);
    let r = harness(&["cri", "--endpoint", "unix:///x.sock", "--only", "no_such_group"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no_such_group"), "{}", r.stderr);
}

#[test]
fn against_containerd_the_run_completes_with_json_results() {
    if !is_root() {
        eprintln!("SKIP: needs root");
        return;
    }
    if !Path::new(CONTAINERD_BIN).exists() {
        eprintln!("SKIP: containerd is not installed ({CONTAINERD_BIN}); apt-get install -y containerd");
        return;
    }
    if !Path::new(registry::REGISTRY_BIN).exists() {
        eprintln!("SKIP: docker-registry is not installed; apt-get install -y docker-registry");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let reg = LocalRegistry::start(&dir.path().join("registry"), Duration::from_secs(20)).unwrap();
    // containerd needs its sandbox image in the registry before its first pod.
    let pushed = registry::push_test_images(&probe(), dir.path(), &reg.host, Duration::from_secs(60)).unwrap();
    let o = Options {
        registry: reg.host.clone(),
        sandbox_image: pushed.image("latest"),
        runc: "/usr/sbin/runc".into(),
        cni: true,
    };
    let cd = Containerd::start(&dir.path().join("containerd"), &o, Duration::from_secs(30)).unwrap();
    // HARNESS_CRI_ONLY narrows the run when debugging one case.
    let only = std::env::var("HARNESS_CRI_ONLY").unwrap_or_default();
    let mut extra = vec!["--registry", &reg.host, "--timeout", "30"];
    if !only.is_empty() {
        extra.extend(["--only", &only]);
    }
    let (run, r) = cri(&cd.endpoint, &extra);
    eprintln!("{}", harness::render::table(&r));
    assert_eq!(
        run.code,
        i32::from(r.summary.failed > 0),
        "exit code follows the failures"
    );
    if only.is_empty() {
        assert_eq!(r.cases.len(), harness::cri::cases::all().len());
    }
    assert!(r.runtime.version.contains("containerd"), "{}", r.runtime.version);
    let own: Vec<String> = r
        .cases
        .iter()
        .filter(|c| c.failure.as_ref().is_some_and(|f| f.clause == "harness"))
        .map(|c| format!("{}: {}", c.id, c.message))
        .collect();
    assert!(own.is_empty(), "the harness failed itself: {own:#?}");
    // The basic lifecycle works in containerd 1.6: if these fail, the
    // harness is wrong, not containerd.
    for id in [
        "runtime::version",
        "pod::run_and_status",
        "container::start_running",
        "exec::sync_output_exit_code",
    ] {
        let Some(c) = r.cases.iter().find(|c| c.id == id) else {
            continue;
        };
        assert_eq!(c.status, Status::Passed, "{id}: {}", c.message);
    }
    drop(cd);
}
