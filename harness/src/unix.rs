//! Unix-socket plumbing the harness needs to play the runtime's peers: the
//! console-socket receiver (a pty master arrives with SCM_RIGHTS) and the
//! seccomp agent (the notify fd and the container state arrive together).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// A listener that accepts one connection within a deadline.
#[derive(Debug)]
pub struct OneShotListener {
    listener: UnixListener,
}

impl OneShotListener {
    pub fn bind(path: &Path) -> io::Result<OneShotListener> {
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        Ok(OneShotListener { listener })
    }

    /// Accepts one connection, or `TimedOut`.
    pub fn accept(&self, timeout: Duration) -> io::Result<UnixStream> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false)?;
                    return Ok(s);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "no connection"));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Receives one message and any file descriptors passed with it.
pub fn recv_with_fds(stream: &UnixStream, timeout: Duration) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    stream.set_read_timeout(Some(timeout))?;
    let mut data = vec![0u8; 64 * 1024];
    // Room for up to 16 descriptors of control data.
    let mut cmsg = vec![0u8; 512];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is a valid "empty" header; every pointer
    // set below refers to buffers that outlive the recvmsg call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = cmsg.len();
    // SAFETY: `msg` describes valid, writable buffers of the stated sizes;
    // the socket fd is owned by `stream` and open for the whole call.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    data.truncate(n as usize);
    let mut fds = Vec::new();
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled,
    // bounded by msg_controllen; each SCM_RIGHTS payload is an array of ints
    // that are new descriptors now owned by this process, so wrapping each
    // in an OwnedFd exactly once is sound.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let payload = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let count = payload / std::mem::size_of::<libc::c_int>();
                let p = libc::CMSG_DATA(c) as *const libc::c_int;
                for i in 0..count {
                    let fd = std::ptr::read_unaligned(p.add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((data, fds))
}

/// Reads `fd` (a pty master, a pipe) in a thread, chunk by chunk, until end
/// of file or an error (EIO once every slave is closed). A read on a pty
/// blocks until the other side writes, so a silent container only costs the
/// caller's own timeout; the thread ends when the container is killed.
pub fn spawn_reader(fd: OwnedFd) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut f = std::fs::File::from(fd);
        let mut buf = [0u8; 8192];
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn send_with_fd(stream: &UnixStream, data: &[u8], fd: i32) {
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut _,
            iov_len: data.len(),
        };
        // SAFETY: CMSG_SPACE is a pure size computation.
        let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<i32>() as u32) } as usize;
        let mut cbuf = vec![0u8; space];
        // SAFETY: zeroed msghdr is valid; pointers refer to live buffers and
        // the control buffer is sized with CMSG_SPACE for one int.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = space;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<i32>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut i32, fd);
            assert!(libc::sendmsg(stream.as_raw_fd(), &msg, 0) >= 0);
        }
    }

    #[test]
    fn a_passed_descriptor_arrives_usable() {
        let t = tempfile::tempdir().unwrap();
        let sock = t.path().join("s");
        let l = OneShotListener::bind(&sock).unwrap();
        let file = t.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
        let client = UnixStream::connect(&sock).unwrap();
        send_with_fd(&client, b"hello", f.as_raw_fd());
        let server = l.accept(Duration::from_secs(2)).unwrap();
        let (data, fds) = recv_with_fds(&server, Duration::from_secs(2)).unwrap();
        assert_eq!(data, b"hello");
        assert_eq!(fds.len(), 1);
        let mut received = std::fs::File::from(fds.into_iter().next().unwrap());
        received.write_all(b"y").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"xy");
    }

    #[test]
    fn accept_times_out() {
        let t = tempfile::tempdir().unwrap();
        let l = OneShotListener::bind(&t.path().join("s")).unwrap();
        let e = l.accept(Duration::from_millis(50)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
}
