//! The container's control groups on cgroup v1, v2 and hybrid hosts
//! (config-linux.md, "Control groups" through "Unified").
//!
//! Everything is parameterised by mount points taken from a [`Layout`], so
//! the same code runs against `/sys/fs/cgroup` and against a fake tree in a
//! temporary directory (the unit tests create the files the kernel would).
//!
//! The flow is: [`Manager::new`] resolves `linux.cgroupsPath` into one
//! directory per hierarchy; [`Manager::create`] makes them; [`Manager::apply`]
//! validates the whole `linux.resources` object into a list of
//! [`PlannedWrite`]s first and only then writes, so an invalid value never
//! leaves a half-configured cgroup; [`Manager::destroy`] removes only what was
//! made.
//!
//! Decisions worth knowing:
//! - Hybrid: a controller bound to v1 is always used on v1; a controller only
//!   on the unified hierarchy is used there; processes join every hierarchy.
//! - v2 devices: the kernel has no devices files, only eBPF programs, which
//!   this module does not load: [`Manager::apply`] returns
//!   [`Error::DevicesNeedBpf`] before writing anything, and
//!   [`Manager::apply_except_devices`] plus [`device_rules`] let a caller that
//!   handles devices itself go on.
//! - Fields with no v2 equivalent that the spec marks as v1 tuning
//!   (`memory.kernel`, `kernelTCP`, `swappiness`, `disableOOMKiller`,
//!   `useHierarchy`) are ignored on v2; fields whose loss would silently
//!   weaken isolation or that cannot be converted (`cpu.realtime*`,
//!   `blockIO.leafWeight`, `network`, unified keys on v1) are errors.

pub mod devices_bpf;
mod layout;
mod plan;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

pub use layout::{Layout, ProcCgroup, V1_CONTROLLERS};
pub use plan::{device_rules, shares_to_weight, DeviceRule, PlannedWrite};

/// How long `destroy` retries `EBUSY` on the container's own directory: the
/// kernel keeps a cgroup busy until killed tasks have been reaped.
const DESTROY_RETRY: Duration = Duration::from_secs(2);
/// How long freezing or thawing may take before it is reported as stuck.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("linux.cgroupsPath: invalid value {value:?}: {reason}")]
    InvalidPath { value: String, reason: String },
    #[error("{field}: invalid value {value}: {reason}")]
    Invalid {
        field: String,
        value: String,
        reason: String,
    },
    #[error("{field}: {value}: not supported: {reason}")]
    Unsupported {
        field: String,
        value: String,
        reason: String,
    },
    #[error("{field}: the {controller} controller is not available ({detail})")]
    Unavailable {
        field: String,
        controller: String,
        detail: String,
    },
    #[error("{field}: cannot write {value}: {} does not exist ({hint})", path.display())]
    Missing {
        field: String,
        value: String,
        path: PathBuf,
        hint: String,
    },
    #[error("{field}: writing {value} to {}: {}", path.display(), errno(source))]
    Write {
        field: String,
        value: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("adding pid {pid} to {}: {}{}", path.display(), errno(source), join_hint(source))]
    Join {
        pid: i32,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{op} {}: {}", path.display(), errno(source))]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "linux.resources.devices: {count} rule(s) given, but cgroup v2 enforces device rules only through an ebpf \
         program (BPF_CGROUP_DEVICE), and the container has no unified cgroup to attach one to"
    )]
    DevicesNeedBpf { count: usize },
    #[error("no cgroup filesystem is mounted (per /proc/self/mountinfo)")]
    NoCgroups,
    #[error("{}: still not {want} after {} ms", path.display(), waited.as_millis())]
    Timeout {
        path: PathBuf,
        want: &'static str,
        waited: Duration,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// `EBUSY (device or resource busy)`: the errno's name is what people search
/// for, the text is what they read.
fn errno(e: &io::Error) -> String {
    let Some(code) = e.raw_os_error() else {
        return e.to_string();
    };
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or("").to_lowercase();
    match errno_name(code) {
        Some(name) => format!("{name} ({text})"),
        None => format!("errno {code} ({text})"),
    }
}

fn errno_name(code: i32) -> Option<&'static str> {
    Some(match code {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::ERANGE => "ERANGE",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        524 => "ENOTSUPP",
        _ => return None,
    })
}

/// The two join failures that puzzle people most get a pointer to the cause.
fn join_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENOSPC) => "; an empty cpuset.cpus or cpuset.mems admits no task",
        Some(libc::EBUSY) => "; cgroup v2 admits no process into a cgroup whose subtree_control enables controllers",
        _ => "",
    }
}

