//! What the supervisor mediates and what it allows, as data.
//!
//! The seccomp filter sends every syscall of [`mediated_syscalls`] to the
//! supervisor; the supervisor describes each as a [`Request`] (paths already
//! resolved inside the container's root by `resolve`, so a `..` or symlink
//! escape never reaches the policy) and asks [`Policy::decide`]. A policy is
//! an ordered list of rules, the first that matches wins, else the
//! `default_action`. It is JSON, read from the annotations
//! [`ANNOTATION_POLICY`] (inline) or [`ANNOTATION_POLICY_FILE`] (a path), else
//! [`Policy::default`] which runs ordinary workloads.

use std::collections::HashMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Annotation holding the policy as inline JSON.
pub const ANNOTATION_POLICY: &str = "org.ociharness.sandbox.policy";
/// Annotation holding the host path of a JSON policy file.
pub const ANNOTATION_POLICY_FILE: &str = "org.ociharness.sandbox.policy-file";
/// The rule name a [`Decision`] carries when no rule matched.
pub const DEFAULT_RULE: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("annotation {annotation}: invalid policy: {source}")]
    Json {
        annotation: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("annotation {ANNOTATION_POLICY_FILE}: cannot read policy file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("annotation {annotation}: invalid policy: both {ANNOTATION_POLICY} and {ANNOTATION_POLICY_FILE} are set")]
    Both { annotation: &'static str },
    #[error("annotation {annotation}: invalid policy: rules[{index}] ({rule}): {what}")]
    Rule {
        annotation: &'static str,
        index: usize,
        rule: String,
        what: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// The classes of mediated syscalls; rules name classes, not single calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Syscall {
    Open,
    Stat,
    Exec,
    Link,
    Rename,
    Unlink,
    Mkdir,
    Chmod,
    Chown,
    Mount,
    Socket,
    Connect,
    Bind,
    Ptrace,
    ProcessVm,
    Kexec,
    Bpf,
    PerfEvent,
    Keyctl,
    Userfaultfd,
    Unshare,
    Setns,
    Ioctl,
}

impl Syscall {
    /// Whether every call of the class changes the filesystem (open and the
    /// rest depend on their flags, see [`Request::writes`]).
    fn always_writes(self) -> bool {
        matches!(
            self,
            Self::Link | Self::Rename | Self::Unlink | Self::Mkdir | Self::Chmod | Self::Chown | Self::Mount
        )
    }
}

/// One mediated syscall: its name as libc and seccomp spell it, its x86_64
/// number, its class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediatedSyscall {
    pub name: &'static str,
    pub nr: i64,
    pub class: Syscall,
}

macro_rules! mediated {
    ($($class:ident: $($name:ident)+;)+) => {
        &[$($(MediatedSyscall { name: stringify!($name), nr: paste_sys!($name), class: Syscall::$class },)+)+]
    };
}

macro_rules! paste_sys {
    (open) => {
        libc::SYS_open
    };
    (openat) => {
        libc::SYS_openat
    };
    (openat2) => {
        libc::SYS_openat2
    };
    (creat) => {
        libc::SYS_creat
    };
    (stat) => {
        libc::SYS_stat
    };
    (lstat) => {
        libc::SYS_lstat
    };
    (newfstatat) => {
        libc::SYS_newfstatat
    };
    (statx) => {
        libc::SYS_statx
    };
    (access) => {
        libc::SYS_access
    };
    (faccessat) => {
        libc::SYS_faccessat
    };
    (faccessat2) => {
        libc::SYS_faccessat2
    };
    (readlink) => {
        libc::SYS_readlink
    };
    (readlinkat) => {
        libc::SYS_readlinkat
    };
    (execve) => {
        libc::SYS_execve
    };
    (execveat) => {
        libc::SYS_execveat
    };
    (link) => {
        libc::SYS_link
    };
    (linkat) => {
        libc::SYS_linkat
    };
    (symlink) => {
        libc::SYS_symlink
    };
    (symlinkat) => {
        libc::SYS_symlinkat
    };
    (rename) => {
        libc::SYS_rename
    };
    (renameat) => {
        libc::SYS_renameat
    };
    (renameat2) => {
        libc::SYS_renameat2
    };
    (unlink) => {
        libc::SYS_unlink
    };
    (unlinkat) => {
        libc::SYS_unlinkat
    };
    (rmdir) => {
        libc::SYS_rmdir
    };
    (mkdir) => {
        libc::SYS_mkdir
    };
    (mkdirat) => {
        libc::SYS_mkdirat
    };
    (mknod) => {
        libc::SYS_mknod
    };
    (mknodat) => {
        libc::SYS_mknodat
    };
    (chmod) => {
        libc::SYS_chmod
    };
    (fchmodat) => {
        libc::SYS_fchmodat
    };
    (fchmodat2) => {
        libc::SYS_fchmodat2
    };
    (chown) => {
        libc::SYS_chown
    };
    (lchown) => {
        libc::SYS_lchown
    };
    (fchownat) => {
        libc::SYS_fchownat
    };
    (mount) => {
        libc::SYS_mount
    };
    (umount2) => {
        libc::SYS_umount2
    };
    (pivot_root) => {
        libc::SYS_pivot_root
    };
    (move_mount) => {
        libc::SYS_move_mount
    };
    (open_tree) => {
        libc::SYS_open_tree
    };
    (fsopen) => {
        libc::SYS_fsopen
    };
    (fsmount) => {
        libc::SYS_fsmount
    };
    (fsconfig) => {
        libc::SYS_fsconfig
    };
    (fspick) => {
        libc::SYS_fspick
    };
    (mount_setattr) => {
        libc::SYS_mount_setattr
    };
    (socket) => {
        libc::SYS_socket
    };
    (connect) => {
        libc::SYS_connect
    };
    (bind) => {
        libc::SYS_bind
    };
    (ptrace) => {
        libc::SYS_ptrace
    };
    (process_vm_readv) => {
        libc::SYS_process_vm_readv
    };
    (process_vm_writev) => {
        libc::SYS_process_vm_writev
    };
    (kexec_load) => {
        libc::SYS_kexec_load
    };
    (kexec_file_load) => {
        libc::SYS_kexec_file_load
    };
    (bpf) => {
        libc::SYS_bpf
    };
    (perf_event_open) => {
        libc::SYS_perf_event_open
    };
    (keyctl) => {
        libc::SYS_keyctl
    };
    (add_key) => {
        libc::SYS_add_key
    };
    (request_key) => {
        libc::SYS_request_key
    };
    (userfaultfd) => {
        libc::SYS_userfaultfd
    };
    (unshare) => {
        libc::SYS_unshare
    };
    (setns) => {
        libc::SYS_setns
    };
    (ioctl) => {
        libc::SYS_ioctl
    };
}

/// Every mediated syscall (x86_64). The fd-only variants (`fchmod`, `fchown`)
/// are not mediated: their fd was opened through a mediated open already.
pub const MEDIATED: &[MediatedSyscall] = mediated! {
    Open: open openat openat2 creat;
    Stat: stat lstat newfstatat statx access faccessat faccessat2 readlink readlinkat;
    Exec: execve execveat;
    Link: link linkat symlink symlinkat;
    Rename: rename renameat renameat2;
    Unlink: unlink unlinkat rmdir;
    Mkdir: mkdir mkdirat mknod mknodat;
    Chmod: chmod fchmodat fchmodat2;
    Chown: chown lchown fchownat;
    Mount: mount umount2 pivot_root move_mount open_tree fsopen fsmount fsconfig fspick mount_setattr;
    Socket: socket;
    Connect: connect;
    Bind: bind;
    Ptrace: ptrace;
    ProcessVm: process_vm_readv process_vm_writev;
    Kexec: kexec_load kexec_file_load;
    Bpf: bpf;
    PerfEvent: perf_event_open;
    Keyctl: keyctl add_key request_key;
    Userfaultfd: userfaultfd;
    Unshare: unshare;
    Setns: setns;
    Ioctl: ioctl;
};

/// The names of the mediated syscalls, as the seccomp filter names them.
pub fn mediated_syscalls() -> Vec<&'static str> {
    MEDIATED.iter().map(|s| s.name).collect()
}

/// The x86_64 number of a mediated syscall.
pub fn syscall_nr(name: &str) -> Option<i64> {
    MEDIATED.iter().find(|s| s.name == name).map(|s| s.nr)
}

/// The name of a mediated syscall from its x86_64 number (what a seccomp
/// notification carries).
pub fn syscall_name(nr: i64) -> Option<&'static str> {
    MEDIATED.iter().find(|s| s.nr == nr).map(|s| s.name)
}

