//! The real [`Mediator`]: a notified call becomes a [`Request`] (its paths
//! read once from the caller's memory and resolved inside the container's
//! root), the policy decides, and the supervisor answers. An allowed open is
//! performed here (openat2 confined to the root) and the fd handed in; other
//! allowed calls continue in the kernel; a denial gets the policy's errno
//! and an audit line.
//!
//! Known gap: allowed non-open path calls (stat, mkdir, unlink, rename...)
//! continue, so the kernel reads the path again; a container that swaps the
//! path between the check and the use reaches what the policy allowed for
//! the first path only as far as the kernel's own confinement (the
//! container's mount namespace and root) lets it.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use crate::audit::{Audit, DenialRecord};
use crate::policy::{self, Decision, FileType, Policy, Request, Syscall};
use crate::resolve::{self, Base, Root};
use crate::supervisor::{Answer, ContainerMemory, Mediator, Notification};

/// The calling thread as the supervisor reads it, once per notification:
/// its `/proc/PID/status` holds its ids in its pid namespace, its
/// credentials and its umask, which several steps of one call need.
struct Caller {
    pid: i32,
    status: std::sync::OnceLock<Option<String>>,
}

impl Caller {
    fn new(pid: i32) -> Caller {
        Caller {
            pid,
            status: std::sync::OnceLock::new(),
        }
    }

    fn status(&self) -> Option<&str> {
        self.status
            .get_or_init(|| std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok())
            .as_deref()
    }

    fn ns_ids(&self) -> Option<(u32, u32)> {
        ns_ids(self.status()?)
    }

    fn umask(&self) -> Option<u32> {
        umask(self.status()?)
    }

    fn creds(&self) -> std::io::Result<crate::creds::Creds> {
        let status = self
            .status()
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ESRCH))?;
        crate::creds::of_status(self.pid, status)
    }
}

pub struct PolicyMediator {
    pub policy: Policy,
    pub root: Root,
    pub audit: Audit,
    pub container_id: String,
    /// The container's procfs and sysfs mount points, read once (from the
    /// first caller's mountinfo): the mount family is denied, so they do
    /// not change under the supervisor.
    pub pseudo: std::sync::OnceLock<Vec<(PathBuf, bool)>>,
}

impl PolicyMediator {
    pub fn new(policy: Policy, root: Root, audit: Audit, container_id: String) -> PolicyMediator {
        PolicyMediator {
            policy,
            root,
            audit,
            container_id,
            pseudo: std::sync::OnceLock::new(),
        }
    }
}

/// One path argument of a call: the dirfd it is relative to (`None`: the
/// cwd), where the string is, and whether the last component is followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathArg {
    pub dirfd: Option<i32>,
    pub addr: u64,
    pub nofollow: bool,
}

fn at(dirfd: u64) -> Option<i32> {
    match dirfd as i32 {
        libc::AT_FDCWD => None,
        fd => Some(fd),
    }
}

fn arg(dirfd: Option<i32>, addr: u64, nofollow: bool) -> PathArg {
    PathArg { dirfd, addr, nofollow }
}

/// Classes whose calls name files by path and are judged by them.
fn takes_paths(c: Syscall) -> bool {
    matches!(
        c,
        Syscall::Stat
            | Syscall::Exec
            | Syscall::Link
            | Syscall::Rename
            | Syscall::Unlink
            | Syscall::Mkdir
            | Syscall::Chmod
            | Syscall::Chown
    )
}

/// The path arguments of mediated call `name` with raw `a` arguments.
pub fn path_args(name: &str, a: &[u64; 6]) -> Vec<PathArg> {
    let nf = |flags: u64| flags as i32 & libc::AT_SYMLINK_NOFOLLOW != 0;
    match name {
        "stat" | "access" | "execve" | "chmod" | "chown" | "mkdir" | "mknod" => vec![arg(None, a[0], false)],
        "lstat" | "readlink" | "unlink" | "rmdir" | "lchown" => vec![arg(None, a[0], true)],
        "newfstatat" | "fchownat" => vec![arg(at(a[0]), a[1], nf(a[3]))],
        "statx" => vec![arg(at(a[0]), a[1], nf(a[2]))],
        "faccessat" | "faccessat2" | "fchmodat" | "fchmodat2" | "mkdirat" | "mknodat" => {
            vec![arg(at(a[0]), a[1], false)]
        }
        "readlinkat" | "unlinkat" => vec![arg(at(a[0]), a[1], true)],
        "execveat" => vec![arg(at(a[0]), a[1], nf(a[4]))],
        "link" | "rename" => vec![arg(None, a[0], true), arg(None, a[1], true)],
        "linkat" | "renameat" | "renameat2" => vec![arg(at(a[0]), a[1], true), arg(at(a[2]), a[3], true)],
        "symlink" => vec![arg(None, a[1], true)],
        "symlinkat" => vec![arg(at(a[1]), a[2], true)],
        "mount" => vec![arg(None, a[1], false)],
        "umount2" => vec![arg(None, a[0], false)],
        _ => Vec::new(),
    }
}

