//! What PID 1 does before it can serve: the root made pivotable, the
//! filesystems mounted, the modules loaded, the agent's port found.

use std::ffi::CString;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::proto;
use crate::vm::initramfs::GUEST_MODULE_ORDER;

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL in a fixed path")
}

fn errno_msg(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

pub fn mount(
    src: &str,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), String> {
    let (s, t) = (cstr(src), cstr(target));
    let f = fstype.map(cstr);
    let d = data.map(cstr);
    // SAFETY: every pointer is a NUL-terminated string alive for the call,
    // or null where mount(2) allows it (fstype and data).
    let r = unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            f.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            flags,
            d.as_ref().map_or(std::ptr::null(), |c| c.as_ptr().cast()),
        )
    };
    if r != 0 {
        return Err(errno_msg(&format!(
            "mount {src} on {target} ({})",
            fstype.unwrap_or("bind/move")
        )));
    }
    Ok(())
}

/// The initramfs is the rootfs mount, which has no parent: pivot_root(2)
/// refuses it (EINVAL), and the container runtime needs pivot_root. A bind
/// of `/` moved over `/` gives a root that is an ordinary mount.
pub fn pivotable_root() -> Result<(), String> {
    mount("/", "/mnt", None, libc::MS_BIND | libc::MS_REC, None)?;
    std::env::set_current_dir("/mnt").map_err(|e| format!("chdir /mnt: {e}"))?;
    mount(".", "/", None, libc::MS_MOVE, None)?;
    let dot = cstr(".");
    // SAFETY: a NUL-terminated path alive for the call.
    if unsafe { libc::chroot(dot.as_ptr()) } != 0 {
        return Err(errno_msg("chroot to the moved root"));
    }
    std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))
}

/// The filesystems the container runtime expects a Linux host to have,
/// with cgroup v2 alone (no hybrid) at /sys/fs/cgroup.
pub fn mount_filesystems() -> Result<(), String> {
    let nosuid_nodev_noexec = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount("proc", "/proc", Some("proc"), nosuid_nodev_noexec, None)?;
    mount("sysfs", "/sys", Some("sysfs"), nosuid_nodev_noexec, None)?;
    mount("devtmpfs", "/dev", Some("devtmpfs"), libc::MS_NOSUID, Some("mode=0755"))?;
    for d in ["/dev/pts", "/dev/shm"] {
        fs::create_dir_all(d).map_err(|e| format!("mkdir {d}: {e}"))?;
    }
    mount(
        "devpts",
        "/dev/pts",
        Some("devpts"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    // devtmpfs's /dev/ptmx is the initial instance's; the runtime's
    // terminals come from this one.
    let _ = fs::remove_file("/dev/ptmx");
    std::os::unix::fs::symlink("pts/ptmx", "/dev/ptmx").map_err(|e| format!("symlink /dev/ptmx: {e}"))?;
    mount(
        "shm",
        "/dev/shm",
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("mode=1777"),
    )?;
    mount("cgroup2", "/sys/fs/cgroup", Some("cgroup2"), nosuid_nodev_noexec, None)?;
    mount(
        "tmpfs",
        "/tmp",
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("mode=1777"),
    )?;
    enable_controllers(Path::new("/sys/fs/cgroup"))
}

/// Every controller the root offers, enabled for its children (the
/// container's cgroup), one at a time so one refusal does not hide the
/// rest.
pub fn enable_controllers(root: &Path) -> Result<(), String> {
    let offered = fs::read_to_string(root.join("cgroup.controllers"))
        .map_err(|e| format!("reading {}/cgroup.controllers: {e}", root.display()))?;
    let control = root.join("cgroup.subtree_control");
    let mut refused = Vec::new();
    for c in offered.split_whitespace() {
        if fs::write(&control, format!("+{c}")).is_err() {
            refused.push(c);
        }
    }
    if !refused.is_empty() {
        // Not fatal: a container that asks for that controller fails with
        // the runtime's own error; say it on the console.
        eprintln!("virtualized agent: could not enable cgroup controllers {refused:?}");
    }
    Ok(())
}

/// Loads the modules listed in the base archive, in order. Already loaded
/// (EEXIST) is fine.
pub fn load_modules(order_file: &Path) -> Result<(), String> {
    let list = match fs::read_to_string(order_file) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("reading {}: {e}", order_file.display())),
    };
    for m in list.lines().filter(|l| !l.trim().is_empty()) {
        let f = fs::File::open(m).map_err(|e| format!("opening module {m}: {e}"))?;
        let compressed = [".xz", ".zst", ".gz"].iter().any(|x| m.ends_with(x));
        // MODULE_INIT_COMPRESSED_FILE: the kernel decompresses it.
        let flags = if compressed { 4 } else { 0 };
        let params = cstr("");
        // SAFETY: finit_module(2) on an open descriptor with a
        // NUL-terminated (empty) parameter string alive for the call.
        let r = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), params.as_ptr(), flags) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(format!("loading module {m}: {e}"));
            }
        }
    }
    Ok(())
}