/// The class of a mediated syscall.
pub fn class_of(name: &str) -> Option<Syscall> {
    MEDIATED.iter().find(|s| s.name == name).map(|s| s.class)
}

/// A constant of the kernel's ABI that JSON may spell by name or by number
/// (`"EPERM"` or `1`); it is written back by name when the name is known.
macro_rules! named_constant {
    ($(#[$doc:meta])* $ty:ident($int:ty), $what:literal, [$($name:ident),+ $(,)?]) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $ty(pub $int);

        impl $ty {
            const NAMES: &'static [(&'static str, $int)] = &[$((stringify!($name), libc::$name as $int)),+];

            pub fn name(self) -> Option<&'static str> {
                Self::NAMES.iter().find(|(_, v)| *v == self.0).map(|(n, _)| *n)
            }

            pub fn from_name(name: &str) -> Option<Self> {
                Self::NAMES.iter().find(|(n, _)| *n == name).map(|(_, v)| Self(*v))
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}", self.0),
                }
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                match self.name() {
                    Some(n) => s.serialize_str(n),
                    None => self.0.serialize(s),
                }
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "{} name (e.g. {}) or number", $what, $ty::NAMES[0].0)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<$ty, E> {
                        $ty::from_name(v).ok_or_else(|| E::custom(format!("unknown {} {v:?}", $what)))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<$ty, E> {
                        <$int>::try_from(v)
                            .map($ty)
                            .map_err(|_| E::custom(format!("{} {v} out of range", $what)))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<$ty, E> {
                        <$int>::try_from(v)
                            .map($ty)
                            .map_err(|_| E::custom(format!("{} {v} out of range", $what)))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

named_constant!(
    /// An errno value the supervisor answers with.
    Errno(i32), "errno",
    [EPERM, ENOENT, EACCES, EEXIST, EINVAL, ENOSYS, EROFS, EAFNOSUPPORT, EPROTONOSUPPORT, ESOCKTNOSUPPORT,
     EOPNOTSUPP, ELOOP, EXDEV, EBUSY, ENODEV, ENXIO, ENAMETOOLONG, ENOTDIR, EISDIR, ENOMEM]
);

named_constant!(
    /// A socket address family (`socket(2)`'s domain).
    SocketDomain(i32), "socket domain",
    [AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, AF_VSOCK, AF_ALG, AF_BLUETOOTH, AF_CAN, AF_XDP, AF_KEY,
     AF_APPLETALK, AF_X25, AF_AX25, AF_TIPC, AF_RDS]
);

named_constant!(
    /// A socket type, without `SOCK_NONBLOCK`/`SOCK_CLOEXEC`.
    SocketType(i32), "socket type",
    [SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_RAW, SOCK_RDM]
);

/// The bits of `socket(2)`'s type argument that carry the type (the rest
/// are `SOCK_NONBLOCK` and `SOCK_CLOEXEC`).
const SOCK_TYPE_MASK: i32 = 0xf;
/// The obsolete `SOCK_PACKET` type (`AF_INET` packet capture); libc deprecates the name.
const SOCK_PACKET: i32 = 10;

/// A namespace type, matched against `unshare` flags and `setns`'s nstype.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Namespace {
    User,
    Mnt,
    Net,
    Pid,
    Ipc,
    Uts,
    Cgroup,
    Time,
}

impl Namespace {
    pub fn flag(self) -> u64 {
        (match self {
            Self::User => libc::CLONE_NEWUSER,
            Self::Mnt => libc::CLONE_NEWNS,
            Self::Net => libc::CLONE_NEWNET,
            Self::Pid => libc::CLONE_NEWPID,
            Self::Ipc => libc::CLONE_NEWIPC,
            Self::Uts => libc::CLONE_NEWUTS,
            Self::Cgroup => libc::CLONE_NEWCGROUP,
            Self::Time => libc::CLONE_NEWTIME,
        }) as u64
    }
}

/// The type of an existing target file (`S_IFMT` of its mode), or for
/// `mknod` the type being created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    Block,
    Char,
    Fifo,
    Socket,
}

impl FileType {
    /// From a `st_mode`; `None` when the type bits are not one of the seven.
    pub fn from_mode(mode: u32) -> Option<Self> {
        Some(match mode & libc::S_IFMT {
            libc::S_IFREG => Self::Regular,
            libc::S_IFDIR => Self::Directory,
            libc::S_IFLNK => Self::Symlink,
            libc::S_IFBLK => Self::Block,
            libc::S_IFCHR => Self::Char,
            libc::S_IFIFO => Self::Fifo,
            libc::S_IFSOCK => Self::Socket,
            _ => return None,
        })
    }
}

/// What to do with a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    Allow,
    Deny { errno: Errno },
}

