use super::*;
use crate::syscall::{Call, RecordingSyscall};
use serde_json::{json, Value};
use std::os::unix::fs::symlink;

const UNIFIED: &str =
    "30 1 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n\
    22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n";

const HYBRID: &str = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
    25 22 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:5 - tmpfs tmpfs ro,mode=755\n\
    26 25 0:22 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:6 - cgroup2 cgroup2 rw,nsdelegate\n\
    27 25 0:23 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:7 - cgroup cgroup rw,cpu,cpuacct\n\
    28 25 0:24 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:8 - cgroup cgroup rw,memory\n";

const PROC_CGROUP: &str = "4:memory:/ctr\n3:cpu,cpuacct:/ctr\n0::/ctr\n";

/// A temp dir holding `bundle/rootfs`, a spec built from `cfg` merged over
/// a runc-like default, and a recorder rooted at the temp dir.
struct Fixture {
    _t: tempfile::TempDir,
    bundle: PathBuf,
    rootfs: PathBuf,
    sys: RecordingSyscall,
}

fn fixture() -> Fixture {
    let t = tempfile::tempdir().unwrap();
    let bundle = t.path().join("bundle");
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let sys = RecordingSyscall::new(t.path());
    sys.set_file(Path::new("/proc/self/mountinfo"), UNIFIED);
    sys.set_file(Path::new("/proc/self/cgroup"), PROC_CGROUP);
    Fixture {
        _t: t,
        bundle,
        rootfs,
        sys,
    }
}

fn runc_like() -> Value {
    json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "hostname": "box",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/kcore", "/proc/acpi", "/proc/missing"],
            "readonlyPaths": ["/proc/sys"]
        }
    })
}

fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

fn spec_with(over: Value) -> Spec {
    let mut v = runc_like();
    merge(&mut v, over);
    serde_json::from_value(v).unwrap()
}

fn cfg<'a>(f: &Fixture, spec: &'a Spec) -> RootfsConfig<'a> {
    let mut c = RootfsConfig::new(spec, &f.rootfs, &f.bundle);
    c.selinux = false;
    c
}

fn mounts(calls: &[Call]) -> Vec<Call> {
    calls
        .iter()
        .filter(|c| matches!(c, Call::Mount { .. }))
        .cloned()
        .collect()
}

fn mount(src: Option<&str>, target: &Path, fstype: Option<&str>, flags: c_ulong, data: Option<&str>) -> Call {
    Call::Mount {
        source: src.map(PathBuf::from),
        target: target.to_path_buf(),
        fstype: fstype.map(String::from),
        flags,
        data: data.map(String::from),
    }
}

use libc::{
    MS_BIND, MS_MOVE, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_RELATIME, MS_REMOUNT,
    MS_SHARED, MS_SLAVE, MS_STRICTATIME, MS_UNBINDABLE,
};

#[test]
fn typical_spec_mounts_in_order_with_flags() {
    let f = fixture();
    let spec = spec_with(json!({}));
    prepare(&cfg(&f, &spec), &f.sys).unwrap();
    let r = &f.rootfs;
    let nsx = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    assert_eq!(
        mounts(&f.sys.calls()),
        vec![
            mount(None, Path::new("/"), None, MS_SLAVE | MS_REC, None),
            mount(Some(r.to_str().unwrap()), r, None, MS_BIND | MS_REC, None),
            mount(Some("proc"), &r.join("proc"), Some("proc"), 0, None),
            mount(
                Some("tmpfs"),
                &r.join("dev"),
                Some("tmpfs"),
                MS_NOSUID | MS_STRICTATIME,
                Some("mode=755,size=65536k")
            ),
            mount(
                Some("devpts"),
                &r.join("dev/pts"),
                Some("devpts"),
                MS_NOSUID | MS_NOEXEC,
                Some("newinstance,ptmxmode=0666,mode=0620,gid=5")
            ),
            mount(
                Some("shm"),
                &r.join("dev/shm"),
                Some("tmpfs"),
                nsx,
                Some("mode=1777,size=65536k")
            ),
            mount(Some("mqueue"), &r.join("dev/mqueue"), Some("mqueue"), nsx, None),
            mount(Some("sysfs"), &r.join("sys"), Some("sysfs"), nsx | MS_RDONLY, None),
            // A unified host: cgroup2 directly.
            mount(
                Some("cgroup2"),
                &r.join("sys/fs/cgroup"),
                Some("cgroup2"),
                nsx | MS_RELATIME | MS_RDONLY,
                None
            ),
        ]
    );
    for d in ["proc", "dev/pts", "dev/shm", "dev/mqueue", "sys/fs/cgroup"] {
        assert!(r.join(d).is_dir(), "{d}");
    }
}

