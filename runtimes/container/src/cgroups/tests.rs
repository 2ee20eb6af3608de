//! Unit tests against a fake hierarchy in a temporary directory (the files
//! the kernel would create are created by `fake_kernel`), plus tests that
//! run only as root on the real host and clean up after themselves.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use oci_spec::runtime::LinuxResources;
use serde_json::json;
use tempfile::TempDir;

use super::*;

const HOST_MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

const HOST_PROC_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/d43ace48
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

fn res(v: serde_json::Value) -> LinuxResources {
    serde_json::from_value(v).expect("resources json")
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

fn touch(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, value) in files {
        fs::write(dir.join(name), value).unwrap();
    }
}

fn v1_layout(root: &Path, ctrls: &[&str]) -> Layout {
    let mounts: BTreeMap<String, PathBuf> = ctrls.iter().map(|c| (c.to_string(), root.join(c))).collect();
    for (c, m) in &mounts {
        touch(m, &[("cgroup.procs", "")]);
        if c == "cpuset" {
            touch(m, &[("cpuset.cpus", "0-3"), ("cpuset.mems", "0")]);
        }
    }
    Layout::V1 { mounts }
}

fn v2_root(root: &Path, ctrls: &[&str]) -> PathBuf {
    let u = root.join("unified");
    touch(
        &u,
        &[
            ("cgroup.controllers", &ctrls.join(" ")),
            ("cgroup.subtree_control", ""),
            ("cgroup.procs", ""),
        ],
    );
    u
}

fn v2_layout(root: &Path, ctrls: &[&str]) -> Layout {
    Layout::V2 {
        root: v2_root(root, ctrls),
        controllers: ctrls.iter().map(|c| c.to_string()).collect(),
    }
}

fn hybrid_layout(root: &Path, v1: &[&str], v2: &[&str]) -> Layout {
    let Layout::V1 { mounts } = v1_layout(root, v1) else {
        unreachable!()
    };
    Layout::Hybrid {
        v1: mounts,
        v2_root: v2_root(root, v2),
        v2_controllers: v2.iter().map(|c| c.to_string()).collect(),
    }
}

const UNLIMITED: &str = "9223372036854771712";

/// Creates, in each of the manager's directories, the files the kernel
/// would show for the controllers of that hierarchy.
fn fake_kernel(m: &Manager) {
    for h in &m.hierarchies {
        let mut files: Vec<(&str, &str)> = vec![("cgroup.procs", "")];
        if h.v2 {
            files.extend([
                ("cgroup.controllers", ""),
                ("cgroup.subtree_control", ""),
                ("cgroup.freeze", "0"),
                ("cgroup.events", "populated 0\nfrozen 0\n"),
            ]);
        }
        for c in &h.controllers {
            match (h.v2, c.as_str()) {
                (false, "memory") => files.extend([
                    ("memory.limit_in_bytes", UNLIMITED),
                    ("memory.memsw.limit_in_bytes", UNLIMITED),
                    ("memory.soft_limit_in_bytes", UNLIMITED),
                    ("memory.swappiness", "60"),
                    ("memory.oom_control", "oom_kill_disable 0"),
                    ("memory.use_hierarchy", "1"),
                ]),
                (false, "cpu") => files.extend([
                    ("cpu.shares", "1024"),
                    ("cpu.cfs_period_us", "100000"),
                    ("cpu.cfs_quota_us", "-1"),
                    ("cpu.cfs_burst_us", "0"),
                    ("cpu.rt_period_us", "1000000"),
                    ("cpu.rt_runtime_us", "0"),
                    ("cpu.idle", "0"),
                ]),
                (false, "cpuset") => {}
                (false, "pids") | (true, "pids") => files.push(("pids.max", "max")),
                (false, "blkio") => files.extend([
                    ("blkio.throttle.read_bps_device", ""),
                    ("blkio.throttle.write_bps_device", ""),
                    ("blkio.throttle.read_iops_device", ""),
                    ("blkio.throttle.write_iops_device", ""),
                ]),
                (false, "devices") => files.extend([("devices.allow", ""), ("devices.deny", ""), ("devices.list", "")]),
                (false, "freezer") => files.push(("freezer.state", "THAWED")),
                (false, "net_cls") => files.push(("net_cls.classid", "0")),
                (false, "hugetlb") => files.push(("hugetlb.2MB.limit_in_bytes", UNLIMITED)),
                (true, "memory") => files.extend([
                    ("memory.max", "max"),
                    ("memory.low", "0"),
                    ("memory.swap.max", "max"),
                    ("memory.current", "4096"),
                ]),
                (true, "cpu") => files.extend([
                    ("cpu.weight", "100"),
                    ("cpu.max", "max 100000"),
                    ("cpu.max.burst", "0"),
                    ("cpu.idle", "0"),
                ]),
                (true, "cpuset") => files.extend([("cpuset.cpus", ""), ("cpuset.mems", "")]),
                (true, "io") => files.extend([("io.weight", "default 100"), ("io.max", "")]),
                (true, "hugetlb") => files.extend([("hugetlb.2MB.max", "max"), ("hugetlb.2MB.rsvd.max", "max")]),
                _ => {}
            }
        }
        touch(&h.dir, &files);
        // v1 cpuset files exist from mkdir on, empty until filled.
        if !h.v2 && h.controllers.iter().any(|c| c == "cpuset") && !h.dir.join("cpuset.cpus").exists() {
            touch(&h.dir, &[("cpuset.cpus", ""), ("cpuset.mems", "")]);
        }
    }
}

fn manager(layout: Layout, path: &str) -> Manager {
    Manager::new(layout, Some(path), "ctr", &ProcCgroup::default()).unwrap()
}

fn ready(layout: Layout, path: &str) -> Manager {
    let m = manager(layout, path);
    m.create().unwrap();
    fake_kernel(&m);
    m
}

