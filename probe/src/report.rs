//! What `probe report` prints: one JSON object on one line, the container as
//! seen from inside. The harness deserialises it with these same types, so
//! the two sides cannot drift apart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the report layout; bump it when a field changes meaning.
pub const REPORT_SCHEMA: u32 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub schema: u32,
    /// `argv` as the process received it.
    pub args: Vec<String>,
    /// The environment, `KEY=VALUE`, in the order of `environ`.
    pub env: Vec<String>,
    pub cwd: String,
    pub pid: i32,
    pub ppid: i32,
    pub ids: Ids,
    /// The process umask, read with `umask(2)` (and restored).
    pub umask: u32,
    pub hostname: String,
    pub domainname: String,
    pub caps: Caps,
    pub no_new_privs: bool,
    /// `Seccomp:` of /proc/self/status: 0 off, 1 strict, 2 filter.
    pub seccomp_mode: u32,
    /// Keyed by the spec's names (`RLIMIT_NOFILE`, ...).
    pub rlimits: BTreeMap<String, Rlimit>,
    pub oom_score_adj: i32,
    /// Namespace type (`cgroup`, `ipc`, `mnt`, `net`, `pid`, `time`, `user`,
    /// `uts`) to the inode of /proc/self/ns/TYPE.
    pub namespaces: BTreeMap<String, u64>,
    /// /proc/self/uid_map and gid_map, as lines of three numbers.
    pub uid_map: Vec<[u64; 3]>,
    pub gid_map: Vec<[u64; 3]>,
    /// /proc/self/mountinfo, parsed.
    pub mounts: Vec<MountInfo>,
    /// Every entry directly under /dev and /dev/pts, and the symlinks there.
    pub devices: Vec<DevNode>,
    /// /proc/self/cgroup, parsed.
    pub cgroups: Vec<CgroupEntry>,
    /// Network interfaces (names from /sys/class/net or /proc/net/dev).
    pub net_interfaces: Vec<String>,
    /// Open file descriptors other than 0, 1, 2 and the one used to list them.
    pub fds: Vec<FdInfo>,
    pub stdio: Stdio,
    /// The paths named on the command line (`probe report PATH...`).
    pub paths: BTreeMap<String, PathInfo>,
    /// Values of /proc/sys/* named on the command line as `sysctl:KEY`, keyed
    /// by the dotted key (`net.ipv4.ip_forward`).
    pub sysctls: BTreeMap<String, String>,
    /// `personality(0xffffffff)`.
    pub personality: u64,
    /// The `sysctl:KEY` items that could not be read, keyed like `sysctls`,
    /// to the errno name (`ENOENT` when the sysctl does not exist).
    #[serde(default)]
    pub sysctl_errors: BTreeMap<String, String>,
    /// Sources of the report that could not be read (`/proc/self/status`,
    /// `/proc/self/mountinfo`, `getcwd`...) to the errno name, so that an
    /// empty or zero field can be told apart from an unreadable one.
    #[serde(default)]
    pub errors: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Ids {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    /// `getgroups(2)`, sorted.
    pub groups: Vec<u32>,
}

/// Capability sets as bit masks, from /proc/self/status.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Caps {
    pub bounding: u64,
    pub effective: u64,
    pub inheritable: u64,
    pub permitted: u64,
    pub ambient: u64,
}

/// `None` is `RLIM_INFINITY`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Rlimit {
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MountInfo {
    pub id: u32,
    pub parent: u32,
    /// `major:minor`.
    pub dev: String,
    pub root: String,
    pub mount_point: String,
    /// Per-mount options (`rw`, `nosuid`, `nodev`, `noexec`, `relatime`...).
    pub options: Vec<String>,
    /// Optional fields (`shared:N`, `master:N`, `propagate_from:N`, `unbindable`).
    pub optional: Vec<String>,
    pub fs_type: String,
    pub source: String,
    pub super_options: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DevNode {
    pub path: String,
    /// `c`, `b`, `p` (fifo), `d`, `l` (symlink), `f` (regular), `s` (socket).
    pub kind: String,
    pub major: u64,
    pub minor: u64,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// For symlinks, what they point to.
    pub target: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CgroupEntry {
    pub hierarchy: u32,
    /// Empty for the v2 hierarchy.
    pub controllers: Vec<String>,
    pub path: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FdInfo {
    pub fd: i32,
    /// readlink of /proc/self/fd/N.
    pub target: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Stdio {
    pub stdin_tty: bool,
    pub stdout_tty: bool,
    pub stderr_tty: bool,
    /// readlink of /proc/self/fd/0..2.
    pub targets: Vec<String>,
    /// Whether fd 0 is the controlling terminal (`tcgetsid` succeeds).
    pub controlling_tty: bool,
}

/// What the probe found at one path.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PathInfo {
    /// `lstat` succeeded.
    pub exists: bool,
    /// Same letters as `DevNode::kind`.
    pub kind: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub major: u64,
    pub minor: u64,
    pub size: u64,
    pub target: Option<String>,
    /// The errno name when `lstat` failed (`ENOENT`, `EACCES`...).
    pub stat_error: Option<String>,
    /// Opening for reading: `None` when it worked, else the errno name.
    pub read_error: Option<String>,
    /// The first 4 KiB read, lossily as UTF-8, for regular files and
    /// character devices that returned data; `None` if not read.
    pub content: Option<String>,
    /// For a directory, the number of entries besides `.` and `..`.
    pub dir_entries: Option<u64>,
    /// A write attempt (open O_WRONLY without truncating for a file, create
    /// and remove a file for a directory): `None` when it worked, else the
    /// errno name (`EROFS`, `EACCES`, `EPERM`...).
    pub write_error: Option<String>,
    /// `statvfs` says the filesystem is read-only (`ST_RDONLY`).
    pub fs_readonly: bool,
}
