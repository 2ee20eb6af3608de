//! The raw seccomp user-notification API (seccomp_unotify(2)) on a listener
//! fd: RECV, SEND, ID_VALID and ADDFD. The structs and ioctl numbers are
//! libc's (`<linux/seccomp.h>`); a test checks them against the sizes the
//! running kernel reports with `SECCOMP_GET_NOTIF_SIZES`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

/// One intercepted system call, as the kernel reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The cookie that names this notification in every answer.
    pub id: u64,
    /// The calling thread, in the supervisor's pid namespace.
    pub pid: libc::pid_t,
    /// The system call number in the ABI named by `arch`.
    pub syscall_nr: i32,
    /// The raw arguments; pointers are addresses in the caller's memory.
    pub args: [u64; 6],
    /// `AUDIT_ARCH_*` of the call (x86_64, i386 or x32 share one filter).
    pub arch: u32,
    pub instruction_pointer: u64,
}

/// What [`Listener::poll`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// A notification waits to be received.
    Ready,
    /// No task uses the filter any more: nothing will ever arrive.
    HungUp,
    /// The timeout passed (or a signal interrupted the wait).
    Idle,
}

/// A seccomp notify listener fd (what `SECCOMP_FILTER_FLAG_NEW_LISTENER`
/// returns). Dropping it answers every call still waiting with ENOSYS,
/// so a container never waits on a supervisor that is gone.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
}

impl From<OwnedFd> for Listener {
    fn from(fd: OwnedFd) -> Listener {
        Listener { fd }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn ioctl<T>(fd: BorrowedFd<'_>, request: libc::Ioctl, arg: *mut T) -> io::Result<libc::c_int> {
    // SAFETY: every caller passes a seccomp notify request together with a
    // pointer to the struct of the layout that request names (libc's uapi
    // definitions), alive and exclusively borrowed for the call; the fd is
    // open for the call because it is borrowed.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl Listener {
    /// Waits up to `timeout` for a notification or the hang-up.
    pub fn poll(&self, timeout: Duration) -> io::Result<Readiness> {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `p` is one valid pollfd that lives across the call.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::Interrupted => Ok(Readiness::Idle),
                _ => Err(e),
            };
        }
        if p.revents & libc::POLLIN != 0 {
            Ok(Readiness::Ready)
        } else if p.revents & libc::POLLHUP != 0 {
            Ok(Readiness::HungUp)
        } else if p.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
            Err(io::Error::other(format!("poll reported revents {:#x}", p.revents)))
        } else {
            Ok(Readiness::Idle)
        }
    }

    /// `SECCOMP_IOCTL_NOTIF_RECV`. Blocks until a notification is pending
    /// (call after [`Listener::poll`] said `Ready`). ENOENT means the caller
    /// was killed between the poll and the receive.
    pub fn recv(&self) -> io::Result<Notification> {
        // SAFETY: seccomp_notif is plain data; the kernel requires it zeroed.
        let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        ioctl(self.fd.as_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut n)?;
        Ok(Notification {
            id: n.id,
            pid: n.pid as libc::pid_t,
            syscall_nr: n.data.nr,
            args: n.data.args,
            arch: n.data.arch,
            instruction_pointer: n.data.instruction_pointer,
        })
    }

    /// `SECCOMP_IOCTL_NOTIF_SEND`: the call returns `val`, or fails with
    /// `errno` when it is non-zero, or (`cont`) runs in the kernel as if it
    /// had not been intercepted. ENOENT: the caller is gone.
    pub fn send(&self, id: u64, val: i64, errno: i32, cont: bool) -> io::Result<()> {
        let mut resp = libc::seccomp_notif_resp {
            id,
            val,
            error: -errno,
            flags: if cont {
                libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32
            } else {
                0
            },
        };
        ioctl(self.fd.as_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp).map(drop)
    }

    /// `SECCOMP_IOCTL_NOTIF_ID_VALID`: whether notification `id` still waits
    /// for its answer (its caller alive and blocked in that very call). A
    /// pid read from a notification names the caller only while this holds.
    pub fn id_valid(&self, id: u64) -> bool {
        let mut id = id;
        ioctl(self.fd.as_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &mut id).is_ok()
    }

    /// `SECCOMP_IOCTL_NOTIF_ADDFD` with `SECCOMP_ADDFD_FLAG_SEND`: installs a
    /// duplicate of `fd` in the caller and answers the call with the new fd
    /// number, atomically (the caller never sees a number whose fd is not
    /// there yet). `newfd_flags` is 0 or `O_CLOEXEC`. Returns the number.
    pub fn add_fd_and_send(&self, id: u64, fd: BorrowedFd<'_>, newfd_flags: u32) -> io::Result<i32> {
        let mut addfd = libc::seccomp_notif_addfd {
            id,
            flags: libc::SECCOMP_ADDFD_FLAG_SEND as u32,
            srcfd: fd.as_raw_fd() as u32,
            newfd: 0,
            newfd_flags,
        };
        ioctl(self.fd.as_fd(), libc::SECCOMP_IOCTL_NOTIF_ADDFD, &mut addfd)
    }
}

