//! The hand-off of the listener fd from the container's init (the OCI
//! seccomp agent protocol, config-linux.md "The Container Process State"):
//! the init connects to `linux.seccomp.listenerPath` and sends one message,
//! the JSON state `{ociVersion, fds: ["seccompFd"], pid, state, metadata?}`
//! with the fds named in `fds`, in that order, as SCM_RIGHTS.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{Error, Result};

/// The largest message accepted: a state with annotations is a few KiB.
const MAX_MESSAGE: usize = 1 << 20;

/// The state of the container (runtime.md, State) as the agent receives it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerState {
    pub oci_version: String,
    pub id: String,
    pub status: String,
    pub pid: Option<i32>,
    pub bundle: PathBuf,
    pub annotations: BTreeMap<String, String>,
}

/// The message that came with the listener fd.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AgentMessage {
    #[serde(default)]
    pub oci_version: String,
    /// Names of the fds sent, in order; `seccompFd` is the listener.
    pub fds: Vec<String>,
    /// The container process, in the sender's pid namespace.
    pub pid: i32,
    pub state: ContainerState,
    /// `linux.seccomp.listenerMetadata`, passed through.
    #[serde(default)]
    pub metadata: Option<String>,
}

/// A bound agent socket, mode 0600, removed when dropped. Bind it before
/// the container is created (the init connects during create), accept after.
#[derive(Debug)]
pub struct AgentSocket {
    listener: UnixListener,
    path: PathBuf,
}

fn socket_err<'a>(path: &'a Path, step: &'static str) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Socket {
        path: path.to_path_buf(),
        step,
        source,
    }
}

impl AgentSocket {
    /// Binds `path` (which must not exist) with mode 0600: the listener fd
    /// is the container's syscall channel, nobody else may connect.
    pub fn bind(path: &Path) -> Result<AgentSocket> {
        let err = |step| socket_err(path, step);
        // A deep --root and a 64-character id (kubelet's) overflow the
        // address: bind through the directory's descriptor instead.
        let (_dir, name) = container::unix::socket_name(path).map_err(err("bind"))?;
        let bytes = name.as_os_str().as_bytes();
        // SAFETY: sockaddr_un is plain data, all zeroes is valid.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
            return Err(err("bind")(io::Error::from_raw_os_error(libc::ENAMETOOLONG)));
        }
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        // SAFETY: socket(2) has no memory effects.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(err("socket")(io::Error::last_os_error()));
        }
        // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // Linux creates the socket file with the socket inode's mode (less
        // the umask): set it before bind, so the file never exists with a
        // wider mode (a chmod after bind would leave a window; the umask is
        // process-wide and other threads may be creating files).
        // SAFETY: fchmod on an fd we own; no memory effects.
        if unsafe { libc::fchmod(fd.as_raw_fd(), 0o600) } < 0 {
            return Err(err("fchmod 0600")(io::Error::last_os_error()));
        }
        let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
        // SAFETY: `addr` is an initialised sockaddr_un and `len` covers the
        // family and the NUL-terminated path inside it.
        if unsafe { libc::bind(fd.as_raw_fd(), (&addr as *const libc::sockaddr_un).cast(), len as u32) } < 0 {
            return Err(err("bind")(io::Error::last_os_error()));
        }
        let socket = AgentSocket {
            listener: UnixListener::from(fd),
            path: path.to_path_buf(),
        };
        // SAFETY: listen(2) on a bound socket we own; no memory effects.
        if unsafe { libc::listen(socket.listener.as_raw_fd(), 4) } < 0 {
            return Err(err("listen")(io::Error::last_os_error()));
        }
        Ok(socket)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a connection is waiting, after up to `timeout`.
    pub fn pending(&self, timeout: Duration) -> bool {
        let mut p = libc::pollfd {
            fd: self.listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd that lives across the call.
        unsafe { libc::poll(&mut p, 1, ms) > 0 }
    }

    /// Accepts one connection and receives the message and the listener fd;
    /// `timeout` bounds the wait for the connection and then for the message.
    /// Extra fds are closed.
    pub fn accept(&self, timeout: Option<Duration>) -> Result<(OwnedFd, AgentMessage)> {
        let path = self.path.as_path();
        let stream = accept_within(&self.listener, timeout).map_err(socket_err(path, "accept"))?;
        stream
            .set_read_timeout(timeout)
            .map_err(socket_err(path, "set timeout"))?;
        let (first, mut fds) = container::unix::recv_with_fds(&stream).map_err(socket_err(path, "recvmsg"))?;
        let bad = |message: String| Error::Message {
            path: path.to_path_buf(),
            message,
        };
        // The sender writes what one sendmsg did not take afterwards, and may
        // keep the connection open until its exec: read until the JSON is
        // whole, not until end of file (the init may already be blocked in a
        // notified call only we can answer).
        let mut data = first;
        let msg: AgentMessage = loop {
            match serde_json::from_slice(&data) {
                Ok(m) => break m,
                Err(e) if e.is_eof() => {
                    if data.len() > MAX_MESSAGE {
                        return Err(bad(format!("larger than {MAX_MESSAGE} bytes")));
                    }
                    let mut chunk = [0u8; 8192];
                    let n = (&stream).read(&mut chunk).map_err(socket_err(path, "read"))?;
                    if n == 0 {
                        return Err(bad(format!("connection closed after {} bytes of JSON", data.len())));
                    }
                    data.extend_from_slice(&chunk[..n]);
                }
                Err(e) => return Err(bad(format!("not the container state JSON: {e}"))),
            }
        };
        let Some(i) = msg.fds.iter().position(|n| n == "seccompFd") else {
            return Err(bad(format!("fds {:?} does not name \"seccompFd\"", msg.fds)));
        };
        if fds.len() != msg.fds.len() {
            return Err(bad(format!(
                "fds names {} descriptors, {} arrived",
                msg.fds.len(),
                fds.len()
            )));
        }
        Ok((fds.swap_remove(i), msg))
    }
}

