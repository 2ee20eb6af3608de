//! Reading the arguments a notified call points at, in the caller's memory.
//!
//! The time-of-check/time-of-use rule (seccomp_unotify(2), "Design goals"):
//! every buffer is copied ONCE into the supervisor, and the supervisor acts
//! on its copy (it performs the call itself), so a path the container
//! rewrites after the copy changes nothing. What the copy does not settle is
//! whose memory was read: the caller may have died and its pid been reused,
//! so after each copy `SECCOMP_IOCTL_NOTIF_ID_VALID` must still hold, or
//! the copy is thrown away ([`MemError::Stale`]).

use std::ffi::CString;
use std::io;
use std::os::unix::fs::FileExt;

use super::notif::Listener;

/// The largest path the kernel accepts, with its NUL (`PATH_MAX`).
pub const PATH_MAX: usize = libc::PATH_MAX as usize;

/// The largest buffer [`ContainerMemory::read_bytes`] copies: arguments
/// the supervisor inspects are small (paths, sockaddrs, structs); a
/// container-chosen length must not make the supervisor allocate gigabytes.
pub const MAX_READ: usize = 1 << 20;

/// Why an argument could not be read from the caller.
#[derive(Debug, thiserror::Error)]
pub enum MemError {
    /// The notification is no longer live (the caller died or was
    /// interrupted): what was read may belong to another process.
    #[error("notification {id:#x} of pid {pid} is stale: the caller left the call")]
    Stale { id: u64, pid: libc::pid_t },
    /// The address range is not readable in the caller.
    #[error("reading {len} bytes at {addr:#x} in pid {pid}: {source}")]
    Fault {
        pid: libc::pid_t,
        addr: u64,
        len: usize,
        #[source]
        source: io::Error,
    },
    /// No NUL within `PATH_MAX` bytes.
    #[error("path at {addr:#x} in pid {pid} is longer than PATH_MAX ({PATH_MAX} bytes)")]
    NameTooLong { pid: libc::pid_t, addr: u64 },
    /// A buffer larger than [`MAX_READ`] was asked for.
    #[error("buffer of {len} bytes at {addr:#x} in pid {pid} is larger than the supervisor copies ({MAX_READ})")]
    TooLarge { pid: libc::pid_t, addr: u64, len: usize },
}

impl MemError {
    /// The errno the mediated call should fail with, as the kernel would
    /// have answered the same argument.
    pub fn errno(&self) -> i32 {
        match self {
            // Nobody waits for this answer; EPERM keeps the failure closed.
            MemError::Stale { .. } => libc::EPERM,
            MemError::Fault { .. } => libc::EFAULT,
            MemError::NameTooLong { .. } => libc::ENAMETOOLONG,
            MemError::TooLarge { .. } => libc::EINVAL,
        }
    }
}

/// The caller's memory as a mediator sees it: copies, never references.
pub trait ContainerMemory {
    /// Copies `len` bytes at `addr`, then checks the notification is live.
    fn read_bytes(&self, addr: u64, len: usize) -> Result<Vec<u8>, MemError>;
    /// Copies the NUL-terminated string at `addr` (a path: at most
    /// `PATH_MAX` bytes with the NUL, else `NameTooLong`), then checks the
    /// notification is live.
    fn read_path(&self, addr: u64) -> Result<CString, MemError>;
    /// Whether the notification still waits for its answer; check it again
    /// right before an effect that must not happen for a dead caller.
    fn is_live(&self) -> bool;
}

/// [`ContainerMemory`] of one notification's caller: `process_vm_readv`,
/// falling back to `/proc/PID/mem` where that is refused.
pub struct ProcessMemory<'a> {
    listener: &'a Listener,
    id: u64,
    pid: libc::pid_t,
}

