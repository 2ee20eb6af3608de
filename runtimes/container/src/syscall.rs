//! The OS seam of the container setup: every call that changes the mount
//! table, the filesystem or the kernel's settings goes through [`Syscall`],
//! so the logic that decides which calls to make is unit-tested without root
//! against [`RecordingSyscall`] in a temporary directory, and runs for real
//! through [`LinuxSyscall`].

use std::collections::HashMap;
use std::ffi::CString;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What `stat(2)` says about a path, reduced to what the setup needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// File type bits (`S_IFMT`) and permission bits.
    pub mode: u32,
    /// The device number of a device node.
    pub rdev: u64,
    pub uid: u32,
    pub gid: u32,
}

impl Stat {
    pub fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }

    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }

    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }

    fn from_metadata(m: &std::fs::Metadata) -> Stat {
        Stat {
            mode: m.mode(),
            rdev: m.rdev(),
            uid: m.uid(),
            gid: m.gid(),
        }
    }
}

/// The calls container setup makes. Paths are as the calling process sees
/// them: host paths before the pivot, container paths after it.
pub trait Syscall: Send + Sync {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> io::Result<()>;
    fn umount2(&self, target: &Path, flags: i32) -> io::Result<()>;
    /// mount_setattr(2) with `flags` (e.g. `AT_RECURSIVE`): the recursive
    /// mount options of config.md need it (Linux 5.12).
    fn mount_setattr(
        &self,
        target: &Path,
        flags: u32,
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
    ) -> io::Result<()>;
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()>;
    fn chroot(&self, path: &Path) -> io::Result<()>;
    fn chdir(&self, path: &Path) -> io::Result<()>;
    /// mknod(2); `mode` includes the file type (`S_IFCHR`, ...).
    fn mknod(&self, path: &Path, mode: u32, dev: u64) -> io::Result<()>;
    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()>;
    fn unlink(&self, path: &Path) -> io::Result<()>;
    /// chown(2) without following a final symlink; `None` leaves an id as is.
    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()>;
    fn chmod(&self, path: &Path, mode: u32) -> io::Result<()>;
    fn mkdir_all(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// Creates an empty regular file (a bind target for a file) unless a
    /// file is already there.
    fn create_file(&self, path: &Path) -> io::Result<()>;
    fn sethostname(&self, name: &str) -> io::Result<()>;
    fn setdomainname(&self, name: &str) -> io::Result<()>;
    /// Writes an existing file (sysctls under /proc/sys); never creates one.
    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// stat(2), following symlinks.
    fn stat(&self, path: &Path) -> io::Result<Stat>;
    /// lstat(2).
    fn lstat(&self, path: &Path) -> io::Result<Stat>;
    /// The `MS_*` flags of the mount that holds `path` (from statvfs), so a
    /// bind remount keeps what it must not drop (locked flags in a user
    /// namespace, the source's nosuid).
    fn statfs_flags(&self, path: &Path) -> io::Result<libc::c_ulong>;
    /// Reads a text file (`/proc/self/mountinfo`, `/proc/self/cgroup`).
    fn read_to_string(&self, path: &Path) -> io::Result<String>;
}

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

fn check(r: libc::c_long) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The real calls, through libc.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxSyscall;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

impl Syscall for LinuxSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> io::Result<()> {
        let source = source.map(cstr).transpose()?;
        let target = cstr(target)?;
        let fstype = fstype
            .map(|s| CString::new(s).map_err(|_| io::ErrorKind::InvalidInput))
            .transpose()?;
        let data = data
            .map(|s| CString::new(s).map_err(|_| io::ErrorKind::InvalidInput))
            .transpose()?;
        let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        // SAFETY: every pointer is either null (allowed by mount(2) for
        // source, fstype and data) or a NUL-terminated string owned above
        // that outlives the call.
        let r = unsafe { libc::mount(ptr(&source), target.as_ptr(), ptr(&fstype), flags, ptr(&data).cast()) };
        check(r.into())
    }

    fn umount2(&self, target: &Path, flags: i32) -> io::Result<()> {
        let t = cstr(target)?;
        // SAFETY: `t` is a NUL-terminated string that outlives the call.
        check(unsafe { libc::umount2(t.as_ptr(), flags) }.into())
    }

