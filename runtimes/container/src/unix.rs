//! Passing file descriptors over unix sockets (SCM_RIGHTS): the pty master
//! to a console socket, the seccomp notify fd to a listener, and receiving
//! it there (the sandbox's supervisor).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// The longest path a `sockaddr_un` holds (108 bytes with the NUL).
const SUN_PATH_MAX: usize = 107;

/// A name for the socket at `path` that fits a `sockaddr_un`: `path` itself
/// when short enough, else `/proc/self/fd/N/NAME` through a descriptor of
/// its directory, returned with it (keep it open while the name is used).
/// The kernel resolves that name like any path, so bind and connect work at
/// any depth: a CRI server's root plus a 64-character container id does not
/// fit in 108 bytes.
pub fn socket_name(path: &std::path::Path) -> io::Result<(Option<std::fs::File>, std::path::PathBuf)> {
    use std::os::unix::ffi::OsStrExt;
    if path.as_os_str().as_bytes().len() <= SUN_PATH_MAX {
        return Ok((None, path.to_path_buf()));
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    };
    let dir = std::fs::File::open(dir)?;
    let short = std::path::Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name);
    if short.as_os_str().as_bytes().len() > SUN_PATH_MAX {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    Ok((Some(dir), short))
}

/// Calls `f` (a bind or a connect) with [`socket_name`]'s name for `path`.
pub fn with_socket_path<T>(path: &std::path::Path, f: impl FnOnce(&std::path::Path) -> io::Result<T>) -> io::Result<T> {
    let (_dir, name) = socket_name(path)?;
    f(&name)
}

/// Sends `data` with `fd` attached, in one sendmsg.
pub fn send_fd(sock: &UnixStream, data: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
    use std::io::Write;
    use std::os::fd::AsFd;
    let sent = crate::seccomp::send_with_fd(sock.as_fd(), data, fd)?;
    (&*sock).write_all(&data[sent..])
}

/// One recvmsg: the bytes and the fds that came with them (as owned fds,
/// close-on-exec).
pub fn recv_with_fds(stream: &UnixStream) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut data = vec![0u8; 64 * 1024];
    // Room for 16 descriptors, aligned like a cmsghdr.
    let mut control = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data, all zeroes is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    let n = loop {
        // SAFETY: `msg` points at `iov` (over `data`) and `control`, both
        // writable for the stated lengths and alive across the call.
        let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    data.truncate(n);
    let mut fds = Vec::new();
    // SAFETY: the CMSG_* walk stays inside the control buffer the kernel
    // filled (bounded by msg_controllen); each SCM_RIGHTS payload is an array
    // of new descriptors installed in this process for us alone, so each is
    // wrapped in an OwnedFd exactly once.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let payload = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let p = libc::CMSG_DATA(c) as *const libc::c_int;
                for i in 0..payload / std::mem::size_of::<libc::c_int>() {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(p.add(i))));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::other("control data truncated (more than 16 fds sent)"));
    }
    Ok((data, fds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_deeper_than_sockaddr_un_binds_and_connects() {
        let t = tempfile::tempdir().unwrap();
        let deep = t.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let path = deep.join(format!("{}.sock", "f".repeat(64)));
        assert!(
            std::os::unix::net::UnixListener::bind(&path).is_err(),
            "the plain path is too long"
        );
        let l = with_socket_path(&path, |p| std::os::unix::net::UnixListener::bind(p)).unwrap();
        assert!(path.exists(), "the socket file is at the full path");
        let c = with_socket_path(&path, |p| UnixStream::connect(p)).unwrap();
        let (s, _) = l.accept().unwrap();
        drop((c, s));
        // A short path is used as it is.
        let short = t.path().join("s.sock");
        with_socket_path(&short, |p| std::os::unix::net::UnixListener::bind(p)).unwrap();
        assert!(short.exists());
    }
}