/// The caller's thread-group and thread ids in its own pid namespace (the
/// last fields of `NStgid` and `NSpid`), for `/proc/self`.
fn ns_ids(status: &str) -> Option<(u32, u32)> {
    let last = |key: &str| -> Option<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .split_whitespace()
            .last()?
            .parse()
            .ok()
    };
    Some((last("NStgid:")?, last("NSpid:")?))
}

/// Mount points (relative to the caller's root, no leading `/`) of the
/// caller's procfs and sysfs mounts, from its mountinfo: what these show
/// depends on who looks, so calls under them continue in the caller.
fn pseudo_mounts(pid: i32) -> Vec<(PathBuf, bool)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            let mount_point = left.split_whitespace().nth(4)?;
            let is_proc = fstype == "proc";
            (is_proc || fstype == "sysfs").then(|| (PathBuf::from(mount_point.trim_start_matches('/')), is_proc))
        })
        .collect()
}

/// `rel` with a `self` or `thread-self` right below any procfs mount point
/// replaced by the caller's ids in its pid namespace.
fn rewrite_self(rel: &Path, mounts: &[(PathBuf, bool)], tgid: u32, tid: u32) -> PathBuf {
    mounts
        .iter()
        .filter(|(_, is_proc)| *is_proc)
        .map(|(m, _)| resolve::rewrite_proc_self(rel, m, tgid, tid))
        .find(|r| r != rel)
        .unwrap_or_else(|| rel.to_path_buf())
}

/// Whether `rel` goes through another process's root, cwd, exe or fds in a
/// procfs mount: links to what that process holds, which may be outside
/// the container (with the host's pid namespace, /proc/1/root is the
/// host's). The caller's own are its own business.
fn foreign_proc_link(rel: &Path, mounts: &[(PathBuf, bool)], tgid: u32) -> bool {
    mounts.iter().filter(|(_, is_proc)| *is_proc).any(|(m, _)| {
        let Ok(rest) = rel.strip_prefix(m) else { return false };
        let mut c = rest.components().map(|c| c.as_os_str().to_string_lossy().into_owned());
        let (Some(pid), Some(what)) = (c.next(), c.next()) else {
            return false;
        };
        let what = if what == "task" {
            // proc/PID/task/TID/root and the like.
            match (c.next(), c.next()) {
                (Some(_), Some(w)) => w,
                _ => return false,
            }
        } else {
            what
        };
        pid.parse::<u32>().is_ok_and(|p| p != tgid)
            && matches!(what.as_str(), "root" | "cwd" | "exe" | "fd" | "map_files")
    })
}

/// `N` when `rel` walks on from the caller's own `proc/TGID/fd/N` (or its
/// cwd, as fd `-1`): `proc/7/fd/3/../etc/passwd`.
fn own_fd_used_as_dir(rel: &Path, mounts: &[(PathBuf, bool)], tgid: u32) -> Option<i32> {
    mounts.iter().filter(|(_, is_proc)| *is_proc).find_map(|(m, _)| {
        let rest = rel.strip_prefix(m.join(tgid.to_string())).ok()?;
        let c: Vec<String> = rest
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        match c.as_slice() {
            [fd, n, _, ..] if fd == "fd" => n.parse().ok(),
            [cwd, _, ..] if cwd == "cwd" => Some(-1),
            _ => None,
        }
    })
}

/// Whether the caller's fd `fd` (`-1`: its cwd) is beneath the container's
/// root, by identity (see [`resolve::beneath`]); a descriptor that cannot be
/// looked at is not.
fn fd_inside_root(pid: i32, fd: i32, root: &Root) -> bool {
    let link = if fd < 0 {
        format!("/proc/{pid}/cwd")
    } else {
        format!("/proc/{pid}/fd/{fd}")
    };
    resolve::open_path(Path::new(&link))
        .and_then(|f| resolve::beneath(f.as_fd(), root.fd.as_fd()))
        .unwrap_or(false)
}