impl<'a> ProcessMemory<'a> {
    pub fn new(listener: &'a Listener, id: u64, pid: libc::pid_t) -> ProcessMemory<'a> {
        ProcessMemory { listener, id, pid }
    }

    fn live(&self) -> Result<(), MemError> {
        if self.listener.id_valid(self.id) {
            Ok(())
        } else {
            Err(MemError::Stale {
                id: self.id,
                pid: self.pid,
            })
        }
    }
}

impl ProcessMemory<'_> {
    /// A copy is good only if the notification was live after it; a failed
    /// copy from a caller that is gone (ESRCH, or the pid now someone
    /// else's) is `Stale`, not a fault of the container's argument.
    fn checked<T>(&self, copy: Result<T, MemError>) -> Result<T, MemError> {
        match copy {
            Ok(v) => self.live().map(|()| v),
            Err(e) => {
                self.live()?;
                Err(e)
            }
        }
    }
}

impl ContainerMemory for ProcessMemory<'_> {
    fn read_bytes(&self, addr: u64, len: usize) -> Result<Vec<u8>, MemError> {
        self.checked(read_bytes(self.pid, addr, len))
    }

    fn read_path(&self, addr: u64) -> Result<CString, MemError> {
        self.checked(read_cstr(self.pid, addr))
    }

    fn is_live(&self) -> bool {
        self.listener.id_valid(self.id)
    }
}

/// Copies `buf.len()` bytes at `addr` of `pid` into `buf`; returns how many
/// arrived (fewer when the range runs into an unmapped page).
pub fn read_into(pid: libc::pid_t, addr: u64, buf: &mut [u8]) -> io::Result<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes `buf`, writable for its length and borrowed
    // exclusively across the call; `remote` is only an address in the other
    // process, which the kernel checks and never dereferences here.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if n >= 0 {
        return Ok(n as usize);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        // Not built in, or refused by a ptrace policy (Yama) that still
        // lets the owner of the process open its mem file.
        Some(libc::ENOSYS) | Some(libc::EPERM) => read_proc_mem(pid, addr, buf),
        _ => Err(e),
    }
}

/// The fallback: `pread` of `/proc/PID/mem`.
pub fn read_proc_mem(pid: libc::pid_t, addr: u64, buf: &mut [u8]) -> io::Result<usize> {
    let f = std::fs::File::open(format!("/proc/{pid}/mem"))?;
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], addr + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn fault(pid: libc::pid_t, addr: u64, len: usize, source: io::Error) -> MemError {
    MemError::Fault { pid, addr, len, source }
}

