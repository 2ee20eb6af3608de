//! Paths resolved inside the container's root, the way the kernel would.
//!
//! The supervisor never walks a container's path itself: it hands the whole
//! relative path to `openat2(root, rel, RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)`, so symlinks (absolute ones included) and `..`
//! are resolved by the kernel clamped at the container's root, and the
//! proc magic links (`/proc/self/root`, `/proc/1/root`, `/proc/self/fd/N`),
//! which jump out of any root, are refused. What comes back is an fd; the
//! path the policy sees is that fd's real path mapped back into the root,
//! so a symlink to /proc/sys is judged as /proc/sys.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use crate::policy::FileType;

/// Rule name for a path through a proc magic link (for the audit line).
pub const RULE_MAGIC_LINK: &str = "magic-link";
/// Rule name for a base directory (cwd, dirfd) outside the container's root.
pub const RULE_OUTSIDE_ROOT: &str = "outside-root";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("path {path:?} contains a NUL byte")]
    Nul { path: String },
    #[error("empty path")]
    Empty,
    #[error("path {path:?} goes through a proc magic link, which would leave the container's root")]
    MagicLink { path: PathBuf },
    #[error("{what} {path:?} is outside the container's root {root:?}")]
    OutsideRoot {
        what: &'static str,
        path: PathBuf,
        root: PathBuf,
    },
    #[error("{op} {path:?} in root {root:?}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        root: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The errno to answer the container with.
    pub fn errno(&self) -> i32 {
        match self {
            Self::Nul { .. } => libc::EINVAL,
            Self::Empty => libc::ENOENT,
            Self::MagicLink { .. } | Self::OutsideRoot { .. } => libc::EACCES,
            Self::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
        }
    }

    /// The rule to cite when this outcome is a refusal by the sandbox
    /// rather than an ordinary error the kernel would have returned too.
    pub fn denial_rule(&self) -> Option<&'static str> {
        match self {
            Self::MagicLink { .. } => Some(RULE_MAGIC_LINK),
            Self::OutsideRoot { .. } => Some(RULE_OUTSIDE_ROOT),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// The container's root on the host: an `O_PATH` fd of the directory and
/// the path under which the supervisor's `readlink(/proc/self/fd/N)` sees
/// the files beneath it (used to map fds back to container paths).
#[derive(Debug)]
pub struct Root {
    pub fd: OwnedFd,
    pub path: PathBuf,
}

impl Root {
    /// Open `path` (canonicalised, so it compares with what the kernel
    /// reports for fds beneath it).
    pub fn open(path: &Path) -> Result<Self> {
        let io_err = |op, source| Error::Io {
            op,
            path: path.to_owned(),
            root: path.to_owned(),
            source,
        };
        let canonical = std::fs::canonicalize(path).map_err(|e| io_err("canonicalize", e))?;
        let c = CString::new(canonical.as_os_str().as_bytes()).map_err(|_| Error::Nul {
            path: canonical.display().to_string(),
        })?;
        // SAFETY: `c` is a valid NUL-terminated string that outlives the
        // call; open takes no other pointers.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io_err("open root", io::Error::last_os_error()));
        }
        Ok(Self {
            // SAFETY: open returned a fresh fd that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: canonical,
        })
    }

    /// The root of a running container process, as it sees it: its
    /// `/proc/PID/root` (its mount namespace, so the container's own mounts
    /// of /proc, /sys, volumes are what lookups traverse). `path` is `/`:
    /// after `pivot_root` the kernel names files beneath that root, and the
    /// process's cwd, from the container's own root (`readlink` of
    /// `/proc/PID/cwd` gives the container path), so they map as they are.
    /// Containment does not rest on that mapping: every lookup is clamped at
    /// `fd` by `RESOLVE_IN_ROOT`.
    pub fn of_process(pid: u32) -> Result<Self> {
        let link = PathBuf::from(format!("/proc/{pid}/root"));
        let c = cstring(&link)?;
        // SAFETY: `c` is a valid NUL-terminated string that outlives the
        // call. Opening the magic link here is the point: it is the
        // supervisor, not the container, that follows it.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(Error::Io {
                op: "open root",
                path: link.clone(),
                root: link,
                source: io::Error::last_os_error(),
            });
        }
        Ok(Self {
            // SAFETY: open returned a fresh fd that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: PathBuf::from("/"),
        })
    }

    fn io(&self, op: &'static str, rel: &Path, source: io::Error) -> Error {
        Error::Io {
            op,
            path: Path::new("/").join(rel),
            root: self.path.clone(),
            source,
        }
    }
}