/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (<linux/seccomp.h>, Linux 6.6).
const FD_SYNC_WAKE_UP: u64 = 1;

impl Listener {
    /// `SECCOMP_IOCTL_NOTIF_SET_FLAGS(SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)`:
    /// the kernel wakes the receiver, and then the caller, on the CPU that
    /// wakes it, instead of migrating the work (added for gVisor's
    /// supervisor: a notification round trip is two such wake-ups).
    /// EINVAL before Linux 6.6.
    pub fn set_sync_wakeup(&self) -> io::Result<()> {
        // The ioctl takes the flags as its argument value, not a pointer.
        // SAFETY: SET_FLAGS reads no memory; the fd is open while borrowed.
        let r = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
                FD_SYNC_WAKE_UP,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// The sizes of the notification structs in the running kernel
/// (`seccomp(SECCOMP_GET_NOTIF_SIZES)`).
pub fn kernel_sizes() -> io::Result<libc::seccomp_notif_sizes> {
    let mut sizes = libc::seccomp_notif_sizes {
        seccomp_notif: 0,
        seccomp_notif_resp: 0,
        seccomp_data: 0,
    };
    // SAFETY: SECCOMP_GET_NOTIF_SIZES writes one struct seccomp_notif_sizes
    // (libc's uapi layout) through the pointer, which lives across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_NOTIF_SIZES as libc::c_ulong,
            0 as libc::c_ulong,
            &mut sizes as *mut libc::seccomp_notif_sizes,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn struct_sizes_match_the_running_kernel() {
        let k = kernel_sizes().unwrap();
        // The kernel may grow the structs (it then accepts the old size for
        // RECV only if we pass it); ours must be exactly the ones it uses.
        assert_eq!(size_of::<libc::seccomp_notif>(), k.seccomp_notif as usize);
        assert_eq!(size_of::<libc::seccomp_notif_resp>(), k.seccomp_notif_resp as usize);
        assert_eq!(size_of::<libc::seccomp_data>(), k.seccomp_data as usize);
    }

    #[test]
    fn ioctl_numbers_are_the_kernels() {
        // Values from <linux/seccomp.h> on x86_64, written out so a libc
        // change that broke them would show here.
        assert_eq!(libc::SECCOMP_IOCTL_NOTIF_RECV, 0xc050_2100);
        assert_eq!(libc::SECCOMP_IOCTL_NOTIF_SEND, 0xc018_2101);
        assert_eq!(libc::SECCOMP_IOCTL_NOTIF_ID_VALID, 0x4008_2102);
        assert_eq!(libc::SECCOMP_IOCTL_NOTIF_ADDFD, 0x4018_2103);
    }
}
