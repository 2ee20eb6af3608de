//! `probe bench` run as the harness runs it: the built binary, one JSON line
//! on stdout, the exit code and stderr on failure.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use probe::bench::{BenchOutput, BENCH_SCHEMA};

const PROBE: &str = env!("CARGO_BIN_EXE_probe");

fn probe(args: &[&str]) -> Output {
    Command::new(PROBE)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run probe")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A fresh directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("probe-bench-it-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn entries(&self) -> Vec<String> {
        std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bench_ok(args: &[&str]) -> BenchOutput {
    let out = probe(args);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one line of json: {text}");
    serde_json::from_str(&text).expect("bench json")
}

#[test]
fn getpid_prints_one_json_line() {
    let out = bench_ok(&["bench", "getpid", "--batches", "3", "--batch-ms", "2"]);
    assert_eq!(out.schema, BENCH_SCHEMA);
    assert_eq!(out.workload, "getpid");
    assert_eq!(out.op, "getppid syscall");
    assert!(out.ops_per_batch > 1, "a syscall is far shorter than 2 ms");
    assert_eq!(out.ns_per_op.len(), 3);
    assert!(out.ns_per_op.iter().all(|ns| ns.is_finite() && *ns > 0.0));
}

#[test]
fn fork_exec_runs_the_probe() {
    let scratch = Scratch::new("fork-exec");
    let args = ["bench", "fork-exec", "--batches", "2", "--batch-ms", "2"];
    for exe in [PROBE, "/proc/self/exe"] {
        let out = bench_ok(&[&args[..], &["--exe", exe, "--dir", scratch.path()]].concat());
        assert_eq!(out.op, "fork + exec + wait");
        assert_eq!(out.ns_per_op.len(), 2);
        assert!(out.ns_per_op.iter().all(|ns| ns.is_finite() && *ns > 0.0));
    }
    // The default --exe is the probe itself.
    bench_ok(&args);
}

#[test]
fn workload_failures_exit_1_and_name_the_errno() {
    let out = probe(&["bench", "fork-exec", "--batch-ms", "1", "--exe", "/bin/false"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "probe: bench fork-exec: `/bin/false true` exited with 1"
    );
    assert!(out.stdout.is_empty());

    let out = probe(&["bench", "stat", "--dir", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).trim(), "probe: bench stat: chdir /nonexistent: ENOENT");
}

#[test]
fn bad_command_lines_exit_2_and_name_the_value() {
    let out = probe(&["bench", "getpid", "--batches", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let first = stderr(&out).lines().next().unwrap_or_default().to_string();
    assert_eq!(first, r#"probe: bench: --batches must be a positive integer, got "x""#);

    let out = probe(&["bench", "syscalls"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with(r#"probe: bench: unknown workload "syscalls"; known: getpid, open-close,"#),
        "{}",
        stderr(&out)
    );
}

#[test]
fn file_io_removes_its_file_when_filling_fails() {
    // A file size limit of 1 MiB (in 512- or 1024-byte blocks, depending on
    // the shell) makes filling the 16 MiB file fail with EFBIG; SIGXFSZ is
    // ignored so that the probe sees the errno instead of dying.
    let scratch = Scratch::new("file-io-efbig");
    let out = Command::new("/bin/sh")
        .args([
            "-c",
            "trap '' XFSZ; ulimit -f 1024; exec \"$0\" bench file-io --dir \"$1\"",
        ])
        .args([PROBE, scratch.path()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let expected = "probe: bench file-io: fill ";
    assert!(stderr(&out).starts_with(expected), "{}", stderr(&out));
    assert!(stderr(&out).trim().ends_with(": EFBIG"), "{}", stderr(&out));
    assert!(scratch.entries().is_empty(), "{:?}", scratch.entries());

    bench_ok(&[
        "bench",
        "file-io",
        "--batches",
        "2",
        "--batch-ms",
        "2",
        "--dir",
        scratch.path(),
    ]);
    assert!(scratch.entries().is_empty(), "{:?}", scratch.entries());
}
