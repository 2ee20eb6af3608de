//! The conformance suite on the virtualized runtime: every case runs and
//! passes, except those a VM changes by design (skipped with the reason its
//! `features` declare) and those this host cannot run (skipped by the
//! native runtime too). No QEMU, shim or state file outlives the run.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use harness::results::Status;
use harness::runner::{self, Options};
use harness::runtime::Runtime;

#[test]
fn the_suite_passes_but_for_what_a_vm_changes_and_declares() {
    if !common::can_run() {
        return;
    }
    let exe = env!("CARGO_BIN_EXE_virtualized");
    let features: serde_json::Value =
        serde_json::from_slice(&std::process::Command::new(exe).arg("features").output().unwrap().stdout).unwrap();
    let declared: BTreeMap<String, String> =
        serde_json::from_value(features["annotations"].clone()).expect("features has annotations");
    // A boot is ~1.5 s of TCG, longer with both cores busy.
    let timeout = Duration::from_secs(60);
    let rt = Runtime::resolve(exe, vec![], timeout).unwrap();
    let probe = harness::find_probe().expect("the probe is built beside the test (cargo build)");
    let work = tempfile::tempdir().unwrap();
    let opts = Options {
        // One VM per core: more only makes each boot slower.
        jobs: 2,
        workdir: work.path().to_path_buf(),
        timeout,
        command: vec!["runtimes/virtualized/tests/conform.rs".into()],
    };
    let all = harness::cases::all();
    let (r, still) = runner::run_confirming_failures(&all, &rt, &probe, &opts, &|_| false).unwrap();
    assert_eq!(r.cases.len(), all.len());
    assert!(still.is_empty(), "failed in the VM twice: {still:#?}");

    // Skips: by design (declared, and only on cases that need that key), or
    // for a reason of the host, which the native runtime meets too.
    let mut host_skips = Vec::new();
    for c in r.cases.iter().filter(|c| c.status == Status::Skipped) {
        if c.message.starts_with("by design in this runtime (") {
            let case = all.iter().find(|k| k.id == c.id).unwrap();
            let declared_key = case.needs.iter().any(|n| match n {
                harness::case::Need::Unchanged(k) => {
                    declared.contains_key(&harness::case::by_design_annotation(k))
                        && c.message.contains(&harness::case::by_design_annotation(k))
                }
                _ => false,
            });
            assert!(
                declared_key,
                "{}: skipped as by design, but not for a key it needs: {}",
                c.id, c.message
            );
        } else {
            host_skips.push(c.id.clone());
        }
    }
    if !host_skips.is_empty() {
        let native = Runtime::resolve("native", vec![], Duration::from_secs(10)).unwrap();
        let again: Vec<_> = all
            .iter()
            .filter(|c| host_skips.contains(&c.id.to_string()))
            .copied()
            .collect();
        let n = runner::run(&again, &native, &probe, &opts, &|_| {}).unwrap();
        for c in &n.cases {
            assert_eq!(
                c.status,
                Status::Skipped,
                "{} is skipped in the VM but not by the native runtime on this host",
                c.id
            );
        }
    }
    let left = common::processes_under(work.path());
    assert!(left.is_empty(), "processes of the run's VMs outlived it: {left:#?}");
    let files = common::files_under(work.path());
    assert!(files.is_empty(), "files left in the state roots: {files:#?}");
}
