//! The container's filesystem view (config.md Root and Mounts;
//! config-linux.md Default Filesystems, Devices, Default Devices,
//! rootfsPropagation, maskedPaths, readonlyPaths, mountLabel, sysctl;
//! runtime-linux.md Dev symbolic links), in three steps run by the init in
//! its new mount namespace:
//!
//! 1. [`prepare`], before pivot_root: propagation of `/`, the rootfs bound
//!    onto itself, the spec's mounts in order, the devices and /dev links.
//!    Paths are host paths; every container path is resolved inside the
//!    rootfs with [`secure_join`].
//! 2. [`pivot`]: the rootfs becomes `/`.
//! 3. [`finalize`], after it: hostname, sysctls, readonlyPaths,
//!    maskedPaths, a read-only root. Paths are container paths.
//!
//! [`setup_console`] binds the terminal onto /dev/console, after the pivot.
//! Every effect goes through the [`Syscall`] seam.

mod options;
mod path;

use std::io;
use std::path::{Path, PathBuf};

use libc::c_ulong;
use oci_spec::runtime::{LinuxDeviceType, LinuxNamespaceType, Mount, Spec};

pub use options::{parse as parse_options, MountOptions};
pub use path::secure_join;

use crate::syscall::Syscall;
use options::BIND_REMOUNTABLE;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config value this module cannot honour; names the field.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A call that failed; `what` names the field and the step.
    #[error("{what}: {}", errno_text(.source))]
    Os { what: String, source: io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn os(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Os { what, source }
}

/// The errno's name (what people grep for), or the error's own text.
fn errno_text(e: &io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(libc::EPERM) => "EPERM",
        Some(libc::ENOENT) => "ENOENT",
        Some(libc::EIO) => "EIO",
        Some(libc::EBADF) => "EBADF",
        Some(libc::EACCES) => "EACCES",
        Some(libc::EBUSY) => "EBUSY",
        Some(libc::EEXIST) => "EEXIST",
        Some(libc::ENODEV) => "ENODEV",
        Some(libc::ENOTDIR) => "ENOTDIR",
        Some(libc::EISDIR) => "EISDIR",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::ENOSPC) => "ENOSPC",
        Some(libc::EROFS) => "EROFS",
        Some(libc::ELOOP) => "ELOOP",
        Some(libc::ENAMETOOLONG) => "ENAMETOOLONG",
        Some(libc::ENOSYS) => "ENOSYS",
        Some(libc::EOPNOTSUPP) => "EOPNOTSUPP",
        _ => return e.to_string(),
    };
    name.to_string()
}

fn is_not_found(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR))
}

/// What [`prepare`] works from.
#[derive(Debug, Clone)]
pub struct RootfsConfig<'a> {
    pub spec: &'a Spec,
    /// The rootfs as an absolute host path.
    pub rootfs: PathBuf,
    /// The bundle: relative bind-mount sources are relative to it.
    pub bundle: PathBuf,
    /// The container is in a user namespace, where mknod(2) of devices is
    /// refused: default devices are bind-mounted from the host instead.
    pub userns: bool,
    /// The container has a cgroup namespace: cgroup filesystems are mounted
    /// fresh (showing its own subtree) rather than bound from the host.
    pub cgroupns: bool,
    /// Owner of the default device nodes, as the calling process sees ids:
    /// the container's root. The init runs inside the user namespace, where
    /// that is 0:0; a caller outside it passes the mapped host ids.
    pub owner: (u32, u32),
    /// SELinux is enabled, so `linux.mountLabel` applies; without it the
    /// label could only make mounts fail.
    pub selinux: bool,
}

impl<'a> RootfsConfig<'a> {
    pub fn new(spec: &'a Spec, rootfs: &Path, bundle: &Path) -> Self {
        RootfsConfig {
            spec,
            rootfs: rootfs.to_path_buf(),
            bundle: bundle.to_path_buf(),
            userns: has_namespace(spec, LinuxNamespaceType::User),
            cgroupns: has_namespace(spec, LinuxNamespaceType::Cgroup),
            owner: (0, 0),
            selinux: Path::new("/sys/fs/selinux/enforce").exists(),
        }
    }
}

fn has_namespace(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == t))
}