/// The umask in a `/proc/PID/status`, which the kernel would apply to what
/// the caller creates (the supervisor's own is 0).
fn umask(status: &str) -> Option<u32> {
    let v = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(v.trim(), 8).ok()
}

/// A raw return value as the call's answer: `-1` becomes the errno.
fn sys_ret(r: i64) -> Result<i64, Answer> {
    if r < 0 {
        Err(Answer::Errno(
            std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO),
        ))
    } else {
        Ok(r)
    }
}

/// The host path of the directory a relative path starts from.
fn base_dir(pid: i32, dirfd: Option<i32>) -> Option<PathBuf> {
    let link = match dirfd {
        None => format!("/proc/{pid}/cwd"),
        Some(fd) => format!("/proc/{pid}/fd/{fd}"),
    };
    std::fs::read_link(link).ok()
}

struct Target {
    /// Relative to the root, `/proc/self` rewritten.
    rel: PathBuf,
    /// The absolute container path the policy judges: symlinks resolved
    /// when the target exists.
    path: PathBuf,
    file_type: Option<FileType>,
    /// Under a procfs or sysfs mount of the caller's.
    pseudo: bool,
}

impl PolicyMediator {
    fn deny(&self, n: &Notification, req: &Request<'_>, errno: i32, rule: &str) -> Answer {
        self.audit
            .deny(&DenialRecord::new(&self.container_id, n.pid as u32, req, errno, rule));
        Answer::Errno(errno)
    }

    /// Reads and resolves one path argument; `Err` is the answer to give.
    fn target(
        &self,
        n: &Notification,
        c: &Caller,
        mem: &dyn ContainerMemory,
        p: PathArg,
        name: &str,
    ) -> Result<Target, Answer> {
        let raw = mem.read_path(p.addr).map_err(|e| Answer::Errno(e.errno()))?;
        let bytes = raw.as_bytes();
        // Only a relative path needs to know where it starts.
        let base = if bytes.first() == Some(&b'/') {
            None
        } else {
            Some(base_dir(n.pid, p.dirfd).ok_or(Answer::Errno(libc::EBADF))?)
        };
        let base = match &base {
            None => Base::Container(Path::new("/")),
            Some(b) => Base::Host(b.as_path()),
        };
        let rel = match resolve::relative_path(&self.root, base, bytes) {
            Ok(r) => r,
            Err(e) => {
                let req = Request {
                    syscall: name,
                    paths: vec![PathBuf::from(OsStr::from_bytes(bytes))],
                    ..Request::default()
                };
                return Err(match e.denial_rule() {
                    Some(rule) => self.deny(n, &req, e.errno(), rule),
                    None => Answer::Errno(e.errno()),
                });
            }
        };
        let ids = c.ns_ids();
        let mounts = self.pseudo.get_or_init(|| pseudo_mounts(n.pid));
        let rel = match ids {
            Some((tgid, tid)) => rewrite_self(&rel, mounts, tgid, tid),
            None => rel,
        };
        // The caller's own /proc entry: its magic links (ns/*, fd/*, cwd,
        // root, exe) lead to what it already holds, and the kernel resolves
        // them in the caller's context when the call continues.
        let own_proc = ids.is_some_and(|(tgid, _)| {
            mounts
                .iter()
                .any(|(m, is_proc)| *is_proc && rel.starts_with(m.join(tgid.to_string())))
        });
        let pseudo = mounts.iter().any(|(m, _)| rel.starts_with(m));
        if let Some((tgid, _)) = ids {
            if let Some(fd) = own_fd_used_as_dir(&rel, mounts, tgid) {
                // A descriptor the container was handed (or leaked) may be a
                // host directory: walking on from it must stay inside.
                if !fd_inside_root(n.pid, fd, &self.root) {
                    let req = Request {
                        syscall: name,
                        paths: vec![Path::new("/").join(&rel)],
                        ..Request::default()
                    };
                    return Err(self.deny(n, &req, libc::EACCES, "fd-outside-root"));
                }
            }
            if foreign_proc_link(&rel, mounts, tgid) {
                let req = Request {
                    syscall: name,
                    paths: vec![Path::new("/").join(&rel)],
                    ..Request::default()
                };
                return Err(self.deny(n, &req, libc::EACCES, "foreign-proc-link"));
            }
        }
        match resolve::resolve(
            &self.root,
            Base::Container(Path::new("/")),
            rel.as_os_str().as_bytes(),
            p.nofollow,
        ) {
            Ok(r) => Ok(Target {
                rel,
                path: r.path,
                file_type: r.file_type,
                pseudo,
            }),
            Err(e) if e.denial_rule().is_some() && own_proc => Ok(Target {
                path: Path::new("/").join(&rel),
                rel,
                file_type: None,
                pseudo,
            }),
            Err(e) if e.denial_rule().is_some() => {
                let req = Request {
                    syscall: name,
                    paths: vec![Path::new("/").join(&rel)],
                    ..Request::default()
                };
                Err(self.deny(n, &req, e.errno(), e.denial_rule().unwrap_or("resolve")))
            }
            // Not there (yet): judged by the name it was given.
            Err(_) => Ok(Target {
                path: Path::new("/").join(&rel),
                rel,
                file_type: None,
                pseudo,
            }),
        }
    }