/// Where a relative path starts.
#[derive(Clone, Copy, Debug)]
pub enum Base<'a> {
    /// The host path of the directory (the container process's cwd from
    /// `readlink(/proc/PID/cwd)`, or a dirfd from `/proc/PID/fd/N`).
    Host(&'a Path),
    /// A container path already known (absolute, inside the root).
    Container(&'a Path),
}

/// A path resolved inside the root.
#[derive(Debug)]
pub struct Resolved {
    /// `O_PATH` fd of the target (of the symlink itself when not following).
    pub fd: OwnedFd,
    /// The target's absolute container path, symlinks resolved.
    pub path: PathBuf,
    pub file_type: Option<FileType>,
}

/// The container path of a host path beneath the root (`/` for the root
/// itself), `None` when the path is outside the root.
pub fn container_path(root: &Root, host_path: &Path) -> Option<PathBuf> {
    let rest = host_path.strip_prefix(&root.path).ok()?;
    if rest.components().any(|c| matches!(c, Component::ParentDir)) {
        return None;
    }
    Some(Path::new("/").join(rest))
}

/// The container path of an fd opened beneath the root, from its
/// `/proc/self/fd` link.
pub fn fd_container_path(root: &Root, fd: BorrowedFd<'_>) -> Option<PathBuf> {
    let host = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    container_path(root, &host)
}

/// The root-relative path (no leading `/`) the container named: absolute
/// as is, relative joined to the base's container path. `..` and symlinks
/// are left for the kernel to resolve inside the root.
pub fn relative_path(root: &Root, base: Base<'_>, path: &[u8]) -> Result<PathBuf> {
    if path.contains(&0) {
        return Err(Error::Nul {
            path: String::from_utf8_lossy(path).into_owned(),
        });
    }
    if path.is_empty() {
        return Err(Error::Empty);
    }
    let path = Path::new(OsStr::from_bytes(path));
    let joined = if path.is_absolute() {
        path.to_owned()
    } else {
        let base = match base {
            Base::Host(host) => container_path(root, host).ok_or_else(|| Error::OutsideRoot {
                what: "base directory",
                path: host.to_owned(),
                root: root.path.clone(),
            })?,
            Base::Container(c) => Path::new("/").join(c),
        };
        base.join(path)
    };
    // Keep a trailing slash: it makes the kernel insist on a directory.
    let bytes = joined.as_os_str().as_bytes();
    let trimmed = &bytes[bytes.iter().take_while(|&&b| b == b'/').count()..];
    Ok(if trimmed.is_empty() {
        PathBuf::from(".")
    } else {
        PathBuf::from(OsStr::from_bytes(trimmed))
    })
}

/// Rewrite a leading `MOUNT/self` / `MOUNT/thread-self` of a root-relative
/// path, where `mount` is a procfs mount point (`proc`), to the calling
/// thread's ids in the container's pid namespace (`tgid`, `tid`: the last
/// field of `NStgid`/`NSpid` in `/proc/PID/status`). The kernel resolves
/// procfs's `self` for whoever looks it up, and the supervisor has no pid in
/// the container's namespace: left alone, `/proc/self/...` is ENOENT for the
/// supervisor (measured on 6.18). Only the literal prefix is rewritten; a
/// symlink into /proc/self (`/etc/mtab`) still resolves for the supervisor
/// and fails that way.
pub fn rewrite_proc_self(rel: &Path, mount: &Path, tgid: u32, tid: u32) -> PathBuf {
    let Ok(below) = rel.strip_prefix(mount) else {
        return rel.to_owned();
    };
    let mut comps = below.components();
    let mut out = mount.to_path_buf();
    match comps.next() {
        Some(Component::Normal(s)) if s == "self" => out.push(tgid.to_string()),
        Some(Component::Normal(s)) if s == "thread-self" => out.push(format!("{tgid}/task/{tid}")),
        _ => return rel.to_owned(),
    }
    let rest = comps.as_path();
    if rest.as_os_str().is_empty() {
        if rel.as_os_str().as_bytes().ends_with(b"/") {
            // Keep a trailing slash: it asks for a directory.
            let mut bytes = out.into_os_string().into_vec();
            bytes.push(b'/');
            return PathBuf::from(OsString::from_vec(bytes));
        }
        return out;
    }
    out.join(rest)
}

fn cstring(rel: &Path) -> Result<CString> {
    CString::new(rel.as_os_str().as_bytes()).map_err(|_| Error::Nul {
        path: rel.display().to_string(),
    })
}

fn openat2(dirfd: BorrowedFd<'_>, path: &CString, flags: i32, mode: u32, resolve: u64) -> io::Result<OwnedFd> {
    // SAFETY: open_how is plain data (three u64); all-zero is its documented
    // "no options" value, and it is #[non_exhaustive] so it cannot be built
    // with a literal.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u32 as u64;
    // openat2 refuses a mode without O_CREAT/O_TMPFILE (EINVAL).
    if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
        how.mode = u64::from(mode & 0o7777);
    }
    how.resolve = resolve;
    loop {
        // SAFETY: dirfd is a live fd for the call's duration; path is
        // NUL-terminated and outlives the call; `how` is a valid open_how
        // and its size is passed, as the syscall requires.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel returned a fresh fd that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        }
        let e = io::Error::last_os_error();
        // EAGAIN is openat2's "a rename or mount raced the lookup, try again".
        if !matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::EAGAIN)) {
            return Err(e);
        }
    }
}