    fn mount_setattr(
        &self,
        target: &Path,
        flags: u32,
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
    ) -> io::Result<()> {
        let t = cstr(target)?;
        let attr = MountAttr {
            attr_set,
            attr_clr,
            propagation,
            userns_fd: 0,
        };
        // SAFETY: the path is NUL-terminated, `attr` is a mount_attr (v0
        // layout, 32 bytes) that lives across the call and its size is
        // passed along; the kernel only reads it.
        let r = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                libc::AT_FDCWD,
                t.as_ptr(),
                flags,
                &attr as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            )
        };
        check(r)
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        let n = cstr(new_root)?;
        let o = cstr(put_old)?;
        // SAFETY: both arguments are NUL-terminated strings that outlive the
        // call; pivot_root has no libc wrapper, hence the raw syscall.
        check(unsafe { libc::syscall(libc::SYS_pivot_root, n.as_ptr(), o.as_ptr()) })
    }

    fn chroot(&self, path: &Path) -> io::Result<()> {
        let p = cstr(path)?;
        // SAFETY: `p` is a NUL-terminated string that outlives the call.
        check(unsafe { libc::chroot(p.as_ptr()) }.into())
    }

    fn chdir(&self, path: &Path) -> io::Result<()> {
        std::env::set_current_dir(path)
    }

    fn mknod(&self, path: &Path, mode: u32, dev: u64) -> io::Result<()> {
        let p = cstr(path)?;
        // SAFETY: `p` is a NUL-terminated string that outlives the call.
        check(unsafe { libc::mknod(p.as_ptr(), mode, dev) }.into())
    }

    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        std::os::unix::fs::symlink(target, link)
    }

    fn unlink(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        std::os::unix::fs::lchown(path, uid, gid)
    }

    fn chmod(&self, path: &Path, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }

    fn mkdir_all(&self, path: &Path, mode: u32) -> io::Result<()> {
        std::fs::DirBuilder::new().recursive(true).mode(mode).create(path)
    }

    fn create_file(&self, path: &Path) -> io::Result<()> {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn sethostname(&self, name: &str) -> io::Result<()> {
        // SAFETY: the pointer and length describe `name`, which outlives the
        // call; the kernel copies the bytes.
        check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }.into())
    }

    fn setdomainname(&self, name: &str) -> io::Result<()> {
        // SAFETY: as for sethostname: a borrowed buffer and its length.
        check(unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) }.into())
    }

    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).truncate(true).open(path)?;
        f.write_all(data)
    }

    fn stat(&self, path: &Path) -> io::Result<Stat> {
        std::fs::metadata(path).map(|m| Stat::from_metadata(&m))
    }

    fn lstat(&self, path: &Path) -> io::Result<Stat> {
        std::fs::symlink_metadata(path).map(|m| Stat::from_metadata(&m))
    }

    fn statfs_flags(&self, path: &Path) -> io::Result<libc::c_ulong> {
        let p = cstr(path)?;
        // SAFETY: an all-zero statvfs is a valid value to be overwritten.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `p` is NUL-terminated and `st` is a valid statvfs the
        // kernel writes into; both outlive the call.
        check(unsafe { libc::statvfs(p.as_ptr(), &mut st) }.into())?;
        let table = [
            (libc::ST_RDONLY, libc::MS_RDONLY),
            (libc::ST_NOSUID, libc::MS_NOSUID),
            (libc::ST_NODEV, libc::MS_NODEV),
            (libc::ST_NOEXEC, libc::MS_NOEXEC),
            (libc::ST_SYNCHRONOUS, libc::MS_SYNCHRONOUS),
            (libc::ST_MANDLOCK, libc::MS_MANDLOCK),
            (libc::ST_NOATIME, libc::MS_NOATIME),
            (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
            (libc::ST_RELATIME, libc::MS_RELATIME),
        ];
        Ok(table
            .iter()
            .filter(|(st_flag, _)| st.f_flag & st_flag != 0)
            .fold(0, |acc, (_, ms)| acc | ms))
    }

    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// One recorded call of [`RecordingSyscall`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Mount {
        source: Option<PathBuf>,
        target: PathBuf,
        fstype: Option<String>,
        flags: libc::c_ulong,
        data: Option<String>,
    },
    Umount2 {
        target: PathBuf,
        flags: i32,
    },
    MountSetattr {
        target: PathBuf,
        flags: u32,
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
    },
    PivotRoot {
        new_root: PathBuf,
        put_old: PathBuf,
    },
    Chroot(PathBuf),
    Chdir(PathBuf),
    Mknod {
        path: PathBuf,
        mode: u32,
        dev: u64,
    },
    Symlink {
        target: PathBuf,
        link: PathBuf,
    },
    Unlink(PathBuf),
    Chown {
        path: PathBuf,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    Chmod {
        path: PathBuf,
        mode: u32,
    },
    MkdirAll {
        path: PathBuf,
        mode: u32,
    },
    CreateFile(PathBuf),
    Sethostname(String),
    Setdomainname(String),
    WriteFile {
        path: PathBuf,
        data: Vec<u8>,
    },
}