#[test]
fn default_devices_are_nodes_owned_by_the_container_root() {
    let f = fixture();
    let spec = spec_with(json!({}));
    let mut c = cfg(&f, &spec);
    c.owner = (1000, 1001);
    prepare(&c, &f.sys).unwrap();
    let calls = f.sys.calls();
    let dev = f.rootfs.join("dev");
    let mknods: Vec<_> = calls
        .iter()
        .filter(|c| matches!(c, Call::Mknod { .. }))
        .cloned()
        .collect();
    let want: Vec<Call> = [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .iter()
    .map(|(n, ma, mi)| Call::Mknod {
        path: dev.join(n),
        mode: libc::S_IFCHR | 0o666,
        dev: libc::makedev(*ma, *mi),
    })
    .collect();
    assert_eq!(mknods, want);
    // Mode set again past the umask, then the owner.
    let i = calls.iter().position(|c| c == &want[0]).unwrap();
    assert_eq!(
        calls[i + 1],
        Call::Chmod {
            path: dev.join("null"),
            mode: 0o666
        }
    );
    assert_eq!(
        calls[i + 2],
        Call::Chown {
            path: dev.join("null"),
            uid: Some(1000),
            gid: Some(1001)
        }
    );
}

#[test]
fn dev_symlinks_are_created() {
    let f = fixture();
    let spec = spec_with(json!({}));
    prepare(&cfg(&f, &spec), &f.sys).unwrap();
    let dev = f.rootfs.join("dev");
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        assert_eq!(std::fs::read_link(dev.join(link)).unwrap(), Path::new(target), "{link}");
    }
}

#[test]
fn an_image_ptmx_is_replaced_and_its_links_kept() {
    let f = fixture();
    std::fs::create_dir_all(f.rootfs.join("dev")).unwrap();
    std::fs::write(f.rootfs.join("dev/ptmx"), "").unwrap();
    symlink("/somewhere", f.rootfs.join("dev/fd")).unwrap();
    let spec = spec_with(json!({"mounts": []}));
    prepare(&cfg(&f, &spec), &f.sys).unwrap();
    assert_eq!(
        std::fs::read_link(f.rootfs.join("dev/ptmx")).unwrap(),
        Path::new("pts/ptmx")
    );
    assert_eq!(
        std::fs::read_link(f.rootfs.join("dev/fd")).unwrap(),
        Path::new("/somewhere")
    );
    assert!(f.sys.calls().contains(&Call::Unlink(f.rootfs.join("dev/ptmx"))));
}

#[test]
fn a_host_dev_bind_gets_no_devices_or_links() {
    let f = fixture();
    let spec = spec_with(json!({"mounts": [
        {"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]}
    ]}));
    prepare(&cfg(&f, &spec), &f.sys).unwrap();
    let calls = f.sys.calls();
    assert!(
        !calls
            .iter()
            .any(|c| matches!(c, Call::Mknod { .. } | Call::Symlink { .. })),
        "{calls:?}"
    );
    assert!(calls.contains(&mount(
        Some("/dev"),
        &f.rootfs.join("dev"),
        None,
        MS_BIND | MS_REC,
        None
    )));
}

#[test]
fn user_namespace_binds_default_devices_from_the_host() {
    let f = fixture();
    let spec = spec_with(json!({"mounts": [], "linux": {"namespaces": [{"type": "user"}, {"type": "mount"}]}}));
    let c = cfg(&f, &spec);
    assert!(c.userns);
    prepare(&c, &f.sys).unwrap();
    let calls = f.sys.calls();
    let null = f.rootfs.join("dev/null");
    assert!(!calls.iter().any(|c| matches!(c, Call::Mknod { .. })));
    assert!(calls.contains(&Call::CreateFile(null.clone())));
    assert!(calls.contains(&mount(Some("/dev/null"), &null, None, MS_BIND, None)));
    // The host's node must keep its owner and mode.
    assert!(!calls
        .iter()
        .any(|c| matches!(c, Call::Chown { .. } | Call::Chmod { .. })));
}

#[test]
fn mknod_refused_falls_back_to_a_bind() {
    let f = fixture();
    let spec = spec_with(json!({"mounts": []}));
    f.sys.fail_on("mknod", &f.rootfs.join("dev/tty"), libc::EPERM);
    prepare(&cfg(&f, &spec), &f.sys).unwrap();
    assert!(f
        .sys
        .calls()
        .contains(&mount(Some("/dev/tty"), &f.rootfs.join("dev/tty"), None, MS_BIND, None)));
}

#[test]
fn ro_bind_is_a_bind_then_a_remount_keeping_source_flags() {
    let f = fixture();
    std::fs::create_dir_all(f.bundle.join("data")).unwrap();
    let spec = spec_with(json!({"mounts": [
        {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "ro"]}
    ]}));
    let target = f.rootfs.join("data");
    f.sys.set_mount_flags(&target, MS_NOSUID | MS_NODEV);
    prepare(&cfg(&f, &spec), &f.sys).unwrap();
    let m = mounts(&f.sys.calls());
    let src = f.bundle.join("data");
    assert_eq!(
        m[2],
        mount(Some(src.to_str().unwrap()), &target, None, MS_BIND | MS_REC, None)
    );
    assert_eq!(
        m[3],
        mount(
            None,
            &target,
            None,
            MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
            None
        )
    );
    assert!(target.is_dir());
}

