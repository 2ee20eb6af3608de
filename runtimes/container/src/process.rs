//! The container process's identity and limits (config.md, POSIX process):
//! rlimits, user and groups, capabilities, no_new_privileges, umask, and the
//! final execve. Applied by the container's init, in this order, after the
//! rootfs is ready.

use std::ffi::CString;
use std::path::Path;

use oci_spec::runtime::{Capability, PosixRlimitType, Process};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {value}: {source}")]
    Apply {
        field: &'static str,
        value: String,
        source: std::io::Error,
    },
    #[error("process.args[0]: {0:?} not found in the container's PATH")]
    NotFound(String),
    #[error("{field}: {value:?} contains a NUL byte")]
    Nul { field: &'static str, value: String },
}

pub type Result<T> = std::result::Result<T, Error>;

fn os_err(field: &'static str, value: impl std::fmt::Display) -> Error {
    Error::Apply {
        field,
        value: value.to_string(),
        source: std::io::Error::last_os_error(),
    }
}

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    match t {
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
    }
}

/// config.md: each rlimit is applied with setrlimit(2).
pub fn apply_rlimits(p: &Process) -> Result<()> {
    for r in p.rlimits().iter().flatten() {
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: `lim` is a valid rlimit that lives across the call.
        if unsafe { libc::setrlimit(rlimit_resource(r.typ()), &lim) } != 0 {
            return Err(os_err(
                "process.rlimits",
                format!("{:?} {}/{}", r.typ(), r.soft(), r.hard()),
            ));
        }
    }
    Ok(())
}

/// Writes /proc/self/oom_score_adj (config.md: process.oomScoreAdj).
pub fn apply_oom_score_adj(p: &Process) -> Result<()> {
    if let Some(adj) = p.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|source| Error::Apply {
            field: "process.oomScoreAdj",
            value: adj.to_string(),
            source,
        })?;
    }
    Ok(())
}

/// capability(7) number of a spec name.
pub fn cap_number(c: &Capability) -> u32 {
    // oci-spec's Capability serialises as "CAP_X"; the kernel order is the
    // order of this table.
    const ORDER: &[&str] = CAPABILITIES;
    let name = serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    ORDER
        .iter()
        .position(|n| *n == name)
        .map(|i| i as u32)
        .unwrap_or(u32::MAX)
}

/// capability(7) names in kernel order: index is the capability number.
pub const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The highest capability this kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

fn mask(set: Option<&std::collections::HashSet<Capability>>) -> u64 {
    set.into_iter()
        .flatten()
        .map(cap_number)
        .filter(|&n| n < 64)
        .fold(0u64, |m, n| m | (1 << n))
}

/// The five capability sets as bit masks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub inheritable: u64,
    pub permitted: u64,
    pub ambient: u64,
}

pub fn cap_sets(p: &Process) -> CapSets {
    let Some(c) = p.capabilities() else {
        return CapSets::default();
    };
    CapSets {
        bounding: mask(c.bounding().as_ref()),
        effective: mask(c.effective().as_ref()),
        inheritable: mask(c.inheritable().as_ref()),
        permitted: mask(c.permitted().as_ref()),
        ambient: mask(c.ambient().as_ref()),
    }
}

/// Drops from the bounding set what the config does not list; needs
/// CAP_SETPCAP, so it runs before the user changes.
pub fn drop_bounding(sets: &CapSets) -> Result<()> {
    for n in 0..=last_cap() {
        if sets.bounding & (1 << n) == 0 {
            // SAFETY: prctl with integer arguments; no memory is passed.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, n as libc::c_ulong, 0, 0, 0) } != 0 {
                return Err(os_err("process.capabilities.bounding", format!("dropping cap {n}")));
            }
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Sets effective, permitted and inheritable, then raises the ambient set.
pub fn set_caps(sets: &CapSets) -> Result<()> {
    const V3: u32 = 0x2008_0522;
    let mut hdr = CapHeader { version: V3, pid: 0 };
    let lo = |m: u64| m as u32;
    let hi = |m: u64| (m >> 32) as u32;
    let data = [
        CapData {
            effective: lo(sets.effective),
            permitted: lo(sets.permitted),
            inheritable: lo(sets.inheritable),
        },
        CapData {
            effective: hi(sets.effective),
            permitted: hi(sets.permitted),
            inheritable: hi(sets.inheritable),
        },
    ];
    // SAFETY: capset reads a v3 header and two data structs with the uapi
    // layout (repr(C)); both live across the call.
    if unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) } != 0 {
        return Err(os_err("process.capabilities", format!("{sets:?}")));
    }
    for n in 0..=last_cap() {
        if sets.ambient & (1 << n) != 0 {
            // SAFETY: prctl with integer arguments only.
            let r = unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    n as libc::c_ulong,
                    0,
                    0,
                )
            };
            // config.md: a capability that cannot be granted is a warning,
            // not a failure (ambient needs it in permitted and inheritable).
            if r != 0 {
                eprintln!("warning: process.capabilities.ambient: cannot raise cap {n}");
            }
        }
    }
    Ok(())
}

