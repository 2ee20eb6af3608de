//! The conformance suite on the sandboxed runtime: everything the native
//! runtime passes must pass here, except the cases the sandbox changes by
//! design, and each of those must be said in the runtime's `features`.

use std::collections::BTreeMap;
use std::time::Duration;

use harness::runner::{self, Options};
use harness::runtime::Runtime;

/// Cases the sandbox fails on purpose, and the `features` annotation that
/// says why.
const BY_DESIGN: &[(&str, &str)] = &[
    (
        "process::no_new_privileges_false",
        "org.ociharness.sandbox.no-new-privileges",
    ),
    ("seccomp::filter_mode", "org.ociharness.sandbox.seccomp-filter"),
    ("seccomp::notify_listener", "org.ociharness.sandbox.seccomp-notify"),
];

#[test]
fn the_suite_passes_but_for_what_the_sandbox_changes_and_declares() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: containers need root");
        return;
    }
    let exe = env!("CARGO_BIN_EXE_sandboxed");
    let features: serde_json::Value =
        serde_json::from_slice(&std::process::Command::new(exe).arg("features").output().unwrap().stdout).unwrap();
    let declared: BTreeMap<String, String> =
        serde_json::from_value(features["annotations"].clone()).expect("features has annotations");
    for (case, key) in BY_DESIGN {
        assert!(
            declared.contains_key(*key),
            "{case} fails by design, but features do not say {key}"
        );
    }
    let timeout = Duration::from_secs(10);
    let rt = Runtime::resolve(exe, vec![], timeout).unwrap();
    let probe = harness::find_probe().expect("the probe is built beside the test (cargo build)");
    let work = tempfile::tempdir().unwrap();
    let opts = Options {
        jobs: 2,
        workdir: work.path().to_path_buf(),
        timeout,
        command: vec!["runtimes/sandboxed/tests/conform.rs".into()],
    };
    let all = harness::cases::all();
    let by_design = |id: &str| BY_DESIGN.iter().any(|(c, _)| *c == id);
    let (r, still) = runner::run_confirming_failures(&all, &rt, &probe, &opts, &by_design).unwrap();
    assert_eq!(r.cases.len(), all.len());
    assert!(still.is_empty(), "failed in the sandbox twice: {still:#?}");
}