#[test]
fn plain_bind_needs_no_remount_and_rw_clears_a_carried_flag() {
    let f = fixture();
    std::fs::write(f.bundle.join("file"), "x").unwrap();
    let spec = spec_with(json!({"mounts": [
        {"destination": "/etc/f", "source": "file", "options": ["bind"]},
        {"destination": "/etc/g", "source": "file", "options": ["bind", "rw", "nosuid"]}
    ]}));
    let g = f.rootfs.join("etc/g");
    f.sys.set_mount_flags(&g, MS_RDONLY | MS_NODEV);
    prepare(&cfg(&f, &spec), &f.sys).unwrap();
    let m = mounts(&f.sys.calls());
    let src = f.bundle.join("file");
    assert_eq!(
        m[2],
        mount(
            Some(src.to_str().unwrap()),
            &f.rootfs.join("etc/f"),
            None,
            MS_BIND,
            None
        )
    );
    assert_eq!(m[3], mount(Some(src.to_str().unwrap()), &g, None, MS_BIND, None));
    assert_eq!(
        m[4],
        mount(None, &g, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV, None)
    );
    // File sources get a file to bind onto.
    assert!(f.rootfs.join("etc/f").is_file());
}

#[test]
fn destinations_through_symlinks_stay_in_the_rootfs() {
    let f = fixture();
    let r = &f.rootfs;
    std::fs::create_dir_all(r.join("etc")).unwrap();
    std::fs::create_dir_all(r.join("a/b")).unwrap();
    symlink("/etc", r.join("abs")).unwrap();
    symlink("../../../../../../etc", r.join("a/b/rel")).unwrap();
    symlink("/a/b/rel", r.join("nested")).unwrap();
    symlink("..", r.join("a/up")).unwrap();
    let spec = spec_with(json!({"mounts": [
        {"destination": "/abs/m1", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/a/b/rel/m2", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/nested/m3", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/a/up/a/up/etc/m4", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "rel/m5", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/../../../etc/m6", "type": "tmpfs", "source": "tmpfs"}
    ]}));
    prepare(&cfg(&f, &spec), &f.sys).unwrap();
    let targets: Vec<PathBuf> = mounts(&f.sys.calls())[2..8]
        .iter()
        .map(|c| c.path().unwrap().to_path_buf())
        .collect();
    assert_eq!(
        targets,
        ["etc/m1", "etc/m2", "etc/m3", "etc/m4", "rel/m5", "etc/m6"]
            .iter()
            .map(|p| r.join(p))
            .collect::<Vec<_>>()
    );
    for t in &targets {
        assert!(t.is_dir(), "{}", t.display());
    }
}

#[test]
fn a_device_path_through_a_symlink_stays_inside() {
    let f = fixture();
    symlink("/", f.rootfs.join("dev")).unwrap();
    std::fs::create_dir_all(f.rootfs.join("etc")).unwrap();
    symlink("../../..", f.rootfs.join("etc/evil")).unwrap();
    let spec = spec_with(json!({"mounts": [], "linux": {"devices": [
        {"path": "/etc/evil/fuse", "type": "c", "major": 10, "minor": 229}
    ]}}));
    prepare(&cfg(&f, &spec), &f.sys).unwrap();
    for c in f.sys.calls() {
        if let Some(p) = c.path() {
            assert!(p == Path::new("/") || p.starts_with(&f.rootfs), "{c:?}");
        }
    }
    assert!(f
        .sys
        .calls()
        .iter()
        .any(|c| matches!(c, Call::Mknod { path, .. } if *path == f.rootfs.join("fuse"))));
}

#[test]
fn spec_devices_get_type_mode_and_owner() {
    let f = fixture();
    let spec = spec_with(json!({"mounts": [], "linux": {"devices": [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 7, "gid": 8},
        {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0, "fileMode": 432},
        {"path": "/run/fifo", "type": "p"},
        {"path": "/dev/raw", "type": "u", "major": 162, "minor": 0}
    ]}}));
    prepare(&cfg(&f, &spec), &f.sys).unwrap();
    let calls = f.sys.calls();
    let r = &f.rootfs;
    for want in [
        Call::Mknod {
            path: r.join("dev/fuse"),
            mode: libc::S_IFCHR | 0o666,
            dev: libc::makedev(10, 229),
        },
        Call::Chown {
            path: r.join("dev/fuse"),
            uid: Some(7),
            gid: Some(8),
        },
        Call::Mknod {
            path: r.join("dev/sda"),
            mode: libc::S_IFBLK | 0o660,
            dev: libc::makedev(8, 0),
        },
        Call::Chmod {
            path: r.join("dev/sda"),
            mode: 0o660,
        },
        Call::MkdirAll {
            path: r.join("run"),
            mode: 0o755,
        },
        Call::Mknod {
            path: r.join("run/fifo"),
            mode: libc::S_IFIFO | 0o666,
            dev: 0,
        },
        Call::Mknod {
            path: r.join("dev/raw"),
            mode: libc::S_IFCHR | 0o666,
            dev: libc::makedev(162, 0),
        },
    ] {
        assert!(calls.contains(&want), "missing {want:?}");
    }
    // No owner given: none set.
    assert!(!calls
        .iter()
        .any(|c| matches!(c, Call::Chown { path, .. } if *path == r.join("dev/sda"))));
}

