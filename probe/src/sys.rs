//! Thin safe wrappers over the libc calls std does not offer. Every call
//! here either succeeds or yields an errno; none of them panics.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;

use crate::report::{Ids, Rlimit};

fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// A path as a C string; an interior NUL becomes `EINVAL`.
pub fn cstring(path: impl AsRef<OsStr>) -> io::Result<CString> {
    CString::new(path.as_ref().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

pub fn getpid() -> i32 {
    // SAFETY: getpid has no preconditions and cannot fail.
    unsafe { libc::getpid() }
}

pub fn getppid() -> i32 {
    // SAFETY: getppid has no preconditions and cannot fail.
    unsafe { libc::getppid() }
}

/// Real and effective ids and the supplementary groups, sorted.
pub fn ids() -> Ids {
    // SAFETY: the get*id calls have no preconditions and cannot fail.
    let (uid, euid, gid, egid) = unsafe { (libc::getuid(), libc::geteuid(), libc::getgid(), libc::getegid()) };
    Ids {
        uid,
        euid,
        gid,
        egid,
        groups: groups(),
    }
}

fn groups() -> Vec<u32> {
    // SAFETY: a size of 0 asks only for the count; the pointer is not used.
    let count = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let Ok(len) = usize::try_from(count) else {
        return Vec::new();
    };
    let mut list: Vec<libc::gid_t> = vec![0; len];
    // SAFETY: `list` has room for `count` gids, the size passed.
    let got = unsafe { libc::getgroups(count, list.as_mut_ptr()) };
    match usize::try_from(got) {
        Ok(n) => {
            list.truncate(n);
            list.sort_unstable();
            list
        }
        Err(_) => Vec::new(),
    }
}

/// Reads the umask by setting it to 0 and putting it back at once.
pub fn read_umask() -> u32 {
    // SAFETY: umask cannot fail; the old value is restored immediately and
    // the probe has no threads that could create files in between.
    unsafe {
        let old = libc::umask(0);
        libc::umask(old);
        old
    }
}

/// The fields of `uname(2)`.
#[derive(Debug, Clone, Default)]
pub struct Uts {
    pub sysname: String,
    pub nodename: String,
    pub release: String,
    pub version: String,
    pub machine: String,
    pub domainname: String,
}

pub fn uname() -> Option<Uts> {
    let mut buf = MaybeUninit::<libc::utsname>::zeroed();
    // SAFETY: `buf` is a writable utsname; uname fills it on success.
    if unsafe { libc::uname(buf.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: uname succeeded, so every field is initialised (and the buffer
    // was zeroed beforehand anyway).
    let buf = unsafe { buf.assume_init() };
    Some(Uts {
        sysname: c_chars(&buf.sysname),
        nodename: c_chars(&buf.nodename),
        release: c_chars(&buf.release),
        version: c_chars(&buf.version),
        machine: c_chars(&buf.machine),
        domainname: c_chars(&buf.domainname),
    })
}

/// A fixed-size C char array up to its first NUL (or its end), lossily.
pub fn c_chars(chars: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = chars.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

pub fn no_new_privs() -> Option<bool> {
    // SAFETY: PR_GET_NO_NEW_PRIVS takes no pointers; the extra arguments
    // must be zero.
    let ret = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
    (ret >= 0).then_some(ret == 1)
}

pub fn rlimit(resource: libc::__rlimit_resource_t) -> Option<Rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(resource, &mut lim) } != 0 {
        return None;
    }
    let value = |v: libc::rlim_t| (v != libc::RLIM_INFINITY).then_some(v);
    Some(Rlimit {
        soft: value(lim.rlim_cur),
        hard: value(lim.rlim_max),
    })
}

pub fn isatty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor; a closed one gives 0.
    unsafe { libc::isatty(fd) == 1 }
}

/// The session of the terminal on `fd`, which only works when it is the
/// caller's controlling terminal.
pub fn tcgetsid(fd: i32) -> Option<i32> {
    // SAFETY: tcgetsid only inspects the descriptor.
    let sid = unsafe { libc::tcgetsid(fd) };
    (sid >= 0).then_some(sid)
}

pub fn tcgetpgrp(fd: i32) -> Option<i32> {
    // SAFETY: tcgetpgrp only inspects the descriptor.
    let pgrp = unsafe { libc::tcgetpgrp(fd) };
    (pgrp >= 0).then_some(pgrp)
}

pub fn getsid() -> i32 {
    // SAFETY: getsid(0) asks about the caller and cannot fault.
    unsafe { libc::getsid(0) }
}

pub fn getpgrp() -> i32 {
    // SAFETY: getpgrp has no preconditions.
    unsafe { libc::getpgrp() }
}

/// `personality(0xffffffff)`: the current persona, unchanged.
pub fn personality_query() -> u64 {
    // SAFETY: 0xffffffff only queries the persona.
    let ret = unsafe { libc::personality(0xffff_ffff) };
    u64::from(ret as u32)
}

/// Rows and columns of the terminal on `fd`.
pub fn winsize(fd: i32) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the valid pointer given.
    let ret = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (ret == 0).then_some((ws.ws_row, ws.ws_col))
}

pub fn ttyname(fd: i32) -> Option<String> {
    let mut buf = [0 as libc::c_char; 4096];
    // SAFETY: the buffer and its length match.
    let ret = unsafe { libc::ttyname_r(fd, buf.as_mut_ptr(), buf.len()) };
    (ret == 0).then(|| c_chars(&buf))
}

/// Whether the filesystem holding `path` is mounted read-only.
pub fn fs_readonly(path: &OsStr) -> io::Result<bool> {
    let c = cstring(path)?;
    let mut buf = MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is NUL-terminated and `buf` is a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), buf.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs succeeded and filled the (pre-zeroed) buffer.
    let buf = unsafe { buf.assume_init() };
    Ok(buf.f_flag & libc::ST_RDONLY != 0)
}

/// The descriptors listed in `dir` (normally /proc/self/fd), without the one
/// the listing itself uses.
pub fn list_fd_dir(dir: &str) -> io::Result<Vec<i32>> {
    let c = cstring(dir)?;
    // SAFETY: `c` is a NUL-terminated path.
    let handle = unsafe { libc::opendir(c.as_ptr()) };
    if handle.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `handle` is an open DIR stream.
    let own = unsafe { libc::dirfd(handle) };
    let mut fds = Vec::new();
    loop {
        // SAFETY: `handle` is an open DIR stream; the entry it returns stays
        // valid until the next readdir or closedir, and is read before that.
        let entry = unsafe { libc::readdir(handle) };
        if entry.is_null() {
            break;
        }
        // SAFETY: d_name of a returned entry is a NUL-terminated string.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
        if let Some(fd) = name.to_str().ok().and_then(|n| n.parse::<i32>().ok()) {
            if fd != own {
                fds.push(fd);
            }
        }
    }
    // SAFETY: `handle` is open and is not used after this.
    unsafe { libc::closedir(handle) };
    fds.sort_unstable();
    Ok(fds)
}

/// One raw system call with six register arguments. Returns the result and
/// the errno when it failed.
pub fn raw_syscall(nr: libc::c_long, args: [libc::c_long; 6]) -> (i64, Option<i32>) {
    // SAFETY: the caller (the `syscall` subcommand) passes either plain
    // numbers or pointers to buffers and C strings it keeps alive across the
    // call; the kernel validates every pointer it is given (EFAULT), so
    // nonsense numbers from the command line cannot corrupt this process
    // beyond what the named syscall itself is meant to do.
    let ret = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]) };
    if ret == -1 {
        (-1, Some(last_errno()))
    } else {
        (ret, None)
    }
}

