//! Keeps the kernel's cgroup migration lock in the same state for every
//! runtime's turn. Moving a process into a cgroup takes the global
//! `cgroup_threadgroup_rwsem` for writing; when no migration happened for a
//! few RCU grace periods the lock is back on its reader-fast path, and the
//! next writer first waits a whole grace period. On the 2-core VM this was
//! built on, that made a container's `create` 10–18 ms slower after a pause
//! of 50 ms or more, so whoever came after a slow runtime (or the harness's
//! own waiting) paid for it. Right before each turn the harness moves a
//! throwaway process into a scratch cgroup, so every runtime starts warm.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::host::Host;

#[derive(Debug)]
pub struct CgroupWarmer {
    /// The scratch cgroup, removed on drop; `None` when none could be made
    /// (no cgroups, not root): warming is then skipped.
    dir: Option<PathBuf>,
    probe: PathBuf,
}

impl CgroupWarmer {
    /// A scratch cgroup named `name` in one hierarchy of `host` (the lock
    /// is global, so one hierarchy warms all).
    pub fn new(host: &Host, name: &str, probe: &Path) -> CgroupWarmer {
        let root = host
            .cgroup_v1
            .get("pids")
            .or_else(|| host.cgroup_v1.values().next())
            .or(host.cgroup_v2.as_ref());
        let dir = root
            .map(|r| r.join(name))
            .filter(|d| std::fs::create_dir(d).is_ok() || d.is_dir());
        CgroupWarmer {
            dir,
            probe: probe.to_path_buf(),
        }
    }

    /// Whether warming happens.
    pub fn active(&self) -> bool {
        self.dir.is_some()
    }

    /// Migrates a short-lived process into the scratch cgroup.
    pub fn warm(&self) {
        let Some(dir) = &self.dir else {
            return;
        };
        let child = crate::reaper::spawn(
            Command::new(&self.probe)
                .args(["sleep", "10"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let Ok(mut child) = child else {
            return;
        };
        let _ = std::fs::write(dir.join("cgroup.procs"), child.id().to_string());
        let _ = child.kill();
        let _ = child.wait();
        crate::reaper::release(child.id());
    }
}

impl Drop for CgroupWarmer {
    fn drop(&mut self) {
        if let Some(d) = &self.dir {
            // Its one process was reaped in `warm`; the directory is empty.
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_cgroups_warming_is_skipped() {
        let mut host = Host::detect();
        host.cgroup_v1.clear();
        host.cgroup_v2 = None;
        let w = CgroupWarmer::new(&host, "hb-test-warm", Path::new("/bin/true"));
        assert!(!w.active());
        w.warm();
    }

    #[test]
    fn a_scratch_cgroup_is_made_used_and_removed() {
        let t = tempfile::tempdir().unwrap();
        // A directory standing in for a hierarchy: the write to
        // cgroup.procs lands in a plain file, which is all this checks.
        let mut host = Host::detect();
        host.cgroup_v1.clear();
        host.cgroup_v2 = Some(t.path().to_path_buf());
        let w = CgroupWarmer::new(&host, "hb-test-warm", Path::new("/bin/sleep"));
        assert!(w.active());
        w.warm();
        let procs = std::fs::read_to_string(t.path().join("hb-test-warm/cgroup.procs")).unwrap();
        assert!(procs.trim().parse::<u32>().is_ok(), "{procs:?}");
        std::fs::remove_file(t.path().join("hb-test-warm/cgroup.procs")).unwrap();
        drop(w);
        assert!(!t.path().join("hb-test-warm").exists());
    }
}