pub fn default_module_order() -> PathBuf {
    PathBuf::from(GUEST_MODULE_ORDER)
}

/// The device of the virtio-serial port named `name`, found under
/// `class_dir` (/sys/class/virtio-ports) once the driver has probed it.
pub fn find_port(class_dir: &Path, dev_dir: &Path, name: &str, timeout: Duration) -> Result<PathBuf, String> {
    let t = Instant::now();
    loop {
        if let Ok(entries) = fs::read_dir(class_dir) {
            for e in entries.flatten() {
                let n = fs::read_to_string(e.path().join("name")).unwrap_or_default();
                if n.trim_end() == name {
                    let dev = dev_dir.join(e.file_name());
                    if dev.exists() {
                        return Ok(dev);
                    }
                }
            }
        }
        if t.elapsed() > timeout {
            return Err(format!(
                "no virtio port named {name} under {} after {} ms",
                class_dir.display(),
                timeout.as_millis()
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The guest's uptime in milliseconds (CLOCK_BOOTTIME).
pub fn uptime_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

pub fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The default port lookup.
pub fn agent_port() -> Result<PathBuf, String> {
    find_port(
        Path::new("/sys/class/virtio-ports"),
        Path::new("/dev"),
        proto::PORT_NAME,
        Duration::from_secs(10),
    )
}

/// Unpacks a newc archive under `root` (directories before what they
/// hold, as the writer orders them): what the kernel does with the
/// initramfs, for a bundle that came over the channel.
pub fn unpack(archive: &[u8], root: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    for e in crate::vm::cpio::parse(archive)? {
        if e.name.split('/').any(|c| c == "..") {
            return Err(format!("unpack: {} leaves the root", e.name));
        }
        let path = root.join(e.name);
        let err = |what: &str, x: std::io::Error| format!("unpack: {what} {}: {x}", path.display());
        let perm = e.mode & 0o7777;
        match e.mode & libc::S_IFMT {
            libc::S_IFDIR => {
                fs::create_dir_all(&path).map_err(|x| err("mkdir", x))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(perm)).map_err(|x| err("chmod", x))?;
            }
            libc::S_IFREG => {
                fs::write(&path, e.data).map_err(|x| err("writing", x))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(perm)).map_err(|x| err("chmod", x))?;
            }
            libc::S_IFLNK => {
                let target = std::ffi::OsStr::from_bytes(e.data);
                std::os::unix::fs::symlink(target, &path).map_err(|x| err("symlink", x))?;
            }
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
                let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| format!("unpack: NUL in {}", e.name))?;
                let dev = libc::makedev(e.rdev.0, e.rdev.1);
                // SAFETY: a NUL-terminated path alive for the call.
                if unsafe { libc::mknod(c.as_ptr(), e.mode, dev) } != 0 {
                    return Err(errno_msg(&format!("unpack: mknod {}", path.display())));
                }
            }
            _ => continue,
        }
        // Ownership as packed; only root may give files away (the agent is
        // root; an unprivileged test keeps its own).
        if let Err(x) = std::os::unix::fs::lchown(&path, Some(e.uid), Some(e.gid)) {
            if x.raw_os_error() != Some(libc::EPERM) {
                return Err(err("chown", x));
            }
        }
    }
    Ok(())
}

/// Sets the guest's wall clock (a restored template's stopped when it was
/// saved).
pub fn set_realtime(ns: u64) -> Result<(), String> {
    let ts = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: a valid timespec for the call.
    if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) } != 0 {
        return Err(errno_msg("clock_settime"));
    }
    Ok(())
}