/// `linux.rootfsPropagation` as (flags for `/` before the pivot, flags for
/// the new `/` after it). Before the pivot the whole tree is changed
/// recursively so that nothing mounted in the container propagates back to
/// the host; the default is rslave (host mounts still show up, as with
/// runc). `unbindable` is private before the pivot, since the rootfs must
/// still be bound onto itself.
fn root_propagation(v: Option<&str>) -> Result<(c_ulong, Option<c_ulong>)> {
    use libc::{MS_PRIVATE, MS_REC, MS_SHARED, MS_SLAVE, MS_UNBINDABLE};
    Ok(match v {
        None | Some("") => (MS_SLAVE | MS_REC, None),
        Some("shared") => (MS_SHARED | MS_REC, Some(MS_SHARED)),
        Some("rshared") => (MS_SHARED | MS_REC, Some(MS_SHARED | MS_REC)),
        Some("slave") => (MS_SLAVE | MS_REC, Some(MS_SLAVE)),
        Some("rslave") => (MS_SLAVE | MS_REC, Some(MS_SLAVE | MS_REC)),
        Some("private") => (MS_PRIVATE | MS_REC, Some(MS_PRIVATE)),
        Some("rprivate") => (MS_PRIVATE | MS_REC, Some(MS_PRIVATE | MS_REC)),
        Some("unbindable") => (MS_PRIVATE | MS_REC, Some(MS_UNBINDABLE)),
        Some("runbindable") => (MS_PRIVATE | MS_REC, Some(MS_UNBINDABLE | MS_REC)),
        Some(other) => {
            return Err(invalid(
                "linux.rootfsPropagation",
                format!("unknown {other:?} (shared, slave, private or unbindable)"),
            ))
        }
    })
}

/// In the container's new mount namespace, before pivot_root: sets the
/// propagation of `/`, binds the rootfs onto itself (pivot_root needs a
/// mount point), performs `mounts` in order (config.md: "The runtime MUST
/// mount entries in the listed order"), then supplies the default devices,
/// the /dev symlinks and `linux.devices`.
pub fn prepare(cfg: &RootfsConfig, sys: &dyn Syscall) -> Result<()> {
    let rootfs = &cfg.rootfs;
    // config.md Root: "A directory MUST exist at the path declared by the field."
    match sys.stat(rootfs) {
        Ok(st) if st.is_dir() => {}
        Ok(_) => {
            return Err(invalid(
                "root.path",
                format!("{:?} is not a directory", rootfs.display()),
            ))
        }
        Err(e) => {
            return Err(invalid(
                "root.path",
                format!("{:?}: {}", rootfs.display(), errno_text(&e)),
            ))
        }
    }
    let linux = cfg.spec.linux().as_ref();
    let (before, _) = root_propagation(linux.and_then(|l| l.rootfs_propagation().as_deref()))?;
    sys.mount(None, Path::new("/"), None, before, None)
        .map_err(os("linux.rootfsPropagation: setting the propagation of /"))?;
    if before & libc::MS_SHARED != 0 {
        // pivot_root refuses a new root whose parent mount is shared.
        make_parent_private(rootfs, sys)?;
    }
    sys.mount(Some(rootfs), rootfs, None, libc::MS_BIND | libc::MS_REC, None)
        .map_err(os(format!("root.path: binding {} onto itself", rootfs.display())))?;
    let mounts = cfg.spec.mounts().as_deref().unwrap_or_default();
    for (i, m) in mounts.iter().enumerate() {
        mount_one(cfg, sys, i, m)?;
    }
    // A /dev bound from the host already has its devices; creating nodes or
    // links there would change the host's /dev.
    let dev_is_bind = mounts.iter().any(|m| {
        clean(m.destination()) == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind") || parse_options(m.options().as_deref().unwrap_or_default()).bind)
    });
    if !dev_is_bind {
        default_devices(cfg, sys)?;
        dev_symlinks(cfg, sys)?;
    }
    for (i, d) in linux
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let dev = Device::from_spec(i, d)?;
        create_device(cfg, sys, &format!("linux.devices[{i}]"), &dev)?;
    }
    Ok(())
}

/// A container path made absolute and lexically clean (for comparisons).
fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MountInfo {
    root: PathBuf,
    mount_point: PathBuf,
    optional: Vec<String>,
    fstype: String,
    super_options: String,
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
pub(crate) fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            if sep < 6 || f.len() < sep + 4 {
                return None;
            }
            Some(MountInfo {
                root: unescape(f[3]).into(),
                mount_point: unescape(f[4]).into(),
                optional: f[6..sep].iter().map(|s| s.to_string()).collect(),
                fstype: f[sep + 1].to_string(),
                super_options: f[sep + 3].to_string(),
            })
        })
        .collect()
}