fn err_text<T: std::fmt::Debug>(r: Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

// ---- layout and path resolution ------------------------------------------

#[test]
fn mountinfo_of_this_host_is_hybrid() {
    let layout = Layout::from_mountinfo(HOST_MOUNTINFO, |p| {
        assert_eq!(p, Path::new("/sys/fs/cgroup/unified"));
        Some("hugetlb\n".to_string())
    });
    let Layout::Hybrid {
        v1,
        v2_root,
        v2_controllers,
    } = &layout
    else {
        panic!("not hybrid: {layout:?}")
    };
    assert_eq!(v1.len(), 8, "{v1:?}");
    assert_eq!(v1["memory"], PathBuf::from("/sys/fs/cgroup/memory"));
    assert!(
        !v1.contains_key("name=systemd"),
        "named hierarchies are not controllers"
    );
    assert_eq!(v2_root, Path::new("/sys/fs/cgroup/unified"));
    assert_eq!(v2_controllers, &vec!["hugetlb".to_string()]);
    assert!(layout.summary().contains("hybrid"));
}

#[test]
fn mountinfo_pure_v2_and_pure_v1() {
    let v2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
    let layout = Layout::from_mountinfo(v2, |_| Some("cpuset cpu io memory pids\n".into()));
    assert_eq!(
        layout,
        Layout::V2 {
            root: "/sys/fs/cgroup".into(),
            controllers: ["cpuset", "cpu", "io", "memory", "pids"].map(String::from).to_vec()
        }
    );
    let v1 = "\
32 31 0:29 /docker/x /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
33 31 0:29 / /mnt/my\\040cpu rw - cgroup cgroup rw,cpu,cpuacct
";
    let layout = Layout::from_mountinfo(v1, |_| None);
    let mounts = layout.v1_mounts();
    assert_eq!(
        mounts["cpu"],
        PathBuf::from("/mnt/my cpu"),
        "a root mount wins; octal escapes decoded"
    );
    assert_eq!(mounts["cpuacct"], mounts["cpu"]);
    assert!(Layout::from_mountinfo("", |_| None).is_empty());
}

#[test]
fn proc_cgroup_parses_v1_and_unified_lines() {
    let pc = ProcCgroup::parse(HOST_PROC_CGROUP);
    assert_eq!(pc.v1["memory"], "/process_api/d43ace48");
    assert_eq!(pc.v1["name=systemd"], "/");
    assert_eq!(pc.unified.as_deref(), Some("/"));
    let co = ProcCgroup::parse("3:cpu,cpuacct:/a:b\n");
    assert_eq!(co.v1["cpuacct"], "/a:b", "paths may contain colons");
    assert_eq!(co.unified, None);
}

#[test]
fn absolute_relative_and_default_paths() {
    let tmp = TempDir::new().unwrap();
    let layout = hybrid_layout(tmp.path(), &["cpu", "memory"], &["hugetlb"]);
    let own = ProcCgroup::parse(HOST_PROC_CGROUP);

    let abs = Manager::new(layout.clone(), Some("/runtime//ctr/"), "id", &own).unwrap();
    assert_eq!(abs.path(), "/runtime/ctr");
    assert_eq!(
        abs.paths(),
        vec![
            tmp.path().join("cpu/runtime/ctr"),
            tmp.path().join("memory/runtime/ctr"),
            tmp.path().join("unified/runtime/ctr")
        ]
    );

    // Relative: per hierarchy, under the runtime's own cgroup there.
    let rel = Manager::new(layout.clone(), Some("sub/ctr"), "id", &own).unwrap();
    assert_eq!(rel.path(), "/process_api/d43ace48/sub/ctr");
    assert_eq!(rel.paths()[0], tmp.path().join("cpu/sub/ctr"));
    assert_eq!(rel.paths()[1], tmp.path().join("memory/process_api/d43ace48/sub/ctr"));
    assert_eq!(rel.paths()[2], tmp.path().join("unified/sub/ctr"));

    let def = Manager::new(layout.clone(), None, "my-id", &own).unwrap();
    assert_eq!(def.path(), "/my-id");

    // The same value always resolves to the same place.
    let again = Manager::new(layout, Some("sub/ctr"), "other", &own).unwrap();
    assert_eq!(again.paths(), rel.paths());
}

#[test]
fn invalid_paths_name_the_field_and_value() {
    let tmp = TempDir::new().unwrap();
    let layout = v1_layout(tmp.path(), &["memory"]);
    let own = ProcCgroup::parse(HOST_PROC_CGROUP);
    for bad in ["/a/../../etc", "..", "", "/", ".", "machine.slice:libpod:abc", "a\0b"] {
        let e = err_text(Manager::new(layout.clone(), Some(bad), "id", &own));
        assert!(e.starts_with("linux.cgroupsPath: invalid value"), "{e}");
        assert!(e.contains(&format!("{bad:?}")), "{bad:?} not named in {e}");
    }
    let e = err_text(Manager::new(layout.clone(), None, "a/b", &own));
    assert!(e.contains("\"/a/b\""), "{e}");
    // Relative path with no known own cgroup for that hierarchy.
    let e = err_text(Manager::new(layout, Some("x"), "id", &ProcCgroup::default()));
    assert!(e.contains("own cgroup in the memory hierarchy is unknown"), "{e}");
}

// ---- create / destroy ----------------------------------------------------

#[test]
fn create_copies_cpuset_from_parent_and_destroy_keeps_preexisting() {
    let tmp = TempDir::new().unwrap();
    let layout = v1_layout(tmp.path(), &["cpuset", "memory"]);
    // A pre-existing parent with its own cpuset values, and a pre-existing
    // leaf whose files the "kernel" left empty.
    touch(
        &tmp.path().join("cpuset/parent"),
        &[("cpuset.cpus", "1-2\n"), ("cpuset.mems", "0\n")],
    );
    touch(
        &tmp.path().join("cpuset/parent/ctr"),
        &[("cpuset.cpus", ""), ("cpuset.mems", "")],
    );
    let m = manager(layout, "/parent/ctr");
    m.create().unwrap();
    assert_eq!(read(&tmp.path().join("cpuset/parent/ctr/cpuset.cpus")), "1-2");
    assert_eq!(read(&tmp.path().join("cpuset/parent/ctr/cpuset.mems")), "0");
    let created = m.created().unwrap();
    assert_eq!(
        created,
        vec![tmp.path().join("memory/parent"), tmp.path().join("memory/parent/ctr")]
    );
    fake_kernel(&m);
    m.destroy().unwrap();
    assert!(!tmp.path().join("memory/parent").exists(), "created ancestors go too");
    assert!(
        tmp.path().join("cpuset/parent/ctr").exists(),
        "only what create made is removed"
    );
    assert!(tmp.path().join("cpuset").exists() && tmp.path().join("memory").exists());
}

#[test]
fn destroy_removes_deepest_first_including_sub_cgroups() {
    let tmp = TempDir::new().unwrap();
    let m = ready(v1_layout(tmp.path(), &["pids"]), "/a/b/ctr");
    // The container made a nested cgroup of its own.
    touch(&m.paths()[0].join("inner/deeper"), &[("cgroup.procs", "")]);
    // Something else lives next to us under /a: /a must survive.
    touch(&tmp.path().join("pids/a/other"), &[("cgroup.procs", "")]);
    m.destroy().unwrap();
    assert!(!tmp.path().join("pids/a/b").exists());
    assert!(tmp.path().join("pids/a/other").exists());
    // Destroy is idempotent.
    m.destroy().unwrap();
}

#[test]
fn destroy_without_create_removes_only_the_leaf() {
    let tmp = TempDir::new().unwrap();
    let first = ready(v1_layout(tmp.path(), &["pids"]), "/a/ctr");
    // A later `delete` rebuilds the manager from the same config.
    let later = manager(v1_layout(tmp.path(), &["pids"]), "/a/ctr");
    assert_eq!(later.created(), None);
    later.destroy().unwrap();
    assert!(!first.paths()[0].exists());
    assert!(
        tmp.path().join("pids/a").exists(),
        "ancestors unknown to this manager stay"
    );
    // ... unless it is told what was created.
    later.set_created(vec![tmp.path().join("pids/a"), tmp.path().join("pids/a/ctr")]);
    later.destroy().unwrap();
    assert!(!tmp.path().join("pids/a").exists());
}

#[test]
fn v2_create_enables_controllers_in_ancestors() {
    let tmp = TempDir::new().unwrap();
    let layout = v2_layout(tmp.path(), &["cpu", "memory", "pids"]);
    // The middle level pre-exists and offers only memory.
    touch(
        &tmp.path().join("unified/a"),
        &[("cgroup.controllers", "memory"), ("cgroup.subtree_control", "")],
    );
    let m = manager(layout, "/a/ctr");
    m.create().unwrap();
    assert_eq!(
        read(&tmp.path().join("unified/cgroup.subtree_control")),
        "+cpu +memory +pids"
    );
    assert_eq!(read(&tmp.path().join("unified/a/cgroup.subtree_control")), "+memory");
    assert!(m.paths()[0].is_dir());
}

#[test]
fn hybrid_create_uses_v2_only_controllers_on_unified() {
    let tmp = TempDir::new().unwrap();
    let m = ready(
        hybrid_layout(tmp.path(), &["memory", "pids"], &["hugetlb", "pids"]),
        "/ctr",
    );
    // pids is bound to v1, so only hugetlb is enabled on the unified side.
    assert_eq!(read(&tmp.path().join("unified/cgroup.subtree_control")), "+hugetlb");
    m.add_process(4242).unwrap();
    for p in m.paths() {
        assert_eq!(read(&p.join("cgroup.procs")), "4242", "{}", p.display());
    }
    assert_eq!(m.paths().len(), 3);
    assert_eq!(m.pids().unwrap(), vec![4242]);
}

// ---- memory --------------------------------------------------------------

#[test]
fn v1_memory_writes() {
    let tmp = TempDir::new().unwrap();
    let m = ready(v1_layout(tmp.path(), &["memory"]), "/ctr");
    let d = &m.paths()[0];
    touch(d, &[("memory.kmem.limit_in_bytes", UNLIMITED)]);
    m.apply(&res(json!({"memory": {
        "limit": 1048576, "reservation": 524288, "swap": 2097152, "kernel": 4096, "kernelTCP": 8192,
        "swappiness": 0, "disableOOMKiller": true, "useHierarchy": true
    }})))
    .unwrap();
    assert_eq!(read(&d.join("memory.limit_in_bytes")), "1048576");
    assert_eq!(
        read(&d.join("memory.memsw.limit_in_bytes")),
        "2097152",
        "v1 swap is memory+swap"
    );
    assert_eq!(read(&d.join("memory.soft_limit_in_bytes")), "524288");
    assert_eq!(read(&d.join("memory.kmem.limit_in_bytes")), "4096");
    assert!(
        !d.join("memory.kmem.tcp.limit_in_bytes").exists(),
        "missing kernel files are skipped"
    );
    assert_eq!(read(&d.join("memory.swappiness")), "0");
    assert_eq!(read(&d.join("memory.oom_control")), "1");
    assert_eq!(read(&d.join("memory.use_hierarchy")), "1");
}

#[test]
fn v1_memory_and_swap_are_ordered_to_keep_memsw_above_limit() {
    let tmp = TempDir::new().unwrap();
    let m = ready(v1_layout(tmp.path(), &["memory"]), "/ctr");
    let d = m.paths()[0].clone();
    let order = |m: &Manager, l: i64, s: i64| -> Vec<String> {
        let plan = m.plan(&res(json!({"memory": {"limit": l, "swap": s}}))).unwrap();
        plan.iter()
            .map(|w| w.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    // Current memsw is unlimited: lowering writes the limit first.
    assert_eq!(
        order(&m, 1 << 20, 2 << 20),
        ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    );
    // Current memsw is 2 MiB: raising the limit to 4 MiB needs memsw first.
    fs::write(d.join("memory.memsw.limit_in_bytes"), "2097152").unwrap();
    assert_eq!(
        order(&m, 4 << 20, 8 << 20),
        ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    );
    assert_eq!(
        order(&m, -1, -1),
        ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    );
}

#[test]
fn v2_memory_writes_convert_swap() {
    let tmp = TempDir::new().unwrap();
    let m = ready(v2_layout(tmp.path(), &["memory"]), "/ctr");
    let d = &m.paths()[0];
    m.apply(&res(
        json!({"memory": {"limit": 1048576, "reservation": -1, "swap": 3145728, "swappiness": 10,
        "kernel": 1, "disableOOMKiller": true}}),
    ))
    .unwrap();
    assert_eq!(read(&d.join("memory.max")), "1048576");
    assert_eq!(
        read(&d.join("memory.swap.max")),
        "2097152",
        "v2 swap.max = swap - limit"
    );
    assert_eq!(read(&d.join("memory.low")), "max");
    m.apply(&res(json!({"memory": {"limit": -1, "swap": -1}}))).unwrap();
    assert_eq!(read(&d.join("memory.max")), "max");
    assert_eq!(read(&d.join("memory.swap.max")), "max");
    let e = err_text(m.apply(&res(json!({"memory": {"swap": 1000}}))));
    assert!(e.starts_with("linux.resources.memory.swap: 1000: not supported"), "{e}");
    // checkBeforeUpdate refuses a limit below usage (memory.current = 4096).
    let e = err_text(m.apply(&res(json!({"memory": {"limit": 1024, "checkBeforeUpdate": true}}))));
    assert!(
        e.contains("memory.limit: invalid value 1024") && e.contains("4096"),
        "{e}"
    );
}

// ---- validation ----------------------------------------------------------

#[test]
fn validation_errors_name_field_and_value_and_write_nothing() {
    let tmp = TempDir::new().unwrap();
    let m = ready(v1_layout(tmp.path(), &["memory", "pids", "cpu", "cpuset"]), "/ctr");
    let cases = [
        (
            json!({"memory": {"limit": -2}}),
            "linux.resources.memory.limit: invalid value -2",
        ),
        (
            json!({"memory": {"limit": 100, "swap": 50}}),
            "linux.resources.memory.swap: invalid value 50",
        ),
        (
            json!({"memory": {"limit": -1, "swap": 50}}),
            "linux.resources.memory.swap: invalid value 50",
        ),
        (
            json!({"memory": {"swappiness": 101}}),
            "linux.resources.memory.swappiness: invalid value 101",
        ),
        (
            json!({"pids": {"limit": -2}}),
            "linux.resources.pids.limit: invalid value -2",
        ),
        (
            json!({"cpu": {"cpus": "0-a"}}),
            "linux.resources.cpu.cpus: invalid value \"0-a\"",
        ),
        (
            json!({"cpu": {"mems": "3-1"}}),
            "linux.resources.cpu.mems: invalid value \"3-1\"",
        ),
        (
            json!({"cpu": {"cpus": "0,,1"}}),
            "linux.resources.cpu.cpus: invalid value \"0,,1\"",
        ),
        (
            json!({"cpu": {"quota": 0}}),
            "linux.resources.cpu.quota: invalid value 0",
        ),
        (
            json!({"cpu": {"period": 10}}),
            "linux.resources.cpu.period: invalid value 10",
        ),
        (
            json!({"cpu": {"quota": 5000, "burst": 6000}}),
            "linux.resources.cpu.burst: invalid value 6000",
        ),
        (json!({"cpu": {"idle": 2}}), "linux.resources.cpu.idle: invalid value 2"),
        (
            json!({"cpu": {"realtimeRuntime": 2000, "realtimePeriod": 1000}}),
            "cpu.realtimeRuntime: invalid value 2000",
        ),
        (
            json!({"hugepageLimits": [{"pageSize": "2M", "limit": 1}]}),
            "linux.resources.hugepageLimits[0].pageSize: invalid value \"2M\"",
        ),
        (
            json!({"devices": [{"allow": true, "access": "rwx"}]}),
            "linux.resources.devices[0].access: invalid value \"rwx\"",
        ),
        (
            json!({"devices": [{"allow": true, "major": -3}]}),
            "linux.resources.devices[0].major: invalid value -3",
        ),
        (
            json!({"unified": {"memory.high": "1"}}),
            "linux.resources.unified[\"memory.high\"]: \"1\": not supported",
        ),
        (
            json!({"blockIO": {"weightDevice": [{"major": 8, "minor": 0}]}}),
            "linux.resources.blockIO.weightDevice[0]: invalid value 8:0",
        ),
        (
            json!({"network": {"classID": 7}}),
            "linux.resources.network.classID: the net_cls controller",
        ),
    ];
    for (r, want) in cases {
        // A valid memory limit first in the same object: it must not be
        // written when a later field is invalid.
        let mut v = r.clone();
        if v.get("memory").is_none() {
            v["memory"] = json!({"limit": 12345});
        }
        let e = err_text(m.apply(&res(v)));
        assert!(e.starts_with(want) || e.contains(want), "want {want:?}, got {e:?}");
        assert_eq!(
            read(&m.hierarchy_for("memory").unwrap().dir.join("memory.limit_in_bytes")),
            UNLIMITED,
            "written before failing: {e}"
        );
    }
}

#[test]
fn zero_pids_is_a_real_limit() {
    let tmp = TempDir::new().unwrap();
    let m = ready(v2_layout(tmp.path(), &["pids"]), "/ctr");
    m.apply(&res(json!({"pids": {"limit": 0}}))).unwrap();
    assert_eq!(read(&m.paths()[0].join("pids.max")), "0");
    m.apply(&res(json!({"pids": {"limit": -1}}))).unwrap();
    assert_eq!(read(&m.paths()[0].join("pids.max")), "max");
    m.apply(&res(json!({"pids": {"limit": 32771}}))).unwrap();
    assert_eq!(read(&m.paths()[0].join("pids.max")), "32771");
}

#[test]
fn write_errors_name_field_value_path_and_errno() {
    let tmp = TempDir::new().unwrap();
    let m = ready(v1_layout(tmp.path(), &["memory"]), "/ctr");
    let file = m.paths()[0].join("memory.limit_in_bytes");
    fs::remove_file(&file).unwrap();
    fs::create_dir(&file).unwrap(); // open(O_WRONLY) on a directory: EISDIR
    let e = err_text(m.apply(&res(json!({"memory": {"limit": 1048576}}))));
    assert_eq!(
        e,
        format!(
            "linux.resources.memory.limit: writing 1048576 to {}: EISDIR (is a directory)",
            file.display()
        )
    );
    fs::remove_file(m.paths()[0].join("memory.memsw.limit_in_bytes")).unwrap();
    let e = err_text(m.apply(&res(json!({"memory": {"swap": -1}}))));
    assert!(e.starts_with("linux.resources.memory.swap: cannot write -1: "), "{e}");
    assert!(
        e.ends_with("memory.memsw.limit_in_bytes does not exist (swap accounting is off in this kernel; boot with swapaccount=1)"),
        "{e}"
    );
}

// ---- cpu -----------------------------------------------------------------

#[test]
fn shares_to_weight_conversion() {
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(shares_to_weight(1), 1, "clamped like the v1 kernel");
    assert_eq!(shares_to_weight(1 << 40), 10_000);
    assert_eq!(shares_to_weight(0), 0, "unset stays unset");
}

#[test]
fn v1_cpu_writes() {
    let tmp = TempDir::new().unwrap();
    let m = ready(v1_layout(tmp.path(), &["cpu", "cpuset"]), "/ctr");
    let (cpu, cpuset) = (&m.paths()[0], &m.paths()[1]);
    m.apply(&res(
        json!({"cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 10000,
        "realtimeRuntime": 950, "realtimePeriod": 1000000, "cpus": "0-1,3", "mems": "0", "idle": 1}}),
    ))
    .unwrap();
    for (f, v) in [
        ("cpu.shares", "512"),
        ("cpu.cfs_quota_us", "50000"),
        ("cpu.cfs_period_us", "100000"),
        ("cpu.cfs_burst_us", "10000"),
        ("cpu.rt_runtime_us", "950"),
        ("cpu.rt_period_us", "1000000"),
        ("cpu.idle", "1"),
    ] {
        assert_eq!(read(&cpu.join(f)), v, "{f}");
    }
    assert_eq!(read(&cpuset.join("cpuset.cpus")), "0-1,3");
    assert_eq!(read(&cpuset.join("cpuset.mems")), "0");
    // shares 0 means unset.
    let plan = m.plan(&res(json!({"cpu": {"shares": 0}}))).unwrap();
    assert!(plan.is_empty(), "{plan:?}");
}

#[test]
fn v2_cpu_writes() {
    let tmp = TempDir::new().unwrap();
    let m = ready(v2_layout(tmp.path(), &["cpu", "cpuset"]), "/ctr");
    let d = &m.paths()[0];
    m.apply(&res(
        json!({"cpu": {"shares": 1024, "quota": 50000, "period": 200000, "burst": 1000,
        "cpus": "1", "mems": "0", "idle": 0}}),
    ))
    .unwrap();
    assert_eq!(read(&d.join("cpu.weight")), "39");
    assert_eq!(read(&d.join("cpu.max")), "50000 200000");
    assert_eq!(read(&d.join("cpu.max.burst")), "1000");
    assert_eq!(read(&d.join("cpuset.cpus")), "1");
    // Period alone keeps the current quota; quota alone keeps the period.
    m.apply(&res(json!({"cpu": {"period": 100000}}))).unwrap();
    assert_eq!(read(&d.join("cpu.max")), "50000 100000");
    m.apply(&res(json!({"cpu": {"quota": -1}}))).unwrap();
    assert_eq!(read(&d.join("cpu.max")), "max");
    let e = err_text(m.apply(&res(json!({"cpu": {"realtimeRuntime": 10}}))));
    assert!(
        e.starts_with("linux.resources.cpu.realtimeRuntime: 10: not supported"),
        "{e}"
    );
}

// ---- block io, hugetlb, network, rdma -----------------------------------

#[test]
fn v1_block_io_writes() {
    let tmp = TempDir::new().unwrap();
    let m = ready(v1_layout(tmp.path(), &["blkio"]), "/ctr");
    let d = m.paths()[0].clone();
    let r = res(json!({"blockIO": {
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}]
    }}));
    m.apply(&r).unwrap();
    assert_eq!(read(&d.join("blkio.throttle.read_bps_device")), "8:0 600");
    assert_eq!(read(&d.join("blkio.throttle.write_iops_device")), "8:16 300");
    // No weight file of either scheduler (this machine's kernel): an error.
    let e = err_text(m.apply(&res(json!({"blockIO": {"weight": 500}}))));
    assert!(
        e.starts_with("linux.resources.blockIO.weight: cannot write 500") && e.contains("bfq"),
        "{e}"
    );
    // bfq's file is used when it is the one that exists.
    touch(&d, &[("blkio.bfq.weight", "100"), ("blkio.bfq.weight_device", "")]);
    m.apply(&res(
        json!({"blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 300}]}}),
    ))
    .unwrap();
    assert_eq!(read(&d.join("blkio.bfq.weight")), "500");
    assert_eq!(read(&d.join("blkio.bfq.weight_device")), "8:0 300");
}

#[test]
fn v2_block_io_writes() {
    let tmp = TempDir::new().unwrap();
    let m = ready(v2_layout(tmp.path(), &["io"]), "/ctr");
    let d = &m.paths()[0];
    let plan = m
        .plan(&res(json!({"blockIO": {"weight": 1000,
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 300}, {"major": 8, "minor": 16, "rate": 0}]
        }})))
        .unwrap();
    let values: Vec<&str> = plan.iter().map(|w| w.value.as_str()).collect();
    assert_eq!(values, ["default 10000", "8:0 rbps=600 wiops=300", "8:16 wiops=max"]);
    m.apply(&res(json!({"blockIO": {"weight": 10}}))).unwrap();
    assert_eq!(read(&d.join("io.weight")), "default 1");
    let e = err_text(m.apply(&res(json!({"blockIO": {"leafWeight": 100}}))));
    assert!(
        e.starts_with("linux.resources.blockIO.leafWeight: 100: not supported"),
        "{e}"
    );
}

