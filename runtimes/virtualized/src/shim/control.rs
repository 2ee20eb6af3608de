//! What the command line says to a container's shim: one request per
//! connection to `<state dir>/shim.sock`, as one JSON line sent in one
//! `sendmsg` (with the caller's stdio attached for `exec`), answered by JSON
//! lines (`exec` gets `Ok` when the process runs, then `Exited`).

use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::proto::ExitStatus;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Start,
    Kill {
        signal: i32,
        all: bool,
    },
    /// An OCI `process` object; the caller's fds 0, 1, 2 come with it.
    Exec {
        process: serde_json::Value,
        detach: bool,
    },
    /// To the shim of a pod's VM, from the shim of a further container of
    /// the pod: pack the bundle (a host path) into the guest and create the
    /// container there, its stdin, stdout and stderr the fds that come with
    /// the request (the terminal's, thrice, with one). Answered `Ok` once
    /// created, then `Exited` when its process ends.
    Join {
        id: String,
        bundle: std::path::PathBuf,
        terminal: bool,
        size: Option<(u16, u16)>,
    },
    /// Connect to TCP `port` on loopback in the container's network (in the
    /// guest), its bytes relayed from the caller's stdin and to its stdout
    /// (fds 0, 1, 2 come with it). `Ok` once connected, `Exited` when the
    /// connection ends.
    Connect {
        port: u16,
    },
    /// A request for a further container of the pod, to the pod VM's shim.
    For {
        container: String,
        request: Box<Request>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Ok,
    Error { message: String },
    Exited { status: ExitStatus },
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the container's shim at {path}: {source}")]
    Connect { path: String, source: io::Error },
    #[error("the container's shim: {0}")]
    Io(#[from] io::Error),
    #[error("the container's shim answered {text:?}: {reason}")]
    Garbled { text: String, reason: String },
    #[error("the container's shim hung up without answering")]
    HungUp,
}

pub type Result<T> = std::result::Result<T, Error>;

/// `sun_path` holds 108 bytes and state roots can be long: the socket is
/// reached through a descriptor of its directory, whose /proc path is short.
pub fn short_path(dir: &Path) -> io::Result<(std::fs::File, String)> {
    let d = std::fs::File::open(dir)?;
    let p = format!("/proc/self/fd/{}/shim.sock", d.as_raw_fd());
    Ok((d, p))
}

/// Sends `data` with `fds` attached, in one sendmsg (SCM_RIGHTS).
pub fn send_with_fds(sock: &UnixStream, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.is_empty() {
        return (&*sock).write_all(data);
    }
    let raw: Vec<libc::c_int> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let payload = std::mem::size_of_val(raw.as_slice()) as u32;
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(payload) } as usize;
    // u64 words keep the buffer aligned for a cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data; all zeroes is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space;
    // SAFETY: the control buffer is `space` bytes, room for one cmsghdr with
    // `payload` bytes of data (CMSG_SPACE), so CMSG_FIRSTHDR is non-null and
    // CMSG_DATA points inside it; `raw` is copied in whole.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(payload) as usize;
        std::ptr::copy_nonoverlapping(raw.as_ptr(), libc::CMSG_DATA(c).cast::<libc::c_int>(), raw.len());
    }
    let sent = loop {
        // SAFETY: `msg` points at `iov` (over `data`, read only by the
        // kernel) and `control`, both alive across the call.
        let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    (&*sock).write_all(&data[sent..])
}

/// An open request: the first reply read, the rest readable with `reply`.
pub struct Call {
    reader: BufReader<UnixStream>,
}

impl Call {
    /// The connection, to watch or shut down.
    pub fn socket(&self) -> &UnixStream {
        self.reader.get_ref()
    }

    /// The next reply line; `HungUp` at end of stream.
    pub fn reply(&mut self) -> Result<Reply> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(Error::HungUp);
        }
        decode_reply(&line)
    }
}

fn decode_reply(line: &str) -> Result<Reply> {
    serde_json::from_str(line.trim_end()).map_err(|e| Error::Garbled {
        text: line.chars().take(200).collect(),
        reason: e.to_string(),
    })
}

/// Connects to the shim of the container whose state directory is `dir` and
/// sends `req` with `fds` attached.
pub fn call(dir: &Path, req: &Request, fds: &[BorrowedFd<'_>]) -> Result<Call> {
    let path = dir.join("shim.sock");
    let connect_err = |source| Error::Connect {
        path: path.display().to_string(),
        source,
    };
    let (_dir_fd, short) = short_path(dir).map_err(connect_err)?;
    let sock = UnixStream::connect(&short).map_err(connect_err)?;
    let mut line = serde_json::to_vec(req).map_err(|e| Error::Garbled {
        text: String::new(),
        reason: e.to_string(),
    })?;
    line.push(b'\n');
    send_with_fds(&sock, &line, fds)?;
    Ok(Call {
        reader: BufReader::new(sock),
    })
}

/// The shim's side: the request (and its fds) read from a new connection.
pub fn read_request(sock: &UnixStream) -> io::Result<(Request, Vec<std::os::fd::OwnedFd>)> {
    let (data, fds) = container::unix::recv_with_fds(sock)?;
    let text = String::from_utf8_lossy(&data);
    let req = serde_json::from_str(text.trim_end())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("request {text:?}: {e}")))?;
    Ok((req, fds))
}

/// The shim's side: one reply line.
pub fn write_reply(mut sock: &UnixStream, reply: &Reply) -> io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(io::Error::other)?;
    line.push(b'\n');
    sock.write_all(&line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_request_arrives_with_its_fds_and_replies_come_back_in_order() {
        let t = tempfile::tempdir().unwrap();
        let listener = std::os::unix::net::UnixListener::bind(t.path().join("shim.sock")).unwrap();
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let (req, fds) = read_request(&s).unwrap();
            // The fd is a working duplicate: write through it.
            let f = std::fs::File::from(fds.into_iter().next().unwrap());
            (&f).write_all(b"via fd").unwrap();
            write_reply(&s, &Reply::Ok).unwrap();
            write_reply(
                &s,
                &Reply::Exited {
                    status: ExitStatus::Code(3),
                },
            )
            .unwrap();
            req
        });
        let out = t.path().join("out");
        let f = std::fs::File::create(&out).unwrap();
        let req = Request::Exec {
            process: serde_json::json!({"args": ["/probe"]}),
            detach: false,
        };
        let mut c = call(t.path(), &req, &[f.as_fd()]).unwrap();
        assert_eq!(c.reply().unwrap(), Reply::Ok);
        assert_eq!(
            c.reply().unwrap(),
            Reply::Exited {
                status: ExitStatus::Code(3)
            }
        );
        assert!(matches!(c.reply(), Err(Error::HungUp)));
        assert_eq!(server.join().unwrap(), req);
        assert_eq!(std::fs::read(&out).unwrap(), b"via fd");
    }

    #[test]
    fn a_missing_shim_is_named() {
        let t = tempfile::tempdir().unwrap();
        let e = call(t.path(), &Request::Start, &[]).err().unwrap().to_string();
        assert!(e.contains("shim.sock"), "{e}");
    }
}