/// Makes the mount holding `rootfs` private when it is shared, for
/// rootfsPropagation "shared" (pivot_root(2): EINVAL otherwise).
fn make_parent_private(rootfs: &Path, sys: &dyn Syscall) -> Result<()> {
    let text = sys
        .read_to_string(Path::new("/proc/self/mountinfo"))
        .map_err(os("reading /proc/self/mountinfo"))?;
    let parent = parse_mountinfo(&text)
        .into_iter()
        .filter(|m| rootfs.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len());
    if let Some(p) = parent {
        if p.optional.iter().any(|o| o.starts_with("shared:")) {
            sys.mount(None, &p.mount_point, None, libc::MS_PRIVATE, None)
                .map_err(os(format!("making {} private", p.mount_point.display())))?;
        }
    }
    Ok(())
}

fn mount_one(cfg: &RootfsConfig, sys: &dyn Syscall, i: usize, m: &Mount) -> Result<()> {
    let field = format!("mounts[{i}]");
    let dest = m.destination();
    if dest.as_os_str().is_empty() {
        return Err(invalid(format!("{field}.destination"), "must not be empty"));
    }
    // config.md: a relative destination is deprecated but MUST be taken as
    // relative to "/", which secure_join does.
    let opts = parse_options(m.options().as_deref().unwrap_or_default());
    if opts.idmap.is_some() || m.uid_mappings().is_some() || m.gid_mappings().is_some() {
        // config.md: an idmap that cannot be applied MUST be an error.
        return Err(invalid(
            format!("{field}.options"),
            "id-mapped mounts (idmap, ridmap, uidMappings, gidMappings) are not supported",
        ));
    }
    if opts.tmpcopyup {
        return Err(invalid(format!("{field}.options"), "\"tmpcopyup\" is not supported"));
    }
    let typ = m.typ().as_deref().unwrap_or("");
    let bind = opts.bind || typ == "bind";
    let shown = dest.display();
    let target = secure_join(&cfg.rootfs, dest).map_err(os(format!("{field}.destination: resolving {shown}")))?;
    if typ == "cgroup" && !bind {
        return mount_cgroup(cfg, sys, &field, dest, &target, &opts);
    }
    if bind {
        let src = m
            .source()
            .as_ref()
            .ok_or_else(|| invalid(format!("{field}.source"), "a bind mount needs a source"))?;
        // config.md: bind sources are "either absolute or relative to the bundle".
        let src = if src.is_absolute() {
            src.clone()
        } else {
            cfg.bundle.join(src)
        };
        let st = sys.stat(&src).map_err(|e| {
            invalid(
                format!("{field}.source"),
                format!("{:?}: {}", src.display(), errno_text(&e)),
            )
        })?;
        make_target(sys, &field, &target, st.is_dir())?;
        bind_mount(
            sys,
            &src,
            &target,
            &opts,
            &format!("{field}: binding {} on {shown}", src.display()),
        )?;
    } else {
        if opts.flags & libc::MS_REMOUNT == 0 {
            make_target(sys, &field, &target, true)?;
        }
        let source = m
            .source()
            .clone()
            .unwrap_or_else(|| PathBuf::from(if typ.is_empty() { "none" } else { typ }));
        let data = mount_data(cfg, typ, &opts);
        let fstype = (!typ.is_empty()).then_some(typ);
        let r = sys.mount(Some(&source), &target, fstype, opts.flags, data.as_deref());
        match r {
            Ok(()) => {}
            // sysfs cannot be mounted from a user namespace that does not own
            // the network namespace; the host's, bound, shows the same.
            Err(e) if typ == "sysfs" && cfg.userns && e.raw_os_error() == Some(libc::EPERM) => {
                let o = MountOptions {
                    bind: true,
                    recursive: true,
                    flags: opts.flags,
                    ..Default::default()
                };
                bind_mount(
                    sys,
                    Path::new("/sys"),
                    &target,
                    &o,
                    &format!("{field}: binding /sys on {shown}"),
                )?;
            }
            Err(e) => return Err(os(format!("{field}: mounting {typ} on {shown}"))(e)),
        }
    }
    apply_propagation(sys, &field, &target, dest, &opts)
}

fn make_target(sys: &dyn Syscall, field: &str, target: &Path, dir: bool) -> Result<()> {
    let what = || format!("{field}.destination: creating {}", target.display());
    if dir {
        return sys.mkdir_all(target, 0o755).map_err(os(what()));
    }
    if let Some(parent) = target.parent() {
        sys.mkdir_all(parent, 0o755).map_err(os(what()))?;
    }
    sys.create_file(target).map_err(os(what()))
}