#[test]
fn hugetlb_on_v1_v2_and_hybrid() {
    let r = res(json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}]}));
    let tmp = TempDir::new().unwrap();
    let v1 = ready(v1_layout(tmp.path(), &["hugetlb"]), "/ctr");
    v1.apply(&r).unwrap();
    assert_eq!(read(&v1.paths()[0].join("hugetlb.2MB.limit_in_bytes")), "209715200");
    let e = err_text(v1.apply(&res(json!({"hugepageLimits": [{"pageSize": "1GB", "limit": 1}]}))));
    assert!(
        e.starts_with("linux.resources.hugepageLimits[0].pageSize: invalid value \"1GB\""),
        "{e}"
    );

    let tmp = TempDir::new().unwrap();
    let v2 = ready(v2_layout(tmp.path(), &["hugetlb"]), "/ctr");
    v2.apply(&r).unwrap();
    assert_eq!(read(&v2.paths()[0].join("hugetlb.2MB.max")), "209715200");
    assert_eq!(
        read(&v2.paths()[0].join("hugetlb.2MB.rsvd.max")),
        "209715200",
        "reservation limit too"
    );

    // This machine: memory on v1, hugetlb only on the unified hierarchy.
    let tmp = TempDir::new().unwrap();
    let hy = ready(hybrid_layout(tmp.path(), &["memory"], &["hugetlb"]), "/ctr");
    let mut both = r.clone();
    both.set_memory(*res(json!({"memory": {"limit": 4096}})).memory());
    hy.apply(&both).unwrap();
    assert_eq!(read(&tmp.path().join("unified/ctr/hugetlb.2MB.max")), "209715200");
    assert_eq!(read(&tmp.path().join("memory/ctr/memory.limit_in_bytes")), "4096");
    assert!(!tmp.path().join("unified/ctr/memory.max").exists());

    let tmp = TempDir::new().unwrap();
    let none = ready(v1_layout(tmp.path(), &["memory"]), "/ctr");
    let e = err_text(none.apply(&r));
    assert!(
        e.starts_with("linux.resources.hugepageLimits[0].limit: the hugetlb controller is not available"),
        "{e}"
    );
}

