//! Leak checks around every case. A case's runtime invocations and default
//! config carry a marker in the environment (`OCI_HARNESS_CASE=<prefix>`) and
//! its container ids start with that prefix, so whatever the runtime leaves
//! behind (processes, mounts, cgroups, state) can be found, reported as a
//! leak, and removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The environment variable that marks a case's processes.
pub const MARKER: &str = "OCI_HARNESS_CASE";

/// What one case left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    pub kind: &'static str,
    pub what: String,
}

impl std::fmt::Display for Leak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.what)
    }
}

/// Processes whose environment carries `MARKER=prefix`.
pub fn marked_processes(prefix: &str) -> Vec<i32> {
    let needle = format!("{MARKER}={prefix}\0");
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me || !crate::reaper::alive(pid) {
            continue;
        }
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
            if contains(&env, needle.as_bytes()) {
                out.push(pid);
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    // Entries are NUL-separated; the needle ends with NUL, so match at the
    // start or after a NUL to avoid matching a longer prefix.
    hay.split(|&b| b == 0)
        .any(|entry| entry.len() + 1 == needle.len() && needle.starts_with(entry))
}

/// Kills `pids` and waits (bounded) for them to go.
pub fn kill_all(pids: &[i32]) {
    for &pid in pids {
        // SAFETY: kill(2) takes plain integers; signalling a pid that has
        // gone is harmless (ESRCH).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && pids.iter().any(|&p| crate::reaper::alive(p)) {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Mount points at or below `dir` in this mount namespace.
pub fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .filter(|m| m.starts_with(dir))
        .collect();
    // Deepest first, so unmounting in order works.
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out
}

/// A mountinfo field with its octal escapes (`\040` for a space) undone.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn umount(p: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
}

/// Roots of every cgroup hierarchy mounted here (v1 controllers and v2).
pub fn cgroup_roots() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut roots: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| {
            let (_, post) = l.split_once(" - ")?;
            let fstype = post.split(' ').next()?;
            if fstype == "cgroup" || fstype == "cgroup2" {
                Some(PathBuf::from(unescape(l.split(' ').nth(4)?)))
            } else {
                None
            }
        })
        .collect();
    roots.sort();
    roots.dedup();
    roots
}

/// Cgroup directories (up to a few levels deep) whose name contains `prefix`.
pub fn cgroups_named(roots: &[PathBuf], prefix: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, prefix: &str, depth: u32, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let p = e.path();
            if e.file_name().to_string_lossy().contains(prefix) {
                out.push(p.clone());
            }
            if depth > 0 {
                walk(&p, prefix, depth - 1, out);
            }
        }
    }
    let mut out = Vec::new();
    for r in roots {
        walk(r, prefix, 4, &mut out);
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

fn remove_cgroup(dir: &Path) {
    // Kill what is still inside, then remove children before parents. A
    // killed task stays a member until it is reaped, so rmdir is retried
    // (EBUSY) for a while.
    if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        let pids: Vec<i32> = procs.lines().filter_map(|l| l.trim().parse().ok()).collect();
        kill_all(&pids);
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&e.path());
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while std::fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The host's hostname, to notice a runtime that set it outside a UTS
/// namespace.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Puts the host's hostname back; reports whether a change had to be undone.
pub fn restore_host_name(expected: &str) -> Option<Leak> {
    let now = host_name();
    if now == expected || expected.is_empty() {
        return None;
    }
    let _ = std::fs::write("/proc/sys/kernel/hostname", expected);
    Some(Leak {
        kind: "host hostname",
        what: format!("changed to {now:?} (restored {expected:?})"),
    })
}

/// Finds and removes what a case left: processes marked with `prefix`,
/// mounts below `case_dir`, cgroups named with `prefix`, extra cgroup paths
/// the case asked for, and anything left in the runtime's state `root`.
pub fn sweep(prefix: &str, case_dir: &Path, root: &Path, cgroup_paths: &[PathBuf]) -> Vec<Leak> {
    let mut leaks = Vec::new();
    let pids = marked_processes(prefix);
    for &p in &pids {
        let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        leaks.push(Leak {
            kind: "process",
            what: format!("{p} ({})", comm.trim()),
        });
    }
    kill_all(&pids);
    for m in mounts_below(case_dir) {
        leaks.push(Leak {
            kind: "mount",
            what: m.display().to_string(),
        });
        umount(&m);
    }
    let roots = cgroup_roots();
    let mut cgs = cgroups_named(&roots, prefix);
    for extra in cgroup_paths {
        for r in &roots {
            let p = r.join(extra.strip_prefix("/").unwrap_or(extra));
            if p.is_dir() && !cgs.contains(&p) {
                cgs.push(p);
            }
        }
    }
    for cg in cgs {
        if cg.is_dir() {
            leaks.push(Leak {
                kind: "cgroup",
                what: cg.display().to_string(),
            });
            remove_cgroup(&cg);
        }
    }
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.flatten() {
            leaks.push(Leak {
                kind: "state",
                what: e.path().display().to_string(),
            });
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    leaks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_matches_whole_entries_only() {
        let env = b"A=1\0OCI_HARNESS_CASE=p12\0B=2\0";
        assert!(contains(env, b"OCI_HARNESS_CASE=p12\0"));
        assert!(!contains(env, b"OCI_HARNESS_CASE=p1\0"));
        assert!(!contains(b"XOCI_HARNESS_CASE=p12\0", b"OCI_HARNESS_CASE=p12\0"));
    }

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn cgroup_walk_finds_named_dirs_deepest_first() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("x/ohAc1-2/sub")).unwrap();
        std::fs::create_dir_all(t.path().join("ohAc1-3")).unwrap();
        std::fs::create_dir_all(t.path().join("other")).unwrap();
        let found = cgroups_named(&[t.path().to_path_buf()], "ohAc1");
        assert_eq!(found.len(), 2);
        assert!(found[0].ends_with("x/ohAc1-2"));
    }

    #[test]
    fn state_leftovers_are_reported_and_removed() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("c1")).unwrap();
        let leaks = sweep("no-such-prefix-xyz", &t.path().join("case"), &root, &[]);
        assert_eq!(leaks.len(), 1, "{leaks:?}");
        assert_eq!(leaks[0].kind, "state");
        assert!(!root.join("c1").exists());
    }
}