impl Call {
    /// The call's name, as [`RecordingSyscall::fail_on`] takes it.
    pub fn kind(&self) -> &'static str {
        match self {
            Call::Mount { .. } => "mount",
            Call::Umount2 { .. } => "umount2",
            Call::MountSetattr { .. } => "mount_setattr",
            Call::PivotRoot { .. } => "pivot_root",
            Call::Chroot(_) => "chroot",
            Call::Chdir(_) => "chdir",
            Call::Mknod { .. } => "mknod",
            Call::Symlink { .. } => "symlink",
            Call::Unlink(_) => "unlink",
            Call::Chown { .. } => "chown",
            Call::Chmod { .. } => "chmod",
            Call::MkdirAll { .. } => "mkdir_all",
            Call::CreateFile(_) => "create_file",
            Call::Sethostname(_) => "sethostname",
            Call::Setdomainname(_) => "setdomainname",
            Call::WriteFile { .. } => "write_file",
        }
    }

    /// The path the call acts on, if it has one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Call::Mount { target, .. }
            | Call::Umount2 { target, .. }
            | Call::MountSetattr { target, .. }
            | Call::PivotRoot { new_root: target, .. }
            | Call::Chroot(target)
            | Call::Chdir(target)
            | Call::Mknod { path: target, .. }
            | Call::Symlink { link: target, .. }
            | Call::Unlink(target)
            | Call::Chown { path: target, .. }
            | Call::Chmod { path: target, .. }
            | Call::MkdirAll { path: target, .. }
            | Call::CreateFile(target)
            | Call::WriteFile { path: target, .. } => Some(target),
            Call::Sethostname(_) | Call::Setdomainname(_) => None,
        }
    }
}

/// A [`Syscall`] for unit tests: records every call. Directory, file and
/// symlink creation (and removal) happen for real, but only inside `root`
/// (a temporary directory), so the setup logic that inspects the tree it
/// built sees it; mounts, pivot_root, mknod, chown, chmod and writes are
/// only recorded. After a recorded `pivot_root` or `chroot`, absolute paths
/// are taken as container paths and mapped under the new root, the way the
/// kernel would see them.
#[derive(Debug)]
pub struct RecordingSyscall {
    pub calls: Mutex<Vec<Call>>,
    root: PathBuf,
    cwd: Mutex<PathBuf>,
    /// The host directory that became `/`, once pivoted.
    container_root: Mutex<Option<PathBuf>>,
    /// Injected failures: (call kind, path, errno).
    failures: Mutex<Vec<(String, PathBuf, i32)>>,
    /// Fake contents for `read_to_string` and fake mount flags for
    /// `statfs_flags`, by path.
    files: Mutex<HashMap<PathBuf, String>>,
    flags: Mutex<HashMap<PathBuf, libc::c_ulong>>,
}

impl RecordingSyscall {
    pub fn new(root: &Path) -> Self {
        RecordingSyscall {
            calls: Mutex::new(Vec::new()),
            root: root.to_path_buf(),
            cwd: Mutex::new(PathBuf::from("/")),
            container_root: Mutex::new(None),
            failures: Mutex::new(Vec::new()),
            files: Mutex::new(HashMap::new()),
            flags: Mutex::new(HashMap::new()),
        }
    }

    /// Makes the call `kind` on `path` fail with `errno` (it is still
    /// recorded).
    pub fn fail_on(&self, kind: &str, path: &Path, errno: i32) {
        self.failures
            .lock()
            .unwrap()
            .push((kind.into(), path.to_path_buf(), errno));
    }

