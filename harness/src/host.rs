//! Facts about the machine the suite runs on, read once: which cgroup
//! hierarchies exist, which namespaces and seccomp features the kernel has,
//! and whether the harness holds capabilities some cases need.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// capability(7) number of CAP_SYS_RESOURCE.
const CAP_SYS_RESOURCE: u32 = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupMode {
    /// Only v1 controllers.
    Legacy,
    /// v1 controllers plus a v2 mount (`/sys/fs/cgroup/unified`).
    Hybrid,
    /// Only the unified hierarchy.
    Unified,
    None,
}

#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub kernel: String,
    pub cgroup_mode: CgroupMode,
    /// v1 controller name to its mount point.
    pub cgroup_v1: BTreeMap<String, PathBuf>,
    /// The v2 mount point, if any, and the controllers it offers.
    pub cgroup_v2: Option<PathBuf>,
    pub cgroup_v2_controllers: Vec<String>,
    pub namespaces: Vec<String>,
    pub seccomp: bool,
    pub seccomp_notify: bool,
    pub cap_sys_resource: bool,
}

impl Host {
    pub fn detect() -> Host {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let (v1, v2) = parse_cgroup_mounts(&mountinfo);
        let v2_controllers = v2
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p.join("cgroup.controllers")).ok())
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let cgroup_mode = match (v1.is_empty(), v2.is_some()) {
            (false, true) => CgroupMode::Hybrid,
            (false, false) => CgroupMode::Legacy,
            (true, true) => CgroupMode::Unified,
            (true, false) => CgroupMode::None,
        };
        let namespaces = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"]
            .into_iter()
            .filter(|n| Path::new("/proc/self/ns").join(n).exists())
            .map(str::to_string)
            .collect();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let cap_eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0);
        let actions = std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail").unwrap_or_default();
        Host {
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            cgroup_mode,
            cgroup_v1: v1,
            cgroup_v2: v2,
            cgroup_v2_controllers: v2_controllers,
            namespaces,
            seccomp: status.lines().any(|l| l.starts_with("Seccomp:")),
            seccomp_notify: actions.split_whitespace().any(|a| a == "user_notif"),
            cap_sys_resource: cap_eff & (1 << CAP_SYS_RESOURCE) != 0,
        }
    }

    /// Whether `controller` is usable on v1 or v2.
    pub fn has_controller(&self, controller: &str) -> bool {
        self.cgroup_v1.contains_key(controller) || self.cgroup_v2_controllers.iter().any(|c| c == controller)
    }

    /// The directory where `controller`'s files for cgroup `path` live on
    /// the host: the v1 hierarchy that has it, else the v2 one.
    pub fn cgroup_dir(&self, controller: &str, path: &str) -> Option<PathBuf> {
        let rel = path.trim_start_matches('/');
        if let Some(root) = self.cgroup_v1.get(controller) {
            return Some(root.join(rel));
        }
        if self.cgroup_v2_controllers.iter().any(|c| c == controller) {
            return self.cgroup_v2.as_ref().map(|r| r.join(rel));
        }
        None
    }
}

/// v1 controller mounts and the v2 mount from mountinfo text.
pub fn parse_cgroup_mounts(mountinfo: &str) -> (BTreeMap<String, PathBuf>, Option<PathBuf>) {
    let mut v1 = BTreeMap::new();
    let mut v2 = None;
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mp) = pre.split(' ').nth(4) else {
            continue;
        };
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or("");
        let _source = post.next();
        let opts = post.next().unwrap_or("");
        match fstype {
            "cgroup2" => v2 = Some(PathBuf::from(mp)),
            "cgroup" => {
                for o in opts.split(',') {
                    let known = [
                        "cpu",
                        "cpuacct",
                        "cpuset",
                        "memory",
                        "pids",
                        "blkio",
                        "devices",
                        "freezer",
                        "hugetlb",
                        "net_cls",
                        "net_prio",
                        "perf_event",
                        "rdma",
                        "misc",
                    ];
                    if known.contains(&o) {
                        v1.entry(o.to_string()).or_insert_with(|| PathBuf::from(mp));
                    }
                }
            }
            _ => {}
        }
    }
    (v1, v2)
}

/// On a hybrid host, moves this process into a private mount namespace
/// without the cgroup2 mount at `/sys/fs/cgroup/unified`, so runtimes that
/// refuse hybrid mode (crun 1.8) can run; every runtime started afterwards
/// sees the same v1-only host. Returns false when the host is not hybrid
/// (nothing to do). Call it before the process starts threads: the new
/// mount namespace is the calling thread's.
pub fn hide_hybrid_cgroup2() -> std::io::Result<bool> {
    let unified = Path::new("/sys/fs/cgroup/unified");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let (v1, v2) = parse_cgroup_mounts(&mountinfo);
    if v1.is_empty() || v2.as_deref() != Some(unified) {
        return Ok(false);
    }
    let fail = || std::io::Error::last_os_error();
    // SAFETY: unshare takes a flag and changes only this thread's (and its
    // future children's) namespaces.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(fail());
    }
    // SAFETY: valid NUL-terminated strings; a recursive private remount of
    // `/` in the new namespace keeps the unmount below from propagating.
    let r = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(fail());
    }
    // SAFETY: a valid NUL-terminated path; the mount is in our own namespace.
    if unsafe { libc::umount2(c"/sys/fs/cgroup/unified".as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(fail());
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
";

    #[test]
    fn hybrid_mounts_are_split_by_version() {
        let (v1, v2) = parse_cgroup_mounts(HYBRID);
        assert_eq!(v2.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
        assert_eq!(
            v1.get("memory").map(PathBuf::as_path),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
        assert_eq!(
            v1.get("cpuacct").map(PathBuf::as_path),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert!(!v1.contains_key("pids"));
    }

    #[test]
    fn cgroup_dir_prefers_v1_then_v2() {
        let (v1, v2) = parse_cgroup_mounts(HYBRID);
        let h = Host {
            kernel: String::new(),
            cgroup_mode: CgroupMode::Hybrid,
            cgroup_v1: v1,
            cgroup_v2: v2,
            cgroup_v2_controllers: vec!["hugetlb".into()],
            namespaces: vec![],
            seccomp: true,
            seccomp_notify: true,
            cap_sys_resource: false,
        };
        assert_eq!(
            h.cgroup_dir("memory", "/a/b"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/a/b"))
        );
        assert_eq!(
            h.cgroup_dir("hugetlb", "x"),
            Some(PathBuf::from("/sys/fs/cgroup/unified/x"))
        );
        assert_eq!(h.cgroup_dir("pids", "x"), None);
    }
}
