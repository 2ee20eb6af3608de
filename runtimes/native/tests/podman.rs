//! A real client drives the native runtime: podman runs an image made from
//! the probe, with output and exit codes passed through.
//!
//! The rlimits are pinned because this machine's root lacks
//! CAP_SYS_RESOURCE, and podman's defaults raise hard limits (runc fails
//! the same way without them).

use std::path::Path;
use std::process::Command;

fn podman(args: &[&str]) -> (i32, String, String) {
    let out = Command::new("podman").args(args).output().expect("podman runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn podman_runs_containers_with_native() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: podman as root is what this test drives");
        return;
    }
    assert!(
        Path::new("/usr/bin/podman").exists(),
        "podman is not installed: run ci/packages.sh"
    );
    let probe = harness::find_probe().expect("the probe is built beside the test");
    let t = tempfile::tempdir().unwrap();
    let rootfs = t.path().join("rootfs");
    for d in ["proc", "sys", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(&probe, rootfs.join("probe")).unwrap();
    let tar = t.path().join("rootfs.tar");
    let st = Command::new("tar")
        .args(["-C", rootfs.to_str().unwrap(), "-cf", tar.to_str().unwrap(), "."])
        .status()
        .unwrap();
    assert!(st.success());
    let image = format!("localhost/native-test-probe:{}", std::process::id());
    let (code, _, err) = podman(&["import", "-q", tar.to_str().unwrap(), &image]);
    assert_eq!(code, 0, "podman import: {err}");
    let rt = env!("CARGO_BIN_EXE_native");
    let run = |args: &[&str]| {
        let mut v = vec![
            "--runtime",
            rt,
            "run",
            "--rm",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            &image,
        ];
        v.extend_from_slice(args);
        podman(&v)
    };
    let (code, out, err) = run(&["/probe", "echo", "hello", "from", "podman"]);
    let (code7, _, err7) = run(&["/probe", "exit", "7"]);
    let _ = podman(&["rmi", "-f", &image]);
    assert_eq!(code, 0, "podman run: {err}");
    assert_eq!(out.trim(), "hello from podman");
    assert_eq!(code7, 7, "exit status passed through: {err7}");
}
