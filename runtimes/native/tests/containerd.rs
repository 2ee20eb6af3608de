//! A real client drives the native runtime: containerd (through its runc
//! shim, `ctr run --runc-binary`) runs an image made from the probe. The
//! test starts its own containerd on private paths and stops it.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn run(cmd: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The daemon is killed and its directories removed however the test ends.
struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The snapshotter may leave mounts below its root.
        let root = self.dir.path().display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&root))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").args(["-l", p]).status();
        }
    }
}

#[test]
fn containerd_runs_containers_with_native() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: containerd as root is what this test drives");
        return;
    }
    for bin in ["/usr/bin/containerd", "/usr/bin/ctr", "/usr/bin/podman"] {
        assert!(Path::new(bin).exists(), "{bin} is not installed: run ci/packages.sh");
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("containerd.sock");
    let sock_s = sock.display().to_string();
    let child = Command::new("containerd")
        .args(["--root", &dir.path().join("root").display().to_string()])
        .args(["--state", &dir.path().join("state").display().to_string()])
        .args(["--address", &sock_s])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let daemon = Daemon { child, dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(sock.exists(), "containerd did not start");

    // An OCI archive of a one-file image: the probe.
    let probe = harness::find_probe().expect("the probe is built beside the test");
    let rootfs = daemon.dir.path().join("rootfs");
    for d in ["proc", "sys", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(&probe, rootfs.join("probe")).unwrap();
    let tar = daemon.dir.path().join("rootfs.tar");
    let archive = daemon.dir.path().join("image.tar");
    let image = format!("localhost/native-ctr-probe:{}", std::process::id());
    let (c, _, e) = run(
        "tar",
        &["-C", rootfs.to_str().unwrap(), "-cf", tar.to_str().unwrap(), "."],
    );
    assert_eq!(c, 0, "{e}");
    let (c, _, e) = run("podman", &["import", "-q", tar.to_str().unwrap(), &image]);
    assert_eq!(c, 0, "{e}");
    let (c, _, e) = run(
        "podman",
        &[
            "save",
            "-q",
            "--format",
            "oci-archive",
            "-o",
            archive.to_str().unwrap(),
            &image,
        ],
    );
    let _ = run("podman", &["rmi", "-f", &image]);
    assert_eq!(c, 0, "{e}");
    let (c, _, e) = run("ctr", &["-a", &sock_s, "images", "import", archive.to_str().unwrap()]);
    assert_eq!(c, 0, "{e}");

    let native = env!("CARGO_BIN_EXE_native");
    let ctr_run = |id: &str, args: &[&str]| {
        let mut v = vec![
            "-a",
            sock_s.as_str(),
            "run",
            "--rm",
            "--runc-binary",
            native,
            image.as_str(),
            id,
        ];
        v.extend_from_slice(args);
        run("ctr", &v)
    };
    let (code, out, err) = ctr_run("native-echo", &["/probe", "echo", "hello", "from", "containerd"]);
    assert_eq!(code, 0, "ctr run: {err}");
    assert_eq!(out.trim(), "hello from containerd");
    let (code, _, err) = ctr_run("native-exit", &["/probe", "exit", "7"]);
    assert_eq!(code, 7, "exit status passed through: {err}");
    // Nothing of the containers is left in containerd.
    let (_, list, _) = run("ctr", &["-a", &sock_s, "containers", "ls", "-q"]);
    assert_eq!(list.trim(), "");
    drop(daemon);
}