/// One mounted hierarchy the container uses, with the container's directory
/// resolved in it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hierarchy {
    v2: bool,
    mount: PathBuf,
    /// On v1 the controllers bound to this mount; on v2 the controllers this
    /// manager uses through it (on a hybrid host only those absent from v1).
    controllers: Vec<String>,
    /// The container's path inside the hierarchy, starting with `/`.
    rel: String,
    dir: PathBuf,
}

/// The container's cgroups: one directory per hierarchy, all for the same
/// `cgroupsPath`.
#[derive(Debug)]
pub struct Manager {
    layout: Layout,
    path: String,
    hierarchies: Vec<Hierarchy>,
    /// Directories `create` made, parents first. `None` until `create` runs:
    /// a manager rebuilt by a later `delete` only knows the leaves.
    created: Mutex<Option<Vec<PathBuf>>>,
}

/// Which freezer a cgroup has: v1's controller or v2's core `cgroup.freeze`.
enum Freezer {
    V1(PathBuf),
    V2(PathBuf),
}

impl Manager {
    /// Resolves `linux.cgroupsPath` (config-linux.md): an absolute path is
    /// taken relative to each hierarchy's root; a relative one relative to the
    /// runtime's own cgroup in that hierarchy (`own_cgroup`, normally
    /// [`ProcCgroup::read_self`]), which may differ per v1 hierarchy; no value
    /// means `/<container_id>`. Values with `..`, the hierarchy root itself,
    /// an empty value and systemd's `slice:prefix:name` (no systemd driver
    /// here) are errors naming `linux.cgroupsPath` and the value, because
    /// each would make the runtime write or delete outside its own subtree.
    pub fn new(
        layout: Layout,
        cgroups_path: Option<&str>,
        container_id: &str,
        own_cgroup: &ProcCgroup,
    ) -> Result<Manager> {
        let invalid = |value: &str, reason: &str| Error::InvalidPath {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let (absolute, parts) = match cgroups_path {
            Some(value) => {
                if value.is_empty() {
                    return Err(invalid(value, "empty; omit the field for the runtime's default"));
                }
                if value.contains('\0') {
                    return Err(invalid(value, "contains a nul byte"));
                }
                if is_systemd_style(value) {
                    return Err(invalid(
                        value,
                        "looks like systemd's slice:prefix:name, which needs the systemd cgroup driver (not available)",
                    ));
                }
                let parts: Vec<&str> = value.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
                if parts.contains(&"..") {
                    return Err(invalid(value, "contains \"..\", which could escape the hierarchy"));
                }
                if parts.is_empty() {
                    let what = if value.starts_with('/') {
                        "names the hierarchy root, which cannot be a container's cgroup"
                    } else {
                        "names the runtime's own cgroup, which cannot be a container's cgroup"
                    };
                    return Err(invalid(value, what));
                }
                (
                    value.starts_with('/'),
                    parts.into_iter().map(str::to_string).collect::<Vec<_>>(),
                )
            }
            None => {
                if container_id.is_empty() || container_id == "." || container_id == ".." || container_id.contains('/')
                {
                    return Err(invalid(
                        &format!("/{container_id}"),
                        "default path from the container id, which is empty or not a single path component",
                    ));
                }
                (true, vec![container_id.to_string()])
            }
        };
        let suffix = parts.join("/");
        let display_value = cgroups_path.map(str::to_string).unwrap_or_else(|| format!("/{suffix}"));
        let resolve = |base: Option<&str>, what: &str| -> Result<String> {
            if absolute {
                return Ok(format!("/{suffix}"));
            }
            let base = base.ok_or_else(|| {
                invalid(
                    &display_value,
                    &format!("relative, but the runtime's own cgroup in the {what} hierarchy is unknown"),
                )
            })?;
            let base = base.trim_end_matches('/');
            Ok(format!("{base}/{suffix}"))
        };

        let mut hierarchies = Vec::new();
        // Group co-mounted v1 controllers (cpu,cpuacct) into one hierarchy.
        let mut by_mount: Vec<(PathBuf, Vec<String>)> = Vec::new();
        for (ctrl, mount) in layout.v1_mounts() {
            match by_mount.iter_mut().find(|(m, _)| *m == mount) {
                Some((_, c)) => c.push(ctrl),
                None => by_mount.push((mount, vec![ctrl])),
            }
        }
        for (mount, controllers) in by_mount {
            let rel = resolve(own_cgroup.v1_path(&controllers), &controllers.join(","))?;
            hierarchies.push(Hierarchy {
                v2: false,
                dir: join_rel(&mount, &rel),
                mount,
                controllers,
                rel,
            });
        }
        if let Some((root, controllers)) = layout.unified() {
            let v1 = layout.v1_mounts();
            let controllers: Vec<String> = controllers.iter().filter(|c| !v1.contains_key(*c)).cloned().collect();
            let rel = resolve(own_cgroup.unified.as_deref(), "unified")?;
            hierarchies.push(Hierarchy {
                v2: true,
                dir: join_rel(root, &rel),
                mount: root.to_path_buf(),
                controllers,
                rel,
            });
        }
        if hierarchies.is_empty() {
            return Err(Error::NoCgroups);
        }
        // The path reported for the container: the unified one on v2, the
        // memory hierarchy's on v1 (the one people look at), else the first.
        let primary = hierarchies
            .iter()
            .find(|h| h.v2 && !matches!(layout, Layout::Hybrid { .. }))
            .or_else(|| hierarchies.iter().find(|h| h.controllers.iter().any(|c| c == "memory")))
            .unwrap_or(&hierarchies[0]);
        Ok(Manager {
            path: primary.rel.clone(),
            layout,
            hierarchies,
            created: Mutex::new(None),
        })
    }

    /// The resolved cgroup path (in the unified hierarchy on v2, in the
    /// memory hierarchy on v1 and hybrid hosts).
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The container's directory in every hierarchy it uses: what state
    /// files record and leak checks look for.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.hierarchies.iter().map(|h| h.dir.clone()).collect()
    }