#[test]
fn an_existing_different_file_at_a_device_path_is_an_error() {
    let f = fixture();
    std::fs::create_dir_all(f.rootfs.join("dev")).unwrap();
    std::fs::write(f.rootfs.join("dev/fuse"), "").unwrap();
    let spec = spec_with(json!({"mounts": [], "linux": {"devices": [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}
    ]}}));
    let e = prepare(&cfg(&f, &spec), &f.sys).unwrap_err().to_string();
    assert_eq!(
        e,
        "linux.devices[0].path: \"/dev/fuse\" exists and is not the requested char device 10:229"
    );
}

#[test]
fn an_existing_matching_fifo_is_kept() {
    let f = fixture();
    std::fs::create_dir_all(f.rootfs.join("run")).unwrap();
    let p = std::ffi::CString::new(f.rootfs.join("run/fifo").to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(p.as_ptr(), 0o600) }, 0);
    let spec = spec_with(json!({"mounts": [], "linux": {"devices": [
        {"path": "/run/fifo", "type": "p", "fileMode": 420}
    ]}}));
    prepare(&cfg(&f, &spec), &f.sys).unwrap();
    let calls = f.sys.calls();
    assert!(!calls
        .iter()
        .any(|c| matches!(c, Call::Mknod { path, .. } if path.ends_with("run/fifo"))));
    assert!(calls.contains(&Call::Chmod {
        path: f.rootfs.join("run/fifo"),
        mode: 0o644
    }));
}

#[test]
fn device_errors_name_the_field() {
    let f = fixture();
    let spec = spec_with(json!({"mounts": [], "linux": {"devices": [
        {"path": "/dev/x", "type": "a", "major": 1, "minor": 1}
    ]}}));
    let e = prepare(&cfg(&f, &spec), &f.sys).unwrap_err().to_string();
    assert_eq!(e, "linux.devices[0].type: unknown \"a\" (c, b, u or p)");
    let spec = spec_with(json!({"mounts": [], "linux": {"devices": [
        {"path": "dev/x", "type": "c", "major": 1, "minor": 1}
    ]}}));
    let e = prepare(&cfg(&f, &spec), &f.sys).unwrap_err().to_string();
    assert_eq!(e, "linux.devices[0].path: \"dev/x\" must be absolute");
    let spec = spec_with(json!({"mounts": [], "linux": {"devices": [
        {"path": "/dev/x", "type": "c", "major": -1, "minor": 1}
    ]}}));
    let e = prepare(&cfg(&f, &spec), &f.sys).unwrap_err().to_string();
    assert_eq!(e, "linux.devices[0].major: out of range: -1");
}

#[test]
fn mount_errors_name_the_field_and_errno() {
    let f = fixture();
    let spec = spec_with(json!({}));
    f.sys.fail_on("mount", &f.rootfs.join("dev"), libc::EPERM);
    let e = prepare(&cfg(&f, &spec), &f.sys).unwrap_err().to_string();
    assert_eq!(e, "mounts[1]: mounting tmpfs on /dev: EPERM");

    let f = fixture();
    let spec = spec_with(json!({"mounts": [{"destination": "/x", "source": "nope", "options": ["bind"]}]}));
    let e = prepare(&cfg(&f, &spec), &f.sys).unwrap_err().to_string();
    assert!(
        e.starts_with("mounts[0].source: \"") && e.ends_with("bundle/nope\": ENOENT"),
        "{e}"
    );

    let spec = spec_with(json!({"mounts": [{"destination": "/x", "type": "bind", "options": ["rbind"]}]}));
    let e = prepare(&cfg(&f, &spec), &f.sys).unwrap_err().to_string();
    assert_eq!(e, "mounts[0].source: a bind mount needs a source");

    let spec = spec_with(json!({"mounts": [{"destination": "/x", "source": "/tmp", "options": ["rbind", "idmap"]}]}));
    let e = prepare(&cfg(&f, &spec), &f.sys).unwrap_err().to_string();
    assert!(e.starts_with("mounts[0].options: id-mapped mounts"), "{e}");

    let spec = spec_with(json!({"mounts": [{"destination": "/x", "type": "tmpfs", "options": ["tmpcopyup"]}]}));
    let e = prepare(&cfg(&f, &spec), &f.sys).unwrap_err().to_string();
    assert_eq!(e, "mounts[0].options: \"tmpcopyup\" is not supported");
}

#[test]
fn the_rootfs_must_be_a_directory() {
    let f = fixture();
    let spec = spec_with(json!({}));
    let mut c = cfg(&f, &spec);
    c.rootfs = f.bundle.join("missing");
    let e = prepare(&c, &f.sys).unwrap_err().to_string();
    assert!(e.starts_with("root.path: ") && e.ends_with("missing\": ENOENT"), "{e}");
    assert!(f.sys.calls().is_empty(), "nothing is mounted before the check");
}

