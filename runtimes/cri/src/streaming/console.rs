//! Terminals: the pty master an OCI runtime hands over on its
//! `--console-socket` (one SCM_RIGHTS message, as runc sends it), and
//! window size changes on it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Child;
use std::time::{Duration, Instant};

/// Receives one file descriptor sent with SCM_RIGHTS on `s`.
pub fn recv_fd(s: &UnixStream) -> io::Result<OwnedFd> {
    let mut data = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // Room for a few descriptors; we keep the first and close the rest.
    let mut cmsg = [0u64; 16];
    // SAFETY: a zeroed msghdr is valid; every pointer set below outlives
    // the recvmsg call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cmsg);
    // SAFETY: msg points at live buffers of the sizes it states.
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found: Option<OwnedFd> = None;
    // SAFETY: walking the control messages recvmsg filled in, with the
    // libc macros that bound them by msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / std::mem::size_of::<i32>();
                let fds = libc::CMSG_DATA(c).cast::<i32>();
                for i in 0..count {
                    let fd = OwnedFd::from_raw_fd(fds.add(i).read_unaligned());
                    if found.is_none() {
                        found = Some(fd);
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    found.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "console socket message carried no descriptor",
        )
    })
}

/// Waits for the runtime `child` to connect to `listener` and send the
/// pty master; fails when the child exits first or `timeout` passes.
pub fn receive_master(listener: &UnixListener, child: &mut Child, timeout: Duration) -> io::Result<OwnedFd> {
    listener.set_nonblocking(true)?;
    let end = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false)?;
                s.set_read_timeout(Some(timeout))?;
                return recv_fd(&s);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if let Some(status) = child.try_wait()? {
            return Err(io::Error::other(format!(
                "the runtime exited ({status}) before sending the terminal"
            )));
        }
        if Instant::now() >= end {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the runtime did not send the terminal in time",
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sets a terminal's window size (TIOCSWINSZ on the master).
pub fn set_size(fd: &impl AsRawFd, width: u16, height: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer we pass.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A terminal's window size: (width, height).
pub fn get_size(fd: &impl AsRawFd) -> io::Result<(u16, u16)> {
    // SAFETY: a zeroed winsize is valid; TIOCGWINSZ fills it in.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize to the pointer we pass.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((ws.ws_col, ws.ws_row))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pty pair: (master, slave).
    fn openpty() -> (OwnedFd, OwnedFd) {
        let (mut m, mut s) = (0, 0);
        // SAFETY: openpty writes two descriptors; null name/termios/winsize.
        let r = unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
        assert_eq!(r, 0, "openpty: {}", io::Error::last_os_error());
        // SAFETY: openpty just returned these descriptors to us.
        unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
    }

    #[test]
    fn a_descriptor_crosses_the_socket_and_resizes_the_terminal() {
        let (master, slave) = openpty();
        let (a, b) = UnixStream::pair().unwrap();
        // Send the master the way runc does: a name as data, the fd as rights.
        let name = b"/dev/ptmx";
        let iov = libc::iovec {
            iov_base: name.as_ptr() as *mut libc::c_void,
            iov_len: name.len(),
        };
        // SAFETY: CMSG_SPACE is a pure size computation.
        let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<i32>() as u32) } as usize;
        let mut cbuf = vec![0u64; space.div_ceil(8)];
        // SAFETY: zeroed msghdr, then pointers to live buffers.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &iov as *const _ as *mut _;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space;
        // SAFETY: the control buffer holds one cmsg with room for one fd.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<i32>() as u32) as usize;
            libc::CMSG_DATA(c).cast::<i32>().write_unaligned(master.as_raw_fd());
            assert!(libc::sendmsg(a.as_raw_fd(), &msg, 0) >= 0);
        }
        let got = recv_fd(&b).unwrap();
        assert_ne!(got.as_raw_fd(), master.as_raw_fd());
        set_size(&got, 132, 43).unwrap();
        assert_eq!(get_size(&slave).unwrap(), (132, 43));
    }
}