#[test]
fn network_and_rdma() {
    let tmp = TempDir::new().unwrap();
    let m = ready(v1_layout(tmp.path(), &["net_cls"]), "/ctr");
    m.apply(&res(json!({"network": {"classID": 1048577}}))).unwrap();
    assert_eq!(read(&m.paths()[0].join("net_cls.classid")), "1048577");
    let e = err_text(m.apply(&res(
        json!({"network": {"priorities": [{"name": "eth0", "priority": 5}]}}),
    )));
    assert!(
        e.starts_with("linux.resources.network.priorities[0]: the net_prio controller is not available"),
        "{e}"
    );

    let tmp = TempDir::new().unwrap();
    let m = ready(v2_layout(tmp.path(), &["rdma"]), "/ctr");
    touch(&m.paths()[0], &[("rdma.max", "")]);
    let plan = m
        .plan(&res(
            json!({"rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}}}),
        ))
        .unwrap();
    assert_eq!(plan[0].value, "mlx5_1 hca_handle=3 hca_object=10000");
    let e = err_text(m.plan(&res(json!({"rdma": {"rxe": {}}}))));
    assert!(e.contains("linux.resources.rdma[\"rxe\"]"), "{e}");
}

// ---- devices -------------------------------------------------------------

#[test]
fn v1_devices_deny_all_then_rules_in_order() {
    let tmp = TempDir::new().unwrap();
    let m = ready(v1_layout(tmp.path(), &["devices"]), "/ctr");
    let r = res(json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"},
        {"allow": true, "type": "b", "major": 8, "access": "mr"},
        {"allow": false, "type": "c", "major": 1, "minor": 3}
    ]}));
    let plan = m.plan(&r).unwrap();
    let got: Vec<(String, String)> = plan
        .iter()
        .map(|w| {
            (
                w.path.file_name().unwrap().to_string_lossy().into_owned(),
                w.value.clone(),
            )
        })
        .collect();
    let want = [
        ("devices.deny", "a"),
        ("devices.deny", "a"),
        ("devices.allow", "c 10:229 rw"),
        ("devices.allow", "b 8:* rm"),
        ("devices.deny", "c 1:3 rwm"),
    ];
    assert_eq!(got, want.map(|(a, b)| (a.to_string(), b.to_string())));
    m.apply(&r).unwrap();
    assert_eq!(read(&m.paths()[0].join("devices.deny")), "c 1:3 rwm");
}

