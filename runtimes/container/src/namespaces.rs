//! Linux namespaces (config-linux.md, Namespaces): which to create, which to
//! join by path, and the id mappings of a new user namespace.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("linux.namespaces: {typ} path {path}: {reason}")]
    Path {
        typ: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("joining the {typ} namespace at {path}: {source}")]
    Setns {
        typ: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bringing up the loopback interface of the new network namespace: {what}: {source}")]
    Loopback { what: &'static str, source: std::io::Error },
    #[error("writing {what} for pid {pid}: {source}")]
    Mapping {
        what: &'static str,
        pid: i32,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// The spec's name for a namespace type.
pub fn name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Time => "time",
    }
}

/// The CLONE_NEW* flag of a type.
pub fn flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Time => 0x80,
    }
}

/// The /proc/PID/ns entry name of a type.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Mount => "mnt",
        other => name(other),
    }
}

/// A namespace to join, opened early (before any pivot_root hides the path).
#[derive(Debug)]
pub struct Join {
    pub typ: LinuxNamespaceType,
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// What a container's namespaces amount to.
#[derive(Debug, Default)]
pub struct Plan {
    /// CLONE_NEW* flags of the namespaces to create.
    pub new_flags: libc::c_int,
    pub joins: Vec<Join>,
}

impl Plan {
    pub fn creates(&self, t: LinuxNamespaceType) -> bool {
        self.new_flags & flag(t) != 0
    }

    pub fn joins(&self, t: LinuxNamespaceType) -> bool {
        self.joins.iter().any(|j| j.typ == t)
    }
}

/// Opens the namespaces to join and checks that each really is a namespace
/// of its type (config-linux.md: a path that is not MUST be an error).
pub fn plan(linux: &Linux) -> Result<Plan> {
    let mut p = Plan::default();
    for n in linux.namespaces().iter().flatten() {
        match n.path() {
            None => p.new_flags |= flag(n.typ()),
            Some(path) => {
                let fd = open_ns(n.typ(), path)?;
                p.joins.push(Join {
                    typ: n.typ(),
                    path: path.clone(),
                    fd,
                });
            }
        }
    }
    Ok(p)
}

fn open_ns(t: LinuxNamespaceType, path: &Path) -> Result<OwnedFd> {
    let err = |reason: String| Error::Path {
        typ: name(t),
        path: path.to_path_buf(),
        reason,
    };
    let f = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let fd: OwnedFd = f.into();
    // NS_GET_NSTYPE tells the type of a namespace fd; anything else (a
    // plain file) fails with ENOTTY.
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: the ioctl takes no argument and only inspects the fd we own.
    let got = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) };
    if got < 0 {
        return Err(err("not a namespace file".into()));
    }
    if got != flag(t) {
        return Err(err(format!("is a namespace of another type (flag {got:#x})")));
    }
    Ok(fd)
}

/// setns(2) into `j`.
pub fn enter(j: &Join) -> Result<()> {
    // SAFETY: setns takes an fd we own and a flag; it changes only this
    // thread's namespaces, which is the intent.
    let r = unsafe { libc::setns(j.fd.as_raw_fd(), flag(j.typ)) };
    if r < 0 {
        return Err(Error::Setns {
            typ: name(j.typ),
            path: j.path.clone(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Sets `lo` up in the current network namespace, as runc and crun do for a
/// new one: a fresh namespace has its loopback down, and programs expect
/// 127.0.0.1 to work.
pub fn loopback_up() -> Result<()> {
    let err = |what| Error::Loopback {
        what,
        source: std::io::Error::last_os_error(),
    };
    // SAFETY: socket takes plain integers; the fd is owned right below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(err("socket"));
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let sock = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: an all-zero ifreq is a valid value (empty name, no flags).
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name from and writes the flags into
    // `req`, which lives for the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(err("SIOCGIFFLAGS"));
    }
    // SAFETY: the flags member of the union was just filled by the kernel.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short != 0 {
        return Ok(());
    }
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(err("SIOCSIFFLAGS"));
    }
    Ok(())
}

/// The text of /proc/PID/uid_map or gid_map for `maps`.
pub fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Writes the id mappings of the new user namespace of `pid` (from the
/// parent, which holds the privilege in the outer namespace).
pub fn write_mappings(pid: i32, uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<()> {
    let w = |what: &'static str, text: String| {
        std::fs::write(format!("/proc/{pid}/{what}"), text).map_err(|source| Error::Mapping { what, pid, source })
    };
    w("uid_map", map_text(uid))?;
    // As root in the outer namespace, setgroups may stay allowed.
    w("gid_map", map_text(gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_file_is_not_a_namespace() {
        let t = tempfile::NamedTempFile::new().unwrap();
        let e = open_ns(LinuxNamespaceType::Network, t.path()).unwrap_err().to_string();
        assert!(e.contains("not a namespace file"), "{e}");
        assert!(e.contains("network"), "{e}");
    }

    #[test]
    fn a_namespace_of_another_type_is_refused() {
        let e = open_ns(LinuxNamespaceType::Network, Path::new("/proc/self/ns/uts"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("another type"), "{e}");
        open_ns(LinuxNamespaceType::Uts, Path::new("/proc/self/ns/uts")).unwrap();
    }

    #[test]
    fn mapping_text() {
        let m: LinuxIdMapping = serde_json::from_str(r#"{"containerID":0,"hostID":1000,"size":10}"#).unwrap();
        assert_eq!(map_text(&[m]), "0 1000 10\n");
    }
}