/// When a rule applies. Every condition given must hold; a list holds when
/// any of its entries does; an empty list or absent field is no condition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Match {
    /// Container paths; a request matches when one of its paths is one of
    /// these or lies beneath it (whole components: `/sys` is not a prefix of
    /// `/sysroot`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<PathBuf>,
    /// Whether the call changes the file system (see [`Request::writes`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub file_types: Vec<FileType>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<SocketDomain>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<SocketType>,
    /// Namespaces of `unshare`/`setns`: matches when the call touches one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<Namespace>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ptrace_requests: Vec<i64>,
    /// Exact ioctl request numbers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ioctl_requests: Vec<u64>,
    /// ioctl "type" bytes (`_IOC_TYPE`, bits 8..16): a device class, e.g.
    /// 0x12 block devices, 0x4c loop devices.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ioctl_types: Vec<u8>,
}

/// One rule: its name (what a denial's audit line cites), the syscall
/// classes it covers, a match, an action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub syscalls: Vec<Syscall>,
    #[serde(default, rename = "match")]
    pub matches: Match,
    pub action: Action,
}

/// The policy: rules in order, the first that matches decides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    pub default_action: Action,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// A mediated call as the supervisor saw it, after resolving its paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request<'a> {
    /// The syscall's name (see [`syscall_name`]).
    pub syscall: &'a str,
    /// Resolved container paths (rename and link have two), absolute.
    pub paths: Vec<PathBuf>,
    /// The target's type when it exists; for `mknod` the type created.
    pub file_type: Option<FileType>,
    /// `open` flags (`O_*`), for the open family.
    pub open_flags: Option<i32>,
    pub socket_domain: Option<i32>,
    /// `socket(2)`'s type argument (flags are masked off when matching).
    pub socket_type: Option<i32>,
    /// `CLONE_NEW*` flags of `unshare`, or `setns`'s nstype. A `setns`
    /// with 0 ("any type") matches every namespace condition, unless the
    /// supervisor has learnt the type from the fd (`NS_GET_NSTYPE`).
    pub namespaces: u64,
    pub ptrace_request: Option<i64>,
    pub ioctl_request: Option<u64>,
}