#[test]
fn v2_devices_go_to_bpf() {
    let tmp = TempDir::new().unwrap();
    let m = ready(v2_layout(tmp.path(), &["pids"]), "/ctr");
    let r = res(json!({"pids": {"limit": 10}, "devices": [{"allow": false, "access": "rwm"}]}));
    // The plan alone cannot express device rules on v2...
    let e = m.plan(&r).unwrap_err();
    assert!(matches!(e, Error::DevicesNeedBpf { count: 1 }), "{e}");
    // ...so apply writes the rest and attaches a program, which fails on
    // this fake hierarchy (not a cgroup) naming the field.
    let e = m.apply(&r).unwrap_err().to_string();
    assert!(e.contains("linux.resources.devices"), "{e}");
    assert_eq!(read(&m.paths()[0].join("pids.max")), "10");
    m.apply_except_devices(&r).unwrap();
    assert_eq!(read(&m.paths()[0].join("pids.max")), "10");
    let rules = device_rules(r.devices().as_ref().unwrap()).unwrap();
    assert_eq!(rules[0].v1_line(), "a");
    // Invalid rules are still errors.
    let bad = res(json!({"devices": [{"allow": true, "type": "p"}]}));
    let e = err_text(m.apply_except_devices(&bad));
    assert!(
        e.starts_with("linux.resources.devices[0].type: invalid value \"p\""),
        "{e}"
    );
}