    /// Directories `create` made (parents first), for a caller that persists
    /// them so a later process's `destroy` removes exactly those.
    pub fn created(&self) -> Option<Vec<PathBuf>> {
        self.created.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Restores what [`Manager::created`] returned in an earlier process.
    pub fn set_created(&self, dirs: Vec<PathBuf>) {
        *self.created.lock().unwrap_or_else(|e| e.into_inner()) = Some(dirs);
    }

    /// Creates the container's directory in every hierarchy (existing ones
    /// are reused: the spec says cgroups are created if they do not exist).
    /// On v2 each ancestor's `cgroup.subtree_control` gets the controllers we
    /// use, since a controller's files appear only where the parent enables
    /// it. On v1 a new cpuset cgroup starts with empty `cpuset.cpus`/`mems`,
    /// which admit no task, so they are copied from the parent.
    pub fn create(&self) -> Result<()> {
        let mut made = Vec::new();
        let result = self.create_into(&mut made);
        let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        created.get_or_insert_with(Vec::new).extend(made);
        result
    }

    fn create_into(&self, made: &mut Vec<PathBuf>) -> Result<()> {
        for h in &self.hierarchies {
            let mut dir = h.mount.clone();
            for comp in h.rel.split('/').filter(|c| !c.is_empty()) {
                let parent = dir.clone();
                if h.v2 {
                    enable_controllers(&parent, &h.controllers);
                }
                dir.push(comp);
                match fs::create_dir(&dir) {
                    Ok(()) => made.push(dir.clone()),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(source) => {
                        return Err(Error::Io {
                            op: "creating",
                            path: dir,
                            source,
                        })
                    }
                }
                if !h.v2 && h.controllers.iter().any(|c| c == "cpuset") {
                    copy_cpuset(&parent, &dir)?;
                }
            }
        }
        Ok(())
    }

    /// Validates `r` completely, then writes it. Nothing is written when any
    /// value is invalid or needs a controller or file the host lacks, so a
    /// failed `apply` leaves the previous configuration in place. Errors name
    /// the spec field and the value.
    ///
    /// On cgroup v2 the device rules become an eBPF program attached to the
    /// container's unified cgroup ([`devices_bpf`]), after the other writes.
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        match self.plan(r) {
            Err(Error::DevicesNeedBpf { .. }) => {
                self.apply_except_devices(r)?;
                let rules = device_rules(r.devices().as_deref().unwrap_or_default())?;
                let dir = self
                    .hierarchies
                    .iter()
                    .find(|h| h.v2)
                    .map(|h| h.dir.clone())
                    .ok_or(Error::DevicesNeedBpf { count: rules.len() })?;
                devices_bpf::attach(&dir, &rules).map_err(|source| Error::Write {
                    field: "linux.resources.devices".into(),
                    value: format!("{} rule(s) as a BPF_CGROUP_DEVICE program", rules.len()),
                    path: dir,
                    source,
                })
            }
            writes => self.execute(&writes?),
        }
    }