#[test]
fn rootfs_propagation_before_and_after_the_pivot() {
    for (value, before, after) in [
        ("private", MS_PRIVATE | MS_REC, MS_PRIVATE),
        ("slave", MS_SLAVE | MS_REC, MS_SLAVE),
        ("shared", MS_SHARED | MS_REC, MS_SHARED),
        ("unbindable", MS_PRIVATE | MS_REC, MS_UNBINDABLE),
        ("rprivate", MS_PRIVATE | MS_REC, MS_PRIVATE | MS_REC),
    ] {
        let f = fixture();
        let spec = spec_with(json!({"mounts": [], "linux": {"rootfsPropagation": value}}));
        prepare(&cfg(&f, &spec), &f.sys).unwrap();
        assert_eq!(
            mounts(&f.sys.calls())[0],
            mount(None, Path::new("/"), None, before, None),
            "{value}"
        );
        let f = fixture();
        finalize(&spec, &f.sys).unwrap();
        assert_eq!(
            mounts(&f.sys.calls())[0],
            mount(None, Path::new("/"), None, after, None),
            "{value}"
        );
    }
    let f = fixture();
    let spec = spec_with(json!({"linux": {"rootfsPropagation": "sideways"}}));
    let e = prepare(&cfg(&f, &spec), &f.sys).unwrap_err().to_string();
    assert_eq!(
        e,
        "linux.rootfsPropagation: unknown \"sideways\" (shared, slave, private or unbindable)"
    );
}

#[test]
fn shared_propagation_makes_the_rootfs_parent_private() {
    let f = fixture();
    let mp = f.bundle.parent().unwrap();
    f.sys.set_file(
        Path::new("/proc/self/mountinfo"),
        &format!(
            "22 1 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n40 22 0:50 / {} rw shared:9 - tmpfs tmpfs rw\n",
            mp.display()
        ),
    );
    let spec = spec_with(json!({"mounts": [], "linux": {"rootfsPropagation": "shared"}}));
    prepare(&cfg(&f, &spec), &f.sys).unwrap();
    assert_eq!(mounts(&f.sys.calls())[1], mount(None, mp, None, MS_PRIVATE, None));
}

#[test]
fn mount_propagation_and_recursive_options() {
    let f = fixture();
    let spec = spec_with(json!({"mounts": [
        {"destination": "/m", "source": "/tmp", "options": ["rbind", "rslave", "rro", "rnosuid"]}
    ]}));
    prepare(&cfg(&f, &spec), &f.sys).unwrap();
    let calls = f.sys.calls();
    let t = f.rootfs.join("m");
    let i = calls
        .iter()
        .position(|c| c == &mount(Some("/tmp"), &t, None, MS_BIND | MS_REC, None))
        .unwrap();
    assert_eq!(calls[i + 1], mount(None, &t, None, MS_SLAVE | MS_REC, None));
    assert_eq!(
        calls[i + 2],
        Call::MountSetattr {
            target: t,
            flags: libc::AT_RECURSIVE as u32,
            attr_set: options::MOUNT_ATTR_RDONLY | options::MOUNT_ATTR_NOSUID,
            attr_clr: 0,
            propagation: 0
        }
    );
}

#[test]
fn cgroup_on_a_hybrid_host_with_a_cgroup_namespace() {
    let f = fixture();
    f.sys.set_file(Path::new("/proc/self/mountinfo"), HYBRID);
    let spec = spec_with(json!({"linux": {"namespaces": [{"type": "mount"}, {"type": "cgroup"}]}}));
    prepare(&cfg(&f, &spec), &f.sys).unwrap();
    let cg = f.rootfs.join("sys/fs/cgroup");
    let m = mounts(&f.sys.calls());
    let nsx = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME;
    let i = m.iter().position(|c| c.path() == Some(cg.as_path())).unwrap();
    assert_eq!(
        &m[i..i + 5],
        &[
            mount(Some("tmpfs"), &cg, Some("tmpfs"), nsx, Some("mode=755")),
            mount(
                Some("cgroup2"),
                &cg.join("unified"),
                Some("cgroup2"),
                nsx | MS_RDONLY,
                None
            ),
            mount(
                Some("cgroup"),
                &cg.join("cpu,cpuacct"),
                Some("cgroup"),
                nsx | MS_RDONLY,
                Some("cpu,cpuacct")
            ),
            mount(
                Some("cgroup"),
                &cg.join("memory"),
                Some("cgroup"),
                nsx | MS_RDONLY,
                Some("memory")
            ),
            mount(None, &cg, None, MS_REMOUNT | nsx | MS_RDONLY, Some("mode=755")),
        ]
    );
    assert_eq!(std::fs::read_link(cg.join("cpu")).unwrap(), Path::new("cpu,cpuacct"));
    assert_eq!(
        std::fs::read_link(cg.join("cpuacct")).unwrap(),
        Path::new("cpu,cpuacct")
    );
}