impl Request<'_> {
    /// Whether the call changes the file system: the write-class syscalls
    /// always, an open when it asks for write access, creates or truncates.
    pub fn writes(&self) -> bool {
        match class_of(self.syscall) {
            Some(Syscall::Open) => {
                let flags = self.open_flags.unwrap_or(match self.syscall {
                    "creat" => libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
                    _ => libc::O_RDONLY,
                });
                flags & libc::O_ACCMODE != libc::O_RDONLY || flags & (libc::O_CREAT | libc::O_TRUNC) != 0
            }
            Some(class) => class.always_writes(),
            None => false,
        }
    }
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The supervisor performs the call (or lets the kernel continue it).
    Allow,
    /// Refuse with `errno`; `rule` names the rule that decided.
    Deny { errno: i32, rule: String },
}

fn under(path: &Path, prefix: &Path) -> bool {
    // Compare normal components so "/sys/" and "/sys/." equal "/sys".
    fn comps(p: &Path) -> impl Iterator<Item = Component<'_>> {
        p.components()
            .filter(|c| !matches!(c, Component::CurDir | Component::RootDir))
    }
    let mut p = comps(path);
    comps(prefix).all(|c| p.next() == Some(c))
}

impl Match {
    fn matches(&self, req: &Request<'_>, class: Syscall) -> bool {
        if !self.paths.is_empty() && !req.paths.iter().any(|p| self.paths.iter().any(|pre| under(p, pre))) {
            return false;
        }
        if self.write.is_some_and(|w| w != req.writes()) {
            return false;
        }
        if !self.file_types.is_empty() && !req.file_type.is_some_and(|t| self.file_types.contains(&t)) {
            return false;
        }
        if !self.domains.is_empty()
            && !req
                .socket_domain
                .is_some_and(|d| self.domains.contains(&SocketDomain(d)))
        {
            return false;
        }
        if !self.types.is_empty()
            && !req
                .socket_type
                .is_some_and(|t| self.types.contains(&SocketType(t & SOCK_TYPE_MASK)))
        {
            return false;
        }
        if !self.namespaces.is_empty() {
            let any_type = class == Syscall::Setns && req.namespaces == 0;
            if !any_type && !self.namespaces.iter().any(|ns| req.namespaces & ns.flag() != 0) {
                return false;
            }
        }
        if !self.ptrace_requests.is_empty() && !req.ptrace_request.is_some_and(|r| self.ptrace_requests.contains(&r)) {
            return false;
        }
        if !self.ioctl_requests.is_empty() || !self.ioctl_types.is_empty() {
            let Some(r) = req.ioctl_request else { return false };
            // The ioctl request is an unsigned int in the kernel: the upper
            // 32 bits of the register are ignored.
            let r = r & 0xffff_ffff;
            let exact = self.ioctl_requests.iter().any(|&q| q & 0xffff_ffff == r);
            let typ = self.ioctl_types.contains(&(((r >> 8) & 0xff) as u8));
            if !exact && !typ {
                return false;
            }
        }
        true
    }
}

impl Policy {
    /// Decide a request: the first rule whose classes include the call's and
    /// whose match holds, else the default action. Pure.
    pub fn decide(&self, req: &Request<'_>) -> Decision {
        let Some(class) = class_of(req.syscall) else {
            // Not a call the filter mediates: the filter and policy disagree,
            // the default action is the only thing that can decide.
            return decision(self.default_action, DEFAULT_RULE);
        };
        for rule in &self.rules {
            if rule.syscalls.contains(&class) && rule.matches.matches(req, class) {
                return decision(rule.action, &rule.name);
            }
        }
        decision(self.default_action, DEFAULT_RULE)
    }

    /// The policy the annotations name: [`ANNOTATION_POLICY`] (inline
    /// JSON) or [`ANNOTATION_POLICY_FILE`] (a path), else the default.
    pub fn from_annotations(annotations: &HashMap<String, String>) -> Result<Self> {
        match (
            annotations.get(ANNOTATION_POLICY),
            annotations.get(ANNOTATION_POLICY_FILE),
        ) {
            (Some(_), Some(_)) => Err(Error::Both {
                annotation: ANNOTATION_POLICY,
            }),
            (Some(json), None) => Self::from_json(json, ANNOTATION_POLICY),
            (None, Some(path)) => {
                let path = PathBuf::from(path);
                let json = std::fs::read_to_string(&path).map_err(|source| Error::ReadFile { path, source })?;
                Self::from_json(&json, ANNOTATION_POLICY_FILE)
            }
            (None, None) => Ok(Self::default()),
        }
    }

