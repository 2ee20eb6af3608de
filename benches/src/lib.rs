//! What the benchmarks share: a bundle running the probe, the runtimes
//! found on this machine, and one timed container run with its peak memory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// `target/<triple>/<profile>/` of this build: the probe and the bundled
/// runtimes sit there.
pub fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // benches run from .../release/deps/lifecycle-HASH
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("build directory")
}

/// Runtimes to compare: the bundled native one, then crun and runc if
/// installed.
pub fn runtimes() -> Vec<(String, PathBuf)> {
    let native = build_dir().join("native");
    assert!(
        native.exists() && build_dir().join("probe").exists(),
        "build the workspace first (cargo build --release): {} and the probe must exist",
        native.display()
    );
    let mut v = vec![("native".to_string(), native)];
    for (name, path) in [("crun", "/usr/bin/crun"), ("runc", "/usr/sbin/runc")] {
        if Path::new(path).exists() {
            v.push((name.to_string(), PathBuf::from(path)));
        }
    }
    v.retain(|(_, p)| p.exists());
    v
}

/// A bundle whose program is `/probe true`. ociVersion 1.0.2: what every
/// peer accepts.
pub fn bundle(dir: &Path) -> PathBuf {
    let b = dir.join("bundle");
    for d in ["proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(b.join("rootfs").join(d)).expect("rootfs");
    }
    std::fs::copy(build_dir().join("probe"), b.join("rootfs/probe")).expect("probe beside the benchmark");
    let cfg = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": true},
        "process": {"args": ["/probe", "true"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                     "env": ["PATH=/bin"], "noNewPrivileges": true},
        "hostname": "bench",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]}
    });
    std::fs::write(b.join("config.json"), cfg.to_string()).expect("config");
    b
}

/// crun 1.8 refuses hybrid cgroups: the benchmark process moves into a
/// private mount namespace without the cgroup2 mount, so every runtime is
/// measured in the same environment.
pub fn hide_hybrid_cgroup2() {
    let unified = Path::new("/sys/fs/cgroup/unified");
    if !unified.exists() {
        return;
    }
    // SAFETY: unshare/mount/umount2 with valid static C strings; they only
    // change this process's own, new mount namespace.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return;
        }
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        );
        libc::umount2(c"/sys/fs/cgroup/unified".as_ptr(), libc::MNT_DETACH);
    }
}

/// `RUNTIME --root ROOT run --bundle B ID`, then a forced delete: the wall
/// time of the run and the peak RSS (KiB) of the runtime and what it waited
/// for, from wait4.
// The child is reaped by wait4, which std's wait cannot do with rusage.
#[allow(clippy::zombie_processes)]
pub fn run_once(runtime: &Path, root: &Path, bundle: &Path, id: &str) -> (Duration, i64) {
    let start = Instant::now();
    let child = Command::new(runtime)
        .arg("--root")
        .arg(root)
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn runtime");
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for the child we spawned; both out pointers are valid.
    unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    let took = start.elapsed();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{} run failed",
        runtime.display()
    );
    let _ = Command::new(runtime)
        .arg("--root")
        .arg(root)
        .args(["delete", "-f", id])
        .stderr(std::process::Stdio::null())
        .status();
    (took, ru.ru_maxrss)
}