/// The data argument: filesystem-specific options, plus the SELinux
/// context of `linux.mountLabel` for filesystems that take one.
fn mount_data(cfg: &RootfsConfig, typ: &str, opts: &MountOptions) -> Option<String> {
    let mut data = opts.data.clone();
    let label = cfg.spec.linux().as_ref().and_then(|l| l.mount_label().clone());
    if let Some(label) = label.filter(|l| cfg.selinux && !l.is_empty()) {
        if !matches!(typ, "proc" | "sysfs" | "cgroup" | "cgroup2" | "bind" | "") {
            data.push(format!("context=\"{label}\""));
        }
    }
    (!data.is_empty()).then(|| data.join(","))
}

/// A bind mount, then a remount for the per-mount flags a bind ignores
/// (mount(2): MS_BIND with MS_RDONLY does not make the bind read-only; it
/// takes MS_REMOUNT|MS_BIND). The remount keeps the flags the mount already
/// has (the source's nosuid, flags locked in a user namespace) unless an
/// option clears them.
fn bind_mount(sys: &dyn Syscall, src: &Path, target: &Path, opts: &MountOptions, what: &str) -> Result<()> {
    let rec = if opts.recursive { libc::MS_REC } else { 0 };
    sys.mount(Some(src), target, None, libc::MS_BIND | rec, None)
        .map_err(os(what))?;
    let wanted = opts.flags & BIND_REMOUNTABLE;
    if wanted == 0 && opts.cleared & BIND_REMOUNTABLE == 0 {
        return Ok(());
    }
    let mut keep = sys.statfs_flags(target).unwrap_or(0) & BIND_REMOUNTABLE & !opts.cleared;
    let atime = libc::MS_NOATIME | libc::MS_RELATIME | libc::MS_STRICTATIME;
    if wanted & atime != 0 {
        keep &= !atime;
    }
    sys.mount(
        None,
        target,
        None,
        libc::MS_REMOUNT | libc::MS_BIND | wanted | keep,
        None,
    )
    .map_err(os(format!("{what}: remounting with the options")))
}

/// Propagation options are separate mount(2) calls; the recursive `r*`
/// options one mount_setattr(AT_RECURSIVE).
fn apply_propagation(sys: &dyn Syscall, field: &str, target: &Path, dest: &Path, opts: &MountOptions) -> Result<()> {
    for p in &opts.propagation {
        sys.mount(None, target, None, *p, None)
            .map_err(os(format!("{field}: setting propagation on {}", dest.display())))?;
    }
    if opts.attr_set != 0 || opts.attr_clr != 0 {
        sys.mount_setattr(target, libc::AT_RECURSIVE as u32, opts.attr_set, opts.attr_clr, 0)
            .map_err(os(format!("{field}: applying recursive options on {}", dest.display())))?;
    }
    Ok(())
}