    /// Parse and check a policy; `annotation` is where it came from, for
    /// the error.
    pub fn from_json(json: &str, annotation: &'static str) -> Result<Self> {
        let policy: Self = serde_json::from_str(json).map_err(|source| Error::Json { annotation, source })?;
        policy.validate(annotation)?;
        Ok(policy)
    }

    fn validate(&self, annotation: &'static str) -> Result<()> {
        for (index, rule) in self.rules.iter().enumerate() {
            let bad = |what: String| Error::Rule {
                annotation,
                index,
                rule: rule.name.clone(),
                what,
            };
            if rule.name.is_empty() {
                return Err(bad("name must not be empty".into()));
            }
            if rule.syscalls.is_empty() {
                return Err(bad("syscalls must name at least one class".into()));
            }
            if let Some(p) = rule.matches.paths.iter().find(|p| !p.is_absolute()) {
                return Err(bad(format!("match.paths: container paths are absolute, got {p:?}")));
            }
            if let Action::Deny { errno } = rule.action {
                if !(1..4096).contains(&errno.0) {
                    return Err(bad(format!("action.deny.errno must be in 1..4096, got {}", errno.0)));
                }
            }
        }
        if let Action::Deny { errno } = self.default_action {
            if !(1..4096).contains(&errno.0) {
                return Err(Error::Rule {
                    annotation,
                    index: usize::MAX,
                    rule: "defaultAction".into(),
                    what: format!("deny.errno must be in 1..4096, got {}", errno.0),
                });
            }
        }
        Ok(())
    }
}

fn decision(action: Action, rule: &str) -> Decision {
    match action {
        Action::Allow => Decision::Allow,
        Action::Deny { errno } => Decision::Deny {
            errno: errno.0,
            rule: rule.to_owned(),
        },
    }
}

fn rule(name: &str, syscalls: &[Syscall], matches: Match, action: Action) -> Rule {
    Rule {
        name: name.into(),
        syscalls: syscalls.to_vec(),
        matches,
        action,
    }
}

const EPERM: Action = Action::Deny {
    errno: Errno(libc::EPERM),
};
const EACCES: Action = Action::Deny {
    errno: Errno(libc::EACCES),
};