/// Switches to the configured user, keeping capabilities across the change
/// so `set_caps` can then set exactly what the config asks.
pub fn set_user(p: &Process) -> Result<()> {
    let u = p.user();
    let mut groups: Vec<libc::gid_t> = u.additional_gids().clone().unwrap_or_default();
    groups.dedup();
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    // SAFETY: `groups` is a valid array of its stated length.
    if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } != 0 {
        return Err(os_err("process.user.additionalGids", format!("{groups:?}")));
    }
    // SAFETY: plain integer syscalls.
    if unsafe { libc::setresgid(u.gid(), u.gid(), u.gid()) } != 0 {
        return Err(os_err("process.user.gid", u.gid()));
    }
    // SAFETY: plain integer syscalls.
    if unsafe { libc::setresuid(u.uid(), u.uid(), u.uid()) } != 0 {
        return Err(os_err("process.user.uid", u.uid()));
    }
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    Ok(())
}

/// config.md: noNewPrivileges.
pub fn set_no_new_privs(p: &Process) -> Result<()> {
    if p.no_new_privileges() == Some(true) {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(os_err("process.noNewPrivileges", true));
        }
    }
    Ok(())
}

/// config.md: umask, defaulting to 0022 when unset... the spec says the
/// runtime's own umask is then inherited, so only a set value is applied.
pub fn set_umask(p: &Process) {
    if let Some(m) = p.user().umask() {
        // SAFETY: umask cannot fail.
        unsafe { libc::umask(m as libc::mode_t) };
    }
}

/// Finds `prog` in `PATH` from the process's environment, as execvp would.
pub fn resolve(prog: &str, env: &[String]) -> Result<std::path::PathBuf> {
    if prog.contains('/') {
        return Ok(prog.into());
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::NotFound(prog.to_string()))
}

fn cstrings(field: &'static str, v: &[String]) -> Result<Vec<CString>> {
    v.iter()
        .map(|s| {
            CString::new(s.as_str()).map_err(|_| Error::Nul {
                field,
                value: s.clone(),
            })
        })
        .collect()
}

/// execve(2) of the configured program; returns only on failure.
pub fn exec(p: &Process) -> Error {
    let args = p.args().clone().unwrap_or_default();
    let env = p.env().clone().unwrap_or_default();
    let path = match resolve(args.first().map(String::as_str).unwrap_or(""), &env) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let (argv, envp) = match (cstrings("process.args", &args), cstrings("process.env", &env)) {
        (Ok(a), Ok(e)) => (a, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let Ok(cpath) = CString::new(path.as_os_str().as_encoded_bytes()) else {
        return Error::NotFound(path.display().to_string());
    };
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    // SAFETY: every pointer refers to a NUL-terminated CString kept alive in
    // `argv`/`envp`/`cpath`, and both arrays end with a null pointer.
    unsafe { libc::execve(cpath.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
    os_err("process.args", format!("exec {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_numbers_follow_the_kernel() {
        let c: Capability = serde_json::from_str("\"CAP_SYS_ADMIN\"").unwrap();
        assert_eq!(cap_number(&c), 21);
        let c: Capability = serde_json::from_str("\"CAP_CHOWN\"").unwrap();
        assert_eq!(cap_number(&c), 0);
        let c: Capability = serde_json::from_str("\"CAP_BPF\"").unwrap();
        assert_eq!(cap_number(&c), 39);
    }

    #[test]
    fn cap_sets_from_a_process() {
        let p: Process = serde_json::from_str(
            r#"{"cwd":"/","user":{"uid":0,"gid":0},"capabilities":{"bounding":["CAP_KILL","CAP_SYS_ADMIN"],"effective":["CAP_KILL"]}}"#,
        )
        .unwrap();
        let s = cap_sets(&p);
        assert_eq!(s.bounding, (1 << 5) | (1 << 21));
        assert_eq!(s.effective, 1 << 5);
        assert_eq!(s.ambient, 0);
    }

    #[test]
    fn resolve_uses_the_container_path() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("prog"), "").unwrap();
        let env = vec![format!("PATH=/nonexistent:{}", t.path().display())];
        assert_eq!(resolve("prog", &env).unwrap(), t.path().join("prog"));
        assert!(resolve("nope", &env).unwrap_err().to_string().contains("nope"));
        assert_eq!(resolve("/abs", &env).unwrap(), Path::new("/abs"));
    }
}
