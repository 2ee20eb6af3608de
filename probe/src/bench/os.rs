//! The system calls the workloads time, as safe functions. None of them
//! allocates, and each is the one call it names (no libc caching), so a
//! timed loop measures the kernel (or the sandbox) and nothing else.

use std::ffi::{CStr, CString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `getppid` through `syscall(2)`: glibc does not cache it, and going
/// around the wrapper makes sure of that.
#[inline]
pub fn getppid_raw() -> libc::c_long {
    // SAFETY: getppid takes no arguments, touches no memory and cannot fail.
    unsafe { libc::syscall(libc::SYS_getppid) }
}

/// `open(path, O_RDONLY | O_CLOEXEC)`; dropping the descriptor closes it.
#[inline]
pub fn open_rdonly(path: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `path` is NUL-terminated and outlives the call; no mode is
    // read without O_CREAT.
    let fd = check(unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) })?;
    // SAFETY: open just returned `fd`, so it is open and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `stat(2)` of `path`.
#[inline]
pub fn stat(path: &CStr) -> io::Result<libc::stat> {
    let mut buf = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `path` is NUL-terminated and `buf` is a writable stat buffer.
    check(unsafe { libc::stat(path.as_ptr(), buf.as_mut_ptr()) })?;
    // SAFETY: stat succeeded, so it filled the buffer.
    Ok(unsafe { buf.assume_init() })
}

/// Whether `path` is a file this process may execute.
pub fn access_exec(path: &CStr) -> io::Result<()> {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    check(unsafe { libc::access(path.as_ptr(), libc::X_OK) }).map(|_| ())
}

/// A program and its arguments, turned into C strings before any fork: the
/// child of a fork may only make async-signal-safe calls, which rules out
/// allocating there.
pub struct Exec {
    path: CString,
    _args: Vec<CString>,
    /// Pointers into `_args`, NULL-terminated, as execv wants them.
    argv: Vec<*const libc::c_char>,
}

impl Exec {
    pub fn new(path: CString, args: Vec<CString>) -> Exec {
        let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        Exec {
            path,
            _args: args,
            argv,
        }
    }

    /// fork, then execv in the child (`_exit(127)` if that fails). Returns
    /// the child's pid, for [`wait`].
    pub fn spawn(&self) -> io::Result<libc::pid_t> {
        // SAFETY: the child only calls execv and _exit, both
        // async-signal-safe, on memory prepared before the fork; that keeps
        // forking sound even when other threads exist (the test runner's).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: `path` and `argv` (NULL-terminated, pointing into the
            // live `_args`) were built before the fork and stay valid in the
            // child's copy of memory; _exit never returns.
            unsafe {
                libc::execv(self.path.as_ptr(), self.argv.as_ptr());
                libc::_exit(127);
            }
        }
        check(pid)
    }
}

/// waitpid for the child `pid`, retried on EINTR. Returns the wait status.
pub fn wait(pid: libc::pid_t) -> io::Result<libc::c_int> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a writable int.
        let ret = unsafe { libc::waitpid(pid, &mut status, 0) };
        match check(ret) {
            Ok(_) => return Ok(status),
            Err(err) if err.raw_os_error() == Some(libc::EINTR) => continue,
            Err(err) => return Err(err),
        }
    }
}

/// Sets IFF_UP on `lo` when it is down (a fresh network namespace starts
/// with it down, and 127.0.0.1 cannot be bound until it is up). Needs
/// CAP_NET_ADMIN in the namespace only when there is something to change.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: socket takes no pointers.
    let fd = check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: socket just returned `fd`; nobody else owns it.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data (a name and a union of integers and
    // addresses), for which all zeroes is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the NUL-terminated name and writes the
    // flags into `req`, which is a valid, writable ifreq.
    check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) })?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the union holds the flags.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short != 0 {
        return Ok(());
    }
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads the name and flags from the valid `req`.
    check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getppid_raw_is_the_parent() {
        assert_eq!(getppid_raw(), libc::c_long::from(crate::sys::getppid()));
    }

    #[test]
    fn open_and_stat_report_errnos() {
        let missing = c"/nonexistent/probe-bench";
        assert_eq!(open_rdonly(missing).unwrap_err().raw_os_error(), Some(libc::ENOENT));
        assert_eq!(stat(missing).unwrap_err().raw_os_error(), Some(libc::ENOENT));
        assert_eq!(stat(c"/").unwrap().st_mode & libc::S_IFMT, libc::S_IFDIR);
        assert!(open_rdonly(c"/").is_ok());
    }

    #[test]
    fn exec_reports_the_wait_status() {
        let run = |path: &CStr| {
            let exec = Exec::new(path.to_owned(), vec![c"probe".to_owned(), c"true".to_owned()]);
            let status = wait(exec.spawn().unwrap()).unwrap();
            assert!(libc::WIFEXITED(status), "{status:#x}");
            libc::WEXITSTATUS(status)
        };
        assert_eq!(run(c"/bin/true"), 0);
        assert_eq!(run(c"/bin/false"), 1);
        assert_eq!(run(c"/nonexistent/probe"), 127, "exec failure is _exit(127)");
        assert!(access_exec(c"/bin/true").is_ok());
        assert_eq!(
            access_exec(c"/nonexistent").unwrap_err().raw_os_error(),
            Some(libc::ENOENT)
        );
    }
}