impl Default for Policy {
    /// Runs ordinary workloads: files anywhere in the root except writes
    /// under /proc/sys, /sys and /proc/sysrq-trigger and opens of block
    /// devices; unix and IP sockets; none of the calls that reach the host
    /// kernel's global state (mounts, user and mount namespaces, ptrace,
    /// other processes' memory, kexec, bpf, perf, keyrings, userfaultfd,
    /// raw and packet sockets, terminal injection).
    fn default() -> Self {
        use Syscall::*;
        let kernel_writes: Vec<PathBuf> = ["/proc/sys", "/sys", "/proc/sysrq-trigger"].map(PathBuf::from).into();
        let rules = vec![
            rule("mount", &[Mount], Match::default(), EPERM),
            rule(
                "namespace-user-mnt",
                &[Unshare, Setns],
                Match {
                    namespaces: vec![Namespace::User, Namespace::Mnt],
                    ..Match::default()
                },
                EPERM,
            ),
            rule("ptrace", &[Ptrace], Match::default(), EPERM),
            rule("process-vm", &[ProcessVm], Match::default(), EPERM),
            rule("kexec", &[Kexec], Match::default(), EPERM),
            rule("bpf", &[Bpf], Match::default(), EPERM),
            rule("perf-event", &[PerfEvent], Match::default(), EPERM),
            rule("keyring", &[Keyctl], Match::default(), EPERM),
            rule("userfaultfd", &[Userfaultfd], Match::default(), EPERM),
            rule(
                "socket-raw",
                &[Socket],
                Match {
                    types: vec![SocketType(libc::SOCK_RAW), SocketType(SOCK_PACKET)],
                    ..Match::default()
                },
                EPERM,
            ),
            rule(
                "socket-packet",
                &[Socket],
                Match {
                    domains: vec![SocketDomain(libc::AF_PACKET)],
                    ..Match::default()
                },
                EPERM,
            ),
            rule(
                "block-device-open",
                &[Open],
                Match {
                    file_types: vec![FileType::Block],
                    ..Match::default()
                },
                EACCES,
            ),
            rule(
                "device-node-create",
                &[Mkdir],
                Match {
                    file_types: vec![FileType::Block, FileType::Char],
                    ..Match::default()
                },
                EPERM,
            ),
            rule(
                "kernel-tunables-write-open",
                &[Open],
                Match {
                    paths: kernel_writes.clone(),
                    write: Some(true),
                    ..Match::default()
                },
                EACCES,
            ),
            rule(
                "kernel-tunables-write",
                &[Link, Rename, Unlink, Mkdir, Chmod, Chown],
                Match {
                    paths: kernel_writes,
                    ..Match::default()
                },
                EPERM,
            ),
            rule(
                "tty-inject",
                &[Ioctl],
                Match {
                    ioctl_requests: vec![libc::TIOCSTI, libc::TIOCLINUX],
                    ..Match::default()
                },
                EPERM,
            ),
            rule(
                "device-ioctl",
                &[Ioctl],
                Match {
                    // 0x12: block devices (BLK*), 0x4c: loop devices.
                    ioctl_types: vec![0x12, 0x4c],
                    ..Match::default()
                },
                EPERM,
            ),
        ];
        Self {
            default_action: Action::Allow,
            rules,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(syscall: &str) -> Request<'_> {
        Request {
            syscall,
            ..Request::default()
        }
    }

    fn path_req<'a>(syscall: &'a str, path: &str, flags: Option<i32>) -> Request<'a> {
        Request {
            syscall,
            paths: vec![PathBuf::from(path)],
            open_flags: flags,
            ..Request::default()
        }
    }

    fn denied(d: &Decision) -> Option<(i32, &str)> {
        match d {
            Decision::Allow => None,
            Decision::Deny { errno, rule } => Some((*errno, rule.as_str())),
        }
    }

    #[test]
    fn mapping_matches_libc_and_covers_the_brief() {
        assert_eq!(syscall_nr("openat"), Some(257));
        assert_eq!(syscall_nr("openat2"), Some(437));
        assert_eq!(syscall_name(libc::SYS_newfstatat), Some("newfstatat"));
        assert_eq!(syscall_name(libc::SYS_getpid), None);
        assert_eq!(class_of("umount2"), Some(Syscall::Mount));
        let names = mediated_syscalls();
        for n in [
            "open",
            "creat",
            "statx",
            "faccessat2",
            "readlinkat",
            "execveat",
            "symlinkat",
            "renameat2",
            "rmdir",
            "mknodat",
            "fchmodat",
            "fchownat",
            "pivot_root",
            "fsconfig",
            "socket",
            "connect",
            "bind",
            "ptrace",
            "process_vm_writev",
            "kexec_file_load",
            "bpf",
            "perf_event_open",
            "add_key",
            "request_key",
            "userfaultfd",
            "unshare",
            "setns",
            "ioctl",
        ] {
            assert!(names.contains(&n), "{n} not mediated");
        }
        let mut nrs: Vec<i64> = MEDIATED.iter().map(|s| s.nr).collect();
        nrs.sort_unstable();
        nrs.dedup();
        assert_eq!(nrs.len(), MEDIATED.len(), "a number appears twice");
        for s in MEDIATED {
            assert_eq!(syscall_name(s.nr), Some(s.name));
        }
    }

    #[test]
    fn default_allows_ordinary_file_work() {
        let p = Policy::default();
        for r in [
            path_req("openat", "/etc/passwd", Some(libc::O_RDONLY)),
            path_req("openat", "/tmp/x", Some(libc::O_WRONLY | libc::O_CREAT)),
            path_req("openat", "/proc/sys/kernel/hostname", Some(libc::O_RDONLY)),
            path_req("openat", "/sysroot/x", Some(libc::O_RDWR)),
            path_req("newfstatat", "/sys/fs/cgroup", None),
            path_req("execve", "/bin/sh", None),
            path_req("mkdirat", "/var/tmp/d", None),
            path_req("unlinkat", "/var/tmp/d", None),
        ] {
            assert_eq!(p.decide(&r), Decision::Allow, "{r:?}");
        }
    }

    #[test]
    fn default_denies_kernel_tunable_writes() {
        let p = Policy::default();
        let d = p.decide(&path_req(
            "openat",
            "/proc/sys/kernel/core_pattern",
            Some(libc::O_WRONLY),
        ));
        assert_eq!(denied(&d), Some((libc::EACCES, "kernel-tunables-write-open")));
        let d = p.decide(&path_req("open", "/proc/sysrq-trigger", Some(libc::O_WRONLY)));
        assert_eq!(denied(&d), Some((libc::EACCES, "kernel-tunables-write-open")));
        let d = p.decide(&path_req("open", "/sys/kernel/x", Some(libc::O_RDONLY | libc::O_TRUNC)));
        assert_eq!(denied(&d), Some((libc::EACCES, "kernel-tunables-write-open")));
        let d = p.decide(&path_req("creat", "/sys/x", None));
        assert_eq!(denied(&d), Some((libc::EACCES, "kernel-tunables-write-open")));
        let d = p.decide(&path_req("unlinkat", "/sys/fs/cgroup/x", None));
        assert_eq!(denied(&d), Some((libc::EPERM, "kernel-tunables-write")));
        // Either side of a rename counts.
        let mut r = path_req("renameat2", "/tmp/a", None);
        r.paths.push(PathBuf::from("/proc/sys/vm/x"));
        assert_eq!(denied(&p.decide(&r)), Some((libc::EPERM, "kernel-tunables-write")));
    }

    #[test]
    fn default_denies_block_devices_not_char_devices() {
        let p = Policy::default();
        let mut r = path_req("openat", "/dev/sda", Some(libc::O_RDONLY));
        r.file_type = Some(FileType::Block);
        assert_eq!(denied(&p.decide(&r)), Some((libc::EACCES, "block-device-open")));
        r.file_type = Some(FileType::Char);
        assert_eq!(p.decide(&r), Decision::Allow);
        let mut r = path_req("mknodat", "/tmp/sda", None);
        r.file_type = Some(FileType::Block);
        assert_eq!(denied(&p.decide(&r)), Some((libc::EPERM, "device-node-create")));
        r.file_type = Some(FileType::Fifo);
        assert_eq!(p.decide(&r), Decision::Allow);
    }

    #[test]
    fn default_denies_host_reaching_calls() {
        let p = Policy::default();
        for (name, rule) in [
            ("mount", "mount"),
            ("umount2", "mount"),
            ("pivot_root", "mount"),
            ("fsopen", "mount"),
            ("ptrace", "ptrace"),
            ("process_vm_readv", "process-vm"),
            ("kexec_load", "kexec"),
            ("bpf", "bpf"),
            ("perf_event_open", "perf-event"),
            ("keyctl", "keyring"),
            ("add_key", "keyring"),
            ("request_key", "keyring"),
            ("userfaultfd", "userfaultfd"),
        ] {
            assert_eq!(denied(&p.decide(&req(name))), Some((libc::EPERM, rule)), "{name}");
        }
    }

    #[test]
    fn namespaces_user_and_mnt_denied_others_allowed() {
        let p = Policy::default();
        let mut r = req("unshare");
        r.namespaces = (libc::CLONE_NEWUSER | libc::CLONE_NEWNET) as u64;
        assert_eq!(denied(&p.decide(&r)), Some((libc::EPERM, "namespace-user-mnt")));
        r.namespaces = libc::CLONE_NEWNS as u64;
        assert_eq!(denied(&p.decide(&r)), Some((libc::EPERM, "namespace-user-mnt")));
        r.namespaces = (libc::CLONE_NEWNET | libc::CLONE_NEWUTS) as u64;
        assert_eq!(p.decide(&r), Decision::Allow);
        let mut r = req("setns");
        r.namespaces = libc::CLONE_NEWNET as u64;
        assert_eq!(p.decide(&r), Decision::Allow);
        // nstype 0 may join any namespace the fd names, a user one included.
        r.namespaces = 0;
        assert_eq!(denied(&p.decide(&r)), Some((libc::EPERM, "namespace-user-mnt")));
        // unshare(0) unshares nothing.
        assert_eq!(p.decide(&req("unshare")), Decision::Allow);
    }

    #[test]
    fn sockets() {
        let p = Policy::default();
        let sock = |d: i32, t: i32| Request {
            syscall: "socket",
            socket_domain: Some(d),
            socket_type: Some(t),
            ..Request::default()
        };
        for (d, t) in [
            (libc::AF_UNIX, libc::SOCK_STREAM),
            (libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC),
            (libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK),
            (libc::AF_INET6, libc::SOCK_DGRAM),
        ] {
            assert_eq!(p.decide(&sock(d, t)), Decision::Allow, "{d} {t}");
        }
        let raw = sock(libc::AF_INET, libc::SOCK_RAW | libc::SOCK_CLOEXEC);
        assert_eq!(denied(&p.decide(&raw)), Some((libc::EPERM, "socket-raw")));
        let packet = sock(libc::AF_PACKET, libc::SOCK_DGRAM);
        assert_eq!(denied(&p.decide(&packet)), Some((libc::EPERM, "socket-packet")));
    }

    #[test]
    fn ioctls() {
        let p = Policy::default();
        let io = |r: u64| Request {
            syscall: "ioctl",
            ioctl_request: Some(r),
            ..Request::default()
        };
        assert_eq!(denied(&p.decide(&io(libc::TIOCSTI))), Some((libc::EPERM, "tty-inject")));
        // Upper bits of the register are ignored by the kernel, and here.
        assert_eq!(
            denied(&p.decide(&io(libc::TIOCSTI | 1 << 32))),
            Some((libc::EPERM, "tty-inject"))
        );
        assert_eq!(denied(&p.decide(&io(0x1272))), Some((libc::EPERM, "device-ioctl"))); // BLKGETSIZE64's type
        assert_eq!(denied(&p.decide(&io(0x4c00))), Some((libc::EPERM, "device-ioctl"))); // LOOP_SET_FD
        assert_eq!(p.decide(&io(libc::TIOCGWINSZ)), Decision::Allow);
        assert_eq!(p.decide(&io(libc::FIONREAD)), Decision::Allow);
    }

    #[test]
    fn first_match_wins_and_default_applies() {
        let p = Policy::from_json(
            r#"{"defaultAction": {"deny": {"errno": "ENOSYS"}},
                "rules": [
                  {"name": "etc-ro", "syscalls": ["open"], "match": {"paths": ["/etc"], "write": true},
                   "action": {"deny": {"errno": 30}}},
                  {"name": "files", "syscalls": ["open", "stat"], "action": "allow"}
                ]}"#,
            ANNOTATION_POLICY,
        )
        .unwrap();
        let d = p.decide(&path_req("openat", "/etc/hosts", Some(libc::O_RDWR)));
        assert_eq!(denied(&d), Some((libc::EROFS, "etc-ro")));
        assert_eq!(
            p.decide(&path_req("openat", "/etc/hosts", Some(libc::O_RDONLY))),
            Decision::Allow
        );
        assert_eq!(p.decide(&path_req("statx", "/etc", None)), Decision::Allow);
        assert_eq!(denied(&p.decide(&req("mkdir"))), Some((libc::ENOSYS, DEFAULT_RULE)));
        assert_eq!(denied(&p.decide(&req("getpid"))), Some((libc::ENOSYS, DEFAULT_RULE)));
    }

    #[test]
    fn json_round_trip_of_the_default() {
        let p = Policy::default();
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains(r#""errno":"EPERM""#), "{json}");
        assert!(json.contains(r#""defaultAction":"allow""#), "{json}");
        assert_eq!(Policy::from_json(&json, ANNOTATION_POLICY).unwrap(), p);
    }

    #[test]
    fn annotations() {
        let mut a = HashMap::new();
        assert_eq!(Policy::from_annotations(&a).unwrap(), Policy::default());
        a.insert(ANNOTATION_POLICY.to_owned(), r#"{"defaultAction":"allow"}"#.to_owned());
        assert!(Policy::from_annotations(&a).unwrap().rules.is_empty());

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.json");
        std::fs::write(&file, r#"{"defaultAction":{"deny":{"errno":"EPERM"}}}"#).unwrap();
        let mut f = HashMap::new();
        f.insert(ANNOTATION_POLICY_FILE.to_owned(), file.display().to_string());
        let p = Policy::from_annotations(&f).unwrap();
        assert_eq!(p.default_action, EPERM);

        a.insert(ANNOTATION_POLICY_FILE.to_owned(), file.display().to_string());
        let e = Policy::from_annotations(&a).unwrap_err().to_string();
        assert!(e.contains("both"), "{e}");

        f.insert(
            ANNOTATION_POLICY_FILE.to_owned(),
            dir.path().join("missing").display().to_string(),
        );
        let e = Policy::from_annotations(&f).unwrap_err().to_string();
        assert!(e.contains(ANNOTATION_POLICY_FILE) && e.contains("missing"), "{e}");
    }

    #[test]
    fn errors_name_the_annotation_and_the_value() {
        let bad = |json: &str| Policy::from_json(json, ANNOTATION_POLICY).unwrap_err().to_string();
        let e = bad(r#"{"defaultAction":{"deny":{"errno":"EWHAT"}}}"#);
        assert!(
            e.contains(ANNOTATION_POLICY) && e.contains("unknown errno \"EWHAT\""),
            "{e}"
        );
        let e = bad(r#"{"defaultAction":"allow","rules":[{"name":"x","syscalls":["opne"],"action":"allow"}]}"#);
        assert!(e.contains("opne"), "{e}");
        let e = bad(
            r#"{"defaultAction":"allow","rules":[{"name":"x","syscalls":["open"],"match":{"path":[]},"action":"allow"}]}"#,
        );
        assert!(e.contains("unknown field `path`"), "{e}");
        let e = bad(
            r#"{"defaultAction":"allow","rules":[{"name":"rel","syscalls":["open"],"match":{"paths":["etc"]},"action":"allow"}]}"#,
        );
        assert!(e.contains("rules[0] (rel)") && e.contains("\"etc\""), "{e}");
        let e = bad(r#"{"defaultAction":"allow","rules":[{"name":"n","syscalls":[],"action":"allow"}]}"#);
        assert!(e.contains("rules[0] (n)") && e.contains("syscalls"), "{e}");
        let e = bad(
            r#"{"defaultAction":"allow","rules":[{"name":"z","syscalls":["open"],"action":{"deny":{"errno":0}}}]}"#,
        );
        assert!(e.contains("errno must be in 1..4096, got 0"), "{e}");
        let e = bad(
            r#"{"defaultAction":"allow","rules":[{"name":"d","syscalls":["socket"],"match":{"domains":["AF_NOPE"]},"action":"allow"}]}"#,
        );
        assert!(e.contains("unknown socket domain \"AF_NOPE\""), "{e}");
    }

    #[test]
    fn path_prefix_is_by_component() {
        assert!(under(Path::new("/sys"), Path::new("/sys")));
        assert!(under(Path::new("/sys/kernel"), Path::new("/sys/")));
        assert!(!under(Path::new("/sysroot"), Path::new("/sys")));
        assert!(under(Path::new("/anything"), Path::new("/")));
    }
}