/// A mount of type "cgroup" (config-linux.md Default Filesystems lists
/// /sys/fs/cgroup): what the container sees depends on the host. On a
/// unified (v2) host, a cgroup2 mount. On a v1 or hybrid host, a tmpfs with
/// one directory per host hierarchy, each either a fresh cgroup mount (in a
/// cgroup namespace, which shows the container's subtree) or a bind of the
/// container's own cgroup directory, plus symlinks for co-mounted
/// controllers (cpu -> cpu,cpuacct) as the host has them.
fn mount_cgroup(
    cfg: &RootfsConfig,
    sys: &dyn Syscall,
    field: &str,
    dest: &Path,
    target: &Path,
    opts: &MountOptions,
) -> Result<()> {
    let shown = dest.display();
    make_target(sys, field, target, true)?;
    let info = sys
        .read_to_string(Path::new("/proc/self/mountinfo"))
        .map_err(os("reading /proc/self/mountinfo"))?;
    let hier: Vec<MountInfo> = parse_mountinfo(&info)
        .into_iter()
        .filter(|m| matches!(m.fstype.as_str(), "cgroup" | "cgroup2") && m.mount_point.starts_with("/sys/fs/cgroup"))
        .collect();
    let unified = hier.iter().all(|h| h.fstype == "cgroup2");
    if unified {
        match sys.mount(Some(Path::new("cgroup2")), target, Some("cgroup2"), opts.flags, None) {
            Ok(()) => {}
            // A user namespace that does not own the cgroup namespace may
            // not mount cgroup2 (a pure v2 host, no cgroup namespace):
            // the container's own cgroup directory is bound instead, as
            // runc does with the hierarchy.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) && !cfg.cgroupns => {
                let own = sys.read_to_string(Path::new("/proc/self/cgroup")).unwrap_or_default();
                let src = hier
                    .first()
                    .map(|h| own_cgroup_dir(h, &own))
                    .filter(|d| sys.stat(d).is_ok())
                    .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"));
                let o = MountOptions {
                    bind: true,
                    recursive: true,
                    flags: opts.flags,
                    ..Default::default()
                };
                let what = format!("{field}: binding {} on {shown} (cgroup2: EPERM)", src.display());
                bind_mount(sys, &src, target, &o, &what)?;
            }
            Err(e) => return Err(os(format!("{field}: mounting cgroup2 on {shown}"))(e)),
        }
        return apply_propagation(sys, field, target, dest, opts);
    }
    sys.mount(
        Some(Path::new("tmpfs")),
        target,
        Some("tmpfs"),
        opts.flags & !libc::MS_RDONLY,
        Some("mode=755"),
    )
    .map_err(os(format!("{field}: mounting tmpfs on {shown}")))?;
    let own = sys.read_to_string(Path::new("/proc/self/cgroup")).unwrap_or_default();
    for h in hier.iter().filter(|h| h.mount_point != Path::new("/sys/fs/cgroup")) {
        let Some(name) = h.mount_point.file_name() else {
            continue;
        };
        let sub = target.join(name);
        let what = format!(
            "{field}: mounting {} on {}",
            h.mount_point.display(),
            dest.join(name).display()
        );
        sys.mkdir_all(&sub, 0o755).map_err(os(what.clone()))?;
        if cfg.cgroupns {
            let data = (h.fstype == "cgroup").then(|| cgroup_options(&h.super_options).join(","));
            sys.mount(
                Some(Path::new(&h.fstype)),
                &sub,
                Some(&h.fstype),
                opts.flags,
                data.as_deref(),
            )
            .map_err(os(what))?;
        } else {
            let src = own_cgroup_dir(h, &own);
            let src = if sys.stat(&src).is_ok() {
                src
            } else {
                h.mount_point.clone()
            };
            let o = MountOptions {
                bind: true,
                recursive: true,
                flags: opts.flags,
                ..Default::default()
            };
            bind_mount(sys, &src, &sub, &o, &what)?;
        }
        let name = name.to_string_lossy();
        if name.contains(',') {
            for part in name.split(',') {
                let link = target.join(part);
                if sys.lstat(&link).is_err() {
                    sys.symlink(Path::new(name.as_ref()), &link)
                        .map_err(os(format!("{field}: linking {part} to {name}")))?;
                }
            }
        }
    }
    if opts.flags & libc::MS_RDONLY != 0 {
        sys.mount(None, target, None, libc::MS_REMOUNT | opts.flags, Some("mode=755"))
            .map_err(os(format!("{field}: remounting {shown} read-only")))?;
    }
    apply_propagation(sys, field, target, dest, opts)
}

/// The controllers (and `name=`) of a v1 hierarchy, from its super options.
fn cgroup_options(super_options: &str) -> Vec<&str> {
    super_options
        .split(',')
        .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("release_agent="))
        .collect()
}

/// The host directory of this process's cgroup in hierarchy `h`, from
/// /proc/self/cgroup (`id:controllers:path`).
fn own_cgroup_dir(h: &MountInfo, proc_cgroup: &str) -> PathBuf {
    let opts = cgroup_options(&h.super_options);
    let path = proc_cgroup.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let matches = if h.fstype == "cgroup2" {
            ctrls.is_empty()
        } else {
            !ctrls.is_empty() && ctrls.split(',').all(|c| opts.contains(&c))
        };
        matches.then_some(path)
    });
    match path {
        Some(p) => {
            let p = Path::new(p);
            let rel = p.strip_prefix(&h.root).unwrap_or(p);
            h.mount_point.join(rel.strip_prefix("/").unwrap_or(rel))
        }
        None => h.mount_point.clone(),
    }
}

/// A device node to supply.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Device {
    path: PathBuf,
    /// `S_IFCHR`, `S_IFBLK` or `S_IFIFO`.
    kind: u32,
    major: u64,
    minor: u64,
    /// Permission bits (set after mknod, so the umask does not change them).
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
}

impl Device {
    fn from_spec(i: usize, d: &oci_spec::runtime::LinuxDevice) -> Result<Device> {
        let field = format!("linux.devices[{i}]");
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(invalid(format!("{field}.type"), "unknown \"a\" (c, b, u or p)"));
            }
        };
        if !d.path().is_absolute() {
            return Err(invalid(
                format!("{field}.path"),
                format!("{:?} must be absolute", d.path().display().to_string()),
            ));
        }
        let (major, minor) = if kind == libc::S_IFIFO {
            (0, 0)
        } else {
            let n = |what: &str, v: i64| {
                u32::try_from(v)
                    .map(u64::from)
                    .map_err(|_| invalid(format!("{field}.{what}"), format!("out of range: {v}")))
            };
            (n("major", d.major())?, n("minor", d.minor())?)
        };
        Ok(Device {
            path: d.path().clone(),
            kind,
            major,
            minor,
            // config-linux.md: fileMode is the node's permission bits; 0666
            // when absent, as for the default devices.
            mode: Some(d.file_mode().unwrap_or(0o666) & 0o7777),
            uid: d.uid(),
            gid: d.gid(),
        })
    }

    fn describe(&self) -> String {
        match self.kind {
            libc::S_IFIFO => "a fifo".into(),
            libc::S_IFBLK => format!("block device {}:{}", self.major, self.minor),
            _ => format!("char device {}:{}", self.major, self.minor),
        }
    }
}