    /// What `read_to_string(path)` returns.
    pub fn set_file(&self, path: &Path, text: &str) {
        self.files.lock().unwrap().insert(path.to_path_buf(), text.into());
    }

    /// What `statfs_flags(path)` returns (default 0).
    pub fn set_mount_flags(&self, path: &Path, flags: libc::c_ulong) {
        self.flags.lock().unwrap().insert(path.to_path_buf(), flags);
    }

    /// A copy of the calls so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, c: Call) -> io::Result<()> {
        let failure = {
            let f = self.failures.lock().unwrap();
            f.iter()
                .find(|(k, p, _)| k == c.kind() && c.path() == Some(p.as_path()))
                .map(|(_, _, e)| *e)
        };
        self.calls.lock().unwrap().push(c);
        match failure {
            Some(e) => Err(io::Error::from_raw_os_error(e)),
            None => Ok(()),
        }
    }

    /// Where `path` is on the host, if inside the temporary root.
    fn real(&self, path: &Path) -> Option<PathBuf> {
        let p = if let Some(cr) = self.container_root.lock().unwrap().as_ref() {
            let rel = if path.is_absolute() {
                path.strip_prefix("/").unwrap_or(path).to_path_buf()
            } else {
                self.cwd
                    .lock()
                    .unwrap()
                    .strip_prefix("/")
                    .unwrap_or(Path::new(""))
                    .join(path)
            };
            cr.join(rel)
        } else {
            path.to_path_buf()
        };
        p.starts_with(&self.root).then_some(p)
    }

    /// Where to look for `path`: inspecting is harmless, so before the
    /// pivot any host path (a bind source like /dev); after it, the
    /// container's.
    fn inspected(&self, path: &Path) -> PathBuf {
        match self.container_root.lock().unwrap().as_ref() {
            Some(cr) if path.is_absolute() => cr.join(path.strip_prefix("/").unwrap_or(path)),
            Some(cr) => cr
                .join(self.cwd.lock().unwrap().strip_prefix("/").unwrap_or(Path::new("")))
                .join(path),
            None => path.to_path_buf(),
        }
    }

    fn outside(path: &Path) -> io::Error {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is outside the recording root", path.display()),
        )
    }
}

