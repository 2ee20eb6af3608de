//! Leak accounting: a snapshot of what a runtime can leave behind (mounts,
//! cgroup directories, processes and zombies, state directories, the file
//! descriptors of its long-lived processes), taken before and after a run,
//! and the difference between the two, each leftover named.
//!
//! Reading the host ([`Snapshot::take`]) is kept apart from comparing
//! snapshots ([`diff`]), which is plain data and unit-tested.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cleanup;

/// What a snapshot looks at: the run's directories, its marker, and the
/// cgroup paths it chose itself.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Mounts at or below these count (bundles, the runtime's `--root`).
    pub dirs: Vec<PathBuf>,
    /// The run's id prefix and marker value: processes whose environment
    /// carries it, mounts and cgroup directories whose path holds it.
    pub prefix: String,
    /// The runtime's state root: every entry in it is a container it knows.
    pub root: PathBuf,
    /// Cgroup paths (relative to each hierarchy's root) the run asked for.
    pub cgroup_paths: Vec<PathBuf>,
}

/// One process, as /proc shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    pub comm: String,
    /// The state letter of /proc/PID/stat (`Z` for a zombie).
    pub state: char,
    /// Start time in clock ticks since boot: with the pid, an identity that
    /// survives pid reuse.
    pub start: u64,
    /// Open file descriptors (`/proc/PID/fd` entries), when readable.
    pub fds: Option<usize>,
}

/// What the run's scope held at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Mount points (unescaped) in scope.
    pub mounts: BTreeSet<String>,
    /// Cgroup directories in scope, in every hierarchy (v1 and v2).
    pub cgroups: BTreeSet<String>,
    /// Processes in scope by pid: the harness's descendants (it is their
    /// subreaper, so orphans of a runtime land here), marked processes, and
    /// members of the run's cgroups.
    pub processes: BTreeMap<i32, Proc>,
    /// Entries of the runtime's state root.
    pub state: BTreeSet<String>,
}

/// One thing left behind, by kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Leftover {
    /// `mount`, `cgroup`, `process`, `zombie`, `state` or `fds`.
    pub kind: String,
    pub what: String,
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.what)
    }
}

fn leftover(kind: &str, what: impl Into<String>) -> Leftover {
    Leftover {
        kind: kind.to_string(),
        what: what.into(),
    }
}

/// What `after` holds that `before` did not, each named: new mounts, cgroup
/// directories, state entries and processes (zombies counted apart), and
/// long-lived processes (present in both) whose descriptor count grew.
pub fn diff(before: &Snapshot, after: &Snapshot) -> Vec<Leftover> {
    let mut out = Vec::new();
    out.extend(
        after
            .mounts
            .difference(&before.mounts)
            .map(|m| leftover("mount", m.as_str())),
    );
    out.extend(
        after
            .cgroups
            .difference(&before.cgroups)
            .map(|c| leftover("cgroup", c.as_str())),
    );
    out.extend(
        after
            .state
            .difference(&before.state)
            .map(|s| leftover("state", s.as_str())),
    );
    for (pid, p) in &after.processes {
        match before.processes.get(pid) {
            Some(b) if b.start == p.start => {
                // The same process in both: only its descriptors can leak.
                if let (Some(was), Some(now)) = (b.fds, p.fds) {
                    if now > was {
                        out.push(leftover(
                            "fds",
                            format!("{pid} ({}) holds {now} fds, {was} before", p.comm),
                        ));
                    }
                }
                if p.state == 'Z' && b.state != 'Z' {
                    out.push(leftover("zombie", format!("{pid} ({})", p.comm)));
                }
            }
            _ => {
                let kind = if p.state == 'Z' { "zombie" } else { "process" };
                out.push(leftover(kind, format!("{pid} ({})", p.comm)));
            }
        }
    }
    out
}

/// Counts per kind, for a summary line (`2 process, 1 cgroup`).
pub fn count_by_kind(leftovers: &[Leftover]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in leftovers {
        *m.entry(l.kind.clone()).or_insert(0) += 1;
    }
    m
}

/// Whether mount point `m` is in scope.
fn mount_in_scope(m: &str, scope: &Scope) -> bool {
    let p = Path::new(m);
    scope.dirs.iter().any(|d| p.starts_with(d) && p != d.as_path())
        || (!scope.prefix.is_empty() && m.contains(&scope.prefix))
}