/// config-linux.md Default Devices: "the runtime MUST also supply" these.
const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

fn default_devices(cfg: &RootfsConfig, sys: &dyn Syscall) -> Result<()> {
    for (path, major, minor) in DEFAULT_DEVICES {
        let d = Device {
            path: path.into(),
            kind: libc::S_IFCHR,
            major,
            minor,
            mode: Some(0o666),
            uid: Some(cfg.owner.0),
            gid: Some(cfg.owner.1),
        };
        create_device(cfg, sys, &format!("default device {path}"), &d)?;
    }
    Ok(())
}

/// Resolves a container path's parent inside the rootfs and appends its
/// last component unresolved, for acting on a link itself.
fn leaf_in_rootfs(rootfs: &Path, p: &Path) -> io::Result<PathBuf> {
    let parent = secure_join(rootfs, p.parent().unwrap_or(Path::new("/")))?;
    Ok(match p.file_name() {
        Some(n) => parent.join(n),
        None => parent,
    })
}

/// Supplies `d`: an existing node that matches is kept (with the requested
/// mode and owner), any other file is an error (config-linux.md: "If a file
/// already exists at path that does not match the requested device, the
/// runtime MUST generate an error"); a missing node is made with mknod, or,
/// where mknod is refused (a user namespace), bound from the host's node of
/// the same path.
fn create_device(cfg: &RootfsConfig, sys: &dyn Syscall, field: &str, d: &Device) -> Result<()> {
    let shown = d.path.display();
    let target = leaf_in_rootfs(&cfg.rootfs, &d.path).map_err(os(format!("{field}: resolving {shown}")))?;
    let rdev = libc::makedev(d.major as u32, d.minor as u32);
    match sys.lstat(&target) {
        Ok(st) => {
            let same = st.file_type() == d.kind && (d.kind == libc::S_IFIFO || st.rdev == rdev);
            if !same {
                return Err(invalid(
                    format!("{field}.path"),
                    format!("{shown:?} exists and is not the requested {}", d.describe()),
                ));
            }
            return set_mode_owner(sys, field, &target, d);
        }
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(os(format!("{field}: inspecting {shown}"))(e)),
    }
    if let Some(parent) = target.parent() {
        sys.mkdir_all(parent, 0o755)
            .map_err(os(format!("{field}: creating the parent of {shown}")))?;
    }
    // A fifo needs no privilege, so mknod works in a user namespace too.
    if cfg.userns && d.kind != libc::S_IFIFO {
        return bind_device(sys, field, d, &target);
    }
    let mode = d.kind | d.mode.unwrap_or(0o666);
    match sys.mknod(&target, mode, rdev) {
        Ok(()) => set_mode_owner(sys, field, &target, d),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && d.kind != libc::S_IFIFO => {
            bind_device(sys, field, d, &target)
        }
        Err(e) => Err(os(format!("{field}: mknod {shown}"))(e)),
    }
}

fn set_mode_owner(sys: &dyn Syscall, field: &str, target: &Path, d: &Device) -> Result<()> {
    let shown = d.path.display();
    if let Some(mode) = d.mode {
        sys.chmod(target, mode).map_err(os(format!("{field}: chmod {shown}")))?;
    }
    if d.uid.is_some() || d.gid.is_some() {
        sys.chown(target, d.uid, d.gid)
            .map_err(os(format!("{field}: chown {shown}")))?;
    }
    Ok(())
}

/// The host's node bound onto an empty file. Its owner and mode stay the
/// host's: changing them would change the host's node.
fn bind_device(sys: &dyn Syscall, field: &str, d: &Device, target: &Path) -> Result<()> {
    let shown = d.path.display();
    sys.create_file(target)
        .map_err(os(format!("{field}: creating {shown}")))?;
    sys.mount(Some(&d.path), target, None, libc::MS_BIND, None)
        .map_err(os(format!("{field}: binding the host's {shown}")))
}