// ---- unified -------------------------------------------------------------

#[test]
fn unified_keys() {
    let tmp = TempDir::new().unwrap();
    let m = ready(v2_layout(tmp.path(), &["memory", "io"]), "/ctr");
    let d = &m.paths()[0];
    touch(d, &[("memory.high", "max"), ("cgroup.max.depth", "max")]);
    m.apply(&res(json!({"memory": {"limit": 100000}, "unified": {
        "memory.high": "50000", "io.max": "259:0 rbps=2097152", "cgroup.max.depth": "3", "memory.max": "200000"
    }})))
    .unwrap();
    assert_eq!(read(&d.join("memory.high")), "50000");
    assert_eq!(read(&d.join("io.max")), "259:0 rbps=2097152");
    assert_eq!(read(&d.join("cgroup.max.depth")), "3");
    assert_eq!(
        read(&d.join("memory.max")),
        "200000",
        "unified overrides the structured field"
    );
    let e = err_text(m.apply(&res(json!({"unified": {"hugetlb.1GB.max": "1"}}))));
    assert!(
        e.starts_with("linux.resources.unified[\"hugetlb.1GB.max\"]: the hugetlb controller is not available"),
        "{e}"
    );
    let e = err_text(m.apply(&res(json!({"unified": {"../x": "1"}}))));
    assert!(e.contains("invalid value"), "{e}");
    let e = err_text(m.apply(&res(json!({"unified": {"memory.bogus": "1"}}))));
    assert!(e.contains("memory.bogus does not exist"), "{e}");

    // Hybrid: a key for a v1-bound controller cannot be converted.
    let tmp = TempDir::new().unwrap();
    let m = ready(hybrid_layout(tmp.path(), &["memory"], &["hugetlb"]), "/ctr");
    let e = err_text(m.apply(&res(json!({"unified": {"memory.high": "1"}}))));
    assert!(e.contains("bound to cgroup v1"), "{e}");
    m.apply(&res(json!({"unified": {"hugetlb.2MB.max": "4194304"}})))
        .unwrap();
    assert_eq!(read(&tmp.path().join("unified/ctr/hugetlb.2MB.max")), "4194304");
}