impl Syscall for RecordingSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> io::Result<()> {
        self.record(Call::Mount {
            source: source.map(Path::to_path_buf),
            target: target.to_path_buf(),
            fstype: fstype.map(str::to_string),
            flags,
            data: data.map(str::to_string),
        })
    }

    fn umount2(&self, target: &Path, flags: i32) -> io::Result<()> {
        self.record(Call::Umount2 {
            target: target.to_path_buf(),
            flags,
        })
    }

    fn mount_setattr(
        &self,
        target: &Path,
        flags: u32,
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
    ) -> io::Result<()> {
        self.record(Call::MountSetattr {
            target: target.to_path_buf(),
            flags,
            attr_set,
            attr_clr,
            propagation,
        })
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        self.record(Call::PivotRoot {
            new_root: new_root.to_path_buf(),
            put_old: put_old.to_path_buf(),
        })?;
        let cwd = self.cwd.lock().unwrap().clone();
        let host = if new_root == Path::new(".") {
            cwd
        } else {
            new_root.to_path_buf()
        };
        *self.container_root.lock().unwrap() = Some(host);
        *self.cwd.lock().unwrap() = PathBuf::from("/");
        Ok(())
    }

    fn chroot(&self, path: &Path) -> io::Result<()> {
        self.record(Call::Chroot(path.to_path_buf()))?;
        let cwd = self.cwd.lock().unwrap().clone();
        let host = if path == Path::new(".") {
            cwd
        } else {
            path.to_path_buf()
        };
        *self.container_root.lock().unwrap() = Some(host);
        *self.cwd.lock().unwrap() = PathBuf::from("/");
        Ok(())
    }

    fn chdir(&self, path: &Path) -> io::Result<()> {
        self.record(Call::Chdir(path.to_path_buf()))?;
        let mut cwd = self.cwd.lock().unwrap();
        *cwd = cwd.join(path);
        Ok(())
    }

    fn mknod(&self, path: &Path, mode: u32, dev: u64) -> io::Result<()> {
        self.record(Call::Mknod {
            path: path.to_path_buf(),
            mode,
            dev,
        })
    }

    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        self.record(Call::Symlink {
            target: target.to_path_buf(),
            link: link.to_path_buf(),
        })?;
        let real = self.real(link).ok_or_else(|| Self::outside(link))?;
        std::os::unix::fs::symlink(target, real)
    }

    fn unlink(&self, path: &Path) -> io::Result<()> {
        self.record(Call::Unlink(path.to_path_buf()))?;
        let real = self.real(path).ok_or_else(|| Self::outside(path))?;
        std::fs::remove_file(real)
    }

    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        self.record(Call::Chown {
            path: path.to_path_buf(),
            uid,
            gid,
        })
    }

    fn chmod(&self, path: &Path, mode: u32) -> io::Result<()> {
        self.record(Call::Chmod {
            path: path.to_path_buf(),
            mode,
        })
    }

    fn mkdir_all(&self, path: &Path, mode: u32) -> io::Result<()> {
        self.record(Call::MkdirAll {
            path: path.to_path_buf(),
            mode,
        })?;
        let real = self.real(path).ok_or_else(|| Self::outside(path))?;
        std::fs::create_dir_all(real)
    }

    fn create_file(&self, path: &Path) -> io::Result<()> {
        self.record(Call::CreateFile(path.to_path_buf()))?;
        let real = self.real(path).ok_or_else(|| Self::outside(path))?;
        LinuxSyscall.create_file(&real)
    }

    fn sethostname(&self, name: &str) -> io::Result<()> {
        self.record(Call::Sethostname(name.into()))
    }

    fn setdomainname(&self, name: &str) -> io::Result<()> {
        self.record(Call::Setdomainname(name.into()))
    }

    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.record(Call::WriteFile {
            path: path.to_path_buf(),
            data: data.to_vec(),
        })
    }

    fn stat(&self, path: &Path) -> io::Result<Stat> {
        LinuxSyscall.stat(&self.inspected(path))
    }

    fn lstat(&self, path: &Path) -> io::Result<Stat> {
        LinuxSyscall.lstat(&self.inspected(path))
    }

    fn statfs_flags(&self, path: &Path) -> io::Result<libc::c_ulong> {
        Ok(self.flags.lock().unwrap().get(path).copied().unwrap_or(0))
    }

    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        self.files
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_creates_only_inside_its_root() {
        let t = tempfile::tempdir().unwrap();
        let s = RecordingSyscall::new(t.path());
        s.mkdir_all(&t.path().join("a/b"), 0o755).unwrap();
        assert!(t.path().join("a/b").is_dir());
        let e = s.mkdir_all(Path::new("/definitely-not-here"), 0o755).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(!Path::new("/definitely-not-here").exists());
        s.mount(None, Path::new("/x"), Some("tmpfs"), 0, None).unwrap();
        assert_eq!(s.calls().len(), 3);
    }

    #[test]
    fn recording_maps_container_paths_after_pivot() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let s = RecordingSyscall::new(t.path());
        s.chdir(&root).unwrap();
        s.pivot_root(Path::new("."), Path::new(".")).unwrap();
        assert!(s.stat(Path::new("/etc")).unwrap().is_dir());
        s.create_file(Path::new("/etc/hosts")).unwrap();
        assert!(root.join("etc/hosts").is_file());
    }

    #[test]
    fn injected_failures_carry_the_errno() {
        let t = tempfile::tempdir().unwrap();
        let s = RecordingSyscall::new(t.path());
        s.fail_on("mount", Path::new("/dev"), libc::EPERM);
        let e = s.mount(None, Path::new("/dev"), None, 0, None).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        s.mount(None, Path::new("/proc"), None, 0, None).unwrap();
    }

    #[test]
    fn real_statfs_flags_match_mountinfo() {
        // The read-only and nosuid bits of / agree with its mountinfo line.
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = info.lines().find(|l| l.split(' ').nth(4) == Some("/")).unwrap();
        let opts: Vec<&str> = line.split(' ').nth(5).unwrap().split(',').collect();
        let f = LinuxSyscall.statfs_flags(Path::new("/")).unwrap();
        assert_eq!(f & libc::MS_RDONLY != 0, opts.contains(&"ro"), "{line}: {f:#x}");
        assert_eq!(f & libc::MS_NOSUID != 0, opts.contains(&"nosuid"), "{line}: {f:#x}");
    }
}