    /// Like [`Manager::apply`], but on cgroup v2 the device rules are only
    /// validated (see [`device_rules`]) instead of failing with
    /// [`Error::DevicesNeedBpf`]: for a caller that enforces them itself or
    /// accepts running without device confinement.
    pub fn apply_except_devices(&self, r: &LinuxResources) -> Result<()> {
        let writes = plan::Planner::new(self, true).plan(r)?;
        self.execute(&writes)
    }

    /// The writes `apply` would do, in order, after validation; reads current
    /// values where the order depends on them (v1 memory+swap). Public so a
    /// caller can show a dry run.
    pub fn plan(&self, r: &LinuxResources) -> Result<Vec<PlannedWrite>> {
        plan::Planner::new(self, false).plan(r)
    }

    fn execute(&self, writes: &[PlannedWrite]) -> Result<()> {
        for w in writes {
            if let Err(source) = write_file(&w.path, &w.value) {
                let code = source.raw_os_error();
                if w.best_effort && matches!(code, Some(libc::EOPNOTSUPP | 524 | libc::EINVAL)) {
                    continue;
                }
                return Err(Error::Write {
                    field: w.field.clone(),
                    value: w.value.clone(),
                    path: w.path.clone(),
                    source,
                });
            }
        }
        Ok(())
    }

    /// Moves `pid` into the container's cgroup in every hierarchy (on a
    /// hybrid host both the v1 ones and the unified one, so v2-only
    /// controllers such as hugetlb apply too).
    pub fn add_process(&self, pid: i32) -> Result<()> {
        for h in &self.hierarchies {
            let path = h.dir.join("cgroup.procs");
            write_file(&path, &pid.to_string()).map_err(|source| Error::Join { pid, path, source })?;
        }
        Ok(())
    }