#[test]
fn cgroup_on_a_hybrid_host_without_a_cgroup_namespace_binds_own_dirs() {
    let f = fixture();
    f.sys.set_file(Path::new("/proc/self/mountinfo"), HYBRID);
    let spec = spec_with(json!({"linux": {"namespaces": [{"type": "mount"}]}}));
    prepare(&cfg(&f, &spec), &f.sys).unwrap();
    let cg = f.rootfs.join("sys/fs/cgroup");
    let m = mounts(&f.sys.calls());
    // The container's own dirs do not exist on this host: the hierarchy's
    // mount point is bound instead.
    assert!(m.contains(&mount(
        Some("/sys/fs/cgroup/memory"),
        &cg.join("memory"),
        None,
        MS_BIND | MS_REC,
        None
    )));
    let h = &parse_mountinfo(HYBRID)[4];
    assert_eq!(own_cgroup_dir(h, PROC_CGROUP), Path::new("/sys/fs/cgroup/memory/ctr"));
    let h = &parse_mountinfo(HYBRID)[2];
    assert_eq!(own_cgroup_dir(h, PROC_CGROUP), Path::new("/sys/fs/cgroup/unified/ctr"));
}

#[test]
fn cgroup2_refused_in_a_user_namespace_binds_the_own_cgroup_dir() {
    let f = fixture();
    let cg = f.rootfs.join("sys/fs/cgroup");
    let spec = spec_with(json!({"linux": {"namespaces": [{"type": "user"}, {"type": "mount"}]}}));
    f.sys.fail_on("mount", &cg, libc::EPERM);
    // The recorder fails every mount on the path, the bind included: what
    // matters is which calls were tried, in order.
    let _ = prepare(&cfg(&f, &spec), &f.sys);
    let m = mounts(&f.sys.calls());
    let nsx = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME;
    let i = m.iter().position(|c| c.path() == Some(cg.as_path())).unwrap();
    assert_eq!(
        &m[i..i + 2],
        &[
            mount(Some("cgroup2"), &cg, Some("cgroup2"), nsx | MS_RDONLY, None),
            // The own dir does not exist on the recorder's host: the
            // hierarchy is bound.
            mount(Some("/sys/fs/cgroup"), &cg, None, MS_BIND | MS_REC, None),
        ]
    );
    let h = &parse_mountinfo(UNIFIED)[0];
    assert_eq!(own_cgroup_dir(h, PROC_CGROUP), Path::new("/sys/fs/cgroup/ctr"));
    // With a cgroup namespace the refusal is an error, not a bind.
    let f = fixture();
    let cg = f.rootfs.join("sys/fs/cgroup");
    let spec = spec_with(json!({"linux": {"namespaces": [{"type": "user"}, {"type": "mount"}, {"type": "cgroup"}]}}));
    f.sys.fail_on("mount", &cg, libc::EPERM);
    let err = prepare(&cfg(&f, &spec), &f.sys).unwrap_err().to_string();
    assert!(err.contains("mounting cgroup2 on /sys/fs/cgroup"), "{err}");
}

#[test]
fn mountinfo_parsing_unescapes() {
    let m = parse_mountinfo(
        "36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n",
    );
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].mount_point, Path::new("/mnt two"));
    assert_eq!(m[0].root, Path::new("/mnt1"));
    assert_eq!(m[0].optional, vec!["master:1", "shared:2"]);
    assert_eq!(m[0].fstype, "ext3");
    assert_eq!(m[0].super_options, "rw,errors=continue");
}

#[test]
fn sysfs_in_a_user_namespace_falls_back_to_a_bind() {
    let f = fixture();
    let spec = spec_with(json!({"linux": {"namespaces": [{"type": "user"}, {"type": "mount"}]}}));
    f.sys.fail_on("mount", &f.rootfs.join("sys"), libc::EPERM);
    // The recorder fails every mount on that path, the bind included: the
    // error then names the fallback.
    let e = prepare(&cfg(&f, &spec), &f.sys).unwrap_err().to_string();
    assert_eq!(e, "mounts[5]: binding /sys on /sys: EPERM");
}

#[test]
fn mount_label_applies_only_with_selinux() {
    let f = fixture();
    let spec = spec_with(json!({"mounts": [
        {"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
        {"destination": "/proc", "type": "proc", "source": "proc"}
    ], "linux": {"mountLabel": "system_u:object_r:container_file_t:s0"}}));
    let mut c = cfg(&f, &spec);
    c.selinux = true;
    prepare(&c, &f.sys).unwrap();
    let m = mounts(&f.sys.calls());
    assert_eq!(
        m[2],
        mount(
            Some("tmpfs"),
            &f.rootfs.join("t"),
            Some("tmpfs"),
            0,
            Some("size=1m,context=\"system_u:object_r:container_file_t:s0\"")
        )
    );
    assert_eq!(m[3], mount(Some("proc"), &f.rootfs.join("proc"), Some("proc"), 0, None));
}

#[test]
fn pivot_uses_the_dot_dot_trick() {
    let f = fixture();
    pivot(&f.rootfs, false, &f.sys).unwrap();
    let dot = PathBuf::from(".");
    assert_eq!(
        f.sys.calls(),
        vec![
            Call::Chdir(f.rootfs.clone()),
            Call::PivotRoot {
                new_root: dot.clone(),
                put_old: dot.clone()
            },
            mount(None, &dot, None, MS_SLAVE | MS_REC, None),
            Call::Umount2 {
                target: dot,
                flags: libc::MNT_DETACH
            },
            Call::Chdir("/".into()),
        ]
    );
}

#[test]
fn no_pivot_moves_and_chroots() {
    let f = fixture();
    pivot(&f.rootfs, true, &f.sys).unwrap();
    assert_eq!(
        f.sys.calls(),
        vec![
            Call::Chdir(f.rootfs.clone()),
            mount(Some(f.rootfs.to_str().unwrap()), Path::new("/"), None, MS_MOVE, None),
            Call::Chroot(".".into()),
            Call::Chdir("/".into()),
        ]
    );
}

/// A recorder that has "pivoted" into a rootfs holding `files` and `dirs`.
fn pivoted(files: &[&str], dirs: &[&str]) -> Fixture {
    let f = fixture();
    for d in dirs {
        std::fs::create_dir_all(f.rootfs.join(d)).unwrap();
    }
    for p in files {
        let p = f.rootfs.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "").unwrap();
    }
    pivot(&f.rootfs, false, &f.sys).unwrap();
    f.sys.calls.lock().unwrap().clear();
    f
}