/// Mixes `seed` (the host's randomness) into the guest's pool, credited,
/// and reseeds the generator at once: clones of one template would
/// otherwise share their random streams.
pub fn add_entropy(seed: &[u8]) -> Result<(), String> {
    // RNDADDENTROPY = _IOW('R', 0x03, int[2]); RNDRESEEDCRNG = _IO('R', 0x07).
    const RNDADDENTROPY: libc::c_ulong = 0x4008_5203;
    const RNDRESEEDCRNG: libc::c_ulong = 0x5207;
    if seed.is_empty() {
        return Ok(());
    }
    // struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
    let mut info = Vec::with_capacity(8 + seed.len());
    info.extend(((seed.len() * 8) as i32).to_ne_bytes());
    info.extend((seed.len() as i32).to_ne_bytes());
    info.extend_from_slice(seed);
    // Keep the buffer 4-aligned for the kernel's view of it as u32s.
    let words: Vec<u32> = info
        .chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_ne_bytes(w)
        })
        .collect();
    let f = fs::OpenOptions::new()
        .write(true)
        .open("/dev/urandom")
        .map_err(|e| format!("opening /dev/urandom: {e}"))?;
    // SAFETY: RNDADDENTROPY reads a rand_pool_info whose buf_size bytes
    // follow its two ints, all inside `words`, alive for the call.
    if unsafe { libc::ioctl(f.as_raw_fd(), RNDADDENTROPY, words.as_ptr()) } != 0 {
        return Err(errno_msg("RNDADDENTROPY"));
    }
    // SAFETY: RNDRESEEDCRNG takes no argument.
    if unsafe { libc::ioctl(f.as_raw_fd(), RNDRESEEDCRNG) } != 0 {
        return Err(errno_msg("RNDRESEEDCRNG"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_found_by_name_not_by_number() {
        let t = tempfile::tempdir().unwrap();
        let class = t.path().join("class");
        let dev = t.path().join("dev");
        for (p, n) in [("vport0p0", "other"), ("vport0p1", proto::PORT_NAME)] {
            fs::create_dir_all(class.join(p)).unwrap();
            fs::write(class.join(p).join("name"), format!("{n}\n")).unwrap();
        }
        fs::create_dir_all(&dev).unwrap();
        fs::write(dev.join("vport0p0"), b"").unwrap();
        fs::write(dev.join("vport0p1"), b"").unwrap();
        let got = find_port(&class, &dev, proto::PORT_NAME, Duration::from_millis(50)).unwrap();
        assert_eq!(got, dev.join("vport0p1"));
        let e = find_port(&class, &dev, "absent", Duration::from_millis(10)).unwrap_err();
        assert!(e.contains("absent"), "{e}");
    }

    #[test]
    fn controllers_are_enabled_one_by_one() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        enable_controllers(t.path()).unwrap();
        // A plain file keeps the last write: the last controller offered.
        assert_eq!(
            fs::read_to_string(t.path().join("cgroup.subtree_control")).unwrap(),
            "+pids"
        );
    }

    #[test]
    fn no_module_list_means_nothing_to_load() {
        let t = tempfile::tempdir().unwrap();
        load_modules(&t.path().join("none")).unwrap();
        fs::write(t.path().join("order"), "/no/such/module.ko\n").unwrap();
        assert!(load_modules(&t.path().join("order"))
            .unwrap_err()
            .contains("/no/such/module.ko"));
    }

    #[test]
    fn an_archive_unpacks_with_its_types_and_modes() {
        use crate::vm::cpio::{Meta, Writer};
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let mut w = Writer::new(Vec::new());
        w.dir("run/bundle", Meta::new(libc::S_IFDIR | 0o750)).unwrap();
        w.dir("run/bundle/rootfs", Meta::new(libc::S_IFDIR | 0o755)).unwrap();
        w.bytes("run/bundle/rootfs/tool", Meta::new(libc::S_IFREG | 0o751), b"#!x")
            .unwrap();
        w.symlink("run/bundle/rootfs/t", Meta::new(libc::S_IFLNK | 0o777), b"tool")
            .unwrap();
        w.special("run/bundle/rootfs/fifo", Meta::new(libc::S_IFIFO | 0o600), (0, 0))
            .unwrap();
        let a = w.finish().unwrap();
        unpack(&a, t.path()).unwrap();
        let b = t.path().join("run/bundle");
        assert_eq!(fs::metadata(&b).unwrap().permissions().mode() & 0o7777, 0o750);
        assert_eq!(fs::read(b.join("rootfs/tool")).unwrap(), b"#!x");
        assert_eq!(
            fs::metadata(b.join("rootfs/tool")).unwrap().permissions().mode() & 0o7777,
            0o751
        );
        assert_eq!(fs::read_link(b.join("rootfs/t")).unwrap(), Path::new("tool"));
        use std::os::unix::fs::FileTypeExt;
        assert!(fs::symlink_metadata(b.join("rootfs/fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        let mut evil = Writer::new(Vec::new());
        evil.bytes("run/../../x", Meta::new(libc::S_IFREG | 0o644), b"")
            .unwrap();
        assert!(unpack(&evil.finish().unwrap(), t.path())
            .unwrap_err()
            .contains("leaves the root"));
    }
}
