//! Resource usage from cgroups (v2, v1, or a hybrid host's v1 controllers),
//! and cleanup of the cgroup directories the server made.

use std::path::{Path, PathBuf};

/// What ContainerStats and PodSandboxStats report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub timestamp: i64,
    pub cpu_usage_ns: Option<u64>,
    pub memory_usage: Option<u64>,
    pub memory_working_set: Option<u64>,
    pub memory_limit: Option<u64>,
}

/// The cgroup filesystem root (`/sys/fs/cgroup` outside tests).
#[derive(Debug, Clone)]
pub struct Cgroups {
    pub root: PathBuf,
}

impl Default for Cgroups {
    fn default() -> Self {
        Cgroups {
            root: PathBuf::from("/sys/fs/cgroup"),
        }
    }
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn stat_field(p: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(p).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

impl Cgroups {
    fn unified(&self) -> bool {
        self.root.join("cgroup.controllers").exists()
    }

    fn rel(path: &str) -> &str {
        path.trim_start_matches('/')
    }

    /// Usage of the cgroup at `path` (as in an OCI cgroupsPath).
    pub fn usage(&self, path: &str) -> Usage {
        let rel = Self::rel(path);
        let mut u = Usage {
            timestamp: crate::monitor::now_ns(),
            ..Default::default()
        };
        if self.unified() {
            let dir = self.root.join(rel);
            u.cpu_usage_ns = stat_field(&dir.join("cpu.stat"), "usage_usec").map(|us| us * 1000);
            u.memory_usage = read_u64(&dir.join("memory.current"));
            let inactive = stat_field(&dir.join("memory.stat"), "inactive_file").unwrap_or(0);
            u.memory_working_set = u.memory_usage.map(|m| m.saturating_sub(inactive));
            u.memory_limit = read_u64(&dir.join("memory.max"));
        } else {
            let cpuacct = ["cpuacct", "cpu,cpuacct"]
                .iter()
                .map(|c| self.root.join(c).join(rel).join("cpuacct.usage"))
                .find(|p| p.exists());
            u.cpu_usage_ns = cpuacct.as_deref().and_then(read_u64);
            let mem = self.root.join("memory").join(rel);
            u.memory_usage = read_u64(&mem.join("memory.usage_in_bytes"));
            let inactive = stat_field(&mem.join("memory.stat"), "total_inactive_file").unwrap_or(0);
            u.memory_working_set = u.memory_usage.map(|m| m.saturating_sub(inactive));
            // v1 reports "no limit" as a huge page-rounded number.
            u.memory_limit = read_u64(&mem.join("memory.limit_in_bytes")).filter(|l| *l < (1u64 << 62));
        }
        u
    }

    /// The files whose `oom_kill` counter tells an OOM kill in this cgroup.
    pub fn oom_files(&self, path: &str) -> Vec<PathBuf> {
        let rel = Self::rel(path);
        vec![
            self.root.join(rel).join("memory.events"),
            self.root.join("memory").join(rel).join("memory.oom_control"),
        ]
    }

    /// Removes the (empty) cgroup directory `path` in every hierarchy.
    pub fn remove(&self, path: &str) {
        let rel = Self::rel(path);
        if rel.is_empty() {
            return;
        }
        let mut dirs = vec![self.root.join(rel)];
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                dirs.push(e.path().join(rel));
            }
        }
        for d in dirs {
            // Only empty cgroups can go; a busy one stays (and is reported
            // by the leak checks of the tests rather than killed here).
            let _ = std::fs::remove_dir(d);
        }
    }
}

pub fn usage(path: &str) -> Usage {
    Cgroups::default().usage(path)
}

pub fn oom_files(path: &str) -> Vec<PathBuf> {
    Cgroups::default().oom_files(path)
}

pub fn remove_cgroup(path: &str) {
    Cgroups::default().remove(path)
}

/// Bytes and inodes under `dir` (not following symlinks, not crossing
/// into other filesystems).
pub fn disk_usage(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let Ok(root) = std::fs::symlink_metadata(dir) else {
        return (0, 0);
    };
    let dev = root.dev();
    let (mut bytes, mut inodes) = (0u64, 0u64);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&d) else {
            continue;
        };
        if meta.dev() != dev {
            continue;
        }
        bytes += meta.blocks() * 512;
        inodes += 1;
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&d) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        }
    }
    (bytes, inodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_usage_from_a_fake_hierarchy() {
        let d = tempfile::tempdir().unwrap();
        let cg = Cgroups {
            root: d.path().to_path_buf(),
        };
        let cpu = d.path().join("cpu,cpuacct/cri/p/c");
        let mem = d.path().join("memory/cri/p/c");
        std::fs::create_dir_all(&cpu).unwrap();
        std::fs::create_dir_all(&mem).unwrap();
        std::fs::write(cpu.join("cpuacct.usage"), "12345\n").unwrap();
        std::fs::write(mem.join("memory.usage_in_bytes"), "1000\n").unwrap();
        std::fs::write(mem.join("memory.stat"), "cache 5\ntotal_inactive_file 300\n").unwrap();
        std::fs::write(mem.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        let u = cg.usage("/cri/p/c");
        assert_eq!(u.cpu_usage_ns, Some(12345));
        assert_eq!(u.memory_working_set, Some(700));
        assert_eq!(u.memory_limit, None);
    }

    #[test]
    fn v2_usage_from_a_fake_hierarchy() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("cgroup.controllers"), "cpu memory\n").unwrap();
        let dir = d.path().join("cri/c");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cpu.stat"), "usage_usec 7\nuser_usec 5\n").unwrap();
        std::fs::write(dir.join("memory.current"), "4096\n").unwrap();
        std::fs::write(dir.join("memory.stat"), "anon 1\ninactive_file 1024\n").unwrap();
        std::fs::write(dir.join("memory.max"), "max\n").unwrap();
        let u = Cgroups { root: d.path().into() }.usage("cri/c");
        assert_eq!(u.cpu_usage_ns, Some(7000));
        assert_eq!(u.memory_working_set, Some(3072));
        assert_eq!(u.memory_limit, None);
    }

    #[test]
    fn disk_usage_counts_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), vec![1u8; 10000]).unwrap();
        let (bytes, inodes) = disk_usage(d.path());
        assert!(bytes >= 10000, "{bytes}");
        assert_eq!(inodes, 2);
    }
}