    /// Every process in the container's cgroups (the union over
    /// hierarchies, sorted). A hierarchy whose directory is gone counts as
    /// empty, so this works while tearing down.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut pids = BTreeSet::new();
        for h in &self.hierarchies {
            let path = h.dir.join("cgroup.procs");
            match fs::read_to_string(&path) {
                Ok(text) => pids.extend(text.split_whitespace().filter_map(|p| p.parse::<i32>().ok())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(Error::Io {
                        op: "reading",
                        path,
                        source,
                    })
                }
            }
        }
        Ok(pids.into_iter().collect())
    }

    fn freezer(&self) -> Result<Freezer> {
        if let Some(h) = self.hierarchy_for("freezer") {
            if !h.v2 {
                return Ok(Freezer::V1(h.dir.clone()));
            }
        }
        if let Some(u) = self.unified() {
            if u.dir.join("cgroup.freeze").exists() || !matches!(self.layout, Layout::Hybrid { .. }) {
                return Ok(Freezer::V2(u.dir.clone()));
            }
        }
        Err(Error::Unavailable {
            field: "pause".to_string(),
            controller: "freezer".to_string(),
            detail: self.layout.summary(),
        })
    }

    /// Freezes every task (runtime `pause`): v1 `freezer.state` = FROZEN, v2
    /// `cgroup.freeze` = 1, then waits until the kernel reports the state,
    /// because freezing is asynchronous and `pause` must not return early.
    /// On timeout the cgroup is thawed again rather than left half frozen.
    pub fn freeze(&self) -> Result<()> {
        let result = self.set_frozen(true);
        if result.is_err() {
            let _ = self.set_frozen(false);
        }
        result
    }

    /// Thaws the cgroup (runtime `resume`), waiting for the kernel to agree.
    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    /// Whether the cgroup is frozen or freezing: the spec lets a runtime
    /// refuse to operate on a frozen cgroup.
    pub fn is_frozen(&self) -> Result<bool> {
        let (path, frozen) = match self.freezer()? {
            Freezer::V1(dir) => (dir.join("freezer.state"), vec!["FROZEN", "FREEZING"]),
            Freezer::V2(dir) => (dir.join("cgroup.freeze"), vec!["1"]),
        };
        let text = fs::read_to_string(&path).map_err(|source| Error::Io {
            op: "reading",
            path,
            source,
        })?;
        Ok(frozen.contains(&text.trim()))
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let want = if frozen { "frozen" } else { "thawed" };
        let freezer = self.freezer()?;
        let v1 = matches!(freezer, Freezer::V1(_));
        let (path, value, poll, expect): (PathBuf, &str, PathBuf, String) = match freezer {
            Freezer::V1(dir) => {
                let value = if frozen { "FROZEN" } else { "THAWED" };
                let state = dir.join("freezer.state");
                (state.clone(), value, state, value.to_string())
            }
            Freezer::V2(dir) => (
                dir.join("cgroup.freeze"),
                if frozen { "1" } else { "0" },
                dir.join("cgroup.events"),
                format!("frozen {}", u8::from(frozen)),
            ),
        };
        let field = if frozen { "pause" } else { "resume" };
        let write = || {
            write_file(&path, value).map_err(|source| Error::Write {
                field: field.to_string(),
                value: value.to_string(),
                path: path.clone(),
                source,
            })
        };
        write()?;
        let start = Instant::now();
        let mut delay = Duration::from_millis(1);
        loop {
            let text = match fs::read_to_string(&poll) {
                Ok(t) => t,
                // No cgroup.events (old kernel or a fake tree): trust the write.
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(source) => {
                    return Err(Error::Io {
                        op: "reading",
                        path: poll,
                        source,
                    })
                }
            };
            if text.lines().any(|l| l.trim() == expect) {
                return Ok(());
            }
            if start.elapsed() > FREEZE_TIMEOUT {
                return Err(Error::Timeout {
                    path: poll,
                    want,
                    waited: start.elapsed(),
                });
            }
            sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(50));
            // v1 may stay FREEZING while a task is in an uninterruptible
            // sleep; writing FROZEN again retries the tasks it missed.
            if v1 {
                write()?;
            }
        }
    }

    /// Sends `sig` to every process in the container. For SIGKILL, v2's
    /// `cgroup.kill` is used when present (it cannot miss a forking task);
    /// otherwise the cgroup is frozen while signalling, so no task can fork
    /// a child that escapes the listing, then thawed so the killed tasks can
    /// die. Processes that exit meanwhile (ESRCH) are not errors.
    pub fn kill_all(&self, sig: i32) -> Result<()> {
        if sig == libc::SIGKILL {
            if let Some(u) = self.unified() {
                let kill = u.dir.join("cgroup.kill");
                if kill.exists() {
                    write_file(&kill, "1").map_err(|source| Error::Write {
                        field: "kill".to_string(),
                        value: "1".to_string(),
                        path: kill,
                        source,
                    })?;
                }
            }
        }
        // `freeze` thaws again itself when it fails half way.
        let freeze = sig == libc::SIGKILL && self.freezer().is_ok() && self.freeze().is_ok();
        let result = self.signal_each(sig);
        if freeze {
            self.set_frozen(false)?;
        }
        result
    }

    fn signal_each(&self, sig: i32) -> Result<()> {
        for pid in self.pids()? {
            if pid <= 0 {
                continue;
            }
            // SAFETY: kill(2) takes plain integers and touches no memory of
            // ours; pid > 0 so it targets exactly one process.
            let rc = unsafe { libc::kill(pid, sig) };
            if rc != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::ESRCH) {
                    return Err(Error::Io {
                        op: "signalling a process of",
                        path: self.hierarchies[0].dir.clone(),
                        source: e,
                    });
                }
            }
        }
        Ok(())
    }

    /// Removes the container's cgroups, deepest first: any sub-cgroups the
    /// container made inside its own, then its own directory (retrying
    /// `EBUSY` for a short while as killed tasks are reaped), then the
    /// ancestors `create` made, unless something else now lives in them.
    /// Pre-existing ancestors are never touched. A manager on which `create`
    /// was not called (a later `delete`) removes only the leaves, unless
    /// [`Manager::set_created`] told it more.
    pub fn destroy(&self) -> Result<()> {
        let leaves = self.paths();
        // One budget for the whole call: a cgroup that stays busy (tasks not
        // killed) fails after DESTROY_RETRY, not DESTROY_RETRY per hierarchy.
        let deadline = Instant::now() + DESTROY_RETRY;
        let mut targets = self.created().unwrap_or_else(|| leaves.clone());
        targets.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        let mut first_err = None;
        for dir in &targets {
            let is_leaf = leaves.contains(dir);
            let res = if is_leaf {
                remove_tree(dir, deadline)
            } else {
                match rmdir_once(dir) {
                    // An ancestor still used by another container stays.
                    Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) => Ok(()),
                    other => other,
                }
            };
            if let Err(source) = res {
                first_err.get_or_insert(Error::Io {
                    op: "removing",
                    path: dir.clone(),
                    source,
                });
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => {
                *self.created.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
                Ok(())
            }
        }
    }

    /// The hierarchy serving `controller`: v1 first (a hybrid host uses v1
    /// for a controller both could serve), then the unified one.
    fn hierarchy_for(&self, controller: &str) -> Option<&Hierarchy> {
        let has = |h: &&Hierarchy| h.controllers.iter().any(|c| c == controller);
        self.hierarchies
            .iter()
            .filter(|h| !h.v2)
            .find(has)
            .or_else(|| self.hierarchies.iter().filter(|h| h.v2).find(has))
    }

    fn unified(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.v2)
    }
}

