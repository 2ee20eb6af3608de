//! Where the cgroup hierarchies are mounted (`/proc/self/mountinfo`) and
//! where a process sits in them (`/proc/<pid>/cgroup`). Both are parsed from
//! text so the manager's logic can be pointed at a fake tree in tests.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::{Error, Result};

/// Controllers the kernel can bind to a v1 hierarchy. Mount options outside
/// this list (`rw`, `relatime`, `name=systemd`, `clone_children`, ...) are
/// not controllers, so a named hierarchy is never mistaken for one.
pub const V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// How the host mounts cgroups. The three shapes need different writes, so
/// the manager is built from one of these rather than probing paths ad hoc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Only v1 hierarchies: controller name -> mount point (controllers
    /// co-mounted, like `cpu,cpuacct`, map to the same mount point).
    V1 { mounts: BTreeMap<String, PathBuf> },
    /// Only the unified hierarchy; `controllers` is its root's
    /// `cgroup.controllers`.
    V2 { root: PathBuf, controllers: Vec<String> },
    /// Both: a controller bound to v1 is used there; one available only on
    /// the unified hierarchy (hugetlb on this project's test machine) is
    /// used through cgroup2, and processes join both.
    Hybrid {
        v1: BTreeMap<String, PathBuf>,
        v2_root: PathBuf,
        v2_controllers: Vec<String>,
    },
}

impl Layout {
    /// Reads the running system's layout. Errors when no cgroup filesystem is
    /// mounted at all, since nothing could then be limited.
    pub fn detect() -> Result<Layout> {
        let path = Path::new("/proc/self/mountinfo");
        let text = fs::read_to_string(path).map_err(|source| Error::Io {
            op: "reading",
            path: path.to_path_buf(),
            source,
        })?;
        let layout = Self::from_mountinfo(&text, |mount| fs::read_to_string(mount.join("cgroup.controllers")).ok());
        if layout.is_empty() {
            return Err(Error::NoCgroups);
        }
        Ok(layout)
    }

    /// Builds the layout from mountinfo text. `read_controllers` is given a
    /// cgroup2 mount point and returns its `cgroup.controllers` text; it is a
    /// parameter so tests need no real cgroup2 mount. When a hierarchy is
    /// mounted several times (bind mounts), a mount of its root (`/`) wins,
    /// then the first one listed.
    pub fn from_mountinfo(text: &str, read_controllers: impl Fn(&Path) -> Option<String>) -> Layout {
        let mut v1: BTreeMap<String, (PathBuf, bool)> = BTreeMap::new();
        let mut v2: Option<(PathBuf, bool)> = None;
        for line in text.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(sep) = fields.iter().position(|f| *f == "-") else {
                continue;
            };
            if sep < 5 || fields.len() < sep + 4 {
                continue;
            }
            let at_root = crate::rootfs::unescape(fields[3]) == "/";
            let mount = PathBuf::from(crate::rootfs::unescape(fields[4]));
            match fields[sep + 1] {
                "cgroup" => {
                    for opt in fields[sep + 3].split(',') {
                        if !V1_CONTROLLERS.contains(&opt) {
                            continue;
                        }
                        let replace = match v1.get(opt) {
                            None => true,
                            Some((_, old_root)) => !old_root && at_root,
                        };
                        if replace {
                            v1.insert(opt.to_string(), (mount.clone(), at_root));
                        }
                    }
                }
                "cgroup2" => {
                    let replace = match &v2 {
                        None => true,
                        Some((_, old_root)) => !old_root && at_root,
                    };
                    if replace {
                        v2 = Some((mount, at_root));
                    }
                }
                _ => {}
            }
        }
        let v1: BTreeMap<String, PathBuf> = v1.into_iter().map(|(k, (p, _))| (k, p)).collect();
        match v2 {
            Some((root, _)) => {
                let controllers: Vec<String> = read_controllers(&root)
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
                if v1.is_empty() {
                    Layout::V2 { root, controllers }
                } else {
                    Layout::Hybrid {
                        v1,
                        v2_root: root,
                        v2_controllers: controllers,
                    }
                }
            }
            None => Layout::V1 { mounts: v1 },
        }
    }

    /// True when no hierarchy at all was found.
    pub fn is_empty(&self) -> bool {
        matches!(self, Layout::V1 { mounts } if mounts.is_empty())
    }

    /// The v1 controller mounts (empty on a pure v2 host).
    pub fn v1_mounts(&self) -> BTreeMap<String, PathBuf> {
        match self {
            Layout::V1 { mounts } => mounts.clone(),
            Layout::V2 { .. } => BTreeMap::new(),
            Layout::Hybrid { v1, .. } => v1.clone(),
        }
    }

    /// The unified hierarchy's mount point and controllers, if mounted.
    pub fn unified(&self) -> Option<(&Path, &[String])> {
        match self {
            Layout::V1 { .. } => None,
            Layout::V2 { root, controllers } => Some((root, controllers)),
            Layout::Hybrid {
                v2_root,
                v2_controllers,
                ..
            } => Some((v2_root, v2_controllers)),
        }
    }

    /// A one-line description for error messages, so a "controller missing"
    /// error shows what the host does have.
    pub fn summary(&self) -> String {
        let v1: Vec<String> = self.v1_mounts().into_keys().collect();
        match (self.unified(), v1.is_empty()) {
            (None, _) => format!("cgroup v1 controllers: {}", list_or_none(&v1)),
            (Some((_, c)), true) => format!("cgroup v2 controllers: {}", list_or_none(c)),
            (Some((_, c)), false) => format!(
                "hybrid: v1 controllers: {}; unified controllers: {}",
                list_or_none(&v1),
                list_or_none(c)
            ),
        }
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

/// A process's cgroup membership as `/proc/<pid>/cgroup` lists it: needed to
/// resolve a relative `cgroupsPath` against the runtime's own cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcCgroup {
    /// v1 controller (or `name=...` hierarchy) -> path inside that hierarchy.
    pub v1: BTreeMap<String, String>,
    /// The `0::<path>` line: the path inside the unified hierarchy.
    pub unified: Option<String>,
}

impl ProcCgroup {
    /// Parses `/proc/<pid>/cgroup` text: `id:controller[,controller]:path`.
    pub fn parse(text: &str) -> ProcCgroup {
        let mut out = ProcCgroup::default();
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if id == "0" && ctrls.is_empty() {
                out.unified = Some(path.to_string());
                continue;
            }
            for c in ctrls.split(',').filter(|c| !c.is_empty()) {
                out.v1.insert(c.to_string(), path.to_string());
            }
        }
        out
    }

    /// The calling process's membership.
    pub fn read_self() -> Result<ProcCgroup> {
        Self::read_path(Path::new("/proc/self/cgroup"))
    }

    /// Another process's membership (tests use it to check a join).
    pub fn read_pid(pid: i32) -> Result<ProcCgroup> {
        Self::read_path(&PathBuf::from(format!("/proc/{pid}/cgroup")))
    }

    fn read_path(path: &Path) -> Result<ProcCgroup> {
        fs::read_to_string(path)
            .map(|t| Self::parse(&t))
            .map_err(|source| Error::Io {
                op: "reading",
                path: path.to_path_buf(),
                source,
            })
    }

    /// The path in the v1 hierarchy that carries any of `controllers`.
    pub fn v1_path(&self, controllers: &[String]) -> Option<&str> {
        controllers.iter().find_map(|c| self.v1.get(c)).map(String::as_str)
    }
}
