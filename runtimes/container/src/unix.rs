//! Passing file descriptors over unix sockets (SCM_RIGHTS): the pty master
//! to a console socket, the seccomp notify fd to a listener.

use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream;

/// Sends `data` with `fd` attached, in one sendmsg.
pub fn send_fd(sock: &UnixStream, data: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
    use std::io::Write;
    use std::os::fd::AsFd;
    let sent = crate::seccomp::send_with_fd(sock.as_fd(), data, fd)?;
    (&*sock).write_all(&data[sent..])
}