/// `a:b:c` without slashes is systemd's `slice:prefix:name` notation.
fn is_systemd_style(value: &str) -> bool {
    !value.contains('/') && value.split(':').count() == 3 && value.rsplit(':').next().is_some_and(|s| !s.is_empty())
}

fn join_rel(mount: &Path, rel: &str) -> PathBuf {
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        mount.to_path_buf()
    } else {
        mount.join(rel)
    }
}

/// One `write(2)` of the whole value, without creating the file: cgroup
/// files take one value per write, and a missing file means a missing
/// controller, which must not be papered over by creating a regular file.
fn write_file(path: &Path, value: &str) -> io::Result<()> {
    let mut f = fs::OpenOptions::new().write(true).truncate(true).open(path)?;
    let n = f.write(value.as_bytes())?;
    if n != value.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short write"));
    }
    Ok(())
}

/// On v2, enables `want` in `parent/cgroup.subtree_control` where the parent
/// offers them. Failures are tolerated (a parent with processes in it cannot
/// enable domain controllers): `apply` then reports the missing file with the
/// field that needed it, which says more than a failure here would.
fn enable_controllers(parent: &Path, want: &[String]) {
    let Ok(avail) = fs::read_to_string(parent.join("cgroup.controllers")) else {
        return;
    };
    let enabled = fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
    let avail: Vec<&str> = avail.split_whitespace().collect();
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    let todo: Vec<String> = want
        .iter()
        .filter(|c| avail.contains(&c.as_str()) && !enabled.contains(&c.as_str()))
        .map(|c| format!("+{c}"))
        .collect();
    if todo.is_empty() {
        return;
    }
    let path = parent.join("cgroup.subtree_control");
    if write_file(&path, &todo.join(" ")).is_err() {
        for t in &todo {
            let _ = write_file(&path, t);
        }
    }
}

/// Fills an empty `cpuset.cpus`/`cpuset.mems` from the parent (v1 only).
fn copy_cpuset(parent: &Path, dir: &Path) -> Result<()> {
    for name in ["cpuset.cpus", "cpuset.mems"] {
        let path = dir.join(name);
        let current = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(Error::Io {
                    op: "reading",
                    path,
                    source,
                })
            }
        };
        if !current.trim().is_empty() {
            continue;
        }
        let from = parent.join(name);
        let value = fs::read_to_string(&from).map_err(|source| Error::Io {
            op: "reading",
            path: from,
            source,
        })?;
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        write_file(&path, value).map_err(|source| Error::Write {
            field: format!("{name} (copied from the parent cgroup)"),
            value: value.to_string(),
            path,
            source,
        })?;
    }
    Ok(())
}

/// Removes `dir` after its sub-directories (deepest first), retrying EBUSY.
fn remove_tree(dir: &Path, deadline: Instant) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_tree(&entry.path(), deadline)?;
        }
    }
    let mut delay = Duration::from_millis(5);
    loop {
        match rmdir_once(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// rmdir(2) that treats a missing directory as removed. On cgroupfs the
/// control files vanish with the directory; on any other filesystem (a test
/// fake) the regular files are removed first, which cgroupfs never needs and
/// never gets: it answers EBUSY, not ENOTEMPTY.
fn rmdir_once(dir: &Path) -> io::Result<()> {
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) && !is_cgroupfs(dir) => {
            for entry in fs::read_dir(dir)? {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    fs::remove_file(entry.path())?;
                }
            }
            fs::remove_dir(dir)
        }
        Err(e) => Err(e),
    }
}

fn is_cgroupfs(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: all-zero bytes are a valid `statfs` (plain integers).
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid nul-terminated string and `st` a writable
    // statfs that outlives the call.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    #[allow(clippy::unnecessary_cast)]
    let magic = st.f_type as i64;
    rc == 0 && (magic == CGROUP_SUPER_MAGIC || magic == CGROUP2_SUPER_MAGIC)
}