#[test]
fn finalize_masks_files_and_directories_and_skips_missing() {
    let f = pivoted(&["proc/kcore", "proc/sys/x"], &["proc/acpi"]);
    let spec = spec_with(json!({"linux": {"readonlyPaths": []}}));
    finalize(&spec, &f.sys).unwrap();
    assert_eq!(
        mounts(&f.sys.calls()),
        vec![
            mount(Some("/dev/null"), Path::new("/proc/kcore"), None, MS_BIND, None),
            mount(Some("tmpfs"), Path::new("/proc/acpi"), Some("tmpfs"), MS_RDONLY, None),
        ]
    );
}

#[test]
fn finalize_readonly_paths_keep_other_flags() {
    let f = pivoted(&["proc/sys/x"], &[]);
    f.sys.set_mount_flags(Path::new("/proc/sys"), MS_RELATIME);
    let spec = spec_with(json!({"linux": {"maskedPaths": []}}));
    finalize(&spec, &f.sys).unwrap();
    let p = Path::new("/proc/sys");
    assert_eq!(
        mounts(&f.sys.calls()),
        vec![
            mount(Some("/proc/sys"), p, None, MS_BIND | MS_REC, None),
            mount(
                None,
                p,
                None,
                MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME,
                None
            ),
        ]
    );
}

#[test]
fn finalize_order_hostname_sysctl_readonly_masked_root() {
    let f = pivoted(&["proc/kcore", "proc/sys/net/core/somaxconn"], &[]);
    let spec = spec_with(json!({
        "root": {"path": "rootfs", "readonly": true},
        "domainname": "example.org",
        "linux": {"sysctl": {"net.core.somaxconn": "256", "kernel.shmmax": "1000"}}
    }));
    f.sys.set_mount_flags(Path::new("/"), MS_NODEV);
    finalize(&spec, &f.sys).unwrap();
    let calls = f.sys.calls();
    let kinds: Vec<&str> = calls.iter().map(|c| c.kind()).collect();
    assert_eq!(
        kinds,
        [
            "sethostname",
            "setdomainname",
            "write_file",
            "write_file",
            "mount",
            "mount",
            "mount",
            "mount"
        ]
    );
    assert_eq!(calls[0], Call::Sethostname("box".into()));
    assert_eq!(
        calls[2],
        Call::WriteFile {
            path: "/proc/sys/kernel/shmmax".into(),
            data: b"1000".to_vec()
        }
    );
    assert_eq!(
        calls[3],
        Call::WriteFile {
            path: "/proc/sys/net/core/somaxconn".into(),
            data: b"256".to_vec()
        }
    );
    assert_eq!(
        calls[7],
        mount(
            None,
            Path::new("/"),
            None,
            MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NODEV,
            None
        )
    );
}

#[test]
fn sysctls_for_namespaces_the_container_lacks_are_refused() {
    let f = pivoted(&[], &[]);
    let ns = json!([{"type": "mount"}, {"type": "uts"}]);
    for (key, want) in [
        (
            "net.ipv4.ip_forward",
            "linux.sysctl[\"net.ipv4.ip_forward\"]: needs a network namespace: it would change the host's",
        ),
        (
            "kernel.msgmax",
            "linux.sysctl[\"kernel.msgmax\"]: needs a ipc namespace: it would change the host's",
        ),
        (
            "fs.mqueue.msg_max",
            "linux.sysctl[\"fs.mqueue.msg_max\"]: needs a ipc namespace: it would change the host's",
        ),
        (
            "vm.swappiness",
            "linux.sysctl[\"vm.swappiness\"]: not namespaced: it would change the host",
        ),
        ("net..x", "linux.sysctl[\"net..x\"]: not a sysctl name"),
    ] {
        let spec = spec_with(json!({"linux": {"namespaces": ns, "sysctl": {key: "1"}}}));
        let e = finalize(&spec, &f.sys).unwrap_err().to_string();
        assert_eq!(e, want);
    }
    assert!(!f.sys.calls().iter().any(|c| matches!(c, Call::WriteFile { .. })));
}