/// Mount points of `mountinfo` in scope (the fifth field, unescaped).
pub fn mounts_in_scope(mountinfo: &str, scope: &Scope) -> BTreeSet<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(crate::cleanup::unescape)
        .filter(|m| mount_in_scope(m, scope))
        .collect()
}

/// Parses /proc/PID/stat: (command, state, parent pid, start time).
pub fn parse_stat(stat: &str) -> Option<(String, char, i32, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // After the command: state is field 3 of stat(5), ppid 4, starttime 22.
    let state = fields.first()?.chars().next()?;
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((comm, state, ppid, start))
}

/// The pids in `table` (pid to parent) that descend from `root`.
pub fn descendants(table: &BTreeMap<i32, i32>, root: i32) -> BTreeSet<i32> {
    let mut children: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (&pid, &ppid) in table {
        children.entry(ppid).or_default().push(pid);
    }
    let mut out = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
            if out.insert(c) {
                todo.push(c);
            }
        }
    }
    out
}

fn read_proc(pid: i32) -> Option<(Proc, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (comm, state, ppid, start) = parse_stat(&stat)?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok().map(|d| d.count());
    Some((
        Proc {
            comm,
            state,
            start,
            fds,
        },
        ppid,
    ))
}

impl Snapshot {
    /// Reads the host for what `scope` covers.
    pub fn take(scope: &Scope) -> Snapshot {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mounts = mounts_in_scope(&mountinfo, scope);

        let roots = cleanup::cgroup_roots();
        let mut cgroups: BTreeSet<String> = BTreeSet::new();
        if !scope.prefix.is_empty() {
            cgroups.extend(
                cleanup::cgroups_named(&roots, &scope.prefix)
                    .into_iter()
                    .map(|p| p.display().to_string()),
            );
        }
        for extra in &scope.cgroup_paths {
            for r in &roots {
                let p = r.join(extra.strip_prefix("/").unwrap_or(extra));
                if p.is_dir() {
                    cgroups.insert(p.display().to_string());
                }
            }
        }

        // Every process with its parent, once.
        let me = std::process::id() as i32;
        let mut table: BTreeMap<i32, i32> = BTreeMap::new();
        let mut procs: BTreeMap<i32, Proc> = BTreeMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for e in dir.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                    continue;
                };
                if let Some((p, ppid)) = read_proc(pid) {
                    table.insert(pid, ppid);
                    procs.insert(pid, p);
                }
            }
        }
        let mut wanted = descendants(&table, me);
        if !scope.prefix.is_empty() {
            wanted.extend(cleanup::marked_processes(&scope.prefix));
        }
        for cg in &cgroups {
            if let Ok(text) = std::fs::read_to_string(Path::new(cg).join("cgroup.procs")) {
                wanted.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
        }
        wanted.remove(&me);
        let processes = wanted
            .into_iter()
            .filter_map(|pid| procs.remove(&pid).map(|p| (pid, p)))
            .collect();

        let state = std::fs::read_dir(&scope.root)
            .map(|d| d.flatten().map(|e| e.path().display().to_string()).collect())
            .unwrap_or_default();
        Snapshot {
            mounts,
            cgroups,
            processes,
            state,
        }
    }
}

