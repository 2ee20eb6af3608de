//! Resolution against a real container-shaped process: a child in its own
//! mount namespace that has pivot_root'ed into a temp rootfs, as the
//! runtime's init does. Needs root (CLONE_NEWNS, mount, pivot_root); skips
//! otherwise.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use sandboxed::resolve::{resolve, Base, Root};

struct Child(libc::pid_t);

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: kill and waitpid take no pointers but a null status; the
        // pid is our own child, not yet reaped.
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, std::ptr::null_mut(), 0);
        }
    }
}

/// Fork a child that enters a new mount namespace, pivots into `rootfs`,
/// mounts a tmpfs on /mnt (a mount only its namespace sees), chdirs to `cwd`
/// (a container path) and waits to be killed.
fn spawn_container(rootfs: &Path, cwd: &str) -> Child {
    let c = |s: &str| CString::new(s).unwrap();
    let (slash, rootfs_c, dot, old, cwd_c) = (c("/"), c(rootfs.to_str().unwrap()), c("."), c("old"), c(cwd));
    let (tmpfs, mnt) = (c("tmpfs"), c("/mnt"));
    let mut fds = [0; 2];
    // SAFETY: `fds` is a writable array of two ints, as pipe2 requires.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 returned two fresh fds that nothing else owns.
    let (mut ready, write_end) = unsafe { (std::fs::File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the child only makes raw syscalls on strings built before the
    // fork (no allocation, no locks) and ends with _exit or is killed.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: as above: async-signal-safe calls on live C strings.
        unsafe {
            use std::os::fd::AsRawFd;
            let ok = libc::unshare(libc::CLONE_NEWNS) == 0
                && libc::mount(
                    std::ptr::null(),
                    slash.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) == 0
                && libc::mount(
                    rootfs_c.as_ptr(),
                    rootfs_c.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ) == 0
                && libc::chdir(rootfs_c.as_ptr()) == 0
                && libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), old.as_ptr()) == 0
                && libc::umount2(old.as_ptr(), libc::MNT_DETACH) == 0
                && libc::mount(tmpfs.as_ptr(), mnt.as_ptr(), tmpfs.as_ptr(), 0, std::ptr::null()) == 0
                && libc::chdir(cwd_c.as_ptr()) == 0;
            let byte: u8 = if ok { b'1' } else { b'0' };
            libc::write(write_end.as_raw_fd(), (&byte as *const u8).cast(), 1);
            loop {
                libc::pause();
            }
        }
    }
    drop(write_end);
    let child = Child(pid);
    let mut byte = [0u8];
    ready.read_exact(&mut byte).unwrap();
    assert_eq!(&byte, b"1", "child could not set up its root");
    child
}

#[test]
fn resolves_in_a_pivoted_container_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root (mount namespace, pivot_root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    for d in ["etc", "old", "srv/app", "mnt"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::write(rootfs.join("etc/passwd"), "container\n").unwrap();
    symlink("/etc/passwd", rootfs.join("srv/app/abs")).unwrap();
    let child = spawn_container(&rootfs, "/srv/app");

    let root = Root::of_process(child.0 as u32).unwrap();
    // The kernel names the child's cwd from the child's root.
    let cwd = std::fs::read_link(format!("/proc/{}/cwd", child.0)).unwrap();
    assert_eq!(cwd, Path::new("/srv/app"));

    for (path, want) in [
        ("abs", "/etc/passwd"),
        ("../../../../etc/passwd", "/etc/passwd"),
        ("/etc/passwd", "/etc/passwd"),
        (".", "/srv/app"),
    ] {
        let r = resolve(&root, Base::Host(&cwd), path.as_bytes(), false).unwrap();
        assert_eq!(r.path, PathBuf::from(want), "{path}");
    }
    let fd = sandboxed::resolve::open_in_root(&root, Path::new("srv/app/abs"), libc::O_RDONLY, 0).unwrap();
    assert_eq!(std::io::read_to_string(std::fs::File::from(fd)).unwrap(), "container\n");

    // Lookups traverse the container's mounts, not the host's view of the
    // rootfs directory: /mnt is the child's tmpfs.
    let dev = |p: &str| {
        sandboxed::resolve::stat_in_root(&root, Path::new(p), false)
            .unwrap()
            .st_dev
    };
    assert_ne!(dev("mnt"), dev("etc"));
    let host_dev = |p: &str| std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(rootfs.join(p)).unwrap());
    assert_eq!(host_dev("mnt"), host_dev("etc"));
}
