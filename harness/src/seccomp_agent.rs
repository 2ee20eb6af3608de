//! The harness as a seccomp agent (config-linux.md, seccomp `listenerPath`):
//! it receives the notify fd from the runtime and answers the container's
//! intercepted syscalls, so `SCMP_ACT_NOTIFY` can be checked end to end.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

// The uapi layouts of struct seccomp_notif / seccomp_notif_resp.
#[repr(C)]
#[derive(Default)]
struct SeccompData {
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

#[repr(C)]
#[derive(Default)]
struct SeccompNotif {
    id: u64,
    pid: u32,
    flags: u32,
    data: SeccompData,
}

#[repr(C)]
#[derive(Default)]
struct SeccompNotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// _IOWR('!', 0, struct seccomp_notif)
const SECCOMP_IOCTL_NOTIF_RECV: u64 = 0xc050_2100;
/// _IOWR('!', 1, struct seccomp_notif_resp)
const SECCOMP_IOCTL_NOTIF_SEND: u64 = 0xc018_2101;

/// One intercepted syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification {
    pub id: u64,
    pub pid: u32,
    pub nr: i32,
    pub args: [u64; 6],
}

fn wait_readable(fd: &OwnedFd, timeout: Duration) -> io::Result<()> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: `p` is a valid pollfd for the duration of the call, count 1.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    match r {
        0 => Err(io::Error::new(io::ErrorKind::TimedOut, "no seccomp notification")),
        r if r < 0 => Err(io::Error::last_os_error()),
        _ if p.revents & libc::POLLIN == 0 => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "seccomp notify fd closed (the filtered process exited)",
        )),
        _ => Ok(()),
    }
}

/// Waits up to `timeout` for the next notification on `fd`.
pub fn recv(fd: &OwnedFd, timeout: Duration) -> io::Result<Notification> {
    wait_readable(fd, timeout)?;
    let mut n = SeccompNotif::default();
    // SAFETY: the ioctl writes a struct seccomp_notif into `n`, which has the
    // uapi layout (repr(C)) and is zeroed as the kernel requires.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), SECCOMP_IOCTL_NOTIF_RECV as _, &mut n) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Notification {
        id: n.id,
        pid: n.pid,
        nr: n.data.nr,
        args: n.data.args,
    })
}

/// Answers notification `id`: the syscall fails with `errno` (if non-zero)
/// or returns `val`.
pub fn respond(fd: &OwnedFd, id: u64, val: i64, errno: i32) -> io::Result<()> {
    let resp = SeccompNotifResp {
        id,
        val,
        error: -errno.abs(),
        flags: 0,
    };
    // SAFETY: the ioctl reads a struct seccomp_notif_resp with uapi layout
    // from `resp`, which lives across the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), SECCOMP_IOCTL_NOTIF_SEND as _, &resp) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_uapi_sizes_in_the_ioctl_numbers() {
        assert_eq!(
            std::mem::size_of::<SeccompNotif>() as u64,
            (SECCOMP_IOCTL_NOTIF_RECV >> 16) & 0x3fff
        );
        assert_eq!(
            std::mem::size_of::<SeccompNotifResp>() as u64,
            (SECCOMP_IOCTL_NOTIF_SEND >> 16) & 0x3fff
        );
    }
}
