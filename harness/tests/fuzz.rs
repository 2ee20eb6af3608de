//! `harness fuzz` against the bundled runtime: a short seeded run writes a
//! summary whose findings agree with the exit code; a runtime that lies is
//! caught, its finding shrunk and written as a reproducer that replays on
//! it and not on an honest runtime; bad arguments exit 2 naming the value.

mod common;

use common::*;
use serde_json::Value;

fn read_json(p: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

#[test]
fn a_seeded_run_writes_its_summary_and_exit_code_follows_findings() {
    if !is_root() {
        eprintln!("skipped: harness fuzz drives real containers, which needs root");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let r = harness(&[
        "fuzz",
        "--runtime",
        "native",
        "--cases",
        "15",
        "--seed",
        "7",
        "--output",
        dir,
    ]);
    assert!(r.code == 0 || r.code == 1, "exit {}: {}", r.code, r.stderr);
    let s = read_json(&out.path().join("fuzz.json"));
    assert_eq!(s["seed"], 7);
    assert_eq!(s["cases"], 15);
    assert_eq!(s["invalid"], 3, "one case in five is invalid");
    let findings = s["findings"].as_array().unwrap();
    assert_eq!(r.code, i32::from(!findings.is_empty()), "{findings:?}");
    let native = &s["runtimes"][0];
    assert_eq!(native["label"], "native");
    let passed = native["passed"].as_u64().unwrap();
    assert!(passed <= 15);
    if findings.is_empty() {
        assert_eq!(passed, 15, "no finding, so every case passed: {s}");
    }
    for f in findings {
        let repro = std::path::Path::new(f["reproducer"].as_str().unwrap());
        assert!(repro.join("config.json").is_file() && repro.join("replay.sh").is_file());
    }
    assert!(
        r.stdout.contains("native") && r.stdout.contains("seed 7"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("--seed 7"), "the seed is printed: {}", r.stderr);
}

#[test]
fn a_lying_runtime_is_caught_shrunk_and_replayed() {
    if !is_root() {
        eprintln!("skipped: harness fuzz drives real containers, which needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let native = std::path::Path::new(HARNESS).parent().unwrap().join("native");
    // Wraps native, but changes HOME in the config before creating: every
    // valid config's `process.env` promise is broken.
    let liar = script(
        tmp.path(),
        "liar",
        &format!(
            "#!/bin/sh\nprev=\nfor a in \"$@\"; do\n  if [ \"$prev\" = --bundle ]; then\n    sed -i 's|\"HOME=/root\"|\"HOME=/liar\"|' \"$a/config.json\"\n  fi\n  prev=$a\ndone\nexec {} \"$@\"\n",
            native.display()
        ),
    );
    let out = tmp.path().join("out");
    let r = harness(&[
        "fuzz",
        "--runtime",
        liar.to_str().unwrap(),
        "--cases",
        "4",
        "--seed",
        "3",
        "--shrink-runs",
        "60",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let s = read_json(&out.join("fuzz.json"));
    let f = s["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["what"] == "process.env.HOME")
        .unwrap_or_else(|| panic!("no HOME finding: {s}"));
    assert_eq!(f["clause"], "config.process.env");
    assert_eq!(f["observed"]["liar"], "HOME=/liar");
    assert!(f["shrink_runs"].as_u64().unwrap() > 1, "{f}");
    let repro = f["reproducer"].as_str().unwrap();
    // Shrunk: the knobs that do not matter went back to plain.
    let case = read_json(&std::path::Path::new(repro).join("case.json"));
    let knobs = &case["Valid"];
    assert_eq!(knobs["tmpfs"], serde_json::json!([]), "{knobs}");
    assert_eq!(knobs["hooks"], false, "{knobs}");
    let again = harness(&["fuzz", "--replay", repro, "--runtime", liar.to_str().unwrap()]);
    assert_eq!(again.code, 1, "{}{}", again.stdout, again.stderr);
    assert!(again.stdout.contains("REPRODUCED"), "{}", again.stdout);
    let honest = harness(&["fuzz", "--replay", repro, "--runtime", "native"]);
    assert_eq!(honest.code, 0, "{}{}", honest.stdout, honest.stderr);
    assert!(honest.stdout.contains("not reproduced"), "{}", honest.stdout);
}

#[test]
fn bad_arguments_exit_2_naming_the_value() {
    for (args, needle) in [
        (vec!["--runtime", "native", "--cases", "0"], "--cases"),
        (vec!["--runtime", "native", "--jobs", "0"], "--jobs"),
        (vec!["--runtime", "native", "--timeout", "-3"], "-3"),
        (vec!["--runtime", "/no/such/runtime"], "/no/such/runtime"),
        (
            vec!["--runtime", "native", "--replay", "/no/such/finding"],
            "/no/such/finding",
        ),
        (vec!["--runtime", "native", "--seed", "x1"], "x1"),
    ] {
        let mut full = vec!["fuzz"];
        full.extend(args.iter().copied());
        let r = harness(&full);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
    }
}
