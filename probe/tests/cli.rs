//! Runs the built probe binary the way the harness does.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use probe::Report;

const PROBE: &str = env!("CARGO_BIN_EXE_probe");

fn probe(args: &[&str]) -> Output {
    Command::new(PROBE)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run probe")
}

fn probe_with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(PROBE)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn probe");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("probe-cli-{}-{name}", std::process::id()))
}

#[test]
fn report_parses_with_sensible_values() {
    let mut child = Command::new(PROBE)
        .args(["report", "/dev/null", "/nonexistent", "sysctl:kernel.hostname"])
        .env("PROBE_TEST_VAR", "a b")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut text = String::new();
    child.stdout.take().unwrap().read_to_string(&mut text).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(text.lines().count(), 1, "one line of json");
    let report: Report = serde_json::from_str(&text).expect("report json");

    assert_eq!(report.schema, probe::REPORT_SCHEMA);
    assert_eq!(report.pid, pid);
    assert_eq!(report.ppid, std::process::id() as i32);
    assert_eq!(
        report.args[1..],
        ["report", "/dev/null", "/nonexistent", "sysctl:kernel.hostname"]
    );
    assert!(report.env.iter().any(|e| e == "PROBE_TEST_VAR=a b"));
    assert_eq!(report.cwd, std::env::current_dir().unwrap().to_str().unwrap());

    let null = &report.paths["/dev/null"];
    assert!(null.exists);
    assert_eq!(null.kind, "c");
    assert_eq!((null.major, null.minor), (1, 3));
    assert_eq!(null.stat_error, None);

    let missing = &report.paths["/nonexistent"];
    assert!(!missing.exists);
    assert_eq!(missing.stat_error.as_deref(), Some("ENOENT"));

    assert_eq!(report.sysctls["kernel.hostname"], report.hostname);
    assert_eq!(report.rlimits.len(), 16);
    assert!(report.rlimits.contains_key("RLIMIT_NOFILE"));
    assert!(report.namespaces.contains_key("pid"));
    assert!(report.mounts.iter().any(|m| m.mount_point == "/"));
    assert!(report.devices.iter().any(|d| d.path == "/dev/null" && d.kind == "c"));
    assert!(!report.cgroups.is_empty());
    assert!(report.net_interfaces.iter().any(|n| n == "lo"));
    assert_eq!(report.stdio.targets[0], "/dev/null");
    assert!(!report.stdio.stdin_tty);
    assert!(report.fds.iter().all(|f| f.fd > 2));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.caps.bounding & 1, report.caps.bounding & 1);
}

#[test]
fn exit_code() {
    assert_eq!(probe(&["exit", "7"]).status.code(), Some(7));
    assert_eq!(probe(&["true"]).status.code(), Some(0));
}

#[test]
fn echo_joins_arguments() {
    let out = probe(&["echo", "hello", "big world"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, b"hello big world\n");
    assert_eq!(probe(&["echo"]).stdout, b"\n");
}

#[test]
fn cat_copies_stdin() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let out = probe_with_stdin(&["cat"], &data);
    assert!(out.status.success());
    assert_eq!(out.stdout, data);
}

#[test]
fn write_creates_and_reports_errors() {
    let path = scratch("write");
    let p = path.to_str().unwrap();
    assert!(probe(&["write", p]).status.success());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "probe");
    assert!(probe(&["write", p, "x"]).status.success());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "x");
    std::fs::remove_file(&path).unwrap();

    let out = probe(&["write", "/nonexistent/dir/file"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "write /nonexistent/dir/file: ENOENT"
    );
}

#[test]
fn syscall_getpid() {
    let child = Command::new(PROBE)
        .args(["syscall", "getpid"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["syscall"], "getpid");
    assert_eq!(v["ret"], i64::from(pid));
    assert!(v["errno"].is_null());

    let out = probe(&["syscall", "chdir", "/nonexistent"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ret"], -1);
    assert_eq!(v["errno"], "ENOENT");

    assert_eq!(probe(&["syscall", "nosuchcall"]).status.code(), Some(2));
}

#[test]
fn hook_appends_a_record() {
    let path = scratch("hook");
    let p = path.to_str().unwrap();
    let state = br#"{"ociVersion":"1.2.0","id":"c1","status":"created","pid":4242,"bundle":"/b"}"#;
    let out = probe_with_stdin(&["hook", "prestart", p], state);
    assert!(out.status.success(), "{out:?}");
    let out = probe_with_stdin(&["hook-fail", "poststop", p], b"garbage");
    assert_eq!(out.status.code(), Some(1));

    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["hook"], "prestart");
    assert_eq!(lines[0]["state"]["id"], "c1");
    assert_eq!(lines[0]["state"]["pid"], 4242);
    assert_eq!(lines[0]["args"][1], "hook");
    assert!(lines[0]["pid"].as_i64().unwrap() > 0);
    assert!(lines[0]["namespaces"]["mnt"].as_u64().is_some());
    assert!(lines[0]["time_ns"].as_u64().unwrap() > 0);
    assert_eq!(lines[1]["hook"], "poststop");
    assert!(lines[1]["state"].is_null());
    assert_eq!(lines[1]["stdin"], "garbage");
}

fn read_line_within(reader: &mut impl BufRead, limit: Duration) -> String {
    let start = Instant::now();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(start.elapsed() < limit, "line took too long");
    line
}

#[test]
fn signals_are_reported_until_sigkill() {
    let mut child = Command::new(PROBE)
        .arg("signals")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert_eq!(read_line_within(&mut out, Duration::from_secs(10)), "ready\n");
    for (sig, name) in [
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGHUP, "SIGHUP"),
    ] {
        // SAFETY: `pid` is our own child, which has not been waited for, so
        // the pid cannot have been reused.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
        assert_eq!(read_line_within(&mut out, Duration::from_secs(10)), format!("{name}\n"));
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "");
}

#[test]
fn unknown_command_is_a_usage_error() {
    let out = probe(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("probe: unknown command `frobnicate`"));
    assert_eq!(probe(&[]).status.code(), Some(2));
    assert_eq!(probe(&["exit"]).status.code(), Some(2));
}

#[test]
fn json_commands_print_json() {
    for cmd in ["tty", "ps", "listen-fds"] {
        let out = probe(&[cmd]);
        assert!(out.status.success(), "{cmd}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v.is_object() || v.is_array(), "{cmd}");
    }
    let out = Command::new(PROBE)
        .arg("listen-fds")
        .env("LISTEN_FDS", "2")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["LISTEN_FDS"], "2");
    assert!(v["LISTEN_PID"].is_null());
}

#[test]
fn sleep_fraction_and_bad_duration() {
    let start = Instant::now();
    assert!(probe(&["sleep", "0.2"]).status.success());
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(probe(&["sleep", "soon"]).status.code(), Some(2));
}

#[test]
fn binary_is_static() {
    // A static binary has no PT_INTERP program header; look for the loader
    // path string, which only a dynamic executable carries.
    let bytes = std::fs::read(PROBE).unwrap();
    let needle = b"/lib64/ld-linux-x86-64.so.2";
    assert!(!bytes.windows(needle.len()).any(|w| w == needle));
}