// ---- freezer, kill -------------------------------------------------------

#[test]
fn freeze_and_thaw_v1_and_v2() {
    let tmp = TempDir::new().unwrap();
    let m = ready(v1_layout(tmp.path(), &["freezer"]), "/ctr");
    m.freeze().unwrap();
    assert_eq!(read(&m.paths()[0].join("freezer.state")), "FROZEN");
    assert!(m.is_frozen().unwrap());
    m.thaw().unwrap();
    assert_eq!(read(&m.paths()[0].join("freezer.state")), "THAWED");
    assert!(!m.is_frozen().unwrap());

    let tmp = TempDir::new().unwrap();
    let m = ready(v2_layout(tmp.path(), &[]), "/ctr");
    let d = m.paths()[0].clone();
    fs::write(d.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    m.freeze().unwrap();
    assert_eq!(read(&d.join("cgroup.freeze")), "1");
    assert!(m.is_frozen().unwrap());
    fs::remove_file(d.join("cgroup.events")).unwrap();
    m.thaw().unwrap();
    assert_eq!(read(&d.join("cgroup.freeze")), "0");

    // Hybrid without a v1 freezer uses cgroup.freeze on the unified side.
    let tmp = TempDir::new().unwrap();
    let m = ready(hybrid_layout(tmp.path(), &["memory"], &[]), "/ctr");
    fs::remove_file(m.paths()[1].join("cgroup.events")).unwrap();
    m.freeze().unwrap();
    assert_eq!(read(&m.paths()[1].join("cgroup.freeze")), "1");

    let tmp = TempDir::new().unwrap();
    let m = ready(v1_layout(tmp.path(), &["memory"]), "/ctr");
    let e = err_text(m.freeze());
    assert!(e.contains("freezer controller is not available"), "{e}");
}

struct Reap(Child);
impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kill_all_signals_listed_processes() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = TempDir::new().unwrap();
    let m = ready(v1_layout(tmp.path(), &["pids", "memory"]), "/ctr");
    let mut child = Reap(Command::new("sleep").arg("30").spawn().unwrap());
    let pid = child.0.id() as i32;
    fs::write(m.paths()[1].join("cgroup.procs"), format!("{pid}\n999999999\n")).unwrap();
    m.kill_all(libc::SIGTERM).unwrap();
    let status = child.0.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM));
}