/// runtime-linux.md Dev symbolic links, and /dev/ptmx as a symlink to the
/// container's devpts ptmx (config-linux.md Default Devices). A link the
/// image already has is left alone; an image's /dev/ptmx that is not the
/// link is replaced, since it would reach the host's devpts instance.
fn dev_symlinks(cfg: &RootfsConfig, sys: &dyn Syscall) -> Result<()> {
    let links = [
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ];
    for (src, link) in links {
        let at = leaf_in_rootfs(&cfg.rootfs, Path::new(link)).map_err(os(format!("resolving {link}")))?;
        if sys.lstat(&at).is_ok() {
            continue;
        }
        sys.symlink(Path::new(src), &at)
            .map_err(os(format!("linking {link} to {src}")))?;
    }
    let at = leaf_in_rootfs(&cfg.rootfs, Path::new("/dev/ptmx")).map_err(os("resolving /dev/ptmx"))?;
    let ptmx = Path::new("pts/ptmx");
    match sys.lstat(&at) {
        Ok(st) if st.is_symlink() && std::fs::read_link(&at).is_ok_and(|t| t == ptmx) => return Ok(()),
        Ok(_) => sys.unlink(&at).map_err(os("removing the image's /dev/ptmx"))?,
        Err(_) => {}
    }
    sys.symlink(ptmx, &at).map_err(os("linking /dev/ptmx to pts/ptmx"))
}

/// Makes the rootfs `/`. With pivot_root, the "." "." form: from inside the
/// new root, pivot_root(".", ".") stacks the old root on top of it, which is
/// then detached, so no directory for the old root is needed. The old root
/// is made rslave first so that detaching it cannot propagate unmounts to
/// the host. With `no_pivot` (a rootfs on a ramfs, where pivot_root is
/// refused), the rootfs is moved onto `/` and chrooted into; the host's
/// mounts then stay reachable underneath, which is why it is not the default.
pub fn pivot(rootfs: &Path, no_pivot: bool, sys: &dyn Syscall) -> Result<()> {
    sys.chdir(rootfs).map_err(os(format!("chdir {}", rootfs.display())))?;
    let dot = Path::new(".");
    if no_pivot {
        sys.mount(Some(rootfs), Path::new("/"), None, libc::MS_MOVE, None)
            .map_err(os(format!("moving {} onto /", rootfs.display())))?;
        sys.chroot(dot).map_err(os(format!("chroot {}", rootfs.display())))?;
    } else {
        sys.pivot_root(dot, dot)
            .map_err(os(format!("pivot_root {}", rootfs.display())))?;
        sys.mount(None, dot, None, libc::MS_SLAVE | libc::MS_REC, None)
            .map_err(os("making the old root rslave"))?;
        sys.umount2(dot, libc::MNT_DETACH)
            .map_err(os("detaching the old root"))?;
    }
    sys.chdir(Path::new("/")).map_err(os("chdir /"))
}

/// Binds the terminal's pty slave (a container path such as /dev/pts/0)
/// onto /dev/console (config-linux.md Default Devices: "/dev/console is set
/// up if terminal is enabled ... by bind mounting the pseudoterminal pty to
/// /dev/console"). Runs after the pivot.
pub fn setup_console(slave: &Path, sys: &dyn Syscall) -> Result<()> {
    let console = Path::new("/dev/console");
    match sys.lstat(console) {
        // A symlink would redirect the bind elsewhere.
        Ok(st) if st.is_symlink() => {
            sys.unlink(console).map_err(os("removing the /dev/console symlink"))?;
            sys.create_file(console).map_err(os("creating /dev/console"))?;
        }
        Ok(_) => {}
        Err(_) => sys.create_file(console).map_err(os("creating /dev/console"))?,
    }
    sys.mount(Some(slave), console, None, libc::MS_BIND, None)
        .map_err(os(format!("binding {} onto /dev/console", slave.display())))
}

/// The namespace a sysctl belongs to, for those the kernel namespaces.
fn sysctl_namespace(key: &str) -> Option<LinuxNamespaceType> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else {
        None
    }
}