/// `len` bytes at `addr`, all of them or `Fault`.
pub fn read_bytes(pid: libc::pid_t, addr: u64, len: usize) -> Result<Vec<u8>, MemError> {
    if len > MAX_READ {
        return Err(MemError::TooLarge { pid, addr, len });
    }
    let mut out = vec![0u8; len];
    let n = read_into(pid, addr, &mut out).map_err(|e| fault(pid, addr, len, e))?;
    if n < len {
        return Err(fault(pid, addr, len, io::Error::from_raw_os_error(libc::EFAULT)));
    }
    Ok(out)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// The NUL-terminated string at `addr`, read page by page (a string may
/// end right before an unmapped page: reading past it would fault the
/// whole copy) up to `PATH_MAX` bytes, like the kernel's
/// `strncpy_from_user` for a path.
pub fn read_cstr(pid: libc::pid_t, addr: u64) -> Result<CString, MemError> {
    let page = page_size() as u64;
    let mut out: Vec<u8> = Vec::with_capacity(256);
    let mut at = addr;
    while out.len() < PATH_MAX {
        let to_page_end = (page - at % page) as usize;
        let want = to_page_end.min(PATH_MAX - out.len());
        let start = out.len();
        out.resize(start + want, 0);
        let n = read_into(pid, at, &mut out[start..]).map_err(|e| fault(pid, addr, want, e))?;
        out.truncate(start + n);
        if let Some(i) = out[start..].iter().position(|&b| b == 0) {
            out.truncate(start + i);
            // No interior NUL: the string was cut at the first one.
            return CString::new(out).map_err(|e| fault(pid, addr, 0, io::Error::other(e)));
        }
        if n < want {
            return Err(fault(
                pid,
                addr,
                start + want,
                io::Error::from_raw_os_error(libc::EFAULT),
            ));
        }
        at += n as u64;
    }
    Err(MemError::NameTooLong { pid, addr })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> libc::pid_t {
        std::process::id() as libc::pid_t
    }

    /// Two pages: the first readable, the second PROT_NONE.
    struct Guarded {
        base: *mut u8,
        page: usize,
    }

    impl Guarded {
        fn new() -> Guarded {
            let page = page_size();
            // SAFETY: an anonymous private mapping at an address the kernel
            // picks; nothing else refers to it.
            let base = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    2 * page,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(base, libc::MAP_FAILED);
            // SAFETY: the second page lies inside the mapping made above.
            let r = unsafe { libc::mprotect(base.cast::<u8>().add(page).cast(), page, libc::PROT_NONE) };
            assert_eq!(r, 0);
            Guarded {
                base: base.cast(),
                page,
            }
        }

        /// Writes `s` so that it ends exactly at the end of the readable page.
        fn at_end(&self, s: &[u8]) -> u64 {
            let at = self.page - s.len();
            // SAFETY: `at + s.len() == page`, inside the readable first page.
            unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), self.base.add(at), s.len()) };
            self.base as u64 + at as u64
        }
    }

    impl Drop for Guarded {
        fn drop(&mut self) {
            // SAFETY: unmaps exactly the mapping `new` made.
            unsafe { libc::munmap(self.base.cast(), 2 * self.page) };
        }
    }

    #[test]
    fn a_path_ending_right_before_an_unmapped_page_is_read() {
        let g = Guarded::new();
        let addr = g.at_end(b"/etc/hostname\0");
        assert_eq!(read_cstr(me(), addr).unwrap().as_bytes(), b"/etc/hostname");
    }

    #[test]
    fn a_string_running_into_an_unmapped_page_faults() {
        let g = Guarded::new();
        let addr = g.at_end(b"/no/terminator");
        let e = read_cstr(me(), addr).unwrap_err();
        assert_eq!(e.errno(), libc::EFAULT, "{e}");
        let e = read_bytes(me(), addr, 100).unwrap_err();
        assert_eq!(e.errno(), libc::EFAULT, "{e}");
    }

    #[test]
    fn paths_of_path_max_bytes_without_nul_are_too_long() {
        let fits = [b'a'; PATH_MAX - 1].iter().chain(b"\0").copied().collect::<Vec<u8>>();
        assert_eq!(
            read_cstr(me(), fits.as_ptr() as u64).unwrap().as_bytes().len(),
            PATH_MAX - 1
        );
        let long = vec![b'a'; PATH_MAX + 100];
        let e = read_cstr(me(), long.as_ptr() as u64).unwrap_err();
        assert!(matches!(e, MemError::NameTooLong { .. }), "{e}");
        assert_eq!(e.errno(), libc::ENAMETOOLONG);
    }

    #[test]
    fn null_and_oversized_reads_are_refused() {
        assert_eq!(read_cstr(me(), 0).unwrap_err().errno(), libc::EFAULT);
        assert_eq!(read_bytes(me(), 0, 8).unwrap_err().errno(), libc::EFAULT);
        let e = read_bytes(me(), 0x1000, MAX_READ + 1).unwrap_err();
        assert!(matches!(e, MemError::TooLarge { .. }), "{e}");
        assert!(read_bytes(me(), 0, 0).unwrap().is_empty());
    }

    #[test]
    fn the_proc_mem_fallback_reads_the_same_bytes() {
        let data = *b"copied once";
        let mut a = [0u8; 11];
        let mut b = [0u8; 11];
        assert_eq!(read_into(me(), data.as_ptr() as u64, &mut a).unwrap(), 11);
        assert_eq!(read_proc_mem(me(), data.as_ptr() as u64, &mut b).unwrap(), 11);
        assert_eq!(a, data);
        assert_eq!(b, data);
    }
}