#[test]
fn errno_names() {
    let e = io::Error::from_raw_os_error(libc::EBUSY);
    assert_eq!(errno(&e), "EBUSY (device or resource busy)");
    let e = io::Error::from_raw_os_error(4000);
    assert!(errno(&e).starts_with("errno 4000"));
}

// ---- the real host (root only) -------------------------------------------

/// The real layout, or `None` (with the reason printed) when these tests
/// cannot run here.
fn real_host(needs: &str) -> Option<Layout> {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root");
        return None;
    }
    let layout = match Layout::detect() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("skipped: {e}");
            return None;
        }
    };
    let has =
        layout.v1_mounts().contains_key(needs) || layout.unified().is_some_and(|(_, c)| c.iter().any(|c| c == needs));
    if !has {
        eprintln!("skipped: no {needs} controller ({})", layout.summary());
        return None;
    }
    Some(layout)
}

/// Kills and destroys even when an assertion fails mid-test.
struct Cleanup<'a>(&'a Manager);
impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill_all(libc::SIGKILL);
        let _ = self.0.destroy();
    }
}

#[test]
fn real_memory_cgroup_limit_join_freeze_destroy() {
    let Some(layout) = real_host("memory") else { return };
    let name = format!("/container-test-{}", std::process::id());
    let m = Manager::new(layout, Some(&name), "unused", &ProcCgroup::read_self().unwrap()).unwrap();
    let _cleanup = Cleanup(&m);
    m.create().unwrap();
    let mem_dir = m.hierarchy_for("memory").unwrap().dir.clone();
    let mut r = res(json!({"memory": {"limit": 67108864}, "pids": {"limit": 64}}));
    if let Some(h) = m.hierarchy_for("hugetlb") {
        if h.dir
            .join(if h.v2 {
                "hugetlb.2MB.max"
            } else {
                "hugetlb.2MB.limit_in_bytes"
            })
            .exists()
        {
            r.set_hugepage_limits(Some(
                res(json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}))
                    .hugepage_limits()
                    .clone()
                    .unwrap(),
            ));
        }
    }
    m.apply(&r).unwrap();
    let want = if m.hierarchy_for("memory").unwrap().v2 {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert_eq!(read(&mem_dir.join(want)).trim(), "67108864");

    let mut child = Reap(Command::new("sleep").arg("60").spawn().unwrap());
    let pid = child.0.id() as i32;
    m.add_process(pid).unwrap();
    assert_eq!(m.pids().unwrap(), vec![pid]);
    let theirs = ProcCgroup::read_pid(pid).unwrap();
    if let Some(p) = theirs.v1.get("memory") {
        assert_eq!(p, &name);
    }
    if m.unified().is_some() {
        assert_eq!(
            theirs.unified.as_deref(),
            Some(name.as_str()),
            "joined the unified hierarchy too"
        );
    }
    if r.hugepage_limits().is_some() {
        let h = m.hierarchy_for("hugetlb").unwrap();
        let f = if h.v2 {
            "hugetlb.2MB.max"
        } else {
            "hugetlb.2MB.limit_in_bytes"
        };
        assert_eq!(read(&h.dir.join(f)).trim(), "4194304");
    }

    if m.freezer().is_ok() {
        m.freeze().unwrap();
        assert!(m.is_frozen().unwrap());
        m.thaw().unwrap();
        assert!(!m.is_frozen().unwrap());
    }

    eprintln!(
        "real host: {:?}; hugetlb limit: {}; freezer: {}",
        m.paths(),
        r.hugepage_limits().is_some(),
        m.freezer().is_ok()
    );
    m.kill_all(libc::SIGKILL).unwrap();
    let status = child.0.wait().unwrap();
    assert!(!status.success());
    m.destroy().unwrap();
    for p in m.paths() {
        assert!(!p.exists(), "left behind: {}", p.display());
    }
}

#[test]
fn real_apply_errors_from_the_kernel_name_field_and_value() {
    let Some(layout) = real_host("cpuset") else { return };
    if !layout.v1_mounts().contains_key("cpuset") {
        eprintln!("skipped: cpuset is not on v1 here");
        return;
    }
    let name = format!("/container-test-{}-cpuset", std::process::id());
    let m = Manager::new(layout, Some(&name), "unused", &ProcCgroup::read_self().unwrap()).unwrap();
    let _cleanup = Cleanup(&m);
    m.create().unwrap();
    // The parent's cpus were copied, so a task can join right away.
    let dir = m.hierarchy_for("cpuset").unwrap().dir.clone();
    assert!(!read(&dir.join("cpuset.cpus")).trim().is_empty());
    let mut child = Reap(Command::new("sleep").arg("60").spawn().unwrap());
    m.add_process(child.0.id() as i32).unwrap();
    // CPU 4095 does not exist: the kernel refuses, and the error says which
    // field and value.
    let e = err_text(m.apply(&res(json!({"cpu": {"cpus": "4095"}}))));
    assert!(e.starts_with("linux.resources.cpu.cpus: writing 4095 to "), "{e}");
    m.kill_all(libc::SIGKILL).unwrap();
    let _ = child.0.wait();
    m.destroy().unwrap();
    for p in m.paths() {
        assert!(!p.exists(), "left behind: {}", p.display());
    }
}

#[test]
fn detect_reads_this_machine() {
    match Layout::detect() {
        Ok(layout) => {
            // Whatever the shape, a manager resolves and lists its paths.
            let own = ProcCgroup::read_self().unwrap();
            let m = Manager::new(layout, Some("/container-test-detect"), "x", &own).unwrap();
            assert!(
                m.paths().iter().all(|p| p.ends_with("container-test-detect")),
                "{:?}",
                m.paths()
            );
        }
        Err(Error::NoCgroups) => eprintln!("skipped: no cgroup filesystem mounted"),
        Err(e) => panic!("{e}"),
    }
}