/// After the pivot, in this order: rootfsPropagation on the new `/`,
/// hostname and domainname, sysctls (before readonlyPaths, which usually
/// holds /proc/sys), readonlyPaths, maskedPaths, and last root.readonly.
///
/// Sysctls: a key the kernel does not namespace, or one whose namespace the
/// container does not have in `linux.namespaces`, is refused: writing it
/// would change the host (net.* needs a network namespace; the SysV IPC
/// keys and fs.mqueue.* an ipc one; kernel.hostname/domainname a uts one).
pub fn finalize(spec: &Spec, sys: &dyn Syscall) -> Result<()> {
    let linux = spec.linux().as_ref();
    let root = Path::new("/");
    let (_, after) = root_propagation(linux.and_then(|l| l.rootfs_propagation().as_deref()))?;
    if let Some(flags) = after {
        sys.mount(None, root, None, flags, None)
            .map_err(os("linux.rootfsPropagation: setting the propagation of /"))?;
    }
    let uts = has_namespace(spec, LinuxNamespaceType::Uts);
    let names: [(&str, Option<&String>); 2] = [
        ("hostname", spec.hostname().as_ref()),
        ("domainname", spec.domainname().as_ref()),
    ];
    for (field, value) in names {
        let Some(v) = value else { continue };
        if !uts {
            return Err(invalid(
                field,
                format!("{v:?} set without a uts namespace: it would rename the host"),
            ));
        }
        let r = if field == "hostname" {
            sys.sethostname(v)
        } else {
            sys.setdomainname(v)
        };
        r.map_err(os(format!("{field}: setting {v:?}")))?;
    }
    if let Some(sysctl) = linux.and_then(|l| l.sysctl().as_ref()) {
        let mut keys: Vec<&String> = sysctl.keys().collect();
        keys.sort();
        for k in keys {
            let field = format!("linux.sysctl[{k:?}]");
            if k.is_empty() || k.split(['.', '/']).any(|c| c.is_empty() || c == "..") {
                return Err(invalid(field, "not a sysctl name"));
            }
            match sysctl_namespace(k) {
                None => return Err(invalid(field, "not namespaced: it would change the host")),
                Some(t) if !has_namespace(spec, t) => {
                    return Err(invalid(
                        field,
                        format!(
                            "needs a {} namespace: it would change the host's",
                            crate::namespaces::name(t)
                        ),
                    ))
                }
                Some(_) => {}
            }
            let path = Path::new("/proc/sys").join(k.replace('.', "/"));
            sys.write_file(&path, sysctl[k].as_bytes())
                .map_err(os(format!("{field}: writing {}", path.display())))?;
        }
    }
    let list = |v: Option<&Vec<String>>| v.cloned().unwrap_or_default();
    for (i, p) in list(linux.and_then(|l| l.readonly_paths().as_ref())).iter().enumerate() {
        let field = format!("linux.readonlyPaths[{i}]");
        let path = container_path(&field, p)?;
        match sys.stat(path) {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(os(format!("{field}: inspecting {p}"))(e)),
        }
        sys.mount(Some(path), path, None, libc::MS_BIND | libc::MS_REC, None)
            .map_err(os(format!("{field}: binding {p} onto itself")))?;
        let keep = sys.statfs_flags(path).unwrap_or(0) & BIND_REMOUNTABLE;
        let flags = libc::MS_BIND
            | libc::MS_REMOUNT
            | libc::MS_RDONLY
            | libc::MS_NOSUID
            | libc::MS_NODEV
            | libc::MS_NOEXEC
            | keep;
        sys.mount(None, path, None, flags, None)
            .map_err(os(format!("{field}: remounting {p} read-only")))?;
    }
    for (i, p) in list(linux.and_then(|l| l.masked_paths().as_ref())).iter().enumerate() {
        let field = format!("linux.maskedPaths[{i}]");
        let path = container_path(&field, p)?;
        let st = match sys.stat(path) {
            Ok(st) => st,
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(os(format!("{field}: inspecting {p}"))(e)),
        };
        // A directory gets an empty read-only tmpfs; a file /dev/null.
        let r = if st.is_dir() {
            sys.mount(Some(Path::new("tmpfs")), path, Some("tmpfs"), libc::MS_RDONLY, None)
        } else {
            sys.mount(Some(Path::new("/dev/null")), path, None, libc::MS_BIND, None)
        };
        r.map_err(os(format!("{field}: masking {p}")))?;
    }
    // config.md Root: readonly "MUST be read-only inside the container".
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        let keep = sys.statfs_flags(root).unwrap_or(0) & BIND_REMOUNTABLE;
        sys.mount(
            None,
            root,
            None,
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | keep,
            None,
        )
        .map_err(os("root.readonly: remounting / read-only"))?;
    }
    Ok(())
}

/// config-linux.md: maskedPaths and readonlyPaths "MUST be absolute paths
/// in the container namespace".
fn container_path<'p>(field: &str, p: &'p str) -> Result<&'p Path> {
    let path = Path::new(p);
    if !path.is_absolute() {
        return Err(invalid(field, format!("{p:?} must be absolute")));
    }
    Ok(path)
}

#[cfg(test)]
mod tests;