/// Takes snapshots until nothing is left compared with `before`, or
/// `patience` has passed: a runtime may finish tearing down (a cgroup
/// emptied by the kernel, a shim exiting) just after its `delete` returned.
pub fn settle(before: &Snapshot, scope: &Scope, patience: std::time::Duration) -> (Snapshot, Vec<Leftover>) {
    let deadline = std::time::Instant::now() + patience;
    loop {
        let after = Snapshot::take(scope);
        let left = diff(before, &after);
        if left.is_empty() || std::time::Instant::now() >= deadline {
            return (after, left);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(comm: &str, state: char, start: u64, fds: Option<usize>) -> Proc {
        Proc {
            comm: comm.into(),
            state,
            start,
            fds,
        }
    }

    #[test]
    fn nothing_new_is_no_leak() {
        let mut s = Snapshot::default();
        s.mounts.insert("/w/b/rootfs".into());
        s.processes.insert(10, proc("shim", 'S', 5, Some(4)));
        assert_eq!(diff(&s, &s.clone()), vec![]);
        // Things that went away are not leaks either.
        assert_eq!(diff(&s, &Snapshot::default()), vec![]);
    }

    #[test]
    fn each_new_thing_is_named_by_kind() {
        let before = Snapshot::default();
        let mut after = Snapshot::default();
        after.mounts.insert("/w/b/rootfs/proc".into());
        after.cgroups.insert("/sys/fs/cgroup/memory/oh1-3".into());
        after.state.insert("/w/root/oh1-3".into());
        after.processes.insert(42, proc("runc:[2:INIT]", 'S', 9, None));
        after.processes.insert(43, proc("probe", 'Z', 9, None));
        let left = diff(&before, &after);
        let kinds = count_by_kind(&left);
        for k in ["mount", "cgroup", "state", "process", "zombie"] {
            assert_eq!(kinds.get(k), Some(&1), "{k}: {left:?}");
        }
        assert!(left.iter().any(|l| l.what == "42 (runc:[2:INIT])"), "{left:?}");
    }

    #[test]
    fn a_reused_pid_is_a_new_process() {
        let mut before = Snapshot::default();
        before.processes.insert(7, proc("old", 'S', 100, Some(3)));
        let mut after = Snapshot::default();
        after.processes.insert(7, proc("new", 'S', 200, Some(3)));
        assert_eq!(diff(&before, &after), vec![leftover("process", "7 (new)")]);
    }

    #[test]
    fn a_long_lived_process_leaks_descriptors_only_when_they_grow() {
        let mut before = Snapshot::default();
        before.processes.insert(7, proc("shim", 'S', 100, Some(5)));
        let mut after = before.clone();
        after.processes.get_mut(&7).unwrap().fds = Some(4);
        assert_eq!(diff(&before, &after), vec![]);
        after.processes.get_mut(&7).unwrap().fds = Some(9);
        let left = diff(&before, &after);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].kind, "fds");
        assert!(left[0].what.contains("9 fds, 5 before"), "{left:?}");
        // Unreadable counts say nothing.
        after.processes.get_mut(&7).unwrap().fds = None;
        assert_eq!(diff(&before, &after), vec![]);
    }

    #[test]
    fn a_process_that_became_a_zombie_is_counted() {
        let mut before = Snapshot::default();
        before.processes.insert(7, proc("init", 'S', 100, None));
        let mut after = before.clone();
        after.processes.get_mut(&7).unwrap().state = 'Z';
        assert_eq!(diff(&before, &after), vec![leftover("zombie", "7 (init)")]);
    }

    #[test]
    fn mounts_are_scoped_to_the_run() {
        let scope = Scope {
            dirs: vec![PathBuf::from("/tmp/w")],
            prefix: "ohX1".into(),
            ..Scope::default()
        };
        let info = "\
1 0 0:1 / / rw - ext4 /dev/sda rw
2 1 0:2 / /tmp/w rw - tmpfs tmpfs rw
3 2 0:3 / /tmp/w/b\\040x/rootfs rw - overlay overlay rw
4 1 0:4 / /run/other/ohX1-7/shm rw - tmpfs shm rw
5 1 0:5 / /tmp/wx rw - tmpfs tmpfs rw
";
        let m = mounts_in_scope(info, &scope);
        let want: BTreeSet<String> = ["/tmp/w/b x/rootfs", "/run/other/ohX1-7/shm"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(m, want);
    }

    #[test]
    fn stat_fields_survive_odd_names() {
        let stat = "123 (a) b (c) S 7 123 123 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 4567 100 1";
        assert_eq!(parse_stat(stat), Some(("a) b (c".to_string(), 'S', 7, 4567)));
        assert_eq!(parse_stat("junk"), None);
    }

    #[test]
    fn descendants_follow_the_tree() {
        let t: BTreeMap<i32, i32> = [(2, 1), (3, 2), (4, 3), (5, 1), (6, 9)].into_iter().collect();
        assert_eq!(descendants(&t, 2), [3, 4].into_iter().collect());
        assert_eq!(descendants(&t, 1), [2, 3, 4, 5].into_iter().collect());
    }
}