/// Open `rel` (root-relative) with the container's `flags` and `mode`,
/// resolved by the kernel inside the root: this is the fd the supervisor
/// hands in.
///
/// The kernel handles the last component too: `O_CREAT` through a dangling
/// symlink creates its target inside the root, `O_NOFOLLOW` refuses a
/// trailing symlink (`ELOOP`), `O_PATH | O_NOFOLLOW` opens the symlink
/// itself. Opening the parent and then the last name with plain `openat`
/// would not be safe without `O_NOFOLLOW`: the kernel would follow an
/// absolute symlink from the host's root. See [`open_parent`] for the calls
/// that take (dirfd, name).
pub fn open_in_root(root: &Root, rel: &Path, flags: i32, mode: u32) -> Result<OwnedFd> {
    let c = cstring(rel)?;
    let scoped = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    match openat2(root.fd.as_fd(), &c, flags, mode, scoped) {
        Ok(fd) => Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            // ELOOP is either a symlink loop or a magic link. Ask again
            // without RESOLVE_NO_MAGICLINKS, as O_PATH (no side effect on
            // the file): a scoped lookup answers EXDEV for a magic link,
            // it never follows one.
            let probe = openat2(
                root.fd.as_fd(),
                &c,
                libc::O_PATH | (flags & libc::O_NOFOLLOW),
                0,
                libc::RESOLVE_IN_ROOT,
            );
            match probe {
                Err(p) if p.raw_os_error() == Some(libc::EXDEV) => Err(Error::MagicLink {
                    path: Path::new("/").join(rel),
                }),
                _ => Err(root.io("open", rel, e)),
            }
        }
        Err(e) => Err(root.io("open", rel, e)),
    }
}

fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: stat is plain data; the kernel fills it in.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is live for the call; the path is the empty C string
    // literal with AT_EMPTY_PATH (stat the fd itself, O_PATH fds included);
    // `st` is a valid, writable stat.
    let rc = unsafe { libc::fstatat(fd.as_raw_fd(), c"".as_ptr(), &mut st, libc::AT_EMPTY_PATH) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// `stat` of `rel` inside the root; `nofollow` is `lstat`'s /
/// `AT_SYMLINK_NOFOLLOW`'s semantics for the last component.
pub fn stat_in_root(root: &Root, rel: &Path, nofollow: bool) -> Result<libc::stat> {
    let flags = libc::O_PATH | if nofollow { libc::O_NOFOLLOW } else { 0 };
    let fd = open_in_root(root, rel, flags, 0)?;
    fstat(fd.as_fd()).map_err(|e| root.io("stat", rel, e))
}

/// Resolve the path the container passed: an `O_PATH` fd of the target,
/// its container path (symlinks resolved) and file type. With `nofollow`
/// a trailing symlink is the target itself.
pub fn resolve(root: &Root, base: Base<'_>, path: &[u8], nofollow: bool) -> Result<Resolved> {
    let rel = relative_path(root, base, path)?;
    let flags = libc::O_PATH | if nofollow { libc::O_NOFOLLOW } else { 0 };
    let fd = open_in_root(root, &rel, flags, 0)?;
    let resolved = fd_container_path(root, fd.as_fd()).ok_or_else(|| Error::OutsideRoot {
        what: "resolved path",
        path: Path::new("/").join(&rel),
        root: root.path.clone(),
    })?;
    let st = fstat(fd.as_fd()).map_err(|e| root.io("stat", &rel, e))?;
    Ok(Resolved {
        fd,
        path: resolved,
        file_type: FileType::from_mode(st.st_mode),
    })
}

/// For the calls that act on a name in a directory and never follow it
/// (mkdir, mknod, unlink, rmdir, rename, link, symlink): the parent opened
/// inside the root (`O_PATH`), its container path, and the last name.
/// A last component of `.` or `..` is kept as the name, so the call fails
/// as the kernel's would (EEXIST, EINVAL, ENOTEMPTY).
pub fn open_parent(root: &Root, base: Base<'_>, path: &[u8]) -> Result<(Resolved, OsString)> {
    let rel = relative_path(root, base, path)?;
    let bytes = rel.as_os_str().as_bytes();
    let trimmed = bytes.strip_suffix(b"/").unwrap_or(bytes);
    let (parent, name) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (&b"."[..], trimmed),
    };
    let name = OsString::from_vec(name.to_vec());
    let parent = resolve(root, Base::Container(Path::new("/")), parent, false)?;
    if parent.file_type != Some(FileType::Directory) {
        return Err(root.io("open parent", &rel, io::Error::from_raw_os_error(libc::ENOTDIR)));
    }
    Ok((parent, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Fixture {
        _dir: tempfile::TempDir,
        root: Root,
    }

    /// A temp dir laid out as a rootfs: /etc/passwd, /bin/sh, /tmp, links.
    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("rootfs");
        for d in ["etc", "bin", "tmp", "home/user/app", "proc/sys/kernel", "dev"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(r.join("etc/passwd"), "root:x:0:0:container\n").unwrap();
        std::fs::write(r.join("bin/sh"), "").unwrap();
        symlink("/etc/passwd", r.join("tmp/abs")).unwrap();
        symlink("../../../../../../etc/passwd", r.join("home/user/rel")).unwrap();
        symlink("rel", r.join("home/user/chain1")).unwrap();
        symlink("/home/user/chain1", r.join("home/user/chain2")).unwrap();
        symlink("loop2", r.join("tmp/loop1")).unwrap();
        symlink("loop1", r.join("tmp/loop2")).unwrap();
        symlink("/proc/sys/kernel", r.join("tmp/tunables")).unwrap();
        symlink("/etc/created-by-link", r.join("tmp/dangling")).unwrap();
        let root = Root::open(&r).unwrap();
        Fixture { _dir: dir, root }
    }

    fn read_fd(fd: OwnedFd) -> String {
        std::io::read_to_string(std::fs::File::from(fd)).unwrap()
    }

    fn resolved_path(f: &Fixture, path: &str) -> Result<PathBuf> {
        resolve(&f.root, Base::Container(Path::new("/")), path.as_bytes(), false).map(|r| r.path)
    }

    #[test]
    fn absolute_symlink_stays_in_root() {
        let f = fixture();
        assert_eq!(resolved_path(&f, "/tmp/abs").unwrap(), Path::new("/etc/passwd"));
        let fd = open_in_root(&f.root, Path::new("tmp/abs"), libc::O_RDONLY, 0).unwrap();
        assert_eq!(read_fd(fd), "root:x:0:0:container\n");
    }

    #[test]
    fn dotdot_chains_stay_in_root() {
        let f = fixture();
        assert_eq!(
            resolved_path(&f, "../../../../etc/passwd").unwrap(),
            Path::new("/etc/passwd")
        );
        assert_eq!(
            resolved_path(&f, "/tmp/../../../../etc/./passwd").unwrap(),
            Path::new("/etc/passwd")
        );
        let rel = relative_path(&f.root, Base::Container(Path::new("/home")), b"../../../../etc/passwd").unwrap();
        let fd = open_in_root(&f.root, &rel, libc::O_RDONLY, 0).unwrap();
        assert_eq!(read_fd(fd), "root:x:0:0:container\n");
    }

    #[test]
    fn relative_symlink_chains() {
        let f = fixture();
        assert_eq!(resolved_path(&f, "/home/user/rel").unwrap(), Path::new("/etc/passwd"));
        assert_eq!(
            resolved_path(&f, "/home/user/chain2").unwrap(),
            Path::new("/etc/passwd")
        );
        // A symlink to a tunable is judged by where it lands.
        assert_eq!(
            resolved_path(&f, "/tmp/tunables").unwrap(),
            Path::new("/proc/sys/kernel")
        );
    }

    #[test]
    fn symlink_loop_is_eloop_not_a_magic_link() {
        let f = fixture();
        let e = resolved_path(&f, "/tmp/loop1").unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        assert_eq!(e.errno(), libc::ELOOP);
        assert_eq!(e.denial_rule(), None);
    }

    #[test]
    fn magic_links_are_refused() {
        // The host's own root has the real /proc: /proc/self/root and
        // /proc/self/fd/N are magic links there.
        let host = Root::open(Path::new("/")).unwrap();
        let file = std::fs::File::open("/etc/hostname")
            .or_else(|_| std::fs::File::open("/proc/version"))
            .unwrap();
        for p in [
            "/proc/self/root/etc/passwd".to_owned(),
            // What /proc/1/root is inside a container: a pid's root link
            // (pid 1 itself is not ours to look at on this host).
            format!("/proc/{}/root", std::process::id()),
            "/proc/thread-self/cwd/".to_owned(),
            format!("/proc/self/fd/{}", file.as_raw_fd()),
        ] {
            let e = resolve(&host, Base::Container(Path::new("/")), p.as_bytes(), false).unwrap_err();
            assert!(matches!(e, Error::MagicLink { .. }), "{p}: {e}");
            assert_eq!(e.denial_rule(), Some(RULE_MAGIC_LINK));
            assert_eq!(e.errno(), libc::EACCES);
        }
        // /proc/self itself is an ordinary symlink and resolves.
        let r = resolve(&host, Base::Container(Path::new("/")), b"/proc/self/status", false).unwrap();
        assert!(r.path.starts_with("/proc/"), "{:?}", r.path);
    }

    #[test]
    fn cwd_relative_paths() {
        let f = fixture();
        let cwd = f.root.path.join("home/user");
        let r = resolve(&f.root, Base::Host(&cwd), b"app/../rel", false).unwrap();
        assert_eq!(r.path, Path::new("/etc/passwd"));
        assert_eq!(r.file_type, Some(FileType::Regular));
        let r = resolve(&f.root, Base::Host(&cwd), b".", false).unwrap();
        assert_eq!(r.path, Path::new("/home/user"));
        assert_eq!(r.file_type, Some(FileType::Directory));
        // An absolute path ignores the base.
        let r = resolve(&f.root, Base::Host(&cwd), b"/bin/sh", false).unwrap();
        assert_eq!(r.path, Path::new("/bin/sh"));
    }

    #[test]
    fn base_outside_root_is_refused() {
        let f = fixture();
        let outside = f.root.path.parent().unwrap().to_owned();
        let e = resolve(&f.root, Base::Host(&outside), b"rootfs/etc/passwd", false).unwrap_err();
        assert!(matches!(e, Error::OutsideRoot { .. }), "{e}");
        assert_eq!(e.denial_rule(), Some(RULE_OUTSIDE_ROOT));
        // A sibling whose name merely starts with the root's is outside too.
        let sibling = PathBuf::from(format!("{}x", f.root.path.display()));
        assert_eq!(container_path(&f.root, &sibling), None);
        assert_eq!(container_path(&f.root, &f.root.path), Some(PathBuf::from("/")));
        assert_eq!(container_path(&f.root, Path::new("/etc")), None);
    }

    #[test]
    fn nul_is_einval_and_empty_is_enoent() {
        let f = fixture();
        let e = resolved_path(&f, "/etc/pass\0wd").unwrap_err();
        assert!(matches!(e, Error::Nul { .. }), "{e}");
        assert_eq!(e.errno(), libc::EINVAL);
        assert_eq!(resolved_path(&f, "").unwrap_err().errno(), libc::ENOENT);
    }

    #[test]
    fn o_creat_of_a_new_file() {
        let f = fixture();
        let fd = open_in_root(
            &f.root,
            Path::new("tmp/new"),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            0o640,
        )
        .unwrap();
        let st = fstat(fd.as_fd()).unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFREG);
        assert!(f.root.path.join("tmp/new").exists());
        // O_EXCL on an existing file.
        let e = open_in_root(
            &f.root,
            Path::new("tmp/new"),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            0,
        )
        .unwrap_err();
        assert_eq!(e.errno(), libc::EEXIST);
        // O_CREAT through a dangling absolute symlink creates its target in
        // the root, as the kernel does for a process chrooted there.
        open_in_root(
            &f.root,
            Path::new("tmp/dangling"),
            libc::O_WRONLY | libc::O_CREAT,
            0o600,
        )
        .unwrap();
        assert!(f.root.path.join("etc/created-by-link").exists());
    }

    #[test]
    fn nofollow_semantics() {
        let f = fixture();
        let e = open_in_root(&f.root, Path::new("tmp/abs"), libc::O_RDONLY | libc::O_NOFOLLOW, 0).unwrap_err();
        assert_eq!(e.errno(), libc::ELOOP);
        assert_eq!(e.denial_rule(), None);
        let st = stat_in_root(&f.root, Path::new("tmp/abs"), true).unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFLNK);
        let st = stat_in_root(&f.root, Path::new("tmp/abs"), false).unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFREG);
        let r = resolve(&f.root, Base::Container(Path::new("/")), b"/tmp/abs", true).unwrap();
        assert_eq!(
            (r.path.as_path(), r.file_type),
            (Path::new("/tmp/abs"), Some(FileType::Symlink))
        );
    }

    #[test]
    fn proc_self_rewritten_to_the_callers_ids() {
        let r = |p: &str| rewrite_proc_self(Path::new(p), Path::new("proc"), 7, 9);
        assert_eq!(r("proc/self/status"), Path::new("proc/7/status"));
        assert_eq!(r("proc/self"), Path::new("proc/7"));
        assert_eq!(r("proc/thread-self/comm"), Path::new("proc/7/task/9/comm"));
        assert_eq!(r("proc/self/"), Path::new("proc/7/"));
        // Path equality ignores a trailing slash; the bytes do not.
        assert_eq!(r("proc/self").as_os_str(), "proc/7");
        assert_eq!(r("proc/self/").as_os_str(), "proc/7/");
        assert_eq!(
            rewrite_proc_self(Path::new("extra-proc/self/status"), Path::new("extra-proc"), 7, 9),
            Path::new("extra-proc/7/status")
        );
        assert_eq!(r("proc/selfish"), Path::new("proc/selfish"));
        assert_eq!(r("proc/1/status"), Path::new("proc/1/status"));
        assert_eq!(r("etc/self"), Path::new("etc/self"));
        assert_eq!(r("proc"), Path::new("proc"));
    }

    #[test]
    fn parent_and_name() {
        let f = fixture();
        let (parent, name) = open_parent(&f.root, Base::Container(Path::new("/")), b"/tmp/abs").unwrap();
        assert_eq!(
            (parent.path.as_path(), name.as_os_str()),
            (Path::new("/tmp"), OsStr::new("abs"))
        );
        // The parent's own symlinks are resolved in the root.
        let (parent, name) = open_parent(&f.root, Base::Container(Path::new("/")), b"/tmp/tunables/x/").unwrap();
        assert_eq!(
            (parent.path.as_path(), name.as_os_str()),
            (Path::new("/proc/sys/kernel"), OsStr::new("x"))
        );
        let cwd = f.root.path.join("home");
        let (parent, name) = open_parent(&f.root, Base::Host(&cwd), b"newdir").unwrap();
        assert_eq!(
            (parent.path.as_path(), name.as_os_str()),
            (Path::new("/home"), OsStr::new("newdir"))
        );
        let (parent, name) = open_parent(&f.root, Base::Container(Path::new("/")), b"/").unwrap();
        assert_eq!(
            (parent.path.as_path(), name.as_os_str()),
            (Path::new("/"), OsStr::new("."))
        );
        let e = open_parent(&f.root, Base::Container(Path::new("/")), b"/etc/passwd/x").unwrap_err();
        assert_eq!(e.errno(), libc::ENOTDIR);
    }
}