/// A signal set holding `signals`.
pub fn sigset(signals: &[i32]) -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: sigemptyset initialises the set it is given.
    unsafe { libc::sigemptyset(set.as_mut_ptr()) };
    for &sig in signals {
        // SAFETY: the set was initialised; invalid numbers only give EINVAL.
        unsafe { libc::sigaddset(set.as_mut_ptr(), sig) };
    }
    // SAFETY: sigemptyset initialised the set.
    unsafe { set.assume_init() }
}

pub fn block_signals(set: &libc::sigset_t) -> io::Result<()> {
    // SAFETY: `set` is an initialised signal set; the old mask is not wanted.
    let ret = unsafe { libc::sigprocmask(libc::SIG_BLOCK, set, std::ptr::null_mut()) };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

extern "C" fn noop_handler(_sig: libc::c_int) {}

/// Installs a handler that does nothing, so that no signal has its default
/// action (which for PID 1 means being dropped, and otherwise often death).
pub fn install_noop_handler(sig: i32) -> io::Result<()> {
    // SAFETY: an all-zero sigaction is a valid starting point (empty mask,
    // no flags).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = noop_handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `action` is fully initialised and its handler is an
    // async-signal-safe function that does nothing.
    let ret = unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Waits for one of the (blocked) signals in `set`.
pub fn sigwait(set: &libc::sigset_t) -> io::Result<i32> {
    // SAFETY: `set` is initialised; a null siginfo pointer is allowed.
    let sig = unsafe { libc::sigwaitinfo(set, std::ptr::null_mut()) };
    if sig > 0 {
        Ok(sig)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reaps every exited child without blocking (what PID 1 owes orphans).
pub fn reap_children() {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid int to write to; WNOHANG never blocks.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umask_round_trips() {
        let first = read_umask();
        assert_eq!(read_umask(), first);
    }

    #[test]
    fn uname_has_a_sysname() {
        assert_eq!(uname().unwrap().sysname, "Linux");
    }

    #[test]
    fn c_chars_stop_at_nul() {
        let chars = [b'a' as libc::c_char, b'b' as libc::c_char, 0, b'c' as libc::c_char];
        assert_eq!(c_chars(&chars), "ab");
        let full = [b'x' as libc::c_char; 3];
        assert_eq!(c_chars(&full), "xxx");
    }

    #[test]
    fn raw_getpid_matches() {
        assert_eq!(raw_syscall(libc::SYS_getpid, [0; 6]), (i64::from(getpid()), None));
        let (ret, errno) = raw_syscall(libc::SYS_close, [-1, 0, 0, 0, 0, 0]);
        assert_eq!((ret, errno), (-1, Some(libc::EBADF)));
    }

    #[test]
    fn fd_listing_skips_its_own_fd() {
        let fds = list_fd_dir("/proc/self/fd").unwrap();
        assert!(fds.contains(&0) || fds.contains(&1) || fds.contains(&2));
        assert!(list_fd_dir("/nonexistent").is_err());
    }
}
