//! The CLI's contract with its users: bad input is named and exits 2, the
//! listings are complete, and a run against real runtimes produces valid,
//! versioned results without leaks or harness errors.

mod common;

use common::*;

#[test]
fn missing_runtime_is_named_and_exits_2() {
    let r = harness(&["conform", "--runtime", "/no/such/runtime"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("/no/such/runtime"), "{}", r.stderr);
}

#[test]
fn non_executable_runtime_is_named_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rt");
    std::fs::write(&p, "#!/bin/sh\n").unwrap();
    let r = harness(&["conform", "--runtime", p.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not executable"), "{}", r.stderr);
}

#[test]
fn unknown_case_selection_exits_2() {
    let r = harness(&["conform", "--runtime", "/bin/true", "--only", "nope::nothing"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("nope::nothing"), "{}", r.stderr);
}

#[test]
fn bad_timeout_is_named() {
    let r = harness(&["conform", "--runtime", "/bin/true", "--timeout", "-1"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--timeout") && r.stderr.contains("-1"),
        "{}",
        r.stderr
    );
}

#[test]
fn list_has_every_case_with_clauses() {
    let r = harness(&["list", "--json"]);
    assert_eq!(r.code, 0);
    let v: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v.len(), harness::cases::all().len());
    assert!(v.len() >= 120, "only {} cases", v.len());
    assert!(v.iter().all(|c| c["clauses"].as_array().is_some_and(|a| !a.is_empty())));
}

#[test]
fn clauses_counts_citations() {
    let r = harness(&["clauses", "--json"]);
    assert_eq!(r.code, 0);
    let v: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v.len(), specs::catalog().len());
    let cited = v.iter().find(|c| c["id"] == "runtime.kill.send-signal").unwrap();
    assert!(cited["cases"].as_u64().unwrap() >= 2);
}

#[test]
fn runc_full_suite() {
    let Some(runc) = installed("runc") else {
        panic!("runc is not installed: run ci/packages.sh");
    };
    if !is_root() {
        eprintln!("skipping: the suite needs root");
        return;
    }
    let (run, r) = conform(runc.to_str().unwrap(), &[]);
    assert_eq!(r.schema, harness::results::SCHEMA);
    assert_eq!(r.cases.len(), harness::cases::all().len());
    assert_eq!(harness_errors(&r), Vec::<String>::new());
    let s = &r.summary;
    assert_eq!(s.passed + s.failed + s.skipped, r.cases.len());
    assert_eq!(run.code, i32::from(s.failed > 0));
    // The table went to the terminal as well.
    assert!(run.stdout.contains("clause coverage"), "{}", run.stdout);
    // runc is the reference of its class: most of the suite passes on it.
    assert!(
        s.passed * 10 >= r.cases.len() * 8,
        "runc passed only {} of {}",
        s.passed,
        r.cases.len()
    );
    for c in &r.cases {
        if let Some(f) = &c.failure {
            assert!(
                specs::catalog().get(&f.clause).is_some(),
                "{} failed on unknown clause {}",
                c.id,
                f.clause
            );
            assert!(
                !f.observed.contains("left behind"),
                "{} leaked on runc: {}",
                c.id,
                f.observed
            );
        }
    }
}

#[test]
fn crun_suite_in_private_mount_namespace() {
    // crun 1.8 refuses hybrid cgroups; it runs with the v2 mount hidden.
    let (Some(crun), Some(unshare)) = (installed("crun"), installed("unshare")) else {
        panic!("crun is not installed: run ci/packages.sh");
    };
    if !is_root() {
        eprintln!("skipping: the suite needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let cmd = format!(
        "umount /sys/fs/cgroup/unified 2>/dev/null; exec {HARNESS} conform --runtime {} --format json --output {}",
        crun.display(),
        out.display()
    );
    let status = std::process::Command::new(unshare)
        .args(["-m", "--propagation", "private", "sh", "-c", &cmd])
        .status()
        .unwrap();
    assert!(matches!(status.code(), Some(0 | 1)), "{status}");
    let r: harness::results::Results = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    assert_eq!(harness_errors(&r), Vec::<String>::new());
    assert!(r.summary.passed > r.cases.len() / 2, "crun passed {}", r.summary.passed);
}

#[test]
fn runsc_suite_with_network_none() {
    let Some(runsc) = installed("runsc") else {
        panic!("runsc is not installed: run ci/packages.sh");
    };
    if !is_root() {
        eprintln!("skipping: the suite needs root");
        return;
    }
    let (_, r) = conform(runsc.to_str().unwrap(), &["--runtime-arg=--network=none"]);
    assert_eq!(harness_errors(&r), Vec::<String>::new());
    assert_eq!(r.runtime.args, vec!["--network=none".to_string()]);
    // gVisor departs in places; what matters is that every case ended.
    assert_eq!(r.cases.len(), harness::cases::all().len());
    assert!(r.summary.passed > 0);
}