#[test]
fn hostname_without_a_uts_namespace_is_refused() {
    let f = pivoted(&[], &[]);
    let spec = spec_with(json!({"linux": {"namespaces": [{"type": "mount"}]}}));
    let e = finalize(&spec, &f.sys).unwrap_err().to_string();
    assert_eq!(
        e,
        "hostname: \"box\" set without a uts namespace: it would rename the host"
    );
}

#[test]
fn masked_and_readonly_paths_must_be_absolute() {
    let f = pivoted(&[], &[]);
    let spec = spec_with(json!({"linux": {"readonlyPaths": [], "maskedPaths": ["/ok", "proc/kcore"]}}));
    let e = finalize(&spec, &f.sys).unwrap_err().to_string();
    assert_eq!(e, "linux.maskedPaths[1]: \"proc/kcore\" must be absolute");
}

#[test]
fn console_binds_the_pty_slave() {
    let f = pivoted(&[], &["dev"]);
    symlink("/etc/shadow", f.rootfs.join("dev/console")).unwrap();
    setup_console(Path::new("/dev/pts/3"), &f.sys).unwrap();
    let console = PathBuf::from("/dev/console");
    assert_eq!(
        f.sys.calls(),
        vec![
            Call::Unlink(console.clone()),
            Call::CreateFile(console.clone()),
            mount(Some("/dev/pts/3"), &console, None, MS_BIND, None),
        ]
    );
    assert!(f.rootfs.join("dev/console").is_file());
}

/// Root only: in a child process with its own mount namespace, a real
/// prepare, pivot and finalize, checked from inside. The child is this
/// test binary re-run on `real_setup_child`, so the namespace and the
/// pivot never touch the test runner's threads; the namespace dies with the
/// child, so no mount is left on the host.
#[test]
fn real_setup_in_a_mount_namespace() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: real_setup_in_a_mount_namespace needs root");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "rootfs::tests::real_setup_child",
            "--include-ignored",
            "--nocapture",
        ])
        .env("ROOTFS_CHILD_DIR", t.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("1 passed"), "the child did not run:\n{text}");
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = t.path().to_str().unwrap();
    assert!(!host.contains(dir), "mounts leaked to the host:\n{host}");
}

#[test]
#[ignore = "run by real_setup_in_a_mount_namespace in a child process"]
fn real_setup_child() {
    let Some(dir) = std::env::var_os("ROOTFS_CHILD_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let bundle = dir.join("bundle");
    let rootfs = bundle.join("rootfs");
    for d in ["proc", "dev", "data", "etc"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::create_dir_all(dir.join("host-data/secret-dir")).unwrap();
    std::fs::write(dir.join("host-data/secret"), "top secret").unwrap();
    std::fs::write(dir.join("host-data/secret-dir/f"), "x").unwrap();
    // An escaping symlink: the mount must land in the rootfs, not in host /etc.
    symlink("../../../../../../../../etc", rootfs.join("etc/escape")).unwrap();
    let spec: Spec = serde_json::from_value(json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/data", "source": "../host-data", "options": ["rbind", "ro"]},
            {"destination": "/etc/escape/mnt", "type": "tmpfs", "source": "tmpfs"}
        ],
        "linux": {
            "namespaces": [{"type": "mount"}],
            "maskedPaths": ["/data/secret", "/data/secret-dir", "/data/none"]
        }
    }))
    .unwrap();
    // SAFETY: unshare of the mount namespace affects this thread only (it
    // implies CLONE_FS); nothing else in this process relies on its mounts.
    let r = unsafe { libc::unshare(libc::CLONE_NEWNS) };
    assert_eq!(r, 0, "{}", io::Error::last_os_error());
    let sys = crate::syscall::LinuxSyscall;
    prepare(&RootfsConfig::new(&spec, &rootfs, &bundle), &sys).unwrap();
    assert!(
        rootfs.join("etc/mnt").is_dir(),
        "the escaping destination was resolved inside"
    );
    pivot(&rootfs, false, &sys).unwrap();
    finalize(&spec, &sys).unwrap();

    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let null = std::fs::metadata("/dev/null").unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), libc::makedev(1, 3));
    assert_eq!(null.mode() & 0o777, 0o666);
    std::fs::write("/dev/null", "discarded").unwrap();
    assert_eq!(std::fs::read_link("/dev/fd").unwrap(), Path::new("/proc/self/fd"));
    assert_eq!(std::fs::read_link("/dev/ptmx").unwrap(), Path::new("pts/ptmx"));
    assert!(Path::new("/proc/self/fd").is_dir(), "proc is mounted");
    let e = std::fs::write("/data/new", "x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
    assert_eq!(
        std::fs::read_to_string("/data/secret").unwrap(),
        "",
        "masked by /dev/null"
    );
    assert_eq!(
        std::fs::read_dir("/data/secret-dir").unwrap().count(),
        0,
        "masked by a tmpfs"
    );
    // The host's tree is gone: only the rootfs is visible.
    assert!(!Path::new("/bundle").exists());
    assert!(Path::new("/etc/mnt").is_dir());
}
