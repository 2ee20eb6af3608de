//! The caller's credentials, borrowed by the supervisor's thread for the one
//! call it performs on the caller's behalf. Without this an open by the
//! supervisor (root, every capability) would bypass the permission checks
//! the caller is subject to, and files it creates would belong to the
//! supervisor instead of the caller.
//!
//! Only raw syscalls are used: glibc's set*id wrappers change every thread
//! of the process, and the supervisor's other threads serve other callers.

use std::io;

/// A caller's filesystem ids and capabilities, as the host sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Creds {
    pub fsuid: u32,
    pub fsgid: u32,
    pub groups: Vec<u32>,
    /// Effective capabilities; cleared for a caller in a user namespace of
    /// its own (its capabilities do not reach files owned by the host).
    pub cap_eff: u64,
}

/// Parses `/proc/PID/status`; `own_userns` says whether the caller is in a
/// user namespace other than the supervisor's.
pub fn parse_status(status: &str, own_userns: bool) -> Option<Creds> {
    let field = |key: &str| status.lines().find_map(|l| l.strip_prefix(key)).map(str::trim);
    let nth = |key: &str, i: usize| -> Option<u32> { field(key)?.split_whitespace().nth(i)?.parse().ok() };
    let groups = field("Groups:")
        .map(|g| g.split_whitespace().filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default();
    let cap_eff = u64::from_str_radix(field("CapEff:")?, 16).ok()?;
    Some(Creds {
        // Real, effective, saved, filesystem: the fourth.
        fsuid: nth("Uid:", 3)?,
        fsgid: nth("Gid:", 3)?,
        groups,
        cap_eff: if own_userns { 0 } else { cap_eff },
    })
}

/// The credentials of thread `pid`, from its `/proc/PID/status` text.
pub fn of_status(pid: i32, status: &str) -> io::Result<Creds> {
    static MINE: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    let mine = MINE
        .get_or_init(|| std::fs::read_link("/proc/self/ns/user").ok())
        .clone()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/user"))?;
    parse_status(status, mine != theirs).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

fn capget() -> io::Result<[CapData; 2]> {
    let mut h = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut d = [CapData::default(); 2];
    // SAFETY: capget writes two CapData (v3) through a valid pointer.
    if unsafe { libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(d)
}

fn capset(d: &[CapData; 2]) -> io::Result<()> {
    let mut h = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    // SAFETY: capset reads two CapData (v3); it changes this thread only.
    if unsafe { libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn set_groups(groups: &[u32]) -> io::Result<()> {
    // SAFETY: the raw setgroups syscall reads `len` gids; this thread only.
    if unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn set_fs_ids(uid: u32, gid: u32) {
    // SAFETY: setfsgid/setfsuid take an id and affect this thread only
    // (the raw syscalls); they cannot fail in a way that returns an error.
    unsafe {
        libc::syscall(libc::SYS_setfsgid, gid);
        libc::syscall(libc::SYS_setfsuid, uid);
    }
}

/// Runs `f` on this thread with `c`'s filesystem ids, groups and (at most)
/// its effective capabilities, then restores the supervisor's own.
pub fn as_caller<T>(c: &Creds, f: impl FnOnce() -> T) -> io::Result<T> {
    let saved = capget()?;
    let saved_groups = {
        // SAFETY: getgroups with 0 only counts.
        let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
        let mut g = vec![0u32; n.max(0) as usize];
        // SAFETY: `g` has room for `n` gids.
        let n = unsafe { libc::getgroups(n, g.as_mut_ptr()) };
        g.truncate(n.max(0) as usize);
        g
    };
    set_groups(&c.groups)?;
    set_fs_ids(c.fsuid, c.fsgid);
    let mut lowered = saved;
    lowered[0].effective &= c.cap_eff as u32;
    lowered[1].effective &= (c.cap_eff >> 32) as u32;
    let narrowed = capset(&lowered);
    let out = narrowed.as_ref().ok().map(|_| f());
    // Back to the supervisor's own, whatever happened.
    let _ = capset(&saved);
    set_fs_ids(0, 0);
    let _ = set_groups(&saved_groups);
    narrowed?;
    Ok(out.expect("f ran"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tprobe\nUid:\t1000\t1001\t1002\t1003\nGid:\t50\t51\t52\t53\nGroups:\t10 20 \nCapEff:\t00000000a80425fb\n";

    #[test]
    fn status_fields() {
        let c = parse_status(STATUS, false).unwrap();
        assert_eq!((c.fsuid, c.fsgid, c.groups.clone()), (1003, 53, vec![10, 20]));
        assert_eq!(c.cap_eff, 0xa80425fb);
        assert_eq!(parse_status(STATUS, true).unwrap().cap_eff, 0);
        assert!(parse_status("Name:\tx\n", false).is_none());
    }

    #[test]
    fn an_unprivileged_caller_cannot_read_what_root_alone_may() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let secret = t.path().join("secret");
        std::fs::write(&secret, "x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let nobody = Creds {
            fsuid: 65534,
            fsgid: 65534,
            groups: vec![],
            cap_eff: 0,
        };
        let r = as_caller(&nobody, || std::fs::read(&secret)).unwrap();
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EACCES));
        // Restored: root reads it again, and files it makes are its own.
        assert!(std::fs::read(&secret).is_ok());
        let made = as_caller(&nobody, || std::fs::write(t.path().join("mine"), "y")).unwrap();
        assert!(made.is_err(), "nobody may not create in a 0700 root-owned dir");
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        as_caller(&nobody, || std::fs::write(t.path().join("mine"), "y"))
            .unwrap()
            .unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(t.path().join("mine")).unwrap().uid(), 65534);
    }
}
