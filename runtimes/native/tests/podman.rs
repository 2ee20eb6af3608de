//! A real client drives the bundled runtimes: podman runs an image made
//! from the probe with `--runtime native`, and with `--runtime sandboxed`
//! (built beside it by the workspace), output and exit codes passed through.
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
    let native = Path::new(env!("CARGO_BIN_EXE_native"));
    let sandboxed = native.with_file_name("sandboxed");
    let mut runtimes = vec![native.to_path_buf()];
    if sandboxed.exists() {
        runtimes.push(sandboxed);
    }
    let mut failures = Vec::new();
    for rt in &runtimes {
        let rt = rt.to_str().unwrap();
        if let Err(e) = run_with(rt, &image) {
            failures.push(format!("{rt}: {e}"));
        }
    }
    let _ = podman(&["rmi", "-f", &image]);
    assert!(failures.is_empty(), "{failures:#?}");
}

fn run_with(rt: &str, image: &str) -> Result<(), String> {
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
            image,
        ];
        v.extend_from_slice(args);
        podman(&v)
    };
    let (code, out, err) = run(&["/probe", "echo", "hello", "from", "podman"]);
    let (code7, _, err7) = run(&["/probe", "exit", "7"]);
    if code != 0 || out.trim() != "hello from podman" {
        return Err(format!("podman run: exit {code}, output {out:?}: {err}"));
    }
    if code7 != 7 {
        return Err(format!("exit status not passed through: {code7}: {err7}"));
    }
    Ok(())
}