impl Drop for AgentSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `socket_path`, accepts one connection and returns the listener fd
/// with the state it came with. Blocks until the container's init connects.
pub fn accept_listener(socket_path: &Path) -> Result<(OwnedFd, AgentMessage)> {
    AgentSocket::bind(socket_path)?.accept(None)
}

fn accept_within(listener: &UnixListener, timeout: Option<Duration>) -> io::Result<UnixStream> {
    if let Some(t) = timeout {
        let mut p = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = t.as_millis().min(i32::MAX as u128) as libc::c_int;
        loop {
            // SAFETY: one valid pollfd that lives across the call.
            let r = unsafe { libc::poll(&mut p, 1, ms) };
            match r {
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no connection in {t:?}"),
                    ))
                }
                r if r > 0 => break,
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
    }
    listener.accept().map(|(s, _)| s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two fds into the array.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both fds are new and owned by nobody else.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    #[test]
    fn the_message_and_fd_sent_by_the_container_library_arrive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let socket = AgentSocket::bind(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);

        let (r, w) = pipe();
        // Annotations large enough that the JSON does not fit one sendmsg.
        let big = "x".repeat(300_000);
        let state = serde_json::json!({
            "ociVersion": "1.3.0", "id": "c1", "status": "creating", "pid": 42,
            "bundle": "/b", "annotations": {"a": "1", "big": big},
        });
        let sender = {
            let path = path.clone();
            std::thread::spawn(move || {
                container::seccomp::send_to_listener(&path, &state, Some("meta"), 42, &w).unwrap();
                w
            })
        };
        let (fd, msg) = socket.accept(Some(Duration::from_secs(10))).unwrap();
        let w = sender.join().unwrap();
        assert_eq!(msg.pid, 42);
        assert_eq!(msg.fds, ["seccompFd"]);
        assert_eq!(msg.metadata.as_deref(), Some("meta"));
        assert_eq!(msg.state.id, "c1");
        assert_eq!(msg.state.bundle, Path::new("/b"));
        assert_eq!(msg.state.annotations["a"], "1");
        assert_eq!(msg.state.annotations["big"].len(), 300_000);
        // The fd that arrived is the pipe's write end: writes reach `r`.
        std::fs::File::from(fd).write_all(b"through").unwrap();
        drop(w);
        let mut got = String::new();
        std::fs::File::from(r).read_to_string(&mut got).unwrap();
        assert_eq!(got, "through");
        drop(socket);
        assert!(!path.exists(), "the socket file is removed on drop");
    }

    #[test]
    fn a_message_without_the_seccomp_fd_is_refused_naming_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let socket = AgentSocket::bind(&path).unwrap();
        let p = path.clone();
        let t = std::thread::spawn(move || {
            let mut s = UnixStream::connect(&p).unwrap();
            s.write_all(br#"{"ociVersion":"1.3.0","fds":[],"pid":1,"state":{"id":"c"}}"#)
                .unwrap();
        });
        let e = socket.accept(Some(Duration::from_secs(10))).unwrap_err().to_string();
        t.join().unwrap();
        assert!(e.contains("agent.sock") && e.contains("seccompFd"), "{e}");
    }

    #[test]
    fn accept_times_out_and_an_existing_path_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let socket = AgentSocket::bind(&path).unwrap();
        let e = socket.accept(Some(Duration::from_millis(50))).unwrap_err().to_string();
        assert!(e.contains("accept") && e.contains("agent.sock"), "{e}");
        let e = AgentSocket::bind(&path).unwrap_err().to_string();
        assert!(e.contains("bind"), "{e}");
    }
}