    fn open(&self, n: &Notification, c: &Caller, mem: &dyn ContainerMemory, name: &str) -> Answer {
        let a = &n.args;
        let (p, flags, mode) = match name {
            "open" => (arg(None, a[0], false), a[1] as i32, a[2] as u32),
            "creat" => (
                arg(None, a[0], false),
                libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
                a[1] as u32,
            ),
            "openat" => (arg(at(a[0]), a[1], false), a[2] as i32, a[3] as u32),
            "openat2" => {
                // struct open_how { u64 flags; u64 mode; u64 resolve; }
                let how = match mem.read_bytes(a[2], 24) {
                    Ok(b) if b.len() == 24 => b,
                    Ok(_) => return Answer::Errno(libc::EFAULT),
                    Err(e) => return Answer::Errno(e.errno()),
                };
                let word = |i: usize| u64::from_ne_bytes(how[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
                if word(2) != 0 {
                    // RESOLVE_* of the caller's own: not emulated.
                    return Answer::Errno(libc::EINVAL);
                }
                (arg(at(a[0]), a[1], false), word(0) as i32, word(1) as u32)
            }
            _ => return Answer::Errno(libc::ENOSYS),
        };
        let p = PathArg {
            nofollow: flags & libc::O_NOFOLLOW != 0,
            ..p
        };
        let t = match self.target(n, c, mem, p, name) {
            Ok(t) => t,
            Err(answer) => return answer,
        };
        let req = Request {
            syscall: name,
            paths: vec![t.path.clone()],
            file_type: t.file_type,
            open_flags: Some(flags),
            ..Request::default()
        };
        if let Decision::Deny { errno, rule } = self.policy.decide(&req) {
            return self.deny(n, &req, errno, &rule);
        }
        if t.pseudo {
            // What these show depends on who opens them (the netns of
            // /proc/sys/net, the ipc sysctls, /proc/PID/ns): the caller opens
            // them itself, still inside its own root.
            return Answer::Continue;
        }
        if matches!(t.file_type, Some(FileType::Char | FileType::Block)) {
            // A device is opened by the caller, in its own context: the
            // container's device cgroup decides, which the supervisor (not
            // in that cgroup) would bypass. The path stays inside the
            // container's root either way.
            return Answer::Continue;
        }
        if !mem.is_live() {
            return Answer::Errno(libc::EINTR);
        }
        let creds = match c.creds() {
            Ok(c) => c,
            Err(_) => return Answer::Errno(libc::EINTR),
        };
        // The kernel would apply the caller's umask to a file it creates.
        let mode = if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
            mode & !c.umask().unwrap_or(0o022)
        } else {
            mode
        };
        let opened = crate::creds::as_caller(&creds, || resolve::open_in_root(&self.root, &t.rel, flags, mode));
        let opened = match opened {
            Ok(r) => r,
            Err(e) => return Answer::Errno(e.raw_os_error().unwrap_or(libc::EPERM)),
        };
        match opened {
            Ok(fd) => Answer::AddFd {
                fd,
                flags: (flags & libc::O_CLOEXEC) as u32,
            },
            Err(e) => match e.denial_rule() {
                Some(rule) => self.deny(n, &req, e.errno(), rule),
                None => Answer::Errno(e.errno()),
            },
        }
    }

    fn paths(&self, n: &Notification, c: &Caller, mem: &dyn ContainerMemory, name: &str) -> Answer {
        let a = &n.args;
        // fstat and friends: an empty path with AT_EMPTY_PATH names an fd
        // the caller already holds.
        let empty_path_flag = match name {
            "newfstatat" | "fchownat" => a[3],
            "statx" => a[2],
            "execveat" => a[4],
            _ => 0,
        };
        if empty_path_flag as i32 & libc::AT_EMPTY_PATH != 0
            && mem.read_path(a[1]).is_ok_and(|p| p.as_bytes().is_empty())
        {
            return Answer::Continue;
        }
        let mut req = Request {
            syscall: name,
            ..Request::default()
        };
        let mut targets = Vec::new();
        for p in path_args(name, a) {
            match self.target(n, c, mem, p, name) {
                Ok(t) => {
                    req.file_type = req.file_type.or(t.file_type);
                    req.paths.push(t.path.clone());
                    targets.push((p, t));
                }
                Err(answer) => return answer,
            }
        }
        if matches!(name, "mknod" | "mknodat") {
            let mode = if name == "mknod" { a[1] } else { a[2] };
            req.file_type = FileType::from_mode(mode as u32);
        }
        if let Decision::Deny { errno, rule } = self.policy.decide(&req) {
            return self.deny(n, &req, errno, &rule);
        }
        if targets.iter().any(|(_, t)| t.pseudo) {
            return Answer::Continue;
        }
        self.perform(n, c, mem, name, &targets)
    }

    /// Performs an allowed call that changes the file system, on the paths
    /// as resolved (never re-read from the caller), as the caller. What is
    /// only read (stat, readlink, access), exec, mknod and a link that
    /// follows its source continue in the kernel.
    fn perform(
        &self,
        n: &Notification,
        c: &Caller,
        mem: &dyn ContainerMemory,
        name: &str,
        targets: &[(PathArg, Target)],
    ) -> Answer {
        let a = &n.args;
        let parent = |i: usize| -> Result<(OwnedFd, CString), Answer> {
            let (_, t) = &targets[i];
            let (r, last) = resolve::open_parent(
                &self.root,
                Base::Container(Path::new("/")),
                t.rel.as_os_str().as_bytes(),
            )
            .map_err(|e| Answer::Errno(e.errno()))?;
            let last = CString::new(last.into_vec()).map_err(|_| Answer::Errno(libc::EINVAL))?;
            Ok((r.fd, last))
        };
        let object = |i: usize| -> Result<OwnedFd, Answer> {
            let (p, t) = &targets[i];
            resolve::resolve(
                &self.root,
                Base::Container(Path::new("/")),
                t.rel.as_os_str().as_bytes(),
                p.nofollow,
            )
            .map(|r| r.fd)
            .map_err(|e| Answer::Errno(e.errno()))
        };
        let op: Box<dyn Fn() -> Result<i64, Answer>> = match name {
            "mkdir" | "mkdirat" => {
                // Read only for what creates: a /proc read costs as much as
                // the rest of a mediated stat.
                let umask = c.umask().unwrap_or(0o022);
                let mode = (if name == "mkdir" { a[1] } else { a[2] }) as u32 & 0o7777 & !umask;
                Box::new(move || {
                    let (dir, last) = parent(0)?;
                    // SAFETY: a dirfd we own and a NUL-terminated name.
                    sys_ret(unsafe { libc::mkdirat(dir.as_raw_fd(), last.as_ptr(), mode) } as i64)
                })
            }
            "unlink" | "rmdir" | "unlinkat" => {
                let flags = match name {
                    "rmdir" => libc::AT_REMOVEDIR,
                    "unlinkat" => a[2] as i32,
                    _ => 0,
                };
                Box::new(move || {
                    let (dir, last) = parent(0)?;
                    // SAFETY: as above.
                    sys_ret(unsafe { libc::unlinkat(dir.as_raw_fd(), last.as_ptr(), flags) } as i64)
                })
            }
            "rename" | "renameat" | "renameat2" => {
                let flags = if name == "renameat2" { a[4] as u32 } else { 0 };
                Box::new(move || {
                    let (d1, l1) = parent(0)?;
                    let (d2, l2) = parent(1)?;
                    // SAFETY: two dirfds we own and two NUL-terminated names.
                    sys_ret(unsafe {
                        libc::syscall(
                            libc::SYS_renameat2,
                            d1.as_raw_fd(),
                            l1.as_ptr(),
                            d2.as_raw_fd(),
                            l2.as_ptr(),
                            flags,
                        )
                    })
                })
            }
            "symlink" | "symlinkat" => {
                let target = match mem.read_path(a[0]) {
                    Ok(t) => t,
                    Err(e) => return Answer::Errno(e.errno()),
                };
                Box::new(move || {
                    let (dir, last) = parent(0)?;
                    // SAFETY: the link text and name are NUL-terminated; the dirfd is ours.
                    sys_ret(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), last.as_ptr()) } as i64)
                })
            }
            "link" | "linkat" if name == "link" || a[4] as i32 & libc::AT_SYMLINK_FOLLOW == 0 => Box::new(move || {
                let (d1, l1) = parent(0)?;
                let (d2, l2) = parent(1)?;
                // SAFETY: two dirfds we own and two NUL-terminated names.
                sys_ret(unsafe { libc::linkat(d1.as_raw_fd(), l1.as_ptr(), d2.as_raw_fd(), l2.as_ptr(), 0) } as i64)
            }),
            "chmod" | "fchmodat" | "fchmodat2" => {
                let mode = (if name == "chmod" { a[1] } else { a[2] }) as u32 & 0o7777;
                Box::new(move || {
                    let fd = object(0)?;
                    // SAFETY: fchmodat2 on an fd we own with an empty path.
                    sys_ret(unsafe {
                        libc::syscall(
                            libc::SYS_fchmodat2,
                            fd.as_raw_fd(),
                            c"".as_ptr(),
                            mode,
                            libc::AT_EMPTY_PATH,
                        )
                    })
                })
            }
            "chown" | "lchown" | "fchownat" => {
                let (uid, gid) = if name == "fchownat" { (a[2], a[3]) } else { (a[1], a[2]) };
                Box::new(move || {
                    let fd = object(0)?;
                    // SAFETY: fchownat on an fd we own with an empty path.
                    sys_ret(unsafe {
                        libc::fchownat(
                            fd.as_raw_fd(),
                            c"".as_ptr(),
                            uid as u32,
                            gid as u32,
                            libc::AT_EMPTY_PATH,
                        )
                    } as i64)
                })
            }
            _ => return Answer::Continue,
        };
        let creds = match c.creds() {
            Ok(c) => c,
            Err(_) => return Answer::Errno(libc::EINTR),
        };
        if !mem.is_live() {
            return Answer::Errno(libc::EINTR);
        }
        match crate::creds::as_caller(&creds, op) {
            Ok(Ok(v)) => Answer::Value(v),
            Ok(Err(answer)) => answer,
            Err(e) => Answer::Errno(e.raw_os_error().unwrap_or(libc::EPERM)),
        }
    }

    fn finish(&self, n: &Notification, req: &Request<'_>) -> Answer {
        match self.policy.decide(req) {
            Decision::Allow => Answer::Continue,
            Decision::Deny { errno, rule } => self.deny(n, req, errno, &rule),
        }
    }
}