/// `(st_dev, st_ino)` of what `fd` refers to.
fn identity(fd: BorrowedFd<'_>) -> io::Result<(u64, u64, bool)> {
    // SAFETY: an all-zero `stat` is a valid value of the plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is a live descriptor borrowed for the call; st is writable.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((st.st_dev, st.st_ino, st.st_mode & libc::S_IFMT == libc::S_IFDIR))
}

/// Whether the directory `dir` is `root` or beneath it, by identity: `..`
/// is walked up from `dir` (as the kernel walks it, across mounts) until
/// `root` is met or the top is. Paths would not do: a descriptor from
/// another mount namespace reads as a path of that namespace (a container's
/// root reads `/`). What is not a directory cannot be walked from, and
/// counts as beneath.
pub fn beneath(dir: BorrowedFd<'_>, root: BorrowedFd<'_>) -> io::Result<bool> {
    let (rdev, rino, _) = identity(root)?;
    let (mut dev, mut ino, is_dir) = identity(dir)?;
    if !is_dir {
        return Ok(true);
    }
    let dotdot = c"..";
    let mut cur: Option<OwnedFd> = None;
    // Deeper than any real tree; a loop guard, not a limit anyone meets.
    for _ in 0..4096 {
        if (dev, ino) == (rdev, rino) {
            return Ok(true);
        }
        let from = cur.as_ref().map_or(dir, |f| f.as_fd());
        // SAFETY: `from` is a live directory descriptor and ".." a
        // NUL-terminated string; the result is checked before it is owned.
        let raw = unsafe {
            libc::openat(
                from.as_raw_fd(),
                dotdot.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw was just returned by openat and nothing else owns it.
        let parent = unsafe { OwnedFd::from_raw_fd(raw) };
        let (pdev, pino, _) = identity(parent.as_fd())?;
        if (pdev, pino) == (dev, ino) {
            return Ok(false);
        }
        (dev, ino) = (pdev, pino);
        cur = Some(parent);
    }
    Ok(false)
}

/// Opens `path` as an `O_PATH` descriptor (following a final magic link:
/// `/proc/PID/fd/N` gives the object the process holds).
pub fn open_path(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: c is NUL-terminated; the result is checked before it is owned.
    let raw = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw was just returned by open and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

#[cfg(test)]
mod beneath_tests {
    use super::*;

    #[test]
    fn beneath_is_by_identity_and_stops_at_the_top() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("root/a/b")).unwrap();
        std::fs::create_dir_all(t.path().join("outside")).unwrap();
        let root = open_path(&t.path().join("root")).unwrap();
        let inner = open_path(&t.path().join("root/a/b")).unwrap();
        let outer = open_path(&t.path().join("outside")).unwrap();
        let top = open_path(Path::new("/")).unwrap();
        assert!(beneath(inner.as_fd(), root.as_fd()).unwrap());
        assert!(beneath(root.as_fd(), root.as_fd()).unwrap());
        assert!(!beneath(outer.as_fd(), root.as_fd()).unwrap());
        assert!(!beneath(top.as_fd(), root.as_fd()).unwrap());
        // A file cannot be walked from.
        std::fs::write(t.path().join("outside/f"), "x").unwrap();
        let file = open_path(&t.path().join("outside/f")).unwrap();
        assert!(beneath(file.as_fd(), root.as_fd()).unwrap());
    }
}
