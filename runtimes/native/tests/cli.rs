//! The native runtime's command line as clients use it: --no-pivot,
//! --preserve-fds (and no other fd leaks in), --log with --log-format json.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const NATIVE: &str = env!("CARGO_BIN_EXE_native");

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A bundle running `/probe ARGS`.
fn bundle(dir: &Path, args: &[&str]) -> PathBuf {
    let b = dir.join("bundle");
    for d in ["proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(b.join("rootfs").join(d)).unwrap();
    }
    let probe = harness::find_probe().expect("the probe is built beside the test");
    std::fs::copy(probe, b.join("rootfs/probe")).unwrap();
    let mut argv = vec!["/probe"];
    argv.extend_from_slice(args);
    let cfg = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"args": argv, "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "hostname": "cli-test",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]}
    });
    std::fs::write(b.join("config.json"), cfg.to_string()).unwrap();
    b
}

fn run(root: &Path, extra: &[&str], b: &Path, id: &str, fd3: Option<&std::fs::File>) -> Output {
    let mut cmd = Command::new(NATIVE);
    cmd.arg("--root")
        .arg(root)
        .arg("run")
        .args(extra)
        .arg("--bundle")
        .arg(b)
        .arg(id);
    cmd.stdin(Stdio::null());
    if let Some(f) = fd3 {
        let raw = f.as_raw_fd();
        // SAFETY: dup2 and fcntl are async-signal-safe; they run in the
        // forked child before exec and only make `raw` (open in the parent)
        // fd 3 without close-on-exec. dup2 onto itself would keep the flag,
        // so that case clears it directly.
        unsafe {
            cmd.pre_exec(move || {
                let r = if raw == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(raw, 3)
                };
                if r < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd.output().unwrap()
}

fn report(out: &Output) -> probe::Report {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no report: {text} / {}", String::from_utf8_lossy(&out.stderr)));
    serde_json::from_str(line).unwrap()
}

#[test]
fn no_pivot_runs_in_the_rootfs() {
    if !is_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let b = bundle(t.path(), &["report", "/probe"]);
    let out = run(&t.path().join("root"), &["--no-pivot"], &b, "np", None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = report(&out);
    assert!(r.paths["/probe"].exists);
    assert_eq!(r.pid, 1);
}

#[test]
fn preserved_fds_pass_and_nothing_else_leaks() {
    if !is_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let b = bundle(t.path(), &["report"]);
    let extra = std::fs::File::create(t.path().join("extra")).unwrap();
    let root = t.path().join("root");
    let with = report(&run(&root, &["--preserve-fds", "1"], &b, "pf1", Some(&extra)));
    assert!(
        with.fds.iter().any(|f| f.fd == 3 && f.target.ends_with("/extra")),
        "fd 3 not passed: {:?}",
        with.fds
    );
    let without = report(&run(&root, &[], &b, "pf2", Some(&extra)));
    assert!(without.fds.iter().all(|f| f.fd != 3), "fd 3 leaked: {:?}", without.fds);
}

#[test]
fn errors_go_to_the_log_as_json() {
    let t = tempfile::tempdir().unwrap();
    let log = t.path().join("log.json");
    let out = Command::new(NATIVE)
        .args(["--root", t.path().join("root").to_str().unwrap()])
        .args([
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "start",
            "no-such-container",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().unwrap().contains("no-such-container"), "{line}");
}