impl Mediator for PolicyMediator {
    fn handle(&self, n: &Notification, mem: &dyn ContainerMemory) -> Answer {
        let Some(name) = policy::syscall_name(i64::from(n.syscall_nr)) else {
            // Not one of ours (another ABI's number): refuse rather than guess.
            return Answer::Errno(libc::ENOSYS);
        };
        let a = &n.args;
        let c = Caller::new(n.pid);
        let mut req = Request {
            syscall: name,
            ..Request::default()
        };
        match policy::class_of(name) {
            Some(Syscall::Open) => return self.open(n, &c, mem, name),
            Some(class) if takes_paths(class) => return self.paths(n, &c, mem, name),
            Some(Syscall::Mount) => {
                for p in path_args(name, a) {
                    if let Ok(t) = self.target(n, &c, mem, p, name) {
                        req.paths.push(t.path);
                    }
                }
            }
            Some(Syscall::Socket) => {
                req.socket_domain = Some(a[0] as i32);
                req.socket_type = Some(a[1] as i32);
            }
            Some(Syscall::Ptrace) => req.ptrace_request = Some(a[0] as i64),
            Some(Syscall::Unshare) => req.namespaces = a[0],
            Some(Syscall::Setns) => req.namespaces = a[1],
            Some(Syscall::Ioctl) => req.ioctl_request = Some(a[1]),
            _ => {}
        }
        self.finish(n, &req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_arguments_by_call() {
        let a = [1, 2, 3, 4, 5, 6];
        assert_eq!(path_args("stat", &a), vec![arg(None, 1, false)]);
        assert_eq!(path_args("lstat", &a), vec![arg(None, 1, true)]);
        let fdcwd = libc::AT_FDCWD as u64;
        let b = [fdcwd, 20, 30, libc::AT_SYMLINK_NOFOLLOW as u64, 0, 0];
        assert_eq!(path_args("newfstatat", &b), vec![arg(None, 20, true)]);
        assert_eq!(
            path_args("renameat2", &[7, 8, 9, 10, 0, 0]),
            vec![arg(Some(7), 8, true), arg(Some(9), 10, true)]
        );
        assert_eq!(
            path_args("symlinkat", &[1, fdcwd, 3, 0, 0, 0]),
            vec![arg(None, 3, true)]
        );
        assert!(path_args("socket", &a).is_empty());
    }

    #[test]
    fn every_mediated_path_call_has_its_arguments() {
        for name in policy::mediated_syscalls() {
            let class = policy::class_of(name);
            let pathy = class.is_some_and(takes_paths);
            if pathy {
                assert!(
                    !path_args(name, &[0; 6]).is_empty(),
                    "{name} has no path argument listed"
                );
            }
        }
    }

    #[test]
    fn self_is_rewritten_below_any_procfs_mount() {
        let mounts = vec![
            (PathBuf::from("proc"), true),
            (PathBuf::from("extra-proc"), true),
            (PathBuf::from("sys"), false),
        ];
        let r = |p: &str| rewrite_self(Path::new(p), &mounts, 7, 9);
        assert_eq!(r("proc/self/status"), Path::new("proc/7/status"));
        assert_eq!(r("extra-proc/self/status"), Path::new("extra-proc/7/status"));
        assert_eq!(r("extra-proc/thread-self/comm"), Path::new("extra-proc/7/task/9/comm"));
        assert_eq!(r("sys/self"), Path::new("sys/self"));
        assert_eq!(r("home/self/x"), Path::new("home/self/x"));
        let mine = pseudo_mounts(std::process::id() as i32);
        assert!(mine.iter().any(|(m, p)| *p && m == Path::new("proc")), "{mine:?}");
    }

    #[test]
    fn another_processes_links_are_foreign() {
        let mounts = vec![(PathBuf::from("proc"), true), (PathBuf::from("sys"), false)];
        let f = |p: &str| foreign_proc_link(Path::new(p), &mounts, 7);
        assert!(f("proc/1/root/etc/shadow"));
        assert!(f("proc/1/fd/3"));
        assert!(f("proc/9/task/9/cwd"));
        assert!(!f("proc/7/root/etc"), "its own");
        assert!(!f("proc/1/status"));
        assert!(!f("proc/sys/kernel"));
        assert!(!f("sys/1/root"));
    }

    #[test]
    fn walking_on_from_an_fd_or_the_cwd() {
        let mounts = vec![(PathBuf::from("proc"), true)];
        let f = |p: &str| own_fd_used_as_dir(Path::new(p), &mounts, 7);
        assert_eq!(f("proc/7/fd/3/../etc/passwd"), Some(3));
        assert_eq!(f("proc/7/fd/3"), None, "the fd itself: a reopen");
        assert_eq!(f("proc/7/cwd/x"), Some(-1));
        assert_eq!(f("proc/8/fd/3/x"), None);
        // Our own cwd is beneath /; a bad fd is not; / is not beneath a
        // directory in it.
        let me = std::process::id() as i32;
        let top = Root::open(Path::new("/")).unwrap();
        assert!(fd_inside_root(me, -1, &top));
        assert!(!fd_inside_root(me, 999_999, &top));
        let t = tempfile::tempdir().unwrap();
        let inner = Root::open(t.path()).unwrap();
        let f = std::fs::File::open("/").unwrap();
        assert!(!fd_inside_root(me, f.as_raw_fd(), &inner));
    }

    #[test]
    fn namespace_ids_of_this_process() {
        let (tgid, tid) = Caller::new(std::process::id() as i32).ns_ids().unwrap();
        assert_eq!(tgid, std::process::id());
        assert!(tid > 0);
    }
}
